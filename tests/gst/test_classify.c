/* test_classify.c: echoviewclassify under GstHarness: every input format and ROI mode against
 * the engine's own answer for the same frame, pixels untouched, interval and async carrying,
 * smoothing and hysteresis, threshold, update modes, resets and their messages, 0.05 % packet
 * loss on raw RTP (deterministic), model sharing, the model-name and
 * classes properties, latency, meta surviving videoscale/videoconvert, and the screen check of
 * roi=auto (a phantom M-mode or PW screen answered unknown by a bundle without `other`).
 * usage: test_classify MODEL_DIR (a 14-class gray fixture bundle) */
#include "gst_test_util.h"

#include "echophantom.h"

#include <glib/gstdio.h>
#include <math.h>

static const char *model_dir;
static ev_model *model;
static ev_plan *plan;
static int n_classes;

static GstHarness *classify_harness(GstBus **bus, const char *caps, ...)
{
    GstElement *e =
        make_element("echoviewclassify", "model-file", model_dir, "backend", "cpu", NULL);
    GstHarness *h;
    va_list ap;
    const char *name;

    va_start(ap, caps);
    while ((name = va_arg(ap, const char *)))
        gst_util_set_object_arg(G_OBJECT(e), name, va_arg(ap, const char *));
    va_end(ap);
    h = harness_for(e, bus);
    gst_harness_set_src_caps_str(h, caps);
    return h;
}

static void info_from_caps(GstVideoInfo *info, const char *caps)
{
    GstCaps *c = gst_caps_from_string(caps);
    gst_video_info_from_caps(info, c);
    gst_caps_unref(c);
}

/* Pushes a frame, returns the output buffer (caller unrefs). */
static GstBuffer *push_pull(GstHarness *h, GstBuffer *in)
{
    if (gst_harness_push(h, in) != GST_FLOW_OK)
        return NULL;
    return gst_harness_pull(h);
}

/* ---- formats, pixels, ROI --------------------------------------------------------------- */

static void test_formats(void)
{
    static const char *formats[] = {"GRAY8", "GRAY16_LE", "RGB",  "BGR",  "RGBx", "BGRx",
                                    "xRGB",  "xBGR",      "RGBA", "BGRA", "I420", "NV12"};
    float gray_ref[EV_MAX_CLASSES];

    for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
        /* odd width: rows are padded, so strides differ from width * bytes per pixel */
        /* YUV in full range: make_frame writes the gray value as luma (limited range and the
         * matrices: test_colour.c) */
        gboolean yuv = !strcmp(formats[i], "I420") || !strcmp(formats[i], "NV12");
        gchar *caps = g_strdup_printf("video/x-raw,format=%s,width=90,height=70,framerate=30/1%s",
                                      formats[i], yuv ? ",colorimetry=1:4:0:0" : "");
        GstBus *bus;
        GstHarness *h = classify_harness(&bus, caps, "roi", "full", NULL);
        GstVideoInfo info;
        GstBuffer *in, *out;
        GstMapInfo a, b;
        float ref[EV_MAX_CLASSES];
        GstEchoViewMeta *meta;

        info_from_caps(&info, caps);
        in = make_frame(&info, 3);
        CHECK(engine_probabilities(model, plan, &info, in, NULL, FALSE, ref) == 0,
              "%s: engine runs", formats[i]);
        if (i == 0)
            memcpy(gray_ref, ref, sizeof ref);
        gst_buffer_ref(in);
        out = push_pull(h, in);
        CHECK(out != NULL, "%s: frame passes", formats[i]);
        meta = out ? gst_buffer_get_echo_view_meta(out) : NULL;
        CHECK(meta && meta->n_probabilities == (guint)n_classes && meta->inferred && meta->age == 0,
              "%s: meta with %d probabilities, inferred", formats[i], n_classes);
        if (meta) {
            double d = max_abs_diff(meta->probabilities, ref, n_classes);
            CHECK(d <= 1e-6, "%s: probabilities equal the engine's (max diff %.2g)", formats[i], d);
            d = max_abs_diff(meta->probabilities, gray_ref, n_classes);
            CHECK(d <= 2e-3, "%s: same picture as GRAY8 gives the same answer (max diff %.2g)",
                  formats[i], d);
            CHECK(meta->label_id >= 0 && meta->probabilities[meta->label_id] == meta->confidence,
                  "%s: label is the top class", formats[i]);
        }
        /* pixels untouched, and not even copied: the output shares the input's memory */
        if (out) {
            gst_buffer_map(in, &a, GST_MAP_READ);
            gst_buffer_map(out, &b, GST_MAP_READ);
            CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0 && a.data == b.data,
                  "%s: pixels pass through unchanged and uncopied", formats[i]);
            gst_buffer_unmap(in, &a);
            gst_buffer_unmap(out, &b);
            gst_buffer_unref(out);
        }
        gst_buffer_unref(in);
        gst_harness_teardown(h);
        gst_object_unref(bus);
        g_free(caps);
    }
}

static void test_roi(void)
{
    const char *caps = "video/x-raw,format=GRAY8,width=120,height=100,framerate=30/1";
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h;
    GstBuffer *in, *out;
    float ref[EV_MAX_CLASSES];
    ev_rect roi = {17, 9, 61, 47};
    gchar *active = NULL;

    info_from_caps(&info, caps);
    in = make_frame(&info, 7);

    h = classify_harness(&bus, caps, "roi", "17,9,61,47", NULL);
    engine_probabilities(model, plan, &info, in, &roi, FALSE, ref);
    out = push_pull(h, gst_buffer_ref(in));
    {
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(out);
        double d = max_abs_diff(m->probabilities, ref, n_classes);
        CHECK(d <= 1e-6, "roi=17,9,61,47: crop+resize equal the engine's (max diff %.2g)", d);
    }
    g_object_get(h->element, "active-roi", &active, NULL);
    CHECK(active && !strcmp(active, "17,9,61,47"), "active-roi reports %s", active);
    g_free(active);
    /* a different crop gives a different answer: the roi is really used */
    engine_probabilities(model, plan, &info, in, NULL, FALSE, ref);
    {
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(out);
        CHECK(max_abs_diff(m->probabilities, ref, n_classes) > 1e-5,
              "roi result differs from the full-frame result");
    }
    gst_buffer_unref(out);
    gst_harness_teardown(h);
    gst_object_unref(bus);

    h = classify_harness(&bus, caps, "roi", "auto", NULL);
    engine_probabilities(model, plan, &info, in, NULL, TRUE, ref);
    out = push_pull(h, gst_buffer_ref(in));
    {
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(out);
        double d = max_abs_diff(m->probabilities, ref, n_classes);
        CHECK(d <= 1e-6, "roi=auto equals ev_detect_roi + engine (max diff %.2g)", d);
    }
    gst_buffer_unref(out);
    gst_harness_teardown(h);
    gst_object_unref(bus);
    gst_buffer_unref(in);
}

