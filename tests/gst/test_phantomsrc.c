/* test_phantomsrc.c: echophantomsrc: default and negotiated caps, timestamps from the frame
 * rate, ground truth following the schedule, determinism per seed, RGB = grey replicated,
 * the sector inside the frame like a scanner, num-buffers, phantom-version 2 (deterministic,
 * another look than version 1, the same ground truth), the cine-loop cache (the same bytes as
 * rendering every frame, frames repeating with the beat, a cache that holds part of a beat). */
#include "gst_test_util.h"

static GstHarness *source_harness(const char *sink_caps, ...)
{
    GstElement *e = make_element("echophantomsrc", "is-live", "false", NULL);
    GstHarness *h;
    va_list ap;
    const char *name;

    va_start(ap, sink_caps);
    while ((name = va_arg(ap, const char *)))
        gst_util_set_object_arg(G_OBJECT(e), name, va_arg(ap, const char *));
    va_end(ap);
    h = gst_harness_new_with_element(e, NULL, "src");
    gst_object_unref(e);
    if (sink_caps)
        gst_harness_set_sink_caps_str(h, sink_caps);
    gst_harness_play(h);
    return h;
}

static void test_defaults_and_schedule(void)
{
    GstHarness *h = source_harness(NULL, "schedule", "A2CH:0.1,PSAX-AV:0.2", "seed", "3", NULL);
    GstCaps *caps;
    GstVideoInfo info;
    int gt_errors = 0, ts_errors = 0;

    for (int i = 0; i < 12; i++) {
        GstBuffer *b = gst_harness_pull(h);
        GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(b);
        /* 30 fps: frames 0-2 in A2CH (0.1 s), 3-8 in PSAX-AV (0.2 s), then the loop again */
        int want = (i % 9) < 3 ? 0 : 9;
        GstClockTime pts = gst_util_uint64_scale(i, GST_SECOND, 30);
        if (!m || m->ground_truth_id != want ||
            g_strcmp0(m->ground_truth, want ? "PSAX-AV" : "A2CH") || m->label_id != -1) {
            gt_errors++;
            printf("     frame %d: ground truth %d %s\n", i, m ? m->ground_truth_id : -2,
                   m ? m->ground_truth : "-");
        }
        if (GST_BUFFER_PTS(b) != pts ||
            GST_BUFFER_DURATION(b) != gst_util_uint64_scale(i + 1, GST_SECOND, 30) - pts)
            ts_errors++;
        gst_buffer_unref(b);
    }
    CHECK(gt_errors == 0, "ground truth follows the looping schedule (%d wrong)", gt_errors);
    CHECK(ts_errors == 0, "PTS = n/30 s and durations from the frame rate (%d wrong)", ts_errors);
    caps = gst_pad_get_current_caps(h->sinkpad);
    gst_video_info_from_caps(&info, caps);
    CHECK(GST_VIDEO_INFO_WIDTH(&info) == 800 && GST_VIDEO_INFO_HEIGHT(&info) == 600 &&
              GST_VIDEO_INFO_FPS_N(&info) == 30 && GST_VIDEO_INFO_FPS_D(&info) == 1 &&
              GST_VIDEO_INFO_FORMAT(&info) == GST_VIDEO_FORMAT_GRAY8,
          "default caps: %" GST_PTR_FORMAT, caps);
    gst_caps_unref(caps);
    gst_harness_teardown(h);
}

static GstBuffer *first_frame(const char *caps, const char *seed)
{
    GstHarness *h = source_harness(caps, "view", "PLAX-full", "seed", seed, NULL);
    GstBuffer *b = gst_harness_pull(h);
    gst_harness_teardown(h);
    return b;
}

