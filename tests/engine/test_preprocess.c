/* test_preprocess.c: the frame-to-tensor path (engine/preprocess.c) against hand-computed and
 * double-precision references: identity is an exact copy, area resize with whole and fractional
 * pixel coverage, every pixel format gives the same tensor, RGB order, normalisation, roi crop,
 * model parameters, ultrasound sector detection on a synthetic scanner frame with overlays,
 * sector normalisation (hand-computed ranks, gain invariance, the sector's mean, the bundle key)
 * and bad inputs with their messages. Prints one line per check; exits 0 when all pass. */
#include "ev_bundle.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



static ev_preprocess_params plain(int w, int h, int c)
{
    ev_preprocess_params p = {w, h, c, 1.0f, {0, 0, 0}, {1, 1, 1}, EV_NORMALIZE_NONE};
    return p;
}

static double max_abs_diff(const float *a, const double *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > worst || isnan(d))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* Independent reference: footprints as real intervals, overlap computed in double. */
static void reference_area(const double *src, int sw, int sh, int dw, int dh, double *dst)
{
    double fx = (double)sw / dw, fy = (double)sh / dh;
    for (int oy = 0; oy < dh; oy++)
        for (int ox = 0; ox < dw; ox++) {
            double y0 = oy * fy, y1 = (oy + 1) * fy, x0 = ox * fx, x1 = (ox + 1) * fx;
            double sum = 0, weight = 0;
            for (int sy = 0; sy < sh; sy++)
                for (int sx = 0; sx < sw; sx++) {
                    double oy_ = fmin(y1, sy + 1.0) - fmax(y0, (double)sy);
                    double ox_ = fmin(x1, sx + 1.0) - fmax(x0, (double)sx);
                    if (oy_ > 0 && ox_ > 0) {
                        sum += oy_ * ox_ * src[sy * sw + sx];
                        weight += oy_ * ox_;
                    }
                }
            dst[oy * dw + ox] = sum / weight;
        }
}

static void test_identity_and_resize(void)
{
    ev_error err = {0};
    uint64_t rng = 42;

    /* identity with a padded stride: an exact copy */
    enum { W = 13, H = 7, STRIDE = 16 };
    uint8_t gray[STRIDE * H];
    for (size_t i = 0; i < sizeof gray; i++)
        gray[i] = (uint8_t)ev_rng_next(&rng);
    ev_frame frame = {gray, W, H, STRIDE, EV_PIXEL_GRAY8};
    ev_preprocess_params p = plain(W, H, 1);
    float out[W * H * 3];
    int rc = ev_preprocess(&p, &frame, NULL, out, &err);
    bool exact = rc == EV_OK;
    for (int y = 0; exact && y < H; y++)
        for (int x = 0; x < W; x++)
            exact = exact && out[y * W + x] == (float)gray[y * STRIDE + x];
    CHECK(exact, "identity GRAY8 13x7 (stride 16): exact copy");

    uint8_t rgb[W * H * 3];
    for (size_t i = 0; i < sizeof rgb; i++)
        rgb[i] = (uint8_t)ev_rng_next(&rng);
    frame = (ev_frame){rgb, W, H, W * 3, EV_PIXEL_RGB};
    p = plain(W, H, 3);
    rc = ev_preprocess(&p, &frame, NULL, out, &err);
    exact = rc == EV_OK;
    for (int c = 0; exact && c < 3; c++)
        for (int i = 0; i < W * H; i++)
            exact = exact && out[c * W * H + i] == (float)rgb[i * 3 + c];
    CHECK(exact, "identity RGB 13x7 to 3 planes: exact copy");

    /* 4x4 -> 2x2: means of 2x2 blocks, by hand */
    static const uint8_t four[16] = {0,  10, 20,  30,  40,  50,  60,  70,
                                     80, 90, 100, 110, 120, 130, 140, 255};
    frame = (ev_frame){four, 4, 4, 4, EV_PIXEL_GRAY8};
    p = plain(2, 2, 1);
    rc = ev_preprocess(&p, &frame, NULL, out, &err);
    double expect4[4] = {(0 + 10 + 40 + 50) / 4.0, (20 + 30 + 60 + 70) / 4.0,
                         (80 + 90 + 120 + 130) / 4.0, (100 + 110 + 140 + 255) / 4.0};
    CHECK(rc == EV_OK && max_abs_diff(out, expect4, 4) < 1e-5,
          "4x4 -> 2x2 area: %.4f %.4f %.4f %.4f", out[0], out[1], out[2], out[3]);

    /* 3x3 -> 2x2: each output covers 1.5 x 1.5 source pixels; weights 1, 0.5, 0.25 / 2.25 */
    static const uint8_t three[9] = {10, 20, 30, 40, 50, 60, 70, 80, 250};
    frame = (ev_frame){three, 3, 3, 3, EV_PIXEL_GRAY8};
    rc = ev_preprocess(&p, &frame, NULL, out, &err);
    const double a = 10, b = 20, c = 30, d = 40, e = 50, f = 60, g = 70, h = 80, i = 250;
    double expect3[4] = {
        (a + 0.5 * b + 0.5 * d + 0.25 * e) / 2.25, (c + 0.5 * b + 0.5 * f + 0.25 * e) / 2.25,
        (g + 0.5 * h + 0.5 * d + 0.25 * e) / 2.25, (i + 0.5 * h + 0.5 * f + 0.25 * e) / 2.25};
    CHECK(rc == EV_OK && max_abs_diff(out, expect3, 4) < 1e-5,
          "3x3 -> 2x2 fractional area: %.5f %.5f %.5f %.5f (expect %.5f %.5f %.5f %.5f)", out[0],
          out[1], out[2], out[3], expect3[0], expect3[1], expect3[2], expect3[3]);

    /* random sizes, down and up, against the real-interval reference */
    static const int sizes[][4] = {{17, 11, 5, 4}, {3, 2, 7, 5}, {31, 29, 9, 13},
                                   {8, 8, 3, 3},   {1, 1, 4, 3}, {50, 3, 7, 2}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int sw = sizes[k][0], sh = sizes[k][1], dw = sizes[k][2], dh = sizes[k][3];
        uint8_t *src = malloc((size_t)sw * sh);
        double *srcd = malloc(sizeof *srcd * (size_t)sw * sh);
        double *ref = malloc(sizeof *ref * (size_t)dw * dh);
        float *got = malloc(sizeof *got * (size_t)dw * dh);
        for (int n = 0; n < sw * sh; n++)
            srcd[n] = src[n] = (uint8_t)ev_rng_next(&rng);
        reference_area(srcd, sw, sh, dw, dh, ref);
        frame = (ev_frame){src, sw, sh, sw, EV_PIXEL_GRAY8};
        p = plain(dw, dh, 1);
        rc = ev_preprocess(&p, &frame, NULL, got, &err);
        double diff = max_abs_diff(got, ref, (size_t)dw * dh);
        CHECK(rc == EV_OK && diff < 1e-4,
              "area %dx%d -> %dx%d vs double reference (max |diff| %.2g)", sw, sh, dw, dh, diff);
        free(src);
        free(srcd);
        free(ref);
        free(got);
    }
}

