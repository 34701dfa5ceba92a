/* evd_stream.c: pipeline supervision. Everything that changes a stream's state runs on the
 * main loop thread (bus watches, the tick, restart timers); the streaming threads only count
 * frames and copy the classifier's EchoViewMeta under the supervisor lock, and the HTTP thread
 * only reads snapshots under the same lock. The lock is never held across a GStreamer state
 * change, so a streaming thread waiting for it can never block a teardown. */
#include "evd_stream.h"

#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ev_stats.h"
#include "gstechoviewmeta.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

GST_DEBUG_CATEGORY_STATIC(evd_stream_debug);
#define GST_CAT_DEFAULT evd_stream_debug

#define EVD_TICK_MS 250
#define EVD_MAX_CLASSES 256
#define EVD_STABLE_RESET_US (10 * G_USEC_PER_SEC) /* running this long clears the backoff */

const gdouble evd_latency_bucket_bounds[EVD_LATENCY_BUCKETS] = {
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0};

typedef struct {
    EvdSupervisor *sup;
    gboolean is_sender;
    gchar *id;
    gchar *description;
    gchar *fingerprint;
    gchar *source_type;
    gchar *model_file;
    gchar *backend;
    gboolean enabled;
    gboolean has_jitter;
    gdouble stall_timeout;

    /* main thread only */
    GstElement *pipeline;
    GstElement *classify;
    GstElement *jitter;
    guint restart_timer;
    guint failures;       /* consecutive, for the backoff */
    gint64 running_since; /* monotonic */
    gint64 fps_time;
    guint64 fps_frames;

    /* under sup->lock */
    EvdStreamState state;
    gint64 state_since_mono, state_since_wall;
    gint64 last_frame;    /* monotonic, 0: none in this pipeline */
    guint64 probe_frames; /* frames out of the classifier, cumulative */
    guint64 received;     /* frames into the queue, cumulative */
    guint64 frames_base, inferred_base, skipped_base;
    guint64 frames_cur, inferred_cur, skipped_cur;
    guint64 pushed_base, lost_base, late_base, dup_base;
    guint64 pushed_cur, lost_cur, late_cur, dup_cur;
    guint64 view_changes;
    guint restarts;
    gdouble fps;
    const gchar *label; /* interned by the meta library */
    gint label_id;
    gdouble confidence;
    const gchar *stable_label;
    gint stable_label_id;
    guint n_probabilities;
    gdouble probabilities[EVD_MAX_CLASSES];
    const gchar *model_name;
    ev_stats_window latency; /* milliseconds, of inferred results (the element's samples) */
    guint64 latency_buckets[EVD_LATENCY_BUCKETS + 1];
    guint64 latency_count;
    gdouble latency_sum_s;
    gchar *last_error;
    gint64 last_error_time;
} EvdStream;

/* What the daemon shows about a model: its name and class names, read from a started
 * classifier (its model-name and classes properties), so the engine's reading of model.yaml is
 * the only one. */
typedef struct {
    gchar *name;
    gchar **classes; /* NULL-terminated, in the order of the probabilities */
    guint n_classes;
} EvdModelInfo;

struct _EvdSupervisor {
    GMutex lock;
    GPtrArray *streams; /* EvdStream, config order */
    GPtrArray *senders; /* EvdStream */
    EvdConfig *config;
    GHashTable *models;      /* model-file -> EvdModelInfo */
    GPtrArray *model_probes; /* GstElement pipelines holding each model loaded */
    gboolean model_loaded;
    gchar *model_error;
    gint64 model_retry_at;
    guint model_failures;
    guint tick_id;
    EvdEventFunc on_event;
    gpointer user_data;
};

static void stream_start(EvdStream *st);
static void stream_teardown(EvdStream *st);

const gchar *evd_stream_state_name(EvdStreamState state)
{
    static const gchar *names[] = {"starting", "running", "stalled", "failed", "disabled"};
    return (guint)state < G_N_ELEMENTS(names) ? names[state] : "?";
}

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

static void emit(EvdSupervisor *sup, const gchar *event, json_t *data)
{
    if (sup->on_event)
        sup->on_event(event, data, sup->user_data);
    else
        json_decref(data);
}

/* ---- state machine ---------------------------------------------------------------------- */

static void stream_set_state(EvdStream *st, EvdStreamState state, const gchar *reason)
{
    EvdSupervisor *sup = st->sup;
    EvdStreamState previous;
    gint64 wall = g_get_real_time();
    gchar *when;

    g_mutex_lock(&sup->lock);
    previous = st->state;
    if (previous == state) {
        g_mutex_unlock(&sup->lock);
        return;
    }
    st->state = state;
    st->state_since_mono = g_get_monotonic_time();
    st->state_since_wall = wall;
    g_mutex_unlock(&sup->lock);

    if (state == EVD_STATE_RUNNING)
        st->running_since = st->state_since_mono;
    GST_INFO("%s %s: %s -> %s%s%s", st->is_sender ? "sender" : "stream", st->id,
             evd_stream_state_name(previous), evd_stream_state_name(state), reason ? ": " : "",
             reason ? reason : "");
    g_message("%s %s: %s -> %s%s%s", st->is_sender ? "sender" : "stream", st->id,
              evd_stream_state_name(previous), evd_stream_state_name(state), reason ? ": " : "",
              reason ? reason : "");
    when = iso_time(wall);
    emit(sup, "state",
         json_pack("{s:s, s:b, s:s, s:s, s:s?, s:s}", "stream", st->id, "sender", st->is_sender,
                   "state", evd_stream_state_name(state), "previous",
                   evd_stream_state_name(previous), "reason", reason, "time", when));
    g_free(when);
}

