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
 *
 * Beside this file: the properties (gstechoviewclassify_props.c), the stable label's smoothing,
 * threshold and hysteresis (stable_label.c, plain C with its own tests), YUV input as RGB with
 * the caps' range and matrix (gstechoviewyuv.c), video formats and the region of interest
 * (gstechoviewroi.c), the timing statistics (base/ev_stats.h) and the shared
 * model registry (gstechoviewmodels.c).
 */
/**
 * SECTION:element-echoviewclassify
 * @title: echoviewclassify
 *
 * Labels every echocardiography frame with its standard view (one of the model's classes: A4CH,
 * PLAX, PSAX-AV, ...) using a DARTS CNN run by libechoview. Every buffer gets an EchoViewMeta and
 * an "echoview-result-<unique-id>" GstCustomMeta; "echoviewclassify" element messages report
 * the result (every frame, when the stable label changes, or never) and
 * "echoviewclassify-reset" messages the resets of the per-stream state. Pixels pass through
 * untouched. docs/GSTREAMER.md describes every property, field and rule.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m echophantomsrc schedule="A4CH-LV:5,PLAX-full:5" ! \
 *     echoviewclassify model-file=models/echo-2cell-96 ! fakesink
 * ]|
 */
#include "gstechoviewclassify_private.h"

#include <string.h>

#include "gstechoviewmeta.h"

GST_DEBUG_CATEGORY(gst_echo_view_classify_debug);

G_STATIC_ASSERT((int)GST_ECHO_VIEW_BACKEND_AUTO == (int)EV_BACKEND_AUTO);
G_STATIC_ASSERT((int)GST_ECHO_VIEW_BACKEND_REFERENCE == (int)EV_BACKEND_REFERENCE);
G_STATIC_ASSERT((int)GST_ECHO_VIEW_BACKEND_CPU == (int)EV_BACKEND_CPU);
G_STATIC_ASSERT((int)GST_ECHO_VIEW_BACKEND_CUDA == (int)EV_BACKEND_CUDA);
#define GST_CAT_DEFAULT gst_echo_view_classify_debug

#define FORMATS "{ GRAY8, GRAY16_LE, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12 }"
/* The same formats, in the order a loaded model prefers them (transform_caps) */
#define GRAY_MODEL_FORMATS \
    "{ GRAY8, GRAY16_LE, I420, NV12, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA }"
#define COLOUR_MODEL_FORMATS \
    "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12, GRAY8, GRAY16_LE }"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));