/* Writes gray value v of a pixel in every format's layout. */
static void put_gray(uint8_t *p, ev_pixel_format format, uint8_t v)
{
    switch (format) {
    case EV_PIXEL_GRAY16: {
        uint16_t v16 = (uint16_t)(v * 257);
        memcpy(p, &v16, 2);
        break;
    }
    case EV_PIXEL_RGBX:
    case EV_PIXEL_BGRX:
    case EV_PIXEL_RGBA:
    case EV_PIXEL_BGRA:
        p[0] = p[1] = p[2] = v;
        p[3] = 77; /* padding/alpha must be ignored */
        break;
    case EV_PIXEL_XRGB:
    case EV_PIXEL_XBGR:
        p[0] = 77;
        p[1] = p[2] = p[3] = v;
        break;
    default:
        memset(p, v, (size_t)ev_pixel_format_bytes(format));
        break;
    }
}

/* Writes r, g, b in the format's order. */
static void put_rgb(uint8_t *p, ev_pixel_format format, uint8_t r, uint8_t g, uint8_t b)
{
    switch (format) {
    case EV_PIXEL_RGB:
        p[0] = r, p[1] = g, p[2] = b;
        break;
    case EV_PIXEL_BGR:
        p[0] = b, p[1] = g, p[2] = r;
        break;
    case EV_PIXEL_RGBX:
    case EV_PIXEL_RGBA:
        p[0] = r, p[1] = g, p[2] = b, p[3] = 99;
        break;
    case EV_PIXEL_BGRX:
    case EV_PIXEL_BGRA:
        p[0] = b, p[1] = g, p[2] = r, p[3] = 99;
        break;
    case EV_PIXEL_XRGB:
        p[0] = 99, p[1] = r, p[2] = g, p[3] = b;
        break;
    case EV_PIXEL_XBGR:
        p[0] = 99, p[1] = b, p[2] = g, p[3] = r;
        break;
    default:
        break;
    }
}

