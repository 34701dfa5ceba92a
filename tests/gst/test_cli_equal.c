/* test_cli_equal.c: the one preprocessing path. Full-size phantom frames (800x600, scanner
 * framing with overlays) go through echoviewclassify and, written to PNG, through
 * `echoview classify`; both must give the same probabilities (cpu backend on both sides), with
 * the whole frame and with the sector detected automatically, in GRAY8 and RGB.
 * usage: test_cli_equal MODEL_DIR ECHOVIEW_EXE */
#include "gst_test_util.h"
#include "media.h"

#include <glib/gstdio.h>
#include <jansson.h>

static const char *model_dir, *echoview_exe;

/* Frames from echophantomsrc in the given caps. */
static GstBuffer *phantom_frame(const char *caps, const char *view, GstVideoInfo *info)
{
    GstElement *e =
        make_element("echophantomsrc", "is-live", "false", "view", view, "seed", "11", NULL);
    GstHarness *h = gst_harness_new_with_element(e, NULL, "src");
    GstBuffer *b;
    GstCaps *c = gst_caps_from_string(caps);

    gst_object_unref(e);
    gst_harness_set_sink_caps_str(h, caps);
    gst_harness_play(h);
    b = gst_harness_pull(h);
    gst_video_info_from_caps(info, c);
    gst_caps_unref(c);
    gst_harness_teardown(h);
    return b;
}

static int write_png(GstBuffer *b, const GstVideoInfo *info, const char *path)
{
    media_image img = {0};
    ev_error err = {0};
    GstVideoFrame f;
    const int channels = GST_VIDEO_INFO_FORMAT(info) == GST_VIDEO_FORMAT_RGB ? 3 : 1;
    int rc = media_image_alloc(&img, GST_VIDEO_INFO_WIDTH(info), GST_VIDEO_INFO_HEIGHT(info),
                               channels, 8, &err);

    if (rc)
        return rc;
    gst_video_frame_map(&f, info, b, GST_MAP_READ);
    for (int y = 0; y < img.height; y++)
        memcpy(img.data + (size_t)y * img.stride,
               (guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) +
                   (size_t)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0),
               (size_t)img.width * channels);
    gst_video_frame_unmap(&f);
    rc = media_image_write_png(path, &img, &err);
    media_image_free(&img);
    return rc;
}

static json_t *run_cli(const char *png, gboolean auto_roi)
{
    const char *argv[] = {echoview_exe,
                          "classify",
                          "--model",
                          model_dir,
                          "--backend",
                          "cpu",
                          auto_roi ? "--auto-roi" : png,
                          auto_roi ? png : NULL,
                          NULL};
    gchar *out = NULL, *errout = NULL;
    gint status = -1;
    json_t *j = NULL;
    json_error_t jerr;

    if (g_spawn_sync(NULL, (gchar **)argv, NULL, 0, NULL, NULL, &out, &errout, &status, NULL) &&
        status == 0)
        j = json_loads(out, 0, &jerr);
    else
        fprintf(stderr, "echoview classify failed: %s\n", errout ? errout : "");
    g_free(out);
    g_free(errout);
    return j;
}

static void compare(const char *caps, const char *view, const char *roi, const char *tmp)
{
    GstVideoInfo info;
    GstBuffer *frame = phantom_frame(caps, view, &info);
    gchar *png = g_build_filename(tmp, "frame.png", NULL);
    GstElement *e = make_element("echoviewclassify", "model-file", model_dir, "backend", "cpu",
                                 "roi", roi, NULL);
    GstBus *bus;
    GstHarness *h = harness_for(e, &bus);
    GstBuffer *out;
    GstEchoViewMeta *m;
    json_t *j;
    ev_model *model = NULL;
    ev_error err = {0};

    ev_model_load(model_dir, &model, &err);
    CHECK(write_png(frame, &info, png) == 0, "%s %s: PNG written", view, caps);
    gst_harness_set_src_caps_str(h, caps);
    gst_harness_push(h, gst_buffer_ref(frame));
    out = gst_harness_pull(h);
    m = out ? gst_buffer_get_echo_view_meta(out) : NULL;
    j = run_cli(png, !strcmp(roi, "auto"));
    CHECK(m && j, "%s roi=%s: both answered", view, roi);
    if (m && j && model) {
        json_t *probs = json_object_get(j, "probabilities");
        double d = 0;
        for (int i = 0; i < ev_model_num_classes(model); i++) {
            json_t *v = json_object_get(probs, ev_model_class_name(model, i));
            double p = v ? json_real_value(v) : -1;
            d = MAX(d, fabs(p - m->probabilities[i]));
        }
        CHECK(d <= 1e-6 && json_integer_value(json_object_get(j, "label_id")) == m->label_id &&
                  !g_strcmp0(json_string_value(json_object_get(j, "label")), m->label),
              "%s %s roi=%s: element == echoview classify (label %s, max diff %.2g)", view,
              GST_VIDEO_INFO_NAME(&info), roi, m->label, d);
    }
    if (j)
        json_decref(j);
    if (out)
        gst_buffer_unref(out);
    ev_model_free(model);
    gst_harness_teardown(h);
    gst_object_unref(bus);
    gst_buffer_unref(frame);
    g_unlink(png);
    g_free(png);
}

int main(int argc, char **argv)
{
    gchar *tmp;

    gst_init(&argc, &argv);
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR ECHOVIEW_EXE\n", argv[0]);
        return 2;
    }
    model_dir = argv[1];
    echoview_exe = argv[2];
    tmp = g_dir_make_tmp("echoview-gst-XXXXXX", NULL);
    compare("video/x-raw,format=GRAY8,width=800,height=600,framerate=30/1", "A4CH-LV", "full", tmp);
    compare("video/x-raw,format=GRAY8,width=800,height=600,framerate=30/1", "A4CH-LV", "auto", tmp);
    compare("video/x-raw,format=RGB,width=800,height=600,framerate=30/1", "PSAX-AV", "auto", tmp);
    compare("video/x-raw,format=GRAY8,width=800,height=600,framerate=30/1", "Subcostal", "auto",
            tmp);
    g_rmdir(tmp);
    g_free(tmp);
    return test_finish();
}
