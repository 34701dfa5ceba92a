/* gstechoviewroi.h: echoviewclassify's frame glue: GStreamer video formats as the engine's pixel
 * formats, and the region of a stream's frames the network sees (the `roi` property: a fixed
 * rectangle, the full frame, or the ultrasound sector detected after every reset and every
 * `roi-interval` frames). */
#ifndef GST_ECHO_VIEW_ROI_H
#define GST_ECHO_VIEW_ROI_H

#include <gst/video/video.h>

#include "echoview.h"

G_BEGIN_DECLS

typedef enum {
    GST_ECHO_VIEW_ROI_AUTO,
    GST_ECHO_VIEW_ROI_FULL,
    GST_ECHO_VIEW_ROI_FIXED,
} GstEchoViewRoiMode;

typedef struct {
    GstEchoViewRoiMode mode;
    ev_rect fixed;       /* mode FIXED: the rectangle from the property */
    gboolean valid;      /* a region is chosen (false after a reset or new caps) */
    ev_rect active;      /* the region in use */
    guint64 detected_at; /* mode AUTO: the frame index of the last detection */
    /* mode AUTO: the screen type the last detection found (ev_detect_screen); the other modes
     * and a fresh state say EV_SCREEN_UNDECIDED */
    ev_screen_type screen;
} GstEchoViewRoi;

/* The engine's format for a GStreamer one; FALSE for formats the element does not take. */
gboolean gst_echo_view_pixel_format(GstVideoFormat format, ev_pixel_format *out);

/* Reads the property: "auto" (or NULL), "full" or "x,y,width,height" with x, y >= 0 and
 * width, height > 0. FALSE (roi unchanged) for anything else. */
gboolean gst_echo_view_roi_parse(GstEchoViewRoi *roi, const gchar *text);
/* Whether a fixed rectangle lies inside a width x height frame (always TRUE for other modes). */
gboolean gst_echo_view_roi_fits(const GstEchoViewRoi *roi, gint width, gint height);
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
