/* gstechoviewyuv.h: echoviewclassify's YUV input (I420, NV12) as full-range RGB, with the range
 * and matrix of the caps' colorimetry, so the engine sees the picture an RGB or GRAY8 frame of
 * it would give (a gray model: the engine's BT.601 luma of that RGB, exactly the gray value when
 * the chroma is neutral; a colour model: its R, G, B). The textbook conversion in float tables,
 * rounded once: GStreamer's GstVideoConverter fast path is off by up to 3 levels here. */
#ifndef GST_ECHO_VIEW_YUV_H
#define GST_ECHO_VIEW_YUV_H

#include <gst/video/video.h>

#include "echoview.h"

G_BEGIN_DECLS

typedef struct {
    gfloat luma[256];   /* Y on the full 0..255 scale */
    gfloat cr_red[256]; /* what Cr adds to red */
    gfloat cb_green[256], cr_green[256];
    gfloat cb_blue[256]; /* what Cb adds to blue */
} GstEchoViewYuvTables;

/* Tables for the colorimetry of info (a YUV format). A matrix the caps leave unknown is BT.601,
 * as gst_video_info_from_caps and videoconvert take it for SD sizes. */
void gst_echo_view_yuv_tables_init(GstEchoViewYuvTables *tables, const GstVideoInfo *info);

/* Converts region of an I420 or NV12 frame into the same pixels of an RGB image (3 bytes per
 * pixel, rows of stride bytes, the frame's size); chroma is the sample of each pixel's 2x2 block
 * (4:2:0, no interpolation). FALSE for other formats. */
gboolean gst_echo_view_yuv_to_rgb(const GstEchoViewYuvTables *tables, const GstVideoFrame *frame,
                                  const ev_rect *region, guint8 *rgb, gsize stride);

G_END_DECLS

#endif
