/* image.c: PNG (libpng) and PGM/PPM (P2/P3/P5/P6) reading and writing, JPEG reading (libjpeg,
 * when built with it: MEDIA_HAVE_JPEG), and the bridge from a decoded image to an engine frame.
 *
 * Every byte read here comes from outside, so decoding works on the whole file in memory and
 * checks sizes before allocating: a header that promises more pixels than the file can hold is
 * refused before any pixel buffer exists (for PNG, against deflate's best ratio of 1032:1).
 * Errors name the file ("<memory>" for buffers) and the problem.
 *
 * Decisions:
 * - 16-bit samples are kept as 16-bit, in host order in memory (big-endian on disk for both
 *   formats). PGM/PPM samples are kept raw: a maxval of 4095 stays 0..4095 in a 16-bit image;
 *   bit_depth is 8 when maxval < 256, else 16. Samples above maxval are a format error.
 *   The writers always write maxval 255 or 65535.
 * - PNG palette and 1/2/4-bit gray are expanded to 8 bits. A palette's tRNS becomes an alpha
 *   channel (it is real transparency); a gray/RGB tRNS (one "transparent" colour key) is
 *   ignored so that a gray frame stays one channel. Alpha channels are kept as channels.
 */
#include "media.h"

#include "ev_base.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef MEDIA_HAVE_JPEG
#include <jpeglib.h>
#endif

#define MEMORY_NAME "<memory>"
/* deflate cannot expand data by more than this factor; used to reject truncated PNGs early */
#define DEFLATE_MAX_RATIO 1032u
/* A file larger than the biggest image we accept plus generous room for metadata is refused. */
#define MEDIA_MAX_FILE_BYTES ((size_t)MEDIA_MAX_DIMENSION * MEDIA_MAX_DIMENSION * 8u + (64u << 20))

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static int check_dimensions(const char *name, const char *format, long long width, long long height,
                            ev_error *err)
{
    if (width < 1 || width > MEDIA_MAX_DIMENSION)
        return ev_fail(err, EV_ERR_FORMAT, "%s: %s width %lld is out of range (1..%d)", name,
                       format, width, MEDIA_MAX_DIMENSION);
    if (height < 1 || height > MEDIA_MAX_DIMENSION)
        return ev_fail(err, EV_ERR_FORMAT, "%s: %s height %lld is out of range (1..%d)", name,
                       format, height, MEDIA_MAX_DIMENSION);
    return EV_OK;
}

/* Validates an image description and returns its row size in bytes (packed). */
static int image_check(const media_image *img, const char *what, size_t *row_bytes, ev_error *err)
{
    if (!img)
        return ev_fail(err, EV_ERR_INVALID, "%s: image is NULL", what);
    if (!img->data)
        return ev_fail(err, EV_ERR_INVALID, "%s: image has no pixel data", what);
    if (img->width < 1 || img->width > MEDIA_MAX_DIMENSION || img->height < 1 ||
        img->height > MEDIA_MAX_DIMENSION)
        return ev_fail(err, EV_ERR_INVALID, "%s: image size %dx%d is out of range (1..%d)", what,
                       img->width, img->height, MEDIA_MAX_DIMENSION);
    if (img->channels < 1 || img->channels > 4)
        return ev_fail(err, EV_ERR_INVALID, "%s: %d channels (expected 1 to 4)", what,
                       img->channels);
    if (img->bit_depth != 8 && img->bit_depth != 16)
        return ev_fail(err, EV_ERR_INVALID, "%s: bit depth %d (expected 8 or 16)", what,
                       img->bit_depth);
    /* no overflow: every factor is bounded above */
    size_t packed = (size_t)img->width * (size_t)img->channels * (size_t)(img->bit_depth / 8);
    if (img->stride < packed)
        return ev_fail(err, EV_ERR_INVALID, "%s: stride %zu is smaller than a row (%zu bytes)",
                       what, img->stride, packed);
    *row_bytes = packed;
    return EV_OK;
}

