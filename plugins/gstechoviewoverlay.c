/* gstechoviewoverlay.c: echoviewoverlay, an in-place GstBaseTransform that draws the result of an
 * upstream echoviewclassify (its EchoViewMeta) on the video: the label with its confidence, a
 * confidence bar, the stable label and the result's age, in a panel at the top left.
 *
 * Upstream style, like textoverlay: the panel is one GstVideoOverlayRectangle in a
 * GstVideoOverlayComposition. When the source caps carry the meta:GstVideoOverlayComposition
 * feature and downstream's allocation query lists the composition meta (a compositor or a GL
 * sink that blends on its own), the composition is attached to the buffer and the pixels stay
 * untouched; otherwise it is blended into the frame in place (gst_video_overlay_composition_blend,
 * any format below). Text is drawn with the tree's 3x5 bitmap font (base/ev_glyph.h), scaled
 * with the frame: no font library is needed on a scanner cart. The panel is rendered again only
 * when what it shows changes.
 */
/**
 * SECTION:element-echoviewoverlay
 * @title: echoviewoverlay
 *
 * Draws the result of an upstream echoviewclassify on the video: the label and its confidence,
 * a confidence bar (green above the confidence threshold, amber below), the stable label and
 * the result's age in frames, in a panel at the top left. `unique-id` chooses the classifier
 * when several ran. A buffer without an EchoViewMeta passes untouched; a classifier with no
 * result yet is drawn as "no result". docs/GSTREAMER.md describes the panel.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 echophantomsrc view=PLAX-full ! echoviewclassify model-file=models/echo-2cell-96 \
 *     ! echoviewoverlay ! videoconvert ! autovideosink
 * ]|
 */
#include "gstechoviewoverlay.h"

#include <gst/video/video.h>
#include <string.h>

#include "ev_glyph.h"
#include "gstechoviewmeta.h"

GST_DEBUG_CATEGORY_STATIC(gst_echo_view_overlay_debug);
#define GST_CAT_DEFAULT gst_echo_view_overlay_debug

#define DEFAULT_UNIQUE_ID 0
#define DEFAULT_FONT_SCALE 0
#define MAX_FONT_SCALE 32

/* The formats gst_video_overlay_composition_blend() draws into (those echoviewclassify takes). */
#define FORMATS "{ GRAY8, GRAY16_LE, RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12 }"

/* Panel layout, in font pixels (each font-scale x font-scale video pixels). */
#define PAD 2             /* around the text */
#define LINE_GAP 2        /* between lines */
#define BAR_HEIGHT 3      /* the confidence bar */
#define BAR_CHARACTERS 16 /* the bar is as wide as this many characters */
#define MAX_LINE 48       /* characters of one line (longer labels are cut) */

enum { PROP_0, PROP_UNIQUE_ID, PROP_FONT_SCALE };

struct _GstEchoViewOverlay {
    GstBaseTransform parent;

    /* properties, under the object lock */
    guint unique_id;
    guint font_scale;

    /* streaming thread */
    GstVideoInfo info;
    gint check_downstream; /* atomic: ask downstream about the composition meta on the next buffer
                            * (new caps, a RECONFIGURE from downstream) */
    gboolean attach;       /* attach the composition instead of blending it */
    gchar *drawn;          /* what the cached composition shows */
    GstVideoOverlayComposition *composition;
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE(
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(FORMATS)));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE_WITH_FEATURES(
                                GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY
                                ", " GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION,
                                FORMATS) ";" GST_VIDEO_CAPS_MAKE(FORMATS)));

