/* test_dicomsrc.c: dicomsrc (and media/dicom.h under it) against DCMTK's own renderer, and its
 * timing, looping, region and error behaviour. Subcommands:
 *   pixels DCM2PNM TMPDIR FILE...   every frame of every FILE, played by dicomsrc, equals
 *                                   `dcm2pnm +Fa` byte for byte (count, size, colour, pixels)
 *   timing FILE FRAMES MS[,MS...]   PTS/duration of each frame, caps framerate (0/1 for a list of
 *                                   per-frame times), EOS after FRAMES
 *   loop FILE FRAMES                loop=true: 3*FRAMES buffers with increasing PTS, same pixels
 *   roi FILE X,Y,W,H|auto           the roi property and the per-buffer region meta
 *   error FILE "TEXT"               open fails; the element error's debug text contains TEXT
 *   classify FILE MODEL VIEW        dicomsrc's roi handed to echoviewclassify (PAUSED, read roi,
 *                                   READY, set it, PLAYING), and the classifier left at roi=auto
 *                                   and set to roi=meta (it reads the ultrasound-region meta):
 *                                   each crops exactly there and ends on VIEW
 *   receive SDP FILE MIN TOL        receives the RTP stream an SDP describes (sdpdemux, as
 *                                   echoviewd's sdp source does) until MIN frames within mean
 *                                   absolute difference TOL of some frame of FILE (0: identical)
 *                                   arrived, or 3 s of silence; frames damaged by UDP loss are
 *                                   counted apart; prints "ready" once listening
 */
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "dicom.h"
#include "media.h"

static int failures;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
            failures++;                                          \
        }                                                        \
    } while (0)

typedef struct {
    GstElement *pipeline, *src, *sink;
} Player;

static gboolean player_open(Player *p, const char *location, gboolean loop, GError **error)
{
    gchar *escaped = g_strescape(location, NULL);
    gchar *desc = g_strdup_printf("dicomsrc name=src location=\"%s\" loop=%s ! "
                                  "appsink name=sink sync=false max-buffers=4",
                                  escaped, loop ? "true" : "false");
    GstStateChangeReturn ret;

    p->pipeline = gst_parse_launch(desc, error);
    g_free(desc);
    g_free(escaped);
    if (!p->pipeline)
        return FALSE;
    p->src = gst_bin_get_by_name(GST_BIN(p->pipeline), "src");
    p->sink = gst_bin_get_by_name(GST_BIN(p->pipeline), "sink");
    ret = gst_element_set_state(p->pipeline, GST_STATE_PLAYING);
    if (ret == GST_STATE_CHANGE_FAILURE) {
        GstBus *bus = gst_element_get_bus(p->pipeline);
        GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        gchar *debug = NULL;
        GError *e = NULL;
        if (m) {
            gst_message_parse_error(m, &e, &debug);
            g_set_error(error, e->domain, e->code, "%s | %s", e->message, debug ? debug : "");
            g_clear_error(&e);
            g_free(debug);
            gst_message_unref(m);
        } else {
            g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE, "state change failed");
        }
        gst_object_unref(bus);
        return FALSE;
    }
    return TRUE;
}

static void player_close(Player *p)
{
    if (p->pipeline)
        gst_element_set_state(p->pipeline, GST_STATE_NULL);
    g_clear_object(&p->src);
    g_clear_object(&p->sink);
    g_clear_object(&p->pipeline);
}

/* Reads dcm2pnm's frame `index` of `count` (dcm2pnm names them out.N.pgm/ppm with +Fa). */
static int read_reference(const char *tmpdir, int index, media_image *img)
{
    char path[4096];
    ev_error err = {0};
    snprintf(path, sizeof path, "%s/ref.%d.pgm", tmpdir, index);
    if (media_image_read(path, img, &err) == EV_OK)
        return 1;
    snprintf(path, sizeof path, "%s/ref.%d.ppm", tmpdir, index);
    return media_image_read(path, img, &err) == EV_OK;
}

static int count_references(const char *tmpdir)
{
    int n = 0;
    for (;; n++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/ref.%d.pgm", tmpdir, n);
        snprintf(b, sizeof b, "%s/ref.%d.ppm", tmpdir, n);
        if (!g_file_test(a, G_FILE_TEST_EXISTS) && !g_file_test(b, G_FILE_TEST_EXISTS))
            return n;
    }
}