static void stream_set_error(EvdStream *st, const gchar *error)
{
    g_mutex_lock(&st->sup->lock);
    g_free(st->last_error);
    st->last_error = g_strdup(error);
    st->last_error_time = g_get_real_time();
    g_mutex_unlock(&st->sup->lock);
}

static gboolean on_restart_timer(gpointer data)
{
    EvdStream *st = data;

    st->restart_timer = 0;
    stream_teardown(st);
    g_mutex_lock(&st->sup->lock);
    st->restarts++;
    g_mutex_unlock(&st->sup->lock);
    stream_start(st);
    return G_SOURCE_REMOVE;
}

static void stream_schedule_restart(EvdStream *st)
{
    EvdConfig *c = st->sup->config;
    gdouble delay;

    if (st->restart_timer)
        return;
    delay = c->restart_delay * pow(2.0, MIN(st->failures, 30u));
    delay = MIN(delay, c->restart_delay_max);
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
    stream_set_state(st, EVD_STATE_FAILED, error);
    stream_schedule_restart(st);
}

/* No frames: keep the pipeline (frames may resume at once), and restart it after the
 * backoff unless they do. */
static void stream_stall(EvdStream *st, const gchar *reason)
{
    stream_set_error(st, reason);
    stream_set_state(st, EVD_STATE_STALLED, reason);
    stream_schedule_restart(st);
}

/* ---- zero-filled frames for rtp-raw ----------------------------------------------------- */

/* rtpvrawdepay copies each packet's lines into a pool buffer and pushes the frame when the next
 * one starts, complete or not: the lines of lost packets, and the rows beyond the sender's size
 * when it does not match the configured one, keep whatever that memory held. For a fresh
 * buffer that is uninitialised memory, which reached the ROI detector, the network and the
 * `stats` events (valgrind --track-origins traced it to gst_buffer_pool_acquire_buffer in
 * rtpvrawdepay). The depayloader takes its pool from the ALLOCATION query, so it is answered
 * with a pool whose new buffers are zeroed: missing rows are black (or, in a recycled buffer,
 * an earlier frame's), never undefined. */
#define EVD_TYPE_ZEROED_POOL (evd_zeroed_pool_get_type())
G_DECLARE_FINAL_TYPE(EvdZeroedPool, evd_zeroed_pool, EVD, ZEROED_POOL, GstVideoBufferPool)

struct _EvdZeroedPool {
    GstVideoBufferPool parent;
};

G_DEFINE_TYPE(EvdZeroedPool, evd_zeroed_pool, GST_TYPE_VIDEO_BUFFER_POOL)

static GstFlowReturn evd_zeroed_pool_alloc_buffer(GstBufferPool *pool, GstBuffer **buffer,
                                                  GstBufferPoolAcquireParams *params)
{
    GstFlowReturn ret =
        GST_BUFFER_POOL_CLASS(evd_zeroed_pool_parent_class)->alloc_buffer(pool, buffer, params);

    if (ret == GST_FLOW_OK)
        gst_buffer_memset(*buffer, 0, 0, gst_buffer_get_size(*buffer));
    return ret;
}

static void evd_zeroed_pool_class_init(EvdZeroedPoolClass *klass)
{
    GST_BUFFER_POOL_CLASS(klass)->alloc_buffer = evd_zeroed_pool_alloc_buffer;
}

static void evd_zeroed_pool_init(EvdZeroedPool *pool) {}

/* On the depayloader's src pad: answers its ALLOCATION query with an EvdZeroedPool (and video
 * meta, as videoconvert downstream would). */
static GstPadProbeReturn on_depay_query(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    GstCaps *caps = NULL;
    GstVideoInfo vinfo;
    GstBufferPool *pool;

    if (GST_QUERY_TYPE(query) != GST_QUERY_ALLOCATION)
        return GST_PAD_PROBE_OK;
    gst_query_parse_allocation(query, &caps, NULL);
    if (!caps || !gst_video_info_from_caps(&vinfo, caps))
        return GST_PAD_PROBE_OK;
    pool = g_object_new(EVD_TYPE_ZEROED_POOL, NULL);
    gst_query_add_allocation_pool(query, pool, (guint)GST_VIDEO_INFO_SIZE(&vinfo), 0, 0);
    gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
    gst_object_unref(pool);
    return GST_PAD_PROBE_HANDLED;
}

/* ---- probes (streaming threads) ---------------------------------------------------------- */

