/* test_screen_check.c: the engine's screen-type check (ev_detect_screen, engine/echoview.h) on
 * phantom version-2 scanner frames.
 *
 * 2D frames of all 14 views (grey, and RGB with a colour-Doppler box) at 640x480 and 1024x768,
 * in the four vendor layouts the style draws, must be EV_SCREEN_2D with the same region as
 * ev_detect_roi; the four non-2D screens (M-mode, PW, CW, TDI) must be EV_SCREEN_NOT_2D with a
 * reason. The patients and scans here are drawn from seeds other than the ones the rule's
 * thresholds were set on (docs/ACCURACY.md). Bad inputs: NULL frame or output, a short stride;
 * a black frame (no fan), a frame too small to tell (undecided). Exit 0 pass, 1 fail.
 */
#include "echophantom.h"
#include "echoview.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
        }                                                                   \
    } while (0)

/* One version-2 scanner frame; rgb: 3 bytes per pixel (a colour screen), else gray. */
static int render(ep_renderer *r, int w, int h, int view, int screen, uint64_t seed, uint8_t *out,
                  ev_frame *frame)
{
    ep_patient p;
    ep_scan s;
    ep_patient_init(&p, seed * 1000003u + 17u);
    ep_scan_init(&s, view, seed * 31u + (uint64_t)view);
    s.framing = EP_FRAMING_SCANNER;
    s.overlays = EP_OVERLAY_ALL;
    if (ep_scan_style(&s, seed * 7u + 3u, seed * 13u + (uint64_t)view) != EP_OK)
        return -1;
    s.screen = screen;
    s.noise_seed = seed * 977u + (uint64_t)screen;
    const int rgb = screen == EP_SCREEN_COLOR;
    int rc = rgb ? ep_render_rgb(r, &p, &s, 0.35, out, (size_t)w * 3)
                 : ep_render(r, &p, &s, 0.35, out, (size_t)w);
    *frame = (ev_frame){out, w, h, rgb ? w * 3 : w, rgb ? EV_PIXEL_RGB : EV_PIXEL_GRAY8};
    return rc == EP_OK ? 0 : -1;
}

static void test_frames(int w, int h, int seeds)
{
    uint8_t *buf = malloc((size_t)w * h * 3);
    ep_renderer *r = ep_renderer_create(w, h);
    CHECK(buf && r, "allocation");
    if (!buf || !r)
        goto out;
    int two_d = 0, two_d_total = 0, other = 0, other_total = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        for (int view = 0; view < ep_view_count(); view++) {
            int screen = (seed + view) % 2 ? EP_SCREEN_COLOR : EP_SCREEN_BMODE;
            ev_frame f;
            CHECK(render(r, w, h, view, screen, 5000u + (uint64_t)seed, buf, &f) == 0, "render");
            ev_screen_info info;
            ev_rect roi;
            CHECK(ev_detect_screen(&f, &info) == EV_OK, "ev_detect_screen");
            two_d_total++;
            two_d += info.type == EV_SCREEN_2D;
            CHECK(info.type == EV_SCREEN_2D,
                  "%dx%d %s (%s) seed %d: %s (apex %.3f, break %.3f)", w, h, ep_view_name(view),
                  ep_screen_name(screen), seed, info.reason, info.apex_width, info.break_rows);
            CHECK(info.region_found && ev_detect_roi(&f, &roi) == EV_OK &&
                      memcmp(&roi, &info.roi, sizeof roi) == 0,
                  "%s: the screen check's region is ev_detect_roi's", ep_view_name(view));
        }
        for (int screen = EP_SCREEN_MMODE; screen <= EP_SCREEN_TDI; screen++) {
            static const int from[4] = {EP_VIEW_PLAX_FULL, EP_VIEW_A4CH_LV, EP_VIEW_A5CH,
                                        EP_VIEW_A4CH_LV};
            ev_frame f;
            CHECK(render(r, w, h, from[screen - EP_SCREEN_MMODE], screen, 7000u + (uint64_t)seed,
                         buf, &f) == 0,
                  "render");
            ev_screen_info info;
            CHECK(ev_detect_screen(&f, &info) == EV_OK, "ev_detect_screen");
            other_total++;
            other += info.type == EV_SCREEN_NOT_2D;
            CHECK(info.type == EV_SCREEN_NOT_2D && info.reason && info.reason[0],
                  "%dx%d %s seed %d: type %d, %s (apex %.3f, break %.3f)", w, h,
                  ep_screen_name(screen), seed, (int)info.type, info.reason, info.apex_width,
                  info.break_rows);
        }
    }
    printf("%dx%d: 2D frames called 2D %d/%d, non-2D screens called not 2D %d/%d\n", w, h, two_d,
           two_d_total, other, other_total);
out:
    ep_renderer_free(r);
    free(buf);
}

static void test_bad_inputs(void)
{
    ev_screen_info info;
    enum { W = 320, H = 240 };
    static uint8_t black[W * H];
    ev_frame f = {black, W, H, W, EV_PIXEL_GRAY8};
    CHECK(ev_detect_screen(&f, NULL) == EV_ERR_INVALID, "NULL output");
    CHECK(ev_detect_screen(NULL, &info) == EV_ERR_INVALID && info.type == EV_SCREEN_UNDECIDED &&
              !info.region_found,
          "NULL frame: invalid, undecided");
    ev_frame bad = f;
    bad.stride = 1;
    CHECK(ev_detect_screen(&bad, &info) == EV_ERR_INVALID, "a stride shorter than a row");
    CHECK(ev_detect_screen(&f, &info) == EV_OK && info.type == EV_SCREEN_NOT_2D &&
              !info.region_found && info.reason,
          "a black frame: no region stands out, so no fan");
    ev_frame small = {black, 48, 48, 48, EV_PIXEL_GRAY8};
    CHECK(ev_detect_screen(&small, &info) == EV_OK && info.type == EV_SCREEN_UNDECIDED &&
              !info.region_found,
          "a 48x48 frame is too small to tell: undecided (nothing claimed)");
}

int main(void)
{
    test_bad_inputs();
    test_frames(640, 480, 4);
    test_frames(1024, 768, 2);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("screen check: ok\n");
    return 0;
}