G_DEFINE_TYPE(GstEchoViewOverlay, gst_echo_view_overlay, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(echoviewoverlay, "echoviewoverlay", GST_RANK_NONE,
                            GST_TYPE_ECHO_VIEW_OVERLAY);

/* ---- the panel ----------------------------------------------------------------------------- */

typedef struct {
    guint8 b, g, r, a; /* GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB in memory order (BGRA) */
} Pixel;

static const Pixel BACKGROUND = {0, 0, 0, 176};
static const Pixel TEXT = {255, 255, 255, 255};
static const Pixel BAR_EMPTY = {48, 48, 48, 255};
static const Pixel BAR_CONFIDENT = {60, 220, 60, 255}; /* green: above the threshold */
static const Pixel BAR_BELOW = {0, 160, 230, 255};     /* amber: below it */

typedef struct {
    Pixel *pixels;
    gint width, height, scale;
} Canvas;

static void fill(Canvas *c, gint x, gint y, gint w, gint h, Pixel p)
{
    for (gint yy = MAX(y, 0); yy < MIN(y + h, c->height); yy++)
        for (gint xx = MAX(x, 0); xx < MIN(x + w, c->width); xx++)
            c->pixels[(gsize)yy * c->width + xx] = p;
}

/* Draws text with its top left at font pixel (x, y). */
static void draw_text(Canvas *c, gint x, gint y, const gchar *text)
{
    const gint s = c->scale;

    for (; *text; text++, x += EV_GLYPH_ADVANCE) {
        const unsigned glyph = ev_glyph_3x5((unsigned char)*text);
        for (gint row = 0; row < EV_GLYPH_HEIGHT; row++)
            for (gint col = 0; col < EV_GLYPH_WIDTH; col++)
                if (ev_glyph_pixel(glyph, col, row))
                    fill(c, (x + col) * s, (y + row) * s, s, s, TEXT);
    }
}

/* The panel's lines for a meta (docs/GSTREAMER.md, "echoviewoverlay"). */
typedef struct {
    gchar label[MAX_LINE + 1], stable[MAX_LINE + 1], age[MAX_LINE + 1];
    gboolean has_result, confident;
    gint percent; /* confidence, whole percent */
} PanelText;

static void panel_text(const GstEchoViewMeta *meta, PanelText *t)
{
    memset(t, 0, sizeof *t);
    t->has_result = meta->age != GST_ECHO_VIEW_AGE_NONE;
    if (t->has_result) {
        t->percent = (gint)CLAMP(meta->confidence * 100.0f + 0.5f, 0.0f, 100.0f);
        t->confident = meta->label_id >= 0;
        g_snprintf(t->label, sizeof t->label, "%.40s %d%%", meta->label, t->percent);
        g_snprintf(t->age, sizeof t->age, "AGE %" G_GUINT64_FORMAT, meta->age);
    } else {
        g_strlcpy(t->label, "NO RESULT", sizeof t->label);
        g_strlcpy(t->age, "AGE -", sizeof t->age);
    }
    g_snprintf(t->stable, sizeof t->stable, "STABLE %.40s",
               meta->stable_label ? meta->stable_label : GST_ECHO_VIEW_LABEL_UNKNOWN);
}

/* The panel as an overlay rectangle at the frame's top left, cut to the frame; NULL when it
 * does not fit at all or memory runs out. */
static GstVideoOverlayRectangle *render_panel(const PanelText *t, gint scale, gint frame_width,
                                              gint frame_height)
{
    const gint columns = MAX(MAX((gint)strlen(t->label), (gint)strlen(t->stable)),
                             MAX((gint)strlen(t->age), BAR_CHARACTERS)) *
                             EV_GLYPH_ADVANCE -
                         1 + 2 * PAD;
    const gint rows = PAD + 3 * (EV_GLYPH_HEIGHT + LINE_GAP) + BAR_HEIGHT + PAD;
    const gint x0 = scale, y0 = scale; /* a margin of one font pixel */
    const gint bar_width = BAR_CHARACTERS * EV_GLYPH_ADVANCE - 1;
    gint width = MIN(columns * scale, frame_width - x0),
         height = MIN(rows * scale, frame_height - y0), y;
    GstBuffer *buffer;
    GstMapInfo map;
    Canvas c;
    GstVideoOverlayRectangle *rect;

    if (width < 1 || height < 1)
        return NULL;
    buffer = gst_buffer_new_allocate(NULL, (gsize)width * height * sizeof(Pixel), NULL);
    if (!buffer || !gst_buffer_map(buffer, &map, GST_MAP_WRITE)) {
        g_clear_pointer(&buffer, gst_buffer_unref);
        return NULL;
    }
    c = (Canvas){(Pixel *)map.data, width, height, scale};
    fill(&c, 0, 0, width, height, BACKGROUND);
    y = PAD;
    draw_text(&c, PAD, y, t->label);
    y += EV_GLYPH_HEIGHT + LINE_GAP;
    fill(&c, PAD * scale, y * scale, bar_width * scale, BAR_HEIGHT * scale, BAR_EMPTY);
    if (t->has_result)
        fill(&c, PAD * scale, y * scale, bar_width * scale * t->percent / 100, BAR_HEIGHT * scale,
             t->confident ? BAR_CONFIDENT : BAR_BELOW);
    y += BAR_HEIGHT + LINE_GAP;
    draw_text(&c, PAD, y, t->stable);
    y += EV_GLYPH_HEIGHT + LINE_GAP;
    draw_text(&c, PAD, y, t->age);
    gst_buffer_unmap(buffer, &map);
    gst_buffer_add_video_meta(buffer, GST_VIDEO_FRAME_FLAG_NONE,
                              GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, width, height);
    rect = gst_video_overlay_rectangle_new_raw(buffer, x0, y0, width, height,
                                               GST_VIDEO_OVERLAY_FORMAT_FLAG_NONE);
    gst_buffer_unref(buffer);
    return rect;
}

/* The composition showing meta on this stream's frames, rendered again only when what it shows
 * changed. NULL when the panel does not fit. */
static GstVideoOverlayComposition *panel_for(GstEchoViewOverlay *self, const GstEchoViewMeta *meta,
                                             gint scale)
{
    const gint width = GST_VIDEO_INFO_WIDTH(&self->info),
               height = GST_VIDEO_INFO_HEIGHT(&self->info);
    PanelText t;
    gchar *key;
    GstVideoOverlayRectangle *rect;

    panel_text(meta, &t);
    key = g_strdup_printf("%s|%s|%s|%d|%d|%dx%d", t.label, t.stable, t.age, t.confident, scale,
                          width, height);
    if (self->drawn && !strcmp(key, self->drawn)) {
        g_free(key);
        return self->composition;
    }
    g_free(self->drawn);
    self->drawn = key;
    g_clear_pointer(&self->composition, gst_video_overlay_composition_unref);
    rect = render_panel(&t, scale, width, height);
    if (rect) {
        self->composition = gst_video_overlay_composition_new(rect);
        gst_video_overlay_rectangle_unref(rect);
    }
    return self->composition;
}

/* ---- caps and downstream ------------------------------------------------------------------- */

/* Sink to source: each structure with the composition feature first (the panel may travel as a
 * meta), then as it is. Source to sink: the feature removed. */
static GstCaps *gst_echo_view_overlay_transform_caps(GstBaseTransform *trans,
                                                     GstPadDirection direction, GstCaps *caps,
                                                     GstCaps *filter)
{
    GstCaps *result = gst_caps_new_empty();

    for (guint i = 0; i < gst_caps_get_size(caps); i++) {
        const GstStructure *s = gst_caps_get_structure(caps, i);
        GstCapsFeatures *f = gst_caps_get_features(caps, i);
        GstCapsFeatures *plain;

        if (gst_caps_features_is_any(f)) {
            gst_caps_append_structure_full(result, gst_structure_copy(s),
                                           gst_caps_features_copy(f));
            continue;
        }
        plain = gst_caps_features_copy(f);
        gst_caps_features_remove(plain, GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
        if (gst_caps_features_get_size(plain) == 0)
            gst_caps_features_add(plain, GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY);
        if (direction == GST_PAD_SINK) {
            GstCapsFeatures *with = gst_caps_features_copy(plain);
            gst_caps_features_add(with, GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
            result = gst_caps_merge_structure_full(result, gst_structure_copy(s), with);
        }
        result = gst_caps_merge_structure_full(result, gst_structure_copy(s), plain);
    }
    if (filter) {
        GstCaps *filtered = gst_caps_intersect_full(filter, result, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(result);
        result = filtered;
    }
    GST_DEBUG_OBJECT(trans, "%s caps %" GST_PTR_FORMAT, direction == GST_PAD_SINK ? "src" : "sink",
                     result);
    return result;
}

static gboolean gst_echo_view_overlay_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                               GstCaps *outcaps)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(trans);

    if (!gst_video_info_from_caps(&self->info, incaps)) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Unsupported video format."),
                          ("caps %" GST_PTR_FORMAT, incaps));
        return FALSE;
    }
    /* downstream learns the caps after this returns: ask it on the first buffer */
    g_atomic_int_set(&self->check_downstream, TRUE);
    self->attach = FALSE;
    g_clear_pointer(&self->drawn, g_free);
    g_clear_pointer(&self->composition, gst_video_overlay_composition_unref);
    GST_DEBUG_OBJECT(self, "caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT, incaps, outcaps);
    return TRUE;
}

/* Whether downstream blends compositions itself: the source caps have the feature and its
 * allocation answer lists the meta (an in-place transform never runs decide_allocation). */
static gboolean downstream_takes_composition(GstEchoViewOverlay *self)
{
    GstPad *src = GST_BASE_TRANSFORM_SRC_PAD(self);
    GstCaps *caps = gst_pad_get_current_caps(src);
    gboolean takes = FALSE;

    if (caps && gst_caps_features_contains(gst_caps_get_features(caps, 0),
                                           GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION)) {
        GstQuery *query = gst_query_new_allocation(caps, FALSE);
        if (gst_pad_peer_query(src, query))
            takes = gst_query_find_allocation_meta(
                query, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE, NULL);
        gst_query_unref(query);
    }
    if (caps)
        gst_caps_unref(caps);
    return takes;
}

/* ---- the frame path ------------------------------------------------------------------------ */

/* The meta to draw: the classifier's with unique_id, or (0) the first a classifier wrote. */
static GstEchoViewMeta *find_meta(GstBuffer *buf, guint unique_id)
{
    gpointer state = NULL;
    GstMeta *m;

    if (unique_id)
        return gst_buffer_get_echo_view_meta_by_id(buf, unique_id);
    while ((m = gst_buffer_iterate_meta_filtered(buf, &state, GST_ECHO_VIEW_META_API_TYPE)))
        if (((GstEchoViewMeta *)m)->unique_id != 0)
            return (GstEchoViewMeta *)m;
    return NULL;
}

static GstFlowReturn gst_echo_view_overlay_transform_ip(GstBaseTransform *trans, GstBuffer *buf)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(trans);
    GstVideoOverlayComposition *composition;
    GstEchoViewMeta *meta;
    guint unique_id, font_scale;
    gint scale;

    if (g_atomic_int_compare_and_exchange(&self->check_downstream, TRUE, FALSE)) {
        self->attach = downstream_takes_composition(self);
        GST_INFO_OBJECT(self, "%s the panel", self->attach ? "attaching" : "blending");
    }
    GST_OBJECT_LOCK(self);
    unique_id = self->unique_id;
    font_scale = self->font_scale;
    GST_OBJECT_UNLOCK(self);

    meta = find_meta(buf, unique_id);
    if (!meta)
        return GST_FLOW_OK; /* nothing classified this frame: it passes untouched */
    scale = font_scale ? (gint)font_scale : MAX(1, GST_VIDEO_INFO_HEIGHT(&self->info) / 160);
    composition = panel_for(self, meta, scale);
    if (!composition)
        return GST_FLOW_OK;

    if (self->attach) {
        GstVideoOverlayCompositionMeta *existing =
            gst_buffer_get_video_overlay_composition_meta(buf);
        if (existing) {
            /* an upstream overlay's rectangles stay, under ours */
            GstVideoOverlayComposition *both =
                gst_video_overlay_composition_copy(existing->overlay);
            gst_video_overlay_composition_add_rectangle(
                both, gst_video_overlay_composition_get_rectangle(composition, 0));
            gst_buffer_remove_video_overlay_composition_meta(buf, existing);
            gst_buffer_add_video_overlay_composition_meta(buf, both);
            gst_video_overlay_composition_unref(both);
        } else {
            gst_buffer_add_video_overlay_composition_meta(buf, composition);
        }
    } else {
        GstVideoFrame frame;
        if (!gst_video_frame_map(&frame, &self->info, buf, GST_MAP_READWRITE)) {
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Could not map the video frame."), (NULL));
            return GST_FLOW_ERROR;
        }
        gst_video_overlay_composition_blend(composition, &frame);
        gst_video_frame_unmap(&frame);
    }
    return GST_FLOW_OK;
}

