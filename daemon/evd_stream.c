/* evd_stream.c: one supervised pipeline (evd_stream.h): the state machine and backoff, the
 * probes on the streaming threads, the bus, building and tearing down the pipeline, and the
 * frame clock. Everything that changes a stream's state runs on the main loop thread (bus
 * watches, the tick, restart timers); the streaming threads only count frames and copy the
 * classifier's EchoViewMeta under the supervisor lock, and the HTTP thread only reads
 * snapshots under the same lock. The lock is never held across a GStreamer state change. */
#include "evd_stream.h"

#include <gio/gio.h>
#include <gst/net/gstnetaddressmeta.h>
#include <math.h>
#include <string.h>

#include "evd_pipeline.h"
#include "evd_zero_pool.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#define GST_CAT_DEFAULT evd_debug

#define EVD_STABLE_RESET_US (10 * G_USEC_PER_SEC) /* running this long clears the backoff */
/* Warnings of one text are logged once per window, then counted: a sender of garbage made one
 * line per packet (5124 lines for 6000 packets), enough to trip journald's rate limit and hide
 * the state changes that matter. */
#define EVD_WARNING_WINDOW_US (10 * G_USEC_PER_SEC)
#define EVD_WARNING_TEXTS 32 /* distinct texts tracked per stream; more share one entry */

typedef struct {
    gint64 since; /* monotonic: when the window began (the line was logged) */
    guint64 count; /* repeats since, not logged */
} EvdWarning;

static void stream_start(EvdStream *st);
static void stream_teardown(EvdStream *st);

static gchar *iso_time(gint64 wall_us)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(wall_us / G_USEC_PER_SEC);
    gchar *s, *t;

    if (!dt)
        return g_strdup("");
    s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
    g_date_time_unref(dt);
    /* Milliseconds: state changes a reload causes within one second stay distinguishable. */
    t = g_strdup_printf("%s.%03dZ", s, (int)((wall_us / 1000) % 1000));
    g_free(s);
    return t;
}

static void emit(EvdStream *st, const gchar *event, json_t *data)
{
    if (st->host.on_event)
        st->host.on_event(event, data, st->host.user_data);
    else
        json_decref(data);
}

/* ---- state machine ---------------------------------------------------------------------- */

/* Only a running stream reports a view. Leaving `running` with a view to take back posts a
 * `view` event "unknown" (with the reason), and coming back posts the view again, so a client
 * that follows `view` events alone never keeps a label the daemon no longer stands behind. */
static void emit_withheld(EvdStream *st, EvdStreamState previous, EvdStreamState state,
                          const gchar *reason, gint64 wall)
{
    const gchar *label;
    gint label_id;
    gdouble confidence;
    gchar *when;

    g_mutex_lock(st->host.lock);
    label = st->view.stable_label;
    label_id = st->view.stable_label_id;
    confidence = st->view.confidence;
    g_mutex_unlock(st->host.lock);
    if (previous == EVD_STATE_RUNNING && state != EVD_STATE_RUNNING && label) {
        when = iso_time(wall);
        emit(st, "view",
             json_pack("{s:s, s:s, s:i, s:s, s:f, s:s, s:s?, s:s}", "stream", st->id, "view",
                       "unknown", "view_id", -1, "previous", label, "confidence", 0.0, "state",
                       evd_stream_state_name(state), "reason", reason, "time", when));
        g_free(when);
        st->withheld_sent = TRUE;
    } else if (state == EVD_STATE_RUNNING && st->withheld_sent) {
        st->withheld_sent = FALSE;
        when = iso_time(wall);
        emit(st, "view",
             json_pack("{s:s, s:s?, s:i, s:s, s:f, s:s, s:s}", "stream", st->id, "view", label,
                       "view_id", label_id, "previous", "unknown", "confidence", confidence,
                       "state", "running", "time", when));
        g_free(when);
    }
}

void evd_stream_set_state(EvdStream *st, EvdStreamState state, const gchar *reason)
{
    EvdStreamState previous;
    gint64 wall = g_get_real_time();
    gchar *when;

    g_mutex_lock(st->host.lock);
    previous = st->state;
    if (previous == state) {
        g_mutex_unlock(st->host.lock);
        return;
    }
    st->state = state;
    st->state_since_mono = g_get_monotonic_time();
    st->state_since_wall = wall;
    g_mutex_unlock(st->host.lock);

    if (state == EVD_STATE_RUNNING)
        st->running_since = st->state_since_mono;
    if (!st->is_sender)
        emit_withheld(st, previous, state, reason, wall);
    GST_INFO("%s %s: %s -> %s%s%s", st->is_sender ? "sender" : "stream", st->id,
             evd_stream_state_name(previous), evd_stream_state_name(state), reason ? ": " : "",
             reason ? reason : "");
    g_message("%s %s: %s -> %s%s%s", st->is_sender ? "sender" : "stream", st->id,
              evd_stream_state_name(previous), evd_stream_state_name(state), reason ? ": " : "",
              reason ? reason : "");
    when = iso_time(wall);
    emit(st, "state",
         json_pack("{s:s, s:b, s:s, s:s, s:s?, s:s}", "stream", st->id, "sender", st->is_sender,
                   "state", evd_stream_state_name(state), "previous",
                   evd_stream_state_name(previous), "reason", reason, "time", when));
    g_free(when);
}

/* The stream's last error, and an `error` event with it. */
static void stream_set_error(EvdStream *st, const gchar *error)
{
    gint64 wall = g_get_real_time();
    gchar *when;

    g_mutex_lock(st->host.lock);
    g_free(st->last_error);
    st->last_error = g_strdup(error);
    st->last_error_time = wall;
    g_mutex_unlock(st->host.lock);
    when = iso_time(wall);
    emit(st, "error",
         json_pack("{s:s, s:b, s:s, s:s, s:s}", "stream", st->id, "sender", st->is_sender, "error",
                   error, "state", evd_stream_state_name(st->state), "time", when));
    g_free(when);
}

static gboolean on_restart_timer(gpointer data)
{
    EvdStream *st = data;

    st->restart_timer = 0;
    stream_teardown(st);
    g_mutex_lock(st->host.lock);
    st->restarts++;
    g_mutex_unlock(st->host.lock);
    stream_start(st);
    return G_SOURCE_REMOVE;
}