static GstPadProbeReturn on_queue_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;
    guint n = 1;

    if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
        n = gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    g_mutex_lock(&st->sup->lock);
    st->received += n;
    g_mutex_unlock(&st->sup->lock);
    return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn on_classified_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    EvdStream *st = data;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstEchoViewMeta *meta = gst_buffer_get_echo_view_meta(buf);
    gint64 now = g_get_monotonic_time();

    g_mutex_lock(&st->sup->lock);
    st->last_frame = now;
    st->probe_frames++;
    if (meta) {
        st->label = meta->label;
        st->label_id = meta->label_id;
        st->confidence = meta->confidence;
        st->stable_label = meta->stable_label;
        st->stable_label_id = meta->stable_label_id;
        st->model_name = meta->model_name;
        st->n_probabilities = MIN(meta->n_probabilities, EVD_MAX_CLASSES);
        for (guint i = 0; i < st->n_probabilities; i++)
            st->probabilities[i] = meta->probabilities[i];
        if (meta->inferred && GST_CLOCK_TIME_IS_VALID(meta->latency)) {
            gdouble s = (gdouble)meta->latency / GST_SECOND;
            guint b = 0;

            ev_stats_window_add(&st->latency, s * 1000.0);
            while (b < EVD_LATENCY_BUCKETS && s > evd_latency_bucket_bounds[b])
                b++;
            st->latency_buckets[b]++;
            st->latency_count++;
            st->latency_sum_s += s;
        }
    }
    g_mutex_unlock(&st->sup->lock);
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
    gchar *when;
    json_t *ev;

    gst_structure_get_double(s, "confidence", &confidence);
    gst_structure_get_int(s, "stable-label-id", &label_id);
    gst_structure_get_uint64(s, "timestamp", &pts);
    gst_structure_get_uint64(s, "stream-time", &stream_time);
    g_mutex_lock(&st->sup->lock);
    st->view_changes++;
    g_mutex_unlock(&st->sup->lock);
    when = iso_time(g_get_real_time());
    ev = json_pack("{s:s, s:s?, s:i, s:s?, s:f, s:s}", "stream", st->id, "view", label, "view_id",
                   label_id, "previous", previous, "confidence", confidence, "time", when);
    if (GST_CLOCK_TIME_IS_VALID(pts))
        json_object_set_new(ev, "pts_ns", json_integer((json_int_t)pts));
    if (GST_CLOCK_TIME_IS_VALID(stream_time))
        json_object_set_new(ev, "stream_time_ns", json_integer((json_int_t)stream_time));
    g_free(when);
    emit(st->sup, "view", ev);
}

static gchar *error_text(GstMessage *msg)
{
    GError *gerr = NULL;
    gchar *debug = NULL, *text;

    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR)
        gst_message_parse_error(msg, &gerr, &debug);
    else
        gst_message_parse_warning(msg, &gerr, &debug);
    text = g_strdup_printf("%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                           gerr ? gerr->message : "error");
    GST_DEBUG("%s (%s)", text, debug ? debug : "");
    g_clear_error(&gerr);
    g_free(debug);
    return text;
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
        g_warning("stream %s: %s", st->id, text);
        g_free(text);
        break;
    }
    case GST_MESSAGE_ELEMENT: {
        const GstStructure *s = gst_message_get_structure(msg);
        if (!s)
            break;
        if (gst_structure_has_name(s, "echoviewclassify"))
            on_view_message(st, s);
        else if (gst_structure_has_name(s, "GstUDPSrcTimeout") && st->state == EVD_STATE_RUNNING)
            stream_stall(st, "no RTP packets");
        break;
    }
    case GST_MESSAGE_STATE_CHANGED:
        if (st->is_sender && GST_MESSAGE_SRC(msg) == GST_OBJECT(st->pipeline)) {
            GstState new_state;
            gst_message_parse_state_changed(msg, NULL, &new_state, NULL);
            if (new_state == GST_STATE_PLAYING)
                stream_set_state(st, EVD_STATE_RUNNING, NULL);
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
    if (st->jitter)
        read_jitter_stats(st->jitter, &pushed, &lost, &late, &dup);
    g_mutex_lock(&st->sup->lock);
    st->frames_cur = frames;
    st->inferred_cur = inferred;
    st->skipped_cur = skipped;
    st->pushed_cur = pushed;
    st->lost_cur = lost;
    st->late_cur = late;
    st->dup_cur = dup;
    g_mutex_unlock(&st->sup->lock);
}

static void stream_teardown(EvdStream *st)
{
    GstElement *pipeline = st->pipeline;

    if (!pipeline)
        return;
    stream_poll(st);
    g_mutex_lock(&st->sup->lock);
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
    g_mutex_unlock(&st->sup->lock);

    st->pipeline = NULL;
    g_clear_object(&st->classify);
    g_clear_object(&st->jitter);
    gst_bus_remove_watch(GST_ELEMENT_BUS(pipeline));
    gst_element_set_state(pipeline, GST_STATE_NULL);
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
    stream_set_state(st, EVD_STATE_STARTING, NULL);
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
        if (st->classify) {
            pad = gst_element_get_static_pad(st->classify, "src");
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_classified_buffer, st, NULL);
            gst_object_unref(pad);
        }
        depay = gst_bin_get_by_name(GST_BIN(pipeline), "depay");
        if (depay) {
            pad = gst_element_get_static_pad(depay, "src");
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, on_depay_query, NULL, NULL);
            gst_object_unref(pad);
            gst_object_unref(depay);
        }
        queue = gst_bin_get_by_name(GST_BIN(pipeline), "frames");
        if (queue) {
            pad = gst_element_get_static_pad(queue, "sink");
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                              on_queue_buffer, st, NULL);
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
    g_mutex_lock(&st->sup->lock);
    st->fps_frames = st->probe_frames;
    g_mutex_unlock(&st->sup->lock);
}

