/* test_phantom.c: behaviour of the synthetic echo scanner (phantom/echophantom.h).
 *
 * Views and names, determinism, every view at scanner and dataset sizes, the sector ROI,
 * attenuation versus TGC on a uniform phantom, quality grades (contrast-to-noise between
 * blood and myocardium from the ground-truth labels), views differing more than phases of
 * one view (the hard pairs each other's nearest), the time/phase relation, identical bytes
 * from renderers on two threads, and rejection of bad arguments. Exit 0 pass, 1 fail.
 */
#include "echophantom.h"
#define TEST_QUIET /* checks in loops and on render threads: only failures print */
#include "test_util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const expected_names[14] = {
    "A2CH",         "A3CH",          "A4CH-LV",   "A4CH-RV",      "A5CH",
    "Apical-LA/MV", "PLAX-TV",       "PLAX-full", "PLAX-valves",  "PSAX-AV",
    "PSAX-LV",      "Subcostal-IVC", "Subcostal", "Suprasternal",
};

static void test_views(void)
{
    CHECK(ep_view_count() == 14, "count %d", ep_view_count());
    for (int v = 0; v < 14; v++) {
        CHECK(ep_view_name(v) && strcmp(ep_view_name(v), expected_names[v]) == 0, "view %d name %s",
              v, ep_view_name(v) ? ep_view_name(v) : "(null)");
        CHECK(ep_view_parse(expected_names[v]) == v, "parse %s", expected_names[v]);
    }
    CHECK(ep_view_parse("a4ch-lv") == EP_VIEW_A4CH_LV, "case-insensitive parse");
    CHECK(ep_view_parse("apical-la/mv") == EP_VIEW_APICAL_LA_MV, "case-insensitive parse");
    CHECK(ep_view_parse("A4CH") == -1, "prefix must not match");
    CHECK(ep_view_parse("A4CH-LVX") == -1, "longer name must not match");
    CHECK(ep_view_parse("") == -1, "empty name");
    CHECK(ep_view_parse(NULL) == -1, "NULL name");
    CHECK(ep_view_name(-1) == NULL && ep_view_name(14) == NULL, "out of range names");
}

static size_t count_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += a[i] != b[i];
    return d;
}

static void test_determinism(void)
{
    enum { S = 128 };
    static uint8_t a[S * S], b[S * S], c[S * S];
    ep_renderer *r1 = ep_renderer_create(S, S), *r2 = ep_renderer_create(S, S);
    ep_patient p1, p1b, p2;
    ep_scan s;
    CHECK(r1 && r2, "create");
    if (!r1 || !r2)
        goto out;
    ep_patient_init(&p1, 11);
    ep_patient_init(&p1b, 11);
    ep_patient_init(&p2, 12);
    CHECK(memcmp(&p1, &p1b, sizeof p1) == 0, "patient draw is deterministic");
    CHECK(p1.lv_length_mm != p2.lv_length_mm, "different seeds give different patients");
    ep_scan_init(&s, EP_VIEW_A4CH_LV, 99);
    s.framing = EP_FRAMING_SECTOR;
    CHECK(ep_render(r1, &p1, &s, 0.2, a, S) == EP_OK, "render");
    /* a second renderer, with another frame rendered in between, gives the same bytes */
    ep_scan other;
    ep_scan_init(&other, EP_VIEW_PSAX_AV, 5);
    CHECK(ep_render(r2, &p2, &other, 0.7, b, S) == EP_OK, "render other");
    CHECK(ep_render(r2, &p1, &s, 0.2, b, S) == EP_OK, "render again");
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed and params: identical bytes (%zu differ)",
          count_diff(a, b, sizeof a));
    CHECK(ep_render(r1, &p2, &s, 0.2, c, S) == EP_OK, "render p2");
    CHECK(count_diff(a, c, sizeof a) > (size_t)S * S / 4, "different patient differs (%zu)",
          count_diff(a, c, sizeof a));
    ep_scan s2 = s;
    s2.noise_seed ^= 1;
    CHECK(ep_render(r1, &p1, &s2, 0.2, c, S) == EP_OK, "render noise");
    CHECK(count_diff(a, c, sizeof a) > 100, "different noise seed differs (%zu)",
          count_diff(a, c, sizeof a));
    /* render_time maps time to phase with the patient's heart rate */
    double t = 0.9;
    double ph = t * p1.heart_rate_bpm / 60.0;
    ph -= floor(ph);
    CHECK(ep_render_time(r1, &p1, &s, t, c, S) == EP_OK, "render_time");
    CHECK(ep_render(r1, &p1, &s, ph, b, S) == EP_OK, "render phase");
    CHECK(memcmp(b, c, sizeof b) == 0, "render_time == render at frac(t*hr/60)");