static void stream_schedule_restart(EvdStream *st)
{
    gdouble delay;

    if (st->restart_timer)
        return;
    delay = st->restart_delay * pow(2.0, MIN(st->failures, 30u));
    delay = MIN(delay, st->restart_delay_max);
    st->failures++;
    GST_INFO("stream %s: restart in %.2f s", st->id, delay);
    st->restart_timer = g_timeout_add((guint)(delay * 1000.0), on_restart_timer, st);
}

static void stream_cancel_restart(EvdStream *st)
{
    if (st->restart_timer) {
        g_source_remove(st->restart_timer);
        st->restart_timer = 0;
    }
}

/* A pipeline error: drop the pipeline now, start a new one after the backoff. */
static void stream_fail(EvdStream *st, const gchar *error)
{
    stream_set_error(st, error);
    stream_teardown(st);
    evd_stream_set_state(st, EVD_STATE_FAILED, error);
    stream_schedule_restart(st);
}

/* No frames: keep the pipeline (frames may resume at once), and restart it after the
 * backoff unless they do. */
static void stream_stall(EvdStream *st, const gchar *reason)
{
    stream_set_error(st, reason);
    evd_stream_set_state(st, EVD_STATE_STALLED, reason);
    stream_schedule_restart(st);
}

/* ---- probes (streaming threads) ---------------------------------------------------------- */

/* Called with the host lock: a frame enters the leaky queue. */
static void queue_track_in(EvdStream *st, const GstBuffer *buf)
{
    if (st->queued_count == EVD_QUEUE_TRACK) {
        /* never with a 2-frame queue; if frames stopped leaving, the oldest was dropped */
        st->queued_head = (st->queued_head + 1) % EVD_QUEUE_TRACK;
        st->queued_count--;
        st->dropped++;
    }
    st->queued[(st->queued_head + st->queued_count) % EVD_QUEUE_TRACK] = buf;
    st->queued_count++;
}

static gboolean count_queued_in(GstBuffer **buf, guint idx, gpointer data)
{
    queue_track_in(data, *buf);
    return TRUE;
}

static GstPadProbeReturn on_queue_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;

    g_mutex_lock(st->host.lock);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
        GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
        st->received += gst_buffer_list_length(list);
        gst_buffer_list_foreach(list, count_queued_in, st);
    } else {
        st->received++;
        queue_track_in(st, GST_PAD_PROBE_INFO_BUFFER(info));
    }
    g_mutex_unlock(st->host.lock);
    return GST_PAD_PROBE_OK;
}

/* A frame leaves the leaky queue: the frames queued before it that never left were dropped by
 * the queue (leaky=downstream drops the oldest). Counted when a later frame leaves, so frames
 * still in flight never count and the counter never goes down; the queue's overrun signal is
 * not used, since it also fires when the classifier takes a frame before the drop happens. */
static void queue_track_out(EvdStream *st, const GstBuffer *buf)
{
    for (guint k = 0; k < st->queued_count; k++) {
        if (st->queued[(st->queued_head + k) % EVD_QUEUE_TRACK] != buf)
            continue;
        st->dropped += k;
        st->queued_head = (st->queued_head + k + 1) % EVD_QUEUE_TRACK;
        st->queued_count -= k + 1;
        return;
    }
    /* not tracked (queued before the probe was attached): nothing to count */
}

static gboolean count_queued_out(GstBuffer **buf, guint idx, gpointer data)
{
    queue_track_out(data, *buf);
    return TRUE;
}

static GstPadProbeReturn on_queue_out(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;

    g_mutex_lock(st->host.lock);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
        gst_buffer_list_foreach(GST_PAD_PROBE_INFO_BUFFER_LIST(info), count_queued_out, st);
    else
        queue_track_out(st, GST_PAD_PROBE_INFO_BUFFER(info));
    g_mutex_unlock(st->host.lock);
    return GST_PAD_PROBE_OK;
}

/* sdp sources: sdpdemux builds its rtpbin (and so the jitter buffer) itself once the SDP is
 * read; the first rtpjitterbuffer added anywhere in the pipeline is the one whose counters
 * the stream reports (`packets` used to be null for sdp sources, the bridge's path). */
static void on_deep_element_added(GstBin *bin, GstBin *sub_bin, GstElement *element,
                                  gpointer data)
{
    EvdStream *st = data;
    GstElementFactory *factory = gst_element_get_factory(element);

    if (!factory || strcmp(GST_OBJECT_NAME(factory), "rtpjitterbuffer") != 0)
        return;
    g_mutex_lock(st->host.lock);
    if (!st->sdp_jitter)
        st->sdp_jitter = gst_object_ref(element);
    g_mutex_unlock(st->host.lock);
}

/* Packets out of udpsrc: when frames stop, what arrived tells why (stall_reason). */
/* Ingress: a packet from an address outside source.allowed-senders, or of another SSRC than
 * source.ssrc, is dropped here and counted (a second sender on the port would otherwise mix its
 * frames into the stream). Streaming thread; the masks change only with the pipeline stopped. */
static gboolean ingress_refused(EvdStream *st, GstBuffer *buf, gint64 now)
{
    guint8 rtp[12];

    if (st->allowed) {
        GstNetAddressMeta *meta = gst_buffer_get_net_address_meta(buf);
        GInetAddress *from = NULL;
        gboolean ok = FALSE;

        if (meta && G_IS_INET_SOCKET_ADDRESS(meta->addr))
            from = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(meta->addr));
        for (guint i = 0; from && !ok && i < st->allowed->len; i++)
            ok = g_inet_address_mask_matches(g_ptr_array_index(st->allowed, i), from);
        if (!ok) {
            gchar *text = from ? g_inet_address_to_string(from) : g_strdup("an unknown address");
            g_mutex_lock(st->host.lock);
            st->rejected_address++;
            st->rejected_last = now;
            st->rejected_by_ssrc = FALSE;
            g_strlcpy(st->rejected_from, text, sizeof st->rejected_from);
            g_mutex_unlock(st->host.lock);
            g_free(text);
            return TRUE;
        }
    }
    if (st->has_ssrc && gst_buffer_extract(buf, 0, rtp, 12) == 12) {
        guint32 ssrc = ((guint32)rtp[8] << 24) | ((guint32)rtp[9] << 16) |
                       ((guint32)rtp[10] << 8) | rtp[11];
        if (ssrc != st->ssrc) {
            g_mutex_lock(st->host.lock);
            st->rejected_ssrc++;
            st->rejected_last = now;
            st->rejected_by_ssrc = TRUE;
            st->rejected_ssrc_value = ssrc;
            g_mutex_unlock(st->host.lock);
            return TRUE;
        }
    }
    return FALSE;
}