/* The frame clock: promotes and demotes streams, and keeps fps and counters fresh. */
static void stream_tick(EvdStream *st, gint64 now)
{
    gint64 last_frame, since;
    guint64 frames;
    EvdStreamState state;

    if (!st->pipeline)
        return;
    stream_poll(st);
    if (st->is_sender)
        return;
    g_mutex_lock(&st->sup->lock);
    last_frame = st->last_frame;
    since = st->state_since_mono;
    state = st->state;
    frames = st->probe_frames;
    g_mutex_unlock(&st->sup->lock);

    if (now - st->fps_time >= G_USEC_PER_SEC) {
        gdouble fps = (gdouble)(frames - st->fps_frames) * G_USEC_PER_SEC / (now - st->fps_time);
        g_mutex_lock(&st->sup->lock);
        st->fps = fps;
        g_mutex_unlock(&st->sup->lock);
        st->fps_time = now;
        st->fps_frames = frames;
    }

    switch (state) {
    case EVD_STATE_STARTING:
    case EVD_STATE_STALLED:
        if (last_frame > since) {
            stream_cancel_restart(st);
            stream_set_state(st, EVD_STATE_RUNNING, NULL);
        } else if (state == EVD_STATE_STARTING &&
                   now - since > st->stall_timeout * G_USEC_PER_SEC) {
            gchar *reason = g_strdup_printf("no frames within %.1f s of start", st->stall_timeout);
            stream_stall(st, reason);
            g_free(reason);
        }
        break;
    case EVD_STATE_RUNNING:
        if (now - last_frame > st->stall_timeout * G_USEC_PER_SEC) {
            gchar *reason = g_strdup_printf("no frames for %.1f s", st->stall_timeout);
            stream_stall(st, reason);
            g_free(reason);
        } else if (now - st->running_since > EVD_STABLE_RESET_US) {
            st->failures = 0;
        }
        break;
    default:
        break;
    }
}

/* ---- models ----------------------------------------------------------------------------- */

static void apply_properties(GstElement *element, const GPtrArray *properties)
{
    for (guint i = 0; properties && i < properties->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(properties, i);
        gst_util_set_object_arg(G_OBJECT(element), prop->name, prop->value);
    }
}

static void model_info_free(EvdModelInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_strfreev(info->classes);
    g_free(info);
}

/* The name and classes of the model a started probe (model_probe_new) holds. */
static EvdModelInfo *model_info_from_probe(GstElement *probe)
{
    GstElement *classify = gst_bin_get_by_name(GST_BIN(probe), "classify");
    EvdModelInfo *info = g_new0(EvdModelInfo, 1);

    g_object_get(classify, "model-name", &info->name, "classes", &info->classes, NULL);
    info->n_classes = info->classes ? g_strv_length(info->classes) : 0;
    gst_object_unref(classify);
    return info;
}

/* Holds a classifier in PAUSED with the stream's settings: proves the model loads (with that
 * backend) and, through model-instance-id, keeps one copy of the weights for every stream. */
static GstElement *model_probe_new(const EvdStreamConfig *stream, GError **err)
{
    GstElement *pipeline = gst_pipeline_new(NULL);
    GstElement *classify = gst_element_factory_make("echoviewclassify", "classify");
    GstBus *bus;

    if (!classify) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "GStreamer element "
                    "echoviewclassify not found (is GST_PLUGIN_PATH set?)");
        gst_object_unref(pipeline);
        return NULL;
    }
    g_object_set(classify, "model-instance-id",
                 evd_properties_find(stream->classifier, "model-file")->value, NULL);
    apply_properties(classify, stream->classifier);
    gst_bin_add(GST_BIN(pipeline), classify);
    if (gst_element_set_state(pipeline, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
        GstMessage *msg;
        bus = gst_element_get_bus(pipeline);
        msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        if (msg) {
            GError *gerr = NULL;
            gchar *debug = NULL;
            gst_message_parse_error(msg, &gerr, &debug);
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "model %s: %s%s%s",
                        evd_properties_find(stream->classifier, "model-file")->value, gerr->message,
                        debug ? ": " : "", debug ? debug : "");
            g_clear_error(&gerr);
            g_free(debug);
            gst_message_unref(msg);
        } else {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "model %s cannot be loaded",
                        evd_properties_find(stream->classifier, "model-file")->value);
        }
        gst_object_unref(bus);
        gst_element_set_state(pipeline, GST_STATE_NULL);
        gst_object_unref(pipeline);
        return NULL;
    }
    return pipeline;
}

static void model_probe_free(gpointer data)
{
    gst_element_set_state(GST_ELEMENT(data), GST_STATE_NULL);
    gst_object_unref(data);
}

