/* bridge_sender.c: a continuous RTP stream fed with DICOM cine loops (see bridge_sender.h).
 * Timestamps are running times of the pipeline clock: a file that arrives while the stream
 * idles starts "now" plus a small lead, so udpsink (sync=true) sends its frames at the file's
 * frame rate instead of in one late burst. */
#include "bridge_sender.h"

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dicom.h"

/* How far ahead of the clock the first frame of a file is stamped: room for decode + encode. */
#define START_LEAD (100 * GST_MSECOND)

typedef struct {
    gchar *path;
    gboolean owned;
    gint refs;
} Item;

struct _BridgeSender {
    BridgeSenderConfig config; /* strings below are our copies */
    gchar *host, *sdp_path, *name, *log_prefix;

    GstElement *pipeline, *appsrc;
    GThread *thread;

    GMutex lock;
    GCond cond;
    GQueue queue;      /* Item*, to play */
    GPtrArray *played; /* Item*, BRIDGE_LOOP_ALL: the playlist so far */
    Item *latest;      /* BRIDGE_LOOP_LATEST: the file to repeat */
    gboolean stopping, finished, ended;
    GError *error; /* first pipeline error */
    guint64 frames_sent;
    guint files_failed;

    /* feeder thread only */
    GstCaps *caps;
    GstClockTime next_pts;
};

static Item *item_new(const gchar *path, gboolean owned)
{
    Item *it = g_new0(Item, 1);
    it->path = g_strdup(path);
    it->owned = owned;
    it->refs = 1;
    return it;
}

static Item *item_ref(Item *it)
{
    g_atomic_int_inc(&it->refs);
    return it;
}

static void item_unref(gpointer data)
{
    Item *it = data;
    if (!it || !g_atomic_int_dec_and_test(&it->refs))
        return;
    if (it->owned)
        unlink(it->path);
    g_free(it->path);
    g_free(it);
}

gboolean bridge_encoding_parse(const gchar *text, BridgeEncoding *out)
{
    if (!g_strcmp0(text, "raw"))
        *out = BRIDGE_ENCODING_RAW;
    else if (!g_strcmp0(text, "h264"))
        *out = BRIDGE_ENCODING_H264;
    else if (!g_strcmp0(text, "jpeg"))
        *out = BRIDGE_ENCODING_JPEG;
    else
        return FALSE;
    return TRUE;
}

const gchar *bridge_encoding_name(BridgeEncoding encoding)
{
    return encoding == BRIDGE_ENCODING_H264   ? "h264"
           : encoding == BRIDGE_ENCODING_JPEG ? "jpeg"
                                              : "raw";
}

static guint payload_of(const BridgeSenderConfig *c) { return c->payload ? c->payload : 96; }

gchar *bridge_sdp_text(const BridgeSenderConfig *c)
{
    GString *s = g_string_new(NULL);
    guint pt = payload_of(c);
    gboolean v6 = strchr(c->host, ':') != NULL;

    g_string_append_printf(s,
                           "v=0\r\no=- 0 0 IN %s %s\r\ns=%s\r\nc=IN %s %s\r\nt=0 0\r\n"
                           "m=video %u RTP/AVP %u\r\n",
                           v6 ? "IP6" : "IP4", c->host, c->name ? c->name : "echoview DICOM bridge",
                           v6 ? "IP6" : "IP4", c->host, c->port, pt);
    switch (c->encoding) {
    case BRIDGE_ENCODING_RAW:
        /* RFC 4175: what rtpvrawdepay (and echoviewd's rtp-raw source) need. */
        g_string_append_printf(s,
                               "a=rtpmap:%u raw/90000\r\na=fmtp:%u sampling=%s; width=%u; "
                               "height=%u; depth=8; colorimetry=BT601-5\r\n",
                               pt, pt, c->raw_i420 ? "YCbCr-4:2:0" : "RGB", c->width, c->height);
        break;
    case BRIDGE_ENCODING_H264:
        g_string_append_printf(s, "a=rtpmap:%u H264/90000\r\na=fmtp:%u packetization-mode=1\r\n",
                               pt, pt);
        break;
    case BRIDGE_ENCODING_JPEG:
        g_string_append_printf(s, "a=rtpmap:%u JPEG/90000\r\n", pt);
        break;
    }
    g_string_append(s, "a=recvonly\r\n");
    return g_string_free(s, FALSE);
}

static const gchar *h264_encoder(void)
{
    GstElementFactory *f = gst_element_factory_find("x264enc");
    if (f) {
        gst_object_unref(f);
        return "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=4000";
    }
    f = gst_element_factory_find("openh264enc");
    if (f) {
        gst_object_unref(f);
        return "openh264enc gop-size=30 bitrate=4000000 complexity=low";
    }
    return NULL;
}

