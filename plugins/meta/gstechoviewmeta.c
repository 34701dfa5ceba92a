/* gstechoviewmeta.c: registration, init/free and the copy/scale transform of EchoViewMeta. */
#include "gstechoviewmeta.h"

#include <gst/video/video.h>
#include <string.h>

GType gst_echo_view_meta_api_get_type(void)
{
    static GType type = 0;
    /* "video": the meta describes the picture's content, not its size or colours, so copies and
   * scales keep it (videoscale and videoconvert pass metas tagged only "video"). */
    static const gchar *tags[] = {GST_META_TAG_VIDEO_STR, NULL};

    if (g_once_init_enter(&type)) {
        GType t = gst_meta_api_type_register("GstEchoViewMetaAPI", tags);
        g_once_init_leave(&type, t);
    }
    return type;
}

static void echo_view_meta_clear(GstEchoViewMeta *m)
{
    m->label = g_intern_static_string(GST_ECHO_VIEW_LABEL_UNKNOWN);
    m->label_id = -1;
    m->confidence = 0.0f;
    m->n_probabilities = 0;
    m->probabilities = NULL;
    m->stable_label = m->label;
    m->stable_label_id = -1;
    m->inferred = FALSE;
    m->age = GST_ECHO_VIEW_AGE_NONE;
    m->model_name = NULL;
    m->latency = GST_CLOCK_TIME_NONE;
    m->ground_truth_id = -1;
    m->ground_truth = NULL;
    m->unique_id = 0;
}

static gboolean echo_view_meta_init(GstMeta *meta, gpointer params, GstBuffer *buffer)
{
    echo_view_meta_clear((GstEchoViewMeta *)meta);
    return TRUE;
}

static void echo_view_meta_free(GstMeta *meta, GstBuffer *buffer)
{
    GstEchoViewMeta *m = (GstEchoViewMeta *)meta;
    g_free(m->probabilities);
    m->probabilities = NULL;
    m->n_probabilities = 0;
}

static gboolean echo_view_meta_transform(GstBuffer *dest, GstMeta *meta, GstBuffer *buffer,
                                         GQuark type, gpointer data)
{
    GstEchoViewMeta *src = (GstEchoViewMeta *)meta, *dst;

    /* A copy (whole or a region) and a scale see the same picture: every field still holds.
   * Other transforms (unknown to us) drop the meta rather than guess. */
    if (!GST_META_TRANSFORM_IS_COPY(type) && !GST_VIDEO_META_TRANSFORM_IS_SCALE(type))
        return FALSE;

    /* one meta per classifier: the copy of each goes into its own */
    dst = gst_buffer_get_echo_view_meta_by_id(dest, src->unique_id);
    if (!dst)
        dst = gst_buffer_add_echo_view_meta(dest);
    if (!dst)
        return FALSE;
    gst_echo_view_meta_set_probabilities(dst, src->probabilities, src->n_probabilities);
    dst->label = src->label;
    dst->label_id = src->label_id;
    dst->confidence = src->confidence;
    dst->stable_label = src->stable_label;
    dst->stable_label_id = src->stable_label_id;
    dst->inferred = src->inferred;
    dst->age = src->age;
    dst->model_name = src->model_name;
    dst->latency = src->latency;
    dst->ground_truth_id = src->ground_truth_id;
    dst->ground_truth = src->ground_truth;
    dst->unique_id = src->unique_id;
    return TRUE;
}

const GstMetaInfo *gst_echo_view_meta_get_info(void)
{
    static const GstMetaInfo *info = NULL;

    if (g_once_init_enter((GstMetaInfo **)&info)) {
        const GstMetaInfo *i = gst_meta_register(GST_ECHO_VIEW_META_API_TYPE, "GstEchoViewMeta",
                                                 sizeof(GstEchoViewMeta), echo_view_meta_init,
                                                 echo_view_meta_free, echo_view_meta_transform);
        g_once_init_leave((GstMetaInfo **)&info, (GstMetaInfo *)i);
    }
    return info;
}

GstEchoViewMeta *gst_buffer_add_echo_view_meta(GstBuffer *buffer)
{
    g_return_val_if_fail(GST_IS_BUFFER(buffer), NULL);
    return (GstEchoViewMeta *)gst_buffer_add_meta(buffer, GST_ECHO_VIEW_META_INFO, NULL);
}

GstEchoViewMeta *gst_buffer_get_echo_view_meta(GstBuffer *buffer)
{
    g_return_val_if_fail(GST_IS_BUFFER(buffer), NULL);
    return (GstEchoViewMeta *)gst_buffer_get_meta(buffer, GST_ECHO_VIEW_META_API_TYPE);
}

GstEchoViewMeta *gst_buffer_ensure_echo_view_meta(GstBuffer *buffer)
{
    GstEchoViewMeta *m = gst_buffer_get_echo_view_meta(buffer);
    return m ? m : gst_buffer_add_echo_view_meta(buffer);
}

GstEchoViewMeta *gst_buffer_get_echo_view_meta_by_id(GstBuffer *buffer, guint unique_id)
{
    gpointer state = NULL;
    GstMeta *meta;

    g_return_val_if_fail(GST_IS_BUFFER(buffer), NULL);
    while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_ECHO_VIEW_META_API_TYPE)))
        if (((GstEchoViewMeta *)meta)->unique_id == unique_id)
            return (GstEchoViewMeta *)meta;
    return NULL;
}

GstEchoViewMeta *gst_buffer_ensure_echo_view_meta_for_id(GstBuffer *buffer, guint unique_id)
{
    GstEchoViewMeta *m, *first;

    g_return_val_if_fail(GST_IS_BUFFER(buffer), NULL);
    g_return_val_if_fail(unique_id > 0, NULL);
    if ((m = gst_buffer_get_echo_view_meta_by_id(buffer, unique_id)))
        return m;
    if ((m = gst_buffer_get_echo_view_meta_by_id(buffer, 0))) {
        m->unique_id = unique_id;
        return m;
    }
    first = gst_buffer_get_echo_view_meta(buffer);
    m = gst_buffer_add_echo_view_meta(buffer);
    if (m && first) {
        m->ground_truth_id = first->ground_truth_id;
        m->ground_truth = first->ground_truth;
    }
    if (m)
        m->unique_id = unique_id;
    return m;
}

void gst_echo_view_meta_set_probabilities(GstEchoViewMeta *meta, const gfloat *values, guint n)
{
    g_return_if_fail(meta != NULL);
    g_return_if_fail(n == 0 || values != NULL);
    if (meta->n_probabilities != n) {
        g_free(meta->probabilities);
        meta->probabilities = n ? g_new(gfloat, n) : NULL;
        meta->n_probabilities = n;
    }
    if (n)
        memcpy(meta->probabilities, values, n * sizeof(gfloat));
}
