/* evd_thumbnail.c: stream thumbnails and their PNG encoding (evd_thumbnail.h). */
#include "evd_thumbnail.h"

#include <string.h>
#include <zlib.h>

gboolean evd_thumbnail_take(EvdThumbnail *thumb, const GstVideoInfo *info, GstBuffer *buffer,
                            gint64 now)
{
    GstVideoFrame frame;
    const GstVideoFormatInfo *finfo = info->finfo;
    guint w = GST_VIDEO_INFO_WIDTH(info), h = GST_VIDEO_INFO_HEIGHT(info), tw, th;
    gboolean rgb = GST_VIDEO_FORMAT_INFO_IS_RGB(finfo);
    gint r_off = 0, g_off = 0, b_off = 0, pstride;
    const guint8 *data;
    gint stride;

    if (!w || !h || (!rgb && !GST_VIDEO_FORMAT_INFO_IS_YUV(finfo) &&
                     !GST_VIDEO_FORMAT_INFO_IS_GRAY(finfo)))
        return FALSE;
    if (GST_VIDEO_FORMAT_INFO_DEPTH(finfo, 0) != 8)
        return FALSE;
    if (rgb) { /* packed, 8 bits a component: the offsets of R, G, B in a pixel */
        if (GST_VIDEO_FORMAT_INFO_N_PLANES(finfo) != 1)
            return FALSE;
        r_off = GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 0);
        g_off = GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 1);
        b_off = GST_VIDEO_FORMAT_INFO_POFFSET(finfo, 2);
    } else if (GST_VIDEO_FORMAT_INFO_N_PLANES(finfo) == 1 &&
               !GST_VIDEO_FORMAT_INFO_IS_GRAY(finfo)) {
        return FALSE; /* packed YUV (YUY2, ...): not read here */
    }
    if (w >= h) {
        tw = MIN(w, EVD_THUMB_MAX_SIDE);
        th = MAX(1u, (guint)((guint64)h * tw / w));
    } else {
        th = MIN(h, EVD_THUMB_MAX_SIDE);
        tw = MAX(1u, (guint)((guint64)w * th / h));
    }
    if (!gst_video_frame_map(&frame, (GstVideoInfo *)info, buffer, GST_MAP_READ))
        return FALSE;
    data = GST_VIDEO_FRAME_PLANE_DATA(&frame, 0);
    stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    pstride = GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, 0);
    for (guint y = 0; y < th; y++) {
        const guint8 *line = data + (gsize)(y * h / th) * stride;
        for (guint x = 0; x < tw; x++) {
            guint sx = x * w / tw;
            guint8 v;
            if (rgb) {
                const guint8 *p = line + (gsize)sx * pstride;
                v = (guint8)((77 * p[r_off] + 150 * p[g_off] + 29 * p[b_off]) >> 8);
            } else {
                v = line[(gsize)sx * pstride];
            }
            thumb->pixels[y * tw + x] = v;
        }
    }
    gst_video_frame_unmap(&frame);
    thumb->width = tw;
    thumb->height = th;
    thumb->taken = now;
    return TRUE;
}

static void put32(guint8 *p, guint32 v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

/* One PNG chunk: length, type, data, CRC of type and data. */
static void chunk(GByteArray *out, const gchar *type, const guint8 *data, guint32 len)
{
    guint8 word[4];
    uLong crc;

    put32(word, len);
    g_byte_array_append(out, word, 4);
    g_byte_array_append(out, (const guint8 *)type, 4);
    if (len)
        g_byte_array_append(out, data, len);
    crc = crc32(0, (const Bytef *)type, 4);
    if (len)
        crc = crc32(crc, data, len);
    put32(word, (guint32)crc);
    g_byte_array_append(out, word, 4);
}

guint8 *evd_thumbnail_png(const EvdThumbnail *thumb, gsize *len)
{
    static const guint8 signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    GByteArray *out = g_byte_array_new();
    guint8 ihdr[13];
    gsize raw_len = (gsize)(thumb->width + 1) * thumb->height;
    guint8 *raw = g_malloc(raw_len);
    uLongf z_len = compressBound(raw_len);
    guint8 *z = g_malloc(z_len);

    for (guint y = 0; y < thumb->height; y++) {
        raw[y * (thumb->width + 1)] = 0; /* filter: none */
        memcpy(raw + y * (thumb->width + 1) + 1, thumb->pixels + y * thumb->width, thumb->width);
    }
    if (compress2(z, &z_len, raw, raw_len, 6) != Z_OK)
        z_len = 0;
    g_byte_array_append(out, signature, 8);
    put32(ihdr, thumb->width);
    put32(ihdr + 4, thumb->height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 0;  /* greyscale */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* no interlace */
    chunk(out, "IHDR", ihdr, 13);
    chunk(out, "IDAT", z, (guint32)z_len);
    chunk(out, "IEND", NULL, 0);
    g_free(raw);
    g_free(z);
    *len = out->len;
    return g_byte_array_free(out, FALSE);
}
