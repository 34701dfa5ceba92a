/* gstechoviewclassify.c: echoviewclassify, an in-place GstBaseTransform that labels every frame
 * with one of the model's views. Pixels pass through untouched (the buffer is only mapped for
 * reading); the result goes into an EchoViewMeta and, depending on `updates`, an element
 * message. Frames become network input through ev_preprocess_frame(), exactly like
 * `echoview classify`.
 *
 * Threads: properties and statistics live under the object lock; per-stream state (results,
 * smoothing, hysteresis, ROI) belongs to the streaming thread. With async=true one worker thread
 * runs the network: the streaming thread preprocesses a frame into a small tensor and hands it
 * over through a one-slot mailbox (a newer frame replaces a waiting one), so video never waits
 * for inference. Messages and errors are posted with no lock held.
 */
#include "gstechoviewclassify.h"

#include <gst/video/video.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "echoview.h"
#include "ev_stats.h"
#include "gstechoviewmeta.h"
#include "gstechoviewmodels.h"

GST_DEBUG_CATEGORY_STATIC(gst_echo_view_classify_debug);
#define GST_CAT_DEFAULT gst_echo_view_classify_debug

#define SMOOTHING_MAX 256

#define DEFAULT_BACKEND GST_ECHO_VIEW_BACKEND_AUTO
#define DEFAULT_GPU_ID 0
#define DEFAULT_THREADS 1
#define DEFAULT_ROI "auto"
#define DEFAULT_ROI_INTERVAL 30
#define DEFAULT_INFERENCE_INTERVAL 1
#define DEFAULT_ASYNC FALSE
#define DEFAULT_THRESHOLD 0.0
#define DEFAULT_SMOOTHING 5
#define DEFAULT_HYSTERESIS 3
#define DEFAULT_UPDATES GST_ECHO_VIEW_UPDATES_ON_CHANGE

enum {
    PROP_0,
    PROP_MODEL_FILE,
    PROP_MODEL_INSTANCE_ID,
    PROP_BACKEND,
    PROP_GPU_ID,
    PROP_THREADS,
    PROP_ROI,
    PROP_ROI_INTERVAL,
    PROP_INFERENCE_INTERVAL,
    PROP_ASYNC,
    PROP_CONFIDENCE_THRESHOLD,
    PROP_SMOOTHING,
    PROP_HYSTERESIS,
    PROP_UPDATES,
    PROP_ACTIVE_ROI,
    PROP_MODEL_USERS,
    PROP_MODEL_NAME,
    PROP_CLASSES,
    PROP_FRAMES,
    PROP_INFERRED,
    PROP_SKIPPED,
    PROP_LATENCY_MEAN,
    PROP_LATENCY_P99,
    PROP_PROCESS_MEAN,
    PROP_PROCESS_P99,
    PROP_ENGINE_MEAN,
};

typedef enum {
    ROI_AUTO,
    ROI_FULL,
    ROI_FIXED,
} RoiMode;

/* One inference result as the streaming thread sees it. */
typedef struct {
    gboolean valid;
    guint64 frame; /* frame index (since the last reset) it was computed from */
    GstClockTime latency;
    gint top;
    gfloat probabilities[EV_MAX_CLASSES];
} Result;

struct _GstEchoViewClassify {
    GstBaseTransform parent;

    /* properties, under the object lock */
    gchar *model_file;
    gchar *model_instance_id;
    GstEchoViewBackend backend;
    gint gpu_id;
    gint threads;
    gchar *roi;
    guint roi_interval;
    guint inference_interval;
    gboolean async;
    gdouble threshold;
    guint smoothing;
    guint hysteresis;
    GstEchoViewUpdates updates;

    /* statistics, under the object lock */
    guint64 n_frames, n_inferred, n_skipped;
    /* microseconds: the running mean over every sample, the p99 over the latest 1024 */
    ev_stats_window latency_stat, process_stat, engine_stat;
    gchar active_roi_text[64];
    gboolean latency_posted;
    gint64 warmup_us; /* one inference timed at start(), for the first latency query */

    /* resources, from start() to stop() */
    GstEchoViewModelRef *model_ref;
    const ev_model *model;
    ev_plan *plan;
    const gchar *model_name;                  /* interned; set and cleared under the object lock */
    const gchar *class_names[EV_MAX_CLASSES]; /* interned */
    gint n_classes;                           /* set and cleared under the object lock */
    gsize input_floats;
    gfloat *stage_input; /* streaming thread preprocesses here */
    gfloat *history;     /* SMOOTHING_MAX x n_classes probabilities */
    RoiMode roi_mode;
    ev_rect fixed_roi;
    gboolean running_async; /* async as it was at start() */

    /* negotiated format */
    GstVideoInfo info;
    ev_pixel_format pixel_format;

    /* per-stream state, streaming thread only */
    guint64 frame_index; /* frames since the last reset */
    gboolean roi_valid;
    ev_rect active_roi;
    guint64 roi_frame;
    Result result;
    guint history_count, history_pos;
    gint stable, candidate;
    guint candidate_count;
    guint64 last_result_seq;

    /* async worker; the fields below are under worker_lock */
    GThread *worker;
    GMutex worker_lock;
    GCond worker_cond;
    gboolean worker_stop;
    gfloat *pending_input, *work_input;
    gboolean pending_valid;
    guint64 pending_frame;
    GstClockTime pending_start;
    guint generation; /* bumped on reset: results of older frames are dropped */
    guint pending_generation;
    Result worker_result;
    guint64 worker_result_seq;
    gchar *worker_error;
};

#define FORMATS "{ GRAY8, GRAY16_LE, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12 }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));