static void test_formats(void)
{
    ev_error err = {0};
    static const char *names[] = {"GRAY8", "GRAY16", "RGB",  "BGR",  "RGBX", "BGRX",
                                  "XRGB",  "XBGR",   "RGBA", "BGRA", "I420", "NV12"};
    static const int bytes[] = {1, 2, 3, 3, 4, 4, 4, 4, 4, 4, 1, 1};
    bool sizes_ok = ev_pixel_format_bytes((ev_pixel_format)99) == 0 &&
                    ev_pixel_format_bytes((ev_pixel_format)-1) == 0;
    for (int f = 0; f <= EV_PIXEL_NV12; f++)
        sizes_ok = sizes_ok && ev_pixel_format_bytes((ev_pixel_format)f) == bytes[f];
    CHECK(sizes_ok, "ev_pixel_format_bytes for every format, 0 for unknown");

    /* the same gray picture in every format gives the same tensor, 1 and 3 channels */
    enum { W = 11, H = 9, OW = 5, OH = 4 };
    uint8_t picture[W * H];
    uint64_t rng = 7;
    for (int i = 0; i < W * H; i++)
        picture[i] = (uint8_t)ev_rng_next(&rng);
    float gold1[OW * OH], gold3[3 * OW * OH], got[3 * OW * OH];
    ev_preprocess_params p1 = plain(OW, OH, 1), p3 = plain(OW, OH, 3);
    for (int f = 0; f <= EV_PIXEL_NV12; f++) {
        int bpp = bytes[f], stride = W * bpp + 3;
        uint8_t *data = calloc((size_t)stride * H, 1);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                put_gray(data + y * stride + x * bpp, (ev_pixel_format)f, picture[y * W + x]);
        ev_frame frame = {data, W, H, stride, (ev_pixel_format)f};
        int rc = ev_preprocess(&p1, &frame, NULL, f == 0 ? gold1 : got, &err);
        if (f > 0)
            CHECK(rc == EV_OK && memcmp(got, gold1, sizeof gold1) == 0,
                  "%s gray picture -> same 1-channel tensor as GRAY8", names[f]);
        rc = ev_preprocess(&p3, &frame, NULL, f == 0 ? gold3 : got, &err);
        if (f > 0)
            CHECK(rc == EV_OK && memcmp(got, gold3, sizeof gold3) == 0,
                  "%s gray picture -> same 3-channel tensor as GRAY8", names[f]);
        else
            CHECK(rc == EV_OK && memcmp(gold3, gold1, sizeof gold1) == 0 &&
                      memcmp(gold3 + OW * OH, gold1, sizeof gold1) == 0 &&
                      memcmp(gold3 + 2 * OW * OH, gold1, sizeof gold1) == 0,
                  "GRAY8 to 3 channels replicates luma");
        free(data);
    }

    /* GRAY16 maps by /257: 65535 -> 255, 257 -> 1, 32768 -> 127.502 */
    uint16_t g16[3] = {65535, 257, 32768};
    ev_frame frame = {(const uint8_t *)g16, 3, 1, 6, EV_PIXEL_GRAY16};
    ev_preprocess_params p = plain(3, 1, 1);
    float o16[3];
    int rc = ev_preprocess(&p, &frame, NULL, o16, &err);
    CHECK(rc == EV_OK && o16[0] == 255.0f && o16[1] == 1.0f &&
              fabs(o16[2] - 32768.0 / 257.0) < 1e-4,
          "GRAY16 divided by 257: %g %g %g", o16[0], o16[1], o16[2]);

    /* colour: RGB order for 3 channels, BT.601 luma for 1, in every colour layout */
    static const uint8_t colours[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 200, 30}};
    for (int f = EV_PIXEL_RGB; f <= EV_PIXEL_BGRA; f++) {
        uint8_t data[4 * 4];
        for (int k = 0; k < 4; k++)
            put_rgb(data + k * bytes[f], (ev_pixel_format)f, colours[k][0], colours[k][1],
                    colours[k][2]);
        frame = (ev_frame){data, 4, 1, 4 * bytes[f], (ev_pixel_format)f};
        p = plain(4, 1, 3);
        float o[12];
        rc = ev_preprocess(&p, &frame, NULL, o, &err);
        bool ok = rc == EV_OK;
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 3; c++)
                ok = ok && o[c * 4 + k] == colours[k][c];
        CHECK(ok, "%s to 3 channels keeps R, G, B plane order", names[f]);
        p = plain(4, 1, 1);
        rc = ev_preprocess(&p, &frame, NULL, o, &err);
        double luma[4] = {76.245, 149.685, 29.07, 0.299 * 10 + 0.587 * 200 + 0.114 * 30};
        CHECK(rc == EV_OK && max_abs_diff(o, luma, 4) < 1e-4,
              "%s to 1 channel is BT.601 luma (%.3f %.3f %.3f %.3f)", names[f], o[0], o[1], o[2],
              o[3]);
    }
}

