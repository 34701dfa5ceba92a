/* gstechoviewclassify_private.h: echoviewclassify's instance struct and defaults, shared by the
 * element's files: gstechoviewclassify.c (start, stop, caps, events, the frame path, the async
 * worker) and gstechoviewclassify_props.c (the properties). Not installed, not for other
 * elements. */
#ifndef GST_ECHO_VIEW_CLASSIFY_PRIVATE_H
#define GST_ECHO_VIEW_CLASSIFY_PRIVATE_H

#include <gst/video/video.h>

#include "echoview.h"
#include "ev_stats.h"
#include "gstechoviewclassify.h"
#include "gstechoviewmodels.h"
#include "gstechoviewroi.h"
#include "gstechoviewyuv.h"
#include "stable_label.h"

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN(gst_echo_view_classify_debug);

#define DEFAULT_BACKEND GST_ECHO_VIEW_BACKEND_AUTO
#define DEFAULT_GPU_ID 0
#define DEFAULT_THREADS 1
#define DEFAULT_ROI "auto"
#define DEFAULT_ROI_INTERVAL 30
#define DEFAULT_INFERENCE_INTERVAL 1
#define DEFAULT_ASYNC FALSE
#define DEFAULT_THRESHOLD -1.0 /* the model's calibrated threshold (0 without one) */
#define DEFAULT_SMOOTHING 5
#define DEFAULT_HYSTERESIS 3
#define DEFAULT_UPDATES GST_ECHO_VIEW_UPDATES_ON_CHANGE
#define DEFAULT_RESET_ON                                                                        \
    (GST_ECHO_VIEW_RESET_ON_FLUSH | GST_ECHO_VIEW_RESET_ON_STREAM_START |                      \
     GST_ECHO_VIEW_RESET_ON_CAPS)

/* The name of the element message announcing a reset of the per-stream state. */
#define GST_ECHO_VIEW_RESET_MESSAGE "echoviewclassify-reset"

/* One inference result as the streaming thread sees it. */
typedef struct {
    gboolean valid;
    guint64 frame; /* frame index (since the last reset) it was computed from */
    GstClockTime latency;
    gint top;
    gfloat probabilities[EV_MAX_CLASSES];
    /* the screen check said "no 2D fan" and the bundle has no `other` class: the answer is
     * unknown whatever the probabilities (all 0 then) */
    gboolean not_2d;
} Result;

struct _GstEchoViewClassify {
    GstBaseTransform parent;

    /* properties, under the object lock */
    gchar *model_file;
    gchar *model_instance_id;
    GstEchoViewBackend backend;
    gint gpu_id;
    gint threads;
    gchar *roi_text;
    guint roi_interval;
    guint inference_interval;
    gboolean async;
    gdouble threshold;       /* the property; < 0: model_threshold */
    gdouble model_threshold; /* the model's calibrated threshold (set in start) */
    guint smoothing;
    guint hysteresis;
    GstEchoViewUpdates updates;
    GstEchoViewResetOn reset_on;
    guint unique_id; /* which EchoViewMeta on a buffer is this element's */
    guint default_id; /* the id taken at creation (auto_id_take), given back at finalize */

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
    const gchar *backend_used;                /* static; set and cleared under the object lock */
    const gchar *result_meta_name;            /* interned: "echoview-result-<unique-id>" */
    const gchar *class_names[EV_MAX_CLASSES]; /* interned */
    gint n_classes;                           /* set and cleared under the object lock */
    gint model_channels;                      /* 1 or 3; valid while n_classes > 0 */
    gint other_class;                         /* the bundle's `other` class, -1: none */
    gsize input_floats;
    gfloat *stage_input;    /* streaming thread preprocesses here */
    gboolean running_async; /* async as it was at start() */

    /* negotiated format */
    GstVideoInfo info;
    gboolean negotiated; /* info holds caps (a later different one is a caps change) */
    ev_pixel_format pixel_format;
    /* YUV input (I420, NV12): converted to full-range RGB with the range and matrix of the
     * caps' colorimetry before the engine sees it (gstechoviewyuv.c); set in set_caps(), the
     * image freed in stop() */
    gboolean yuv;
    GstEchoViewYuvTables yuv_tables;
    guint8 *rgb;
    gsize rgb_stride;

    /* per-stream state, streaming thread only (roi.mode and roi.fixed: set at start()) */
    guint64 frame_index; /* frames since the last reset */
    GstEchoViewRoi roi;
    gboolean roi_error_posted; /* a bad roi is posted once per start, however often caps come */
    guint roi_warned;          /* GstEchoViewRoiMetaResult bits already warned about since start */
    Result result;
    StableLabel stable; /* smoothing, threshold and hysteresis of the stable label */
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

/* The flags type of the reset-on property (its nicks name the reason in reset messages). */
#define GST_TYPE_ECHO_VIEW_RESET_ON (gst_echo_view_reset_on_get_type())
GType gst_echo_view_reset_on_get_type(void);

/* Installs every property with its blurb (unit and default) and the set/get functions. */
void gst_echo_view_classify_install_properties(GObjectClass *gobject_class);

G_END_DECLS

#endif
