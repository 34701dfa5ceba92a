/* test_colour.c: echoviewclassify gives the network the same picture whatever format carries it:
 * one frame as GRAY8, RGB, BGRx, I420 and NV12 (limited range, as decoders give it) and I420 full
 * range gives a gray model the same probabilities within 1e-3; YUV with a colour tint in BT.601
 * and BT.709 matches the RGB those bytes mean under the caps' matrix (computed here in double from
 * the matrix's Kr, Kb), for the gray and the colour model; and the element's sink caps prefer the
 * model's own formats.
 * usage: test_colour GRAY_MODEL_DIR RGB_MODEL_DIR [TRAINED_GRAY_MODEL_DIR]
 * (the fixtures have random weights and a 16x16 input, so they barely tell inputs apart; the
 * trained 96 px model, when given, shows that what the tolerance accepts is not what it refuses) */
#include "gst_test_util.h"

#include <math.h>

#define W 160
#define H 120

/* The picture every format carries: gray levels a limited-range YUV frame can hold too (each is
 * what 16 + 219 g / 255 gives back), so all formats hold exactly the same pixels. */
static guint8 picture[W * H];

static guint8 clamp8(double v) { return (guint8)(v < 0 ? 0 : v > 255 ? 255 : lround(v)); }
static guint8 limited_luma(int g) { return clamp8(16 + g * 219.0 / 255.0); }

static void set_picture(const guint8 *gray, gsize stride)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            picture[y * W + x] = clamp8((limited_luma(gray[y * stride + x]) - 16) * 255.0 / 219.0);
}

static void picture_from_pattern(int variant)
{
    guint8 g[W * H];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            g[y * W + x] = pattern_value(x, y, W, H, variant);
    set_picture(g, W);
}

/* A phantom echo frame of view (what the trained model was made for). */
static gboolean picture_from_phantom(const char *view)
{
    gchar *launch = g_strdup_printf("echophantomsrc view=%s is-live=false num-buffers=1 ! "
                                    "video/x-raw,format=GRAY8,width=%d,height=%d ! "
                                    "appsink name=sink sync=false",
                                    view, W, H);
    GError *error = NULL;
    GstElement *pipe = gst_parse_launch(launch, &error), *sink;
    GstSample *sample = NULL;
    gboolean ok = FALSE;

    g_free(launch);
    if (!pipe) {
        fprintf(stderr, "%s\n", error->message);
        g_clear_error(&error);
        return FALSE;
    }
    sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    g_signal_emit_by_name(sink, "pull-sample", &sample);
    if (sample) {
        GstVideoInfo info;
        GstVideoFrame f;
        gst_video_info_from_caps(&info, gst_sample_get_caps(sample));
        if (gst_video_frame_map(&f, &info, gst_sample_get_buffer(sample), GST_MAP_READ)) {
            set_picture(GST_VIDEO_FRAME_PLANE_DATA(&f, 0), GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0));
            gst_video_frame_unmap(&f);
            ok = TRUE;
        }
        gst_sample_unref(sample);
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    return ok;
}

/* The element on caps, fed one frame: its probabilities (n of them) in prob. */
static int element_probabilities(const char *model_dir, const char *caps, GstBuffer *frame,
                                 float *prob)
{
    GstBus *bus;
    GstElement *e = make_element("echoviewclassify", "model-file", model_dir, "backend", "cpu",
                                 "roi", "full", NULL);
    GstHarness *h = harness_for(e, &bus);
    GstBuffer *out;
    GstEchoViewMeta *m;
    int n = -1;

    gst_harness_set_src_caps_str(h, caps);
    if (gst_harness_push(h, frame) == GST_FLOW_OK && (out = gst_harness_pull(h))) {
        m = gst_buffer_get_echo_view_meta(out);
        if (m && m->n_probabilities) {
            n = (int)m->n_probabilities;
            memcpy(prob, m->probabilities, n * sizeof(float));
        }
        gst_buffer_unref(out);
    }
    gst_harness_teardown(h);
    gst_object_unref(bus);
    return n;
}