/* DARTS_V2, the genotype of the tiny model below (its cells' ops do not matter here) */
static const char *const tiny_genotype =
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

static void test_normalise_roi_model(void)
{
    ev_error err = {0};
    static const uint8_t px[2 * 3] = {0, 51, 102, 153, 204, 255}; /* 2 RGB pixels */
    ev_frame frame = {px, 2, 1, 6, EV_PIXEL_RGB};
    ev_preprocess_params p = {2, 1, 3, 1.0f / 255.0f, {0.5f, 0.4f, 0.3f}, {0.25f, 0.2f, 0.1f},
                              EV_NORMALIZE_NONE};
    float o[6];
    int rc = ev_preprocess(&p, &frame, NULL, o, &err);
    double expect[6];
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 2; x++)
            expect[c * 2 + x] = (px[x * 3 + c] / 255.0 - p.mean[c]) / p.std[c];
    CHECK(rc == EV_OK && max_abs_diff(o, expect, 6) < 1e-5,
          "normalise (p/255 - mean[c]) / std[c] per channel: %.4f .. %.4f", o[0], o[5]);

    /* roi: the crop of a 20x10 frame equals the same pixels as their own frame */
    enum { W = 20, H = 10 };
    uint8_t big[W * H];
    uint64_t rng = 3;
    for (int i = 0; i < W * H; i++)
        big[i] = (uint8_t)ev_rng_next(&rng);
    ev_rect roi = {3, 2, 8, 5};
    frame = (ev_frame){big, W, H, W, EV_PIXEL_GRAY8};
    p = plain(8, 5, 1);
    float crop[40], sub[40], small[6];
    rc = ev_preprocess(&p, &frame, &roi, crop, &err);
    bool exact = rc == EV_OK;
    for (int y = 0; exact && y < 5; y++)
        for (int x = 0; x < 8; x++)
            exact = exact && crop[y * 8 + x] == big[(y + 2) * W + x + 3];
    CHECK(exact, "roi 8x5 at (3,2) to 8x5: exact copy of the crop");
    ev_frame inner = {big + 2 * W + 3, 8, 5, W, EV_PIXEL_GRAY8};
    p = plain(3, 2, 1);
    rc = ev_preprocess(&p, &frame, &roi, small, &err);
    int rc2 = ev_preprocess(&p, &inner, NULL, sub, &err);
    CHECK(rc == EV_OK && rc2 == EV_OK && memcmp(small, sub, sizeof small) == 0,
          "roi resize equals resizing the cropped frame");
    ev_rect whole = {0, 0, W, H};
    float a[6], b[6];
    rc = ev_preprocess(&p, &frame, &whole, a, &err);
    rc2 = ev_preprocess(&p, &frame, NULL, b, &err);
    CHECK(rc == EV_OK && rc2 == EV_OK && memcmp(a, b, sizeof a) == 0,
          "roi of the whole frame equals no roi");

    /* model parameters: a one-cell network at the model's 3x2 RGB input */
    ev_net_config cfg = {.init_channels = 2,
                         .num_cells = 1,
                         .in_channels = 3,
                         .num_classes = 2,
                         .input_width = 3,
                         .input_height = 2};
    ev_net *net = NULL;
    ev_model *model = NULL;
    const char *const names[2] = {"left", "right"};
    ev_model_info info = {
        .name = "tiny", .class_names = (char *const *)names, .scale = 1.0f / 255.0f};
    for (int c = 0; c < 3; c++) {
        info.mean[c] = 0.1f * (float)c;
        info.std[c] = 0.5f + (float)c;
    }
    rc = ev_genotype_parse(tiny_genotype, &cfg.genotype, &err);
    if (!rc)
        rc = ev_net_create(&cfg, 1, false, &net, &err);
    if (!rc)
        rc = ev_model_from_net(net, &info, &model, &err);
    CHECK(rc == EV_OK, "a 3x2 model from a network in memory (%s)", rc ? err.message : "ok");
    if (rc)
        return;
    ev_preprocess_params mp;
    ev_model_preprocess_params(model, &mp);
    CHECK(mp.width == 3 && mp.height == 2 && mp.channels == 3 && mp.scale == info.scale &&
              mp.mean[2] == info.mean[2] && mp.std[1] == info.std[1],
          "ev_model_preprocess_params copies geometry and normalisation");
    float via_model[18], via_params[18];
    rc = ev_preprocess_frame(model, &frame, &roi, via_model, &err);
    rc2 = ev_preprocess(&mp, &frame, &roi, via_params, &err);
    CHECK(rc == EV_OK && rc2 == EV_OK && memcmp(via_model, via_params, sizeof via_model) == 0,
          "ev_preprocess_frame equals ev_preprocess with the model's params");
    ev_rect outside = {15, 2, 8, 5};
    rc = ev_preprocess_frame(model, &frame, &outside, via_model, &err);
    CHECK(rc == EV_ERR_INVALID && strstr(err.message, "model tiny: ") &&
              strstr(err.message, "not inside the 20x10 frame"),
          "ev_preprocess_frame error names the model: \"%s\"", err.message);
    ev_model_free(model);
}