static GstPadProbeReturn on_udp_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    guint8 header[2];
    gint64 now = g_get_monotonic_time();

    if ((st->allowed || st->has_ssrc) && ingress_refused(st, buf, now))
        return GST_PAD_PROBE_DROP;
    g_mutex_lock(st->host.lock);
    st->udp_last = now;
    st->udp_window_packets++;
    if (gst_buffer_extract(buf, 0, header, 2) == 2 && (header[0] >> 6) == 2 &&
        (header[1] & 0x7f) != st->payload) {
        st->udp_last_other_pt = now;
        st->udp_other_pt = header[1] & 0x7f;
    }
    g_mutex_unlock(st->host.lock);
    return GST_PAD_PROBE_OK;
}

/* RTP packets into rtpvrawdepay: the size check reads their RFC 4175 payload headers. */
static GstPadProbeReturn on_depay_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;

    g_mutex_lock(st->host.lock);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
        GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
        for (guint i = 0; i < gst_buffer_list_length(list); i++)
            evd_size_check_packet(&st->size, gst_buffer_list_get(list, i));
    } else {
        evd_size_check_packet(&st->size, GST_PAD_PROBE_INFO_BUFFER(info));
    }
    g_mutex_unlock(st->host.lock);
    return GST_PAD_PROBE_OK;
}

/* The frozen check, on the classifier's streaming thread (its state is that thread's). */
static void frozen_check(EvdStream *st, GstPad *pad, GstBuffer *buf, gint64 now)
{
    GstCaps *caps;

    caps = gst_pad_get_current_caps(pad);
    if (!caps)
        return;
    if (!st->frozen_caps || !gst_caps_is_equal(caps, st->frozen_caps)) {
        gst_caps_replace(&st->frozen_caps, caps);
        if (!gst_video_info_from_caps(&st->frozen_info, caps))
            gst_video_info_init(&st->frozen_info);
        evd_frozen_check_reset(&st->frozen);
    }
    gst_caps_unref(caps);
    if (GST_VIDEO_INFO_FORMAT(&st->frozen_info) == GST_VIDEO_FORMAT_UNKNOWN)
        return;
    if (st->frozen_timeout > 0)
        evd_frozen_check_frame(&st->frozen, &st->frozen_info, buf, st->frozen_difference, now);
    g_mutex_lock(st->host.lock);
    if (now - st->thumb.taken >= G_USEC_PER_SEC || !st->thumb.width)
        evd_thumbnail_take(&st->thumb, &st->frozen_info, buf, now);
    g_mutex_unlock(st->host.lock);
}

static GstPadProbeReturn on_classified_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstEchoViewMeta *meta = gst_buffer_get_echo_view_meta(buf);
    gint64 now = g_get_monotonic_time();

    frozen_check(st, pad, buf, now);
    g_mutex_lock(st->host.lock);
    st->udp_window_packets = 0;
    st->frozen_since = st->frozen.same_since;
    st->frame_difference = st->frozen.has_difference ? st->frozen.difference : -1;
    st->last_frame = now;
    st->probe_frames++;
    if (meta) {
        gboolean unknown = !meta->stable_label || meta->stable_label_id < 0 ||
                           strcmp(meta->stable_label, "unknown") == 0;
        if (!unknown)
            st->unknown_since = 0;
        else if (!st->unknown_since)
            st->unknown_since = now;
        evd_view_update(&st->view, meta);
        /* the element's own samples: its latency-p99 is the p99 of these */
        if (meta->inferred && GST_CLOCK_TIME_IS_VALID(meta->latency))
            evd_latency_add(&st->latency, meta->latency);
    }
    g_mutex_unlock(st->host.lock);
    return GST_PAD_PROBE_OK;
}

/* ---- bus (main thread) ------------------------------------------------------------------ */

static void on_view_message(EvdStream *st, const GstStructure *s)
{
    const gchar *label = gst_structure_get_string(s, "stable-label");
    const gchar *previous = gst_structure_get_string(s, "previous-label");
    gdouble confidence = 0;
    guint64 pts = GST_CLOCK_TIME_NONE, stream_time = GST_CLOCK_TIME_NONE;
    gint label_id = -1;
    gboolean running;
    gchar *when;
    json_t *ev;

    gst_structure_get_double(s, "confidence", &confidence);
    gst_structure_get_int(s, "stable-label-id", &label_id);
    gst_structure_get_uint64(s, "timestamp", &pts);
    gst_structure_get_uint64(s, "stream-time", &stream_time);
    g_mutex_lock(st->host.lock);
    st->view_changes++;
    running = st->state == EVD_STATE_RUNNING;
    g_mutex_unlock(st->host.lock);
    if (!running) {
        /* no view is reported before the stream runs: emit_withheld posts it then */
        st->withheld_sent = TRUE;
        return;
    }
    when = iso_time(g_get_real_time());
    ev = json_pack("{s:s, s:s?, s:i, s:s?, s:f, s:s}", "stream", st->id, "view", label, "view_id",
                   label_id, "previous", previous, "confidence", confidence, "time", when);
    if (GST_CLOCK_TIME_IS_VALID(pts))
        json_object_set_new(ev, "pts_ns", json_integer((json_int_t)pts));
    if (GST_CLOCK_TIME_IS_VALID(stream_time))
        json_object_set_new(ev, "stream_time_ns", json_integer((json_int_t)stream_time));
    g_free(when);
    emit(st, "view", ev);
}

/* The classifier forgot the stream's history (a new stream, caps or a flush: its reset-on
 * property): a `reset` event. */
static void on_reset_message(EvdStream *st, const GstStructure *s)
{
    const gchar *reason = gst_structure_get_string(s, "reason");
    const gchar *previous = gst_structure_get_string(s, "previous-label");
    guint64 frames = 0;
    gchar *when = iso_time(g_get_real_time());

    gst_structure_get_uint64(s, "frames", &frames);
    emit(st, "reset",
         json_pack("{s:s, s:s?, s:s?, s:I, s:s}", "stream", st->id, "reason", reason, "previous",
                   previous, "frames", (json_int_t)frames, "time", when));
    g_free(when);
}

