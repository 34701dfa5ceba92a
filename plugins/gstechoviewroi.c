/* gstechoviewroi.c: video formats and the region of interest of echoviewclassify
 * (gstechoviewroi.h). */
#include "gstechoviewroi.h"

#include <stdio.h>

gboolean gst_echo_view_pixel_format(GstVideoFormat format, ev_pixel_format *out)
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

gboolean gst_echo_view_roi_parse(GstEchoViewRoi *roi, const gchar *text)
{
    ev_rect rect;
    char extra;

    if (!text || !g_ascii_strcasecmp(text, "auto")) {
        roi->mode = GST_ECHO_VIEW_ROI_AUTO;
        return TRUE;
    }
    if (!g_ascii_strcasecmp(text, "full")) {
        roi->mode = GST_ECHO_VIEW_ROI_FULL;
        return TRUE;
    }
    if (!g_ascii_strcasecmp(text, "meta")) {
        roi->mode = GST_ECHO_VIEW_ROI_META;
        return TRUE;
    }
    if (sscanf(text, "%d,%d,%d,%d%c", &rect.x, &rect.y, &rect.width, &rect.height, &extra) == 4 &&
        rect.x >= 0 && rect.y >= 0 && rect.width > 0 && rect.height > 0) {
        roi->mode = GST_ECHO_VIEW_ROI_FIXED;
        roi->fixed = rect;
        roi->fixed_cut = rect;
        return TRUE;
    }
    return FALSE;
}

gboolean gst_echo_view_roi_fits(const GstEchoViewRoi *roi, gint width, gint height)
{
    return roi->mode != GST_ECHO_VIEW_ROI_FIXED ||
           (roi->fixed.x <= width - roi->fixed.width && roi->fixed.y <= height - roi->fixed.height);
}

/* The part of (x, y, width, height) inside a frame_width x frame_height frame, in 64 bits so that
 * no rectangle overflows; FALSE when it is empty. */
static gboolean intersect(gint64 x, gint64 y, gint64 width, gint64 height, gint frame_width,
                          gint frame_height, ev_rect *out)
{
    const gint64 x0 = MAX(x, 0), y0 = MAX(y, 0), x1 = MIN(x + width, (gint64)frame_width),
                 y1 = MIN(y + height, (gint64)frame_height);

    if (x1 <= x0 || y1 <= y0)
        return FALSE;
    *out = (ev_rect){(int)x0, (int)y0, (int)(x1 - x0), (int)(y1 - y0)};
    return TRUE;
}

gboolean gst_echo_view_roi_cut(GstEchoViewRoi *roi, gint width, gint height)
{
    if (roi->mode != GST_ECHO_VIEW_ROI_FIXED)
        return TRUE;
    return intersect(roi->fixed.x, roi->fixed.y, roi->fixed.width, roi->fixed.height, width, height,
                     &roi->fixed_cut);
}

GstVideoRegionOfInterestMeta *gst_echo_view_roi_find_meta(const GstEchoViewRoi *roi, GstBuffer *buf)
{
    GstVideoRegionOfInterestMeta *first = NULL, *m;
    gpointer state = NULL;
    const GQuark ultrasound = g_quark_from_static_string(GST_ECHO_VIEW_ROI_META_TYPE);

    if (roi->mode != GST_ECHO_VIEW_ROI_META && roi->mode != GST_ECHO_VIEW_ROI_AUTO)
        return NULL;
    while ((m = (GstVideoRegionOfInterestMeta *)gst_buffer_iterate_meta_filtered(
                buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
        if (m->roi_type == ultrasound)
            return m;
        if (!first)
            first = m;
    }
    return roi->mode == GST_ECHO_VIEW_ROI_META ? first : NULL;
}

GstEchoViewRoiMetaResult gst_echo_view_roi_set_from_meta(GstEchoViewRoi *roi,
                                                         const GstVideoRegionOfInterestMeta *meta,
                                                         gint width, gint height)
{
    ev_rect cut;
    GstEchoViewRoiMetaResult result;

    if (meta && intersect(meta->x, meta->y, meta->w, meta->h, width, height, &cut)) {
        result = cut.x == (int)meta->x && cut.y == (int)meta->y && cut.width == (int)meta->w &&
                         cut.height == (int)meta->h
                     ? GST_ECHO_VIEW_ROI_META_USED
                     : GST_ECHO_VIEW_ROI_META_CUT;
        roi->active = cut;
        roi->valid = TRUE;
        roi->from_meta = TRUE;
        roi->screen = EV_SCREEN_UNDECIDED; /* the source says where the image is */
        return result;
    }
    result = meta ? GST_ECHO_VIEW_ROI_META_OUTSIDE : GST_ECHO_VIEW_ROI_META_ABSENT;
    if (roi->mode == GST_ECHO_VIEW_ROI_AUTO && roi->from_meta) {
        roi->from_meta = FALSE;
        roi->valid = FALSE; /* detect the sector on this frame */
    } else if (roi->mode == GST_ECHO_VIEW_ROI_META && !roi->valid) {
        roi->active = (ev_rect){0, 0, width, height};
        roi->valid = TRUE;
    }
    return result;
}

void gst_echo_view_roi_invalidate(GstEchoViewRoi *roi)
{
    roi->valid = FALSE;
    roi->from_meta = FALSE;
    roi->screen = EV_SCREEN_UNDECIDED;
}

gboolean gst_echo_view_roi_due(const GstEchoViewRoi *roi, guint64 frame_index, guint interval)
{
    if (!roi->valid)
        return TRUE;
    return roi->mode == GST_ECHO_VIEW_ROI_AUTO && !roi->from_meta && interval != 0 &&
           frame_index - roi->detected_at >= interval;
}

gboolean gst_echo_view_roi_update(GstEchoViewRoi *roi, const ev_frame *frame, guint64 frame_index,
                                  guint interval, gboolean *whole_frame)
{
    ev_screen_info screen;

    *whole_frame = FALSE;
    switch (roi->mode) {
    case GST_ECHO_VIEW_ROI_FULL:
        roi->screen = EV_SCREEN_UNDECIDED;
        roi->active = (ev_rect){0, 0, frame->width, frame->height};
        break;
    case GST_ECHO_VIEW_ROI_FIXED:
        roi->screen = EV_SCREEN_UNDECIDED;
        roi->active = roi->fixed_cut;
        break;
    case GST_ECHO_VIEW_ROI_META:
        roi->screen = EV_SCREEN_UNDECIDED;
        if (roi->valid)
            return FALSE; /* set_from_meta chose */
        roi->active = (ev_rect){0, 0, frame->width, frame->height};
        break;
    case GST_ECHO_VIEW_ROI_AUTO:
        if (!gst_echo_view_roi_due(roi, frame_index, interval))
            return FALSE;
        if (ev_detect_screen(frame, &screen) != EV_OK)
            screen = (ev_screen_info){.type = EV_SCREEN_UNDECIDED}; /* out of memory: as before */
        roi->screen = screen.type;
        if (screen.region_found) {
            roi->active = screen.roi;
        } else if (!roi->valid) {
            /* no sector stands out: the whole frame, until a later detection finds one */
            *whole_frame = TRUE;
            roi->active = (ev_rect){0, 0, frame->width, frame->height};
        }
        roi->detected_at = frame_index;
        break;
    }
    roi->valid = TRUE;
    return TRUE;
}
