/* gstechoviewroi.h: echoviewclassify's frame glue: GStreamer video formats as the engine's pixel
 * formats, and the region of a stream's frames the network sees (the `roi` property: a fixed
 * rectangle, the full frame, the region an upstream GstVideoRegionOfInterestMeta gives, or
 * (auto) that meta when present and else the ultrasound sector detected after every reset and
 * every `roi-interval` frames). */
#ifndef GST_ECHO_VIEW_ROI_H
#define GST_ECHO_VIEW_ROI_H

#include <gst/video/video.h>

#include "echoview.h"

G_BEGIN_DECLS

typedef enum {
    GST_ECHO_VIEW_ROI_AUTO,
    GST_ECHO_VIEW_ROI_FULL,
    GST_ECHO_VIEW_ROI_FIXED,
    GST_ECHO_VIEW_ROI_META,
} GstEchoViewRoiMode;

/* The roi_type of the GstVideoRegionOfInterestMeta dicomsrc attaches (the file's region). */
#define GST_ECHO_VIEW_ROI_META_TYPE "ultrasound-region"

typedef struct {
    GstEchoViewRoiMode mode;
    ev_rect fixed;       /* mode FIXED: the rectangle from the property */
    ev_rect fixed_cut;   /* mode FIXED: fixed cut to the current frame (gst_echo_view_roi_cut) */
    gboolean valid;      /* a region is chosen (false after a reset or new caps) */
    gboolean from_meta;  /* modes AUTO, META: active came from the latest buffer's meta */
    ev_rect active;      /* the region in use */
    guint64 detected_at; /* mode AUTO: the frame index of the last detection */
    /* mode AUTO: the screen type the last detection found (ev_detect_screen); the other modes
     * and a fresh state say EV_SCREEN_UNDECIDED */
    ev_screen_type screen;
} GstEchoViewRoi;

/* What gst_echo_view_roi_set_from_meta did with a buffer's meta. */
typedef enum {
    GST_ECHO_VIEW_ROI_META_USED,    /* its rectangle is the region */
    GST_ECHO_VIEW_ROI_META_CUT,     /* its rectangle, cut to the frame, is the region */
    GST_ECHO_VIEW_ROI_META_OUTSIDE, /* no part of it lies inside the frame: ignored */
    GST_ECHO_VIEW_ROI_META_ABSENT,  /* the buffer has none */
} GstEchoViewRoiMetaResult;

/* The engine's format for a GStreamer one; FALSE for formats the element does not take. */
gboolean gst_echo_view_pixel_format(GstVideoFormat format, ev_pixel_format *out);

/* Reads the property: "auto" (or NULL), "full", "meta" or "x,y,width,height" with x, y >= 0
 * and width, height > 0. FALSE (roi unchanged) for anything else. */
gboolean gst_echo_view_roi_parse(GstEchoViewRoi *roi, const gchar *text);
/* Whether a fixed rectangle lies inside a width x height frame (always TRUE for other modes). */
gboolean gst_echo_view_roi_fits(const GstEchoViewRoi *roi, gint width, gint height);
/* Mode FIXED: cuts the rectangle to a width x height frame (fixed_cut, what update uses);
 * FALSE when no part of it lies inside (fixed_cut unchanged). TRUE for other modes. */
gboolean gst_echo_view_roi_cut(GstEchoViewRoi *roi, gint width, gint height);
/* The region of interest meta a mode reads on buf: META the one of type
 * GST_ECHO_VIEW_ROI_META_TYPE, else the first of any type; AUTO only one of that type; other
 * modes none. NULL when there is none. */
GstVideoRegionOfInterestMeta *gst_echo_view_roi_find_meta(const GstEchoViewRoi *roi,
                                                          GstBuffer *buf);
/* Modes AUTO and META, for every frame: takes the region of meta (NULL: the buffer has none)
 * cut to the width x height frame. Mode META keeps the last region while buffers come without
 * one (the whole frame before the first); mode AUTO goes back to detecting the sector when they
 * stop coming. */
GstEchoViewRoiMetaResult gst_echo_view_roi_set_from_meta(GstEchoViewRoi *roi,
                                                         const GstVideoRegionOfInterestMeta *meta,
                                                         gint width, gint height);
/* Forgets the region and the screen type (a reset, new caps): the next update chooses again. */
void gst_echo_view_roi_invalidate(GstEchoViewRoi *roi);
/* Whether gst_echo_view_roi_update would choose a region for this frame (else the active one
 * stays). */
gboolean gst_echo_view_roi_due(const GstEchoViewRoi *roi, guint64 frame_index, guint interval);
/* Chooses the region for frame number frame_index (since the reset). Returns TRUE when it chose
 * (then active is the region and *whole_frame tells a failed detection that fell back to the
 * whole frame), FALSE when the current region stays. In mode AUTO the detection also decides
 * the screen type (roi->screen): a frame without a 2D fan is EV_SCREEN_NOT_2D. */
gboolean gst_echo_view_roi_update(GstEchoViewRoi *roi, const ev_frame *frame, guint64 frame_index,
                                  guint interval, gboolean *whole_frame);

G_END_DECLS

#endif