G_DEFINE_TYPE(GstEchoViewClassify, gst_echo_view_classify, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(echoviewclassify, "echoviewclassify", GST_RANK_NONE,
                            GST_TYPE_ECHO_VIEW_CLASSIFY);

/* ---- small helpers ------------------------------------------------------------------------ */

static gint64 now_us(void) { return g_get_monotonic_time(); }

static const gchar *label_name(GstEchoViewClassify *self, gint id)
{
    return id >= 0 ? self->class_names[id] : g_intern_static_string(GST_ECHO_VIEW_LABEL_UNKNOWN);
}

/* ---- per-stream state ---------------------------------------------------------------------- */

static void stream_reset(GstEchoViewClassify *self)
{
    GST_DEBUG_OBJECT(self, "resetting per-stream state");
    self->frame_index = 0;
    gst_echo_view_roi_invalidate(&self->roi);
    self->result.valid = FALSE;
    stable_label_reset(&self->stable);
    g_mutex_lock(&self->worker_lock);
    self->generation++;
    self->pending_valid = FALSE;
    self->last_result_seq = self->worker_result_seq;
    g_mutex_unlock(&self->worker_lock);
}

/* A reset the stream asked for (reason: one of the reset-on flags' nicks). A stream with no frame
 * since the last reset has nothing to forget, so nothing happens and nothing is announced;
 * otherwise the per-stream state resets and, unless updates=none, an "echoviewclassify-reset"
 * message says so with the stable label it had: the application's idea of the stable label
 * stays the element's (the next change message says previous-label "unknown"). Posted with no
 * lock held; buf (may be NULL) dates the message. */
static void stream_reset_on(GstEchoViewClassify *self, GstEchoViewResetOn reason, GstBuffer *buf)
{
    const gchar *reason_name;
    GFlagsValue *value;
    GstEchoViewUpdates updates;
    guint unique_id;
    GstStructure *s;
    gint previous = self->stable.stable;
    guint64 frames = self->frame_index;
    GstClockTime ts = buf ? GST_BUFFER_PTS(buf) : GST_CLOCK_TIME_NONE;

    if (!self->model || frames == 0)
        return;
    GST_OBJECT_LOCK(self);
    updates = self->updates;
    unique_id = self->unique_id;
    GST_OBJECT_UNLOCK(self);
    stream_reset(self);
    if (updates == GST_ECHO_VIEW_UPDATES_NONE)
        return;
    value = g_flags_get_first_value(g_type_class_peek(GST_TYPE_ECHO_VIEW_RESET_ON), reason);
    reason_name = value ? value->value_nick : "unknown";
    GST_INFO_OBJECT(self, "reset on %s after %" G_GUINT64_FORMAT " frames, stable label was %s",
                    reason_name, frames, label_name(self, previous));
    s = gst_structure_new(GST_ECHO_VIEW_RESET_MESSAGE, "reason", G_TYPE_STRING, reason_name,
                          "timestamp", G_TYPE_UINT64, ts, "frames", G_TYPE_UINT64, frames,
                          "previous-label", G_TYPE_STRING, label_name(self, previous),
                          "previous-label-id", G_TYPE_INT, previous, "stable-label",
                          G_TYPE_STRING, label_name(self, -1), "stable-label-id", G_TYPE_INT, -1,
                          "model", G_TYPE_STRING, self->model_name, "unique-id", G_TYPE_UINT,
                          unique_id, NULL);
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), s));
}

/* Whether the reset-on property holds flag. */
static gboolean resets_on(GstEchoViewClassify *self, GstEchoViewResetOn flag)
{
    gboolean on;
    GST_OBJECT_LOCK(self);
    on = (self->reset_on & flag) != 0;
    GST_OBJECT_UNLOCK(self);
    return on;
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
        r.top = stable_label_top(r.probabilities, self->n_classes);
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

static void post_model_error(GstEchoViewClassify *self, const gchar *path,
                             GstEchoViewModelsResult result, const ev_error *err)
{
    if (result == GST_ECHO_VIEW_MODELS_ID_CONFLICT)
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Conflicting model-instance-id."),
                          ("%s", err->message));
    else if (err->code == EV_ERR_IO && !g_file_test(path, G_FILE_TEST_EXISTS))
        GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("Model '%s' not found.", path),
                          ("%s", err->message));
    else if (err->code == EV_ERR_IO)
        GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("Could not read model '%s'.", path),
                          ("%s", err->message));
    else
        GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Model '%s' is invalid.", path),
                          ("%s", err->message));
}

static gboolean gst_echo_view_classify_stop(GstBaseTransform *trans);
static const gchar *result_meta_name(guint unique_id);

/* For YUV caps: the tables of their colorimetry and an RGB image of the frame's size (what
 * the engine reads instead of the YUV frame). */
static gboolean prepare_yuv(GstEchoViewClassify *self, const GstVideoInfo *info)
{
    const gsize width = (gsize)GST_VIDEO_INFO_WIDTH(info),
                height = (gsize)GST_VIDEO_INFO_HEIGHT(info);

    g_clear_pointer(&self->rgb, g_free);
    self->yuv = GST_VIDEO_INFO_IS_YUV(info);
    if (!self->yuv)
        return TRUE;
    gst_echo_view_yuv_tables_init(&self->yuv_tables, info);
    if (width > G_MAXSIZE / 3 - 3)
        return FALSE;
    self->rgb_stride = (width * 3 + 3) & ~(gsize)3;
    self->rgb = g_try_malloc_n(height, self->rgb_stride);
    return self->rgb != NULL;
}