/* A phantom version-2 scanner frame (640x480 gray) of a view and screen kind. */
static GstBuffer *phantom_frame(const GstVideoInfo *info, int view, int screen, uint64_t seed)
{
    const int w = GST_VIDEO_INFO_WIDTH(info), hgt = GST_VIDEO_INFO_HEIGHT(info);
    GstBuffer *buf = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(info));
    ep_renderer *r = ep_renderer_create(w, hgt);
    ep_patient p;
    ep_scan s;
    GstMapInfo map;

    ep_patient_init(&p, seed);
    ep_scan_init(&s, view, seed + 1);
    s.framing = EP_FRAMING_SCANNER;
    s.overlays = EP_OVERLAY_ALL;
    ep_scan_style(&s, seed + 2, seed + 3);
    s.screen = screen;
    gst_buffer_map(buf, &map, GST_MAP_WRITE);
    CHECK(r && ep_render(r, &p, &s, 0.4, map.data, (size_t)GST_VIDEO_INFO_PLANE_STRIDE(info, 0)) ==
                   EP_OK,
          "phantom render %s", ep_screen_name(screen));
    gst_buffer_unmap(buf, &map);
    ep_renderer_free(r);
    return buf;
}

static void test_screen_check(void)
{
    const char *caps = "video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1";
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h;
    float ref[EV_MAX_CLASSES];
    GstBuffer *two_d, *screens[2];

    info_from_caps(&info, caps);
    two_d = phantom_frame(&info, EP_VIEW_A4CH_LV, EP_SCREEN_BMODE, 41);
    screens[0] = phantom_frame(&info, EP_VIEW_PLAX_FULL, EP_SCREEN_MMODE, 43);
    screens[1] = phantom_frame(&info, EP_VIEW_A4CH_LV, EP_SCREEN_PW, 47);
    /* a detection on every frame, the stable label following each result */
    h = classify_harness(&bus, caps, "roi", "auto", "roi-interval", "1", "smoothing", "1",
                         "hysteresis", "1", NULL);
    for (int round = 0; round < 2; round++) {
        GstBuffer *out = push_pull(h, gst_buffer_ref(two_d));
        GstEchoViewMeta *m = out ? gst_buffer_get_echo_view_meta(out) : NULL;
        engine_probabilities(model, plan, &info, two_d, NULL, TRUE, ref);
        CHECK(m && max_abs_diff(m->probabilities, ref, n_classes) <= 1e-6 && m->label_id >= 0 &&
                  m->stable_label_id == m->label_id,
              "a 2D frame keeps the network's answer (round %d)", round);
        if (out)
            gst_buffer_unref(out);
        out = push_pull(h, gst_buffer_ref(screens[round]));
        m = out ? gst_buffer_get_echo_view_meta(out) : NULL;
        float sum = 0.0f;
        for (int i = 0; m && i < n_classes; i++)
            sum += m->probabilities[i];
        CHECK(m && m->label_id == -1 && !strcmp(m->label, "unknown") && m->confidence == 0.0f &&
                  sum == 0.0f && m->stable_label_id == -1 && !strcmp(m->stable_label, "unknown"),
              "a %s screen is unknown for a bundle without `other` (label %s, stable %s)",
              round ? "PW" : "M-mode", m ? m->label : "-", m ? m->stable_label : "-");
        if (out)
            gst_buffer_unref(out);
    }
    gst_harness_teardown(h);
    gst_object_unref(bus);
    /* roi=full skips the check: the screen gets the network's answer */
    h = classify_harness(&bus, caps, "roi", "full", NULL);
    {
        GstBuffer *out = push_pull(h, gst_buffer_ref(screens[0]));
        GstEchoViewMeta *m = out ? gst_buffer_get_echo_view_meta(out) : NULL;
        engine_probabilities(model, plan, &info, screens[0], NULL, FALSE, ref);
        CHECK(m && max_abs_diff(m->probabilities, ref, n_classes) <= 1e-6,
              "roi=full: no screen check");
        if (out)
            gst_buffer_unref(out);
    }
    gst_harness_teardown(h);
    gst_object_unref(bus);
    gst_buffer_unref(two_d);
    gst_buffer_unref(screens[0]);
    gst_buffer_unref(screens[1]);
}

/* ---- interval, async, smoothing, hysteresis, threshold, updates, resets ------------------- */

#define CAPS_SMALL "video/x-raw,format=GRAY8,width=64,height=48,framerate=30/1"