static void test_pixels_one(const char *dcm2pnm, const char *tmpdir, const char *file)
{
    gchar *cmd = g_strdup_printf("rm -f '%s'/ref.* && '%s' +Fa '%s' '%s/ref' 2>/dev/null", tmpdir,
                                 dcm2pnm, file, tmpdir);
    int rc = system(cmd), refs, frames = 0, mismatched = 0;
    Player p = {0};
    GError *error = NULL;
    g_free(cmd);
    CHECK(rc == 0, "%s: dcm2pnm failed", file);
    refs = count_references(tmpdir);
    CHECK(refs > 0, "%s: dcm2pnm wrote no frames", file);
    if (!player_open(&p, file, FALSE, &error)) {
        CHECK(0, "%s: dicomsrc: %s", file, error ? error->message : "?");
        g_clear_error(&error);
        player_close(&p);
        return;
    }
    for (;;) {
        GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(p.sink));
        GstVideoInfo info;
        GstVideoFrame vf;
        media_image ref = {0};
        if (!s)
            break;
        CHECK(gst_video_info_from_caps(&info, gst_sample_get_caps(s)), "%s: caps", file);
        if (frames < refs && read_reference(tmpdir, frames, &ref) &&
            gst_video_frame_map(&vf, &info, gst_sample_get_buffer(s), GST_MAP_READ)) {
            int channels = GST_VIDEO_INFO_FORMAT(&info) == GST_VIDEO_FORMAT_RGB ? 3 : 1;
            CHECK(ref.width == GST_VIDEO_INFO_WIDTH(&info) &&
                      ref.height == GST_VIDEO_INFO_HEIGHT(&info) && ref.channels == channels &&
                      ref.bit_depth == 8,
                  "%s frame %d: %dx%dx%d, dcm2pnm %dx%dx%d/%d bits", file, frames,
                  GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info), channels, ref.width,
                  ref.height, ref.channels, ref.bit_depth);
            if (ref.width == GST_VIDEO_INFO_WIDTH(&info) &&
                ref.height == GST_VIDEO_INFO_HEIGHT(&info) && ref.channels == channels) {
                const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(&vf, 0);
                gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0);
                for (int y = 0; y < ref.height; y++)
                    if (memcmp(data + (size_t)y * stride, ref.data + (size_t)y * ref.stride,
                               (size_t)ref.width * channels)) {
                        mismatched++;
                        break;
                    }
            }
            gst_video_frame_unmap(&vf);
        }
        media_image_free(&ref);
        gst_sample_unref(s);
        frames++;
    }
    CHECK(frames == refs, "%s: dicomsrc played %d frames, dcm2pnm wrote %d", file, frames, refs);
    CHECK(mismatched == 0, "%s: %d frame(s) differ from dcm2pnm", file, mismatched);
    printf("%s: %d frame(s), pixels %s %s\n", file, frames,
           mismatched || frames != refs ? "DIFFER from" : "equal to", dcm2pnm);
    player_close(&p);
}

