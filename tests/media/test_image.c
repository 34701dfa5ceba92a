/* test_image.c: PNG and PGM/PPM reading and writing (media/image.c): round trips at 8 and 16
 * bits, PNG colour types written directly with libpng (gray+alpha, palette, 1-bit, interlaced),
 * hand-written PGM/PPM files, BT.601 luma values, frame descriptions, and every bad-input path
 * with its error text. Prints one line per check; exits 0 when all pass, 1 otherwise. */
#include "ev_base.h"
#include "media.h"
#include "test_util.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];


static const char *tmp_path(const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

static void spit(const char *path, const void *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, size, f);
    fclose(f);
}

/* Deterministic pattern covering the full sample range. */
static void fill_pattern(media_image *img, uint32_t seed)
{
    uint64_t state = seed;
    for (int y = 0; y < img->height; y++) {
        uint8_t *row = img->data + (size_t)y * img->stride;
        size_t samples = (size_t)img->width * (size_t)img->channels;
        for (size_t i = 0; i < samples; i++) {
            uint32_t v = (uint32_t)ev_rng_next(&state);
            if (img->bit_depth == 8) {
                row[i] = (uint8_t)v;
            } else {
                uint16_t v16 = (uint16_t)v;
                memcpy(row + 2 * i, &v16, 2);
            }
        }
    }
}

static bool images_equal(const media_image *a, const media_image *b)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels ||
        a->bit_depth != b->bit_depth)
        return false;
    size_t row = (size_t)a->width * (size_t)a->channels * (size_t)(a->bit_depth / 8);
    for (int y = 0; y < a->height; y++)
        if (memcmp(a->data + (size_t)y * a->stride, b->data + (size_t)y * b->stride, row) != 0)
            return false;
    return true;
}

static uint16_t sample16(const media_image *img, int x, int y, int c)
{
    uint16_t v;
    memcpy(&v, img->data + (size_t)y * img->stride + 2 * ((size_t)x * img->channels + c), 2);
    return v;
}

static uint8_t sample8(const media_image *img, int x, int y, int c)
{
    return img->data[(size_t)y * img->stride + (size_t)x * img->channels + c];
}

/* ---- writing PNGs directly with libpng (independent of the code under test) ---------------- */

typedef struct raw_png {
    int width, height, color_type, bit_depth, interlace;
    const png_color *palette;
    int palette_size;
    const png_byte *trans;
    int trans_size;
    const uint8_t *pixels; /* packed rows, big-endian 16-bit, as libpng wants them */
    size_t row_bytes;
} raw_png;

static bool write_raw_png(const char *path, const raw_png *r)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return false;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)r->width, (png_uint_32)r->height, r->bit_depth,
                 r->color_type, r->interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (r->palette)
        png_set_PLTE(png, info, r->palette, r->palette_size);
    if (r->trans)
        png_set_tRNS(png, info, r->trans, r->trans_size, NULL);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < r->height; y++)
            png_write_row(png, r->pixels + (size_t)y * r->row_bytes);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return true;
}