G_DEFINE_TYPE(GstEchoViewClassify, gst_echo_view_classify, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(echoviewclassify, "echoviewclassify", GST_RANK_NONE,
                            GST_TYPE_ECHO_VIEW_CLASSIFY);

#define GST_TYPE_ECHO_VIEW_BACKEND (gst_echo_view_backend_get_type())
static GType gst_echo_view_backend_get_type(void)
{
    static GType type = 0;
    static const GEnumValue values[] = {
        {GST_ECHO_VIEW_BACKEND_AUTO, "CUDA when a GPU is usable, else the fast CPU path", "auto"},
        {GST_ECHO_VIEW_BACKEND_CPU, "Fused CPU kernels", "cpu"},
        {GST_ECHO_VIEW_BACKEND_CUDA, "CUDA GPU", "cuda"},
        {GST_ECHO_VIEW_BACKEND_REFERENCE, "Reference implementation (slow, for checking)",
         "reference"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstEchoViewBackend", values));
    return type;
}

#define GST_TYPE_ECHO_VIEW_UPDATES (gst_echo_view_updates_get_type())
static GType gst_echo_view_updates_get_type(void)
{
    static GType type = 0;
    static const GEnumValue values[] = {
        {GST_ECHO_VIEW_UPDATES_EVERY_FRAME, "A message for every frame", "every-frame"},
        {GST_ECHO_VIEW_UPDATES_ON_CHANGE, "A message when the stable label changes", "on-change"},
        {GST_ECHO_VIEW_UPDATES_NONE, "No messages (meta only)", "none"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstEchoViewUpdates", values));
    return type;
}

/* ---- small helpers ------------------------------------------------------------------------ */

static gint64 now_us(void) { return g_get_monotonic_time(); }

/* The read-only timing properties: which statistic of which window each one reports (the
 * definitions are base/ev_stats.h's, the daemon's too). */
static gdouble timing_property_value(GstEchoViewClassify *self, guint prop_id)
{
    static const struct {
        guint prop_id;
        gsize stat_offset;
        gboolean p99;
    } timings[] = {
        {PROP_LATENCY_MEAN, G_STRUCT_OFFSET(GstEchoViewClassify, latency_stat), FALSE},
        {PROP_LATENCY_P99, G_STRUCT_OFFSET(GstEchoViewClassify, latency_stat), TRUE},
        {PROP_PROCESS_MEAN, G_STRUCT_OFFSET(GstEchoViewClassify, process_stat), FALSE},
        {PROP_PROCESS_P99, G_STRUCT_OFFSET(GstEchoViewClassify, process_stat), TRUE},
        {PROP_ENGINE_MEAN, G_STRUCT_OFFSET(GstEchoViewClassify, engine_stat), FALSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(timings); i++)
        if (timings[i].prop_id == prop_id) {
            const ev_stats_window *stat = G_STRUCT_MEMBER_P(self, timings[i].stat_offset);
            return timings[i].p99 ? ev_stats_window_percentile(stat, 99)
                                  : ev_stats_window_mean_all(stat);
        }
    return 0.0;
}

/* "auto", "full" or "x,y,w,h" with w,h > 0 and x,y >= 0. */
static gboolean parse_roi(const gchar *text, RoiMode *mode, ev_rect *rect)
{
    char extra;

    if (!text || !g_ascii_strcasecmp(text, "auto")) {
        *mode = ROI_AUTO;
        return TRUE;
    }
    if (!g_ascii_strcasecmp(text, "full")) {
        *mode = ROI_FULL;
        return TRUE;
    }
    if (sscanf(text, "%d,%d,%d,%d%c", &rect->x, &rect->y, &rect->width, &rect->height, &extra) ==
            4 &&
        rect->x >= 0 && rect->y >= 0 && rect->width > 0 && rect->height > 0) {
        *mode = ROI_FIXED;
        return TRUE;
    }
    return FALSE;
}

static gboolean format_to_pixel(GstVideoFormat format, ev_pixel_format *out)
{
    switch (format) {
    case GST_VIDEO_FORMAT_GRAY8:
        *out = EV_PIXEL_GRAY8;
        return TRUE;
    case GST_VIDEO_FORMAT_GRAY16_LE:
        *out = EV_PIXEL_GRAY16;
        return G_BYTE_ORDER == G_LITTLE_ENDIAN;
    case GST_VIDEO_FORMAT_RGB:
        *out = EV_PIXEL_RGB;
        return TRUE;
    case GST_VIDEO_FORMAT_BGR:
        *out = EV_PIXEL_BGR;
        return TRUE;
    case GST_VIDEO_FORMAT_RGBx:
        *out = EV_PIXEL_RGBX;
        return TRUE;
    case GST_VIDEO_FORMAT_BGRx:
        *out = EV_PIXEL_BGRX;
        return TRUE;
    case GST_VIDEO_FORMAT_xRGB:
        *out = EV_PIXEL_XRGB;
        return TRUE;
    case GST_VIDEO_FORMAT_xBGR:
        *out = EV_PIXEL_XBGR;
        return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
        *out = EV_PIXEL_RGBA;
        return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
        *out = EV_PIXEL_BGRA;
        return TRUE;
    case GST_VIDEO_FORMAT_I420:
        *out = EV_PIXEL_I420;
        return TRUE;
    case GST_VIDEO_FORMAT_NV12:
        *out = EV_PIXEL_NV12;
        return TRUE;
    default:
        return FALSE;
    }
}

static gint argmax(const gfloat *p, gint n)
{
    gint best = 0;
    for (gint i = 1; i < n; i++)
        if (p[i] > p[best])
            best = i;
    return best;
}

static const gchar *label_name(GstEchoViewClassify *self, gint id)
{
    return id >= 0 ? self->class_names[id] : g_intern_static_string(GST_ECHO_VIEW_LABEL_UNKNOWN);
}

/* ---- per-stream state ---------------------------------------------------------------------- */

static void stream_reset(GstEchoViewClassify *self)
{
    GST_DEBUG_OBJECT(self, "resetting per-stream state");
    self->frame_index = 0;
    self->roi_valid = FALSE;
    self->result.valid = FALSE;
    self->history_count = self->history_pos = 0;
    self->stable = self->candidate = -1;
    self->candidate_count = 0;
    g_mutex_lock(&self->worker_lock);
    self->generation++;
    self->pending_valid = FALSE;
    self->last_result_seq = self->worker_result_seq;
    g_mutex_unlock(&self->worker_lock);
}

/* Feeds a new result into smoothing and hysteresis; returns TRUE when the stable label changed.
 * The smoothed distribution is the mean of the last `smoothing` results; its top class (or
 * unknown, below the threshold) becomes a candidate, and the candidate replaces the stable
 * label once it has led for `hysteresis` consecutive results. */
static gboolean stream_update_stable(GstEchoViewClassify *self, guint smoothing, guint hysteresis,
                                     gdouble threshold)
{
    const gint k = self->n_classes;
    gfloat mean[EV_MAX_CLASSES] = {0};
    guint n, i;
    gint cand;

    memcpy(self->history + (gsize)self->history_pos * k, self->result.probabilities,
           k * sizeof(gfloat));
    self->history_pos = (self->history_pos + 1) % SMOOTHING_MAX;
    if (self->history_count < SMOOTHING_MAX)
        self->history_count++;
    n = MIN(smoothing, self->history_count);
    for (i = 0; i < n; i++) {
        const gfloat *p = self->history +
                          (gsize)((self->history_pos + SMOOTHING_MAX - 1 - i) % SMOOTHING_MAX) * k;
        for (gint c = 0; c < k; c++)
            mean[c] += p[c];
    }
    cand = argmax(mean, k);
    if (mean[cand] / n < threshold)
        cand = -1;
    if (cand == self->stable) {
        self->candidate_count = 0;
        return FALSE;
    }
    if (cand == self->candidate) {
        self->candidate_count++;
    } else {
        self->candidate = cand;
        self->candidate_count = 1;
    }
    if (self->candidate_count < hysteresis)
        return FALSE;
    self->stable = cand;
    self->candidate_count = 0;
    return TRUE;
}

/* ---- async worker -------------------------------------------------------------------------- */

static gpointer worker_main(gpointer data)
{
    GstEchoViewClassify *self = data;
    gfloat logits[EV_MAX_CLASSES];
    Result r;
    ev_error err = {0};

    g_mutex_lock(&self->worker_lock);
    for (;;) {
        guint generation;
        gfloat *swap;
        gint64 t0;

        while (!self->worker_stop && !self->pending_valid)
            g_cond_wait(&self->worker_cond, &self->worker_lock);
        if (self->worker_stop)
            break;
        swap = self->work_input;
        self->work_input = self->pending_input;
        self->pending_input = swap;
        self->pending_valid = FALSE;
        generation = self->pending_generation;
        r.frame = self->pending_frame;
        r.latency = self->pending_start; /* start time for now */
        g_mutex_unlock(&self->worker_lock);

        t0 = now_us();
        if (ev_plan_run(self->plan, self->work_input, logits, &err) != EV_OK) {
            g_mutex_lock(&self->worker_lock);
            if (!self->worker_error)
                self->worker_error = g_strdup(err.message);
            continue;
        }
        ev_softmax(logits, r.probabilities, self->n_classes);
        r.top = argmax(r.probabilities, self->n_classes);
        r.valid = TRUE;
        {
            gint64 t1 = now_us();
            r.latency = (GstClockTime)(t1 - (gint64)r.latency) * GST_USECOND;
            GST_OBJECT_LOCK(self);
            ev_stats_window_add(&self->engine_stat, (gdouble)(t1 - t0));
            ev_stats_window_add(&self->latency_stat, (gdouble)r.latency / GST_USECOND);
            self->n_inferred++;
            GST_OBJECT_UNLOCK(self);
        }

        g_mutex_lock(&self->worker_lock);
        if (generation == self->generation) {
            self->worker_result = r;
            self->worker_result_seq++;
        }
    }
    g_mutex_unlock(&self->worker_lock);
    return NULL;
}

/* ---- start / stop -------------------------------------------------------------------------- */

static void post_model_error(GstEchoViewClassify *self, const gchar *path, const ev_error *err)
{
    if (err->code == EV_ERR_IO && !g_file_test(path, G_FILE_TEST_EXISTS))
        GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Model '%s' not found.", path),
                          ("%s", err->message));
    else if (err->code == EV_ERR_IO)
        GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not read model '%s'.", path),
                          ("%s", err->message));
    else if (err->code == EV_ERR_INVALID && strstr(err->message, "model-instance-id"))
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Conflicting model-instance-id."),
                          ("%s", err->message));
    else
        GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Model '%s' is invalid.", path),
                          ("%s", err->message));
}

static gboolean gst_echo_view_classify_stop(GstBaseTransform *trans);

static gboolean gst_echo_view_classify_start(GstBaseTransform *trans)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    gchar *model_file, *instance_id, *roi;
    ev_plan_options options = {0};
    ev_error err = {0};
    gboolean ok = FALSE;
    gint w, h, c, n_classes;

    GST_OBJECT_LOCK(self);
    model_file = g_strdup(self->model_file);
    instance_id = g_strdup(self->model_instance_id);
    roi = g_strdup(self->roi);
    options.backend = self->backend == GST_ECHO_VIEW_BACKEND_CPU         ? EV_BACKEND_CPU
                      : self->backend == GST_ECHO_VIEW_BACKEND_CUDA      ? EV_BACKEND_CUDA
                      : self->backend == GST_ECHO_VIEW_BACKEND_REFERENCE ? EV_BACKEND_REFERENCE
                                                                         : EV_BACKEND_AUTO;
    options.batch = 1;
    options.threads = self->threads;
    options.gpu_id = self->gpu_id;
    self->running_async = self->async;
    self->latency_posted = FALSE;
    GST_OBJECT_UNLOCK(self);

    if (!parse_roi(roi, &self->roi_mode, &self->fixed_roi)) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid roi '%s'.", roi),
                          ("roi must be \"auto\", \"full\" or \"x,y,width,height\" in pixels"));
        goto out;
    }
    if (!model_file || !*model_file) {
        GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("No model-file set."),
                          ("set model-file to a model bundle folder or its model.yaml"));
        goto out;
    }
    if (options.backend != EV_BACKEND_AUTO && !ev_backend_available(options.backend)) {
        GST_ELEMENT_ERROR(self, LIBRARY, INIT,
                          ("Backend '%s' is not available.", ev_backend_name(options.backend)),
                          ("this build or machine cannot run the %s backend; use backend=auto",
                           ev_backend_name(options.backend)));
        goto out;
    }
    self->model_ref = gst_echo_view_models_acquire(instance_id, model_file, &err);
    if (!self->model_ref) {
        post_model_error(self, model_file, &err);
        goto out;
    }
    self->model = gst_echo_view_model_ref_model(self->model_ref);
    n_classes = ev_model_num_classes(self->model);
    ev_model_input_shape(self->model, &w, &h, &c);
    if (n_classes < 1 || n_classes > EV_MAX_CLASSES || w < 1 || h < 1 || (c != 1 && c != 3)) {
        GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Model '%s' is invalid.", model_file),
                          ("%d classes, input %dx%dx%d", n_classes, w, h, c));
        goto out;
    }
    if (ev_plan_create(self->model, &options, &self->plan, &err) != EV_OK) {
        GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Could not prepare the model for inference."),
                          ("%s", err.message));
        goto out;
    }
    GST_OBJECT_LOCK(self); /* the model-name and classes properties read them */
    self->n_classes = n_classes;
    self->model_name = g_intern_string(ev_model_name(self->model));
    for (gint i = 0; i < self->n_classes; i++)
        self->class_names[i] = g_intern_string(ev_model_class_name(self->model, i));
    GST_OBJECT_UNLOCK(self);
    self->input_floats = (gsize)w * h * c;
    self->stage_input = g_new0(gfloat, self->input_floats);
    self->pending_input = g_new0(gfloat, self->input_floats);
    self->work_input = g_new0(gfloat, self->input_floats);
    self->history = g_new0(gfloat, (gsize)SMOOTHING_MAX * self->n_classes);
    GST_INFO_OBJECT(self, "model %s (%d classes, %dx%dx%d) on %s", self->model_name,
                    self->n_classes, w, h, c, ev_backend_name(ev_plan_backend(self->plan)));

    {
        /* One run on a blank input: touches every page of the plan before the first frame and
     * gives the latency query a number before any frame was measured. */
        gfloat logits[EV_MAX_CLASSES];
        gint64 t0 = now_us();
        if (ev_plan_run(self->plan, self->stage_input, logits, &err) != EV_OK) {
            GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("The model does not run."),
                              ("%s", err.message));
            goto out;
        }
        GST_OBJECT_LOCK(self);
        self->warmup_us = now_us() - t0;
        GST_OBJECT_UNLOCK(self);
    }
    self->worker_stop = FALSE;
    self->worker_error = NULL;
    stream_reset(self);
    if (self->running_async) {
        self->worker = g_thread_new("echoviewclassify", worker_main, self);
    }
    ok = TRUE;