static void test_interval(void)
{
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h =
        classify_harness(&bus, CAPS_SMALL, "inference-interval", "3", "roi", "full", NULL);
    float last[EV_MAX_CLASSES];
    guint64 frames, inferred;

    info_from_caps(&info, CAPS_SMALL);
    for (int i = 0; i < 7; i++) {
        GstBuffer *out = push_pull(h, make_frame(&info, i));
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(out);
        gboolean want_inferred = i % 3 == 0;
        CHECK(m->inferred == want_inferred && m->age == (guint64)(i % 3),
              "interval 3, frame %d: inferred %d age %" G_GUINT64_FORMAT, i, m->inferred, m->age);
        if (want_inferred) {
            float ref[EV_MAX_CLASSES];
            GstBuffer *again = make_frame(&info, i);
            engine_probabilities(model, plan, &info, again, NULL, FALSE, ref);
            gst_buffer_unref(again);
            CHECK(max_abs_diff(m->probabilities, ref, n_classes) <= 1e-6,
                  "frame %d inferred from its own pixels", i);
            memcpy(last, m->probabilities, n_classes * sizeof(float));
        } else {
            CHECK(max_abs_diff(m->probabilities, last, n_classes) == 0,
                  "frame %d carries the last result", i);
        }
        gst_buffer_unref(out);
    }
    g_object_get(h->element, "frames", &frames, "inferred", &inferred, NULL);
    CHECK(frames == 7 && inferred == 3,
          "stats: frames %" G_GUINT64_FORMAT " inferred %" G_GUINT64_FORMAT, frames, inferred);
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

static void wait_inferred(GstElement *e, guint64 n)
{
    guint64 got = 0;
    for (int i = 0; i < 500 && got < n; i++) {
        g_object_get(e, "inferred", &got, NULL);
        if (got < n)
            g_usleep(10000);
    }
}

static void test_async(void)
{
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h = classify_harness(&bus, CAPS_SMALL, "async", "true", "roi", "full", NULL);
    GstBuffer *out;
    GstEchoViewMeta *m;
    float ref[EV_MAX_CLASSES];
    GstBuffer *f0;
    guint64 skipped;
    float last[EV_MAX_CLASSES];

    info_from_caps(&info, CAPS_SMALL);
    f0 = make_frame(&info, 0);
    engine_probabilities(model, plan, &info, f0, NULL, FALSE, ref);
    out = push_pull(h, f0);
    m = gst_buffer_get_echo_view_meta(out);
    CHECK(m && m->n_probabilities == 0 && m->label_id == -1 && !m->inferred &&
              m->age == GST_ECHO_VIEW_AGE_NONE,
          "async: the first frame goes on before its result exists (age %" G_GUINT64_FORMAT
          " = GST_ECHO_VIEW_AGE_NONE)",
          m ? m->age : 0);
    gst_buffer_unref(out);
    wait_inferred(h->element, 1);
    /* frame 1 is handed to the worker and goes on with the newest result: frame 0's */
    out = push_pull(h, make_frame(&info, 1));
    m = gst_buffer_get_echo_view_meta(out);
    CHECK(m && m->n_probabilities == (guint)n_classes && m->age == 1 && m->inferred,
          "async: frame 1 carries frame 0's result with age %" G_GUINT64_FORMAT
          ", inferred: the first buffer to bring it",
          m ? m->age : 99);
    CHECK(m && max_abs_diff(m->probabilities, ref, n_classes) <= 1e-6,
          "async: the carried result is frame 0's inference");
    CHECK(m && GST_CLOCK_TIME_IS_VALID(m->latency) && m->latency > 0,
          "async: result latency %" GST_TIME_FORMAT, GST_TIME_ARGS(m ? m->latency : 0));
    gst_buffer_unref(out);
    wait_inferred(h->element, 2);
    out = push_pull(h, make_frame(&info, 2));
    m = gst_buffer_get_echo_view_meta(out);
    CHECK(m && m->age == 1 && m->inferred,
          "async: frame 2 carries frame 1's result (age %" G_GUINT64_FORMAT "), a new one",
          m ? m->age : 99);
    memcpy(last, m && m->n_probabilities ? m->probabilities : ref, sizeof(float) * n_classes);
    gst_buffer_unref(out);
    {
        /* a burst faster than the worker: buffers with a new result are at most the inferences
         * run, and each brings other probabilities than the one before (a result is new once) */
        guint64 before, after;
        int brought = 0, new_without_change = 0;
        g_object_get(h->element, "inferred", &before, NULL);
        for (int i = 0; i < 20; i++) {
            out = push_pull(h, make_frame(&info, 8 + i));
            m = gst_buffer_get_echo_view_meta(out);
            if (m && m->inferred) {
                brought++;
                new_without_change += max_abs_diff(m->probabilities, last, n_classes) == 0;
                memcpy(last, m->probabilities, sizeof(float) * n_classes);
            } else if (m) {
                new_without_change += max_abs_diff(m->probabilities, last, n_classes) != 0;
            }
            gst_buffer_unref(out);
        }
        g_object_get(h->element, "inferred", &after, NULL);
        CHECK((guint64)brought <= after - before + 1 && new_without_change == 0,
              "async: %d of 20 buffers bring a new result (%" G_GUINT64_FORMAT
              " inferences ran), every other one repeats the last",
              brought, after - before);
    }
    /* a burst faster than the worker: newest wins, nothing blocks */
    for (int i = 0; i < 50; i++)
        gst_buffer_unref(push_pull(h, make_frame(&info, i)));
    g_object_get(h->element, "skipped", &skipped, NULL);
    printf("     async burst of 50: %" G_GUINT64_FORMAT " inferences skipped\n", skipped);
    gst_harness_teardown(h);
    gst_object_unref(bus);

    /* async with inference-interval 3: frame 0 alone goes to the worker; once it answered,
     * frame 1 brings the result (inferred, age 1) and frame 2 repeats it (the worker has
     * nothing else: not inferred, age 2) */
    h = classify_harness(&bus, CAPS_SMALL, "async", "true", "inference-interval", "3", "roi",
                         "full", NULL);
    gst_buffer_unref(push_pull(h, make_frame(&info, 0)));
    wait_inferred(h->element, 1);
    for (int i = 1; i <= 2; i++) {
        out = push_pull(h, make_frame(&info, i));
        m = gst_buffer_get_echo_view_meta(out);
        CHECK(m && m->age == (guint64)i && m->inferred == (i == 1),
              "async, interval 3, frame %d: age %" G_GUINT64_FORMAT ", inferred %d (want %d)", i,
              m ? m->age : 99, m ? m->inferred : -1, i == 1);
        gst_buffer_unref(out);
    }
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

static int stable_label_top_of(const float *p)
{
    int best = 0;
    for (int c = 1; c < n_classes; c++)
        if (p[c] > p[best])
            best = c;
    return best;
}

/* Two frames the fixture network labels differently (found by search, asserted). */
static int frame_a = -1, frame_b = -1;

static void find_two_labels(void)
{
    GstVideoInfo info;
    int top[512];
    float p[EV_MAX_CLASSES];

    info_from_caps(&info, CAPS_SMALL);
    for (int v = 0; v < 512 && frame_b < 0; v++) {
        GstBuffer *b = make_frame(&info, v);
        engine_probabilities(model, plan, &info, b, NULL, FALSE, p);
        gst_buffer_unref(b);
        top[v] = 0;
        for (int c = 1; c < n_classes; c++)
            if (p[c] > p[top[v]])
                top[v] = c;
        for (int u = 0; u < v; u++)
            if (top[u] != top[v]) {
                frame_a = u;
                frame_b = v;
                break;
            }
    }
    CHECK(frame_b >= 0, "found two patterns with different labels (%d, %d)", frame_a, frame_b);
}

/* Replays the documented rule on the raw probabilities: mean of the last `window` results,
 * candidate = top class (or -1 below threshold), switch after `k` consecutive leads. */
typedef struct {
    float hist[64][EV_MAX_CLASSES];
    int count, stable, cand, run;
} Rule;

static int rule_step(Rule *r, const float *p, int window, int k, double threshold)
{
    float mean[EV_MAX_CLASSES] = {0};
    int n, best = 0;
    memcpy(r->hist[r->count % 64], p, n_classes * sizeof(float));
    r->count++;
    n = MIN(window, r->count);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < n_classes; c++)
            mean[c] += r->hist[(r->count - 1 - i) % 64][c];
    for (int c = 1; c < n_classes; c++)
        if (mean[c] > mean[best])
            best = c;
    if (mean[best] / n < threshold)
        best = -1;
    if (best == r->stable) {
        r->run = 0;
    } else {
        r->run = best == r->cand ? r->run + 1 : 1;
        r->cand = best;
        if (r->run >= k) {
            r->stable = best;
            r->run = 0;
        }
    }
    return r->stable;
}

static void test_hysteresis(void)
{
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h;
    int seq_switch[] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1};
    int want_stable_k3[G_N_ELEMENTS(seq_switch)];
    int la, lb;
    GList *msgs;

    if (frame_b < 0)
        return;
    info_from_caps(&info, CAPS_SMALL);
    /* smoothing 1, hysteresis 3: A needs 3 frames, B 3 frames, alternation never switches */
    h = classify_harness(&bus, CAPS_SMALL, "smoothing", "1", "hysteresis", "3", "roi", "full",
                         "updates", "on-change", NULL);
    {
        GstEchoViewMeta *m;
        GstBuffer *o = push_pull(h, make_frame(&info, frame_a));
        la = gst_buffer_get_echo_view_meta(o)->label_id;
        gst_buffer_unref(o);
        o = push_pull(h, make_frame(&info, frame_b));
        lb = gst_buffer_get_echo_view_meta(o)->label_id;
        m = gst_buffer_get_echo_view_meta(o);
        (void)m;
        gst_buffer_unref(o);
    }
    gst_harness_teardown(h);
    gst_object_unref(bus);
    CHECK(la != lb && la >= 0 && lb >= 0, "labels of the two patterns: %d %d", la, lb);

    {
        Rule r = {.stable = -1, .cand = -1};
        float pa[EV_MAX_CLASSES] = {0}, pb[EV_MAX_CLASSES] = {0};
        pa[la] = 1;
        pb[lb] = 1;
        for (guint i = 0; i < G_N_ELEMENTS(seq_switch); i++)
            want_stable_k3[i] = rule_step(&r, seq_switch[i] ? pb : pa, 1, 3, 0.0);
    }
    CHECK(want_stable_k3[1] == -1 && want_stable_k3[2] == la && want_stable_k3[6] == lb &&
              want_stable_k3[13] == lb,
          "the rule itself: A after 3, B after 3, no flicker");

    h = classify_harness(&bus, CAPS_SMALL, "smoothing", "1", "hysteresis", "3", "roi", "full",
                         "updates", "on-change", NULL);
    {
        int mismatches = 0;
        for (guint i = 0; i < G_N_ELEMENTS(seq_switch); i++) {
            GstBuffer *o = push_pull(h, make_frame(&info, seq_switch[i] ? frame_b : frame_a));
            GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(o);
            if (m->stable_label_id != want_stable_k3[i]) {
                mismatches++;
                printf("     frame %u: stable %d want %d\n", i, m->stable_label_id,
                       want_stable_k3[i]);
            }
            gst_buffer_unref(o);
        }
        CHECK(mismatches == 0, "hysteresis 3: stable labels follow the rule (%d mismatches)",
              mismatches);
    }
    msgs = pop_classify_messages(bus);
    CHECK(g_list_length(msgs) == 2, "on-change: 2 messages (unknown->A, A->B), got %u",
          g_list_length(msgs));
    if (g_list_length(msgs) == 2) {
        const GstStructure *s1 = gst_message_get_structure(msgs->data);
        const GstStructure *s2 = gst_message_get_structure(msgs->next->data);
        CHECK(!g_strcmp0(gst_structure_get_string(s1, "previous-label"), "unknown") &&
                  !g_strcmp0(gst_structure_get_string(s2, "previous-label"),
                             gst_structure_get_string(s1, "stable-label")) &&
                  g_strcmp0(gst_structure_get_string(s1, "stable-label"),
                            gst_structure_get_string(s2, "stable-label")) != 0,
              "on-change messages: previous-label %s -> stable %s, then %s -> %s",
              gst_structure_get_string(s1, "previous-label"),
              gst_structure_get_string(s1, "stable-label"),
              gst_structure_get_string(s2, "previous-label"),
              gst_structure_get_string(s2, "stable-label"));
    }
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
    gst_harness_teardown(h);
    gst_object_unref(bus);

    /* smoothing 4, hysteresis 2 on a pseudo-random A/B sequence with the real probabilities */
    h = classify_harness(&bus, CAPS_SMALL, "smoothing", "4", "hysteresis", "2", "roi", "full",
                         NULL);
    {
        Rule r = {.stable = -1, .cand = -1};
        int mismatches = 0;
        guint32 state = 12345;
        for (int i = 0; i < 60; i++) {
            state = state * 1103515245u + 12345u;
            GstBuffer *o = push_pull(h, make_frame(&info, (state >> 16) % 3 ? frame_a : frame_b));
            GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(o);
            int want = rule_step(&r, m->probabilities, 4, 2, 0.0);
            mismatches += m->stable_label_id != want;
            gst_buffer_unref(o);
        }
        CHECK(mismatches == 0,
              "smoothing 4 + hysteresis 2 follow the rule on 60 frames "
              "(%d mismatches)",
              mismatches);
    }
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

/* The default confidence-threshold (-1) is the model's calibrated one: a copy of the fixture
 * with `calibration: {temperature: 1, confidence_threshold: 0.99}` answers unknown at the default
 * and its top class with confidence-threshold 0 set explicitly. */
static void test_model_threshold(void)
{
    GstVideoInfo info;
    GError *gerr = NULL;
    gchar *dir = g_dir_make_tmp("echoview-calibrated-XXXXXX", &gerr);
    gchar *yaml_in = g_build_filename(model_dir, "model.yaml", NULL);
    gchar *weights_in = g_build_filename(model_dir, "weights.safetensors", NULL);
    gchar *yaml_out = g_build_filename(dir, "model.yaml", NULL);
    gchar *weights_out = g_build_filename(dir, "weights.safetensors", NULL);
    gchar *text = NULL, *weights = NULL;
    gsize text_len = 0, weights_len = 0;

    CHECK(dir && g_file_get_contents(yaml_in, &text, &text_len, NULL) &&
              g_file_get_contents(weights_in, &weights, &weights_len, NULL),
          "copy of the fixture bundle");
    gchar *calibrated =
        g_strconcat(text, "calibration: {temperature: 1, confidence_threshold: 0.99}\n", NULL);
    CHECK(g_file_set_contents(yaml_out, calibrated, -1, NULL) &&
              g_file_set_contents(weights_out, weights, (gssize)weights_len, NULL),
          "calibrated bundle written");
    info_from_caps(&info, CAPS_SMALL);
    for (int explicit_zero = 0; explicit_zero < 2; explicit_zero++) {
        GstBus *bus;
        GstElement *e = make_element("echoviewclassify", "model-file", dir, "backend", "cpu", "roi",
                                     "full", NULL);
        gdouble property = 0;
        if (explicit_zero)
            g_object_set(e, "confidence-threshold", 0.0, NULL);
        g_object_get(e, "confidence-threshold", &property, NULL);
        CHECK(property == (explicit_zero ? 0.0 : -1.0), "confidence-threshold reads %g", property);
        GstHarness *h = harness_for(e, &bus);
        gst_harness_set_src_caps_str(h, CAPS_SMALL);
        GstBuffer *in = make_frame(&info, 0);
        GST_BUFFER_PTS(in) = 0;
        GstBuffer *o = push_pull(h, in);
        GstEchoViewMeta *m = o ? gst_buffer_get_echo_view_meta(o) : NULL;
        CHECK(m && m->confidence > 0 && m->confidence < 0.99, "fixture confidence below 0.99");
        if (m && explicit_zero)
            CHECK(m->label_id >= 0 && strcmp(m->label, "unknown"),
                  "confidence-threshold 0 overrides the model's: label %s", m->label);
        else if (m)
            CHECK(m->label_id == -1 && !strcmp(m->label, "unknown"),
                  "default threshold = the model's 0.99: label %s (confidence %.3f)", m->label,
                  m->confidence);
        if (o)
            gst_buffer_unref(o);
        gst_harness_teardown(h);
        gst_object_unref(bus);
    }
    g_unlink(yaml_out);
    g_unlink(weights_out);
    g_rmdir(dir);
    g_free(calibrated);
    g_free(text);
    g_free(weights);
    g_free(yaml_in);
    g_free(weights_in);
    g_free(yaml_out);
    g_free(weights_out);
    g_free(dir);
}

static void test_threshold_and_updates(void)
{
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h;
    GList *msgs;

    info_from_caps(&info, CAPS_SMALL);
    h = classify_harness(&bus, CAPS_SMALL, "confidence-threshold", "0.99", "hysteresis", "1",
                         "updates", "every-frame", "roi", "full", NULL);
    for (int i = 0; i < 4; i++) {
        GstBuffer *in = make_frame(&info, i);
        GST_BUFFER_PTS(in) = i * 33 * GST_MSECOND;
        GST_BUFFER_DURATION(in) = 33 * GST_MSECOND;
        GstBuffer *o = push_pull(h, in);
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(o);
        CHECK(m->label_id == -1 && !strcmp(m->label, "unknown") && m->confidence > 0 &&
                  m->confidence < 0.99 && m->stable_label_id == -1,
              "threshold 0.99: label %s (confidence %.3f reported), stable %s", m->label,
              m->confidence, m->stable_label);
        gst_buffer_unref(o);
    }
    msgs = pop_classify_messages(bus);
    CHECK(g_list_length(msgs) == 4, "every-frame: 4 messages for 4 frames (got %u)",
          g_list_length(msgs));
    if (msgs) {
        const GstStructure *s = gst_message_get_structure(g_list_last(msgs)->data);
        guint64 ts = 0, rt = 0, st = 0, dur = 0;
        const GValue *probs = gst_structure_get_value(s, "probabilities");
        gint id = 0;
        gdouble conf = 0;
        gst_structure_get(s, "timestamp", G_TYPE_UINT64, &ts, "running-time", G_TYPE_UINT64, &rt,
                          "stream-time", G_TYPE_UINT64, &st, "duration", G_TYPE_UINT64, &dur,
                          "label-id", G_TYPE_INT, &id, "confidence", G_TYPE_DOUBLE, &conf, NULL);
        CHECK(ts == 99 * GST_MSECOND && rt == ts && st == ts && dur == 33 * GST_MSECOND,
              "message times: timestamp %" GST_TIME_FORMAT " running %" GST_TIME_FORMAT
              " stream %" GST_TIME_FORMAT,
              GST_TIME_ARGS(ts), GST_TIME_ARGS(rt), GST_TIME_ARGS(st));
        CHECK(id == -1 && !g_strcmp0(gst_structure_get_string(s, "label"), "unknown") && conf > 0 &&
                  gst_structure_has_field(s, "stable-label") &&
                  gst_structure_has_field(s, "previous-label"),
              "message label fields");
        CHECK(probs && GST_VALUE_HOLDS_ARRAY(probs) &&
                  gst_value_array_get_size(probs) == (guint)n_classes &&
                  G_VALUE_HOLDS_DOUBLE(gst_value_array_get_value(probs, 0)),
              "message probabilities: array of %d doubles", n_classes);
        if (probs && GST_VALUE_HOLDS_ARRAY(probs)) {
            double sum = 0;
            for (guint i = 0; i < gst_value_array_get_size(probs); i++)
                sum += g_value_get_double(gst_value_array_get_value(probs, i));
            CHECK(fabs(sum - 1.0) < 1e-5, "probabilities sum to 1 (%.7f)", sum);
        }
    }
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
    gst_harness_teardown(h);
    gst_object_unref(bus);

    /* threshold 0: label = top class; updates=none: no messages at all */
    h = classify_harness(&bus, CAPS_SMALL, "updates", "none", "hysteresis", "1", "roi", "full",
                         NULL);
    for (int i = 0; i < 5; i++) {
        GstBuffer *o = push_pull(h, make_frame(&info, i));
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(o);
        CHECK(m->label_id >= 0 && m->confidence == m->probabilities[m->label_id],
              "threshold 0: label %s is the top class", m->label);
        gst_buffer_unref(o);
    }
    msgs = pop_classify_messages(bus);
    CHECK(msgs == NULL, "updates=none: no messages (%u)", g_list_length(msgs));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

static void expect_reset(GstHarness *h, GstVideoInfo *info, const char *what)
{
    GstBuffer *o = push_pull(h, make_frame(info, frame_a));
    GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(o);
    CHECK(m->inferred && m->age == 0 && m->stable_label_id == -1,
          "%s: per-stream state reset (inferred %d, age %" G_GUINT64_FORMAT ", stable %s)", what,
          m->inferred, m->age, m->stable_label);
    gst_buffer_unref(o);
}

/* Pops the element messages waiting on bus: resets (echoviewclassify-reset) and changes. */
static GList *pop_messages_named(GstBus *bus, const char *name)
{
    GList *list = NULL;
    GstMessage *m;
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
        if (gst_message_has_name(m, name))
            list = g_list_append(list, m);
        else
            gst_message_unref(m);
    }
    return list;
}

/* Exactly one reset message waiting, with this reason, frame count and previous label. */
static void expect_reset_message(GstBus *bus, const char *reason, guint64 frames,
                                 const char *previous, GstClockTime ts)
{
    GList *msgs = pop_messages_named(bus, "echoviewclassify-reset");
    const GstStructure *s = msgs ? gst_message_get_structure(msgs->data) : NULL;
    guint64 got_frames = 0, got_ts = 0;
    gint previous_id = -2, stable_id = 0;

    if (s)
        gst_structure_get(s, "frames", G_TYPE_UINT64, &got_frames, "timestamp", G_TYPE_UINT64,
                          &got_ts, "previous-label-id", G_TYPE_INT, &previous_id, "stable-label-id",
                          G_TYPE_INT, &stable_id, NULL);
    CHECK(g_list_length(msgs) == 1 && !g_strcmp0(gst_structure_get_string(s, "reason"), reason) &&
              got_frames == frames && got_ts == ts &&
              !g_strcmp0(gst_structure_get_string(s, "previous-label"), previous) &&
              previous_id >= 0 && !strcmp(ev_model_class_name(model, previous_id), previous) &&
              !g_strcmp0(gst_structure_get_string(s, "stable-label"), "unknown") &&
              stable_id == -1 &&
              !g_strcmp0(gst_structure_get_string(s, "model"), ev_model_name(model)),
          "%s: one reset message (got %u: reason %s, frames %" G_GUINT64_FORMAT
          ", previous-label %s, timestamp %" GST_TIME_FORMAT ")",
          reason, g_list_length(msgs), s ? gst_structure_get_string(s, "reason") : "-", got_frames,
          s ? gst_structure_get_string(s, "previous-label") : "-", GST_TIME_ARGS(got_ts));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
}

static void push_segment(GstHarness *h)
{
    GstSegment segment;
    gst_segment_init(&segment, GST_FORMAT_TIME);
    gst_harness_push_event(h, gst_event_new_segment(&segment));
}

static void test_resets(void)
{
    GstVideoInfo info, wide;
    GstBus *bus;
    GstHarness *h;
    GstBuffer *in, *o;
    GstEchoViewMeta *m;
    GList *msgs;
    const char *la;
    guint reset_on = 0;

    if (frame_a < 0)
        return;
    info_from_caps(&info, CAPS_SMALL);
    la = NULL;
    /* interval 2, hysteresis 2: a stable label needs two inferences, so right after a reset the
     * stable label is unknown and the first frame is inferred */
    h = classify_harness(&bus, CAPS_SMALL, "inference-interval", "2", "smoothing", "1",
                         "hysteresis", "2", "roi", "full", NULL);
    g_object_get(h->element, "reset-on", &reset_on, NULL);
    /* the flag values: flush 1, discont 2, stream-start 4, caps 8 */
    CHECK(reset_on == (1 | 4 | 8), "reset-on defaults to flush+stream-start+caps (0x%x)", reset_on);
#define WARM(n)                                                         \
    do {                                                                \
        for (int i = 0; i < (n); i++)                                   \
            gst_buffer_unref(push_pull(h, make_frame(&info, frame_a))); \
    } while (0)
    WARM(3);
    o = push_pull(h, make_frame(&info, frame_a));
    m = gst_buffer_get_echo_view_meta(o);
    la = m->stable_label;
    CHECK(!m->inferred && m->age == 1 && m->stable_label_id >= 0, "before reset: age 1, stable %s",
          m->stable_label);
    gst_buffer_unref(o);
    g_list_free_full(pop_classify_messages(bus), (GDestroyNotify)gst_message_unref);

    gst_harness_push_event(h, gst_event_new_flush_start());
    gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
    push_segment(h);
    expect_reset_message(bus, "flush", 4, la, GST_CLOCK_TIME_NONE);
    expect_reset(h, &info, "FLUSH_STOP");

    /* a DISCONT buffer (a lost packet) keeps the history by default: the frame at index 5 is
     * not scheduled (interval 2) and still carries the result of frame 4 */
    WARM(4);
    g_list_free_full(pop_classify_messages(bus), (GDestroyNotify)gst_message_unref);
    in = make_frame(&info, frame_a);
    GST_BUFFER_FLAG_SET(in, GST_BUFFER_FLAG_DISCONT);
    o = push_pull(h, in);
    m = gst_buffer_get_echo_view_meta(o);
    CHECK(!m->inferred && m->age == 1 && m->stable_label == la,
          "DISCONT with the default reset-on: history kept (inferred %d, age %" G_GUINT64_FORMAT
          ", stable %s)",
          m->inferred, m->age, m->stable_label);
    gst_buffer_unref(o);
    msgs = pop_messages_named(bus, "echoviewclassify-reset");
    CHECK(msgs == NULL, "DISCONT with the default reset-on: no reset message (%u)",
          g_list_length(msgs));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);

    /* with discont in reset-on it resets and says so, dated by the buffer */
    gst_util_set_object_arg(G_OBJECT(h->element), "reset-on", "flush+discont+stream-start");
    in = make_frame(&info, frame_a);
    GST_BUFFER_FLAG_SET(in, GST_BUFFER_FLAG_DISCONT);
    GST_BUFFER_PTS(in) = 7 * GST_SECOND;
    o = push_pull(h, in);
    m = gst_buffer_get_echo_view_meta(o);
    CHECK(m->inferred && m->age == 0 && m->stable_label_id == -1,
          "reset-on with discont: per-stream state reset (inferred %d, age %" G_GUINT64_FORMAT
          ", stable %s)",
          m->inferred, m->age, m->stable_label);
    gst_buffer_unref(o);
    expect_reset_message(bus, "discont", 6, la, 7 * GST_SECOND);
    /* the next change message starts from unknown, as the reset message said */
    WARM(2);
    msgs = pop_classify_messages(bus);
    CHECK(g_list_length(msgs) == 1 &&
              !g_strcmp0(
                  gst_structure_get_string(gst_message_get_structure(msgs->data), "previous-label"),
                  "unknown") &&
              !g_strcmp0(
                  gst_structure_get_string(gst_message_get_structure(msgs->data), "stable-label"),
                  la),
          "after a reset: the change message says previous-label unknown -> %s (%u messages)", la,
          g_list_length(msgs));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);

    WARM(2);
    gst_harness_push_event(h, gst_event_new_stream_start("another-stream"));
    expect_reset_message(bus, "stream-start", 5, la, GST_CLOCK_TIME_NONE);
    expect_reset(h, &info, "STREAM_START");

    /* caps is no longer in reset-on: new caps keep the history (the ROI is chosen again) */
    WARM(3);
    gst_harness_set_src_caps_str(h, "video/x-raw,format=GRAY8,width=64,height=50,framerate=30/1");
    info_from_caps(&wide, "video/x-raw,format=GRAY8,width=64,height=50,framerate=30/1");
    o = push_pull(h, make_frame(&wide, frame_a));
    m = gst_buffer_get_echo_view_meta(o);
    CHECK(m->inferred && m->stable_label == la, "new caps without caps in reset-on: stable %s kept",
          m->stable_label);
    gst_buffer_unref(o);
    msgs = pop_messages_named(bus, "echoviewclassify-reset");
    CHECK(msgs == NULL, "new caps without caps in reset-on: no reset message (%u)",
          g_list_length(msgs));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);

    /* with caps: a different format resets, the same caps again do not */
    gst_util_set_object_arg(G_OBJECT(h->element), "reset-on", "caps");
    gst_harness_set_src_caps_str(h, CAPS_SMALL);
    expect_reset_message(bus, "caps", 5, la, GST_CLOCK_TIME_NONE);
    expect_reset(h, &info, "new caps");
    WARM(3);
    gst_harness_set_src_caps_str(h, CAPS_SMALL);
    msgs = pop_messages_named(bus, "echoviewclassify-reset");
    CHECK(msgs == NULL, "the same caps again: no reset (%u)", g_list_length(msgs));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);

    /* updates=none: the reset happens, silently */
    gst_util_set_object_arg(G_OBJECT(h->element), "updates", "none");
    gst_util_set_object_arg(G_OBJECT(h->element), "reset-on", "flush");
    gst_harness_push_event(h, gst_event_new_flush_start());
    gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
    push_segment(h);
    expect_reset(h, &info, "FLUSH_STOP with updates=none");
    msgs = pop_messages_named(bus, "echoviewclassify-reset");
    CHECK(msgs == NULL, "updates=none: no reset message (%u)", g_list_length(msgs));
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
#undef WARM
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

