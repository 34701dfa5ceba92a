/* test_roi.c: echoviewclassify's region of interest from upstream and across resolution changes.
 * roi=meta classifies the region of a GstVideoRegionOfInterestMeta (dicomsrc's
 * "ultrasound-region", else the first of any type) exactly as the engine classifies that crop;
 * roi=auto prefers an "ultrasound-region" meta over the sector detection, ignores other types
 * and detects again when the metas stop; a meta partly outside the frame is cut and one outside
 * ignored, each with one warning; roi=meta without metas classifies the whole frame with one
 * warning. A fixed roi that no longer fits after a resolution change is cut with a warning; one
 * with nothing left inside, and one that does not fit the first caps, is one error, not one per
 * negotiation attempt. dicomsrc's own meta is exercised in tests/dicom (with DCMTK).
 * usage: test_roi MODEL_DIR */
#include "gst_test_util.h"

static const char *model_dir;
static ev_model *model;
static ev_plan *plan;
static int n_classes;

#define CAPS "video/x-raw,format=GRAY8,width=120,height=100,framerate=30/1"

static GstHarness *roi_harness(GstBus **bus, const char *caps, const char *roi)
{
    GstElement *e = make_element("echoviewclassify", "model-file", model_dir, "backend", "cpu",
                                 "roi", roi, NULL);
    GstHarness *h = harness_for(e, bus);
    gst_harness_set_src_caps_str(h, caps);
    return h;
}

/* Drops the messages still on bus (they hold the element) and tears the harness down. */
static void teardown(GstHarness *h, GstBus *bus)
{
    gst_bus_set_flushing(bus, TRUE);
    gst_harness_teardown(h);
    gst_object_unref(bus);
}

static GstBuffer *with_region(GstBuffer *frame, const char *type, guint x, guint y, guint w,
                              guint h)
{
    GstBuffer *buf = gst_buffer_copy(frame);
    gst_buffer_add_video_region_of_interest_meta(buf, type, x, y, w, h);
    return buf;
}

/* The probabilities echoviewclassify gives buf, and its active-roi afterwards. */
static gboolean classify(GstHarness *h, GstBuffer *buf, float *prob, gchar **active)
{
    GstBuffer *out = gst_harness_push(h, buf) == GST_FLOW_OK ? gst_harness_pull(h) : NULL;
    GstEchoViewMeta *m = out ? gst_buffer_get_echo_view_meta(out) : NULL;

    if (m && m->n_probabilities == (guint)n_classes)
        memcpy(prob, m->probabilities, sizeof(float) * n_classes);
    g_free(*active);
    g_object_get(h->element, "active-roi", active, NULL);
    if (out)
        gst_buffer_unref(out);
    return m != NULL;
}

/* Warnings on bus now, their debug strings joined (caller frees); *n their number. */
static gchar *pop_warnings(GstBus *bus, int *n)
{
    GString *all = g_string_new("");
    GstMessage *m;

    *n = 0;
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING))) {
        GError *e = NULL;
        gchar *debug = NULL;
        gst_message_parse_warning(m, &e, &debug);
        g_string_append_printf(all, "%s%s (%s)", *n ? "; " : "", e->message, debug);
        (*n)++;
        g_clear_error(&e);
        g_free(debug);
        gst_message_unref(m);
    }
    return g_string_free(all, FALSE);
}

