/* test_pipeline.c: `echophantomsrc schedule=... ! echoviewclassify ! fakesink` as an
 * application runs it: messages read from the bus, the stable label scored against the ground
 * truth the source put in the meta (and the element copies into its messages).
 * usage: test_pipeline MODEL_DIR [MIN_AGREEMENT]
 *   With MIN_AGREEMENT (e.g. 0.95) the model must be a trained one; a missing model skips (77).
 *   Without it (fixture models with random weights) only the plumbing is checked. */
#include "gst_test_util.h"

#include <glib/gstdio.h>

/* The 14 views in a loop at 30 fps: 4 s each when scoring a trained model, 0.5 s each for the
 * plumbing check with a fixture model. */

static const char *const views[14] = {"A2CH",        "A3CH",         "A4CH-LV", "A4CH-RV",
                                      "A5CH",        "Apical-LA/MV", "PLAX-TV", "PLAX-full",
                                      "PLAX-valves", "PSAX-AV",      "PSAX-LV", "Subcostal-IVC",
                                      "Subcostal",   "Suprasternal"};

int main(int argc, char **argv)
{
    const char *model_dir;
    double min_agreement = -1;
    gchar *yaml, *launch;
    GstElement *pipe;
    GstBus *bus;
    GstMessage *msg;
    GError *err = NULL;
    int seconds_x2, total;
    GString *schedule = g_string_new(NULL);
    int messages = 0, agree = 0, gt_wrong = 0, with_result = 0;
    int per_view_total[14] = {0}, per_view_agree[14] = {0};
    gboolean eos = FALSE;
    guint64 frames = 0, inferred = 0, skipped = 0;
    GstElement *cls;

    gst_init(&argc, &argv);
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [MIN_AGREEMENT]\n", argv[0]);
        return 2;
    }
    model_dir = argv[1];
    if (argc > 2)
        min_agreement = g_ascii_strtod(argv[2], NULL);
    yaml = g_build_filename(model_dir, "model.yaml", NULL);
    if (!g_file_test(yaml, G_FILE_TEST_EXISTS)) {
        printf("SKIP: no model at %s\n", model_dir);
        g_free(yaml);
        return 77;
    }
    g_free(yaml);

    seconds_x2 = min_agreement >= 0 ? 8 : 1;
    total = 14 * seconds_x2 * 15;
    for (int v = 0; v < 14; v++)
        g_string_append_printf(schedule, "%s%s:%g", v ? "," : "", views[v], seconds_x2 / 2.0);
    launch = g_strdup_printf(
        "echophantomsrc is-live=false seed=21 quality=4 num-buffers=%d "
        "schedule=\"%s\" ! video/x-raw,width=640,height=480,framerate=30/1 ! "
        "echoviewclassify name=cls model-file=%s updates=every-frame smoothing=3 hysteresis=2 "
        "! fakesink",
        total, schedule->str, model_dir);
    pipe = gst_parse_launch(launch, &err);
    CHECK(pipe && !err, "pipeline parses");
    if (!pipe)
        return test_finish();
    bus = gst_element_get_bus(pipe);
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    while (!eos && (msg = gst_bus_timed_pop(bus, 60 * GST_SECOND))) {
        switch (GST_MESSAGE_TYPE(msg)) {
        case GST_MESSAGE_ELEMENT:
            if (gst_message_has_name(msg, "echoviewclassify")) {
                const GstStructure *s = gst_message_get_structure(msg);
                const char *gt = gst_structure_get_string(s, "ground-truth");
                const char *stable = gst_structure_get_string(s, "stable-label");
                guint64 ts = 0;
                int want_view, second;
                gst_structure_get_uint64(s, "timestamp", &ts);
                second = (int)(ts * 2 / GST_SECOND); /* half seconds */
                want_view = (second / seconds_x2) % 14;
                if (!gt || strcmp(gt, views[want_view]))
                    gt_wrong++;
                with_result += g_strcmp0(gst_structure_get_string(s, "label"), "unknown") != 0;
                per_view_total[want_view]++;
                if (gt && stable && !strcmp(gt, stable)) {
                    agree++;
                    per_view_agree[want_view]++;
                }
                messages++;
            }
            break;
        case GST_MESSAGE_ERROR: {
            GError *e = NULL;
            gst_message_parse_error(msg, &e, NULL);
            CHECK(FALSE, "pipeline error: %s", e->message);
            g_clear_error(&e);
            eos = TRUE;
            break;
        }
        case GST_MESSAGE_EOS:
            eos = TRUE;
            break;
        default:
            break;
        }
        gst_message_unref(msg);
    }
    cls = gst_bin_get_by_name(GST_BIN(pipe), "cls");
    g_object_get(cls, "frames", &frames, "inferred", &inferred, "skipped", &skipped, NULL);
    gst_object_unref(cls);
    gst_element_set_state(pipe, GST_STATE_NULL);

    CHECK(eos, "pipeline reached EOS");
    CHECK(messages == total, "one message per frame (%d of %d)", messages, total);
    CHECK(gt_wrong == 0, "ground truth in every message follows the schedule (%d wrong)", gt_wrong);
    CHECK(with_result == total && frames == (guint64)total && inferred == (guint64)total &&
              skipped == 0,
          "sync mode: every frame inferred, none skipped (%" G_GUINT64_FORMAT
          " frames, %" G_GUINT64_FORMAT " inferred, %" G_GUINT64_FORMAT " skipped)",
          frames, inferred, skipped);
    printf("     stable-label agreement with ground truth: %.1f%% (%d/%d)\n",
           messages ? 100.0 * agree / messages : 0.0, agree, messages);
    for (int v = 0; v < 14; v++)
        printf("       view %2d: %5.1f%%\n", v,
               per_view_total[v] ? 100.0 * per_view_agree[v] / per_view_total[v] : 0.0);
    if (min_agreement >= 0)
        CHECK(messages && (double)agree / messages >= min_agreement,
              "agreement %.3f >= %.2f on a 14-view schedule",
              messages ? (double)agree / messages : 0.0, min_agreement);
    gst_object_unref(bus);
    gst_object_unref(pipe);
    g_free(launch);
    g_string_free(schedule, TRUE);
    return test_finish();
}