out:
    if (!ok)
        gst_echo_view_classify_stop(trans); /* base class does not call stop() then */
    g_free(model_file);
    g_free(instance_id);
    g_free(roi);
    return ok;
}

static gboolean gst_echo_view_classify_stop(GstBaseTransform *trans)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);

    if (self->worker) {
        g_mutex_lock(&self->worker_lock);
        self->worker_stop = TRUE;
        g_cond_signal(&self->worker_cond);
        g_mutex_unlock(&self->worker_lock);
        g_thread_join(self->worker);
        self->worker = NULL;
    }
    g_clear_pointer(&self->worker_error, g_free);
    g_clear_pointer(&self->plan, ev_plan_free);
    GST_OBJECT_LOCK(self);
    self->model_name = NULL;
    self->n_classes = 0;
    GST_OBJECT_UNLOCK(self);
    gst_echo_view_models_release(self->model_ref);
    self->model_ref = NULL;
    self->model = NULL;
    g_clear_pointer(&self->stage_input, g_free);
    g_clear_pointer(&self->pending_input, g_free);
    g_clear_pointer(&self->work_input, g_free);
    g_clear_pointer(&self->history, g_free);
    return TRUE;
}

static gboolean gst_echo_view_classify_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                                GstCaps *outcaps)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    GstVideoInfo info;

    if (!gst_video_info_from_caps(&info, incaps) ||
        !format_to_pixel(GST_VIDEO_INFO_FORMAT(&info), &self->pixel_format)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Unsupported video format."),
                          ("caps %" GST_PTR_FORMAT, incaps));
        return FALSE;
    }
    if (self->roi_mode == ROI_FIXED &&
        (self->fixed_roi.x > GST_VIDEO_INFO_WIDTH(&info) - self->fixed_roi.width ||
         self->fixed_roi.y > GST_VIDEO_INFO_HEIGHT(&info) - self->fixed_roi.height)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("The roi does not fit the video frame."),
                          ("roi %dx%d at (%d,%d) is not inside the %dx%d frame",
                           self->fixed_roi.width, self->fixed_roi.height, self->fixed_roi.x,
                           self->fixed_roi.y, GST_VIDEO_INFO_WIDTH(&info),
                           GST_VIDEO_INFO_HEIGHT(&info)));
        return FALSE;
    }
    self->info = info;
    self->roi_valid = FALSE; /* a new geometry needs a new detection */
    GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, incaps);
    return TRUE;
}

