/* media.h: frames from files. PNG (libpng) and PGM/PPM (P5/P6, 8- and 16-bit) read and write;
 * JPEG (libjpeg-turbo, 8-bit gray or RGB) read when built with it; DICOM in dicom.h. Images are kept in memory as interleaved rows; 16-bit samples in host order. */
#ifndef ECHOVIEW_MEDIA_H
#define ECHOVIEW_MEDIA_H

#include "echoview.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Refuse images larger than this per side: a hostile header must not make us allocate GBs. */
#define MEDIA_MAX_DIMENSION 16384

typedef struct media_image {
    int width, height;
    int channels;  /* 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bit_depth; /* 8 or 16 */
    size_t stride; /* bytes per row */
    uint8_t *data;
} media_image;

/* Reads PNG, JPEG, PGM or PPM (format detected from the content, not the name). Palette and
 * low-bit-depth PNGs are expanded to 8 bits; errors name the file and the problem. */
int media_image_read(const char *path, media_image *out, ev_error *err);
int media_image_read_memory(const uint8_t *bytes, size_t size, media_image *out, ev_error *err);
/* Whether media_image_read decodes JPEG in this build (libjpeg found at build time). */
bool media_jpeg_supported(void);
/* Allocates a zeroed image. */
int media_image_alloc(media_image *img, int width, int height, int channels, int bit_depth,
                      ev_error *err);
int media_image_write_png(const char *path, const media_image *img, ev_error *err);
int media_image_write_pgm(const char *path, const media_image *img, ev_error *err); /* P5/P6 */
void media_image_free(media_image *img);

/* Describes the image as an engine frame (no copy): GRAY8, GRAY16, RGB or RGBA. Gray+alpha is
 * not representable; convert with media_image_to_gray8 first. */
int media_image_as_frame(const media_image *img, ev_frame *frame, ev_error *err);
/* New 8-bit single-channel copy (ITU-R BT.601 luma for colour, high byte for 16-bit). */
int media_image_to_gray8(const media_image *img, media_image *out, ev_error *err);

#endif