static gboolean gst_echo_view_classify_start(GstBaseTransform *trans)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    gchar *model_file, *instance_id, *roi;
    ev_plan_options options = {0};
    ev_error err = {0};
    gboolean ok = FALSE;
    gint w, h, c, n_classes;
    GstEchoViewModelsResult acquired;

    GST_OBJECT_LOCK(self);
    model_file = g_strdup(self->model_file);
    instance_id = g_strdup(self->model_instance_id);
    roi = g_strdup(self->roi_text);
    options.backend = (ev_backend_kind)self->backend;
    options.batch = 1;
    options.threads = self->threads;
    options.gpu_id = self->gpu_id;
    self->running_async = self->async;
    self->latency_posted = FALSE;
    GST_OBJECT_UNLOCK(self);
    self->roi_error_posted = FALSE;
    self->roi_warned = 0;

    if (!gst_echo_view_roi_parse(&self->roi, roi)) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Invalid roi '%s'.", roi),
                          ("roi must be \"auto\", \"full\", \"meta\" or \"x,y,width,height\" in "
                           "pixels"));
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
    acquired = gst_echo_view_models_acquire(instance_id, model_file, &self->model_ref, &err);
    if (acquired != GST_ECHO_VIEW_MODELS_ACQUIRED) {
        post_model_error(self, model_file, acquired, &err);
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
    self->model_threshold = ev_model_confidence_threshold(self->model);
    self->model_channels = c;
    self->model_name = g_intern_string(ev_model_name(self->model));
    self->backend_used = ev_backend_name(ev_plan_backend(self->plan));
    self->result_meta_name = result_meta_name(self->unique_id);
    self->other_class = -1;
    for (gint i = 0; i < self->n_classes; i++) {
        self->class_names[i] = g_intern_string(ev_model_class_name(self->model, i));
        if (!strcmp(self->class_names[i], EV_OTHER_LABEL))
            self->other_class = i;
    }
    GST_OBJECT_UNLOCK(self);
    self->input_floats = (gsize)w * h * c;
    self->stage_input = g_new0(gfloat, self->input_floats);
    self->pending_input = g_new0(gfloat, self->input_floats);
    self->work_input = g_new0(gfloat, self->input_floats);
    if (!stable_label_init(&self->stable, self->n_classes)) {
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Out of memory."), (NULL));
        goto out;
    }
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
    self->backend_used = NULL;
    self->n_classes = 0;
    GST_OBJECT_UNLOCK(self);
    gst_echo_view_models_release(self->model_ref);
    self->model_ref = NULL;
    self->model = NULL;
    g_clear_pointer(&self->stage_input, g_free);
    g_clear_pointer(&self->pending_input, g_free);
    g_clear_pointer(&self->work_input, g_free);
    stable_label_clear(&self->stable);
    self->negotiated = FALSE;
    g_clear_pointer(&self->rgb, g_free);
    self->yuv = FALSE;
    return TRUE;
}

static gboolean gst_echo_view_classify_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                                GstCaps *outcaps)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    GstVideoInfo info;
    gboolean changed;

    if (!gst_video_info_from_caps(&info, incaps) ||
        !gst_echo_view_pixel_format(GST_VIDEO_INFO_FORMAT(&info), &self->pixel_format)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Unsupported video format."),
                          ("caps %" GST_PTR_FORMAT, incaps));
        return FALSE;
    }
    if (!gst_echo_view_roi_fits(&self->roi, GST_VIDEO_INFO_WIDTH(&info),
                                GST_VIDEO_INFO_HEIGHT(&info))) {
        /* The first caps: the roi was set for another stream, an error. After a resolution
         * change: the part still inside the frame, with a warning; none left: an error. */
        const ev_rect *f = &self->roi.fixed;
        if (self->negotiated &&
            gst_echo_view_roi_cut(&self->roi, GST_VIDEO_INFO_WIDTH(&info),
                                  GST_VIDEO_INFO_HEIGHT(&info))) {
            const ev_rect *cut = &self->roi.fixed_cut;
            GST_ELEMENT_WARNING(self, STREAM, FORMAT, ("The roi was cut to the new video frame."),
                                ("roi %dx%d at (%d,%d) does not fit the %dx%d frame: using "
                                 "%d,%d,%d,%d",
                                 f->width, f->height, f->x, f->y, GST_VIDEO_INFO_WIDTH(&info),
                                 GST_VIDEO_INFO_HEIGHT(&info), cut->x, cut->y, cut->width,
                                 cut->height));
        } else {
            /* set_caps comes again for every retry of the negotiation: one error is enough */
            if (!self->roi_error_posted)
                GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("The roi does not fit the video frame."),
                                  ("roi %dx%d at (%d,%d) is not inside the %dx%d frame", f->width,
                                   f->height, f->x, f->y, GST_VIDEO_INFO_WIDTH(&info),
                                   GST_VIDEO_INFO_HEIGHT(&info)));
            self->roi_error_posted = TRUE;
            return FALSE;
        }
    } else {
        gst_echo_view_roi_cut(&self->roi, GST_VIDEO_INFO_WIDTH(&info),
                              GST_VIDEO_INFO_HEIGHT(&info));
    }
    if (!prepare_yuv(self, &info)) {
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Out of memory."),
                          ("no RGB image for caps %" GST_PTR_FORMAT, incaps));
        return FALSE;
    }
    changed = self->negotiated && !gst_video_info_is_equal(&info, &self->info);
    self->info = info;
    self->negotiated = TRUE;
    gst_echo_view_roi_invalidate(&self->roi); /* a new geometry needs a new detection */
    if (changed && resets_on(self, GST_ECHO_VIEW_RESET_ON_CAPS))
        stream_reset_on(self, GST_ECHO_VIEW_RESET_ON_CAPS, NULL);
    GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT, incaps);
    return TRUE;
}