/* ---- hand-made PNG chunks for hostile headers ----------------------------------------------- */

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Signature + IHDR (gray 8-bit) + a 12-byte IDAT of garbage + IEND. Returns the size. */
static size_t make_png_header(uint8_t *buf, uint32_t width, uint32_t height)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    memcpy(buf, sig, 8);
    n = 8;
    put_be32(buf + n, 13);
    memcpy(buf + n + 4, "IHDR", 4);
    put_be32(buf + n + 8, width);
    put_be32(buf + n + 12, height);
    buf[n + 16] = 8; /* depth */
    buf[n + 17] = 0; /* gray */
    buf[n + 18] = 0;
    buf[n + 19] = 0;
    buf[n + 20] = 0;
    put_be32(buf + n + 21, crc32_png(buf + n + 4, 17));
    n += 25;
    put_be32(buf + n, 12);
    memcpy(buf + n + 4, "IDAT", 4);
    memset(buf + n + 8, 0x55, 12);
    put_be32(buf + n + 20, crc32_png(buf + n + 4, 16));
    n += 24;
    put_be32(buf + n, 0);
    memcpy(buf + n + 4, "IEND", 4);
    put_be32(buf + n + 8, crc32_png(buf + n + 4, 4));
    n += 12;
    return n;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_round_trips(void)
{
    static const int channel_sets[] = {1, 2, 3, 4};
    for (int depth = 8; depth <= 16; depth += 8) {
        for (int k = 0; k < 4; k++) {
            int channels = channel_sets[k];
            media_image img, back;
            ev_error err = {0};
            int rc = media_image_alloc(&img, 37, 23, channels, depth, &err);
            fill_pattern(&img, (uint32_t)(depth * 10 + channels));
            const char *png = tmp_path("round.png");
            rc = rc ? rc : media_image_write_png(png, &img, &err);
            rc = rc ? rc : media_image_read(png, &back, &err);
            CHECK(rc == EV_OK && images_equal(&img, &back), "PNG round trip %d-bit %d-channel %s",
                  depth, channels, rc ? err.message : "");
            if (rc == EV_OK)
                media_image_free(&back);

            if (channels == 1 || channels == 3) {
                const char *pgm = tmp_path("round.pnm");
                rc = media_image_write_pgm(pgm, &img, &err);
                rc = rc ? rc : media_image_read(pgm, &back, &err);
                CHECK(rc == EV_OK && images_equal(&img, &back),
                      "PGM/PPM round trip %d-bit %d-channel %s", depth, channels,
                      rc ? err.message : "");
                if (rc == EV_OK)
                    media_image_free(&back);
            }
            media_image_free(&img);
        }
    }

    /* 16-bit PGM is big-endian on disk, host order in memory */
    media_image img;
    ev_error err = {0};
    media_image_alloc(&img, 2, 1, 1, 16, &err);
    uint16_t v[2] = {0x1234, 0xfedc};
    memcpy(img.data, v, 4);
    const char *path = tmp_path("endian.pgm");
    media_image_write_pgm(path, &img, &err);
    size_t size = 0;
    uint8_t *bytes = slurp(path, &size);
    static const char expect[] = "P5\n2 1\n65535\n\x12\x34\xfe\xdc";
    CHECK(bytes && size == sizeof expect - 1 && memcmp(bytes, expect, size) == 0,
          "16-bit PGM on disk: header and big-endian samples");
    free(bytes);
    media_image_free(&img);

    /* a padded stride is honoured by the writers */
    media_image padded, back;
    media_image_alloc(&padded, 5, 4, 3, 8, &err);
    media_image tight = padded;
    uint8_t *wide = calloc(1, 20 * 4);
    padded.data = wide;
    padded.stride = 20;
    for (int y = 0; y < 4; y++)
        for (int i = 0; i < 15; i++)
            wide[y * 20 + i] = tight.data[y * 15 + i] = (uint8_t)(y * 31 + i * 7);
    path = tmp_path("padded.png");
    int rc = media_image_write_png(path, &padded, &err);
    rc = rc ? rc : media_image_read(path, &back, &err);
    CHECK(rc == EV_OK && images_equal(&tight, &back) && back.stride == 15,
          "PNG writer honours a padded stride; reader returns packed rows");
    if (rc == EV_OK)
        media_image_free(&back);
    free(wide);
    media_image_free(&tight);
}