/* A YUV frame (I420 or NV12 on caps) with luma = the picture (mapped into 16..235 when limited)
 * and constant chroma u, v. */
static GstBuffer *make_yuv(const char *caps, int u, int v)
{
    GstVideoInfo info;
    GstCaps *c = gst_caps_from_string(caps);
    GstBuffer *buf;
    GstVideoFrame f;
    gboolean limited;

    gst_video_info_from_caps(&info, c);
    gst_caps_unref(c);
    limited = info.colorimetry.range != GST_VIDEO_COLOR_RANGE_0_255;
    buf = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(&info));
    gst_video_frame_map(&f, &info, buf, GST_MAP_WRITE);
    for (int y = 0; y < H; y++) {
        guint8 *row = (guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) +
                      (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
        for (int x = 0; x < W; x++) {
            int g = picture[y * W + x];
            row[x] = limited ? limited_luma(g) : (guint8)g;
        }
    }
    for (int y = 0; y < H / 2; y++) {
        if (GST_VIDEO_INFO_FORMAT(&info) == GST_VIDEO_FORMAT_NV12) {
            guint8 *row = (guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 1) +
                          (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 1);
            for (int x = 0; x < W / 2; x++) {
                row[2 * x] = (guint8)u;
                row[2 * x + 1] = (guint8)v;
            }
        } else {
            memset((guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 1) +
                       (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 1),
                   u, W / 2);
            memset((guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 2) +
                       (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 2),
                   v, W / 2);
        }
    }
    gst_video_frame_unmap(&f);
    return buf;
}

/* The RGB frame those YUV bytes mean: the textbook conversion in double with the matrix's Kr, Kb
 * and the range's offsets and scales, independent of GStreamer's converter. */
static GstBuffer *rgb_of_yuv(const char *yuv_caps, int u, int v)
{
    GstVideoInfo yuv, rgb;
    GstCaps *c = gst_caps_from_string(yuv_caps);
    GstBuffer *src = make_yuv(yuv_caps, u, v), *buf;
    GstVideoFrame fs, fd;
    gdouble kr, kb;
    gint off[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];

    gst_video_info_from_caps(&yuv, c);
    gst_caps_unref(c);
    gst_video_color_matrix_get_Kr_Kb(yuv.colorimetry.matrix, &kr, &kb);
    gst_video_color_range_offsets(yuv.colorimetry.range, yuv.finfo, off, scale);
    gst_video_info_set_format(&rgb, GST_VIDEO_FORMAT_RGB, W, H);
    buf = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(&rgb));
    gst_video_frame_map(&fs, &yuv, src, GST_MAP_READ);
    gst_video_frame_map(&fd, &rgb, buf, GST_MAP_WRITE);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const guint8 *yrow = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&fs, 0) +
                                 (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&fs, 0);
            guint8 *d = (guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&fd, 0) +
                        (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&fd, 0) + 3 * x;
            double Y = (yrow[x] - off[0]) * 255.0 / scale[0];
            double Cb = (u - off[1]) * 255.0 / scale[1], Cr = (v - off[2]) * 255.0 / scale[2];
            double R = Y + 2 * (1 - kr) * Cr, B = Y + 2 * (1 - kb) * Cb;
            double G = (Y - kr * R - kb * B) / (1 - kr - kb);
            d[0] = clamp8(R);
            d[1] = clamp8(G);
            d[2] = clamp8(B);
        }
    gst_video_frame_unmap(&fs);
    gst_video_frame_unmap(&fd);
    gst_buffer_unref(src);
    return buf;
}