static void test_timing(const char *file, int want_frames, const char *times)
{
    Player p = {0};
    GError *error = NULL;
    int frames = 0;
    GstClockTime want_pts = 0;
    gchar **parts = g_strsplit(times, ",", -1);
    guint n_times = g_strv_length(parts);
    double frame_ms = g_ascii_strtod(parts[0], NULL), start_ms = 0.0;

    if (!player_open(&p, file, FALSE, &error)) {
        CHECK(0, "%s: %s", file, error->message);
        g_clear_error(&error);
        return;
    }
    for (;;) {
        GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(p.sink));
        GstBuffer *b;
        if (!s)
            break;
        b = gst_sample_get_buffer(s);
        if (frames == 0) {
            GstStructure *st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
            gint n = 0, d = 1;
            gst_structure_get_fraction(st, "framerate", &n, &d);
            if (n_times > 1)
                CHECK(n == 0, "%s: caps framerate %d/%d, want 0/1 (variable)", file, n, d);
            else
                CHECK(n > 0 && fabs((double)d * 1000.0 / n - frame_ms) < 1e-3,
                      "%s: caps framerate %d/%d, want %.4f ms per frame", file, n, d, frame_ms);
        }
        if (n_times > 1)
            frame_ms = g_ascii_strtod(parts[MIN((guint)frames, n_times - 1)], NULL);
        want_pts = (GstClockTime)llround(start_ms * GST_MSECOND);
        start_ms += frame_ms;
        /* Timestamps are rounded to the nanosecond from the cumulative time: no drift. */
        CHECK(GST_BUFFER_PTS(b) == want_pts,
              "%s: frame %d PTS %" GST_TIME_FORMAT ", want %" GST_TIME_FORMAT, file, frames,
              GST_TIME_ARGS(GST_BUFFER_PTS(b)), GST_TIME_ARGS(want_pts));
        CHECK(llabs((long long)GST_BUFFER_DURATION(b) - llround(frame_ms * GST_MSECOND)) <= 1,
              "%s: frame %d duration %" GST_TIME_FORMAT, file, frames,
              GST_TIME_ARGS(GST_BUFFER_DURATION(b)));
        gst_sample_unref(s);
        frames++;
    }
    CHECK(frames == want_frames, "%s: %d frames, want %d", file, frames, want_frames);
    printf("%s: %d frames at %s ms\n", file, frames, times);
    g_strfreev(parts);
    player_close(&p);
}

static void test_loop(const char *file, int want_frames)
{
    Player p = {0};
    GError *error = NULL;
    GstClockTime last = GST_CLOCK_TIME_NONE;
    GBytes *first[64] = {0};

    if (want_frames > 64 || !player_open(&p, file, TRUE, &error)) {
        CHECK(0, "%s: %s", file, error ? error->message : "too many frames for the test");
        g_clear_error(&error);
        return;
    }
    for (int i = 0; i < 3 * want_frames; i++) {
        GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(p.sink));
        GstBuffer *b;
        GstMapInfo map;
        if (!s) {
            CHECK(0, "%s: looping stopped after %d buffers", file, i);
            break;
        }
        b = gst_sample_get_buffer(s);
        CHECK(last == GST_CLOCK_TIME_NONE || GST_BUFFER_PTS(b) == last,
              "%s: buffer %d PTS %" GST_TIME_FORMAT " does not continue at %" GST_TIME_FORMAT, file,
              i, GST_TIME_ARGS(GST_BUFFER_PTS(b)), GST_TIME_ARGS(last));
        last = GST_BUFFER_PTS(b) + GST_BUFFER_DURATION(b);
        gst_buffer_map(b, &map, GST_MAP_READ);
        if (i < want_frames) {
            first[i] = g_bytes_new(map.data, map.size);
        } else {
            GBytes *now = g_bytes_new_static(map.data, map.size);
            CHECK(g_bytes_equal(now, first[i % want_frames]), "%s: loop %d frame %d differs", file,
                  i / want_frames, i % want_frames);
            g_bytes_unref(now);
        }
        gst_buffer_unmap(b, &map);
        gst_sample_unref(s);
    }
    for (int i = 0; i < 64; i++)
        if (first[i])
            g_bytes_unref(first[i]);
    printf("%s: looped 3 times\n", file);
    player_close(&p);
}

static void test_roi(const char *file, const char *want)
{
    Player p = {0};
    GError *error = NULL;
    gchar *roi = NULL;
    GstSample *s;

    if (!player_open(&p, file, FALSE, &error)) {
        CHECK(0, "%s: %s", file, error->message);
        g_clear_error(&error);
        return;
    }
    s = gst_app_sink_pull_sample(GST_APP_SINK(p.sink));
    g_object_get(p.src, "roi", &roi, NULL);
    CHECK(!g_strcmp0(roi, want), "%s: roi '%s', want '%s'", file, roi, want);
    if (s) {
        GstVideoRegionOfInterestMeta *m = NULL, *it;
        gpointer state = NULL;
        while ((it = (GstVideoRegionOfInterestMeta *)gst_buffer_iterate_meta_filtered(
                    gst_sample_get_buffer(s), &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)))
            if (it->roi_type == g_quark_from_string("ultrasound-region"))
                m = it;
        if (!strcmp(want, "auto")) {
            CHECK(!m, "%s: region meta on a file without a region", file);
        } else {
            gchar *text = m ? g_strdup_printf("%u,%u,%u,%u", m->x, m->y, m->w, m->h) : NULL;
            CHECK(m && !strcmp(text, want), "%s: region meta %s, want %s", file,
                  text ? text : "missing", want);
            g_free(text);
        }
        gst_sample_unref(s);
    }
    printf("%s: roi %s\n", file, roi);
    g_free(roi);
    player_close(&p);
}