/* "element: message (detail)" with the last line of GStreamer's debug text (the first lines
 * name the source file and the element path), and a hint for the common causes: the bare
 * message ("Could not get/set settings from/on resource.") said nothing of a busy port. */
static gchar *error_text(GstMessage *msg)
{
    GError *gerr = NULL;
    gchar *debug = NULL, *text, *detail = NULL;
    const gchar *hint = "";

    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR)
        gst_message_parse_error(msg, &gerr, &debug);
    else
        gst_message_parse_warning(msg, &gerr, &debug);
    if (debug) {
        const gchar *nl = strrchr(g_strchomp(debug), '\n');
        detail = g_strdup(nl ? nl + 1 : debug);
        if (strlen(detail) > 240)
            detail[240] = '\0';
    }
    if (detail && strstr(detail, "Address already in use"))
        hint = " (another program or stream has this UDP port)";
    else if (detail && strstr(detail, "Cannot assign requested address"))
        hint = " (source.address is not an address of this machine)";
    else if (detail && strstr(detail, "Permission denied"))
        hint = " (the daemon may not use this port or file)";
    text = g_strdup_printf("%s: %s%s%s%s%s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                           gerr ? gerr->message : "error", detail ? " (" : "",
                           detail ? detail : "", detail ? ")" : "", hint);
    GST_DEBUG("%s (%s)", text, debug ? debug : "");
    g_clear_error(&gerr);
    g_free(debug);
    g_free(detail);
    return text;
}

static void warning_log(EvdStream *st, const gchar *text)
{
    EvdWarning *w;
    const gchar *key = text;

    g_mutex_lock(st->host.lock);
    st->warnings_total++;
    g_mutex_unlock(st->host.lock);
    if (!st->warnings)
        st->warnings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (!g_hash_table_contains(st->warnings, key) &&
        g_hash_table_size(st->warnings) >= EVD_WARNING_TEXTS)
        key = "other warnings";
    w = g_hash_table_lookup(st->warnings, key);
    if (w) {
        w->count++;
        return;
    }
    w = g_new0(EvdWarning, 1);
    w->since = g_get_monotonic_time();
    g_hash_table_insert(st->warnings, g_strdup(key), w);
    g_warning("stream %s: %s", st->id, text);
}

/* Ends the windows that are over: one line with the count of what was not logged. */
static void warnings_flush(EvdStream *st, gint64 now, gboolean all)
{
    GHashTableIter iter;
    gpointer key, value;

    if (!st->warnings)
        return;
    g_hash_table_iter_init(&iter, st->warnings);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        EvdWarning *w = value;
        if (!all && now - w->since < EVD_WARNING_WINDOW_US)
            continue;
        if (w->count > 0)
            g_warning("stream %s: %" G_GUINT64_FORMAT " more in the last %.0f s: %s", st->id,
                      w->count, (now - w->since) / 1e6, (const gchar *)key);
        g_hash_table_iter_remove(&iter);
    }
}

static gboolean on_bus_message(GstBus *bus, GstMessage *msg, gpointer data)
{
    EvdStream *st = data;

    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
        gchar *text = error_text(msg);
        stream_fail(st, text);
        g_free(text);
        return G_SOURCE_REMOVE;
    }
    case GST_MESSAGE_EOS:
        stream_fail(st, "end of stream");
        return G_SOURCE_REMOVE;
    case GST_MESSAGE_WARNING: {
        gchar *text = error_text(msg);
        warning_log(st, text);
        g_free(text);
        break;
    }
    case GST_MESSAGE_ELEMENT: {
        const GstStructure *s = gst_message_get_structure(msg);
        if (!s)
            break;
        if (gst_structure_has_name(s, "echoviewclassify"))
            on_view_message(st, s);
        else if (gst_structure_has_name(s, "echoviewclassify-reset"))
            on_reset_message(st, s);
        else if (gst_structure_has_name(s, "GstUDPSrcTimeout") &&
                 (st->state == EVD_STATE_RUNNING || st->state == EVD_STATE_ERROR ||
                  st->state == EVD_STATE_FROZEN || st->state == EVD_STATE_DEGRADED))
            stream_stall(st, "no RTP packets");
        break;
    }
    case GST_MESSAGE_STATE_CHANGED:
        if (st->is_sender && GST_MESSAGE_SRC(msg) == GST_OBJECT(st->pipeline)) {
            GstState new_state;
            gst_message_parse_state_changed(msg, NULL, &new_state, NULL);
            if (new_state == GST_STATE_PLAYING)
                evd_stream_set_state(st, EVD_STATE_RUNNING, NULL);
        }
        break;
    default:
        break;
    }
    return G_SOURCE_CONTINUE;
}

/* ---- pipeline lifetime (main thread) ----------------------------------------------------- */

static void read_jitter_stats(GstElement *jitter, guint64 *pushed, guint64 *lost, guint64 *late,
                              guint64 *dup)
{
    GstStructure *s = NULL;

    g_object_get(jitter, "stats", &s, NULL);
    if (!s)
        return;
    gst_structure_get_uint64(s, "num-pushed", pushed);
    gst_structure_get_uint64(s, "num-lost", lost);
    gst_structure_get_uint64(s, "num-late", late);
    gst_structure_get_uint64(s, "num-duplicates", dup);
    gst_structure_free(s);
}

/* Reads the element counters of the running pipeline (property reads take element locks, so
 * this runs without the supervisor lock). */
static void stream_poll(EvdStream *st)
{
    guint64 frames = 0, inferred = 0, skipped = 0, pushed = 0, lost = 0, late = 0, dup = 0;

    if (st->classify)
        g_object_get(st->classify, "frames", &frames, "inferred", &inferred, "skipped", &skipped,
                     NULL);
    if (!st->jitter) {
        g_mutex_lock(st->host.lock);
        if (st->sdp_jitter)
            st->jitter = gst_object_ref(st->sdp_jitter);
        g_mutex_unlock(st->host.lock);
    }
    if (st->jitter)
        read_jitter_stats(st->jitter, &pushed, &lost, &late, &dup);
    g_mutex_lock(st->host.lock);
    st->frames_cur = frames;
    st->inferred_cur = inferred;
    st->skipped_cur = skipped;
    st->pushed_cur = pushed;
    st->lost_cur = lost;
    st->late_cur = late;
    st->dup_cur = dup;
    g_mutex_unlock(st->host.lock);
}