/* (Re)loads every distinct model of the config; sets model_loaded / model_error. */
static void supervisor_load_models(EvdSupervisor *sup)
{
    GPtrArray *probes = g_ptr_array_new_with_free_func(model_probe_free);
    GHashTable *models =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)model_info_free);
    gchar *error = NULL;
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    GPtrArray *old_probes;
    GHashTable *old_models;

    for (guint i = 0; i < sup->config->streams->len; i++) {
        EvdStreamConfig *s = g_ptr_array_index(sup->config->streams, i);
        const gchar *file = evd_properties_find(s->classifier, "model-file")->value;
        const EvdProperty *backend = evd_properties_find(s->classifier, "backend");
        gchar *key = g_strdup_printf("%s|%s", file, backend ? backend->value : "");
        GError *err = NULL;

        if (!s->enabled || g_hash_table_contains(seen, key)) {
            g_free(key);
            continue;
        }
        g_hash_table_add(seen, key);
        GstElement *probe = model_probe_new(s, &err);
        if (probe) {
            if (!g_hash_table_contains(models, file))
                g_hash_table_insert(models, g_strdup(file), model_info_from_probe(probe));
            g_ptr_array_add(probes, probe);
        } else if (!error) {
            error = g_strdup(err->message);
        }
        g_clear_error(&err);
    }
    g_hash_table_unref(seen);

    g_mutex_lock(&sup->lock);
    old_probes = sup->model_probes;
    old_models = sup->models;
    sup->model_probes = probes;
    sup->models = models;
    sup->model_loaded = error == NULL;
    g_free(sup->model_error);
    sup->model_error = error;
    g_mutex_unlock(&sup->lock);
    if (error) {
        g_warning("%s", error);
        sup->model_retry_at =
            g_get_monotonic_time() +
            (gint64)(MIN(sup->config->restart_delay * pow(2.0, MIN(sup->model_failures, 30u)),
                         sup->config->restart_delay_max) *
                     G_USEC_PER_SEC);
        sup->model_failures++;
    } else {
        sup->model_failures = 0;
    }
    if (old_probes)
        g_ptr_array_unref(old_probes);
    if (old_models)
        g_hash_table_unref(old_models);
}

/* ---- supervisor ------------------------------------------------------------------------- */

static gboolean on_tick(gpointer data)
{
    EvdSupervisor *sup = data;
    gint64 now = g_get_monotonic_time();

    if (!sup->model_loaded && now >= sup->model_retry_at)
        supervisor_load_models(sup);
    for (guint i = 0; i < sup->streams->len; i++)
        stream_tick(g_ptr_array_index(sup->streams, i), now);
    for (guint i = 0; i < sup->senders->len; i++)
        stream_tick(g_ptr_array_index(sup->senders, i), now);
    return G_SOURCE_CONTINUE;
}

EvdSupervisor *evd_supervisor_new(EvdEventFunc on_event, gpointer user_data)
{
    EvdSupervisor *sup = g_new0(EvdSupervisor, 1);

    if (!evd_stream_debug)
        GST_DEBUG_CATEGORY_INIT(evd_stream_debug, "echoviewd", 0, "echoviewd supervisor");
    g_mutex_init(&sup->lock);
    sup->streams = g_ptr_array_new();
    sup->senders = g_ptr_array_new();
    sup->on_event = on_event;
    sup->user_data = user_data;
    sup->tick_id = g_timeout_add(EVD_TICK_MS, on_tick, sup);
    return sup;
}

static void stream_free(EvdStream *st)
{
    stream_cancel_restart(st);
    stream_teardown(st);
    g_free(st->id);
    g_free(st->description);
    g_free(st->fingerprint);
    g_free(st->source_type);
    g_free(st->model_file);
    g_free(st->backend);
    g_free(st->last_error);
    g_free(st);
}

static EvdStream *find_stream(GPtrArray *list, const gchar *id)
{
    for (guint i = 0; i < list->len; i++) {
        EvdStream *st = g_ptr_array_index(list, i);
        if (strcmp(st->id, id) == 0)
            return st;
    }
    return NULL;
}

static EvdStream *stream_new(EvdSupervisor *sup, const gchar *id, gboolean is_sender)
{
    EvdStream *st = g_new0(EvdStream, 1);

    st->sup = sup;
    st->id = g_strdup(id);
    st->is_sender = is_sender;
    st->state = EVD_STATE_DISABLED;
    st->label_id = st->stable_label_id = -1;
    st->state_since_mono = g_get_monotonic_time();
    st->state_since_wall = g_get_real_time();
    return st;
}

/* Points st at its new config: call with the pipeline stopped or unchanged. */
static void stream_configure(EvdStream *st, const EvdStreamConfig *sc)
{
    const EvdProperty *backend = evd_properties_find(sc->classifier, "backend");
    gchar *description = evd_stream_config_describe(sc);

    g_mutex_lock(&st->sup->lock);
    g_free(st->description);
    st->description = description;
    g_free(st->fingerprint);
    st->fingerprint = evd_stream_config_fingerprint(sc);
    g_free(st->source_type);
    st->source_type = g_strdup(evd_source_type_name(sc->source.type));
    g_free(st->model_file);
    st->model_file = g_strdup(evd_properties_find(sc->classifier, "model-file")->value);
    g_free(st->backend);
    st->backend = g_strdup(backend ? backend->value : "auto");
    st->enabled = sc->enabled;
    st->stall_timeout = sc->stall_timeout;
    st->has_jitter = sc->source.type == EVD_SOURCE_RTP_RAW ||
                     sc->source.type == EVD_SOURCE_RTP_H264 ||
                     sc->source.type == EVD_SOURCE_RTP_JPEG;
    g_mutex_unlock(&st->sup->lock);
}

