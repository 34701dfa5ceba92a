/* phantom_sheet.c: writes the phantom's contact sheet and measures its generation speed.
 *
 *   phantom_sheet OUT.png|OUT.pgm [EXAMPLE_800x600.png]
 *   phantom_sheet --version 2 OUT.png [EXAMPLE_800x600.png]
 *
 * Version 1 (the default): a PNG (or binary PGM) grid of 128x128 sector-cropped frames,
 * 7 columns x 4 rows: rows 1-2 hold views 0..6 and 7..13 at quality 5, rows 3-4 the same views
 * at quality 2 (one patient, end-diastole, nominal probe pose). The optional second file gets one
 * 800x600 scanner-framed A4CH-LV frame with overlays.
 * Version 2: an RGB PNG grid of 112x112 frames, 8 columns x 4 rows: rows 1-2 the 14 views at
 * quality 5 in one scanner style, then a colour-Doppler A4CH-LV and an M-mode screen; rows 3-4
 * the 14 views at quality 2 in another style, then a PW and a CW Doppler screen. The optional
 * second file gets one 800x600 scanner-framed version-2 frame with overlays and a colour box.
 * Both print frames/s on one thread: 128x128 sector-cropped over 400 frames of random patients,
 * views and acquisitions, and 800x600 scanner frames with overlays over 40.
 */
#include "echophantom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "media.h"

#define TILE 128
#define GAP 2
#define COLS 7
#define ROWS 4