static void stream_teardown(EvdStream *st)
{
    GstElement *pipeline = st->pipeline;

    if (!pipeline)
        return;
    stream_poll(st);
    g_mutex_lock(st->host.lock);
    st->frames_base += st->frames_cur;
    st->inferred_base += st->inferred_cur;
    st->skipped_base += st->skipped_cur;
    st->pushed_base += st->pushed_cur;
    st->lost_base += st->lost_cur;
    st->late_base += st->late_cur;
    st->dup_base += st->dup_cur;
    st->frames_cur = st->inferred_cur = st->skipped_cur = 0;
    st->pushed_cur = st->lost_cur = st->late_cur = st->dup_cur = 0;
    st->last_frame = 0;
    g_mutex_unlock(st->host.lock);

    st->pipeline = NULL;
    g_clear_object(&st->classify);
    g_clear_object(&st->jitter);
    gst_bus_remove_watch(GST_ELEMENT_BUS(pipeline));
    g_signal_handlers_disconnect_by_func(pipeline, on_deep_element_added, st);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    g_mutex_lock(st->host.lock);
    g_clear_object(&st->sdp_jitter); /* the streaming threads are gone */
    g_mutex_unlock(st->host.lock);
    gst_object_unref(pipeline);
    /* A pipeline's buffers, pools and thread-local allocations are freed into whichever glibc
   * arena its streaming threads used, and glibc keeps the free pages resident (a running
   * daemon gave back 212 KiB to one malloc_trim). Giving them back after each teardown keeps
   * resident memory 0.3-0.5 MiB lower in the soak, for ~0.1 ms per teardown. The drift across
   * restarts itself is stopped by capping the arenas (mallopt in echoviewd.c, GLIBC_TUNABLES in
   * the unit; docs/PERFORMANCE.md). */
#ifdef __GLIBC__
    {
        gint64 t0 = g_get_monotonic_time();
        malloc_trim(0);
        GST_DEBUG("stream %s: malloc_trim after teardown took %" G_GINT64_FORMAT " us", st->id,
                  g_get_monotonic_time() - t0);
    }
#endif
}

static void stream_start(EvdStream *st)
{
    GError *err = NULL;
    GstElement *pipeline, *queue, *depay;
    GstBus *bus;
    GstStateChangeReturn ret;

    g_assert(!st->pipeline);
    evd_stream_set_state(st, EVD_STATE_STARTING, NULL);
    /* the checks start afresh with each pipeline (no streaming thread runs yet) */
    evd_frozen_check_reset(&st->frozen);
    gst_caps_replace(&st->frozen_caps, NULL);
    g_mutex_lock(st->host.lock);
    evd_size_check_init(&st->size, st->sampling, st->depth, st->width, st->height);
    st->frozen_since = 0;
    st->frame_difference = -1;
    st->udp_last = st->udp_last_other_pt = 0;
    st->udp_window_packets = 0;
    st->unknown_since = 0;
    st->loss_recent = 0;
    st->queued_head = st->queued_count = 0; /* frames flushed with the old pipeline: not drops */
    g_mutex_unlock(st->host.lock);
    st->loss_samples = 0;
    pipeline = gst_parse_launch_full(st->description, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &err);
    if (!pipeline) {
        gchar *text = g_strdup_printf("pipeline: %s", err ? err->message : "cannot be built");
        g_clear_error(&err);
        stream_fail(st, text);
        g_free(text);
        return;
    }
    g_clear_error(&err);
    if (!GST_IS_PIPELINE(pipeline)) {
        GstElement *wrapped = gst_pipeline_new(NULL);
        gst_bin_add(GST_BIN(wrapped), pipeline);
        pipeline = wrapped;
    }
    st->pipeline = pipeline;
    if (!st->is_sender) {
        GstPad *pad;

        st->classify = gst_bin_get_by_name(GST_BIN(pipeline), "classify");
        st->jitter = gst_bin_get_by_name(GST_BIN(pipeline), "jitter");
        if (!st->jitter && st->has_jitter)
            g_signal_connect(pipeline, "deep-element-added", G_CALLBACK(on_deep_element_added),
                             st);
        if (st->jitter) {
            GstElement *udp = gst_bin_get_by_name(GST_BIN(pipeline), "src");
            if (udp) {
                pad = gst_element_get_static_pad(udp, "src");
                gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_udp_buffer, st, NULL);
                gst_object_unref(pad);
                gst_object_unref(udp);
            }
        }
        if (st->classify) {
            pad = gst_element_get_static_pad(st->classify, "src");
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_classified_buffer, st, NULL);
            gst_object_unref(pad);
        }
        depay = gst_bin_get_by_name(GST_BIN(pipeline), "depay");
        if (depay) {
            evd_zero_pool_attach(depay);
            if (st->width) {
                pad = gst_element_get_static_pad(depay, "sink");
                gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                                  on_depay_buffer, st, NULL);
                gst_object_unref(pad);
            }
            gst_object_unref(depay);
        }
        queue = gst_bin_get_by_name(GST_BIN(pipeline), "frames");
        if (queue) {
            pad = gst_element_get_static_pad(queue, "sink");
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                              on_queue_buffer, st, NULL);
            gst_object_unref(pad);
            pad = gst_element_get_static_pad(queue, "src");
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                              on_queue_out, st, NULL);
            gst_object_unref(pad);
            gst_object_unref(queue);
        }
    }
    bus = gst_element_get_bus(pipeline);
    gst_bus_add_watch(bus, on_bus_message, st);
    /* Never wait for the state change: a live source that is down would block us. */
    ret = gst_element_set_state(pipeline, GST_STATE_PLAYING);
    if (ret == GST_STATE_CHANGE_FAILURE) {
        GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        gchar *text = msg ? error_text(msg) : g_strdup("the pipeline failed to start");
        if (msg)
            gst_message_unref(msg);
        stream_fail(st, text);
        g_free(text);
    }
    gst_object_unref(bus);
    st->fps_time = g_get_monotonic_time();
    st->low_fps_since = 0;
    g_mutex_lock(st->host.lock);
    st->fps_frames = st->probe_frames;
    st->fps_received = st->received;
    g_mutex_unlock(st->host.lock);
}

/* Why an RTP stream has no frames, from what reached udpsrc in the last `window` seconds:
 * "no frames for 3.0 s" alone read the same for a dead sender, a wrong payload type and
 * packets that are not the configured encoding. */