/* A downstream change (a sink that now blends compositions, or no longer does) shows as a
 * RECONFIGURE event: ask again on the next buffer. The pad's reconfigure flag stays the base
 * class's, which renegotiates the caps. */
static gboolean gst_echo_view_overlay_src_event(GstBaseTransform *trans, GstEvent *event)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(trans);

    if (GST_EVENT_TYPE(event) == GST_EVENT_RECONFIGURE)
        g_atomic_int_set(&self->check_downstream, TRUE);
    return GST_BASE_TRANSFORM_CLASS(gst_echo_view_overlay_parent_class)->src_event(trans, event);
}

static gboolean gst_echo_view_overlay_stop(GstBaseTransform *trans)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(trans);

    g_clear_pointer(&self->drawn, g_free);
    g_clear_pointer(&self->composition, gst_video_overlay_composition_unref);
    self->attach = FALSE;
    return TRUE;
}

/* ---- properties ---------------------------------------------------------------------------- */

static void gst_echo_view_overlay_set_property(GObject *object, guint prop_id, const GValue *value,
                                               GParamSpec *pspec)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_UNIQUE_ID:
        self->unique_id = g_value_get_uint(value);
        break;
    case PROP_FONT_SCALE:
        self->font_scale = g_value_get_uint(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_echo_view_overlay_get_property(GObject *object, guint prop_id, GValue *value,
                                               GParamSpec *pspec)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_UNIQUE_ID:
        g_value_set_uint(value, self->unique_id);
        break;
    case PROP_FONT_SCALE:
        g_value_set_uint(value, self->font_scale);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_echo_view_overlay_finalize(GObject *object)
{
    GstEchoViewOverlay *self = GST_ECHO_VIEW_OVERLAY(object);

    g_free(self->drawn);
    g_clear_pointer(&self->composition, gst_video_overlay_composition_unref);
    G_OBJECT_CLASS(gst_echo_view_overlay_parent_class)->finalize(object);
}

static void gst_echo_view_overlay_init(GstEchoViewOverlay *self)
{
    self->unique_id = DEFAULT_UNIQUE_ID;
    self->font_scale = DEFAULT_FONT_SCALE;
    /* in place: blending writes into the frame (mapping it for writing copies shared memory);
     * attaching only adds a meta */
    gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
    gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}

static void gst_echo_view_overlay_class_init(GstEchoViewOverlayClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);

    GST_DEBUG_CATEGORY_INIT(gst_echo_view_overlay_debug, "echoviewoverlay", 0,
                            "draws echoviewclassify's result on the video");
    gobject_class->set_property = gst_echo_view_overlay_set_property;
    gobject_class->get_property = gst_echo_view_overlay_get_property;
    gobject_class->finalize = gst_echo_view_overlay_finalize;

    g_object_class_install_property(
        gobject_class, PROP_UNIQUE_ID,
        g_param_spec_uint("unique-id", "Unique id",
                          "Whose result to draw: the unique-id of an upstream echoviewclassify; "
                          "0 draws the first classifier's result on the buffer (default 0)",
                          0, G_MAXUINT, DEFAULT_UNIQUE_ID,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        gobject_class, PROP_FONT_SCALE,
        g_param_spec_uint("font-scale", "Font scale",
                          "Size of one pixel of the 3x5 font, in video pixels (a character is "
                          "3 x 5 of them); 0 picks the frame height / 160, at least 1 (default 0)",
                          0, MAX_FONT_SCALE, DEFAULT_FONT_SCALE,
                          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));

    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Echo view overlay", "Filter/Editor/Video",
        "Draws echoviewclassify's result (label, confidence bar, stable label, age) on the "
        "video, or attaches it as a GstVideoOverlayComposition for downstream to blend",
        "echoview <echoview@localhost>");

    trans_class->transform_caps = GST_DEBUG_FUNCPTR(gst_echo_view_overlay_transform_caps);
    trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_echo_view_overlay_set_caps);
    trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_echo_view_overlay_transform_ip);
    trans_class->stop = GST_DEBUG_FUNCPTR(gst_echo_view_overlay_stop);
    trans_class->src_event = GST_DEBUG_FUNCPTR(gst_echo_view_overlay_src_event);
    trans_class->passthrough_on_same_caps = FALSE;
    trans_class->transform_ip_on_passthrough = FALSE;
}