static void test_determinism_and_rgb(void)
{
    const char *gray = "video/x-raw,format=GRAY8,width=320,height=240,framerate=15/1";
    const char *rgb = "video/x-raw,format=RGB,width=320,height=240,framerate=15/1";
    GstBuffer *a = first_frame(gray, "5"), *b = first_frame(gray, "5"), *c = first_frame(gray, "6"),
              *d = first_frame(rgb, "5");
    GstMapInfo ma, mb, mc, md;
    GstVideoInfo gi, ri;
    GstCaps *caps;
    int rgb_errors = 0;

    caps = gst_caps_from_string(gray);
    gst_video_info_from_caps(&gi, caps);
    gst_caps_unref(caps);
    caps = gst_caps_from_string(rgb);
    gst_video_info_from_caps(&ri, caps);
    gst_caps_unref(caps);
    gst_buffer_map(a, &ma, GST_MAP_READ);
    gst_buffer_map(b, &mb, GST_MAP_READ);
    gst_buffer_map(c, &mc, GST_MAP_READ);
    gst_buffer_map(d, &md, GST_MAP_READ);
    CHECK(ma.size == GST_VIDEO_INFO_SIZE(&gi) && ma.size == mb.size &&
              !memcmp(ma.data, mb.data, ma.size),
          "same seed, same frame (%zu bytes)", ma.size);
    CHECK(ma.size == mc.size && memcmp(ma.data, mc.data, ma.size) != 0,
          "another seed, another patient");
    for (int y = 0; y < 240; y++)
        for (int x = 0; x < 320; x++) {
            const guint8 g = ma.data[y * GST_VIDEO_INFO_PLANE_STRIDE(&gi, 0) + x];
            const guint8 *p = md.data + y * GST_VIDEO_INFO_PLANE_STRIDE(&ri, 0) + 3 * x;
            rgb_errors += p[0] != g || p[1] != g || p[2] != g;
        }
    CHECK(rgb_errors == 0, "RGB output is the grey frame replicated (%d pixels differ)",
          rgb_errors);
    {
        ev_frame f = {ma.data, 320, 240, GST_VIDEO_INFO_PLANE_STRIDE(&gi, 0), EV_PIXEL_GRAY8};
        ev_rect r;
        int rc = ev_detect_roi(&f, &r);
        CHECK(rc == EV_OK && r.x > 0 && r.y >= 0 && r.width < 320 && r.height < 240 &&
                  r.width > 160 && r.height > 120,
              "sector inside the frame like a scanner: %d,%d %dx%d", r.x, r.y, r.width, r.height);
    }
    gst_buffer_unmap(a, &ma);
    gst_buffer_unmap(b, &mb);
    gst_buffer_unmap(c, &mc);
    gst_buffer_unmap(d, &md);
    gst_buffer_unref(a);
    gst_buffer_unref(b);
    gst_buffer_unref(c);
    gst_buffer_unref(d);
}

static void test_num_buffers_and_live(void)
{
    GstElement *pipe = gst_parse_launch(
        "echophantomsrc num-buffers=5 ! "
        "video/x-raw,width=160,height=120,framerate=60/1 ! fakesink name=sink sync=true",
        NULL);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *msg;
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    GstQuery *q = gst_query_new_latency();
    gboolean live = FALSE;
    gint64 t0 = g_get_monotonic_time(), dt;
    guint64 rendered = 0;

    gst_element_set_state(pipe, GST_STATE_PLAYING);
    gst_element_get_state(pipe, NULL, NULL, 5 * GST_SECOND);
    if (gst_element_query(pipe, q))
        gst_query_parse_latency(q, &live, NULL, NULL);
    msg = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    dt = g_get_monotonic_time() - t0;
    CHECK(msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS, "num-buffers=5 ends with EOS");
    {
        GstStructure *st = NULL;
        g_object_get(sink, "stats", &st, NULL);
        if (st) {
            gst_structure_get_uint64(st, "rendered", &rendered);
            gst_structure_free(st);
        }
    }
    CHECK(rendered == 5, "5 frames rendered (%" G_GUINT64_FORMAT ")", rendered);
    CHECK(live, "the source is live by default");
    /* live at 60 fps: 5 frames take >= 4/60 s; no assertion on the upper bound */
    CHECK(dt >= 4 * 1000000 / 60 - 2000, "live source paces frames (%.0f ms for 5 at 60 fps)",
          dt / 1000.0);
    if (msg)
        gst_message_unref(msg);
    gst_query_unref(q);
    gst_object_unref(sink);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipe);
}

static GstBuffer *versioned_frame(const char *version)
{
    GstHarness *h =
        source_harness("video/x-raw,format=GRAY8,width=320,height=240,framerate=15/1", "view",
                       "A4CH-LV", "seed", "4", "phantom-version", version, NULL);
    GstBuffer *b = gst_harness_pull(h);
    gst_harness_teardown(h);
    return b;
}

static void test_phantom_version(void)
{
    GstBuffer *v1 = versioned_frame("1"), *a = versioned_frame("2"), *b = versioned_frame("2");
    GstMapInfo m1, ma, mb;
    GstEchoViewMeta *meta = gst_buffer_get_echo_view_meta(a);
    gst_buffer_map(v1, &m1, GST_MAP_READ);
    gst_buffer_map(a, &ma, GST_MAP_READ);
    gst_buffer_map(b, &mb, GST_MAP_READ);
    CHECK(ma.size == mb.size && !memcmp(ma.data, mb.data, ma.size),
          "phantom-version 2: same seed, same frame");
    CHECK(m1.size == ma.size && memcmp(m1.data, ma.data, ma.size) != 0,
          "phantom-version 2 renders another look than version 1");
    CHECK(meta && meta->ground_truth_id == 2 && !g_strcmp0(meta->ground_truth, "A4CH-LV"),
          "phantom-version 2 keeps the ground truth");
    gst_buffer_unmap(v1, &m1);
    gst_buffer_unmap(a, &ma);
    gst_buffer_unmap(b, &mb);
    gst_buffer_unref(v1);
    gst_buffer_unref(a);
    gst_buffer_unref(b);
}