/* Raw RTP with 0.05 % packet loss, deterministically: an 800x600 I420 frame in RFC 4175 takes
 * 720000 bytes / 1388 bytes of payload = 519 packets at rtpvrawpay's default MTU, so with a drop
 * probability of 0.0005 per packet 1 - 0.9995^519 = 23 % of the frames lose a packet; each such
 * frame arrives flagged DISCONT. 30 s at 30 fps: the sent view is the fixture's label of
 * pattern A for 15 s, then of pattern B. Returns the share of frames after the first second
 * whose stable label is the sent view; counts the change and reset messages. */
static double packet_loss_run(const char *reset_on, guint *changes, guint *resets, guint *disconts,
                              gboolean *previous_ok)
{
    const int frames = 900, switch_at = 450, fps = 30, packets = 519;
    const double drop = 0.0005;
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h;
    GList *msgs, *l;
    guint64 rng = 20261203;
    int label_a, label_b, match = 0, counted = 0;
    const char *announced = "unknown";
    float p[EV_MAX_CLASSES];
    GstBuffer *b;

    info_from_caps(&info, CAPS_SMALL);
    b = make_frame(&info, frame_a);
    engine_probabilities(model, plan, &info, b, NULL, FALSE, p);
    label_a = stable_label_top_of(p);
    gst_buffer_unref(b);
    b = make_frame(&info, frame_b);
    engine_probabilities(model, plan, &info, b, NULL, FALSE, p);
    label_b = stable_label_top_of(p);
    gst_buffer_unref(b);

    h = classify_harness(&bus, CAPS_SMALL, "roi", "full", "reset-on", reset_on, NULL);
    *disconts = 0;
    for (int f = 0; f < frames; f++) {
        gboolean lost = FALSE;
        GstBuffer *in = make_frame(&info, f < switch_at ? frame_a : frame_b), *o;
        GstEchoViewMeta *m;
        for (int k = 0; k < packets; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            lost |= (double)(rng >> 11) / (double)(1ull << 53) < drop;
        }
        GST_BUFFER_PTS(in) = gst_util_uint64_scale(f, GST_SECOND, fps);
        GST_BUFFER_DURATION(in) = GST_SECOND / fps;
        if (lost) {
            GST_BUFFER_FLAG_SET(in, GST_BUFFER_FLAG_DISCONT);
            (*disconts)++;
        }
        o = push_pull(h, in);
        m = gst_buffer_get_echo_view_meta(o);
        if (f >= fps) {
            counted++;
            match += m->stable_label_id == (f < switch_at ? label_a : label_b);
        }
        gst_buffer_unref(o);
    }
    /* change and reset messages in order: each one's previous-label is what the one before
     * announced */
    *changes = *resets = 0;
    *previous_ok = TRUE;
    msgs = NULL;
    {
        GstMessage *msg;
        while ((msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)))
            msgs = g_list_append(msgs, msg);
    }
    for (l = msgs; l; l = l->next) {
        const GstStructure *s = gst_message_get_structure(l->data);
        if (gst_structure_has_name(s, "echoviewclassify"))
            (*changes)++;
        else if (gst_structure_has_name(s, "echoviewclassify-reset"))
            (*resets)++;
        else
            continue;
        *previous_ok &= !g_strcmp0(gst_structure_get_string(s, "previous-label"), announced);
        announced = gst_structure_get_string(s, "stable-label");
    }
    g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
    gst_harness_teardown(h);
    gst_object_unref(bus);
    return (double)match / counted;
}