/* Once a model is loaded, the formats it can use, its own first: a gray model reads luma (GRAY8
 * costs nothing to read), a colour model R, G, B (a gray format gives it R = G = B). An upstream
 * videoconvert then picks the format the model wants. Before start: the template caps. */
static GstCaps *gst_echo_view_classify_transform_caps(GstBaseTransform *trans,
                                                      GstPadDirection direction, GstCaps *caps,
                                                      GstCaps *filter)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    GstCaps *ours = NULL, *result;
    gint channels = 0;

    GST_OBJECT_LOCK(self);
    channels = self->n_classes > 0 ? self->model_channels : 0;
    GST_OBJECT_UNLOCK(self);
    if (channels == 1)
        ours = gst_caps_from_string(GST_VIDEO_CAPS_MAKE(GRAY_MODEL_FORMATS));
    else if (channels == 3)
        ours = gst_caps_from_string(GST_VIDEO_CAPS_MAKE(COLOUR_MODEL_FORMATS));
    if (ours) {
        result = gst_caps_intersect_full(ours, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(ours);
    } else {
        result = gst_caps_ref(caps);
    }
    if (filter) {
        GstCaps *filtered = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(result);
        result = filtered;
    }
    GST_DEBUG_OBJECT(self, "%s caps %" GST_PTR_FORMAT,
                     direction == GST_PAD_SINK ? "src" : "sink", result);
    return result;
}

static gboolean gst_echo_view_classify_sink_event(GstBaseTransform *trans, GstEvent *event)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);

    switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_FLUSH_STOP:
        if (resets_on(self, GST_ECHO_VIEW_RESET_ON_FLUSH))
            stream_reset_on(self, GST_ECHO_VIEW_RESET_ON_FLUSH, NULL);
        break;
    case GST_EVENT_STREAM_START:
        if (resets_on(self, GST_ECHO_VIEW_RESET_ON_STREAM_START))
            stream_reset_on(self, GST_ECHO_VIEW_RESET_ON_STREAM_START, NULL);
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

/* The active-roi property follows the region in use. */
static void publish_active_roi(GstEchoViewClassify *self)
{
    gchar text[64];

    g_snprintf(text, sizeof text, "%d,%d,%d,%d", self->roi.active.x, self->roi.active.y,
               self->roi.active.width, self->roi.active.height);
    GST_OBJECT_LOCK(self);
    g_strlcpy(self->active_roi_text, text, sizeof self->active_roi_text);
    GST_OBJECT_UNLOCK(self);
}

static void update_roi(GstEchoViewClassify *self, const ev_frame *frame, guint roi_interval)
{
    gboolean whole_frame;

    if (!gst_echo_view_roi_update(&self->roi, frame, self->frame_index, roi_interval, &whole_frame))
        return;
    if (whole_frame)
        GST_DEBUG_OBJECT(self, "no ultrasound region found, using the whole frame");
    publish_active_roi(self);
}