static void sender_configure(EvdStream *st, const EvdSenderConfig *sc)
{
    g_mutex_lock(&st->sup->lock);
    g_free(st->description);
    st->description = evd_sender_config_describe(sc);
    g_free(st->fingerprint);
    st->fingerprint = evd_sender_config_fingerprint(sc);
    g_free(st->source_type);
    st->source_type = g_strdup("phantom");
    st->enabled = TRUE;
    st->stall_timeout = 0;
    g_mutex_unlock(&st->sup->lock);
}

static void stream_stop_and_remove(EvdSupervisor *sup, GPtrArray *list, EvdStream *st)
{
    gchar *when = iso_time(g_get_real_time());
    json_t *ev =
        json_pack("{s:s, s:b, s:s, s:s, s:s}", "stream", st->id, "sender", st->is_sender, "state",
                  "removed", "previous", evd_stream_state_name(st->state), "time", when);

    g_free(when);
    stream_cancel_restart(st);
    stream_teardown(st);
    g_mutex_lock(&sup->lock);
    g_ptr_array_remove(list, st);
    g_mutex_unlock(&sup->lock);
    g_message("%s %s: removed", st->is_sender ? "sender" : "stream", st->id);
    emit(sup, "state", ev);
    stream_free(st);
}

static void stream_reset_for_restart(EvdStream *st)
{
    stream_cancel_restart(st);
    stream_teardown(st);
    st->failures = 0;
}

void evd_supervisor_apply(EvdSupervisor *sup, EvdConfig *config)
{
    EvdConfig *old = sup->config;
    GPtrArray *streams = g_ptr_array_new(), *senders = g_ptr_array_new();
    GPtrArray *to_start = g_ptr_array_new();

    sup->config = config;
    supervisor_load_models(sup);

    /* Remove what is gone. */
    for (guint i = sup->streams->len; i > 0; i--) {
        EvdStream *st = g_ptr_array_index(sup->streams, i - 1);
        gboolean keep = FALSE;
        for (guint j = 0; j < config->streams->len && !keep; j++)
            keep =
                strcmp(((EvdStreamConfig *)g_ptr_array_index(config->streams, j))->id, st->id) == 0;
        if (!keep)
            stream_stop_and_remove(sup, sup->streams, st);
    }
    for (guint i = sup->senders->len; i > 0; i--) {
        EvdStream *st = g_ptr_array_index(sup->senders, i - 1);
        gboolean keep = FALSE;
        for (guint j = 0; j < config->senders->len && !keep; j++)
            keep =
                strcmp(((EvdSenderConfig *)g_ptr_array_index(config->senders, j))->id, st->id) == 0;
        if (!keep)
            stream_stop_and_remove(sup, sup->senders, st);
    }

    /* Add what is new, restart what changed, leave the rest alone. */
    for (guint i = 0; i < config->senders->len; i++) {
        EvdSenderConfig *sc = g_ptr_array_index(config->senders, i);
        EvdStream *st = find_stream(sup->senders, sc->id);
        gchar *fp = evd_sender_config_fingerprint(sc);

        if (!st) {
            st = stream_new(sup, sc->id, TRUE);
            sender_configure(st, sc);
            g_ptr_array_add(to_start, st);
        } else if (strcmp(fp, st->fingerprint) != 0) {
            stream_reset_for_restart(st);
            sender_configure(st, sc);
            g_ptr_array_add(to_start, st);
        }
        g_ptr_array_add(senders, st);
        g_free(fp);
    }
    for (guint i = 0; i < config->streams->len; i++) {
        EvdStreamConfig *sc = g_ptr_array_index(config->streams, i);
        EvdStream *st = find_stream(sup->streams, sc->id);
        gchar *fp = evd_stream_config_fingerprint(sc);

        if (!st) {
            st = stream_new(sup, sc->id, FALSE);
            stream_configure(st, sc);
            if (sc->enabled)
                g_ptr_array_add(to_start, st);
        } else if (strcmp(fp, st->fingerprint) != 0) {
            g_message("stream %s: configuration changed", st->id);
            stream_reset_for_restart(st);
            stream_configure(st, sc);
            if (sc->enabled)
                g_ptr_array_add(to_start, st);
            else
                stream_set_state(st, EVD_STATE_DISABLED, "disabled in the configuration");
        }
        g_ptr_array_add(streams, st);
        g_free(fp);
    }
    g_mutex_lock(&sup->lock);
    g_ptr_array_unref(sup->streams);
    g_ptr_array_unref(sup->senders);
    sup->streams = streams;
    sup->senders = senders;
    g_mutex_unlock(&sup->lock);
    for (guint i = 0; i < to_start->len; i++)
        stream_start(g_ptr_array_index(to_start, i));
    g_ptr_array_unref(to_start);
    evd_config_free(old);
}

void evd_supervisor_free(EvdSupervisor *sup)
{
    if (!sup)
        return;
    g_source_remove(sup->tick_id);
    for (guint i = 0; i < sup->streams->len; i++)
        stream_free(g_ptr_array_index(sup->streams, i));
    for (guint i = 0; i < sup->senders->len; i++)
        stream_free(g_ptr_array_index(sup->senders, i));
    g_ptr_array_unref(sup->streams);
    g_ptr_array_unref(sup->senders);
    if (sup->model_probes)
        g_ptr_array_unref(sup->model_probes);
    if (sup->models)
        g_hash_table_unref(sup->models);
    g_free(sup->model_error);
    evd_config_free(sup->config);
    g_mutex_clear(&sup->lock);
    g_free(sup);
}