static void test_packet_loss(void)
{
    guint changes, resets, disconts;
    gboolean previous_ok;
    double share;

    if (frame_b < 0)
        return;
    share = packet_loss_run("flush+stream-start+caps", &changes, &resets, &disconts, &previous_ok);
    printf("     0.05 %% packet loss, default reset-on: %u of 900 frames DISCONT, stable label = "
           "sent view on %.2f %% of frames after the first second\n",
           disconts, 100 * share);
    CHECK(disconts > 150 && disconts < 270, "the loss model flags about 23 %% of frames (%u)",
          disconts);
    CHECK(share >= 0.99, "default reset-on: stable label = sent view on >= 99 %% (%.2f %%)",
          100 * share);
    CHECK(changes == 2 && resets == 0 && previous_ok,
          "default reset-on: exactly 2 change messages (unknown -> A -> B), no resets (got %u, %u)",
          changes, resets);

    share = packet_loss_run("flush+discont+stream-start+caps", &changes, &resets, &disconts,
                            &previous_ok);
    printf("     the same with discont in reset-on: %.2f %%, %u change and %u reset messages\n",
           100 * share, changes, resets);
    CHECK(share < 0.9 && resets > 100 && changes > 100 && previous_ok,
          "reset-on with discont: each reset announced and previous-label consistent "
          "(%.2f %%, %u resets, %u changes)",
          100 * share, resets, changes);
}