static GstBusSyncReply on_bus(GstBus *bus, GstMessage *msg, gpointer data)
{
    BridgeSender *s = data;

    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR || GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
        g_mutex_lock(&s->lock);
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR && !s->error) {
            gchar *debug = NULL;
            gst_message_parse_error(msg, &s->error, &debug);
            g_printerr("%s: stream error: %s (%s)\n", s->log_prefix, s->error->message,
                       debug ? debug : "");
            g_free(debug);
        }
        s->ended = TRUE;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
    }
    return GST_BUS_DROP;
}

/* The next file to play, or NULL to end (stopping, or finished with nothing left). Sets
 * *repeat when it is a replay that a newly queued file should interrupt. */
static Item *next_item(BridgeSender *s, gboolean *repeat)
{
    Item *it = NULL;

    g_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (!g_queue_is_empty(&s->queue)) {
            it = g_queue_pop_head(&s->queue);
            *repeat = FALSE;
            break;
        }
        if (s->config.loop == BRIDGE_LOOP_ALL && s->played->len > 0) {
            for (guint i = 0; i < s->played->len; i++)
                g_queue_push_tail(&s->queue, item_ref(g_ptr_array_index(s->played, i)));
            g_ptr_array_set_size(s->played, 0);
            continue;
        }
        if (s->config.loop == BRIDGE_LOOP_LATEST && s->latest) {
            it = item_ref(s->latest);
            *repeat = TRUE;
            break;
        }
        if (s->finished)
            break;
        g_cond_wait(&s->cond, &s->lock);
    }
    g_mutex_unlock(&s->lock);
    return it;
}

static gboolean should_interrupt(BridgeSender *s, gboolean repeat)
{
    gboolean stop;

    g_mutex_lock(&s->lock);
    stop = s->stopping || (repeat && !g_queue_is_empty(&s->queue));
    g_mutex_unlock(&s->lock);
    return stop;
}

static GstClockTime running_time(BridgeSender *s)
{
    GstClock *clock = gst_element_get_clock(s->pipeline);
    GstClockTime now = 0, base = gst_element_get_base_time(s->pipeline);

    if (clock) {
        now = gst_clock_get_time(clock);
        gst_object_unref(clock);
    }
    return now > base ? now - base : 0;
}

/* Plays one file; TRUE when it opened (it then belongs in the playlist). */
static gboolean play_file(BridgeSender *s, Item *it, gboolean repeat)
{
    media_dicom *dicom = NULL;
    const media_dicom_info *in;
    ev_error err = {0};
    GstVideoInfo info;
    GstCaps *caps;
    GstClockTime start, now;
    gdouble file_ms = 0.0;
    gint fps_n, fps_d;

    if (media_dicom_open(it->path, &dicom, &err) != EV_OK) {
        g_printerr("%s: skipping %s\n", s->log_prefix, err.message);
        g_mutex_lock(&s->lock);
        s->files_failed++;
        g_mutex_unlock(&s->lock);
        return FALSE;
    }
    in = media_dicom_get_info(dicom);
    gst_util_double_to_fraction(1000.0 / in->frame_time_ms, &fps_n, &fps_d);
    gst_video_info_set_format(&info,
                              in->channels == 3 ? GST_VIDEO_FORMAT_RGB : GST_VIDEO_FORMAT_GRAY8,
                              in->width, in->height);
    GST_VIDEO_INFO_FPS_N(&info) = fps_n;
    GST_VIDEO_INFO_FPS_D(&info) = fps_d;
    caps = gst_video_info_to_caps(&info);
    if (!s->caps || !gst_caps_is_equal(caps, s->caps)) {
        gst_app_src_set_caps(GST_APP_SRC(s->appsrc), caps);
        gst_caps_replace(&s->caps, caps);
    }
    gst_caps_unref(caps);
    if (!repeat)
        g_printerr("%s: playing %s: %u frame(s) %dx%d at %.3f ms/frame (%s)\n", s->log_prefix,
                   it->path, in->frames, in->width, in->height, in->frame_time_ms,
                   media_dicom_transfer_syntax_name(in->transfer_syntax_uid));

    now = running_time(s);
    start = MAX(s->next_pts, now + START_LEAD);
    for (guint i = 0; i < in->frames && !should_interrupt(s, repeat); i++) {
        GstBuffer *buf = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&info), NULL);
        GstMapInfo map;
        gdouble dur = media_dicom_frame_duration_ms(dicom, i);
        int rc;

        gst_buffer_map(buf, &map, GST_MAP_WRITE);
        rc =
            media_dicom_read_frame(dicom, i, map.data, GST_VIDEO_INFO_PLANE_STRIDE(&info, 0), &err);
        gst_buffer_unmap(buf, &map);
        if (rc != EV_OK) {
            g_printerr("%s: %s\n", s->log_prefix, err.message);
            gst_buffer_unref(buf);
            break;
        }
        GST_BUFFER_PTS(buf) = start + (GstClockTime)llround(file_ms * GST_MSECOND);
        file_ms += dur;
        GST_BUFFER_DURATION(buf) =
            start + (GstClockTime)llround(file_ms * GST_MSECOND) - GST_BUFFER_PTS(buf);
        s->next_pts = GST_BUFFER_PTS(buf) + GST_BUFFER_DURATION(buf);
        if (gst_app_src_push_buffer(GST_APP_SRC(s->appsrc), buf) != GST_FLOW_OK)
            break; /* flushing: we are stopping */
        g_mutex_lock(&s->lock);
        s->frames_sent++;
        g_mutex_unlock(&s->lock);
    }
    media_dicom_close(dicom);
    return TRUE;
}