/* roi=meta and roi=auto: the region an upstream GstVideoRegionOfInterestMeta gives (dicomsrc's
 * "ultrasound-region"). A meta outside the frame, and roi=meta on a stream without metas, are
 * warned about once per start. */
static void roi_from_meta(GstEchoViewClassify *self, GstBuffer *buf)
{
    const gint width = GST_VIDEO_INFO_WIDTH(&self->info),
               height = GST_VIDEO_INFO_HEIGHT(&self->info);
    GstVideoRegionOfInterestMeta *meta = gst_echo_view_roi_find_meta(&self->roi, buf);
    const ev_rect before = self->roi.active;
    const gboolean was_valid = self->roi.valid;
    GstEchoViewRoiMetaResult result =
        gst_echo_view_roi_set_from_meta(&self->roi, meta, width, height);
    const guint bit = 1u << result;

    if (result == GST_ECHO_VIEW_ROI_META_ABSENT && self->roi.mode == GST_ECHO_VIEW_ROI_AUTO)
        return; /* auto without a meta: the sector detection, as always */
    if (result != GST_ECHO_VIEW_ROI_META_USED && !(self->roi_warned & bit)) {
        self->roi_warned |= bit;
        if (result == GST_ECHO_VIEW_ROI_META_ABSENT)
            GST_ELEMENT_WARNING(self, STREAM, FORMAT,
                                ("roi=meta, but the buffers carry no region of interest meta."),
                                ("classifying the whole %dx%d frame (or the last region a meta "
                                 "gave) until one comes",
                                 width, height));
        else
            GST_ELEMENT_WARNING(
                self, STREAM, FORMAT, ("The upstream region of interest does not fit the frame."),
                ("%s region %ux%u at (%u,%u) and the %dx%d frame: %s",
                 g_quark_to_string(meta->roi_type), meta->w, meta->h, meta->x, meta->y, width,
                 height,
                 result == GST_ECHO_VIEW_ROI_META_CUT ? "using the part inside the frame"
                                                      : "nothing of it is inside, ignored"));
    }
    if (self->roi.valid && (!was_valid || memcmp(&before, &self->roi.active, sizeof before)))
        publish_active_roi(self);
}

/* roi=auto found no 2D fan (an M-mode or spectral Doppler screen): the result is the bundle's
 * `other` class at probability 1, or, for a bundle without one, unknown (all probabilities 0),
 * whatever the network said (docs/GSTREAMER.md, "Screen check"). */
static void apply_screen_check(GstEchoViewClassify *self, Result *r)
{
    r->not_2d = FALSE;
    if (self->roi.mode != GST_ECHO_VIEW_ROI_AUTO || self->roi.screen != EV_SCREEN_NOT_2D)
        return;
    memset(r->probabilities, 0, sizeof r->probabilities);
    if (self->other_class >= 0) {
        r->probabilities[self->other_class] = 1.0f;
        r->top = self->other_class;
    } else {
        r->top = 0;
        r->not_2d = TRUE;
    }
}

/* The result fields shared by the element message and the custom meta (docs/GSTREAMER.md). */
static void set_result_fields(GstStructure *s, const GstEchoViewMeta *meta)
{
    GValue array = G_VALUE_INIT, v = G_VALUE_INIT;

    g_value_init(&array, GST_TYPE_ARRAY);
    g_value_init(&v, G_TYPE_DOUBLE);
    for (guint i = 0; i < meta->n_probabilities; i++) {
        g_value_set_double(&v, meta->probabilities[i]);
        gst_value_array_append_value(&array, &v);
    }
    g_value_unset(&v);
    gst_structure_set(s, "label", G_TYPE_STRING, meta->label, "label-id", G_TYPE_INT,
                      meta->label_id, "confidence", G_TYPE_DOUBLE, (gdouble)meta->confidence,
                      "stable-label", G_TYPE_STRING, meta->stable_label, "stable-label-id",
                      G_TYPE_INT, meta->stable_label_id, "inferred", G_TYPE_BOOLEAN,
                      meta->inferred, "age", G_TYPE_UINT64, meta->age, "latency", G_TYPE_UINT64,
                      meta->latency, "model", G_TYPE_STRING, meta->model_name, "unique-id",
                      G_TYPE_UINT, meta->unique_id, NULL);
    gst_structure_take_value(s, "probabilities", &array);
    if (meta->ground_truth_id >= 0)
        gst_structure_set(s, "ground-truth", G_TYPE_STRING, meta->ground_truth, NULL);
}

