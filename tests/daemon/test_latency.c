/* test_latency.c: echoviewd and echoviewclassify report the same p99 for the same samples. The
 * element keeps the latency of every inference it makes (its latency-p99 property, in
 * microseconds); the daemon keeps the latency each inferred frame's EchoViewMeta carries
 * (evd_latency_add, the function its pad probe calls, in milliseconds). Over 1100 frames in sync
 * mode, so that both 1024-sample windows have wrapped, both p99s must be the same sample.
 * usage: test_latency MODEL_DIR */
#include "evd_snapshot.h"
#include "gst_test_util.h"

#define CAPS "video/x-raw,format=GRAY8,width=64,height=48,framerate=30/1"
#define FRAMES 1100

int main(int argc, char **argv)
{
    static EvdLatency daemon_side; /* 8 KiB window */
    EvdStreamSnapshot snap = {0};
    GstElement *e;
    GstHarness *h;
    GstBus *bus;
    GstVideoInfo info;
    GstCaps *caps;
    gdouble element_p99 = 0, element_mean = 0;
    guint64 inferred = 0;
    guint samples = 0;

    gst_init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    e = make_element("echoviewclassify", "model-file", argv[1], "backend", "cpu", "roi", "full",
                     NULL);
    h = harness_for(e, &bus);
    gst_harness_set_src_caps_str(h, CAPS);
    caps = gst_caps_from_string(CAPS);
    gst_video_info_from_caps(&info, caps);
    gst_caps_unref(caps);
    for (int i = 0; i < FRAMES; i++) {
        GstBuffer *out;
        GstEchoViewMeta *meta;

        if (gst_harness_push(h, make_frame(&info, i % 7)) != GST_FLOW_OK ||
            !(out = gst_harness_pull(h))) {
            CHECK(0, "frame %d passes the element", i);
            break;
        }
        meta = gst_buffer_get_echo_view_meta(out);
        /* what the daemon's probe on the classifier's src pad does with it */
        if (meta && meta->inferred && GST_CLOCK_TIME_IS_VALID(meta->latency)) {
            evd_latency_add(&daemon_side, meta->latency);
            samples++;
        }
        gst_buffer_unref(out);
    }
    g_object_get(e, "latency-p99", &element_p99, "latency-mean", &element_mean, "inferred",
                 &inferred, NULL);
    evd_snapshot_set_latency_window(&snap, &daemon_side.window);
    CHECK(samples == FRAMES && inferred == FRAMES && snap.latency_window == EV_STATS_WINDOW,
          "%u samples on the daemon's side, %" G_GUINT64_FORMAT " inferences in the element, "
          "window %u",
          samples, inferred, snap.latency_window);
    CHECK(element_p99 > 0 && fabs(snap.latency_p99_ms * 1000.0 - element_p99) <= 1e-9 * element_p99,
          "same p99: daemon %.6f ms, element %.3f us", snap.latency_p99_ms, element_p99);
    /* and the running means (the daemon's latency_ms.mean is its window's, by design) */
    CHECK(fabs(ev_stats_window_mean_all(&daemon_side.window) * 1000.0 - element_mean) <=
              1e-9 * element_mean,
          "same running mean over all samples: %.3f us", element_mean);
    gst_harness_teardown(h);
    gst_object_unref(bus);
    return test_finish();
}