static void test_png_colour_types(void)
{
    ev_error err = {0};
    media_image img;

    /* gray + alpha, 8-bit */
    uint8_t ga[2 * 3 * 2];
    for (int i = 0; i < 12; i++)
        ga[i] = (uint8_t)(i * 20 + 3);
    raw_png r = {3, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, ga, 6};
    const char *path = tmp_path("ga.png");
    write_raw_png(path, &r);
    int rc = media_image_read(path, &img, &err);
    CHECK(rc == EV_OK && img.channels == 2 && img.bit_depth == 8 && img.width == 3 &&
              img.height == 2 && memcmp(img.data, ga, 12) == 0,
          "gray+alpha PNG read as 2 channels with alpha kept");
    if (rc == EV_OK) {
        ev_frame frame;
        rc = media_image_as_frame(&img, &frame, &err);
        CHECK(rc == EV_ERR_UNSUPPORTED && strstr(err.message, "media_image_to_gray8"),
              "gray+alpha has no frame format: \"%s\"", err.message);
        media_image gray;
        rc = media_image_to_gray8(&img, &gray, &err);
        CHECK(rc == EV_OK && gray.data[0] == 3 && gray.data[1] == 43 && gray.data[5] == 203,
              "gray+alpha to gray8 drops alpha");
        if (rc == EV_OK)
            media_image_free(&gray);
        media_image_free(&img);
    }

    /* palette, 4-bit, no transparency: RGB out */
    static const png_color palette[3] = {{10, 20, 30}, {200, 100, 50}, {255, 255, 255}};
    uint8_t idx[2] = {0x01, 0x20}; /* pixels: 0,1,2,0 */
    r = (raw_png){4, 1, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, palette, 3, NULL, 0, idx, 2};
    path = tmp_path("palette.png");
    write_raw_png(path, &r);
    rc = media_image_read(path, &img, &err);
    static const uint8_t rgb[12] = {10, 20, 30, 200, 100, 50, 255, 255, 255, 10, 20, 30};
    CHECK(rc == EV_OK && img.channels == 3 && img.bit_depth == 8 && img.width == 4 &&
              memcmp(img.data, rgb, 12) == 0,
          "4-bit palette PNG expanded to RGB %s", rc ? err.message : "");
    if (rc == EV_OK)
        media_image_free(&img);

    /* palette with tRNS: RGBA out */
    static const png_byte trans[2] = {0, 128};
    r.trans = trans;
    r.trans_size = 2;
    path = tmp_path("palette_trns.png");
    write_raw_png(path, &r);
    rc = media_image_read(path, &img, &err);
    static const uint8_t rgba[16] = {10,  20,  30,  0,   200, 100, 50, 128,
                                     255, 255, 255, 255, 10,  20,  30, 0};
    CHECK(rc == EV_OK && img.channels == 4 && memcmp(img.data, rgba, 16) == 0,
          "palette PNG with tRNS expanded to RGBA");
    if (rc == EV_OK)
        media_image_free(&img);

    /* 1-bit gray: 0/255 */
    uint8_t bits[1] = {0xa0}; /* 1,0,1 */
    r = (raw_png){3, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, NULL, 0, NULL, 0, bits, 1};
    path = tmp_path("bits.png");
    write_raw_png(path, &r);
    rc = media_image_read(path, &img, &err);
    CHECK(rc == EV_OK && img.channels == 1 && img.bit_depth == 8 && img.data[0] == 255 &&
              img.data[1] == 0 && img.data[2] == 255,
          "1-bit gray PNG expanded to 8-bit 0/255");
    if (rc == EV_OK)
        media_image_free(&img);

    /* interlaced 16-bit gray: values in host order */
    uint8_t be[9 * 7 * 2];
    for (int i = 0; i < 63; i++) {
        be[2 * i] = (uint8_t)(i * 4);
        be[2 * i + 1] = (uint8_t)(255 - i);
    }
    r = (raw_png){9, 7, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_ADAM7, NULL, 0, NULL, 0, be, 18};
    path = tmp_path("adam7.png");
    write_raw_png(path, &r);
    rc = media_image_read(path, &img, &err);
    bool same = rc == EV_OK && img.bit_depth == 16 && img.channels == 1;
    for (int i = 0; same && i < 63; i++)
        same = sample16(&img, i % 9, i / 9, 0) == (uint16_t)((i * 4) << 8 | (255 - i));
    CHECK(same, "interlaced 16-bit PNG read in host order");
    if (rc == EV_OK) {
        ev_frame frame;
        rc = media_image_as_frame(&img, &frame, &err);
        CHECK(rc == EV_OK && frame.format == EV_PIXEL_GRAY16 && frame.stride == 18 &&
                  frame.width == 9 && frame.height == 7,
              "16-bit gray image is a GRAY16 frame");
        media_image_free(&img);
    }
}