static void test_sector_normalise(void)
{
    /* hand-computed: n = 8, the 99th percentile is 255 (level 1023), the floor level is
     * int(0.08 * 1023) = 81 (value 20.25), so 30, 40 and 255 are the sector and get
     * 255 x mid-rank / 3; the rest, 20 included, become 0 */
    float v[8] = {0, 0, 10, 20, 20, 30, 40, 255};
    const float want[8] = {0, 0, 0, 0, 0, 42.5f, 127.5f, 212.5f};
    ev_normalize_sector(v, 4, 2);
    bool same = true;
    for (int i = 0; i < 8; i++)
        same = same && fabsf(v[i] - want[i]) < 1e-4f;
    CHECK(same, "sector normalisation of {0,0,10,20,20,30,40,255}: {0 x5, 42.5, 127.5, 212.5}");

    /* an increasing grey map (gain 0.5 then a square root) leaves the output unchanged */
    enum { N = 40 * 30 };
    float a[N], b[N];
    uint64_t rng = 11;
    for (int i = 0; i < N; i++) {
        const bool sector = (i % 40) > 5 && (i % 40) < 34 && i / 40 > 3;
        const float x = sector ? 40.0f + 4.0f * (float)(ev_rng_next(&rng) % 40) : 0.0f;
        a[i] = x;
        b[i] = x > 0.0f ? 255.0f * sqrtf(0.5f * x / 255.0f) : 0.0f;
    }
    ev_normalize_sector(a, 40, 30);
    ev_normalize_sector(b, 40, 30);
    double sum = 0.0;
    int inside = 0;
    for (int i = 0; i < N; i++)
        if (a[i] > 0.0f) {
            sum += a[i];
            inside++;
        }
    CHECK(memcmp(a, b, sizeof a) == 0, "sector normalisation: gain 0.5 and gamma 0.5 give the "
                                       "same output");
    CHECK(inside == 28 * 26 && fabs(sum / inside - 127.5) < 1e-3,
          "the normalised sector (%d px) has mean 127.5 (%.4f)", inside, inside ? sum / inside : 0);

    float z[6] = {0, 0, 0, 0, 0, 0};
    ev_normalize_sector(z, 3, 2);
    CHECK(z[0] == 0.0f && z[5] == 0.0f, "a black plane stays black");

    /* through ev_preprocess: resize, then normalise, then scale/mean/std */
    enum { W = 64, H = 48 };
    uint8_t img[W * H];
    for (int i = 0; i < W * H; i++) {
        const int x = i % W, y = i / W;
        img[i] = (x > 8 && x < 56 && y > 4) ? (uint8_t)(60 + (ev_rng_next(&rng) % 150)) : 0;
    }
    ev_frame frame = {img, W, H, W, EV_PIXEL_GRAY8};
    ev_rect roi = {4, 2, 56, 44};
    ev_preprocess_params raw = plain(16, 12, 1), norm = plain(16, 12, 1);
    norm.normalize = EV_NORMALIZE_SECTOR;
    norm.scale = 1.0f / 255.0f;
    norm.mean[0] = 0.5f;
    norm.std[0] = 0.25f;
    float r[16 * 12], n[16 * 12];
    ev_error err = {0};
    int rc = ev_preprocess(&raw, &frame, &roi, r, &err);
    int rc2 = ev_preprocess(&norm, &frame, &roi, n, &err);
    ev_normalize_sector(r, 16, 12);
    double worst = 0.0;
    for (int i = 0; i < 16 * 12; i++) {
        const double e = fabs(n[i] - (r[i] / 255.0 - 0.5) / 0.25);
        worst = e > worst ? e : worst;
    }
    CHECK(rc == EV_OK && rc2 == EV_OK && worst < 1e-5,
          "ev_preprocess normalize=sector: resize, ev_normalize_sector, then scale/mean/std "
          "(max diff %.2g)",
          worst);
    norm.normalize = (ev_normalize)7;
    rc = ev_preprocess(&norm, &frame, &roi, n, &err);
    CHECK(rc == EV_ERR_INVALID && strstr(err.message, "unknown normalisation 7"),
          "an unknown normalisation is refused: \"%s\"", err.message);
}

static void expect_fail(int rc, const ev_error *err, int code, const char *what, const char *frag)
{
    CHECK(rc == code && strstr(err->message, frag) != NULL, "%s -> %d \"%s\"", what, rc,
          err->message);
}