static gchar *stall_reason(EvdStream *st, const gchar *what, gint64 now)
{
    gint64 window = (gint64)(st->stall_timeout * G_USEC_PER_SEC);
    gint64 last, last_other;
    guint other;
    guint64 packets;

    if (!st->has_udp)
        return g_strdup(what);
    g_mutex_lock(st->host.lock);
    if (st->rejected_last && now - st->rejected_last <= window) {
        gchar *text =
            st->rejected_by_ssrc
                ? g_strdup_printf("%s: packets of RTP SSRC %u dropped (source.ssrc is %u)", what,
                                  st->rejected_ssrc_value, st->ssrc)
                : g_strdup_printf("%s: packets from %s dropped (not in source.allowed-senders)",
                                  what, st->rejected_from);
        g_mutex_unlock(st->host.lock);
        return text;
    }
    last = st->udp_last;
    last_other = st->udp_last_other_pt;
    other = st->udp_other_pt;
    packets = st->udp_window_packets;
    g_mutex_unlock(st->host.lock);
    if (last_other && now - last_other <= window)
        return g_strdup_printf("%s: packets arrive with RTP payload type %u, the configuration "
                               "says %u (source.payload)",
                               what, other, st->payload);
    if (last && now - last <= window)
        return g_strdup_printf("%s: %" G_GUINT64_FORMAT " packets arrived on UDP port %u but made "
                               "no frame (are they the configured encoding%s?)",
                               what, packets, st->port,
                               st->width ? ", RFC 4175 sampling and depth" : "");
    return g_strdup_printf("%s: no packets arrive on UDP port %u", what, st->port);
}

/* One sample a second of the jitter buffer's cumulative counts; the recent loss ratio is over
 * the last EVD_LOSS_WINDOW_S seconds (the lifetime loss_ratio hid a burst after hours of
 * clean packets). */
static void loss_sample(EvdStream *st)
{
    guint n = G_N_ELEMENTS(st->loss_pushed), last;
    guint64 pushed, lost, d_pushed, d_lost;

    g_mutex_lock(st->host.lock);
    pushed = st->pushed_base + st->pushed_cur;
    lost = st->lost_base + st->lost_cur;
    g_mutex_unlock(st->host.lock);
    if (st->loss_samples >= n) {
        memmove(st->loss_pushed, st->loss_pushed + 1, (n - 1) * sizeof st->loss_pushed[0]);
        memmove(st->loss_lost, st->loss_lost + 1, (n - 1) * sizeof st->loss_lost[0]);
        st->loss_samples = n - 1;
    }
    last = st->loss_samples++;
    st->loss_pushed[last] = pushed;
    st->loss_lost[last] = lost;
    d_pushed = pushed - st->loss_pushed[0];
    d_lost = lost - st->loss_lost[0];
    g_mutex_lock(st->host.lock);
    st->loss_recent = d_pushed + d_lost ? (gdouble)d_lost / (gdouble)(d_pushed + d_lost) : 0;
    g_mutex_unlock(st->host.lock);
}

/* The fps check applies to a stream whose source declares its rate (source.framerate). */
static gboolean fps_check_on(const EvdStream *st)
{
    return st->framerate > 0 && st->min_fps_ratio > 0 && st->low_fps_timeout > 0;
}

/* What the frame checks make of a stream that receives frames: running, error (their size is
 * not the configured one), frozen or degraded (loss, fps below the source's, unknown view); the
 * reason is set (and recorded as the last error) for all but running. */
static EvdStreamState checks_verdict(EvdStream *st, gint64 now, gchar **reason)
{
    gboolean mismatch;
    guint seen_w, seen_h;
    gint64 frozen_since, unknown_since;
    gdouble difference, loss;
    EvdStreamState verdict;

    g_mutex_lock(st->host.lock);
    unknown_since = st->unknown_since;
    loss = st->loss_recent;
    mismatch = st->size.mismatch;
    seen_w = st->size.seen_width;
    seen_h = st->size.seen_height;
    frozen_since = st->frozen_since;
    difference = st->frame_difference;
    g_mutex_unlock(st->host.lock);
    if (mismatch) {
        verdict = EVD_STATE_ERROR;
        *reason = g_strdup_printf("frames are %ux%u, the configuration says %ux%u (source.width "
                                  "and source.height of an rtp-raw stream must be the sender's)",
                                  seen_w, seen_h, st->width, st->height);
    } else if (st->frozen_timeout > 0 && frozen_since &&
               now - frozen_since >= st->frozen_timeout * G_USEC_PER_SEC) {
        verdict = EVD_STATE_FROZEN;
        *reason = g_strdup_printf("frames unchanged for %.1f s (mean difference %.2f of 255, "
                                  "frozen-difference %.2f)",
                                  (now - frozen_since) / 1e6, MAX(difference, 0.0),
                                  st->frozen_difference);
    } else if (st->has_jitter && loss > st->max_loss) {
        /* lost packets are rows of zeros (or of an earlier frame) in the frames classified */
        verdict = EVD_STATE_DEGRADED;
        *reason = g_strdup_printf("%.1f %% of the RTP packets lost over the last %d s "
                                  "(max-loss %.1f %%)",
                                  loss * 100, EVD_LOSS_WINDOW_S, st->max_loss * 100);
    } else if (st->low_fps_since &&
               now - st->low_fps_since >= st->low_fps_timeout * G_USEC_PER_SEC) {
        /* the view lags the heart: too few frames are classified for the smoothing and
         * hysteresis to follow it (a sender that slowed down, or a classifier falling behind) */
        gdouble fps, fps_in;
        g_mutex_lock(st->host.lock);
        fps = st->fps;
        fps_in = st->fps_in;
        g_mutex_unlock(st->host.lock);
        verdict = EVD_STATE_DEGRADED;
        *reason = g_strdup_printf(
            "%.1f fps classified for %.1f s, below %.0f %% of the source's %u fps "
            "(source.framerate, min-fps-ratio %.2f): %s%.1f fps arrive%s",
            fps, (now - st->low_fps_since) / 1e6, st->min_fps_ratio * 100, st->framerate,
            st->min_fps_ratio, fps_in < st->min_fps_ratio * st->framerate ? "only " : "", fps_in,
            fps_in < st->min_fps_ratio * st->framerate
                ? " from the source"
                : ", the classifier falls behind (frames dropped at the queue)");
    } else if (st->unknown_timeout > 0 && unknown_since &&
               now - unknown_since >= st->unknown_timeout * G_USEC_PER_SEC) {
        verdict = EVD_STATE_DEGRADED;
        *reason = g_strdup_printf("no confident view for %.1f s (the stable view is unknown: "
                                  "not an echo view, or below the confidence threshold)",
                                  (now - unknown_since) / 1e6);
    } else {
        *reason = NULL;
        return EVD_STATE_RUNNING;
    }
    if (st->state != verdict)
        stream_set_error(st, *reason);
    return verdict;
}