static void test_meta(void)
{
    GstVideoInfo info;
    GstBus *bus;
    GstHarness *h;
    GstBuffer *frame;
    float got[EV_MAX_CLASSES], crop[EV_MAX_CLASSES], whole[EV_MAX_CLASSES],
        detected[EV_MAX_CLASSES], cut[EV_MAX_CLASSES];
    const ev_rect region = {17, 9, 61, 47}, cut_region = {70, 60, 50, 40};
    gchar *active = NULL, *warnings;
    int n;
    GstCaps *c = gst_caps_from_string(CAPS);

    gst_video_info_from_caps(&info, c);
    gst_caps_unref(c);
    frame = make_frame(&info, 7);
    engine_probabilities(model, plan, &info, frame, &region, FALSE, crop);
    engine_probabilities(model, plan, &info, frame, NULL, FALSE, whole);
    engine_probabilities(model, plan, &info, frame, NULL, TRUE, detected);
    engine_probabilities(model, plan, &info, frame, &cut_region, FALSE, cut);
    CHECK(max_abs_diff(crop, detected, n_classes) > 1e-5 &&
              max_abs_diff(crop, whole, n_classes) > 1e-5,
          "the test region gives another answer than the detected sector and the whole frame");

    h = roi_harness(&bus, CAPS, "meta");
    CHECK(classify(h, with_region(frame, "ultrasound-region", 17, 9, 61, 47), got, &active) &&
              max_abs_diff(got, crop, n_classes) <= 1e-6 && !g_strcmp0(active, "17,9,61,47"),
          "roi=meta: the ultrasound-region meta's crop, as the engine classifies it (active-roi "
          "%s)",
          active);
    CHECK(classify(h, gst_buffer_ref(frame), got, &active) &&
              max_abs_diff(got, crop, n_classes) <= 1e-6 && !g_strcmp0(active, "17,9,61,47"),
          "roi=meta: a buffer without a meta keeps the last region (%s)", active);
    CHECK(classify(h, with_region(frame, "ultrasound-region", 70, 60, 90, 90), got, &active) &&
              max_abs_diff(got, cut, n_classes) <= 1e-6 && !g_strcmp0(active, "70,60,50,40"),
          "roi=meta: a region partly outside is cut to the frame (%s)", active);
    classify(h, with_region(frame, "ultrasound-region", 70, 60, 90, 90), got, &active);
    warnings = pop_warnings(bus, &n);
    CHECK(n == 2 && strstr(warnings, "does not fit") && strstr(warnings, "no region of interest"),
          "roi=meta: one warning for the buffer without a meta, one for the cut region (%d: %s)", n,
          warnings);
    g_free(warnings);
    CHECK(classify(h, with_region(frame, "ultrasound-region", 500, 400, 10, 10), got, &active) &&
              max_abs_diff(got, cut, n_classes) <= 1e-6 && !g_strcmp0(active, "70,60,50,40"),
          "roi=meta: a region outside the frame is ignored (%s)", active);
    warnings = pop_warnings(bus, &n);
    CHECK(n == 1 && strstr(warnings, "nothing of it is inside"), "one warning for it: %s",
          warnings);
    g_free(warnings);
    teardown(h, bus);

    h = roi_harness(&bus, CAPS, "meta");
    CHECK(classify(h, with_region(frame, "tumour", 17, 9, 61, 47), got, &active) &&
              max_abs_diff(got, crop, n_classes) <= 1e-6,
          "roi=meta: without an ultrasound-region, the first meta of any type");
    teardown(h, bus);

    h = roi_harness(&bus, CAPS, "meta");
    for (int i = 0; i < 3; i++)
        classify(h, gst_buffer_ref(frame), got, &active);
    warnings = pop_warnings(bus, &n);
    CHECK(max_abs_diff(got, whole, n_classes) <= 1e-6 && !g_strcmp0(active, "0,0,120,100") &&
              n == 1,
          "roi=meta on buffers without metas: the whole frame, one warning for 3 buffers (%d: "
          "%s)",
          n, warnings);
    g_free(warnings);
    teardown(h, bus);

    h = roi_harness(&bus, CAPS, "auto");
    CHECK(classify(h, with_region(frame, "ultrasound-region", 17, 9, 61, 47), got, &active) &&
              max_abs_diff(got, crop, n_classes) <= 1e-6 && !g_strcmp0(active, "17,9,61,47"),
          "roi=auto: an ultrasound-region meta is preferred to the detection (%s)", active);
    CHECK(classify(h, gst_buffer_ref(frame), got, &active) &&
              max_abs_diff(got, detected, n_classes) <= 1e-6,
          "roi=auto: when the metas stop, the sector is detected again (%s)", active);
    CHECK(classify(h, with_region(frame, "face", 17, 9, 61, 47), got, &active) &&
              max_abs_diff(got, detected, n_classes) <= 1e-6,
          "roi=auto: a meta of another type is not the ultrasound region");
    warnings = pop_warnings(bus, &n);
    CHECK(n == 0, "roi=auto: no warning (%s)", warnings);
    g_free(warnings);
    teardown(h, bus);
    g_free(active);
    gst_buffer_unref(frame);
}