/* Pulls n frames (GRAY8 320x240 at 30 fps, two acquisitions of 1.5 s) into one block. */
static guint8 *pull_frames(const char *cache_size, int n, const char *format)
{
    char caps[128];
    GstHarness *h;
    guint8 *all = NULL;
    gsize size = 0;

    g_snprintf(caps, sizeof caps, "video/x-raw,format=%s,width=320,height=240,framerate=30/1",
               format);
    h = source_harness(caps, "schedule", "A2CH:1.5,PSAX-AV:1.5", "seed", "7", "cache-size",
                       cache_size, NULL);
    for (int i = 0; i < n; i++) {
        GstBuffer *b = gst_harness_pull(h);
        GstMapInfo m;
        gst_buffer_map(b, &m, GST_MAP_READ);
        if (!all) {
            size = m.size;
            all = g_malloc0(size * n + sizeof(gsize));
            memcpy(all, &size, sizeof size);
        }
        if (m.size == size)
            memcpy(all + sizeof size + (gsize)i * size, m.data, size);
        gst_buffer_unmap(b, &m);
        gst_buffer_unref(b);
    }
    gst_harness_teardown(h);
    return all;
}

static void test_cache(void)
{
    enum { N = 100 }; /* past the second acquisition's start (frame 45) and into the next loop */
    guint8 *fresh = pull_frames("0", N, "GRAY8"), *cached = pull_frames("64", N, "GRAY8"),
           *rgb_fresh = pull_frames("0", N, "RGB"), *rgb_cached = pull_frames("64", N, "RGB");
    gsize size, rgb_size;
    int differ = 0, rgb_differ = 0, beat = 0;

    memcpy(&size, fresh, sizeof size);
    memcpy(&rgb_size, rgb_fresh, sizeof rgb_size);
    for (int i = 0; i < N; i++) {
        differ += memcmp(fresh + sizeof size + i * size, cached + sizeof size + i * size, size) != 0;
        rgb_differ += memcmp(rgb_fresh + sizeof size + i * rgb_size,
                             rgb_cached + sizeof size + i * rgb_size, rgb_size) != 0;
    }
    CHECK(differ == 0, "GRAY8: cached frames equal frames rendered fresh (%d of %d differ)", differ,
          N);
    CHECK(rgb_differ == 0, "RGB: cached frames equal frames rendered fresh (%d of %d differ)",
          rgb_differ, N);
    /* the beat: the first k > 0 with frame k == frame 0; frames within a beat all differ */
    for (int k = 1; k < 45 && !beat; k++)
        if (!memcmp(fresh + sizeof size, fresh + sizeof size + k * size, size))
            beat = k;
    CHECK(beat >= 2 && beat <= 40, "frames repeat with the beat (%d frames at 30 fps)", beat);
    if (beat) {
        int repeats = 0, distinct = 0;
        for (int i = 0; i + beat < 45; i++)
            repeats += !memcmp(fresh + sizeof size + i * size, fresh + sizeof size + (i + beat) * size,
                               size);
        for (int i = 1; i < beat; i++)
            distinct += memcmp(fresh + sizeof size, fresh + sizeof size + i * size, size) != 0;
        CHECK(repeats == 45 - beat, "every frame of the first acquisition repeats a beat later "
                                    "(%d of %d)", repeats, 45 - beat);
        CHECK(distinct == beat - 1, "frames within a beat differ (%d of %d)", distinct, beat - 1);
    }
    CHECK(memcmp(fresh + sizeof size, fresh + sizeof size + 45 * size, size) != 0,
          "the next acquisition shows another picture");
    g_free(fresh);
    g_free(cached);
    g_free(rgb_fresh);
    g_free(rgb_cached);
}

static void test_partial_cache(void)
{
    /* 1 MiB holds 3 frames of 640x480: the rest of the beat is rendered every time */
    const char *caps = "video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1";
    GstHarness *a = source_harness(caps, "view", "A4CH-RV", "cache-size", "0", NULL),
               *b = source_harness(caps, "view", "A4CH-RV", "cache-size", "1", NULL);
    int differ = 0;
    guint value = 0;

    for (int i = 0; i < 40; i++) {
        GstBuffer *x = gst_harness_pull(a), *y = gst_harness_pull(b);
        GstMapInfo mx, my;
        gst_buffer_map(x, &mx, GST_MAP_READ);
        gst_buffer_map(y, &my, GST_MAP_READ);
        differ += mx.size != my.size || memcmp(mx.data, my.data, mx.size) != 0;
        gst_buffer_unmap(x, &mx);
        gst_buffer_unmap(y, &my);
        gst_buffer_unref(x);
        gst_buffer_unref(y);
    }
    CHECK(differ == 0, "a cache smaller than a beat gives the same frames (%d of 40 differ)",
          differ);
    g_object_get(b->element, "cache-size", &value, NULL);
    CHECK(value == 1, "cache-size reads back (%u)", value);
    gst_harness_teardown(a);
    gst_harness_teardown(b);
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    test_defaults_and_schedule();
    test_determinism_and_rgb();
    test_num_buffers_and_live();
    test_phantom_version();
    test_cache();
    test_partial_cache();
    return test_finish();
}