int media_image_alloc(media_image *img, int width, int height, int channels, int bit_depth,
                      ev_error *err)
{
    if (!img)
        return ev_fail(err, EV_ERR_INVALID, "media_image_alloc: image is NULL");
    memset(img, 0, sizeof *img);
    if (width < 1 || width > MEDIA_MAX_DIMENSION || height < 1 || height > MEDIA_MAX_DIMENSION)
        return ev_fail(err, EV_ERR_INVALID, "media_image_alloc: size %dx%d is out of range (1..%d)",
                       width, height, MEDIA_MAX_DIMENSION);
    if (channels < 1 || channels > 4)
        return ev_fail(err, EV_ERR_INVALID, "media_image_alloc: %d channels (expected 1 to 4)",
                       channels);
    if (bit_depth != 8 && bit_depth != 16)
        return ev_fail(err, EV_ERR_INVALID, "media_image_alloc: bit depth %d (expected 8 or 16)",
                       bit_depth);
    size_t stride, total;
    if (!ev_mul_size((size_t)width, (size_t)channels * (size_t)(bit_depth / 8), &stride) ||
        !ev_mul_size(stride, (size_t)height, &total))
        return ev_fail(err, EV_ERR_NOMEM, "media_image_alloc: %dx%d image size overflows", width,
                       height);
    uint8_t *data = calloc(1, total);
    if (!data)
        return ev_fail(err, EV_ERR_NOMEM, "media_image_alloc: out of memory for %zu bytes", total);
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->bit_depth = bit_depth;
    img->stride = stride;
    img->data = data;
    return EV_OK;
}

void media_image_free(media_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* ---- PNG reading ------------------------------------------------------------------------------ */

/* Lives in the caller's frame of the function that calls setjmp, so its fields keep their
 * values across longjmp (no volatile needed). */
/* libpng's error pointer for readers and writers: the error and the last warning, which often
 * says what the error means ("Invalid IHDR data" after "Image width is zero in IHDR"). */
typedef struct png_messages {
    char error[256];
    char warning[200];
} png_messages;

static void png_on_error(png_structp png, png_const_charp message)
{
    png_messages *messages = png_get_error_ptr(png);
    if (messages->warning[0])
        snprintf(messages->error, sizeof messages->error, "%s (%s)", message, messages->warning);
    else
        snprintf(messages->error, sizeof messages->error, "%s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message)
{
    /* Ancillary-chunk trouble (bad CRC in a text chunk, unknown sRGB profile) does not make the
     * pixels wrong; keep it for the error message rather than print into a daemon's stderr. */
    png_messages *messages = png_get_error_ptr(png);
    snprintf(messages->warning, sizeof messages->warning, "%s", message);
}

typedef struct png_reader {
    png_messages messages;
    const char *name;
    const uint8_t *bytes;
    size_t size, pos;
    uint8_t *data;
    png_bytep *rows;
} png_reader;

static void png_read_from_memory(png_structp png, png_bytep out, size_t length)
{
    png_reader *reader = png_get_io_ptr(png);
    if (length > reader->size - reader->pos)
        png_error(png, "file is truncated");
    memcpy(out, reader->bytes + reader->pos, length);
    reader->pos += length;
}

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Total bytes of IDAT payload present in the buffer (chunks cut short count what is there). */
static size_t png_idat_bytes(const uint8_t *bytes, size_t size)
{
    size_t pos = 8, total = 0;
    while (size - pos >= 8) {
        uint32_t length = read_be32(bytes + pos);
        const uint8_t *type = bytes + pos + 4;
        size_t available = size - pos - 8;
        size_t present = length < available ? length : available;
        if (memcmp(type, "IDAT", 4) == 0)
            total += present;
        if (memcmp(type, "IEND", 4) == 0 || length > available || available - length < 4)
            break;
        pos += 8 + (size_t)length + 4;
    }
    return total;
}

static int png_decode(png_reader *reader, media_image *out, ev_error *err)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader->messages, png_on_error,
                                             png_on_warning);
    if (!png)
        return ev_fail(err, EV_ERR_NOMEM, "%s: cannot create a PNG reader", reader->name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return ev_fail(err, EV_ERR_NOMEM, "%s: cannot create a PNG reader", reader->name);
    }
    reader->data = NULL;
    reader->rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(reader->rows);
        free(reader->data);
        reader->rows = NULL;
        reader->data = NULL;
        memset(out, 0, sizeof *out);
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad PNG: %s", reader->name, reader->messages.error);
    }
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* let the fuzzer reach the decoder instead of stopping at checksums */
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#endif
    png_set_read_fn(png, reader, png_read_from_memory);
    png_read_info(png, info);

    png_uint_32 width, height;
    int depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &depth, &color_type, &interlace, NULL, NULL);
    int rc = check_dimensions(reader->name, "PNG", width, height, err);
    if (rc != EV_OK)
        goto fail;
    /* the un-transformed image needs at least this much compressed data */
    size_t raw_row = png_get_rowbytes(png, info) + 1;
    size_t raw_total = raw_row * (size_t)height; /* < 2^31 * 8 + 2^14: fits in 64-bit size_t */
    size_t idat = png_idat_bytes(reader->bytes, reader->size);
    if ((idat + 64) * DEFLATE_MAX_RATIO < raw_total) {
        rc = ev_fail(err, EV_ERR_FORMAT,
                     "%s: bad PNG: %zu bytes of image data cannot hold %ux%u pixels (file is "
                     "truncated)",
                     reader->name, idat, (unsigned)width, (unsigned)height);
        goto fail;
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
        if (png_get_valid(png, info, PNG_INFO_tRNS))
            png_set_tRNS_to_alpha(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && host_is_little_endian())
        png_set_swap(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || (bit_depth != 8 && bit_depth != 16) ||
        row_bytes != (size_t)width * (size_t)channels * (size_t)(bit_depth / 8)) {
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: bad PNG: unexpected layout (%d channels, %d bits)",
                     reader->name, channels, bit_depth);
        goto fail;
    }
    rc = media_image_alloc(out, (int)width, (int)height, channels, bit_depth, err);
    if (rc != EV_OK) {
        ev_fail_prefix(err, "%s: ", reader->name);
        goto fail;
    }
    reader->data = out->data;
    reader->rows = malloc(sizeof *reader->rows * (size_t)height);
    if (!reader->rows) {
        rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", reader->name);
        goto fail;
    }
    for (png_uint_32 y = 0; y < height; y++)
        reader->rows[y] = out->data + (size_t)y * out->stride;
    png_read_image(png, reader->rows);
    /* The trailing chunks after the image data are not read: a file cut after its last IDAT
     * still holds every pixel. */
    png_destroy_read_struct(&png, &info, NULL);
    free(reader->rows);
    reader->rows = NULL;
    reader->data = NULL;
    return EV_OK;

