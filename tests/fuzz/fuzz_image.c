/* fuzz_image.c: libFuzzer target for the image decoders (media_image_read_memory: PNG through
 * libpng, PGM/PPM P2/P3/P5/P6). A decoded image must be self-consistent, and the frame and
 * gray8 bridges must accept it or fail cleanly. Build with clang -fsanitize=fuzzer,address;
 * compiling with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION lets PNG checksums through so the
 * fuzzer reaches the decoder. */
#include "ev_base.h"
#include "media.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    media_image img;
    ev_error err = {0};
    if (media_image_read_memory(data, size, &img, &err) != EV_OK) {
        if (img.data || err.message[0] == '\0')
            abort(); /* a failure must leave no image and say why */
        return 0;
    }
    if (img.width < 1 || img.width > MEDIA_MAX_DIMENSION || img.height < 1 ||
        img.height > MEDIA_MAX_DIMENSION || img.channels < 1 || img.channels > 4 ||
        (img.bit_depth != 8 && img.bit_depth != 16) ||
        img.stride != (size_t)img.width * (size_t)img.channels * (size_t)(img.bit_depth / 8))
        abort();
    /* touch the last byte so ASan checks the whole buffer is there */
    volatile uint8_t last = img.data[img.stride * (size_t)img.height - 1];
    (void)last;
    ev_frame frame;
    (void)media_image_as_frame(&img, &frame, &err);
    media_image gray;
    if (media_image_to_gray8(&img, &gray, &err) == EV_OK)
        media_image_free(&gray);
    media_image_free(&img);
    return 0;
}