/* The picture as GRAY8 or an RGB format (R = G = B). */
static GstBuffer *gray_frame(const char *caps)
{
    GstVideoInfo info;
    GstCaps *c = gst_caps_from_string(caps);
    GstBuffer *buf;
    GstVideoFrame f;

    gst_video_info_from_caps(&info, c);
    gst_caps_unref(c);
    buf = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(&info));
    gst_buffer_memset(buf, 0, 255, GST_VIDEO_INFO_SIZE(&info));
    gst_video_frame_map(&f, &info, buf, GST_MAP_WRITE);
    for (int y = 0; y < H; y++) {
        guint8 *row = (guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) +
                      (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
        const int ps = GST_VIDEO_FRAME_COMP_PSTRIDE(&f, 0);
        for (int x = 0; x < W; x++)
            for (int c = 0; c < MIN(ps, 3); c++)
                row[ps * x + GST_VIDEO_FRAME_COMP_POFFSET(&f, c)] = picture[y * W + x];
    }
    gst_video_frame_unmap(&f);
    return buf;
}

#define CAPS(fmt, extra) "video/x-raw,format=" fmt ",width=160,height=120,framerate=30/1" extra

static void test_same_picture(const char *model_dir, const char *what)
{
    static const struct {
        const char *caps;
        gboolean yuv;
    } formats[] = {
        {CAPS("RGB", ""), FALSE},
        {CAPS("BGRx", ""), FALSE},
        {CAPS("I420", ",colorimetry=bt601"), TRUE},
        {CAPS("NV12", ",colorimetry=bt601"), TRUE},
        {CAPS("I420", ",colorimetry=bt709"), TRUE},
        {CAPS("I420", ",colorimetry=1:4:0:0"), TRUE}, /* full range, BT.601 */
    };
    float gray[EV_MAX_CLASSES], p[EV_MAX_CLASSES];
    int n =
        element_probabilities(model_dir, CAPS("GRAY8", ""), gray_frame(CAPS("GRAY8", "")), gray);

    CHECK(n > 0, "GRAY8: %d probabilities", n);
    for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
        GstBuffer *b =
            formats[i].yuv ? make_yuv(formats[i].caps, 128, 128) : gray_frame(formats[i].caps);
        int m = element_probabilities(model_dir, formats[i].caps, b, p);
        double d = m == n ? max_abs_diff(p, gray, n) : 1.0;
        CHECK(d <= 1e-3, "%s: %s gives GRAY8's probabilities (max diff %.2g)", what,
              formats[i].caps + 19, d);
    }
}

/* The luma of limited-range YUV used as if it were full range (what the element did before)
 * really is a different input: shown on the engine directly for the current picture; returns the
 * largest probability difference to GRAY8. */
static double limited_range_as_full(const char *model_dir)
{
    ev_model *model;
    ev_plan *plan;
    ev_error err = {0};
    ev_plan_options opt = {.backend = EV_BACKEND_CPU, .batch = 1, .threads = 1};
    GstVideoInfo info;
    GstCaps *c = gst_caps_from_string(CAPS("I420", ",colorimetry=bt601"));
    GstBuffer *b = make_yuv(CAPS("I420", ",colorimetry=bt601"), 128, 128);
    float raw[EV_MAX_CLASSES], gray[EV_MAX_CLASSES];
    double d;

    gst_video_info_from_caps(&info, c);
    gst_caps_unref(c);
    if (ev_model_load(model_dir, &model, &err) || ev_plan_create(model, &opt, &plan, &err)) {
        CHECK(0, "engine: %s", err.message);
        return 0;
    }
    engine_probabilities(model, plan, &info, b, NULL, FALSE, raw); /* luma plane as is */
    element_probabilities(model_dir, CAPS("GRAY8", ""), gray_frame(CAPS("GRAY8", "")), gray);
    d = max_abs_diff(raw, gray, ev_model_num_classes(model));
    gst_buffer_unref(b);
    ev_plan_free(plan);
    ev_model_free(model);
    return d;
}

/* A tinted picture in YUV under BT.601 and BT.709: the element's answer is the one for the RGB
 * those bytes mean under the caps' matrix, and the two matrices give different RGB. */