static GstMessage *build_message(GstEchoViewClassify *self, GstBuffer *buf,
                                 const GstEchoViewMeta *meta, gint previous_stable)
{
    GstBaseTransform *trans = GST_BASE_TRANSFORM(self);
    GstSegment *segment = &trans->segment;
    GstClockTime ts = GST_BUFFER_PTS(buf), stream_time = GST_CLOCK_TIME_NONE,
                 running_time = GST_CLOCK_TIME_NONE;
    GstStructure *s;

    if (GST_CLOCK_TIME_IS_VALID(ts) && segment->format == GST_FORMAT_TIME) {
        stream_time = gst_segment_to_stream_time(segment, GST_FORMAT_TIME, ts);
        running_time = gst_segment_to_running_time(segment, GST_FORMAT_TIME, ts);
    }
    s = gst_structure_new("echoviewclassify", "timestamp", G_TYPE_UINT64, ts, "stream-time",
                          G_TYPE_UINT64, stream_time, "running-time", G_TYPE_UINT64, running_time,
                          "duration", G_TYPE_UINT64, GST_BUFFER_DURATION(buf), "previous-label",
                          G_TYPE_STRING, label_name(self, previous_stable), NULL);
    set_result_fields(s, meta);
    return gst_message_new_element(GST_OBJECT(self), s);
}

/* ---- the custom meta: the result as a GstStructure, for languages without our C header ---- */

/* Copies and scales keep it, as they keep EchoViewMeta (same picture, same result). */
static gboolean result_meta_transform(GstBuffer *dest, GstCustomMeta *meta, GstBuffer *buffer,
                                      GQuark type, gpointer data, gpointer user_data)
{
    const GstStructure *from = gst_custom_meta_get_structure(meta);
    GstCustomMeta *copy;
    GstStructure *to;

    if (!GST_META_TRANSFORM_IS_COPY(type) && !GST_VIDEO_META_TRANSFORM_IS_SCALE(type))
        return FALSE;
    copy = gst_buffer_get_custom_meta(dest, user_data);
    if (!copy)
        copy = gst_buffer_add_custom_meta(dest, user_data);
    if (!copy)
        return FALSE;
    to = gst_custom_meta_get_structure(copy);
    for (gint i = 0; i < gst_structure_n_fields(from); i++) {
        const gchar *field = gst_structure_nth_field_name(from, i);
        gst_structure_set_value(to, field, gst_structure_get_value(from, field));
    }
    return TRUE;
}

/* The custom meta's name for a unique-id, "echoview-result-ID", registered on first use. */
static const gchar *result_meta_name(guint unique_id)
{
    static GMutex lock;
    static const gchar *tags[] = {GST_META_TAG_VIDEO_STR, NULL};
    gchar *name = g_strdup_printf("echoview-result-%u", unique_id);
    const gchar *interned = g_intern_string(name);

    g_free(name);
    g_mutex_lock(&lock);
    if (!gst_meta_get_info(interned))
        gst_meta_register_custom(interned, tags, result_meta_transform, (gpointer)interned, NULL);
    g_mutex_unlock(&lock);
    return interned;
}

/* The buffer's "echoview-result-ID" meta holds what meta holds. */
static void attach_result_structure(GstEchoViewClassify *self, GstBuffer *buf,
                                    const GstEchoViewMeta *meta)
{
    GstCustomMeta *custom = gst_buffer_get_custom_meta(buf, self->result_meta_name);

    if (!custom)
        custom = gst_buffer_add_custom_meta(buf, self->result_meta_name);
    if (custom)
        set_result_fields(gst_custom_meta_get_structure(custom), meta);
}