void evd_stream_tick(EvdStream *st, gint64 now)
{
    gint64 last_frame, since;
    guint64 frames, received;
    EvdStreamState state;

    warnings_flush(st, now, FALSE);
    if (!st->pipeline)
        return;
    if (st->allowed || st->has_ssrc) {
        gchar *text = NULL;
        g_mutex_lock(st->host.lock);
        if (st->rejected_address + st->rejected_ssrc > st->rejected_logged) {
            st->rejected_logged = st->rejected_address + st->rejected_ssrc;
            text = st->rejected_by_ssrc
                       ? g_strdup_printf("packets of RTP SSRC %u dropped (source.ssrc is %u)",
                                         st->rejected_ssrc_value, st->ssrc)
                       : g_strdup_printf("packets from %s dropped (not in "
                                         "source.allowed-senders)",
                                         st->rejected_from);
        }
        g_mutex_unlock(st->host.lock);
        if (text)
            warning_log(st, text);
        g_free(text);
    }
    stream_poll(st);
    if (st->is_sender)
        return;
    g_mutex_lock(st->host.lock);
    last_frame = st->last_frame;
    since = st->state_since_mono;
    state = st->state;
    frames = st->probe_frames;
    received = st->received;
    g_mutex_unlock(st->host.lock);

    if (now - st->fps_time >= G_USEC_PER_SEC) {
        gdouble fps = (gdouble)(frames - st->fps_frames) * G_USEC_PER_SEC / (now - st->fps_time);
        gdouble fps_in =
            (gdouble)(received - st->fps_received) * G_USEC_PER_SEC / (now - st->fps_time);
        g_mutex_lock(st->host.lock);
        st->fps = fps;
        st->fps_in = fps_in;
        g_mutex_unlock(st->host.lock);
        /* counted only while frames arrive: a stall is its own state */
        if (!fps_check_on(st) || fps >= st->min_fps_ratio * st->framerate ||
            state == EVD_STATE_STARTING || state == EVD_STATE_STALLED)
            st->low_fps_since = 0;
        else if (!st->low_fps_since)
            st->low_fps_since = st->fps_time; /* low since the start of this second */
        st->fps_time = now;
        st->fps_frames = frames;
        st->fps_received = received;
        if (st->has_jitter)
            loss_sample(st);
    }

    switch (state) {
    case EVD_STATE_STARTING:
    case EVD_STATE_STALLED:
        if (last_frame > since) {
            gchar *reason = NULL;
            EvdStreamState verdict = checks_verdict(st, now, &reason);
            stream_cancel_restart(st);
            evd_stream_set_state(st, verdict, reason);
            g_free(reason);
        } else if (state == EVD_STATE_STARTING &&
                   now - since > st->stall_timeout * G_USEC_PER_SEC) {
            gchar *what = g_strdup_printf("no frames within %.1f s of start", st->stall_timeout);
            gchar *reason = stall_reason(st, what, now);
            stream_stall(st, reason);
            g_free(reason);
            g_free(what);
        }
        break;
    case EVD_STATE_RUNNING:
    case EVD_STATE_ERROR:
    case EVD_STATE_FROZEN:
    case EVD_STATE_DEGRADED:
        if (now - last_frame > st->stall_timeout * G_USEC_PER_SEC) {
            gchar *what = g_strdup_printf("no frames for %.1f s", st->stall_timeout);
            gchar *reason = stall_reason(st, what, now);
            stream_stall(st, reason);
            g_free(reason);
            g_free(what);
        } else {
            gchar *reason = NULL;
            EvdStreamState verdict = checks_verdict(st, now, &reason);
            if (verdict != state)
                evd_stream_set_state(st, verdict, reason);
            g_free(reason);
            if (verdict == EVD_STATE_RUNNING && now - st->running_since > EVD_STABLE_RESET_US)
                st->failures = 0;
        }
        break;
    default:
        break;
    }
}

/* ---- lifetime of the stream itself ------------------------------------------------------ */

EvdStream *evd_stream_new(const EvdStreamHost *host, const gchar *id, gboolean is_sender)
{
    EvdStream *st = g_new0(EvdStream, 1);

    st->host = *host;
    st->id = g_strdup(id);
    st->is_sender = is_sender;
    st->state = EVD_STATE_DISABLED;
    evd_view_init(&st->view);
    st->state_since_mono = g_get_monotonic_time();
    st->state_since_wall = g_get_real_time();
    st->frame_difference = -1;
    return st;
}

void evd_stream_free(EvdStream *st)
{
    stream_cancel_restart(st);
    stream_teardown(st);
    warnings_flush(st, g_get_monotonic_time(), TRUE);
    if (st->warnings)
        g_hash_table_unref(st->warnings);
    g_free(st->id);
    g_free(st->description);
    g_free(st->fingerprint);
    g_free(st->source_type);
    g_free(st->model_file);
    g_free(st->backend);
    g_free(st->sampling);
    if (st->allowed)
        g_ptr_array_unref(st->allowed);
    g_free(st->last_error);
    gst_caps_replace(&st->frozen_caps, NULL);
    g_free(st);
}

