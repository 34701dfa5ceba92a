/* phantom_sheet.c: writes the phantom's contact sheet and measures its generation speed.
 *
 *   phantom_sheet OUT.png|OUT.pgm [EXAMPLE_800x600.png]
 *
 * OUT: a PNG (or binary PGM) grid of 128x128 sector-cropped frames, 7 columns x 4 rows:
 * rows 1-2 hold views 0..6 and 7..13 at quality 5, rows 3-4 the same views at quality 2
 * (one patient, end-diastole, nominal probe pose). The optional second file gets one 800x600
 * scanner-framed A4CH-LV frame with overlays. Prints frames/s at 128x128 on one thread,
 * measured over 400 frames of random patients, views and acquisitions.
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

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s OUT.png|OUT.pgm [EXAMPLE_800x600.png|.pgm]\n", argv[0]);
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

    /* speed: random patients, views and acquisitions, one thread */
    {
        enum { FRAMES = 400 };
        uint8_t frame[TILE * TILE];
        unsigned long checksum = 0;
        double t0 = now_s();
        for (int i = 0; i < FRAMES; i++) {
            ep_patient p;
            ep_scan scan;
            ep_patient_init(&p, 100u + (uint64_t)(i / 20));
            ep_scan_init(&scan, i % EP_VIEW_COUNT, 5000u + (uint64_t)i);
            scan.framing = EP_FRAMING_SECTOR;
            if (ep_render(r, &p, &scan, (double)(i % 30) / 30.0, frame, TILE) != EP_OK)
                goto out;
            checksum += frame[(i * 977) % (TILE * TILE)];
        }
        double dt = now_s() - t0;
        printf("phantom: %d frames of %dx%d in %.3f s: %.1f frames/s (1 thread, checksum %lu)\n",
               FRAMES, TILE, TILE, dt, FRAMES / dt, checksum);
        t0 = now_s();
        for (int i = 0; i < 40; i++) {
            ep_scan scan;
            ep_scan_init(&scan, i % EP_VIEW_COUNT, 9000u + (uint64_t)i);
            scan.overlays = EP_OVERLAY_ALL;
            if (ep_render(rb, &pat, &scan, (double)i / 40.0, big, 800) != EP_OK)
                goto out;
        }
        dt = now_s() - t0;
        printf(
            "phantom: 40 frames of 800x600 (scanner framing, overlays) in %.3f s: %.1f frames/s\n",
            dt, 40 / dt);
    }
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