static void test_bad_inputs(void)
{
    ev_error err = {0};
    uint8_t px[64] = {0};
    float out[64];
    ev_frame frame = {px, 4, 4, 4, EV_PIXEL_GRAY8};
    ev_preprocess_params p = plain(2, 2, 1);
    ev_frame bad;

    expect_fail(ev_preprocess(&p, NULL, NULL, out, &err), &err, EV_ERR_INVALID, "NULL frame",
                "frame is NULL");
    bad = frame;
    bad.data = NULL;
    expect_fail(ev_preprocess(&p, &bad, NULL, out, &err), &err, EV_ERR_INVALID, "NULL data",
                "no data");
    bad = frame;
    bad.stride = 3;
    expect_fail(ev_preprocess(&p, &bad, NULL, out, &err), &err, EV_ERR_INVALID, "stride too small",
                "stride 3 is smaller");
    bad = (ev_frame){px, 4, 4, 15, EV_PIXEL_RGBA};
    expect_fail(ev_preprocess(&p, &bad, NULL, out, &err), &err, EV_ERR_INVALID,
                "RGBA stride 15 for 4 pixels", "(16 bytes)");
    bad = frame;
    bad.format = (ev_pixel_format)42;
    expect_fail(ev_preprocess(&p, &bad, NULL, out, &err), &err, EV_ERR_INVALID, "unknown format",
                "unknown pixel format 42");
    bad = frame;
    bad.width = 0;
    expect_fail(ev_preprocess(&p, &bad, NULL, out, &err), &err, EV_ERR_INVALID, "width 0",
                "0x4 is empty");
    expect_fail(ev_preprocess(NULL, &frame, NULL, out, &err), &err, EV_ERR_INVALID, "NULL params",
                "params is NULL");
    expect_fail(ev_preprocess(&p, &frame, NULL, NULL, &err), &err, EV_ERR_INVALID, "NULL out",
                "output is NULL");
    ev_preprocess_params q = plain(2, 2, 2);
    expect_fail(ev_preprocess(&q, &frame, NULL, out, &err), &err, EV_ERR_INVALID, "2 channels",
                "2 channels");
    q = plain(0, 2, 1);
    expect_fail(ev_preprocess(&q, &frame, NULL, out, &err), &err, EV_ERR_INVALID, "output width 0",
                "output size 0x2 is out of range");
    q = plain(2, 2, 1);
    q.std[0] = 0.0f;
    expect_fail(ev_preprocess(&q, &frame, NULL, out, &err), &err, EV_ERR_INVALID, "std 0",
                "std must be finite and non-zero");
    q = plain(2, 2, 1);
    q.scale = NAN;
    expect_fail(ev_preprocess(&q, &frame, NULL, out, &err), &err, EV_ERR_INVALID, "scale NaN",
                "scale is not finite");
    q = plain(1 << 20, 4, 1);
    expect_fail(ev_preprocess(&q, &frame, NULL, out, &err), &err, EV_ERR_INVALID,
                "output width 2^20", "output size 1048576x4 is out of range (1..65536)");
    static const ev_rect rois[] = {{3, 0, 2, 2},         {0, 3, 2, 2}, {-1, 0, 2, 2},
                                   {0, 0, 0, 2},         {0, 0, 5, 1}, {2147483647, 0, 2, 2},
                                   {1, 1, 2147483647, 1}};
    for (size_t k = 0; k < sizeof rois / sizeof rois[0]; k++) {
        char what[96];
        snprintf(what, sizeof what, "roi %dx%d at (%d,%d)", rois[k].width, rois[k].height,
                 rois[k].x, rois[k].y);
        expect_fail(ev_preprocess(&p, &frame, &rois[k], out, &err), &err, EV_ERR_INVALID, what,
                    "is not inside the 4x4 frame");
    }
    expect_fail(ev_preprocess_frame(NULL, &frame, NULL, out, &err), &err, EV_ERR_INVALID,
                "NULL model", "model is NULL");
    ev_rect r;
    CHECK(ev_detect_roi(NULL, &r) == EV_ERR_INVALID &&
              ev_detect_roi(&frame, NULL) == EV_ERR_INVALID &&
              ev_detect_roi(&bad, &r) == EV_ERR_INVALID,
          "ev_detect_roi rejects NULL frame, NULL output and a bad frame");
}

/* ---- synthetic scanner frame ------------------------------------------------------------- */

enum { FW = 800, FH = 600 };

typedef struct fan {
    double cx, cy, radius, half_angle;
    int x0, y0, x1, y1; /* true bounding box, inclusive */
} fan;