/* Writes PNG when the name ends in .png, else binary PGM. */
static int write_pgm(const char *path, const uint8_t *pix, int w, int h)
{
    media_image img = {w, h, 1, 8, (size_t)w, (uint8_t *)pix};
    ev_error err = {0};
    size_t n = strlen(path);
    int rc = n > 4 && !strcmp(path + n - 4, ".png") ? media_image_write_png(path, &img, &err)
                                                    : media_image_write_pgm(path, &img, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.message);
    return rc ? -1 : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Version 2's sheet (RGB) and example frame. */
static int sheet_v2(const char *out, const char *example)
{
    enum { C2 = 8, R2 = 4, T2 = 112 }; /* 112 px: the size of EchoNet-style crops */
    int sw = C2 * T2 + (C2 + 1) * GAP, sh = R2 * T2 + (R2 + 1) * GAP;
    int rc = 1;
    uint8_t *sheet = malloc((size_t)sw * (size_t)sh * 3);
    uint8_t *tile = malloc((size_t)T2 * T2 * 3);
    uint8_t *big = malloc(800 * 600 * 3);
    ep_renderer *r = ep_renderer_create(T2, T2);
    ep_renderer *rb = ep_renderer_create(800, 600);
    if (!sheet || !tile || !big || !r || !rb) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    memset(sheet, 60, (size_t)sw * (size_t)sh * 3);
    ep_patient pat;
    ep_patient_init(&pat, 7);
    for (int i = 0; i < R2 * C2; i++) {
        int half = i / (2 * C2), k = i % (2 * C2); /* half 0: quality 5, style 1; 1: 2, style 2 */
        int view = k < EP_VIEW_COUNT ? k : EP_VIEW_A4CH_LV;
        ep_scan scan;
        ep_scan_default(&scan, view);
        scan.quality = half == 0 ? 5 : 2;
        scan.seed = 1000u + (uint64_t)k;
        scan.noise_seed = 2000u + (uint64_t)k;
        if (ep_scan_style(&scan, half == 0 ? 21u : 34u, 300u + (uint64_t)k) != EP_OK)
            goto out;
        scan.steer_deg = 0.0f; /* the sheet shows the anatomy; datasets vary the geometry */
        scan.zoom = 1.0f;
        scan.framing = EP_FRAMING_SECTOR;
        if (k == EP_VIEW_COUNT)
            scan.screen = half == 0 ? EP_SCREEN_COLOR : EP_SCREEN_PW;
        else if (k == EP_VIEW_COUNT + 1)
            scan.screen = half == 0 ? EP_SCREEN_MMODE : EP_SCREEN_CW;
        if (scan.screen == EP_SCREEN_MMODE)
            scan.view = EP_VIEW_PLAX_FULL;
        double phase = scan.screen == EP_SCREEN_COLOR ? 0.5 : 0.0;
        if (ep_render_rgb(r, &pat, &scan, phase, tile, T2 * 3) != EP_OK) {
            fprintf(stderr, "render failed for tile %d\n", i);
            goto out;
        }
        int row = i / C2, col = i % C2;
        for (int y = 0; y < T2; y++)
            memcpy(sheet + ((size_t)(GAP + row * (T2 + GAP) + y) * (size_t)sw +
                            (size_t)(GAP + col * (T2 + GAP))) *
                               3,
                   tile + (size_t)y * T2 * 3, T2 * 3);
    }
    {
        media_image img = {sw, sh, 3, 8, (size_t)sw * 3, sheet};
        ev_error err = {0};
        if (media_image_write_png(out, &img, &err)) {
            fprintf(stderr, "%s\n", err.message);
            goto out;
        }
    }
    if (example) {
        ep_scan scan;
        ep_scan_init(&scan, EP_VIEW_A4CH_LV, 5);
        scan.overlays = EP_OVERLAY_ALL;
        if (ep_scan_style(&scan, 21u, 8u) != EP_OK)
            goto out;
        scan.screen = EP_SCREEN_COLOR;
        media_image img = {800, 600, 3, 8, 800 * 3, big};
        ev_error err = {0};
        if (ep_render_rgb(rb, &pat, &scan, 0.5, big, 800 * 3) != EP_OK ||
            media_image_write_png(example, &img, &err)) {
            fprintf(stderr, "example frame failed %s\n", err.message);
            goto out;
        }
    }
    printf("sheet (version 2): rows 1-2 quality 5 (style 1), rows 3-4 quality 2 (style 2); views "
           "0-13 then colour Doppler + M-mode (rows 1-2), PW + CW (rows 3-4)\n");
    rc = 0;
out:
    ep_renderer_free(r);
    ep_renderer_free(rb);
    free(sheet);
    free(tile);
    free(big);
    return rc;
}

/* Frames/s on one thread at 128x128 (sector framing) and 800x600 (scanner framing, overlays). */
static int speed(int version)
{
    enum { FRAMES = 400 };
    int rc = 1;
    uint8_t *frame = malloc(TILE * TILE), *big = malloc(800 * 600);
    ep_renderer *r = ep_renderer_create(TILE, TILE), *rb = ep_renderer_create(800, 600);
    if (!frame || !big || !r || !rb)
        goto out;
    ep_patient pat;
    ep_patient_init(&pat, 7);
    unsigned long checksum = 0;
    double t0 = now_s();
    for (int i = 0; i < FRAMES; i++) {
        ep_patient p;
        ep_scan scan;
        ep_patient_init(&p, 100u + (uint64_t)(i / 20));
        ep_scan_init(&scan, i % EP_VIEW_COUNT, 5000u + (uint64_t)i);
        if (version == 2 && ep_scan_style(&scan, 77u + (uint64_t)(i / 20), 6000u + (uint64_t)i))
            goto out;
        scan.framing = EP_FRAMING_SECTOR;
        if (ep_render(r, &p, &scan, (double)(i % 30) / 30.0, frame, TILE) != EP_OK)
            goto out;
        checksum += frame[(i * 977) % (TILE * TILE)];
    }
    double dt = now_s() - t0;
    printf("phantom v%d: %d frames of %dx%d in %.3f s: %.1f frames/s (1 thread, checksum %lu)\n",
           version, FRAMES, TILE, TILE, dt, FRAMES / dt, checksum);
    t0 = now_s();
    for (int i = 0; i < 40; i++) {
        ep_scan scan;
        ep_scan_init(&scan, i % EP_VIEW_COUNT, 9000u + (uint64_t)i);
        if (version == 2 && ep_scan_style(&scan, 78u, 9100u + (uint64_t)i))
            goto out;
        scan.overlays = EP_OVERLAY_ALL;
        if (ep_render(rb, &pat, &scan, (double)i / 40.0, big, 800) != EP_OK)
            goto out;
    }
    dt = now_s() - t0;
    printf("phantom v%d: 40 frames of 800x600 (scanner framing, overlays) in %.3f s: %.1f "
           "frames/s\n",
           version, dt, 40 / dt);
    rc = 0;
out:
    ep_renderer_free(r);
    ep_renderer_free(rb);
    free(frame);
    free(big);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--version")) {
        if (strcmp(argv[2], "1") && strcmp(argv[2], "2")) {
            fprintf(stderr, "%s: --version 1 or 2, got '%s'\n", argv[0], argv[2]);
            return 2;
        }
        if (argv[2][0] == '2') {
            if (argc < 4 || argc > 5) {
                fprintf(stderr, "usage: %s --version 2 OUT.png [EXAMPLE_800x600.png]\n", argv[0]);
                return 2;
            }
            return sheet_v2(argv[3], argc == 5 ? argv[4] : NULL) || speed(2) ? 1 : 0;
        }
        argv += 2;
        argc -= 2;
    }
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s [--version 1|2] OUT.png|OUT.pgm [EXAMPLE_800x600.png|.pgm]\n",
                argv[0]);
        return 2;
    }
    int rc = 1;
    int sw = COLS * TILE + (COLS + 1) * GAP, sh = ROWS * TILE + (ROWS + 1) * GAP;
    uint8_t *sheet = calloc((size_t)sw * (size_t)sh, 1);
    uint8_t *big = malloc(800 * 600);
    ep_renderer *r = ep_renderer_create(TILE, TILE);
    ep_renderer *rb = ep_renderer_create(800, 600);
    if (!sheet || !big || !r || !rb) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    memset(sheet, 60, (size_t)sw * (size_t)sh);

    ep_patient pat;
    ep_patient_init(&pat, 7);
    for (int qi = 0; qi < 2; qi++) {
        for (int v = 0; v < EP_VIEW_COUNT; v++) {
            ep_scan scan;
            ep_scan_default(&scan, v);
            scan.quality = qi == 0 ? 5 : 2;
            scan.framing = EP_FRAMING_SECTOR;
            scan.seed = 1000u + (uint64_t)v;
            scan.noise_seed = 2000u + (uint64_t)v;
            int row = qi * 2 + v / COLS, col = v % COLS;
            uint8_t *dst = sheet + (size_t)(GAP + row * (TILE + GAP)) * (size_t)sw +
                           (size_t)(GAP + col * (TILE + GAP));
            if (ep_render(r, &pat, &scan, 0.0, dst, (size_t)sw) != EP_OK) {
                fprintf(stderr, "render failed for %s\n", ep_view_name(v));
                goto out;
            }
        }
    }
    if (write_pgm(argv[1], sheet, sw, sh) != 0)
        goto out;

    if (argc == 3) {
        ep_scan scan;
        ep_scan_default(&scan, EP_VIEW_A4CH_LV);
        scan.overlays = EP_OVERLAY_ALL;
        scan.seed = 5;
        scan.noise_seed = 6;
        if (ep_render(rb, &pat, &scan, 0.0, big, 800) != EP_OK ||
            write_pgm(argv[2], big, 800, 600) != 0)
            goto out;
    }

    if (speed(1) != 0)
        goto out;
    printf("sheet: rows 1-2 quality 5, rows 3-4 quality 2; left to right, top to bottom:");
    for (int v = 0; v < EP_VIEW_COUNT; v++)
        printf(" %d=%s", v, ep_view_name(v));
    printf("\n");
    rc = 0;
out:
    ep_renderer_free(r);
    ep_renderer_free(rb);
    free(sheet);
    free(big);
    return rc;
}