static gboolean gst_echo_view_classify_sink_event(GstBaseTransform *trans, GstEvent *event)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);

    switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
        if (self->model)
            stream_reset(self);
        break;
    default:
        break;
    }
    return GST_BASE_TRANSFORM_CLASS(gst_echo_view_classify_parent_class)->sink_event(trans, event);
}

static gboolean gst_echo_view_classify_query(GstBaseTransform *trans, GstPadDirection direction,
                                             GstQuery *query)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);

    if (direction == GST_PAD_SRC && GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
        gboolean live;
        GstClockTime min, max, ours;

        if (!gst_pad_peer_query(GST_BASE_TRANSFORM_SINK_PAD(trans), query))
            return FALSE;
        gst_query_parse_latency(query, &live, &min, &max);
        /* What video waits for in this element: preprocessing and (sync mode) inference. The p99
     * of what was measured, or the engine time measured at start() before any frame. */
        GST_OBJECT_LOCK(self);
        ours = (GstClockTime)(ev_stats_window_percentile(&self->process_stat, 99) * GST_USECOND);
        if (!self->process_stat.count && !self->running_async)
            ours = (GstClockTime)self->warmup_us * GST_USECOND;
        GST_OBJECT_UNLOCK(self);
        GST_DEBUG_OBJECT(self, "adding latency %" GST_TIME_FORMAT, GST_TIME_ARGS(ours));
        min += ours;
        if (GST_CLOCK_TIME_IS_VALID(max))
            max += ours;
        gst_query_set_latency(query, live, min, max);
        return TRUE;
    }
    return GST_BASE_TRANSFORM_CLASS(gst_echo_view_classify_parent_class)
        ->query(trans, direction, query);
}

