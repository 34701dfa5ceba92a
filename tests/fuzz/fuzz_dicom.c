/* fuzz_dicom.c: libFuzzer target for the DICOM reading path (media_dicom_open_memory on DCMTK:
 * Part 10 and raw data sets, native, RLE and JPEG pixel data, the timing and region
 * attributes), then rendering of the first frames. A file that opens must be self-consistent
 * (sizes in range, positive frame durations, region inside the frame), and every frame read
 * must succeed or fail with a message. run-fuzzers.sh builds it with clang++ and DCMTK. */
#include "dicom.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    media_dicom *d = NULL;
    ev_error err = {0};
    if (media_dicom_open_memory(data, size, "fuzz", &d, &err) != EV_OK) {
        if (d || err.message[0] == '\0')
            abort(); /* a failure must leave nothing open and say why */
        return 0;
    }
    const media_dicom_info *in = media_dicom_get_info(d);
    if (in->width < 1 || in->width > MEDIA_MAX_DIMENSION || in->height < 1 ||
        in->height > MEDIA_MAX_DIMENSION || (in->channels != 1 && in->channels != 3) ||
        in->frames < 1 || in->frames > MEDIA_DICOM_MAX_FRAMES || !(in->frame_time_ms > 0))
        abort();
    if (in->has_region && (in->region_x < 0 || in->region_y < 0 || in->region_width < 1 ||
                           in->region_height < 1 || in->region_x + in->region_width > in->width ||
                           in->region_y + in->region_height > in->height))
        abort();
    /* Render a few frames of images of a sane size (the fuzzer's memory limit is not ours). */
    size_t row = (size_t)in->width * (size_t)in->channels;
    if (row * (size_t)in->height <= (size_t)4 << 20) {
        uint8_t *frame = malloc(row * (size_t)in->height);
        for (unsigned i = 0; frame && i < in->frames && i < 4; i++) {
            if (!(media_dicom_frame_duration_ms(d, i) > 0))
                abort();
            err.message[0] = '\0';
            if (media_dicom_read_frame(d, i, frame, row, &err) != EV_OK && !err.message[0])
                abort();
        }
        free(frame);
    }
    media_dicom_close(d);
    return 0;
}