static void test_error(const char *file, const char *want)
{
    Player p = {0};
    GError *error = NULL;

    if (player_open(&p, file, FALSE, &error)) {
        CHECK(0, "%s: opened, want an error containing '%s'", file, want);
    } else {
        CHECK(error && strstr(error->message, want), "%s: error '%s', want '%s'", file,
              error ? error->message : "(none)", want);
        printf("%s: %s\n", file, error ? error->message : "");
    }
    g_clear_error(&error);
    player_close(&p);
}

static void test_receive(const char *sdp, const char *file, int min_frames, double tolerance)
{
    media_dicom *d = NULL;
    ev_error err = {0};
    GError *error = NULL;
    gchar *desc;
    GstElement *pipeline, *sink;
    guint8 *ref;
    size_t plane;
    const media_dicom_info *in;
    int frames = 0, good = 0, damaged = 0;

    CHECK(media_dicom_open(file, &d, &err) == EV_OK, "%s", err.message);
    if (!d)
        return;
    in = media_dicom_get_info(d);
    CHECK(in->channels == 1, "%s: the receive test wants a gray loop", file);
    plane = (size_t)in->width * in->height;
    ref = g_malloc(plane * in->frames);
    for (unsigned i = 0; i < in->frames; i++)
        media_dicom_read_frame(d, i, ref + plane * i, in->width, &err);

    desc = g_strdup_printf("filesrc location=\"%s\" ! sdpdemux latency=100 ! decodebin ! "
                           "videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
                           sdp);
    pipeline = gst_parse_launch(desc, &error);
    g_free(desc);
    CHECK(pipeline != NULL, "receiver: %s", error ? error->message : "?");
    if (!pipeline)
        goto out;
    sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    gst_element_get_state(pipeline, NULL, NULL, 5 * GST_SECOND);
    printf("ready\n");
    fflush(stdout);
    for (gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
         g_get_monotonic_time() < deadline;) {
        GstSample *s =
            gst_app_sink_try_pull_sample(GST_APP_SINK(sink), (frames ? 3 : 30) * GST_SECOND);
        GstVideoInfo info;
        GstVideoFrame vf;
        double best = 1e9;
        if (!s)
            break;
        if (gst_video_info_from_caps(&info, gst_sample_get_caps(s)) &&
            GST_VIDEO_INFO_WIDTH(&info) == in->width &&
            GST_VIDEO_INFO_HEIGHT(&info) == in->height &&
            gst_video_frame_map(&vf, &info, gst_sample_get_buffer(s), GST_MAP_READ)) {
            const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(&vf, 0);
            gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0);
            for (unsigned f = 0; f < in->frames; f++) {
                double sum = 0.0;
                for (int y = 0; y < in->height; y++)
                    for (int x = 0; x < in->width; x++)
                        sum += abs((int)data[(size_t)y * stride + 3 * x] -
                                   (int)ref[plane * f + (size_t)y * in->width + x]);
                best = MIN(best, sum / plane);
            }
            gst_video_frame_unmap(&vf);
        } else {
            CHECK(0, "received frame %d has other caps than %dx%d", frames, in->width, in->height);
        }
        /* A frame with lost packets (a loaded machine drops UDP) is counted, not compared. */
        if (best <= tolerance)
            good++;
        else
            damaged++;
        frames++;
        gst_sample_unref(s);
        if (good >= min_frames)
            break;
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    CHECK(good >= min_frames,
          "received %d frames, %d within mean absolute difference %.3f of "
          "a frame of the file, want %d",
          frames, good, tolerance, min_frames);
    printf("received %d frames: %d within mean absolute difference %.3f of the file's frames, "
           "%d damaged in transit\n",
           frames, good, tolerance, damaged);
out:
    g_free(ref);
    media_dicom_close(d);
}

/* roi_mode: NULL hands dicomsrc's roi property to the classifier; "auto" or "meta" leave it to
 * the classifier, which reads the ultrasound-region meta on the buffers (through videoconvert). */