/* ---- the frame path ------------------------------------------------------------------------ */

static void update_roi(GstEchoViewClassify *self, const ev_frame *frame, guint roi_interval)
{
    ev_rect found;
    gchar text[64];

    switch (self->roi_mode) {
    case ROI_FULL:
        self->active_roi = (ev_rect){0, 0, frame->width, frame->height};
        break;
    case ROI_FIXED:
        self->active_roi = self->fixed_roi;
        break;
    case ROI_AUTO:
        if (self->roi_valid &&
            (roi_interval == 0 || self->frame_index - self->roi_frame < roi_interval))
            return;
        if (ev_detect_roi(frame, &found) == EV_OK) {
            self->active_roi = found;
        } else if (!self->roi_valid) {
            GST_DEBUG_OBJECT(self, "no ultrasound region found, using the whole frame");
            self->active_roi = (ev_rect){0, 0, frame->width, frame->height};
        }
        self->roi_frame = self->frame_index;
        break;
    }
    self->roi_valid = TRUE;
    g_snprintf(text, sizeof text, "%d,%d,%d,%d", self->active_roi.x, self->active_roi.y,
               self->active_roi.width, self->active_roi.height);
    GST_OBJECT_LOCK(self);
    g_strlcpy(self->active_roi_text, text, sizeof self->active_roi_text);
    GST_OBJECT_UNLOCK(self);
}

static GstMessage *build_message(GstEchoViewClassify *self, GstBuffer *buf,
                                 const GstEchoViewMeta *meta, gint previous_stable)
{
    GstBaseTransform *trans = GST_BASE_TRANSFORM(self);
    GstSegment *segment = &trans->segment;
    GstClockTime ts = GST_BUFFER_PTS(buf), stream_time = GST_CLOCK_TIME_NONE,
                 running_time = GST_CLOCK_TIME_NONE;
    GValue array = G_VALUE_INIT, v = G_VALUE_INIT;
    GstStructure *s;

    if (GST_CLOCK_TIME_IS_VALID(ts) && segment->format == GST_FORMAT_TIME) {
        stream_time = gst_segment_to_stream_time(segment, GST_FORMAT_TIME, ts);
        running_time = gst_segment_to_running_time(segment, GST_FORMAT_TIME, ts);
    }
    g_value_init(&array, GST_TYPE_ARRAY);
    g_value_init(&v, G_TYPE_DOUBLE);
    for (guint i = 0; i < meta->n_probabilities; i++) {
        g_value_set_double(&v, meta->probabilities[i]);
        gst_value_array_append_value(&array, &v);
    }
    g_value_unset(&v);
    s = gst_structure_new(
        "echoviewclassify", "timestamp", G_TYPE_UINT64, ts, "stream-time", G_TYPE_UINT64,
        stream_time, "running-time", G_TYPE_UINT64, running_time, "duration", G_TYPE_UINT64,
        GST_BUFFER_DURATION(buf), "label", G_TYPE_STRING, meta->label, "label-id", G_TYPE_INT,
        meta->label_id, "confidence", G_TYPE_DOUBLE, (gdouble)meta->confidence, "stable-label",
        G_TYPE_STRING, meta->stable_label, "stable-label-id", G_TYPE_INT, meta->stable_label_id,
        "previous-label", G_TYPE_STRING, label_name(self, previous_stable), "inferred",
        G_TYPE_BOOLEAN, meta->inferred, "age", G_TYPE_UINT64, meta->age, "latency", G_TYPE_UINT64,
        meta->latency, "model", G_TYPE_STRING, meta->model_name, NULL);
    gst_structure_take_value(s, "probabilities", &array);
    if (meta->ground_truth_id >= 0)
        gst_structure_set(s, "ground-truth", G_TYPE_STRING, meta->ground_truth, NULL);
    return gst_message_new_element(GST_OBJECT(self), s);
}