void evd_stream_configure(EvdStream *st, const EvdStreamConfig *sc)
{
    const EvdProperty *backend = evd_properties_find(sc->classifier, "backend");
    gchar *description = evd_pipeline_describe_stream(sc);

    g_mutex_lock(st->host.lock);
    g_free(st->description);
    st->description = description;
    g_free(st->fingerprint);
    st->fingerprint = evd_pipeline_fingerprint_stream(sc);
    g_free(st->source_type);
    st->source_type = g_strdup(evd_source_type_name(sc->source.type));
    g_free(st->model_file);
    st->model_file = g_strdup(evd_properties_find(sc->classifier, "model-file")->value);
    g_free(st->backend);
    st->backend = g_strdup(backend ? backend->value : "auto");
    st->enabled = sc->enabled;
    st->stall_timeout = sc->stall_timeout;
    st->frozen_timeout = sc->frozen_timeout;
    st->frozen_difference = sc->frozen_difference;
    st->max_loss = sc->max_loss;
    st->unknown_timeout = sc->unknown_timeout;
    st->framerate = sc->source.framerate;
    st->min_fps_ratio = sc->min_fps_ratio;
    st->low_fps_timeout = sc->low_fps_timeout;
    g_free(st->sampling);
    st->sampling = g_strdup(sc->source.sampling);
    st->depth = sc->source.depth;
    st->width = sc->source.type == EVD_SOURCE_RTP_RAW ? sc->source.width : 0;
    st->height = sc->source.type == EVD_SOURCE_RTP_RAW ? sc->source.height : 0;
    st->payload = sc->source.payload;
    st->port = sc->source.port;
    g_clear_pointer(&st->allowed, g_ptr_array_unref);
    if (sc->source.allowed_senders) {
        st->allowed = g_ptr_array_new_with_free_func(g_object_unref);
        for (guint i = 0; i < sc->source.allowed_senders->len; i++) {
            GInetAddressMask *mask = g_inet_address_mask_new_from_string(
                g_ptr_array_index(sc->source.allowed_senders, i), NULL);
            if (mask) /* checked by the config parser */
                g_ptr_array_add(st->allowed, mask);
        }
    }
    st->has_ssrc = sc->source.has_ssrc;
    st->ssrc = sc->source.ssrc;
    st->has_udp = sc->source.type == EVD_SOURCE_RTP_RAW ||
                  sc->source.type == EVD_SOURCE_RTP_H264 || sc->source.type == EVD_SOURCE_RTP_JPEG;
    st->has_jitter = sc->source.type == EVD_SOURCE_SDP ||
                     sc->source.type == EVD_SOURCE_RTP_RAW ||
                     sc->source.type == EVD_SOURCE_RTP_H264 ||
                     sc->source.type == EVD_SOURCE_RTP_JPEG;
    g_mutex_unlock(st->host.lock);
}

void evd_stream_configure_sender(EvdStream *st, const EvdSenderConfig *sc)
{
    g_mutex_lock(st->host.lock);
    g_free(st->description);
    st->description = evd_pipeline_describe_sender(sc);
    g_free(st->fingerprint);
    st->fingerprint = evd_pipeline_fingerprint_sender(sc);
    g_free(st->source_type);
    st->source_type = g_strdup("phantom");
    st->enabled = TRUE;
    st->stall_timeout = 0;
    g_mutex_unlock(st->host.lock);
}

void evd_stream_set_backoff(EvdStream *st, gdouble restart_delay, gdouble restart_delay_max)
{
    st->restart_delay = restart_delay;
    st->restart_delay_max = restart_delay_max;
}

void evd_stream_start(EvdStream *st) { stream_start(st); }

void evd_stream_stop(EvdStream *st)
{
    stream_cancel_restart(st);
    stream_teardown(st);
    st->failures = 0;
}

void evd_stream_emit_removed(EvdStream *st)
{
    gchar *when = iso_time(g_get_real_time());

    emit(st, "state",
         json_pack("{s:s, s:b, s:s, s:s, s:s}", "stream", st->id, "sender", st->is_sender, "state",
                   "removed", "previous", evd_stream_state_name(st->state), "time", when));
    g_free(when);
}

EvdStreamSnapshot *evd_stream_snapshot(const EvdStream *st, const EvdModelInfo *model)
{
    EvdStreamSnapshot *snap = g_new0(EvdStreamSnapshot, 1);

    snap->id = g_strdup(st->id);
    snap->source_type = g_strdup(st->source_type);
    snap->pipeline = g_strdup(st->description);
    snap->enabled = st->enabled;
    snap->is_sender = st->is_sender;
    snap->state = st->state;
    snap->state_since = st->state_since_wall;
    evd_snapshot_set_view(snap, &st->view);
    if (!st->is_sender && st->state != EVD_STATE_RUNNING) {
        /* a view is reported only while the stream runs (emit_withheld) */
        snap->withheld = g_strdup_printf("stream is %s", evd_stream_state_name(st->state));
        if (snap->label) {
            g_free(snap->label);
            snap->label = g_strdup("unknown");
        }
        if (snap->stable_label) {
            g_free(snap->stable_label);
            snap->stable_label = g_strdup("unknown");
        }
        snap->label_id = snap->stable_label_id = -1;
        snap->confidence = 0;
        snap->n_probabilities = 0;
    }
    if (model && model->n_classes == st->view.n_probabilities)
        snap->classes = g_strdupv(model->classes);
    snap->model_name = g_strdup(st->view.model_name ? st->view.model_name
                                : model             ? model->name
                                                    : NULL);
    snap->model_file = g_strdup(st->model_file);
    snap->backend = g_strdup(st->backend);
    snap->frames = st->frames_base + st->frames_cur;
    snap->inferred = st->inferred_base + st->inferred_cur;
    snap->skipped = st->skipped_base + st->skipped_cur;
    snap->received = st->received;
    snap->dropped = st->dropped;
    snap->view_changes = st->view_changes;
    snap->warnings = st->warnings_total;
    snap->restarts = st->restarts;
    /* while frames arrive (a degraded stream's low fps is what an operator must see) */
    snap->fps = st->state == EVD_STATE_RUNNING || st->state == EVD_STATE_DEGRADED ||
                        st->state == EVD_STATE_FROZEN || st->state == EVD_STATE_ERROR
                    ? st->fps
                    : 0;
    evd_snapshot_set_latency_histogram(snap, &st->latency);
    snap->has_packets = st->has_jitter;
    snap->packets_pushed = st->pushed_base + st->pushed_cur;
    snap->packets_lost = st->lost_base + st->lost_cur;
    snap->packets_late = st->late_base + st->late_cur;
    snap->packets_duplicates = st->dup_base + st->dup_cur;
    snap->loss_recent = st->loss_recent;
    snap->rejected_address = st->rejected_address;
    snap->rejected_ssrc = st->rejected_ssrc;
    snap->last_error = g_strdup(st->last_error);
    snap->last_error_time = st->last_error_time;
    snap->has_frame_size = st->width > 0;
    snap->frame_width = st->size.seen_width;
    snap->frame_height = st->size.seen_height;
    snap->frame_difference = st->frame_difference;
    snap->frozen_seconds =
        st->frozen_since ? (g_get_monotonic_time() - st->frozen_since) / 1e6 : 0.0;
    return snap;
}