/* Errors from the element on bus now; the first one's message in *first (caller frees). */
static int pop_errors(GstBus *bus, gchar **first)
{
    GError *e;
    int n = 0;
    while ((e = pop_error(bus))) {
        if (!n++)
            *first = g_strdup(e->message);
        g_error_free(e);
    }
    return n;
}

static void test_resolution_change(void)
{
    const char *big = "video/x-raw,format=GRAY8,width=128,height=96,framerate=30/1",
               *small = "video/x-raw,format=GRAY8,width=64,height=48,framerate=30/1",
               *tiny = "video/x-raw,format=GRAY8,width=24,height=16,framerate=30/1";
    GstVideoInfo small_info;
    GstCaps *c = gst_caps_from_string(small);
    GstBus *bus;
    GstHarness *h;
    GstBuffer *frame;
    float got[EV_MAX_CLASSES], ref[EV_MAX_CLASSES];
    const ev_rect cut = {30, 20, 34, 28};
    gchar *active = NULL, *warnings, *error = NULL;
    int n;

    gst_video_info_from_caps(&small_info, c);
    gst_caps_unref(c);
    h = roi_harness(&bus, big, "30,20,80,60");
    {
        GstVideoInfo big_info;
        GstCaps *bc = gst_caps_from_string(big);
        gst_video_info_from_caps(&big_info, bc);
        gst_caps_unref(bc);
        frame = make_frame(&big_info, 3);
        classify(h, frame, got, &active);
    }
    CHECK(!g_strcmp0(active, "30,20,80,60"), "the fixed roi fits the 128x96 frame (%s)", active);
    gst_harness_set_src_caps_str(h, small);
    frame = make_frame(&small_info, 3);
    engine_probabilities(model, plan, &small_info, frame, &cut, FALSE, ref);
    CHECK(classify(h, frame, got, &active) && max_abs_diff(got, ref, n_classes) <= 1e-6 &&
              !g_strcmp0(active, "30,20,34,28"),
          "64x48: the roi is cut to 30,20,34,28 and classified so (%s)", active);
    warnings = pop_warnings(bus, &n);
    CHECK(n == 1 && strstr(warnings, "cut"), "one warning says so: %s", warnings);
    g_free(warnings);
    CHECK(pop_errors(bus, &error) == 0, "no error");

    gst_harness_set_src_caps_str(h, tiny);
    {
        GstVideoInfo tiny_info;
        GstCaps *tc = gst_caps_from_string(tiny);
        gst_video_info_from_caps(&tiny_info, tc);
        gst_caps_unref(tc);
        for (int i = 0; i < 3; i++)
            gst_harness_push(h, make_frame(&tiny_info, 3));
    }
    n = pop_errors(bus, &error);
    CHECK(n == 1 && strstr(error, "does not fit"),
          "24x16, nothing of the roi inside: one error for 3 buffers (%d: %s)", n, error);
    g_clear_pointer(&error, g_free);
    teardown(h, bus);
    g_free(active);
}

int main(int argc, char **argv)
{
    ev_error err = {0};
    ev_plan_options options = {0};

    if (argc < 2) {
        fprintf(stderr, "usage: test_roi MODEL_DIR\n");
        return 2;
    }
    model_dir = argv[1];
    gst_init(&argc, &argv);
    options.backend = EV_BACKEND_CPU;
    options.batch = 1;
    options.threads = 1;
    if (ev_model_load(model_dir, &model, &err) || ev_plan_create(model, &options, &plan, &err)) {
        fprintf(stderr, "model: %s\n", err.message);
        return 1;
    }
    n_classes = ev_model_num_classes(model);
    test_meta();
    test_resolution_change();
    ev_plan_free(plan);
    ev_model_free(model);
    return test_finish();
}