static void test_pnm_read(void)
{
    ev_error err = {0};
    media_image img;

    static const char p6[] = "P6\n# made by hand\n2 1 # width height\n255\n"
                             "\x01\x02\x03\xfa\xfb\xfc";
    int rc = media_image_read_memory((const uint8_t *)p6, sizeof p6 - 1, &img, &err);
    static const uint8_t p6_pixels[6] = {1, 2, 3, 250, 251, 252};
    CHECK(rc == EV_OK && img.channels == 3 && img.bit_depth == 8 && img.width == 2 &&
              img.height == 1 && memcmp(img.data, p6_pixels, 6) == 0,
          "PPM (P6) with comments read %s", rc ? err.message : "");
    if (rc == EV_OK) {
        ev_frame frame;
        rc = media_image_as_frame(&img, &frame, &err);
        CHECK(rc == EV_OK && frame.format == EV_PIXEL_RGB && frame.data == img.data,
              "RGB image is an RGB frame without a copy");
        media_image_free(&img);
    }

    static const char p3[] = "P3 2 2 255\n255 0 0  0 255 0\n0 0 255  7 8 9\n";
    rc = media_image_read_memory((const uint8_t *)p3, sizeof p3 - 1, &img, &err);
    static const uint8_t p3_pixels[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 7, 8, 9};
    CHECK(rc == EV_OK && img.channels == 3 && memcmp(img.data, p3_pixels, 12) == 0,
          "ASCII PPM (P3) read");
    if (rc == EV_OK)
        media_image_free(&img);

    static const char p2[] = "P2\n3 1\n4095\n0 2048 4095";
    rc = media_image_read_memory((const uint8_t *)p2, sizeof p2 - 1, &img, &err);
    CHECK(rc == EV_OK && img.bit_depth == 16 && sample16(&img, 0, 0, 0) == 0 &&
              sample16(&img, 1, 0, 0) == 2048 && sample16(&img, 2, 0, 0) == 4095,
          "ASCII PGM (P2) maxval 4095: 16-bit, raw values kept");
    if (rc == EV_OK)
        media_image_free(&img);

    static const char p5[] = "P5 3 1 100\n\x00\x32\x64";
    rc = media_image_read_memory((const uint8_t *)p5, sizeof p5 - 1, &img, &err);
    CHECK(rc == EV_OK && img.bit_depth == 8 && sample8(&img, 1, 0, 0) == 50 &&
              sample8(&img, 2, 0, 0) == 100,
          "PGM maxval 100: 8-bit, raw values kept (not rescaled)");
    if (rc == EV_OK)
        media_image_free(&img);
}

