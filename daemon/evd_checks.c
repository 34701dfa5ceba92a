/* evd_checks.c: the size check of RFC 4175 streams and the frozen-frame check (evd_checks.h). */
#include "evd_checks.h"

#include <string.h>

/* ---- size ------------------------------------------------------------------------------- */

gboolean evd_size_check_pgroup(const gchar *sampling, guint depth, guint *bytes, guint *pixels,
                               guint *line_step)
{
    /* RFC 4175 section 4.3: samples per unit of pixels, then the smallest whole number of
   * units that fills whole octets is one pixel group. */
    static const struct {
        const gchar *name;
        guint samples, unit_pixels, lines;
    } table[] = {
        {"RGB", 3, 1, 1},         {"BGR", 3, 1, 1},         {"RGBA", 4, 1, 1},
        {"BGRA", 4, 1, 1},        {"YCbCr-4:4:4", 3, 1, 1}, {"YCbCr-4:2:2", 4, 2, 1},
        {"YCbCr-4:2:0", 6, 2, 2}, {"YCbCr-4:1:1", 6, 4, 1},
    };

    if (depth == 0 || depth > 16)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        guint units = 1;
        if (strcmp(table[i].name, sampling) != 0)
            continue;
        while ((units * table[i].samples * depth) % 8 != 0)
            units++;
        *bytes = units * table[i].samples * depth / 8;
        *pixels = units * table[i].unit_pixels;
        *line_step = table[i].lines;
        return TRUE;
    }
    return FALSE;
}

void evd_size_check_init(EvdSizeCheck *c, const gchar *sampling, guint depth, guint width,
                         guint height)
{
    memset(c, 0, sizeof *c);
    if (!width || !height || !sampling ||
        !evd_size_check_pgroup(sampling, depth, &c->pgroup_bytes, &c->pgroup_pixels,
                               &c->line_step))
        return;
    c->width = width;
    c->height = height;
}

static void size_frame_done(EvdSizeCheck *c)
{
    gboolean ok;

    if (!c->in_frame)
        return;
    c->in_frame = FALSE;
    c->seen_width = c->frame_width;
    c->seen_height = c->frame_height;
    c->frames_checked++;
    ok = c->frame_width == c->width && c->frame_height == c->height;
    if (ok) {
        c->bad_run = 0;
        if (++c->good_run >= EVD_SIZE_GOOD_FRAMES)
            c->mismatch = FALSE;
    } else {
        c->frames_mismatched++;
        c->good_run = 0;
        if (++c->bad_run >= EVD_SIZE_BAD_FRAMES)
            c->mismatch = TRUE;
    }
}

/* The payload of an RTP packet (RFC 3550 section 5.1: CSRCs, extension, padding skipped);
 * FALSE for a packet too short for its own header. */
static gboolean rtp_payload(const guint8 *data, gsize size, guint32 *timestamp, gboolean *marker,
                            const guint8 **payload, gsize *payload_len)
{
    gsize header, padding = 0;

    if (size < 12 || (data[0] >> 6) != 2)
        return FALSE;
    header = 12 + 4 * (gsize)(data[0] & 0x0f);
    if (data[0] & 0x10) {
        if (size < header + 4)
            return FALSE;
        header += 4 + 4 * (gsize)((data[header + 2] << 8) | data[header + 3]);
    }
    if (data[0] & 0x20)
        padding = data[size - 1];
    if (size < header + padding)
        return FALSE;
    *marker = (data[1] & 0x80) != 0;
    *timestamp = ((guint32)data[4] << 24) | ((guint32)data[5] << 16) | ((guint32)data[6] << 8) |
                 data[7];
    *payload = data + header;
    *payload_len = size - header - padding;
    return TRUE;
}

void evd_size_check_packet(EvdSizeCheck *c, GstBuffer *rtp)
{
    GstMapInfo map;
    const guint8 *p, *end;
    gsize len;
    guint32 timestamp;
    gboolean marker, more = TRUE;

    if (!c->width || !gst_buffer_map(rtp, &map, GST_MAP_READ))
        return;
    if (!rtp_payload(map.data, map.size, &timestamp, &marker, &p, &len)) {
        gst_buffer_unmap(rtp, &map);
        return;
    }
    end = p + len;
    if (c->in_frame && timestamp != c->timestamp)
        size_frame_done(c); /* the marker of the last frame was lost */
    if (end - p >= 2 + 6) {
        if (!c->in_frame) {
            c->in_frame = TRUE;
            c->timestamp = timestamp;
            c->frame_width = c->frame_height = 0;
        }
        p += 2; /* extended sequence number */
        for (guint i = 0; more && i < EVD_SIZE_MAX_SEGMENTS && end - p >= 6; i++, p += 6) {
            guint length = (p[0] << 8) | p[1];
            guint line = ((p[2] & 0x7f) << 8) | p[3];
            guint offset = ((p[4] & 0x7f) << 8) | p[5];
            guint pixels = length / c->pgroup_bytes * c->pgroup_pixels;

            more = (p[4] & 0x80) != 0;
            if (pixels == 0)
                continue;
            c->frame_width = MAX(c->frame_width, offset + pixels);
            c->frame_height = MAX(c->frame_height, line + c->line_step);
        }
    }
    if (marker)
        size_frame_done(c);
    gst_buffer_unmap(rtp, &map);
}

/* ---- frozen ----------------------------------------------------------------------------- */

void evd_frozen_check_reset(EvdFrozenCheck *c) { memset(c, 0, sizeof *c); }

void evd_frozen_check_frame(EvdFrozenCheck *c, const GstVideoInfo *info, GstBuffer *buffer,
                            gdouble threshold, gint64 now)
{
    GstVideoFrame frame;
    guint8 samples[EVD_FROZEN_GRID * EVD_FROZEN_GRID];
    guint rows, cols, n = 0, row_bytes;
    guint64 sum = 0;
    const guint8 *data;
    gint stride;

    if (!gst_video_frame_map(&frame, (GstVideoInfo *)info, buffer, GST_MAP_READ))
        return;
    data = GST_VIDEO_FRAME_PLANE_DATA(&frame, 0);
    stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    row_bytes = (guint)GST_VIDEO_FRAME_COMP_WIDTH(&frame, 0) *
                (guint)MAX(GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, 0), 1);
    rows = MIN((guint)GST_VIDEO_FRAME_COMP_HEIGHT(&frame, 0), EVD_FROZEN_GRID);
    cols = MIN(row_bytes, EVD_FROZEN_GRID);
    for (guint y = 0; y < rows; y++) {
        guint yy = rows > 1 ? y * (GST_VIDEO_FRAME_COMP_HEIGHT(&frame, 0) - 1) / (rows - 1) : 0;
        const guint8 *line = data + (gsize)yy * stride;
        for (guint x = 0; x < cols; x++) {
            guint xx = cols > 1 ? x * (row_bytes - 1) / (cols - 1) : 0;
            samples[n++] = line[xx];
        }
    }
    gst_video_frame_unmap(&frame);
    if (n == 0)
        return;
    if (c->n_samples == n) {
        for (guint i = 0; i < n; i++)
            sum += (guint)ABS((gint)samples[i] - (gint)c->samples[i]);
        c->difference = (gdouble)sum / n;
        c->has_difference = TRUE;
        if (c->difference <= threshold) {
            if (!c->same_since)
                c->same_since = now;
        } else {
            c->same_since = 0;
        }
    } else {
        c->same_since = 0; /* a new size: nothing to compare yet */
    }
    memcpy(c->samples, samples, n);
    c->n_samples = n;
}