static gpointer feeder(gpointer data)
{
    BridgeSender *s = data;
    Item *it;
    gboolean repeat = FALSE;

    while ((it = next_item(s, &repeat))) {
        gboolean ok = play_file(s, it, repeat);
        g_mutex_lock(&s->lock);
        if (ok && !repeat && s->config.loop == BRIDGE_LOOP_ALL)
            g_ptr_array_add(s->played, item_ref(it));
        if (ok && !repeat && s->config.loop == BRIDGE_LOOP_LATEST) {
            g_clear_pointer(&s->latest, item_unref);
            s->latest = item_ref(it);
        }
        g_mutex_unlock(&s->lock);
        item_unref(it);
    }
    if (!s->stopping)
        gst_app_src_end_of_stream(GST_APP_SRC(s->appsrc));
    return NULL;
}

BridgeSender *bridge_sender_new(const BridgeSenderConfig *config, GError **error)
{
    BridgeSender *s;
    GString *desc;
    const gchar *format, *enc = NULL;
    GstElement *sink;
    GstBus *bus;
    guint64 frame_bytes;

    g_return_val_if_fail(config && config->host, NULL);
    if (config->port < 1 || config->port > 65535 || config->width < 2 || config->height < 2 ||
        config->width > MEDIA_MAX_DIMENSION || config->height > MEDIA_MAX_DIMENSION ||
        payload_of(config) > 127) {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
                    "bad stream settings: port %u, size %ux%u, payload %u", config->port,
                    config->width, config->height, payload_of(config));
        return NULL;
    }
    if (config->encoding == BRIDGE_ENCODING_H264 && !(enc = h264_encoder())) {
        g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
                    "h264 needs x264enc or openh264enc (gstreamer1.0-plugins-ugly or -bad)");
        return NULL;
    }
    s = g_new0(BridgeSender, 1);
    s->config = *config;
    s->host = g_strdup(config->host);
    s->sdp_path = g_strdup(config->sdp_path);
    s->name = g_strdup(config->name ? config->name : "dicom2rtp");
    s->log_prefix = g_strdup(config->log_prefix ? config->log_prefix : s->name);
    s->config.host = s->host;
    s->config.sdp_path = s->sdp_path;
    s->config.name = s->name;
    s->config.log_prefix = s->log_prefix;
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    g_queue_init(&s->queue);
    s->played = g_ptr_array_new_with_free_func(item_unref);

    /* Even sizes: I420 and the encoders need them, and the SDP must match what is sent. */
    s->config.width &= ~1u;
    s->config.height &= ~1u;
    format = config->encoding == BRIDGE_ENCODING_RAW && !config->raw_i420 ? "RGB" : "I420";
    frame_bytes = (guint64)s->config.width * s->config.height * 3;
    desc = g_string_new(NULL);
    g_string_append_printf(desc,
                           "appsrc name=src format=time is-live=true block=true "
                           "max-bytes=%" G_GUINT64_FORMAT
                           " ! videoconvert ! videoscale add-borders=true ! "
                           "video/x-raw,format=%s,width=%u,height=%u,pixel-aspect-ratio=1/1 ! ",
                           3 * frame_bytes, format, s->config.width, s->config.height);
    switch (config->encoding) {
    case BRIDGE_ENCODING_RAW:
        g_string_append_printf(desc, "rtpvrawpay pt=%u mtu=1400", payload_of(config));
        break;
    case BRIDGE_ENCODING_H264:
        g_string_append_printf(desc,
                               "%s ! video/x-h264,stream-format=byte-stream ! "
                               "rtph264pay pt=%u config-interval=-1 mtu=1400",
                               enc, payload_of(config));
        break;
    case BRIDGE_ENCODING_JPEG:
        g_string_append_printf(desc, "jpegenc quality=90 ! rtpjpegpay pt=%u mtu=1400",
                               payload_of(config));
        break;
    }
    g_string_append(desc, " ! udpsink name=sink sync=true async=false");
    s->pipeline = gst_parse_launch_full(desc->str, NULL, GST_PARSE_FLAG_FATAL_ERRORS, error);
    g_string_free(desc, TRUE);
    if (!s->pipeline)
        goto fail;
    s->appsrc = gst_bin_get_by_name(GST_BIN(s->pipeline), "src");
    sink = gst_bin_get_by_name(GST_BIN(s->pipeline), "sink");
    g_object_set(sink, "host", s->host, "port", (gint)config->port, NULL);
    gst_object_unref(sink);
    bus = gst_element_get_bus(s->pipeline);
    gst_bus_set_sync_handler(bus, on_bus, s, NULL);
    gst_object_unref(bus);

    if (s->sdp_path) {
        gchar *text = bridge_sdp_text(&s->config), *dir = g_path_get_dirname(s->sdp_path);
        gboolean ok;
        /* /run/<service>/ may not exist outside systemd's RuntimeDirectory= */
        g_mkdir_with_parents(dir, 0755);
        ok = g_file_set_contents(s->sdp_path, text, -1, error);
        g_free(dir);
        g_free(text);
        if (!ok)
            goto fail;
    }
    if (gst_element_set_state(s->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        if (s->error)
            g_propagate_error(error, g_error_copy(s->error));
        else
            g_set_error(error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE,
                        "the RTP pipeline did not start");
        goto fail;
    }
    s->thread = g_thread_new("bridge-feeder", feeder, s);
    return s;

fail:
    bridge_sender_free(s);
    return NULL;
}