static bool in_fan(const fan *f, int x, int y)
{
    double dx = x + 0.5 - f->cx, dy = y + 0.5 - f->cy;
    if (dy < 0 || dx * dx + dy * dy > f->radius * f->radius)
        return false;
    return fabs(atan2(dx, dy)) <= f->half_angle;
}

static void set(uint8_t *img, int x, int y, uint8_t v)
{
    if (x >= 0 && y >= 0 && x < FW && y < FH)
        img[y * FW + x] = v;
}

/* A speckled sector with a dark chamber, plus text, a depth ruler, an ECG trace, thin lines and
 * a flat logo. textured = false draws a smooth fan instead. */
static void draw_scanner_frame(uint8_t *img, fan *f, bool textured)
{
    uint64_t rng = 2024;
    memset(img, 0, FW * FH);
    f->x0 = FW, f->y0 = FH, f->x1 = -1, f->y1 = -1;
    for (int y = 0; y < FH; y++)
        for (int x = 0; x < FW; x++) {
            if (!in_fan(f, x, y))
                continue;
            double v;
            double ex = (x - f->cx) / (0.15 * f->radius);
            double ey = (y - (f->cy + 0.55 * f->radius)) / (0.22 * f->radius);
            bool chamber = ex * ex + ey * ey < 1.0;
            if (textured) {
                double u = ev_rng_uniform(&rng) * 0.999 + 0.0005;
                v = sqrt(-2.0 * log(u)) * (chamber ? 4.0 : 55.0); /* Rayleigh speckle */
            } else {
                v = chamber ? 3.0 : 120.0 - (y - f->cy) * 0.1;
            }
            set(img, x, y, (uint8_t)(v > 255 ? 255 : v));
            if (x < f->x0)
                f->x0 = x;
            if (x > f->x1)
                f->x1 = x;
            if (y < f->y0)
                f->y0 = y;
            if (y > f->y1)
                f->y1 = y;
        }
    /* text: 2 px strokes in 10 x 14 glyph cells, top left and next to the apex */
    for (int t = 0; t < 2; t++) {
        int tx = t == 0 ? 20 : (int)f->cx + 40, ty = t == 0 ? 60 : (int)f->cy + 5;
        for (int ch = 0; ch < 8; ch++)
            for (int s = 0; s < 3; s++) {
                int x0 = tx + ch * 12 + (int)(ev_rng_uniform(&rng) * 8);
                int y0 = ty + (int)(ev_rng_uniform(&rng) * 12);
                bool horizontal = ev_rng_uniform(&rng) < 0.5;
                for (int k = 0; k < 8; k++)
                    for (int w = 0; w < 2; w++)
                        set(img, horizontal ? x0 + k : x0 + w, horizontal ? y0 + w : y0 + k, 230);
            }
    }
    /* depth ruler: 3x3 dots every 40 px beside the right edge */
    for (int y = (int)f->cy; y < f->y1; y += 40)
        for (int k = 0; k < 9; k++)
            set(img, f->x1 + 12 + k % 3, y + k / 3, 200);
    /* ECG trace: a 2 px polyline with a QRS spike, under the fan */
    for (int x = 40; x < FW - 40; x++) {
        int phase = x % 160;
        int y = 575 + (phase > 60 && phase < 66 ? -(phase - 60) * 5 : 0) + (int)(3 * sin(x * 0.05));
        for (int w = 0; w < 2; w++)
            set(img, x, y + w, 180);
        for (int k = y; k < 575; k++) /* the spike's stroke back to the baseline */
            set(img, x, k, 180);
    }
    /* thin lines: 1 px across the frame above the apex, 2 px across the whole frame through the
     * fan (a caliper), 3 px vertical at the far left */
    for (int x = 0; x < FW; x++) {
        set(img, x, (int)f->cy - 15, 255);
        set(img, x, (int)(f->cy + 0.4 * f->radius), 255);
        set(img, x, (int)(f->cy + 0.4 * f->radius) + 1, 255);
    }
    for (int y = 0; y < FH; y++)
        for (int w = 0; w < 3; w++)
            set(img, 8 + w, y, 255);
    /* flat logo */
    for (int y = 12; y < 52; y++)
        for (int x = 720; x < 780; x++)
            set(img, x, y, 150);
}

static bool box_close(const ev_rect *r, const fan *f, int tolerance)
{
    return abs(r->x - f->x0) <= tolerance && abs(r->y - f->y0) <= tolerance &&
           abs(r->x + r->width - 1 - f->x1) <= tolerance &&
           abs(r->y + r->height - 1 - f->y1) <= tolerance;
}