/* ---- validation -------------------------------------------------------------------------- */

static gboolean validate_properties(const EvdConfig *config, const gchar *factory_name,
                                    const GPtrArray *properties, const gchar *what, GError **err)
{
    GstElementFactory *factory = gst_element_factory_find(factory_name);
    GObjectClass *klass;
    gboolean ok = TRUE;

    if (!factory) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: GStreamer element %s not found (is GST_PLUGIN_PATH set?)", config->path,
                    factory_name);
        return FALSE;
    }
    factory = GST_ELEMENT_FACTORY(gst_plugin_feature_load(GST_PLUGIN_FEATURE(factory)));
    if (!factory) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: GStreamer element %s cannot be loaded", config->path, factory_name);
        return FALSE;
    }
    klass = g_type_class_ref(gst_element_factory_get_element_type(factory));
    for (guint i = 0; ok && properties && i < properties->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(properties, i);
        GParamSpec *pspec = g_object_class_find_property(klass, prop->name);
        GValue value = G_VALUE_INIT;

        if (!pspec || !(pspec->flags & G_PARAM_WRITABLE)) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "%s:%d:%d: %s has no writable property '%s'", config->path, prop->line,
                        prop->column, what, prop->name);
            ok = FALSE;
            break;
        }
        g_value_init(&value, G_PARAM_SPEC_VALUE_TYPE(pspec));
        if (!gst_value_deserialize_with_pspec(&value, prop->value, pspec) ||
            g_param_value_validate(pspec, &value)) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "%s:%d:%d: bad value '%s' for %s property '%s' (%s)", config->path,
                        prop->line, prop->column, prop->value, what, prop->name,
                        g_param_spec_get_blurb(pspec));
            ok = FALSE;
        }
        g_value_unset(&value);
    }
    g_type_class_unref(klass);
    gst_object_unref(factory);
    return ok;
}

static gboolean validate_description(const EvdConfig *config, const gchar *what, const gchar *id,
                                     gint line, gint column, const gchar *description, GError **err)
{
    GError *perr = NULL;
    GstElement *pipeline =
        gst_parse_launch_full(description, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &perr);

    if (!pipeline) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "%s:%d:%d: %s '%s': %s",
                    config->path, line, column, what, id, perr ? perr->message : "cannot be built");
        g_clear_error(&perr);
        return FALSE;
    }
    g_clear_error(&perr);
    gst_object_unref(pipeline);
    return TRUE;
}

gboolean evd_supervisor_validate(const EvdConfig *config, GError **err)
{
    GHashTable *models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean ok = TRUE;

    for (guint i = 0; ok && i < config->streams->len; i++) {
        EvdStreamConfig *s = g_ptr_array_index(config->streams, i);
        gchar *description;
        const gchar *file;
        const EvdProperty *model;

        ok = validate_properties(config, "echoviewclassify", s->classifier, "echoviewclassify",
                                 err) &&
             (s->source.type != EVD_SOURCE_PHANTOM ||
              validate_properties(config, "echophantomsrc", s->source.properties, "echophantomsrc",
                                  err));
        if (!ok)
            break;
        description = evd_stream_config_describe(s);
        ok = validate_description(config, "stream", s->id, s->line, s->column, description, err);
        g_free(description);
        model = evd_properties_find(s->classifier, "model-file");
        file = model->value;
        if (ok && s->enabled && !g_hash_table_contains(models, file)) {
            GError *merr = NULL;
            GstElement *probe = model_probe_new(s, &merr);
            if (!probe) {
                g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                            "%s:%d:%d: model-file: %s", config->path, model->line, model->column,
                            merr->message);
                g_clear_error(&merr);
                ok = FALSE;
                break;
            }
            model_probe_free(probe);
            g_hash_table_add(models, g_strdup(file));
        }
    }
    for (guint i = 0; ok && i < config->senders->len; i++) {
        EvdSenderConfig *s = g_ptr_array_index(config->senders, i);
        gchar *description;

        ok = validate_properties(config, "echophantomsrc", s->properties, "echophantomsrc", err);
        if (!ok)
            break;
        description = evd_sender_config_describe(s);
        ok = validate_description(config, "simulate", s->id, s->line, s->column, description, err);
        g_free(description);
    }
    g_hash_table_unref(models);
    return ok;
}

/* ---- snapshots --------------------------------------------------------------------------- */

void evd_stream_snapshot_free(EvdStreamSnapshot *snap)
{
    if (!snap)
        return;
    g_free(snap->id);
    g_free(snap->source_type);
    g_free(snap->pipeline);
    g_free(snap->label);
    g_free(snap->stable_label);
    g_free(snap->probabilities);
    g_strfreev(snap->classes);
    g_free(snap->model_name);
    g_free(snap->model_file);
    g_free(snap->backend);
    g_free(snap->last_error);
    g_free(snap);
}