/* ---- sharing, latency, meta through other elements ---------------------------------------- */

static void test_sharing(void)
{
    GstElement *a = make_element("echoviewclassify", "model-file", model_dir, "model-instance-id",
                                 "shared-test", NULL);
    GstElement *b = make_element("echoviewclassify", "model-file", model_dir, "model-instance-id",
                                 "shared-test", NULL);
    GstElement *c = make_element("echoviewclassify", "model-file", model_dir, NULL);
    guint ua = 0, ub = 0, uc = 0;

    gst_element_set_state(a, GST_STATE_PAUSED);
    g_object_get(a, "model-users", &ua, NULL);
    CHECK(ua == 1, "one element holds the shared model (%u)", ua);
    gst_element_set_state(b, GST_STATE_PAUSED);
    gst_element_set_state(c, GST_STATE_PAUSED);
    g_object_get(a, "model-users", &ua, NULL);
    g_object_get(b, "model-users", &ub, NULL);
    g_object_get(c, "model-users", &uc, NULL);
    CHECK(ua == 2 && ub == 2 && uc == 1, "same id shares one model: users %u %u, private %u", ua,
          ub, uc);
    gst_element_set_state(a, GST_STATE_NULL);
    g_object_get(b, "model-users", &ub, NULL);
    g_object_get(a, "model-users", &ua, NULL);
    CHECK(ub == 1 && ua == 1, "after one stops the other still holds it (%u)", ub);
    gst_element_set_state(b, GST_STATE_NULL);
    g_object_get(b, "model-users", &ub, NULL);
    CHECK(ub == 0, "the last one frees it (%u)", ub);
    gst_element_set_state(c, GST_STATE_NULL);
    gst_object_unref(a);
    gst_object_unref(b);
    gst_object_unref(c);
}