static GstFlowReturn gst_echo_view_classify_transform_ip(GstBaseTransform *trans, GstBuffer *buf)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    gint64 t_start = now_us(), t_engine = -1;
    guint interval, roi_interval, smoothing, hysteresis;
    gdouble threshold;
    GstEchoViewUpdates updates;
    GstVideoFrame vframe;
    ev_frame frame;
    ev_error err = {0};
    gboolean infer, have_new = FALSE, stable_changed = FALSE, post_latency = FALSE;
    gint previous_stable;
    GstEchoViewMeta *meta;
    GstMessage *message = NULL;
    gchar *worker_error = NULL;
    guint64 skipped = 0;

    GST_OBJECT_LOCK(self);
    interval = self->inference_interval;
    roi_interval = self->roi_interval;
    smoothing = self->smoothing;
    hysteresis = self->hysteresis;
    threshold = self->threshold;
    updates = self->updates;
    GST_OBJECT_UNLOCK(self);

    if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT) && self->frame_index > 0)
        stream_reset(self);

    infer = self->frame_index % interval == 0;
    if (infer || (self->roi_mode == ROI_AUTO && !self->roi_valid)) {
        if (!gst_video_frame_map(&vframe, &self->info, buf, GST_MAP_READ)) {
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not map the video frame."), (NULL));
            return GST_FLOW_ERROR;
        }
        frame.data = GST_VIDEO_FRAME_PLANE_DATA(&vframe, 0);
        frame.stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vframe, 0);
        frame.width = GST_VIDEO_FRAME_WIDTH(&vframe);
        frame.height = GST_VIDEO_FRAME_HEIGHT(&vframe);
        frame.format = self->pixel_format;
        update_roi(self, &frame, roi_interval);
        if (infer && ev_preprocess_frame(self->model, &frame, &self->active_roi, self->stage_input,
                                         &err) != EV_OK) {
            gst_video_frame_unmap(&vframe);
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not preprocess the frame."),
                              ("%s", err.message));
            return GST_FLOW_ERROR;
        }
        gst_video_frame_unmap(&vframe);
    }

    if (infer && !self->running_async) {
        gfloat logits[EV_MAX_CLASSES];
        gint64 t0 = now_us();
        if (ev_plan_run(self->plan, self->stage_input, logits, &err) != EV_OK) {
            GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("Inference failed."), ("%s", err.message));
            return GST_FLOW_ERROR;
        }
        t_engine = now_us() - t0;
        ev_softmax(logits, self->result.probabilities, self->n_classes);
        self->result.top = argmax(self->result.probabilities, self->n_classes);
        self->result.frame = self->frame_index;
        self->result.latency = (GstClockTime)(now_us() - t_start) * GST_USECOND;
        self->result.valid = TRUE;
        have_new = TRUE;
    } else if (self->running_async) {
        g_mutex_lock(&self->worker_lock);
        if (infer) {
            gfloat *swap = self->pending_input;
            if (self->pending_valid)
                skipped = 1; /* the worker never got to the frame waiting there */
            self->pending_input = self->stage_input;
            self->stage_input = swap;
            self->pending_valid = TRUE;
            self->pending_frame = self->frame_index;
            self->pending_start = (GstClockTime)t_start;
            self->pending_generation = self->generation;
            g_cond_signal(&self->worker_cond);
        }
        if (self->worker_result_seq != self->last_result_seq) {
            self->last_result_seq = self->worker_result_seq;
            self->result = self->worker_result;
            have_new = TRUE;
        }
        worker_error = g_steal_pointer(&self->worker_error);
        g_mutex_unlock(&self->worker_lock);
        if (worker_error) {
            GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("Inference failed."), ("%s", worker_error));
            g_free(worker_error);
            return GST_FLOW_ERROR;
        }
    }

    previous_stable = self->stable;
    if (have_new)
        stable_changed = stream_update_stable(self, smoothing, hysteresis, threshold);

    meta = gst_buffer_ensure_echo_view_meta(buf);
    meta->model_name = self->model_name;
    meta->stable_label_id = self->stable;
    meta->stable_label = label_name(self, self->stable);
    if (self->result.valid) {
        const gint top = self->result.top;
        const gfloat confidence = self->result.probabilities[top];
        meta->label_id = confidence >= threshold ? top : -1;
        meta->label = label_name(self, meta->label_id);
        meta->confidence = confidence;
        gst_echo_view_meta_set_probabilities(meta, self->result.probabilities, self->n_classes);
        meta->age = self->frame_index - self->result.frame;
        meta->inferred = meta->age == 0;
        meta->latency = self->result.latency;
    } else {
        meta->label_id = -1;
        meta->label = label_name(self, -1);
        meta->confidence = 0.0f;
        gst_echo_view_meta_set_probabilities(meta, NULL, 0);
        meta->age = 0;
        meta->inferred = FALSE;
        meta->latency = GST_CLOCK_TIME_NONE;
    }

    if (updates == GST_ECHO_VIEW_UPDATES_EVERY_FRAME ||
        (updates == GST_ECHO_VIEW_UPDATES_ON_CHANGE && stable_changed))
        message = build_message(self, buf, meta, previous_stable);

    self->frame_index++;
    GST_OBJECT_LOCK(self);
    self->n_frames++;
    self->n_skipped += skipped;
    if (t_engine >= 0) {
        self->n_inferred++;
        ev_stats_window_add(&self->engine_stat, (gdouble)t_engine);
        ev_stats_window_add(&self->latency_stat, (gdouble)self->result.latency / GST_USECOND);
    }
    ev_stats_window_add(&self->process_stat, (gdouble)(now_us() - t_start));
    /* Once the first frames are measured, tell the pipeline to ask for latency again. */
    if (!self->latency_posted && self->process_stat.count == 10) {
        self->latency_posted = TRUE;
        post_latency = TRUE;
    }
    GST_OBJECT_UNLOCK(self);

    if (message)
        gst_element_post_message(GST_ELEMENT(self), message);
    if (post_latency)
        gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
    return GST_FLOW_OK;
}

/* ---- properties ---------------------------------------------------------------------------- */