fail:
    png_destroy_read_struct(&png, &info, NULL);
    free(reader->rows);
    free(reader->data);
    reader->rows = NULL;
    reader->data = NULL;
    memset(out, 0, sizeof *out);
    return rc;
}

/* ---- PGM / PPM reading ---------------------------------------------------------------------- */

typedef struct pnm_cursor {
    const uint8_t *bytes;
    size_t size, pos;
} pnm_cursor;

static bool pnm_is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void pnm_skip_space_and_comments(pnm_cursor *c)
{
    while (c->pos < c->size) {
        uint8_t ch = c->bytes[c->pos];
        if (pnm_is_space(ch)) {
            c->pos++;
        } else if (ch == '#') {
            while (c->pos < c->size && c->bytes[c->pos] != '\n' && c->bytes[c->pos] != '\r')
                c->pos++;
        } else {
            break;
        }
    }
}

/* Reads an unsigned decimal; values beyond 10^9 saturate (every caller rejects them). Returns
 * false when no digit is there. */
static bool pnm_read_number(pnm_cursor *c, long long *out)
{
    pnm_skip_space_and_comments(c);
    long long value = 0;
    size_t start = c->pos;
    while (c->pos < c->size && c->bytes[c->pos] >= '0' && c->bytes[c->pos] <= '9') {
        if (value <= 1000000000LL)
            value = value * 10 + (c->bytes[c->pos] - '0');
        c->pos++;
    }
    *out = value;
    return c->pos > start;
}