static void test_matrix(const char *model_dir, const char *what, double tolerance,
                        gboolean must_differ)
{
    static const char *caps[] = {CAPS("I420", ",colorimetry=bt601"),
                                 CAPS("I420", ",colorimetry=bt709"),
                                 CAPS("NV12", ",colorimetry=bt709")};
    float ref[3][EV_MAX_CLASSES], p[EV_MAX_CLASSES];
    int n = 0;

    for (guint i = 0; i < G_N_ELEMENTS(caps); i++) {
        GstBuffer *rgb = rgb_of_yuv(caps[i], 96, 176);
        double d;
        n = element_probabilities(model_dir, CAPS("RGB", ""), rgb, ref[i]);
        d = element_probabilities(model_dir, caps[i], make_yuv(caps[i], 96, 176), p) == n
                ? max_abs_diff(p, ref[i], n)
                : 1.0;
        CHECK(d <= tolerance, "%s, tinted %s: the RGB it means under its matrix (max diff %.2g)",
              what, caps[i] + 19, d);
    }
    printf("     %s: BT.601 vs BT.709 reading of the same bytes differ by %.3g\n", what,
           max_abs_diff(ref[0], ref[1], n));
    if (must_differ)
        CHECK(max_abs_diff(ref[0], ref[1], n) > tolerance,
              "%s: the matrix matters for these bytes (%.3g)", what,
              max_abs_diff(ref[0], ref[1], n));
}

/* The sink pad's caps once the model is loaded: the model's own formats first, so an upstream
 * videoconvert picks GRAY8 for a gray model and RGB for a colour one. */
static void test_caps_order(const char *model_dir, const char *first)
{
    GstElement *e = make_element("echoviewclassify", "model-file", model_dir, NULL);
    GstPad *pad = gst_element_get_static_pad(e, "sink");
    GstCaps *caps;
    const GValue *formats;

    gst_element_set_state(e, GST_STATE_PAUSED);
    caps = gst_pad_query_caps(pad, NULL);
    formats = gst_structure_get_value(gst_caps_get_structure(caps, 0), "format");
    CHECK(formats && GST_VALUE_HOLDS_LIST(formats) &&
              !g_strcmp0(g_value_get_string(gst_value_list_get_value(formats, 0)), first) &&
              gst_value_list_get_size(formats) == 12,
          "%s: sink caps list the 12 formats, %s first", model_dir, first);
    gst_caps_unref(caps);
    gst_element_set_state(e, GST_STATE_NULL);
    gst_object_unref(pad);
    gst_object_unref(e);
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: %s GRAY_MODEL_DIR RGB_MODEL_DIR\n", argv[0]);
        return 2;
    }
    for (int variant = 0; variant < 4; variant++) {
        gchar *what = g_strdup_printf("gray fixture, pattern %d", variant * 3);
        picture_from_pattern(variant * 3);
        test_same_picture(argv[1], what);
        g_free(what);
    }
    test_matrix(argv[1], "gray fixture", 1e-3, FALSE);
    test_matrix(argv[2], "colour fixture", 1e-3, FALSE);
    if (argc > 3 && g_file_test(argv[3], G_FILE_TEST_IS_DIR)) {
        static const char *views[] = {"A2CH",    "A4CH-LV", "A5CH",      "PLAX-full",
                                      "PSAX-AV", "PSAX-LV", "Subcostal", "Suprasternal"};
        double worst = 0;
        for (guint i = 0; i < G_N_ELEMENTS(views); i++) {
            gchar *what = g_strdup_printf("trained model, phantom %s", views[i]);
            double d;
            CHECK(picture_from_phantom(views[i]), "phantom frame of %s", views[i]);
            test_same_picture(argv[3], what);
            d = limited_range_as_full(argv[3]);
            printf("     %s: limited-range luma read as full range differs from GRAY8 by %.3g\n",
                   views[i], d);
            worst = MAX(worst, d);
            g_free(what);
        }
        CHECK(worst > 1e-3,
              "limited-range luma taken as full range is a different input (up to %.3g > 1e-3)",
              worst);
        test_matrix(argv[3], "trained gray model", 1e-3, TRUE);
    }
    test_caps_order(argv[1], "GRAY8");
    test_caps_order(argv[2], "RGB");
    return test_finish();
}