out:
    ep_renderer_free(r1);
    ep_renderer_free(r2);
}

static void stats(const uint8_t *img, size_t n, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += img[i];
        s2 += (double)img[i] * img[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(fmax(0.0, s2 / (double)n - *mean * *mean));
}

static void test_all_views_and_roi(void)
{
    enum { W = 800, H = 600, S = 128 };
    uint8_t *big = malloc((size_t)W * H), *small = malloc((size_t)S * S);
    ep_renderer *rb = ep_renderer_create(W, H), *rs = ep_renderer_create(S, S);
    CHECK(big && small && rb && rs, "alloc");
    if (!big || !small || !rb || !rs)
        goto out;
    ep_patient p;
    ep_patient_init(&p, 21);
    for (int v = 0; v < 14; v++) {
        ep_scan s;
        ep_scan_init(&s, v, 300 + (uint64_t)v);
        /* scanner frame without overlays: every non-zero pixel lies in the ROI, and the ROI is
         * tight around them */
        CHECK(ep_render(rb, &p, &s, 0.1, big, W) == EP_OK, "view %d 800x600", v);
        ep_rect roi;
        CHECK(ep_sector_roi(&s, W, H, &roi) == EP_OK, "roi");
        int x0 = W, y0 = H, x1 = -1, y1 = -1;
        size_t outside = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (big[(size_t)y * W + x]) {
                    if (x < x0)
                        x0 = x;
                    if (x > x1)
                        x1 = x;
                    if (y < y0)
                        y0 = y;
                    if (y > y1)
                        y1 = y;
                    if (x < roi.x || y < roi.y || x >= roi.x + roi.width || y >= roi.y + roi.height)
                        outside++;
                }
        CHECK(outside == 0, "view %d: %zu non-zero pixels outside the ROI", v, outside);
        CHECK(abs(x0 - roi.x) <= 4 && abs(y0 - roi.y) <= 4 &&
                  abs(x1 + 1 - (roi.x + roi.width)) <= 4 && abs(y1 + 1 - (roi.y + roi.height)) <= 4,
              "view %d: content box (%d,%d)-(%d,%d) vs ROI (%d,%d %dx%d)", v, x0, y0, x1, y1, roi.x,
              roi.y, roi.width, roi.height);
        CHECK(roi.width > W / 2 && roi.height > H / 2, "view %d: fan fills the frame", v);
        /* with overlays the frame still renders */
        s.overlays = EP_OVERLAY_ALL;
        CHECK(ep_render(rb, &p, &s, 0.5, big, W) == EP_OK, "view %d overlays", v);
        /* dataset size, cropped to the sector: the fan touches the output's edges */
        s.overlays = 0;
        s.framing = EP_FRAMING_SECTOR;
        CHECK(ep_render(rs, &p, &s, 0.3, small, S) == EP_OK, "view %d 128", v);
        CHECK(ep_sector_roi(&s, S, S, &roi) == EP_OK && roi.x == 0 && roi.y == 0 &&
                  roi.width == S && roi.height == S,
              "sector framing ROI is the whole frame");
        double mean, sd;
        stats(small, (size_t)S * S, &mean, &sd);
        CHECK(mean > 15 && mean < 160 && sd > 15, "view %d 128: mean %.1f sd %.1f", v, mean, sd);
        CHECK(small[3 * S + S / 2] > 0 && small[(S - 2) * S + S / 2] > 0 && small[(S / 2) * S] == 0,
              "view %d: fan apex at top centre, corners black", v);
    }
out:
    ep_renderer_free(rb);
    ep_renderer_free(rs);
    free(big);
    free(small);
}

/* Mean of the central columns in depth bands of a sector-framed frame. */
static void depth_profile(const uint8_t *img, int s, double *band, int nbands)
{
    int rows = s / nbands;
    for (int k = 0; k < nbands; k++) {
        double sum = 0;
        int n = 0;
        for (int y = k * rows; y < (k + 1) * rows; y++)
            for (int x = s / 2 - s / 10; x < s / 2 + s / 10; x++, n++)
                sum += img[(size_t)y * s + x];
        band[k] = sum / n;
    }
}

static void test_tgc(void)
{
    enum { S = 128, NB = 8 };
    static uint8_t img[S * S];
    ep_renderer *r = ep_renderer_create(S, S);
    ep_patient p;
    ep_scan s;
    double off[NB], on[NB];
    if (!r) {
        CHECK(0, "create");
        return;
    }
    ep_patient_init(&p, 5);
    ep_scan_default(&s, EP_VIEW_A4CH_LV);
    s.flags = EP_FLAG_UNIFORM_PHANTOM;
    s.framing = EP_FRAMING_SECTOR;
    s.seed = 77;
    s.tgc = 0.0f;
    s.gain_db = 20.0f; /* keep the uncompensated far field above black */
    CHECK(ep_render(r, &p, &s, 0.0, img, S) == EP_OK, "render tgc off");
    depth_profile(img, S, off, NB);
    s.tgc = 1.0f;
    s.gain_db = 0.0f;
    CHECK(ep_render(r, &p, &s, 0.0, img, S) == EP_OK, "render tgc on");
    depth_profile(img, S, on, NB);
    for (int k = 2; k < NB; k++) {
        CHECK(off[k] < off[k - 1], "without TGC brightness falls with depth: band %d %.1f >= %.1f",
              k, off[k], off[k - 1]);
        CHECK(on[k] > 0.75 * on[1] && on[k] < 1.33 * on[1],
              "with TGC roughly flat: band %d %.1f vs %.1f", k, on[k], on[1]);
    }
    CHECK(off[NB - 1] < 0.5 * off[1], "attenuation is strong without TGC: %.1f vs %.1f",
          off[NB - 1], off[1]);
    ep_renderer_free(r);
}

/* Contrast-to-noise ratio between myocardium and blood, from the ground-truth labels. */
static double cnr(const uint8_t *img, const uint8_t *lab, size_t n, double *blood_mean)
{
    double sb = 0, sb2 = 0, sm = 0, sm2 = 0;
    size_t nb = 0, nm = 0;
    for (size_t i = 0; i < n; i++) {
        double v = img[i];
        if (lab[i] == EP_TISSUE_BLOOD)
            sb += v, sb2 += v * v, nb++;
        else if (lab[i] == EP_TISSUE_MYOCARDIUM)
            sm += v, sm2 += v * v, nm++;
    }
    if (nb < 100 || nm < 100)
        return -1.0;
    double mb = sb / nb, mm = sm / nm;
    double vb = sb2 / nb - mb * mb, vm = sm2 / nm - mm * mm;
    *blood_mean = mb;
    return (mm - mb) / sqrt(vb + vm);
}

static void test_quality(void)
{
    enum { S = 128 };
    static uint8_t img[S * S], lab[S * S];
    ep_renderer *r = ep_renderer_create(S, S);
    if (!r) {
        CHECK(0, "create");
        return;
    }
    double sum5 = 0, sum1 = 0, blood5 = 0, blood1 = 0;
    int n = 0;
    for (int i = 0; i < 6; i++) {
        ep_patient p;
        ep_scan s;
        ep_patient_init(&p, 40 + (uint64_t)i);
        ep_scan_default(&s, i % 2 ? EP_VIEW_A4CH_LV : EP_VIEW_PSAX_LV);
        s.framing = EP_FRAMING_SECTOR;
        s.seed = 500 + (uint64_t)i;
        s.noise_seed = 600 + (uint64_t)i;
        double b5 = 0, b1 = 0;
        CHECK(ep_render_labels(r, &p, &s, 0.0, lab, S) == EP_OK, "labels");
        s.quality = 5;
        CHECK(ep_render(r, &p, &s, 0.0, img, S) == EP_OK, "q5");
        double c5 = cnr(img, lab, (size_t)S * S, &b5);
        s.quality = 1;
        CHECK(ep_render(r, &p, &s, 0.0, img, S) == EP_OK, "q1");
        double c1 = cnr(img, lab, (size_t)S * S, &b1);
        CHECK(c5 > 0 && c1 > -1, "labels contain blood and myocardium");
        sum5 += c5, sum1 += c1, blood5 += b5, blood1 += b1, n++;
    }
    printf("quality: CNR myocardium/blood q5 %.2f q1 %.2f; blood mean q5 %.1f q1 %.1f\n", sum5 / n,
           sum1 / n, blood5 / n, blood1 / n);
    CHECK(sum5 > 1.5 * sum1, "quality 5 has clearly better contrast-to-noise than 1 (%.2f vs %.2f)",
          sum5 / n, sum1 / n);
    CHECK(blood1 > blood5 + 5.0, "quality 1 fills blood pools with clutter (%.1f vs %.1f)",
          blood1 / n, blood5 / n);
    ep_renderer_free(r);
}

/* 8x8 block means: anatomy without speckle. */
static void blocks(const uint8_t *img, int s, double *out)
{
    int nb = s / 8;
    for (int by = 0; by < nb; by++)
        for (int bx = 0; bx < nb; bx++) {
            double sum = 0;
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    sum += img[(size_t)(by * 8 + y) * s + bx * 8 + x];
            out[by * nb + bx] = sum / 64.0;
        }
}

static double block_dist(const double *a, const double *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        d += fabs(a[i] - b[i]);
    return d / n;
}

static void test_views_differ(void)
{
    enum { S = 128, NBL = (S / 8) * (S / 8) };
    static uint8_t img[S * S];
    static double ed[14][NBL], es[14][NBL];
    ep_renderer *r = ep_renderer_create(S, S);
    if (!r) {
        CHECK(0, "create");
        return;
    }
    ep_patient p;
    ep_patient_init(&p, 3);
    for (int v = 0; v < 14; v++) {
        ep_scan s;
        ep_scan_default(&s, v);
        s.framing = EP_FRAMING_SECTOR;
        s.seed = 9;
        s.noise_seed = 10;
        CHECK(ep_render(r, &p, &s, 0.0, img, S) == EP_OK, "ed");
        blocks(img, S, ed[v]);
        CHECK(ep_render(r, &p, &s, 0.36, img, S) == EP_OK, "es");
        blocks(img, S, es[v]);
    }
    double within = 0, between = 0;
    int nbetween = 0;
    for (int v = 0; v < 14; v++) {
        double w = block_dist(ed[v], es[v], NBL);
        within += w;
        double nearest = 1e9;
        int nearest_view = -1;
        for (int u = 0; u < 14; u++) {
            if (u == v)
                continue;
            double d = block_dist(ed[v], ed[u], NBL);
            if (d < nearest)
                nearest = d, nearest_view = u;
            between += d, nbetween++;
        }
        /* the hard pairs are each other's nearest neighbours, as in real echo; A4CH-LV pairs
         * with both A5CH and A4CH-RV, its nearest being the A5CH */
        static const int partner[14] = {
            [EP_VIEW_A2CH] = EP_VIEW_A3CH,
            [EP_VIEW_A3CH] = EP_VIEW_A2CH,
            [EP_VIEW_A4CH_LV] = EP_VIEW_A5CH,
            [EP_VIEW_A5CH] = EP_VIEW_A4CH_LV,
            [EP_VIEW_A4CH_RV] = EP_VIEW_A4CH_LV,
            [EP_VIEW_PLAX_FULL] = EP_VIEW_PLAX_VALVES,
            [EP_VIEW_PLAX_VALVES] = EP_VIEW_PLAX_FULL,
        };
        int want = partner[v];
        /* A5CH sits within a few grey levels of A4CH-LV, so the RV view may land on either */
        if (v == EP_VIEW_A4CH_RV && nearest_view == EP_VIEW_A5CH)
            want = EP_VIEW_A5CH;
        if (want || v == EP_VIEW_A3CH)
            CHECK(nearest_view == want, "%s nearest %s, expected %s", expected_names[v],
                  expected_names[nearest_view], expected_names[want]);
        printf("  %-13s phase change %5.1f, nearest other view %-13s %5.1f\n", expected_names[v], w,
               expected_names[nearest_view], nearest);
    }
    within /= 14;
    between /= nbetween;
    printf("views: mean block distance between views %.1f, between phases of one view %.1f\n",
           between, within);
    CHECK(between > 2.0 * within, "views differ more than phases (%.1f vs %.1f)", between, within);
    ep_renderer_free(r);
}

/* Each thread renders its own list of frames with its own renderer. */
enum { THREAD_FRAMES = 6, THREAD_S = 96 };
typedef struct thread_job {
    int first;
    uint8_t out[THREAD_FRAMES][THREAD_S * THREAD_S];
    int rc;
} thread_job;

static void *render_job(void *arg)
{
    thread_job *job = arg;
    ep_renderer *r = ep_renderer_create(THREAD_S, THREAD_S);
    job->rc = r ? EP_OK : EP_ERR_NOMEM;
    for (int i = 0; r && i < THREAD_FRAMES && job->rc == EP_OK; i++) {
        int k = job->first + i;
        ep_patient p;
        ep_scan s;
        ep_patient_init(&p, 700 + (uint64_t)k);
        ep_scan_init(&s, k % 14, 800 + (uint64_t)k);
        s.framing = EP_FRAMING_SECTOR;
        job->rc = ep_render(r, &p, &s, 0.13 * k - floor(0.13 * k), job->out[i], THREAD_S);
    }
    ep_renderer_free(r);
    return NULL;
}

static void test_threads(void)
{
    static thread_job serial[2], parallel[2];
    pthread_t tid[2];
    int started[2] = {0, 0};
    for (int t = 0; t < 2; t++) {
        serial[t].first = parallel[t].first = t * THREAD_FRAMES;
        render_job(&serial[t]);
        CHECK(serial[t].rc == EP_OK, "serial render %d", t);
    }
    for (int t = 0; t < 2; t++) {
        started[t] = pthread_create(&tid[t], NULL, render_job, &parallel[t]) == 0;
        CHECK(started[t], "pthread_create %d", t);
    }
    for (int t = 0; t < 2; t++) {
        if (!started[t])
            continue;
        pthread_join(tid[t], NULL);
        CHECK(parallel[t].rc == EP_OK, "threaded render %d", t);
        for (int i = 0; i < THREAD_FRAMES; i++)
            CHECK(memcmp(serial[t].out[i], parallel[t].out[i], sizeof serial[t].out[i]) == 0,
                  "thread %d frame %d: %zu bytes differ from the single-thread render", t, i,
                  count_diff(serial[t].out[i], parallel[t].out[i], sizeof serial[t].out[i]));
    }
}

static void test_bad_arguments(void)
{
    enum { S = 32 };
    uint8_t img[S * S];
    ep_renderer *r = ep_renderer_create(S, S);
    ep_patient p;
    ep_scan s;
    ep_rect roi;
    CHECK(r != NULL, "create 32x32");
    CHECK(ep_renderer_create(0, 10) == NULL, "zero width");
    CHECK(ep_renderer_create(10, -1) == NULL, "negative height");
    CHECK(ep_renderer_create(5000, 10) == NULL, "oversized width");
    CHECK(ep_renderer_create(7, 7) == NULL, "too small");
    ep_renderer_free(NULL);
    CHECK(ep_patient_init(NULL, 1) == EP_ERR_INVALID, "patient NULL");
    CHECK(ep_scan_default(NULL, 0) == EP_ERR_INVALID, "scan NULL");
    CHECK(ep_scan_default(&s, 14) == EP_ERR_INVALID, "scan view 14");
    CHECK(ep_scan_init(&s, -1, 1) == EP_ERR_INVALID, "scan view -1");
    ep_patient_init(&p, 1);
    ep_scan_default(&s, 0);
    CHECK(ep_render(r, &p, &s, 0.0, img, S) == EP_OK, "good render");
    CHECK(ep_render(NULL, &p, &s, 0.0, img, S) == EP_ERR_INVALID, "NULL renderer");
    CHECK(ep_render(r, NULL, &s, 0.0, img, S) == EP_ERR_INVALID, "NULL patient");
    CHECK(ep_render(r, &p, NULL, 0.0, img, S) == EP_ERR_INVALID, "NULL scan");
    CHECK(ep_render(r, &p, &s, 0.0, NULL, S) == EP_ERR_INVALID, "NULL out");
    CHECK(ep_render(r, &p, &s, 0.0, img, S - 1) == EP_ERR_INVALID, "stride < width");
    CHECK(ep_render(r, &p, &s, NAN, img, S) == EP_ERR_INVALID, "NaN phase");
    CHECK(ep_render(r, &p, &s, INFINITY, img, S) == EP_ERR_INVALID, "infinite phase");
    CHECK(ep_render_time(r, &p, &s, NAN, img, S) == EP_ERR_INVALID, "NaN time");
    CHECK(ep_render(r, &p, &s, 3.25, img, S) == EP_OK, "phase wraps");
    struct {
        const char *what;
        ep_scan s;
    } bad[12];
    int nbad = 0;
    for (int i = 0; i < 12; i++)
        bad[i].s = s;
    bad[nbad].what = "view 14", bad[nbad++].s.view = 14;
    bad[nbad].what = "view -1", bad[nbad++].s.view = -1;
    bad[nbad].what = "quality 0", bad[nbad++].s.quality = 0;
    bad[nbad].what = "quality 6", bad[nbad++].s.quality = 6;
    bad[nbad].what = "depth 10 mm", bad[nbad++].s.depth_mm = 10.0f;
    bad[nbad].what = "NaN depth", bad[nbad++].s.depth_mm = NAN;
    bad[nbad].what = "sector 170", bad[nbad++].s.sector_deg = 170.0f;
    bad[nbad].what = "tgc -1", bad[nbad++].s.tgc = -1.0f;
    bad[nbad].what = "unknown overlay", bad[nbad++].s.overlays = 64;
    bad[nbad].what = "unknown framing", bad[nbad++].s.framing = 7;
    bad[nbad].what = "unknown flag", bad[nbad++].s.flags = 8;
    bad[nbad].what = "infinite gain", bad[nbad++].s.gain_db = INFINITY;
    for (int i = 0; i < nbad; i++) {
        CHECK(ep_scan_validate(&bad[i].s) == EP_ERR_INVALID, "validate rejects %s", bad[i].what);
        CHECK(ep_render(r, &p, &bad[i].s, 0.0, img, S) == EP_ERR_INVALID, "render rejects %s",
              bad[i].what);
        CHECK(ep_sector_roi(&bad[i].s, S, S, &roi) == EP_ERR_INVALID, "roi rejects %s",
              bad[i].what);
    }
    ep_patient q = p;
    q.lv_length_mm = NAN;
    CHECK(ep_render(r, &q, &s, 0.0, img, S) == EP_ERR_INVALID, "NaN patient field");
    q = p;
    q.wall_mm = 200.0f;
    CHECK(ep_render(r, &q, &s, 0.0, img, S) == EP_ERR_INVALID, "absurd wall");
    CHECK(ep_render_labels(r, &q, &s, 0.0, img, S) == EP_ERR_INVALID, "labels absurd wall");
    CHECK(ep_sector_roi(NULL, S, S, &roi) == EP_ERR_INVALID, "roi NULL scan");
    CHECK(ep_sector_roi(&s, 0, S, &roi) == EP_ERR_INVALID, "roi zero width");
    CHECK(ep_sector_roi(&s, S, S, NULL) == EP_ERR_INVALID, "roi NULL out");
    CHECK(strcmp(ep_strerror(EP_ERR_INVALID), "invalid argument") == 0, "strerror");
    ep_renderer_free(r);
}

int main(void)
{
    test_views();
    test_determinism();
    test_all_views_and_roi();
    test_tgc();
    test_quality();
    test_views_differ();
    test_threads();
    test_bad_arguments();
    return test_finish();
}