/* Called with the lock held; the latency window is summarised after, without it. */
static EvdStreamSnapshot *snapshot_take(EvdSupervisor *sup, EvdStream *st)
{
    EvdStreamSnapshot *snap = g_new0(EvdStreamSnapshot, 1);
    EvdModelInfo *info =
        sup->models && st->model_file ? g_hash_table_lookup(sup->models, st->model_file) : NULL;

    snap->id = g_strdup(st->id);
    snap->source_type = g_strdup(st->source_type);
    snap->pipeline = g_strdup(st->description);
    snap->enabled = st->enabled;
    snap->is_sender = st->is_sender;
    snap->state = st->state;
    snap->state_since = st->state_since_wall;
    snap->label = g_strdup(st->label);
    snap->label_id = st->label_id;
    snap->confidence = st->confidence;
    snap->stable_label = g_strdup(st->stable_label);
    snap->stable_label_id = st->stable_label_id;
    snap->n_probabilities = st->n_probabilities;
    snap->probabilities = g_memdup2(st->probabilities, sizeof(gdouble) * st->n_probabilities);
    if (info && info->n_classes == st->n_probabilities)
        snap->classes = g_strdupv(info->classes);
    snap->model_name = g_strdup(st->model_name ? st->model_name : info ? info->name : NULL);
    snap->model_file = g_strdup(st->model_file);
    snap->backend = g_strdup(st->backend);
    snap->frames = st->frames_base + st->frames_cur;
    snap->inferred = st->inferred_base + st->inferred_cur;
    snap->skipped = st->skipped_base + st->skipped_cur;
    snap->received = st->received;
    snap->dropped = st->received > st->probe_frames ? st->received - st->probe_frames : 0;
    snap->view_changes = st->view_changes;
    snap->restarts = st->restarts;
    snap->fps = st->state == EVD_STATE_RUNNING ? st->fps : 0;
    /* latency_mean_ms, _p50_ms, _p99_ms and latency_window: from the window copy, unlocked */
    memcpy(snap->latency_buckets, st->latency_buckets, sizeof snap->latency_buckets);
    snap->latency_count = st->latency_count;
    snap->latency_sum_s = st->latency_sum_s;
    snap->has_packets = st->has_jitter;
    snap->packets_pushed = st->pushed_base + st->pushed_cur;
    snap->packets_lost = st->lost_base + st->lost_cur;
    snap->packets_late = st->late_base + st->late_cur;
    snap->packets_duplicates = st->dup_base + st->dup_cur;
    snap->last_error = g_strdup(st->last_error);
    snap->last_error_time = st->last_error_time;
    return snap;
}

GPtrArray *evd_supervisor_snapshot(EvdSupervisor *sup, gboolean senders)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)evd_stream_snapshot_free);

    GPtrArray *windows = g_ptr_array_new_with_free_func(g_free);

    g_mutex_lock(&sup->lock);
    {
        GPtrArray *list = senders ? sup->senders : sup->streams;
        for (guint i = 0; i < list->len; i++) {
            EvdStream *st = g_ptr_array_index(list, i);
            g_ptr_array_add(out, snapshot_take(sup, st));
            g_ptr_array_add(windows, senders ? NULL : g_memdup2(&st->latency, sizeof st->latency));
        }
    }
    g_mutex_unlock(&sup->lock);
    /* the sorts for the percentiles run on the copies, with the streaming threads free */
    for (guint i = 0; !senders && i < out->len; i++) {
        EvdStreamSnapshot *snap = g_ptr_array_index(out, i);
        ev_stats_summary summary;

        ev_stats_window_summarize(g_ptr_array_index(windows, i), &summary);
        snap->latency_window = (guint)summary.n;
        snap->latency_mean_ms = summary.mean;
        snap->latency_p50_ms = summary.p50;
        snap->latency_p99_ms = summary.p99;
    }
    g_ptr_array_unref(windows);
    return out;
}

EvdStreamSnapshot *evd_supervisor_snapshot_one(EvdSupervisor *sup, const gchar *id)
{
    GPtrArray *all = evd_supervisor_snapshot(sup, FALSE);
    EvdStreamSnapshot *found = NULL;

    for (guint i = 0; i < all->len && !found; i++) {
        EvdStreamSnapshot *snap = g_ptr_array_index(all, i);
        if (strcmp(snap->id, id) == 0)
            found = g_ptr_array_steal_index(all, i);
    }
    g_ptr_array_unref(all);
    return found;
}

void evd_supervisor_status(EvdSupervisor *sup, EvdSupervisorStatus *status)
{
    memset(status, 0, sizeof *status);
    g_mutex_lock(&sup->lock);
    status->model_loaded = sup->model_loaded;
    status->model_error = g_strdup(sup->model_error);
    if (sup->streams->len > 0) {
        EvdStream *first = g_ptr_array_index(sup->streams, 0);
        EvdModelInfo *info =
            sup->models ? g_hash_table_lookup(sup->models, first->model_file) : NULL;
        status->model_file = g_strdup(first->model_file);
        status->model_name = g_strdup(info ? info->name : NULL);
        status->backend = g_strdup(first->backend);
    }
    for (guint i = 0; i < sup->streams->len; i++) {
        EvdStream *st = g_ptr_array_index(sup->streams, i);
        status->n_streams++;
        if (st->enabled)
            status->n_enabled++;
        if (st->state == EVD_STATE_RUNNING)
            status->n_running++;
        status->n_state[st->state]++;
    }
    g_mutex_unlock(&sup->lock);
}

void evd_supervisor_status_clear(EvdSupervisorStatus *status)
{
    g_free(status->model_error);
    g_free(status->model_name);
    g_free(status->model_file);
    g_free(status->backend);
}