static int pnm_decode(const char *name, const uint8_t *bytes, size_t size, media_image *out,
                      ev_error *err)
{
    char kind = (char)bytes[1];
    bool ascii = kind == '2' || kind == '3';
    int channels = (kind == '3' || kind == '6') ? 3 : 1;
    const char *format = channels == 3 ? "PPM" : "PGM";
    pnm_cursor c = {bytes, size, 2};
    long long width, height, maxval;

    if (!pnm_read_number(&c, &width))
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad %s header: %s", name, format,
                       c.pos >= size ? "file is truncated before the width"
                                     : "width is not a number");
    if (!pnm_read_number(&c, &height))
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad %s header: %s", name, format,
                       c.pos >= size ? "file is truncated before the height"
                                     : "height is not a number");
    int rc = check_dimensions(name, format, width, height, err);
    if (rc != EV_OK)
        return rc;
    if (!pnm_read_number(&c, &maxval))
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad %s header: %s", name, format,
                       c.pos >= size ? "file is truncated before the maxval"
                                     : "maxval is not a number");
    if (maxval < 1 || maxval > 65535)
        return ev_fail(err, EV_ERR_FORMAT,
                       "%s: bad %s header: maxval %lld is out of range (1..65535)", name, format,
                       maxval);
    int bit_depth = maxval < 256 ? 8 : 16;
    size_t bytes_per_sample = (size_t)bit_depth / 8;
    /* bounded: 16384 * 16384 * 3 * 2 < 2^31 */
    size_t samples = (size_t)width * (size_t)height * (size_t)channels;

    if (!ascii) {
        /* exactly one whitespace byte separates maxval from the pixels */
        if (c.pos >= size || !pnm_is_space(bytes[c.pos]))
            return ev_fail(err, EV_ERR_FORMAT, "%s: bad %s header: %s", name, format,
                           c.pos >= size ? "file is truncated after the maxval"
                                         : "no whitespace after the maxval");
        c.pos++;
        size_t needed = samples * bytes_per_sample;
        if (size - c.pos < needed)
            return ev_fail(err, EV_ERR_FORMAT,
                           "%s: truncated %s: %lldx%lld needs %zu bytes of pixel data, the file "
                           "has %zu",
                           name, format, width, height, needed, size - c.pos);
    } else if (size - c.pos < 2 * samples - 1) {
        /* each ASCII sample takes at least one digit and one separator */
        return ev_fail(err, EV_ERR_FORMAT,
                       "%s: truncated %s: %lldx%lld needs %zu samples, the file is too short", name,
                       format, width, height, samples);
    }

    rc = media_image_alloc(out, (int)width, (int)height, channels, bit_depth, err);
    if (rc != EV_OK)
        return ev_fail_prefix(err, "%s: ", name);
    uint8_t *dst8 = out->data;
    for (size_t i = 0; i < samples; i++) {
        long long value;
        if (ascii) {
            if (!pnm_read_number(&c, &value)) {
                media_image_free(out);
                return ev_fail(err, EV_ERR_FORMAT, "%s: %s %s at sample %zu of %zu", name,
                               c.pos >= size ? "truncated" : "bad sample in", format, i, samples);
            }
        } else if (bit_depth == 8) {
            value = bytes[c.pos++];
        } else {
            value = (long long)bytes[c.pos] << 8 | bytes[c.pos + 1];
            c.pos += 2;
        }
        if (value > maxval) {
            media_image_free(out);
            return ev_fail(err, EV_ERR_FORMAT, "%s: bad %s: sample %zu is %lld, above maxval %lld",
                           name, format, i, value, maxval);
        }
        if (bit_depth == 8) {
            dst8[i] = (uint8_t)value;
        } else {
            uint16_t v16 = (uint16_t)value;
            memcpy(dst8 + 2 * i, &v16, 2);
        }
    }
    return EV_OK;
}

/* ---- JPEG reading ----------------------------------------------------------------------------- */

bool media_jpeg_supported(void)
{
#ifdef MEDIA_HAVE_JPEG
    return true;
#else
    return false;
#endif
}

#ifdef MEDIA_HAVE_JPEG
/* libjpeg reports errors through error_exit, which must not return: it longjmps back here with
 * the library's message. Warnings (corrupt data it recovered from) are counted: a truncated
 * file decodes to grey rows with "premature end of data", which is an error for a dataset. */
