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
    if (sscanf(text, "%d,%d,%d,%d%c", &rect.x, &rect.y, &rect.width, &rect.height, &extra) == 4 &&
        rect.x >= 0 && rect.y >= 0 && rect.width > 0 && rect.height > 0) {
        roi->mode = GST_ECHO_VIEW_ROI_FIXED;
        roi->fixed = rect;
        return TRUE;
    }
    return FALSE;
}

gboolean gst_echo_view_roi_fits(const GstEchoViewRoi *roi, gint width, gint height)
{
    return roi->mode != GST_ECHO_VIEW_ROI_FIXED ||
           (roi->fixed.x <= width - roi->fixed.width && roi->fixed.y <= height - roi->fixed.height);
}

void gst_echo_view_roi_invalidate(GstEchoViewRoi *roi)
{
    roi->valid = FALSE;
    roi->screen = EV_SCREEN_UNDECIDED;
}

gboolean gst_echo_view_roi_due(const GstEchoViewRoi *roi, guint64 frame_index, guint interval)
{
    if (!roi->valid)
        return TRUE;
    return roi->mode == GST_ECHO_VIEW_ROI_AUTO && interval != 0 &&
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
        roi->active = roi->fixed;
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
