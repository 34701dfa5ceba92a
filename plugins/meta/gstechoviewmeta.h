/* gstechoviewmeta.h: EchoViewMeta, the per-frame view-classification result that
 * echoviewclassify attaches to every buffer (and echophantomsrc seeds with the ground truth).
 *
 * The meta is registered with the tag "video" only, so it survives elements that copy or scale
 * video frames (videoconvert, videoscale, queue, tee, ...): copies and scales keep every field.
 *
 * Reading it, in C:
 *     GstEchoViewMeta *m = gst_buffer_get_echo_view_meta (buffer);
 *     if (m && m->label_id >= 0) g_print ("%s %.3f\n", m->label, m->confidence);
 * Build with `pkg-config --cflags --libs echoviewmeta` (inside this meson project:
 * echoviewmeta_dep).
 *
 * Strings (label, stable_label, model_name, ground_truth) are interned with g_intern_string():
 * they live as long as the process, are never freed, and compare equal by pointer.
 */
#ifndef GST_ECHO_VIEW_META_H
#define GST_ECHO_VIEW_META_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_ECHO_VIEW_META_API_TYPE (gst_echo_view_meta_api_get_type())
#define GST_ECHO_VIEW_META_INFO (gst_echo_view_meta_get_info())

/* Label used when no result exists yet or the confidence is below the threshold. */
#define GST_ECHO_VIEW_LABEL_UNKNOWN "unknown"

/* The age of a frame that has no result yet (the first frames in async mode, after a reset):
 * distinct from 0, which means the result was computed from this very frame. */
#define GST_ECHO_VIEW_AGE_NONE G_MAXUINT64

typedef struct _GstEchoViewMeta GstEchoViewMeta;

/**
 * GstEchoViewMeta:
 * @label: top class of the latest inference, or "unknown" (below the confidence threshold, or
 *     no inference yet)
 * @label_id: index of @label in the model's classes; -1 for "unknown"
 * @confidence: probability of the top class of the latest inference (0..1, reported even when
 *     below the threshold), 0 when there is no result
 * @n_probabilities: number of classes (0 when there is no result yet)
 * @probabilities: softmax probabilities of the latest inference, in the model's class order
 * @stable_label: the smoothed, hysteresis-filtered label (see docs/GSTREAMER.md)
 * @stable_label_id: its class index, -1 for "unknown"
 * @inferred: TRUE on the first buffer that carries this result, a new inference: in sync mode
 *     the frame it was computed from (@age 0), in async mode the first frame after the worker
 *     answered (@age says how many frames back its frame was); FALSE on buffers carrying a result
 *     an earlier buffer carried already (inference-interval, a busy worker) or none
 * @age: frames between the frame the result was computed from and this one (0: computed from
 *     this very frame's pixels,
 *     %GST_ECHO_VIEW_AGE_NONE when there is no result yet)
 * @model_name: the model's name from model.yaml
 * @latency: time from the frame entering the element to its result, in nanoseconds
 * @ground_truth_id: the true view id when known (echophantomsrc), else -1
 * @ground_truth: the true view's name, or NULL when unknown
 * @unique_id: the `unique-id` of the echoviewclassify that wrote the result; 0 for a meta a source
 *     added (ground truth only). A buffer carries one meta per classifier it went through.
 */
struct _GstEchoViewMeta {
    GstMeta meta;

    const gchar *label;
    gint label_id;
    gfloat confidence;
    guint n_probabilities;
    gfloat *probabilities;
    const gchar *stable_label;
    gint stable_label_id;
    gboolean inferred;
    guint64 age;
    const gchar *model_name;
    GstClockTime latency;
    gint ground_truth_id;
    const gchar *ground_truth;
    guint unique_id;
};

GType gst_echo_view_meta_api_get_type(void);
const GstMetaInfo *gst_echo_view_meta_get_info(void);

/* Adds a meta with no result: label "unknown", ids -1, no probabilities. */
GstEchoViewMeta *gst_buffer_add_echo_view_meta(GstBuffer *buffer);
/* The buffer's first meta (the first classifier's result, or a source's), or NULL. */
GstEchoViewMeta *gst_buffer_get_echo_view_meta(GstBuffer *buffer);
/* The meta of the classifier with this unique-id (0: a source's), or NULL. */
GstEchoViewMeta *gst_buffer_get_echo_view_meta_by_id(GstBuffer *buffer, guint unique_id);
/* The meta a classifier with unique_id (>= 1) writes: its own; else the one a source added
 * (unique_id 0), which it takes over; else a new one carrying the ground truth of the first meta
 * (buffer must be writable). */
GstEchoViewMeta *gst_buffer_ensure_echo_view_meta_for_id(GstBuffer *buffer, guint unique_id);
/* The buffer's meta, adding an empty one when there is none (buffer must be writable). */
GstEchoViewMeta *gst_buffer_ensure_echo_view_meta(GstBuffer *buffer);

/* Replaces the probabilities with a copy of n values (n may be 0). */
void gst_echo_view_meta_set_probabilities(GstEchoViewMeta *meta, const gfloat *values, guint n);

G_END_DECLS

#endif /* GST_ECHO_VIEW_META_H */
