/* video.c: video files through GStreamer: filesrc ! decodebin ! videoconvert ! GRAY8|RGB !
 * appsink, pulled synchronously (no clock), sampled by buffer timestamps. */
#include "video.h"

#include "ev_base.h"
#include "media.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <pthread.h>
#include <string.h>

/* A decoder that produces nothing for this long is stalled: decodebin sometimes keeps a
 * demuxer's error to itself while it is still plugging elements (seen with a damaged MP4: the
 * error is logged but never reaches the pipeline's bus), so a silent pipeline is an error too. */
#define PULL_TIMEOUT_NS (10 * GST_SECOND)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool init_ok;

static void init_gstreamer(void) { init_ok = gst_init_check(NULL, NULL, NULL); }

static void on_pad_added(GstElement *decodebin, GstPad *pad, gpointer convert)
{
    (void)decodebin;
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (!caps)
        caps = gst_pad_query_caps(pad, NULL);
    const GstStructure *s = caps ? gst_caps_get_structure(caps, 0) : NULL;
    bool video = s && g_str_has_prefix(gst_structure_get_name(s), "video/");
    if (caps)
        gst_caps_unref(caps);
    if (!video)
        return; /* audio and the rest are left unlinked */
    GstPad *sink = gst_element_get_static_pad(GST_ELEMENT(convert), "sink");
    if (!gst_pad_is_linked(sink))
        gst_pad_link(pad, sink);
    gst_object_unref(sink);
}

/* The first error on the bus, if any, as "path: message (debug)". */
static bool bus_error(GstElement *pipeline, const char *path, ev_error *err)
{
    GstBus *bus = gst_element_get_bus(pipeline);
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    if (!m)
        return false;
    GError *e = NULL;
    gst_message_parse_error(m, &e, NULL);
    ev_fail(err, EV_ERR_FORMAT, "%s: cannot decode: %s", path, e ? e->message : "unknown error");
    g_clear_error(&e);
    gst_message_unref(m);
    return true;
}

int media_video_read(const char *path, double fps, int channels, media_video_frame_fn on_frame,
                     void *user, int *sampled, ev_error *err)
{
    if (sampled)
        *sampled = 0;
    if (channels != 1 && channels != 3)
        return ev_fail(err, EV_ERR_INVALID, "%s: video frames have 1 or 3 channels, not %d", path,
                       channels);
    pthread_once(&init_once, init_gstreamer);
    if (!init_ok)
        return ev_fail(err, EV_ERR_UNSUPPORTED, "%s: GStreamer could not start", path);
    GstElement *pipeline = gst_pipeline_new(NULL);
    GstElement *src = gst_element_factory_make("filesrc", NULL);
    GstElement *decode = gst_element_factory_make("decodebin", NULL);
    GstElement *convert = gst_element_factory_make("videoconvert", NULL);
    GstElement *filter = gst_element_factory_make("capsfilter", NULL);
    GstElement *sink = gst_element_factory_make("appsink", NULL);
    int rc = EV_OK;
    if (!pipeline || !src || !decode || !convert || !filter || !sink) {
        rc = ev_fail(err, EV_ERR_UNSUPPORTED,
                     "%s: GStreamer lacks filesrc, decodebin, videoconvert or appsink", path);
        GstElement *made[] = {pipeline, src, decode, convert, filter, sink};
        for (size_t i = 0; i < sizeof made / sizeof *made; i++)
            if (made[i])
                gst_object_unref(made[i]);
        return rc;
    }
    g_object_set(src, "location", path, NULL);
    GstCaps *caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING,
                                        channels == 1 ? "GRAY8" : "RGB", NULL);
    g_object_set(filter, "caps", caps, NULL);
    gst_caps_unref(caps);
    g_object_set(sink, "sync", FALSE, "max-buffers", 4, NULL);
    gst_bin_add_many(GST_BIN(pipeline), src, decode, convert, filter, sink, NULL);
    g_signal_connect(decode, "pad-added", G_CALLBACK(on_pad_added), convert);
    if (!gst_element_link(src, decode) || !gst_element_link_many(convert, filter, sink, NULL)) {
        gst_object_unref(pipeline);
        return ev_fail(err, EV_ERR_UNSUPPORTED, "%s: cannot build the decoding pipeline", path);
    }
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        if (!bus_error(pipeline, path, err))
            ev_fail(err, EV_ERR_FORMAT, "%s: cannot decode", path);
        gst_element_set_state(pipeline, GST_STATE_NULL);
        gst_object_unref(pipeline);
        return EV_ERR_FORMAT;
    }
    int index = 0;
    GstClockTime first = GST_CLOCK_TIME_NONE;
    int64_t decoded = 0;
    GstClockTime waited = 0;
    for (;;) {
        /* short waits so that an error on the bus ends the read at once */
        GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 100 * GST_MSECOND);
        if (!sample) {
            if (bus_error(pipeline, path, err)) {
                rc = EV_ERR_FORMAT;
                break;
            }
            if (gst_app_sink_is_eos(GST_APP_SINK(sink)))
                break;
            if ((waited += 100 * GST_MSECOND) >= PULL_TIMEOUT_NS) {
                rc = ev_fail(err, EV_ERR_FORMAT,
                             "%s: cannot decode: nothing decoded for 10 s (a damaged file, or one "
                             "GStreamer has no decoder for)",
                             path);
                break;
            }
            continue;
        }
        waited = 0;
        GstBuffer *buf = gst_sample_get_buffer(sample);
        const GstStructure *s = gst_caps_get_structure(gst_sample_get_caps(sample), 0);
        int width = 0, height = 0;
        gst_structure_get_int(s, "width", &width);
        gst_structure_get_int(s, "height", &height);
        GstClockTime pts = GST_BUFFER_PTS(buf);
        if (!GST_CLOCK_TIME_IS_VALID(pts)) /* no timestamps: assume 30 frames a second */
            pts = gst_util_uint64_scale(decoded, GST_SECOND, 30);
        if (!GST_CLOCK_TIME_IS_VALID(first))
            first = pts;
        decoded++;
        bool take =
            fps <= 0 || (double)(pts - first) >= (double)index * (double)GST_SECOND / fps - 1e3;
        GstMapInfo map;
        bool go_on = true;
        if (take && width > 0 && height > 0 && width <= MEDIA_MAX_DIMENSION &&
            height <= MEDIA_MAX_DIMENSION && gst_buffer_map(buf, &map, GST_MAP_READ)) {
            /* GStreamer pads raw video rows to 4 bytes */
            int stride = (width * channels + 3) & ~3;
            if (map.size >= (size_t)stride * (height - 1) + (size_t)width * channels) {
                if (index >= MEDIA_VIDEO_MAX_FRAMES) {
                    rc = ev_fail(err, EV_ERR_FORMAT, "%s: more than %d sampled frames", path,
                                 MEDIA_VIDEO_MAX_FRAMES);
                    go_on = false;
                } else {
                    go_on = on_frame(user, index, map.data, width, height, stride, channels);
                    index++;
                }
            }
            gst_buffer_unmap(buf, &map);
        }
        gst_sample_unref(sample);
        if (!go_on)
            break;
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    if (!rc && index == 0)
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: no video frames", path);
    if (sampled)
        *sampled = index;
    return rc;
}