static void gst_echo_view_classify_set_property(GObject *object, guint prop_id, const GValue *value,
                                                GParamSpec *pspec)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_MODEL_FILE:
        g_free(self->model_file);
        self->model_file = g_value_dup_string(value);
        break;
    case PROP_MODEL_INSTANCE_ID:
        g_free(self->model_instance_id);
        self->model_instance_id = g_value_dup_string(value);
        break;
    case PROP_BACKEND:
        self->backend = g_value_get_enum(value);
        break;
    case PROP_GPU_ID:
        self->gpu_id = g_value_get_int(value);
        break;
    case PROP_THREADS:
        self->threads = g_value_get_int(value);
        break;
    case PROP_ROI:
        g_free(self->roi);
        self->roi = g_value_dup_string(value);
        break;
    case PROP_ROI_INTERVAL:
        self->roi_interval = g_value_get_uint(value);
        break;
    case PROP_INFERENCE_INTERVAL:
        self->inference_interval = g_value_get_uint(value);
        break;
    case PROP_ASYNC:
        self->async = g_value_get_boolean(value);
        break;
    case PROP_CONFIDENCE_THRESHOLD:
        self->threshold = g_value_get_double(value);
        break;
    case PROP_SMOOTHING:
        self->smoothing = g_value_get_uint(value);
        break;
    case PROP_HYSTERESIS:
        self->hysteresis = g_value_get_uint(value);
        break;
    case PROP_UPDATES:
        self->updates = g_value_get_enum(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_echo_view_classify_get_property(GObject *object, guint prop_id, GValue *value,
                                                GParamSpec *pspec)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(object);
    const gchar *instance_id;
    guint users = 0;

    if (prop_id == PROP_MODEL_USERS) {
        /* the registry has its own lock; never take it under the object lock */
        gchar *id;
        gboolean loaded;
        GST_OBJECT_LOCK(self);
        id = g_strdup(self->model_instance_id);
        loaded = self->model_ref != NULL;
        GST_OBJECT_UNLOCK(self);
        instance_id = id;
        users =
            instance_id && *instance_id ? gst_echo_view_models_count(instance_id) : (guint)loaded;
        g_free(id);
        g_value_set_uint(value, users);
        return;
    }

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_MODEL_FILE:
        g_value_set_string(value, self->model_file);
        break;
    case PROP_MODEL_INSTANCE_ID:
        g_value_set_string(value, self->model_instance_id);
        break;
    case PROP_BACKEND:
        g_value_set_enum(value, self->backend);
        break;
    case PROP_GPU_ID:
        g_value_set_int(value, self->gpu_id);
        break;
    case PROP_THREADS:
        g_value_set_int(value, self->threads);
        break;
    case PROP_ROI:
        g_value_set_string(value, self->roi);
        break;
    case PROP_ROI_INTERVAL:
        g_value_set_uint(value, self->roi_interval);
        break;
    case PROP_INFERENCE_INTERVAL:
        g_value_set_uint(value, self->inference_interval);
        break;
    case PROP_ASYNC:
        g_value_set_boolean(value, self->async);
        break;
    case PROP_CONFIDENCE_THRESHOLD:
        g_value_set_double(value, self->threshold);
        break;
    case PROP_SMOOTHING:
        g_value_set_uint(value, self->smoothing);
        break;
    case PROP_HYSTERESIS:
        g_value_set_uint(value, self->hysteresis);
        break;
    case PROP_UPDATES:
        g_value_set_enum(value, self->updates);
        break;
    case PROP_ACTIVE_ROI:
        g_value_set_string(value, self->active_roi_text[0] ? self->active_roi_text : NULL);
        break;
    case PROP_MODEL_NAME:
        g_value_set_string(value, self->model_name);
        break;
    case PROP_CLASSES:
        if (self->n_classes > 0) {
            gchar **classes = g_new0(gchar *, self->n_classes + 1);
            for (gint i = 0; i < self->n_classes; i++)
                classes[i] = g_strdup(self->class_names[i]);
            g_value_take_boxed(value, classes);
        } else {
            g_value_set_boxed(value, NULL);
        }
        break;
    case PROP_FRAMES:
        g_value_set_uint64(value, self->n_frames);
        break;
    case PROP_INFERRED:
        g_value_set_uint64(value, self->n_inferred);
        break;
    case PROP_SKIPPED:
        g_value_set_uint64(value, self->n_skipped);
        break;
    case PROP_LATENCY_MEAN:
    case PROP_LATENCY_P99:
    case PROP_PROCESS_MEAN:
    case PROP_PROCESS_P99:
    case PROP_ENGINE_MEAN:
        g_value_set_double(value, timing_property_value(self, prop_id));
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_echo_view_classify_finalize(GObject *object)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(object);

    g_free(self->model_file);
    g_free(self->model_instance_id);
    g_free(self->roi);
    g_mutex_clear(&self->worker_lock);
    g_cond_clear(&self->worker_cond);
    G_OBJECT_CLASS(gst_echo_view_classify_parent_class)->finalize(object);
}

static void gst_echo_view_classify_init(GstEchoViewClassify *self)
{
    self->backend = DEFAULT_BACKEND;
    self->gpu_id = DEFAULT_GPU_ID;
    self->threads = DEFAULT_THREADS;
    self->roi = g_strdup(DEFAULT_ROI);
    self->roi_interval = DEFAULT_ROI_INTERVAL;
    self->inference_interval = DEFAULT_INFERENCE_INTERVAL;
    self->async = DEFAULT_ASYNC;
    self->threshold = DEFAULT_THRESHOLD;
    self->smoothing = DEFAULT_SMOOTHING;
    self->hysteresis = DEFAULT_HYSTERESIS;
    self->updates = DEFAULT_UPDATES;
    self->stable = self->candidate = -1;
    g_mutex_init(&self->worker_lock);
    g_cond_init(&self->worker_cond);
    /* In place, never passthrough: the buffer is made writable (a shallow copy: the memory is
   * shared, not duplicated) so the meta can be attached; pixels are only mapped for reading. */
    gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
    gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}