static void classify_with(const char *file, const char *model, const char *view,
                          const char *roi_mode)
{
    gchar *escaped = g_strescape(file, NULL);
    gchar *desc = g_strdup_printf(
        "dicomsrc name=src location=\"%s\" ! videoconvert ! "
        "echoviewclassify name=c backend=cpu updates=every-frame model-file=\"%s\" ! "
        "fakesink sync=false",
        escaped, model);
    GError *error = NULL;
    GstElement *pipeline = gst_parse_launch(desc, &error), *src, *c;
    gchar *roi = NULL, *active = NULL, *stable = NULL;
    GstBus *bus;
    GstMessage *m;
    int frames = 0;

    g_free(desc);
    g_free(escaped);
    CHECK(pipeline != NULL, "%s", error ? error->message : "?");
    if (!pipeline)
        return;
    src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
    c = gst_bin_get_by_name(GST_BIN(pipeline), "c");
    gst_element_set_state(pipeline, GST_STATE_PAUSED);
    gst_element_get_state(pipeline, NULL, NULL, 30 * GST_SECOND);
    g_object_get(src, "roi", &roi, NULL);
    gst_element_set_state(pipeline, GST_STATE_READY);
    g_object_set(c, "roi", roi_mode ? roi_mode : roi, NULL);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    bus = gst_element_get_bus(pipeline);
    while ((m = gst_bus_timed_pop_filtered(
                bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT))) {
        gboolean done = GST_MESSAGE_TYPE(m) != GST_MESSAGE_ELEMENT;
        const GstStructure *st = gst_message_get_structure(m);
        if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
            CHECK(0, "%s: pipeline error", file);
        if (st && gst_structure_has_name(st, "echoviewclassify")) {
            g_free(stable);
            stable = g_strdup(gst_structure_get_string(st, "stable-label"));
            frames++;
        }
        gst_message_unref(m);
        if (done)
            break;
    }
    g_object_get(c, "active-roi", &active, NULL);
    CHECK(strcmp(roi, "auto") && !g_strcmp0(active, roi),
          "%s, classifier roi=%s: it cropped %s, the file's region is %s", file,
          roi_mode ? roi_mode : roi, active, roi);
    CHECK(!g_strcmp0(stable, view), "%s: stable label %s after %d frames, want %s", file, stable,
          frames, view);
    printf("%s: roi %s, classifier roi=%s active-roi %s, stable label %s after %d frames\n", file,
           roi, roi_mode ? roi_mode : roi, active, stable, frames);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(bus);
    gst_object_unref(src);
    gst_object_unref(c);
    gst_object_unref(pipeline);
    g_free(roi);
    g_free(active);
    g_free(stable);
}

static void test_classify(const char *file, const char *model, const char *view)
{
    classify_with(file, model, view, NULL);
    classify_with(file, model, view, "auto");
    classify_with(file, model, view, "meta");
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    if (!gst_element_factory_find("dicomsrc")) {
        fprintf(stderr, "no dicomsrc element (GST_PLUGIN_PATH?)\n");
        return 77;
    }
    if (argc >= 5 && !strcmp(argv[1], "pixels")) {
        for (int i = 4; i < argc; i++)
            test_pixels_one(argv[2], argv[3], argv[i]);
    } else if (argc == 5 && !strcmp(argv[1], "timing")) {
        test_timing(argv[2], atoi(argv[3]), argv[4]);
    } else if (argc == 4 && !strcmp(argv[1], "loop")) {
        test_loop(argv[2], atoi(argv[3]));
    } else if (argc == 4 && !strcmp(argv[1], "roi")) {
        test_roi(argv[2], argv[3]);
    } else if (argc == 5 && !strcmp(argv[1], "classify")) {
        test_classify(argv[2], argv[3], argv[4]);
    } else if (argc == 6 && !strcmp(argv[1], "receive")) {
        test_receive(argv[2], argv[3], atoi(argv[4]), g_ascii_strtod(argv[5], NULL));
    } else if (argc == 4 && !strcmp(argv[1], "error")) {
        test_error(argv[2], argv[3]);
    } else {
        fprintf(stderr, "usage: see the header of test_dicomsrc.c\n");
        return 2;
    }
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
