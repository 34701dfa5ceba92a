/* test_jpeg.c: JPEG reading (media/image.c on libjpeg-turbo): gray and colour files written here
 * with libjpeg decode to the right size, channels and values (within JPEG's loss at quality 95),
 * and every bad input is refused with its message: truncated data, a header promising more
 * pixels than the file holds, a CMYK file, garbage after the SOI marker. Skips (77) in a build
 * without libjpeg, after checking the message that build gives. */
#include "media.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef MEDIA_HAVE_JPEG
#include <jpeglib.h>
#endif



static void expect_error(const uint8_t *bytes, size_t size, int code, const char *what,
                         const char *text)
{
    media_image img = {0};
    ev_error err = {0};
    int rc = media_image_read_memory(bytes, size, &img, &err);
    CHECK(rc == code && strstr(err.message, text) != NULL, "%s: code %d, '%s' (want '%s')", what,
          rc, err.message, text);
    CHECK(img.data == NULL, "%s: no image left behind", what);
}

#ifdef MEDIA_HAVE_JPEG
/* Encodes width x height x channels (1 gray, 3 RGB, 4 CMYK) at quality 95. */
static uint8_t *encode(const uint8_t *pixels, int width, int height, int channels, size_t *size)
{
    struct jpeg_compress_struct info;
    struct jpeg_error_mgr manager;
    info.err = jpeg_std_error(&manager);
    jpeg_create_compress(&info);
    unsigned char *out = NULL;
    unsigned long out_size = 0;
    jpeg_mem_dest(&info, &out, &out_size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = channels;
    info.in_color_space = channels == 1 ? JCS_GRAYSCALE : channels == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, 95, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)info.next_scanline * width * channels);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    *size = out_size;
    return out;
}

static void round_trips(void)
{
    enum { W = 40, H = 24 };
    uint8_t gray[W * H], rgb[W * H * 3], cmyk[W * H * 4];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            gray[y * W + x] = (uint8_t)(40 + 4 * x); /* a smooth ramp JPEG keeps closely */
            for (int c = 0; c < 3; c++)
                rgb[(y * W + x) * 3 + c] = (uint8_t)(c == 0 ? 200 : c == 1 ? 60 + 3 * y : 30);
            for (int c = 0; c < 4; c++)
                cmyk[(y * W + x) * 4 + c] = 100;
        }
    size_t size;
    uint8_t *file = encode(gray, W, H, 1, &size);
    media_image img = {0};
    ev_error err = {0};
    int rc = media_image_read_memory(file, size, &img, &err);
    int worst = 0;
    for (int i = 0; !rc && i < W * H; i++) {
        int d = abs((int)img.data[(i / W) * img.stride + i % W] - gray[i]);
        worst = d > worst ? d : worst;
    }
    CHECK(!rc && img.width == W && img.height == H && img.channels == 1 && img.bit_depth == 8,
          "gray JPEG: %dx%d, %d channel(s), %d bits (%s)", img.width, img.height, img.channels,
          img.bit_depth, err.message);
    CHECK(!rc && worst <= 3, "gray JPEG within 3 of the source (worst %d)", worst);
    media_image_free(&img);

    /* truncated in the headers, and in the scan (libjpeg pads it with grey and warns) */
    expect_error(file, size / 2, EV_ERR_FORMAT, "JPEG cut in its headers", "bad JPEG: ");
    expect_error(file, size - 20, EV_ERR_FORMAT, "JPEG cut in its scan",
                 "bad JPEG: Premature end of JPEG file");
    /* header says 16384 x 16384 in a few hundred bytes */
    uint8_t *huge = malloc(size);
    memcpy(huge, file, size);
    for (size_t i = 2; i + 8 < size; i++)
        if (huge[i] == 0xff && huge[i + 1] == 0xc0) { /* SOF0: length, precision, height, width */
            huge[i + 5] = 0x40, huge[i + 6] = 0x00, huge[i + 7] = 0x40, huge[i + 8] = 0x00;
            break;
        }
    expect_error(huge, size, EV_ERR_FORMAT, "oversized header", "16384x16384 pixels in");
    free(huge);
    free(file);

    file = encode(rgb, W, H, 3, &size);
    rc = media_image_read_memory(file, size, &img, &err);
    worst = 0;
    for (int i = 0; !rc && i < W * H * 3; i++) {
        int d = abs((int)img.data[(i / (W * 3)) * img.stride + i % (W * 3)] - rgb[i]);
        worst = d > worst ? d : worst;
    }
    CHECK(!rc && img.channels == 3 && img.width == W && worst <= 8,
          "colour JPEG: RGB, within 8 of the source (worst %d; %s)", worst, err.message);
    media_image_free(&img);
    free(file);

    file = encode(cmyk, W, H, 4, &size);
    expect_error(file, size, EV_ERR_UNSUPPORTED, "CMYK JPEG", "CMYK JPEG is not supported");
    free(file);
}
#endif

int main(void)
{
    static const uint8_t garbage[] = {0xff, 0xd8, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04};
#ifdef MEDIA_HAVE_JPEG
    CHECK(media_jpeg_supported(), "built with JPEG support");
    expect_error(garbage, sizeof garbage, EV_ERR_FORMAT, "garbage after SOI", "bad JPEG: ");
    round_trips();
#else
    CHECK(!media_jpeg_supported(), "built without JPEG support");
    expect_error(garbage, sizeof garbage, EV_ERR_UNSUPPORTED, "JPEG without libjpeg",
                 "install libjpeg62-turbo-dev and rebuild");
    return test_failures ? 1 : 77;
#endif
    uint8_t dicm[132] = {0};
    memcpy(dicm + 128, "DICM", 4);
    expect_error(dicm, sizeof dicm, EV_ERR_UNSUPPORTED, "DICOM given to the image reader",
                 "a DICOM file, not an image");
    return test_finish();
}