void bridge_sender_push(BridgeSender *s, const gchar *path, gboolean owned)
{
    g_mutex_lock(&s->lock);
    g_queue_push_tail(&s->queue, item_new(path, owned));
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

void bridge_sender_finish(BridgeSender *s)
{
    g_mutex_lock(&s->lock);
    s->finished = TRUE;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

gboolean bridge_sender_wait(BridgeSender *s, GError **error)
{
    gboolean ok;

    g_mutex_lock(&s->lock);
    while (!s->ended)
        g_cond_wait(&s->cond, &s->lock);
    ok = s->error == NULL;
    if (!ok)
        g_propagate_error(error, g_error_copy(s->error));
    g_mutex_unlock(&s->lock);
    return ok;
}

guint64 bridge_sender_frames_sent(BridgeSender *s)
{
    guint64 n;
    g_mutex_lock(&s->lock);
    n = s->frames_sent;
    g_mutex_unlock(&s->lock);
    return n;
}

guint bridge_sender_files_failed(BridgeSender *s)
{
    guint n;
    g_mutex_lock(&s->lock);
    n = s->files_failed;
    g_mutex_unlock(&s->lock);
    return n;
}

guint bridge_sender_queued(BridgeSender *s)
{
    guint n;
    g_mutex_lock(&s->lock);
    n = g_queue_get_length(&s->queue);
    g_mutex_unlock(&s->lock);
    return n;
}

void bridge_sender_free(BridgeSender *s)
{
    if (!s)
        return;
    g_mutex_lock(&s->lock);
    s->stopping = TRUE;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
    /* NULL flushes appsrc, so a push blocked on a full queue returns. */
    if (s->pipeline)
        gst_element_set_state(s->pipeline, GST_STATE_NULL);
    if (s->thread)
        g_thread_join(s->thread);
    g_clear_object(&s->appsrc);
    g_clear_object(&s->pipeline);
    if (s->config.keep_queued)
        for (GList *l = s->queue.head; l; l = l->next)
            ((Item *)l->data)->owned = FALSE; /* never played: the next start plays them */
    g_queue_clear_full(&s->queue, item_unref);
    g_ptr_array_unref(s->played);
    g_clear_pointer(&s->latest, item_unref);
    gst_caps_replace(&s->caps, NULL);
    g_clear_error(&s->error);
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->cond);
    g_free(s->host);
    g_free(s->sdp_path);
    g_free(s->name);
    g_free(s->log_prefix);
    g_free(s);
}