/* What echoviewd labels probabilities with: the element's own reading of model.yaml. */
static void test_model_properties(void)
{
    GstElement *e =
        make_element("echoviewclassify", "model-file", model_dir, "backend", "cpu", NULL);
    gchar *name = NULL, **classes = NULL, *backend = NULL;
    gboolean same = TRUE;

    g_object_get(e, "model-name", &name, "classes", &classes, "backend-used", &backend, NULL);
    CHECK(!name && !classes && !backend,
          "model-name, classes and backend-used are NULL before start");
    gst_element_set_state(e, GST_STATE_PAUSED);
    g_object_get(e, "backend-used", &backend, NULL);
    CHECK(!g_strcmp0(backend, "cpu"), "backend=cpu: backend-used %s", backend);
    g_free(backend);
    g_object_get(e, "model-name", &name, "classes", &classes, NULL);
    for (int i = 0; classes && i < n_classes; i++)
        same &= classes[i] && !strcmp(classes[i], ev_model_class_name(model, i));
    CHECK(name && !strcmp(name, ev_model_name(model)) && classes &&
              g_strv_length(classes) == (guint)n_classes && same,
          "started: model-name '%s' and %u classes, as the engine reads the bundle",
          name ? name : "(null)", classes ? g_strv_length(classes) : 0);
    g_free(name);
    g_strfreev(classes);
    gst_element_set_state(e, GST_STATE_NULL);
    g_object_get(e, "model-name", &name, "classes", &classes, "backend-used", &backend, NULL);
    CHECK(!name && !classes && !backend,
          "model-name, classes and backend-used are NULL again after stop");
    gst_object_unref(e);
}

/* Two classifiers on one stream: each writes its own meta, selected by unique-id; a source's
 * meta (ground truth) is taken over by the first and its ground truth copied to the second. */