static void test_detect_roi(void)
{
    enum { TOLERANCE = 4 };
    uint8_t *img = malloc(FW * FH);
    fan f = {.cx = 400, .cy = 60, .radius = 480, .half_angle = 40 * M_PI / 180};
    draw_scanner_frame(img, &f, true);
    ev_frame frame = {img, FW, FH, FW, EV_PIXEL_GRAY8};
    ev_rect r = {0};
    int rc = ev_detect_roi(&frame, &r);
    CHECK(rc == EV_OK && box_close(&r, &f, TOLERANCE),
          "sector in a GRAY8 800x600 scanner frame with overlays: got %dx%d at (%d,%d), true "
          "%dx%d at (%d,%d)",
          r.width, r.height, r.x, r.y, f.x1 - f.x0 + 1, f.y1 - f.y0 + 1, f.x0, f.y0);
    ev_rect gray_box = r;

    /* the same picture as BGRx with a padded stride and as GRAY16 gives the same box */
    int stride = FW * 4 + 32;
    uint8_t *bgrx = calloc((size_t)stride * FH, 1);
    uint16_t *g16 = malloc(sizeof *g16 * FW * FH);
    for (int y = 0; y < FH; y++)
        for (int x = 0; x < FW; x++) {
            uint8_t v = img[y * FW + x];
            put_gray(bgrx + y * stride + x * 4, EV_PIXEL_BGRX, v);
            g16[y * FW + x] = (uint16_t)(v * 257);
        }
    frame = (ev_frame){bgrx, FW, FH, stride, EV_PIXEL_BGRX};
    rc = ev_detect_roi(&frame, &r);
    CHECK(rc == EV_OK && memcmp(&r, &gray_box, sizeof r) == 0, "BGRx frame: same box as GRAY8");
    frame = (ev_frame){(const uint8_t *)g16, FW, FH, FW * 2, EV_PIXEL_GRAY16};
    rc = ev_detect_roi(&frame, &r);
    CHECK(rc == EV_OK && memcmp(&r, &gray_box, sizeof r) == 0, "GRAY16 frame: same box as GRAY8");

    /* the box feeds ev_preprocess */
    ev_preprocess_params p = plain(64, 64, 1);
    float *out = malloc(sizeof *out * 64 * 64);
    frame = (ev_frame){img, FW, FH, FW, EV_PIXEL_GRAY8};
    ev_error err = {0};
    CHECK(ev_preprocess(&p, &frame, &gray_box, out, &err) == EV_OK,
          "detected box is a valid roi for ev_preprocess");

    /* a smaller, off-centre, smooth (untextured) fan: found by the second pass */
    fan g = {.cx = 250, .cy = 120, .radius = 300, .half_angle = 35 * M_PI / 180};
    draw_scanner_frame(img, &g, false);
    frame = (ev_frame){img, FW, FH, FW, EV_PIXEL_GRAY8};
    rc = ev_detect_roi(&frame, &r);
    CHECK(rc == EV_OK && box_close(&r, &g, TOLERANCE),
          "smooth off-centre sector: got %dx%d at (%d,%d), true %dx%d at (%d,%d)", r.width,
          r.height, r.x, r.y, g.x1 - g.x0 + 1, g.y1 - g.y0 + 1, g.x0, g.y0);

    /* a frame that is all image (already cropped): the whole frame */
    uint64_t rng = 5;
    for (int i = 0; i < FW * FH; i++)
        img[i] = (uint8_t)(40 + ev_rng_uniform(&rng) * 200);
    rc = ev_detect_roi(&frame, &r);
    CHECK(rc == EV_OK && r.x == 0 && r.y == 0 && r.width == FW && r.height == FH,
          "all-speckle frame: the whole frame (%dx%d at (%d,%d))", r.width, r.height, r.x, r.y);

    /* nothing stands out: black, or only overlays */
    memset(img, 0, FW * FH);
    CHECK(ev_detect_roi(&frame, &r) == EV_ERR_INVALID, "black frame: EV_ERR_INVALID");
    for (int x = 0; x < FW; x++)
        for (int w = 0; w < 3; w++)
            img[(300 + w) * FW + x] = 255;
    for (int y = 0; y < FH; y += 20)
        for (int x = 0; x < FW; x += 20)
            img[y * FW + x] = 200;
    CHECK(ev_detect_roi(&frame, &r) == EV_ERR_INVALID, "only a 3 px line and dots: EV_ERR_INVALID");
    frame.width = 16;
    frame.height = 16;
    CHECK(ev_detect_roi(&frame, &r) == EV_ERR_INVALID, "16x16 frame is too small: EV_ERR_INVALID");

    free(out);
    free(g16);
    free(bgrx);
    free(img);
}

int main(void)
{
    test_identity_and_resize();
    test_formats();
    test_normalise_roi_model();
    test_bad_inputs();
    test_detect_roi();
    test_sector_normalise();
    return test_finish();
}
