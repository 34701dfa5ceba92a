/* gstechoviewclassify_props.c: echoviewclassify's properties: the backend and updates enums,
 * every property's spec with a blurb that states its unit and default (tests/gst/test_inspect.py
 * holds that), set and get under the object lock, and the timing statistics the read-only
 * properties report (base/ev_stats.h's definitions, the daemon's too). */
#include "gstechoviewclassify_private.h"

#include <string.h>

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
    PROP_RESET_ON,
    PROP_UNIQUE_ID,
    PROP_BACKEND_USED,
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

#define GST_TYPE_ECHO_VIEW_BACKEND (gst_echo_view_backend_get_type())
static GType gst_echo_view_backend_get_type(void)
{
    static GType type = 0;
    static const GEnumValue values[] = {
        {GST_ECHO_VIEW_BACKEND_AUTO, "CUDA when a GPU is usable, else the fast CPU path", "auto"},
        {GST_ECHO_VIEW_BACKEND_REFERENCE, "Reference implementation (slow, for checking)",
         "reference"},
        {GST_ECHO_VIEW_BACKEND_CPU, "Fused CPU kernels", "cpu"},
        {GST_ECHO_VIEW_BACKEND_CUDA, "CUDA GPU", "cuda"},
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

GType gst_echo_view_reset_on_get_type(void)
{
    static GType type = 0;
    static const GFlagsValue values[] = {
        {GST_ECHO_VIEW_RESET_ON_FLUSH, "A flush (FLUSH_STOP: a seek, a restart)", "flush"},
        {GST_ECHO_VIEW_RESET_ON_DISCONT, "A buffer flagged DISCONT (lost packets, dropped frames)",
         "discont"},
        {GST_ECHO_VIEW_RESET_ON_STREAM_START, "A new stream (STREAM_START)", "stream-start"},
        {GST_ECHO_VIEW_RESET_ON_CAPS, "New caps that differ from the previous ones", "caps"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_flags_register_static("GstEchoViewResetOn", values));
    return type;
}

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
        g_free(self->roi_text);
        self->roi_text = g_value_dup_string(value);
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
    case PROP_RESET_ON:
        self->reset_on = g_value_get_flags(value);
        break;
    case PROP_UNIQUE_ID:
        self->unique_id = g_value_get_uint(value);
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
        g_value_set_string(value, self->roi_text);
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
    case PROP_RESET_ON:
        g_value_set_flags(value, self->reset_on);
        break;
    case PROP_UNIQUE_ID:
        g_value_set_uint(value, self->unique_id);
        break;
    case PROP_BACKEND_USED:
        g_value_set_string(value, self->backend_used);
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

void gst_echo_view_classify_install_properties(GObjectClass *gobject_class)
{
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
    const GParamFlags rw_ready = rw | GST_PARAM_MUTABLE_READY;
    const GParamFlags rw_playing = rw | GST_PARAM_MUTABLE_PLAYING;
    /* numbers tunable while playing can follow a GstControlSource (synced per buffer by
     * GstBaseTransform at the buffer's stream time) */
    const GParamFlags rw_controllable = rw_playing | GST_PARAM_CONTROLLABLE;
    const GParamFlags ro = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS;

    gobject_class->set_property = gst_echo_view_classify_set_property;
    gobject_class->get_property = gst_echo_view_classify_get_property;

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
            "frame), \"meta\" (the region of an upstream GstVideoRegionOfInterestMeta: "
            "\"ultrasound-region\", as dicomsrc attaches, else the first) or \"auto\" (an "
            "\"ultrasound-region\" meta when the buffer has one, else detect the sector after "
            "every reset and every roi-interval frames) (default: auto)",
            DEFAULT_ROI, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_ROI_INTERVAL,
        g_param_spec_uint(
            "roi-interval", "ROI interval",
            "With roi=auto, detect the sector again every this many frames; 0: only after a "
            "reset (frames, default: 30)",
            0, G_MAXUINT, DEFAULT_ROI_INTERVAL, rw_controllable));
    g_object_class_install_property(
        gobject_class, PROP_INFERENCE_INTERVAL,
        g_param_spec_uint(
            "inference-interval", "Inference interval",
            "Infer every this many frames; frames in between carry the last result and its age "
            "(frames, 1 = every frame, default: 1)",
            1, 100000, DEFAULT_INFERENCE_INTERVAL, rw_controllable));
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
            "Below this top-class probability the label is \"unknown\" (probability 0..1; "
            "-1: the model's calibrated threshold from `echoview eval --calibrate`, 0 for a "
            "model without one; default: -1)",
            -1.0, 1.0, DEFAULT_THRESHOLD, rw_controllable));
    g_object_class_install_property(
        gobject_class, PROP_SMOOTHING,
        g_param_spec_uint(
            "smoothing", "Smoothing",
            "The stable label uses the mean probabilities of this many latest inferences "
            "(inferences, 1 = no smoothing, default: 5)",
            1, STABLE_LABEL_MAX_SMOOTHING, DEFAULT_SMOOTHING, rw_controllable));
    g_object_class_install_property(
        gobject_class, PROP_HYSTERESIS,
        g_param_spec_uint(
            "hysteresis", "Hysteresis",
            "The stable label switches only when a new smoothed label leads for this many "
            "consecutive inferences (inferences, 1 = at once, default: 3)",
            1, 100000, DEFAULT_HYSTERESIS, rw_controllable));
    g_object_class_install_property(
        gobject_class, PROP_UPDATES,
        g_param_spec_enum("updates", "Updates",
                          "When to post \"echoviewclassify\" element messages (default: on-change)",
                          GST_TYPE_ECHO_VIEW_UPDATES, DEFAULT_UPDATES, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_RESET_ON,
        g_param_spec_flags(
            "reset-on", "Reset on",
            "What forgets the per-stream state (result, smoothing, hysteresis, detected ROI) and "
            "posts an \"echoviewclassify-reset\" message; without discont a lost packet keeps "
            "the history (default: flush+stream-start+caps)",
            GST_TYPE_ECHO_VIEW_RESET_ON, DEFAULT_RESET_ON, rw_playing));
    g_object_class_install_property(
        gobject_class, PROP_UNIQUE_ID,
        g_param_spec_uint(
            "unique-id", "Unique id",
            "Which EchoViewMeta on a buffer is this element's (its unique_id field, and the "
            "messages' unique-id): several classifiers on one stream each add their own (default: "
            "1, 2, 3, ... in the order the elements were created)",
            1, G_MAXUINT, 1, rw_ready));
    g_object_class_install_property(
        gobject_class, PROP_BACKEND_USED,
        g_param_spec_string("backend-used", "Backend used",
                            "The backend the model runs on (\"reference\", \"cpu\", \"cuda\": "
                            "what backend=auto chose; read-only, NULL when not started)",
                            NULL, ro));
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

    gst_type_mark_as_plugin_api(GST_TYPE_ECHO_VIEW_BACKEND, 0);
    gst_type_mark_as_plugin_api(GST_TYPE_ECHO_VIEW_UPDATES, 0);
    gst_type_mark_as_plugin_api(GST_TYPE_ECHO_VIEW_RESET_ON, 0);
}