/* Controllable properties follow their control sources at the buffer's stream time. */
static void gst_echo_view_classify_before_transform(GstBaseTransform *trans, GstBuffer *buf)
{
    GstClockTime stream_time;

    if (trans->segment.format != GST_FORMAT_TIME)
        return;
    stream_time = gst_segment_to_stream_time(&trans->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    if (GST_CLOCK_TIME_IS_VALID(stream_time))
        gst_object_sync_values(GST_OBJECT(trans), stream_time);
}

static GstFlowReturn gst_echo_view_classify_transform_ip(GstBaseTransform *trans, GstBuffer *buf)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(trans);
    gint64 t_start = now_us(), t_engine = -1;
    guint interval, roi_interval, smoothing, hysteresis, unique_id;
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
    /* negative: the calibrated threshold the model brings (model.yaml `calibration:`) */
    threshold = self->threshold < 0.0 ? self->model_threshold : self->threshold;
    updates = self->updates;
    unique_id = self->unique_id;
    GST_OBJECT_UNLOCK(self);

    /* Without the discont flag a gap leaves smoothing, hysteresis and the ROI as they were: the
     * frames after it are the same scan (docs/GSTREAMER.md, "Resets"). */
    if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT) &&
        resets_on(self, GST_ECHO_VIEW_RESET_ON_DISCONT))
        stream_reset_on(self, GST_ECHO_VIEW_RESET_ON_DISCONT, buf);

    if (self->roi.mode == GST_ECHO_VIEW_ROI_META || self->roi.mode == GST_ECHO_VIEW_ROI_AUTO)
        roi_from_meta(self, buf);
    infer = self->frame_index % interval == 0;
    if (infer || (self->roi.mode == GST_ECHO_VIEW_ROI_AUTO && !self->roi.valid)) {
        if (!gst_video_frame_map(&vframe, &self->info, buf, GST_MAP_READ)) {
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not map the video frame."), (NULL));
            return GST_FLOW_ERROR;
        }
        if (self->yuv) {
            /* YUV: the engine sees full-range RGB; only the region it will read is converted
             * (the whole frame when the ROI is chosen again) */
            ev_rect region = {0, 0, GST_VIDEO_INFO_WIDTH(&self->info),
                              GST_VIDEO_INFO_HEIGHT(&self->info)};
            if (!gst_echo_view_roi_due(&self->roi, self->frame_index, roi_interval))
                region = self->roi.active;
            gst_echo_view_yuv_to_rgb(&self->yuv_tables, &vframe, &region, self->rgb,
                                     self->rgb_stride);
            frame.data = self->rgb;
            frame.stride = (int)self->rgb_stride;
            frame.format = EV_PIXEL_RGB;
        } else {
            frame.data = GST_VIDEO_FRAME_PLANE_DATA(&vframe, 0);
            frame.stride = GST_VIDEO_FRAME_PLANE_STRIDE(&vframe, 0);
            frame.format = self->pixel_format;
        }
        frame.width = GST_VIDEO_INFO_WIDTH(&self->info);
        frame.height = GST_VIDEO_INFO_HEIGHT(&self->info);
        update_roi(self, &frame, roi_interval);
        if (infer && ev_preprocess_frame(self->model, &frame, &self->roi.active, self->stage_input,
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
        self->result.top = stable_label_top(self->result.probabilities, self->n_classes);
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

    previous_stable = self->stable.stable;
    if (have_new) {
        apply_screen_check(self, &self->result);
        /* no fan and no `other` class: nothing can pass, so the stable label turns unknown */
        stable_changed = stable_label_update(&self->stable, self->result.probabilities, smoothing,
                                             hysteresis, self->result.not_2d ? 2.0 : threshold);
    }

    meta = gst_buffer_ensure_echo_view_meta_for_id(buf, unique_id);
    meta->model_name = self->model_name;
    meta->stable_label_id = self->stable.stable;
    meta->stable_label = label_name(self, self->stable.stable);
    if (self->result.valid) {
        const gint top = self->result.top;
        const gfloat confidence = self->result.probabilities[top];
        meta->label_id = confidence >= threshold && !self->result.not_2d ? top : -1;
        meta->label = label_name(self, meta->label_id);
        meta->confidence = confidence;
        gst_echo_view_meta_set_probabilities(meta, self->result.probabilities, self->n_classes);
        meta->age = self->frame_index - self->result.frame;
        /* the first buffer to carry this result: sync mode the frame it was computed from (age
         * 0), async mode the first frame after the worker answered (age > 0) */
        meta->inferred = have_new;
        meta->latency = self->result.latency;
    } else {
        meta->label_id = -1;
        meta->label = label_name(self, -1);
        meta->confidence = 0.0f;
        gst_echo_view_meta_set_probabilities(meta, NULL, 0);
        meta->age = GST_ECHO_VIEW_AGE_NONE;
        meta->inferred = FALSE;
        meta->latency = GST_CLOCK_TIME_NONE;
    }

    attach_result_structure(self, buf, meta);

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

/* The default unique-ids of the living elements. */
static GMutex auto_ids_lock;
static GHashTable *auto_ids;

static guint auto_id_take(void)
{
    guint id = 1;

    g_mutex_lock(&auto_ids_lock);
    if (!auto_ids)
        auto_ids = g_hash_table_new(g_direct_hash, g_direct_equal);
    while (g_hash_table_contains(auto_ids, GUINT_TO_POINTER(id)))
        id++;
    g_hash_table_add(auto_ids, GUINT_TO_POINTER(id));
    g_mutex_unlock(&auto_ids_lock);
    return id;
}

static void auto_id_give_back(guint id)
{
    g_mutex_lock(&auto_ids_lock);
    if (auto_ids)
        g_hash_table_remove(auto_ids, GUINT_TO_POINTER(id));
    g_mutex_unlock(&auto_ids_lock);
}

static void gst_echo_view_classify_finalize(GObject *object)
{
    GstEchoViewClassify *self = GST_ECHO_VIEW_CLASSIFY(object);

    auto_id_give_back(self->default_id);

    g_free(self->model_file);
    g_free(self->model_instance_id);
    g_free(self->roi_text);
    g_mutex_clear(&self->worker_lock);
    g_cond_clear(&self->worker_cond);
    G_OBJECT_CLASS(gst_echo_view_classify_parent_class)->finalize(object);
}

static void gst_echo_view_classify_init(GstEchoViewClassify *self)
{
    self->backend = DEFAULT_BACKEND;
    self->gpu_id = DEFAULT_GPU_ID;
    self->threads = DEFAULT_THREADS;
    self->roi_text = g_strdup(DEFAULT_ROI);
    self->roi_interval = DEFAULT_ROI_INTERVAL;
    self->inference_interval = DEFAULT_INFERENCE_INTERVAL;
    self->async = DEFAULT_ASYNC;
    self->threshold = DEFAULT_THRESHOLD;
    self->smoothing = DEFAULT_SMOOTHING;
    self->hysteresis = DEFAULT_HYSTERESIS;
    self->updates = DEFAULT_UPDATES;
    self->reset_on = DEFAULT_RESET_ON;
    /* each living element its own meta by default: the smallest id no other living element
     * took, so chained classifiers get 1, 2, 3, ... and an application that creates pipelines
     * again and again reuses those ids instead of registering a new meta type each time (meta
     * types are never freed) */
    self->default_id = self->unique_id = auto_id_take();
    stable_label_reset(&self->stable); /* unknown until started and fed */
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
    GST_DEBUG_CATEGORY_INIT(gst_echo_view_classify_debug, "echoviewclassify", 0,
                            "echocardiography view classifier");

    gst_echo_view_classify_install_properties(gobject_class);
    gobject_class->finalize = gst_echo_view_classify_finalize;

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
    trans_class->transform_caps = GST_DEBUG_FUNCPTR(gst_echo_view_classify_transform_caps);
    trans_class->query = GST_DEBUG_FUNCPTR(gst_echo_view_classify_query);
    trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_echo_view_classify_transform_ip);
    trans_class->before_transform = GST_DEBUG_FUNCPTR(gst_echo_view_classify_before_transform);
    trans_class->passthrough_on_same_caps = FALSE;
    trans_class->transform_ip_on_passthrough = FALSE;
}
