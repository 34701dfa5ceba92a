/* test_errors.c: every way echoviewclassify and echophantomsrc refuse to run: missing, corrupt
 * and inconsistent models, unavailable backend, bad roi, conflicting model-instance-id,
 * unsupported caps, bad schedules. Each must fail with a GST_ELEMENT_ERROR of the stated
 * domain and code, from the element itself, never crash. A bus sync handler reads a property
 * of the element for every error, in the posting thread: an error posted while holding the
 * object lock would deadlock here (meson's timeout catches it).
 * usage: test_errors MODEL_DIR */
#include "gst_test_util.h"

#include <glib/gstdio.h>

static const char *model_dir;

static GstBusSyncReply touch_element(GstBus *bus, GstMessage *msg, gpointer data)
{
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR && GST_IS_ELEMENT(GST_MESSAGE_SRC(msg))) {
        gchar *name = NULL;
        /* takes the object lock of the element that posted */
        g_object_get(GST_MESSAGE_SRC(msg), "name", &name, NULL);
        g_free(name);
    }
    return GST_BUS_PASS;
}

/* Runs launch; returns the first error (from the element named "under"), and whether the state
 * change itself failed. */
static GError *run_expect_error(const char *launch, gboolean *state_failed)
{
    GError *perr = NULL, *error = NULL;
    GstElement *pipe = gst_parse_launch(launch, &perr);
    GstBus *bus;
    GstMessage *msg;
    GstStateChangeReturn ret;

    if (!pipe || perr) {
        fprintf(stderr, "parse: %s\n", perr ? perr->message : "?");
        g_clear_error(&perr);
        return NULL;
    }
    bus = gst_element_get_bus(pipe);
    gst_bus_set_sync_handler(bus, touch_element, NULL, NULL);
    ret = gst_element_set_state(pipe, GST_STATE_PLAYING);
    *state_failed = ret == GST_STATE_CHANGE_FAILURE;
    msg = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_ERROR | GST_MESSAGE_EOS);
    if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        gchar *src = gst_object_get_name(GST_MESSAGE_SRC(msg));
        gst_message_parse_error(msg, &error, NULL);
        if (g_strcmp0(src, "under") != 0) {
            printf("     (error came from %s: %s)\n", src, error->message);
            g_clear_error(&error);
        }
        g_free(src);
    }
    if (msg)
        gst_message_unref(msg);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipe);
    return error;
}

static void expect(const char *what, const char *element_args, GQuark domain, gint code,
                   gboolean must_fail_state)
{
    gchar *launch = g_strdup_printf(
        "videotestsrc num-buffers=3 ! "
        "video/x-raw,format=GRAY8,width=64,height=48 ! echoviewclassify name=under %s ! fakesink",
        element_args);
    gboolean failed = FALSE;
    GError *e = run_expect_error(launch, &failed);

    CHECK(e && e->domain == domain && e->code == code && (!must_fail_state || failed),
          "%s: %s error %d (want %s %d)%s: %s", what, e ? g_quark_to_string(e->domain) : "no",
          e ? e->code : -1, g_quark_to_string(domain), code, failed ? ", state change failed" : "",
          e ? e->message : "");
    g_clear_error(&e);
    g_free(launch);
}

/* A roi outside the first caps is one error, though the negotiation asks again and again (it
 * was posted 7 times in a plain videotestsrc pipeline). */