static void test_gray8(void)
{
    ev_error err = {0};
    media_image img, gray;
    static const uint8_t colours[][3] = {{255, 0, 0},     {0, 255, 0}, {0, 0, 255},
                                         {255, 255, 255}, {0, 0, 0},   {128, 128, 128},
                                         {10, 200, 30},   {1, 1, 2}};
    /* round(0.299 R + 0.587 G + 0.114 B): 76.245, 149.685, 29.07, 255, 0, 128, 123.81, 1.114 */
    static const uint8_t expect[] = {76, 150, 29, 255, 0, 128, 124, 1};
    media_image_alloc(&img, 8, 1, 3, 8, &err);
    memcpy(img.data, colours, sizeof colours);
    int rc = media_image_to_gray8(&img, &gray, &err);
    CHECK(rc == EV_OK && gray.channels == 1 && gray.bit_depth == 8 &&
              memcmp(gray.data, expect, 8) == 0,
          "RGB to gray8: BT.601 rounded (76 150 29 255 0 128 124 1)");
    if (rc == EV_OK)
        media_image_free(&gray);
    media_image_free(&img);

    media_image_alloc(&img, 2, 1, 4, 8, &err);
    static const uint8_t rgba[8] = {255, 0, 0, 0, 0, 0, 255, 255};
    memcpy(img.data, rgba, 8);
    rc = media_image_to_gray8(&img, &gray, &err);
    CHECK(rc == EV_OK && gray.data[0] == 76 && gray.data[1] == 29, "RGBA to gray8 ignores alpha");
    if (rc == EV_OK)
        media_image_free(&gray);
    media_image_free(&img);

    media_image_alloc(&img, 3, 1, 1, 16, &err);
    uint16_t v[3] = {0x12ff, 0xffff, 0x00ff};
    memcpy(img.data, v, 6);
    rc = media_image_to_gray8(&img, &gray, &err);
    CHECK(rc == EV_OK && gray.data[0] == 0x12 && gray.data[1] == 0xff && gray.data[2] == 0,
          "16-bit gray to gray8 keeps the high byte");
    if (rc == EV_OK)
        media_image_free(&gray);
    media_image_free(&img);

    media_image_alloc(&img, 1, 1, 3, 16, &err);
    uint16_t white[3] = {65535, 65535, 65535};
    memcpy(img.data, white, 6);
    rc = media_image_to_gray8(&img, &gray, &err);
    CHECK(rc == EV_OK && gray.data[0] == 255, "16-bit RGB white to gray8 is 255");
    if (rc == EV_OK)
        media_image_free(&gray);
    ev_frame frame;
    rc = media_image_as_frame(&img, &frame, &err);
    CHECK(rc == EV_ERR_UNSUPPORTED, "16-bit RGB has no frame format: \"%s\"", err.message);
    media_image_free(&img);
}

/* Expects code and every fragment in the message. */
static void expect_error(int rc, const ev_error *err, int code, const char *what, const char *frag1,
                         const char *frag2)
{
    bool ok = rc == code && err->code == code && (!frag1 || strstr(err->message, frag1)) &&
              (!frag2 || strstr(err->message, frag2));
    CHECK(ok, "%s -> %d \"%s\"", what, rc, err->message);
}

static void expect_read_error(const char *bytes, size_t size, int code, const char *what,
                              const char *frag1, const char *frag2)
{
    media_image img = {.data = (uint8_t *)1}; /* must be cleared on failure */
    ev_error err = {0};
    int rc = media_image_read_memory((const uint8_t *)bytes, size, &img, &err);
    expect_error(rc, &err, code, what, frag1, frag2);
    CHECK(img.data == NULL, "%s leaves the output empty", what);
    if (rc == EV_OK)
        media_image_free(&img);
}