static void gst_echo_view_classify_class_init(GstEchoViewClassifyClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
    const GParamFlags rw_ready = rw | GST_PARAM_MUTABLE_READY;
    const GParamFlags rw_playing = rw | GST_PARAM_MUTABLE_PLAYING;
    const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

    GST_DEBUG_CATEGORY_INIT(gst_echo_view_classify_debug, "echoviewclassify", 0,
                            "echocardiography view classifier");

    gobject_class->set_property = gst_echo_view_classify_set_property;
    gobject_class->get_property = gst_echo_view_classify_get_property;
    gobject_class->finalize = gst_echo_view_classify_finalize;

    g_object_class_install_property(
        gobject_class, PROP_MODEL_FILE,
        g_param_spec_string("model-file", "Model file",
                            "Model bundle folder or its model.yaml; read when the element starts "
                            "(required, default: none)",
                            NULL, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_MODEL_INSTANCE_ID,
        g_param_spec_string(
            "model-instance-id", "Model instance id",
            "Elements with the same id share one loaded model (weights loaded once per process; "
            "each element keeps its own plan); empty: this element loads its own (default: none)",
            NULL, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_BACKEND,
        g_param_spec_enum(
            "backend", "Backend",
            "Inference backend; an explicit backend that is not available fails the start "
            "(default: auto)",
            GST_TYPE_ECHO_VIEW_BACKEND, DEFAULT_BACKEND, rw_ready));
    g_object_class_install_property(gobject_class, PROP_GPU_ID,
                                    g_param_spec_int("gpu-id", "GPU id",
                                                     "CUDA device ordinal for the cuda backend "
                                                     "(default: 0)",
                                                     0, 63, DEFAULT_GPU_ID, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_THREADS,
        g_param_spec_int("threads", "Threads",
                         "Worker threads of the cpu backend, per element "
                         "(default: 1)",
                         1, 256, DEFAULT_THREADS, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_ROI,
        g_param_spec_string(
            "roi", "Region of interest",
            "Ultrasound region to classify: \"x,y,width,height\" in pixels, \"full\" (the whole "
            "frame) or \"auto\" (detect the sector after every reset and every roi-interval "
            "frames) (default: auto)",
            DEFAULT_ROI, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_ROI_INTERVAL,
        g_param_spec_uint(
            "roi-interval", "ROI interval",
            "With roi=auto, detect the sector again every this many frames; 0: only after a "
            "reset (frames, default: 30)",
            0, G_MAXUINT, DEFAULT_ROI_INTERVAL, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_INFERENCE_INTERVAL,
        g_param_spec_uint(
            "inference-interval", "Inference interval",
            "Infer every this many frames; frames in between carry the last result and its age "
            "(frames, 1 = every frame, default: 1)",
            1, 100000, DEFAULT_INFERENCE_INTERVAL, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_ASYNC,
        g_param_spec_boolean(
            "async", "Asynchronous",
            "Infer on a worker thread: the newest frame waiting wins, video never waits for the "
            "network and frames carry the newest result with its age (default: false)",
            DEFAULT_ASYNC, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_CONFIDENCE_THRESHOLD,
        g_param_spec_double(
            "confidence-threshold", "Confidence threshold",
            "Below this top-class probability the label is \"unknown\" (probability 0..1, "
            "default: 0)",
            0.0, 1.0, DEFAULT_THRESHOLD, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_SMOOTHING,
        g_param_spec_uint(
            "smoothing", "Smoothing",
            "The stable label uses the mean probabilities of this many latest inferences "
            "(inferences, 1 = no smoothing, default: 5)",
            1, SMOOTHING_MAX, DEFAULT_SMOOTHING, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_HYSTERESIS,
        g_param_spec_uint(
            "hysteresis", "Hysteresis",
            "The stable label switches only when a new smoothed label leads for this many "
            "consecutive inferences (inferences, 1 = at once, default: 3)",
            1, 100000, DEFAULT_HYSTERESIS, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_UPDATES,
        g_param_spec_enum("updates", "Updates",
                          "When to post \"echoviewclassify\" element messages (default: on-change)",
                          GST_TYPE_ECHO_VIEW_UPDATES, DEFAULT_UPDATES, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_ACTIVE_ROI,
        g_param_spec_string(
            "active-roi", "Active ROI",
            "The region in use, \"x,y,width,height\" in pixels (read-only, NULL before the first "
            "frame)",
            NULL, ro));
    g_object_class_install_property(
        gobject_class, PROP_MODEL_USERS,
        g_param_spec_uint(
            "model-users", "Model users",
            "Elements sharing this element's loaded model (read-only, 0 when not started)", 0,
            G_MAXUINT, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_MODEL_NAME,
        g_param_spec_string("model-name", "Model name",
                            "Name of the loaded model (model.yaml `name`; read-only, NULL when "
                            "not started)",
                            NULL, ro));
    g_object_class_install_property(
        gobject_class, PROP_CLASSES,
        g_param_spec_boxed("classes", "Classes",
                           "Class names of the loaded model in the order of the probabilities "
                           "(read-only, NULL when not started)",
                           G_TYPE_STRV, ro));
    g_object_class_install_property(gobject_class, PROP_FRAMES,
                                    g_param_spec_uint64("frames", "Frames",
                                                        "Frames processed since the element was "
                                                        "created (read-only)",
                                                        0, G_MAXUINT64, 0, ro));
    g_object_class_install_property(gobject_class, PROP_INFERRED,
                                    g_param_spec_uint64("inferred", "Inferred",
                                                        "Inferences completed since the element "
                                                        "was created (read-only)",
                                                        0, G_MAXUINT64, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_SKIPPED,
        g_param_spec_uint64(
            "skipped", "Skipped",
            "Scheduled inferences dropped because a "
            "newer frame replaced one still waiting for the async worker; always 0 in sync "
            "mode (read-only)",
            0, G_MAXUINT64, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_LATENCY_MEAN,
        g_param_spec_double(
            "latency-mean", "Latency mean",
            "Mean time from a frame entering "
            "the element to its result (preprocessing, waiting, inference), in microseconds "
            "(read-only)",
            0, G_MAXDOUBLE, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_LATENCY_P99,
        g_param_spec_double("latency-p99", "Latency p99",
                            "99th percentile of the result "
                            "latency over the last 1024 inferences, in microseconds (read-only)",
                            0, G_MAXDOUBLE, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_PROCESS_MEAN,
        g_param_spec_double("process-mean", "Processing mean",
                            "Mean time a frame spends in "
                            "the element (what video waits for), in microseconds (read-only)",
                            0, G_MAXDOUBLE, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_PROCESS_P99,
        g_param_spec_double(
            "process-p99", "Processing p99",
            "99th percentile of the time a "
            "frame spends in the element over the last 1024 frames, in microseconds (read-only)",
            0, G_MAXDOUBLE, 0, ro));
    g_object_class_install_property(
        gobject_class, PROP_ENGINE_MEAN,
        g_param_spec_double("engine-mean", "Engine mean",
                            "Mean time of the network alone "
                            "(ev_plan_run), in microseconds (read-only)",
                            0, G_MAXDOUBLE, 0, ro));

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Echo view classifier", "Filter/Analyzer/Video",
        "Labels every echocardiography frame with its standard view (DARTS CNN); attaches an "
        "EchoViewMeta and posts \"echoviewclassify\" messages; pixels pass through untouched",
        "echoview <echoview@localhost>");

    trans_class->start = GST_DEBUG_FUNCPTR(gst_echo_view_classify_start);
    trans_class->stop = GST_DEBUG_FUNCPTR(gst_echo_view_classify_stop);
    trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_echo_view_classify_set_caps);
    trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_echo_view_classify_sink_event);
    trans_class->query = GST_DEBUG_FUNCPTR(gst_echo_view_classify_query);
    trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_echo_view_classify_transform_ip);
    trans_class->passthrough_on_same_caps = FALSE;
    trans_class->transform_ip_on_passthrough = FALSE;

    gst_type_mark_as_plugin_api(GST_TYPE_ECHO_VIEW_BACKEND, 0);
    gst_type_mark_as_plugin_api(GST_TYPE_ECHO_VIEW_UPDATES, 0);
}