typedef struct jpeg_reader {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_reader;

static void jpeg_on_error(j_common_ptr info)
{
    jpeg_reader *reader = (jpeg_reader *)info->err;
    (*info->err->format_message)(info, reader->message);
    longjmp(reader->jump, 1);
}

static void jpeg_on_message(j_common_ptr info, int level)
{
    jpeg_reader *reader = (jpeg_reader *)info->err;
    if (level < 0 && !reader->message[0]) /* a warning: keep the first */
        (*info->err->format_message)(info, reader->message);
    if (level < 0)
        info->err->num_warnings++;
}

static int jpeg_decode(const char *name, const uint8_t *bytes, size_t size, media_image *out,
                       ev_error *err)
{
    struct jpeg_decompress_struct info;
    jpeg_reader reader = {0};
    media_image img = {0};
    info.err = jpeg_std_error(&reader.manager);
    reader.manager.error_exit = jpeg_on_error;
    reader.manager.emit_message = jpeg_on_message;
    if (setjmp(reader.jump)) {
        jpeg_destroy_decompress(&info);
        media_image_free(&img);
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad JPEG: %s", name, reader.message);
    }
    jpeg_create_decompress(&info);
    if (size > (unsigned long)-1) /* jpeg_mem_src takes an unsigned long */
        size = (unsigned long)-1;
    jpeg_mem_src(&info, bytes, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    int rc = check_dimensions(name, "JPEG", info.image_width, info.image_height, err);
    if (rc) {
        jpeg_destroy_decompress(&info);
        return rc;
    }
    /* gray stays gray; YCbCr, RGB, CMYK and YCCK all become RGB */
    const int channels = info.jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&info);
        return ev_fail(err, EV_ERR_UNSUPPORTED, "%s: CMYK JPEG is not supported; save it as RGB",
                       name);
    }
    /* a JPEG cannot be smaller than about one bit per 8x8 block: refuse a header promising a
     * huge image from a few bytes before allocating it */
    if ((size_t)info.image_width * info.image_height / 64 / 8 > size + 1024) {
        jpeg_destroy_decompress(&info);
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad JPEG: %ux%u pixels in %zu bytes (truncated)",
                       name, info.image_width, info.image_height, size);
    }
    if ((rc = media_image_alloc(&img, (int)info.image_width, (int)info.image_height, channels, 8,
                                err))) {
        jpeg_destroy_decompress(&info);
        ev_fail_prefix(err, "%s: ", name);
        return rc;
    }
    jpeg_start_decompress(&info);
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = img.data + (size_t)info.output_scanline * img.stride;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    if (reader.manager.num_warnings) {
        media_image_free(&img);
        return ev_fail(err, EV_ERR_FORMAT, "%s: bad JPEG: %s", name, reader.message);
    }
    *out = img;
    return EV_OK;
}
#endif

/* ---- reading: format detection -------------------------------------------------------------- */

static int decode_any(const char *name, const uint8_t *bytes, size_t size, media_image *out,
                      ev_error *err)
{
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size == 0)
        return ev_fail(err, EV_ERR_FORMAT, "%s: file is empty", name);
    size_t prefix = size < 8 ? size : 8;
    if (memcmp(bytes, png_signature, prefix) == 0) {
        if (size < 8)
            return ev_fail(err, EV_ERR_FORMAT, "%s: bad PNG: file is truncated", name);
        png_reader reader = {.name = name, .bytes = bytes, .size = size};
        return png_decode(&reader, out, err);
    }
    if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
#ifdef MEDIA_HAVE_JPEG
        return jpeg_decode(name, bytes, size, out, err);
#else
        return ev_fail(err, EV_ERR_UNSUPPORTED,
                       "%s: JPEG, but this build has no JPEG support (install libjpeg62-turbo-dev "
                       "and rebuild)",
                       name);
#endif
    }
    if (size >= 132 && !memcmp(bytes + 128, "DICM", 4))
        return ev_fail(err, EV_ERR_UNSUPPORTED,
                       "%s: a DICOM file, not an image: read it with media/dicom.h (datasets and "
                       "dicomsrc do)",
                       name);
    if (size >= 2 && bytes[0] == 'P') {
        switch (bytes[1]) {
        case '2':
        case '3':
        case '5':
        case '6':
            return pnm_decode(name, bytes, size, out, err);
        case '1':
        case '4':
            return ev_fail(err, EV_ERR_UNSUPPORTED,
                           "%s: PBM bitmaps (P1/P4) are not supported; use PGM or PNG", name);
        case '7':
            return ev_fail(err, EV_ERR_UNSUPPORTED, "%s: PAM (P7) is not supported; use PGM or PNG",
                           name);
        default:
            break;
        }
    }
    return ev_fail(err, EV_ERR_FORMAT, "%s: bad magic: not a PNG, JPEG, PGM or PPM file", name);
}

int media_image_read_memory(const uint8_t *bytes, size_t size, media_image *out, ev_error *err)
{
    if (!out)
        return ev_fail(err, EV_ERR_INVALID, "media_image_read_memory: output is NULL");
    memset(out, 0, sizeof *out);
    if (!bytes && size)
        return ev_fail(err, EV_ERR_INVALID, "media_image_read_memory: bytes is NULL");
    return decode_any(MEMORY_NAME, bytes, size, out, err);
}