static void test_error_posted_once(void)
{
    gchar *launch = g_strdup_printf(
        "videotestsrc num-buffers=3 ! video/x-raw,format=GRAY8,width=64,height=48 ! "
        "echoviewclassify name=under model-file=%s roi=50,40,30,30 ! fakesink",
        model_dir);
    GstElement *pipe = gst_parse_launch(launch, NULL);
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *msg;
    int from_element = 0;

    gst_element_set_state(pipe, GST_STATE_PLAYING);
    /* every error the pipeline will post comes within a second of the first (no wait otherwise) */
    while ((msg = gst_bus_timed_pop_filtered(bus, 2 * GST_SECOND,
                                             GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
        gboolean eos = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS;
        gchar *src = gst_object_get_name(GST_MESSAGE_SRC(msg));
        from_element += !eos && !g_strcmp0(src, "under");
        g_free(src);
        gst_message_unref(msg);
        if (eos)
            break;
    }
    CHECK(from_element == 1, "roi outside the frame: posted once (%d errors from the element)",
          from_element);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(pipe);
    g_free(launch);
}

static gchar *make_bundle(const char *tmp, const char *name, const char *yaml_from,
                          const char *yaml_to, gssize weights_bytes)
{
    gchar *dir = g_build_filename(tmp, name, NULL);
    gchar *src_yaml = g_build_filename(model_dir, "model.yaml", NULL);
    gchar *src_w = g_build_filename(model_dir, "weights.safetensors", NULL);
    gchar *yaml = NULL, *w = NULL, *path;
    gsize ylen, wlen;
    GString *s;

    g_mkdir_with_parents(dir, 0755);
    g_file_get_contents(src_yaml, &yaml, &ylen, NULL);
    g_file_get_contents(src_w, &w, &wlen, NULL);
    s = g_string_new(yaml);
    if (yaml_from)
        g_string_replace(s, yaml_from, yaml_to, 1);
    path = g_build_filename(dir, "model.yaml", NULL);
    g_file_set_contents(path, s->str, -1, NULL);
    g_free(path);
    path = g_build_filename(dir, "weights.safetensors", NULL);
    g_file_set_contents(path, w, weights_bytes >= 0 ? MIN((gsize)weights_bytes, wlen) : wlen, NULL);
    g_free(path);
    g_string_free(s, TRUE);
    g_free(yaml);
    g_free(w);
    g_free(src_yaml);
    g_free(src_w);
    return dir;
}

static void test_model_errors(const char *tmp)
{
    gchar *args, *dir;

    expect("no model-file", "", GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, TRUE);
    expect("missing model", "model-file=/nonexistent/echoview/model", GST_RESOURCE_ERROR,
           GST_RESOURCE_ERROR_NOT_FOUND, TRUE);

    dir = g_build_filename(tmp, "garbage", NULL);
    g_mkdir_with_parents(dir, 0755);
    {
        gchar *p = g_build_filename(dir, "model.yaml", NULL);
        g_file_set_contents(p, "name: [unclosed\n  classes: {{{\n", -1, NULL);
        g_free(p);
    }
    args = g_strdup_printf("model-file=%s", dir);
    expect("corrupt model.yaml", args, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, TRUE);
    g_free(args);
    g_free(dir);

    dir = make_bundle(tmp, "truncated", NULL, NULL, 100);
    args = g_strdup_printf("model-file=%s", dir);
    expect("truncated weights", args, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, TRUE);
    g_free(args);
    g_free(dir);

    dir = make_bundle(tmp, "classes", "A2CH, A3CH, ", "A3CH, ", -1);
    args = g_strdup_printf("model-file=%s", dir);
    expect("13 classes for a 14-way head", args, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, TRUE);
    g_free(args);
    g_free(dir);

    dir = make_bundle(tmp, "channels", "channels: 1", "channels: 3", -1);
    args = g_strdup_printf("model-file=%s", dir);
    expect("3 input channels for 1-channel weights", args, GST_LIBRARY_ERROR,
           GST_LIBRARY_ERROR_INIT, TRUE);
    g_free(args);
    g_free(dir);

    if (!ev_backend_available(EV_BACKEND_CUDA)) {
        args = g_strdup_printf("model-file=%s backend=cuda", model_dir);
        expect("backend=cuda without a GPU", args, GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT, TRUE);
        g_free(args);
    } else {
        printf("     (cuda available: the unavailable-backend case is not testable here)\n");
    }

    args = g_strdup_printf("model-file=%s roi=left-half", model_dir);
    expect("roi=left-half", args, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, TRUE);
    g_free(args);

    args = g_strdup_printf("model-file=%s roi=50,40,30,30", model_dir);
    expect("roi outside the 64x48 frame", args, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT, FALSE);
    g_free(args);
    test_error_posted_once();
}

static void test_instance_conflict(const char *tmp)
{
    gchar *copy = make_bundle(tmp, "copy", NULL, NULL, -1);
    /* elements start downstream first: the second one (named under) finds the id taken */
    gchar *launch = g_strdup_printf(
        "videotestsrc num-buffers=3 ! video/x-raw,format=GRAY8,"
        "width=64,height=48 ! echoviewclassify name=under model-file=%s model-instance-id=clash ! "
        "echoviewclassify model-file=%s model-instance-id=clash ! fakesink",
        copy, model_dir);
    gboolean failed = FALSE;
    GError *e = run_expect_error(launch, &failed);

    CHECK(e && e->domain == GST_RESOURCE_ERROR && e->code == GST_RESOURCE_ERROR_SETTINGS && failed,
          "same model-instance-id, different model-file: RESOURCE SETTINGS (%s)",
          e ? e->message : "no error");
    g_clear_error(&e);
    g_free(launch);
    g_free(copy);
}

static void test_caps(void)
{
    GstElement *e = make_element("echoviewclassify", "model-file", model_dir, NULL);
    GstPad *sink = gst_element_get_static_pad(e, "sink");
    const char *refused[] = {
        "video/x-raw,format=YUY2,width=64,height=48,framerate=30/1",
        "video/x-raw,format=GRAY16_BE,width=64,height=48,framerate=30/1",
        "video/x-raw(memory:GLMemory),format=RGBA,width=64,height=48,framerate=30/1",
        "audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved",
    };

    for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
        GstCaps *caps = gst_caps_from_string(refused[i]);
        CHECK(!gst_pad_query_accept_caps(sink, caps), "refuses %s", refused[i]);
        gst_caps_unref(caps);
    }
    {
        GstCaps *caps = gst_caps_from_string("video/x-raw,format=NV12,width=64,height=48,"
                                             "framerate=30/1");
        CHECK(gst_pad_query_accept_caps(sink, caps), "accepts NV12");
        gst_caps_unref(caps);
    }
    gst_object_unref(sink);
    gst_object_unref(e);

    {
        gboolean failed = FALSE;
        gchar *launch =
            g_strdup_printf("videotestsrc num-buffers=3 ! video/x-raw,format=YUY2 ! "
                            "identity name=under ! echoviewclassify model-file=%s ! fakesink",
                            model_dir);
        GError *err = NULL;
        GstElement *pipe = gst_parse_launch(launch, &err);
        /* a YUY2 stream cannot even be linked to the element */
        CHECK(pipe == NULL || err != NULL, "YUY2 pipeline refused at link time (%s)",
              err ? err->message : "linked!");
        g_clear_error(&err);
        if (pipe)
            gst_object_unref(pipe);
        g_free(launch);
        (void)failed;
    }
}

static void test_source_errors(void)
{
    const char *bad[] = {"schedule=A4CH-LV:5,NotAView:5", "schedule=A4CH-LV:-1",
                         "schedule=A4CH-LV:abc", "schedule=,", "view=Nonsense"};
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        gchar *launch =
            g_strdup_printf("echophantomsrc name=under num-buffers=2 %s ! fakesink", bad[i]);
        gboolean failed = FALSE;
        GError *e = run_expect_error(launch, &failed);
        CHECK(e && e->domain == GST_RESOURCE_ERROR && e->code == GST_RESOURCE_ERROR_SETTINGS &&
                  failed,
              "echophantomsrc %s: RESOURCE SETTINGS (%s)", bad[i], e ? e->message : "none");
        g_clear_error(&e);
        g_free(launch);
    }
}

int main(int argc, char **argv)
{
    gchar *tmp;

    gst_init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    model_dir = argv[1];
    tmp = g_dir_make_tmp("echoview-gst-XXXXXX", NULL);

    test_model_errors(tmp);
    test_instance_conflict(tmp);
    test_caps();
    test_source_errors();

    {
        gchar *cmd = g_strdup_printf("rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp);
        g_free(cmd);
    }
    g_free(tmp);
    return test_finish();
}