static void test_unique_ids(void)
{
    gchar *second = g_build_filename(model_dir, "..", "darts_v1_nrnr_g1", NULL);
    gchar *launch = g_strdup_printf("echoviewclassify name=a model-file=%s unique-id=7 roi=full "
                                    "updates=every-frame ! echoviewclassify name=b model-file=%s "
                                    "unique-id=3 roi=full updates=every-frame",
                                    model_dir, second);
    GstHarness *h = gst_harness_new_parse(launch);
    GstElement *e1 = make_element("echoviewclassify", NULL),
               *e2 = make_element("echoviewclassify", NULL);
    guint id1 = 0, id2 = 0, n_metas = 0;
    GstVideoInfo info;
    GstBuffer *in, *out, *copy;
    GstEchoViewMeta *source, *ma, *mb, *m;
    float ref[EV_MAX_CLASSES];
    gpointer state = NULL;
    ev_model *model_b = NULL;
    ev_error err = {0};

    g_object_get(e1, "unique-id", &id1, NULL);
    g_object_get(e2, "unique-id", &id2, NULL);
    CHECK(id1 >= 1 && id2 == id1 + 1, "default unique-id: its own per element (%u, %u)", id1, id2);
    gst_object_unref(e1);
    gst_object_unref(e2);
    {
        /* ids of finalized elements are taken again: a pipeline built anew reuses them, and the
         * meta types registered stay bounded */
        GstElement *again = gst_element_factory_make("echoviewclassify", NULL);
        guint id3 = 0;
        g_object_get(again, "unique-id", &id3, NULL);
        CHECK(id3 == id1, "default unique-id: the freed %u taken again (%u)", id1, id3);
        gst_object_unref(again);
    }
    CHECK(ev_model_load(second, &model_b, &err) == EV_OK &&
              strcmp(ev_model_name(model_b), ev_model_name(model)) != 0,
          "second model %s loads, another name", second);

    info_from_caps(&info, CAPS_SMALL);
    gst_harness_set_src_caps_str(h, CAPS_SMALL);
    in = make_frame(&info, 5);
    engine_probabilities(model, plan, &info, in, NULL, FALSE, ref);
    source = gst_buffer_add_echo_view_meta(in);
    source->ground_truth_id = 2;
    source->ground_truth = g_intern_static_string("A4CH-LV");
    out = push_pull(h, in);
    while (out && gst_buffer_iterate_meta_filtered(out, &state, GST_ECHO_VIEW_META_API_TYPE))
        n_metas++;
    ma = out ? gst_buffer_get_echo_view_meta_by_id(out, 7) : NULL;
    mb = out ? gst_buffer_get_echo_view_meta_by_id(out, 3) : NULL;
    CHECK(n_metas == 2 && ma && mb && !gst_buffer_get_echo_view_meta_by_id(out, 0) &&
              gst_buffer_get_echo_view_meta(out) == ma,
          "two metas (ids 7 and 3; the source's taken over by the first, which stays first): %u",
          n_metas);
    CHECK(ma && mb && !strcmp(ma->model_name, ev_model_name(model)) && model_b &&
              !strcmp(mb->model_name, ev_model_name(model_b)) &&
              max_abs_diff(ma->probabilities, ref, n_classes) <= 1e-6,
          "each meta holds its own model's result (%s, %s)", ma ? ma->model_name : "-",
          mb ? mb->model_name : "-");
    CHECK(ma && mb && ma->ground_truth_id == 2 && mb->ground_truth_id == 2 &&
              !g_strcmp0(mb->ground_truth, "A4CH-LV"),
          "both keep the source's ground truth");
    if (out) {
        copy = gst_buffer_copy(out);
        m = gst_buffer_get_echo_view_meta_by_id(copy, 3);
        CHECK(m && m != mb && gst_buffer_get_echo_view_meta_by_id(copy, 7) &&
                  !strcmp(m->model_name, mb->model_name) &&
                  max_abs_diff(m->probabilities, mb->probabilities, m->n_probabilities) == 0,
              "a copy keeps both metas apart");
        {
            GstCustomMeta *c3 = gst_buffer_get_custom_meta(copy, "echoview-result-3");
            GstCustomMeta *c7 = gst_buffer_get_custom_meta(copy, "echoview-result-7");
            guint u = 0;
            const GstStructure *s3 = c3 ? gst_custom_meta_get_structure(c3) : NULL;
            if (s3)
                gst_structure_get_uint(s3, "unique-id", &u);
            CHECK(s3 && c7 && u == 3 &&
                      !g_strcmp0(gst_structure_get_string(s3, "model"), mb->model_name) &&
                      !g_strcmp0(gst_structure_get_string(s3, "label"), mb->label),
                  "a copy keeps both custom metas (echoview-result-3: %s)",
                  s3 ? gst_structure_get_string(s3, "model") : "-");
        }
        gst_buffer_unref(copy);
        gst_buffer_unref(out);
    }
    {
        GstElement *a = gst_bin_get_by_name(GST_BIN(h->element), "a");
        GstBus *bus = gst_bus_new();
        GList *msgs;
        guint u1 = 0, u2 = 0;
        /* the harness element of a parsed bin has no bus of ours: read the messages off a */
        gst_element_set_bus(GST_ELEMENT(h->element), bus);
        gst_buffer_unref(push_pull(h, make_frame(&info, 6)));
        msgs = pop_classify_messages(bus);
        if (g_list_length(msgs) == 2) {
            gst_structure_get_uint(gst_message_get_structure(msgs->data), "unique-id", &u1);
            gst_structure_get_uint(gst_message_get_structure(msgs->next->data), "unique-id", &u2);
        }
        CHECK(g_list_length(msgs) == 2 && u1 == 7 && u2 == 3,
              "messages carry unique-id (%u, %u of %u messages)", u1, u2, g_list_length(msgs));
        g_list_free_full(msgs, (GDestroyNotify)gst_message_unref);
        gst_object_unref(bus);
        gst_object_unref(a);
    }
    ev_model_free(model_b);
    gst_harness_teardown(h);
    g_free(launch);
    g_free(second);
}

static void test_latency(void)
{
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h = classify_harness(&bus, CAPS_SMALL, "roi", "full", NULL);
    GstClockTime before, after;
    gdouble p99 = 0;

    info_from_caps(&info, CAPS_SMALL);
    before = gst_harness_query_latency(h);
    for (int i = 0; i < 20; i++)
        gst_buffer_unref(push_pull(h, make_frame(&info, i)));
    after = gst_harness_query_latency(h);
    g_object_get(h->element, "process-p99", &p99, NULL);
    CHECK(GST_CLOCK_TIME_IS_VALID(before) && before > 0,
          "LATENCY query before any frame: %" GST_TIME_FORMAT " (timed at start)",
          GST_TIME_ARGS(before));
    CHECK(after > 0 && fabs((double)after / GST_USECOND - p99) <= 1.0,
          "LATENCY query after 20 frames = process-p99 (%" GST_TIME_FORMAT ", %.0f us)",
          GST_TIME_ARGS(after), p99);
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

static void test_meta_survives(void)
{
    gchar *launch =
        g_strdup_printf("echoviewclassify model-file=%s roi=full unique-id=9 ! videoscale ! "
                        "capsfilter caps=\"video/x-raw,width=32,height=24\" ! videoconvert ! "
                        "capsfilter caps=\"video/x-raw,format=RGB\"",
                        model_dir);
    GstHarness *h = gst_harness_new_parse(launch);
    GstVideoInfo info;
    GstBuffer *o, *copy;
    GstEchoViewMeta *m, *mc;
    float ref[EV_MAX_CLASSES];
    GstBuffer *in;

    info_from_caps(&info, CAPS_SMALL);
    gst_harness_set_src_caps_str(h, CAPS_SMALL);
    in = make_frame(&info, 5);
    engine_probabilities(model, plan, &info, in, NULL, FALSE, ref);
    o = push_pull(h, in);
    m = o ? gst_buffer_get_echo_view_meta(o) : NULL;
    CHECK(m && m->n_probabilities == (guint)n_classes &&
              max_abs_diff(m->probabilities, ref, n_classes) <= 1e-5 && m->label_id >= 0 &&
              m->model_name && !strcmp(m->model_name, ev_model_name(model)),
          "meta survives videoscale (64x48 -> 32x24) and videoconvert (GRAY8 -> RGB)");
    {
        GstCustomMeta *c = o ? gst_buffer_get_custom_meta(o, "echoview-result-9") : NULL;
        const GstStructure *st = c ? gst_custom_meta_get_structure(c) : NULL;
        gint id = -2;
        if (st)
            gst_structure_get_int(st, "label-id", &id);
        CHECK(st && m && id == m->label_id, "so does the custom meta echoview-result-9 (label %d)",
              id);
    }
    if (o) {
        copy = gst_buffer_copy(o);
        mc = gst_buffer_get_echo_view_meta(copy);
        CHECK(mc && mc != m && mc->label_id == m->label_id &&
                  mc->probabilities != m->probabilities &&
                  max_abs_diff(mc->probabilities, m->probabilities, n_classes) == 0,
              "gst_buffer_copy deep-copies the meta");
        gst_buffer_unref(copy);
        gst_buffer_unref(o);
    }
    gst_harness_teardown(h);
    g_free(launch);
}

int main(int argc, char **argv)
{
    ev_error err = {0};
    ev_plan_options opt = {.backend = EV_BACKEND_CPU, .batch = 1, .threads = 1};

    gst_init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    model_dir = argv[1];
    if (ev_model_load(model_dir, &model, &err) || ev_plan_create(model, &opt, &plan, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    n_classes = ev_model_num_classes(model);

    test_formats();
    test_roi();
    test_screen_check();
    test_interval();
    test_async();
    find_two_labels();
    test_hysteresis();
    test_threshold_and_updates();
    test_model_threshold();
    test_resets();
    test_packet_loss();
    test_sharing();
    test_model_properties();
    test_unique_ids();
    test_latency();
    test_meta_survives();

    ev_plan_free(plan);
    ev_model_free(model);
    return test_finish();
}
