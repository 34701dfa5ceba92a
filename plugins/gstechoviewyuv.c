/* gstechoviewyuv.c: YUV frames as full-range RGB for echoviewclassify (gstechoviewyuv.h). */
#include "gstechoviewyuv.h"

#include <math.h>

void gst_echo_view_yuv_tables_init(GstEchoViewYuvTables *t, const GstVideoInfo *info)
{
    gdouble kr, kb, kg;
    gint offset[GST_VIDEO_MAX_COMPONENTS], scale[GST_VIDEO_MAX_COMPONENTS];

    if (!gst_video_color_matrix_get_Kr_Kb(info->colorimetry.matrix, &kr, &kb) ||
        info->colorimetry.matrix == GST_VIDEO_COLOR_MATRIX_RGB)
        gst_video_color_matrix_get_Kr_Kb(GST_VIDEO_COLOR_MATRIX_BT601, &kr, &kb);
    kg = 1.0 - kr - kb;
    gst_video_color_range_offsets(info->colorimetry.range, info->finfo, offset, scale);
    for (gint v = 0; v < 256; v++) {
        const gdouble y = (v - offset[0]) * 255.0 / scale[0];
        const gdouble cb = (v - offset[1]) * 255.0 / scale[1];
        const gdouble cr = (v - offset[2]) * 255.0 / scale[2];
        t->luma[v] = (gfloat)y;
        t->cr_red[v] = (gfloat)(2.0 * (1.0 - kr) * cr);
        t->cb_blue[v] = (gfloat)(2.0 * (1.0 - kb) * cb);
        t->cb_green[v] = (gfloat)(-2.0 * kb * (1.0 - kb) / kg * cb);
        t->cr_green[v] = (gfloat)(-2.0 * kr * (1.0 - kr) / kg * cr);
    }
}

static inline guint8 to8(gfloat v)
{
    return v <= 0.0f ? 0 : v >= 255.0f ? 255 : (guint8)(v + 0.5f);
}

gboolean gst_echo_view_yuv_to_rgb(const GstEchoViewYuvTables *t, const GstVideoFrame *frame,
                                  const ev_rect *region, guint8 *rgb, gsize stride)
{
    const GstVideoFormat format = GST_VIDEO_FRAME_FORMAT(frame);
    const gint x0 = region->x, x1 = region->x + region->width;

    if (format != GST_VIDEO_FORMAT_I420 && format != GST_VIDEO_FORMAT_NV12)
        return FALSE;
    for (gint y = region->y; y < region->y + region->height; y++) {
        const guint8 *luma = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(frame, 0) +
                             (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
        const guint8 *u, *v;
        gint step; /* bytes from one chroma sample to the next */
        guint8 *out = rgb + (gsize)y * stride + (gsize)x0 * 3;

        if (format == GST_VIDEO_FORMAT_I420) {
            u = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(frame, 1) +
                (gsize)(y / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(frame, 1);
            v = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(frame, 2) +
                (gsize)(y / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(frame, 2);
            step = 1;
        } else {
            u = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(frame, 1) +
                (gsize)(y / 2) * GST_VIDEO_FRAME_PLANE_STRIDE(frame, 1);
            v = u + 1;
            step = 2;
        }
        for (gint x = x0; x < x1; x++, out += 3) {
            const gfloat l = t->luma[luma[x]];
            const guint8 cb = u[(x / 2) * step], cr = v[(x / 2) * step];
            out[0] = to8(l + t->cr_red[cr]);
            out[1] = to8(l + t->cb_green[cb] + t->cr_green[cr]);
            out[2] = to8(l + t->cb_blue[cb]);
        }
    }
    return TRUE;
}