static void test_bad_inputs(void)
{
    ev_error err = {0};
    media_image img;

    /* truncated PNG: noise so the data does not compress */
    media_image noise;
    media_image_alloc(&noise, 64, 64, 3, 8, &err);
    fill_pattern(&noise, 7);
    const char *path = tmp_path("noise.png");
    media_image_write_png(path, &noise, &err);
    media_image_free(&noise);
    size_t size = 0;
    uint8_t *bytes = slurp(path, &size);
    expect_read_error((const char *)bytes, size / 2, EV_ERR_FORMAT, "PNG cut in the middle",
                      "<memory>: bad PNG", "truncated");
    expect_read_error((const char *)bytes, 60, EV_ERR_FORMAT, "PNG cut after the header", "bad PNG",
                      "truncated");
    expect_read_error((const char *)bytes, 5, EV_ERR_FORMAT, "PNG cut in the signature", "bad PNG",
                      "truncated");
    const char *cut = tmp_path("cut.png");
    spit(cut, bytes, size / 2);
    int rc = media_image_read(cut, &img, &err);
    expect_error(rc, &err, EV_ERR_FORMAT, "truncated PNG file names the file", cut, "truncated");
    /* corrupt IHDR checksum */
    bytes[20] ^= 0xff;
    expect_read_error((const char *)bytes, size, EV_ERR_FORMAT, "PNG with a bad IHDR CRC",
                      "bad PNG", "CRC");
    free(bytes);

    /* hostile PNG headers */
    uint8_t png[128];
    size_t n = make_png_header(png, 0, 10);
    expect_read_error((const char *)png, n, EV_ERR_FORMAT, "PNG width 0", "bad PNG",
                      "width is zero");
    n = make_png_header(png, 20000, 10);
    expect_read_error((const char *)png, n, EV_ERR_FORMAT, "PNG width 20000",
                      "width 20000 is out of range", NULL);
    n = make_png_header(png, 10, 16385);
    expect_read_error((const char *)png, n, EV_ERR_FORMAT, "PNG height 16385",
                      "height 16385 is out of range", NULL);
    n = make_png_header(png, 16384, 16384);
    expect_read_error((const char *)png, n, EV_ERR_FORMAT,
                      "PNG 16384x16384 with 12 bytes of data (no allocation)", "cannot hold",
                      "truncated");
    n = make_png_header(png, 4, 4);
    expect_read_error((const char *)png, n, EV_ERR_FORMAT, "PNG with garbage image data", "bad PNG",
                      NULL);

    /* PGM/PPM */
    static const char body[] = "P5\n4 4\n255\n0123456789";
    expect_read_error(body, sizeof body - 1, EV_ERR_FORMAT, "truncated PGM body", "truncated PGM",
                      "needs 16 bytes");
    static const char body16[] = "P6\n2 2\n65535\n0123456789abcdef";
    expect_read_error(body16, sizeof body16 - 1, EV_ERR_FORMAT, "truncated 16-bit PPM body",
                      "truncated PPM", "needs 24 bytes");
    static const char header[] = "P5\n4 4\n";
    expect_read_error(header, sizeof header - 1, EV_ERR_FORMAT, "PGM cut before maxval",
                      "truncated before the maxval", NULL);
    static const char magic[] = "GIF89a\x01\x00\x01\x00";
    expect_read_error(magic, sizeof magic - 1, EV_ERR_FORMAT, "bad magic", "bad magic", NULL);
    static const char p7[] = "P7\nWIDTH 1\n";
    expect_read_error(p7, sizeof p7 - 1, EV_ERR_UNSUPPORTED, "PAM", "P7", NULL);
    static const char p4[] = "P4\n8 1\n\xff";
    expect_read_error(p4, sizeof p4 - 1, EV_ERR_UNSUPPORTED, "PBM", "P1/P4", NULL);
    static const char zero_w[] = "P5\n0 4\n255\n";
    expect_read_error(zero_w, sizeof zero_w - 1, EV_ERR_FORMAT, "PGM width 0",
                      "PGM width 0 is out of range", NULL);
    static const char zero_h[] = "P6 4 0 255\n";
    expect_read_error(zero_h, sizeof zero_h - 1, EV_ERR_FORMAT, "PPM height 0",
                      "PPM height 0 is out of range", NULL);
    static const char huge[] = "P5\n99999999999999999999 4\n255\n";
    expect_read_error(huge, sizeof huge - 1, EV_ERR_FORMAT, "PGM width 10^20 (no overflow)",
                      "width", "out of range (1..16384)");
    static const char huge_h[] = "P5\n16 16385\n255\n";
    expect_read_error(huge_h, sizeof huge_h - 1, EV_ERR_FORMAT, "PGM height 16385",
                      "height 16385 is out of range", NULL);
    static const char big_ok[] = "P5\n16384 16384\n255\n\x01";
    expect_read_error(big_ok, sizeof big_ok - 1, EV_ERR_FORMAT,
                      "PGM 16384x16384 with one byte (no allocation)", "needs 268435456 bytes",
                      NULL);
    static const char maxval0[] = "P5\n2 2\n0\n\0\0\0\0";
    expect_read_error(maxval0, sizeof maxval0 - 1, EV_ERR_FORMAT, "PGM maxval 0",
                      "maxval 0 is out of range", NULL);
    static const char maxval_big[] = "P5\n1 1\n65536\n\0\0";
    expect_read_error(maxval_big, sizeof maxval_big - 1, EV_ERR_FORMAT, "PGM maxval 65536",
                      "maxval 65536 is out of range", NULL);
    static const char above[] = "P5\n2 1\n100\n\x10\x65";
    expect_read_error(above, sizeof above - 1, EV_ERR_FORMAT, "PGM sample above maxval",
                      "sample 1 is 101, above maxval 100", NULL);
    static const char letters[] = "P5\nabc 4\n255\n";
    expect_read_error(letters, sizeof letters - 1, EV_ERR_FORMAT, "PGM width not a number",
                      "width is not a number", NULL);
    static const char nospace[] = "P5\n1 1\n255";
    expect_read_error(nospace, sizeof nospace - 1, EV_ERR_FORMAT, "PGM ending at the maxval",
                      "truncated after the maxval", NULL);
    static const char ascii_cut[] = "P2\n3 2\n255\n1 2 3 4  ";
    expect_read_error(ascii_cut, sizeof ascii_cut - 1, EV_ERR_FORMAT, "truncated P2 body",
                      "truncated PGM", NULL);
    static const char ascii_bad[] = "P2\n2 1\n255\n1 x   ";
    expect_read_error(ascii_bad, sizeof ascii_bad - 1, EV_ERR_FORMAT, "P2 with a letter",
                      "bad sample in PGM at sample 1", NULL);
    expect_read_error("", 0, EV_ERR_FORMAT, "empty input", "empty", NULL);

    /* files */
    const char *missing = tmp_path("does-not-exist.png");
    rc = media_image_read(missing, &img, &err);
    expect_error(rc, &err, EV_ERR_IO, "nonexistent file", missing, "No such file");
    const char *empty = tmp_path("empty.pgm");
    spit(empty, "", 0);
    rc = media_image_read(empty, &img, &err);
    expect_error(rc, &err, EV_ERR_FORMAT, "empty file", empty, "empty");

    /* writers and helpers */
    media_image ga;
    media_image_alloc(&ga, 2, 2, 2, 8, &err);
    path = tmp_path("ga.pgm");
    rc = media_image_write_pgm(path, &ga, &err);
    expect_error(rc, &err, EV_ERR_INVALID, "PGM writer refuses 2 channels", "1 or 3 channels",
                 NULL);
    CHECK(access(path, F_OK) != 0, "no file left behind by a refused write");
    rc = media_image_write_png(tmp_path("no/such/dir.png"), &ga, &err);
    expect_error(rc, &err, EV_ERR_IO, "PNG writer into a missing folder", "cannot create", NULL);
    ga.bit_depth = 12;
    rc = media_image_write_png(tmp_path("x.png"), &ga, &err);
    expect_error(rc, &err, EV_ERR_INVALID, "PNG writer refuses bit depth 12", "bit depth 12", NULL);
    ga.bit_depth = 8;
    ga.stride = 1;
    rc = media_image_write_png(tmp_path("x.png"), &ga, &err);
    expect_error(rc, &err, EV_ERR_INVALID, "PNG writer refuses a short stride", "stride 1", NULL);
    media_image_free(&ga);
    rc = media_image_alloc(&img, 0, 5, 1, 8, &err);
    expect_error(rc, &err, EV_ERR_INVALID, "alloc width 0", "out of range", NULL);
    rc = media_image_alloc(&img, 5, 5, 5, 8, &err);
    expect_error(rc, &err, EV_ERR_INVALID, "alloc 5 channels", "5 channels", NULL);
    rc = media_image_read_memory(NULL, 4, &img, &err);
    expect_error(rc, &err, EV_ERR_INVALID, "read_memory NULL bytes", "NULL", NULL);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/echoview-test-image-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trips();
    test_png_colour_types();
    test_pnm_read();
    test_gray8();
    test_bad_inputs();

    static const char *names[] = {"round.png", "round.pnm",   "endian.pgm",       "padded.png",
                                  "ga.png",    "palette.png", "palette_trns.png", "bits.png",
                                  "adam7.png", "noise.png",   "cut.png",          "empty.pgm",
                                  "ga.pgm",    "x.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        remove(tmp_path(names[i]));
    rmdir(tmpdir);
    return test_finish();
}