int media_image_read(const char *path, media_image *out, ev_error *err)
{
    if (!out)
        return ev_fail(err, EV_ERR_INVALID, "media_image_read: output is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return ev_fail(err, EV_ERR_INVALID, "media_image_read: path is NULL");
    FILE *file = fopen(path, "rb");
    if (!file)
        return ev_fail(err, EV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* read the whole file, growing the buffer: works for pipes and FIFOs too */
    size_t capacity = 1 << 16, size = 0;
    uint8_t *buffer = malloc(capacity);
    int rc = EV_OK;
    if (!buffer) {
        rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (size == capacity) {
            if (capacity >= MEDIA_MAX_FILE_BYTES) {
                rc = ev_fail(err, EV_ERR_FORMAT, "%s: file is larger than %zu bytes", path,
                             (size_t)MEDIA_MAX_FILE_BYTES);
                goto out;
            }
            size_t grown =
                capacity * 2 < MEDIA_MAX_FILE_BYTES ? capacity * 2 : MEDIA_MAX_FILE_BYTES;
            uint8_t *bigger = realloc(buffer, grown);
            if (!bigger) {
                rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, grown);
                goto out;
            }
            buffer = bigger;
            capacity = grown;
        }
        size_t got = fread(buffer + size, 1, capacity - size, file);
        size += got;
        if (got == 0) {
            if (ferror(file)) {
                rc = ev_fail(err, EV_ERR_IO, "%s: read error: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    rc = decode_any(path, buffer, size, out, err);
out:
    free(buffer);
    fclose(file);
    return rc;
}

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct png_writer {
    png_messages messages;
    const char *path;
} png_writer;

static int png_encode(png_writer *writer, FILE *file, const media_image *img, ev_error *err)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &writer->messages,
                                              png_on_error, png_on_warning);
    if (!png)
        return ev_fail(err, EV_ERR_NOMEM, "%s: cannot create a PNG writer", writer->path);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return ev_fail(err, EV_ERR_NOMEM, "%s: cannot create a PNG writer", writer->path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return ev_fail(err, EV_ERR_IO, "%s: cannot write PNG: %s", writer->path,
                       writer->messages.error);
    }
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                       PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, img->bit_depth,
                 color_types[img->channels], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (img->bit_depth == 16 && host_is_little_endian())
        png_set_swap(png);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->data + (size_t)y * img->stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return EV_OK;
}

/* Closes the file, and removes it when anything failed so no half-written image remains. */
static int finish_file(FILE *file, const char *path, int rc, ev_error *err)
{
    if (fflush(file) != 0 && rc == EV_OK)
        rc = ev_fail(err, EV_ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (fclose(file) != 0 && rc == EV_OK)
        rc = ev_fail(err, EV_ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (rc != EV_OK)
        remove(path);
    return rc;
}

int media_image_write_png(const char *path, const media_image *img, ev_error *err)
{
    size_t row_bytes;
    int rc = image_check(img, path ? path : "media_image_write_png", &row_bytes, err);
    if (rc != EV_OK)
        return rc;
    if (!path)
        return ev_fail(err, EV_ERR_INVALID, "media_image_write_png: path is NULL");
    FILE *file = fopen(path, "wb");
    if (!file)
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    png_writer writer = {.path = path};
    rc = png_encode(&writer, file, img, err);
    return finish_file(file, path, rc, err);
}

int media_image_write_pgm(const char *path, const media_image *img, ev_error *err)
{
    size_t row_bytes;
    int rc = image_check(img, path ? path : "media_image_write_pgm", &row_bytes, err);
    if (rc != EV_OK)
        return rc;
    if (!path)
        return ev_fail(err, EV_ERR_INVALID, "media_image_write_pgm: path is NULL");
    if (img->channels != 1 && img->channels != 3)
        return ev_fail(err, EV_ERR_INVALID,
                       "%s: PGM/PPM holds 1 or 3 channels, the image has %d (use PNG)", path,
                       img->channels);
    uint8_t *row = NULL;
    if (img->bit_depth == 16) {
        row = malloc(row_bytes);
        if (!row)
            return ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
    }
    FILE *file = fopen(path, "wb");
    if (!file) {
        free(row);
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    if (fprintf(file, "P%c\n%d %d\n%d\n", img->channels == 3 ? '6' : '5', img->width, img->height,
                img->bit_depth == 16 ? 65535 : 255) < 0)
        rc = ev_fail(err, EV_ERR_IO, "%s: write error: %s", path, strerror(errno));
    for (int y = 0; y < img->height && rc == EV_OK; y++) {
        const uint8_t *src = img->data + (size_t)y * img->stride;
        if (row) {
            for (size_t i = 0; i < row_bytes / 2; i++) {
                uint16_t v;
                memcpy(&v, src + 2 * i, 2);
                row[2 * i] = (uint8_t)(v >> 8);
                row[2 * i + 1] = (uint8_t)(v & 0xff);
            }
            src = row;
        }
        if (fwrite(src, 1, row_bytes, file) != row_bytes)
            rc = ev_fail(err, EV_ERR_IO, "%s: write error: %s", path, strerror(errno));
    }
    free(row);
    return finish_file(file, path, rc, err);
}

/* ---- bridges to the engine ------------------------------------------------------------------ */

int media_image_as_frame(const media_image *img, ev_frame *frame, ev_error *err)
{
    size_t row_bytes;
    int rc = image_check(img, "media_image_as_frame", &row_bytes, err);
    if (rc != EV_OK)
        return rc;
    if (!frame)
        return ev_fail(err, EV_ERR_INVALID, "media_image_as_frame: frame is NULL");
    ev_pixel_format format;
    if (img->channels == 1)
        format = img->bit_depth == 16 ? EV_PIXEL_GRAY16 : EV_PIXEL_GRAY8;
    else if (img->channels == 3 && img->bit_depth == 8)
        format = EV_PIXEL_RGB;
    else if (img->channels == 4 && img->bit_depth == 8)
        format = EV_PIXEL_RGBA;
    else
        return ev_fail(err, EV_ERR_UNSUPPORTED,
                       "media_image_as_frame: %d-channel %d-bit images have no frame format; "
                       "convert with media_image_to_gray8",
                       img->channels, img->bit_depth);
    if (img->stride > (size_t)INT32_MAX)
        return ev_fail(err, EV_ERR_INVALID, "media_image_as_frame: stride %zu too large",
                       img->stride);
    frame->data = img->data;
    frame->width = img->width;
    frame->height = img->height;
    frame->stride = (int)img->stride;
    frame->format = format;
    return EV_OK;
}

/* BT.601 luma, rounded half up: exact in integers (weights are thousandths). */
static uint32_t luma_bt601(uint32_t r, uint32_t g, uint32_t b)
{
    return (299u * r + 587u * g + 114u * b + 500u) / 1000u;
}

int media_image_to_gray8(const media_image *img, media_image *out, ev_error *err)
{
    size_t row_bytes;
    int rc = image_check(img, "media_image_to_gray8", &row_bytes, err);
    if (rc != EV_OK)
        return rc;
    if (!out)
        return ev_fail(err, EV_ERR_INVALID, "media_image_to_gray8: output is NULL");
    if (out == img)
        return ev_fail(err, EV_ERR_INVALID, "media_image_to_gray8: output must be a new image");
    media_image gray;
    rc = media_image_alloc(&gray, img->width, img->height, 1, 8, err);
    if (rc != EV_OK)
        return rc;
    int channels = img->channels;
    bool wide = img->bit_depth == 16;
    for (int y = 0; y < img->height; y++) {
        const uint8_t *src = img->data + (size_t)y * img->stride;
        uint8_t *dst = gray.data + (size_t)y * gray.stride;
        for (int x = 0; x < img->width; x++) {
            uint32_t s[3];
            int used = channels >= 3 ? 3 : 1; /* alpha is dropped */
            for (int c = 0; c < used; c++) {
                size_t i = (size_t)x * (size_t)channels + (size_t)c;
                if (wide) {
                    uint16_t v;
                    memcpy(&v, src + 2 * i, 2);
                    s[c] = v;
                } else {
                    s[c] = src[i];
                }
            }
            uint32_t value = used == 3 ? luma_bt601(s[0], s[1], s[2]) : s[0];
            /* 16-bit: the high byte (luma computed at full precision first) */
            dst[x] = (uint8_t)(wide ? value >> 8 : value);
        }
    }
    *out = gray;
    return EV_OK;
}
