/* preprocess.c: the one path from a frame to network input (crop, area resize, luma or RGB,
 * normalise) and the detection of the ultrasound sector in a scanner frame.
 *
 * Training datasets, `echoview classify` and the GStreamer element all call ev_preprocess, so a
 * live frame reaches the network exactly as training frames did. Nothing here allocates per
 * frame except ev_detect_roi, which callers run once per stream or on demand.
 *
 * Pixel values entering normalisation are on the 8-bit scale (0..255) for every format, so one
 * model.yaml `scale` (usually 1/255) serves 8- and 16-bit sources alike:
 * - GRAY16 is divided by 257, which maps 0..65535 exactly onto 0..255 (65535 -> 255.0,
 *   257 -> 1.0) and keeps the full 16-bit precision as a fraction.
 * - Colour formats become BT.601 luma (0.299 R + 0.587 G + 0.114 B) for 1-channel models,
 *   computed as (299 R + 587 G + 114 B) / 1000 so that gray colours (R = G = B) give exactly
 *   their gray value. 3-channel models get R, G, B planes in that order; gray, I420 and NV12
 *   sources replicate their luma into all three.
 *
 * A bundle may ask for sector normalisation (`preprocess: {normalize: sector}`): after the resize
 * each plane is histogram-equalised over its sector's pixels (ev_normalize_sector), so a model
 * sees the same input whatever gain, contrast or grey map the scanner used. Training calls the
 * same function after its augmentation. Bundles without the key get exactly the old values.
 */
#include "ev_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A network input larger than this per side is a configuration error, not a model. */
#define PREPROCESS_MAX_SIDE 65536

int ev_pixel_format_bytes(ev_pixel_format format)
{
    switch (format) {
    case EV_PIXEL_GRAY8:
    case EV_PIXEL_I420:
    case EV_PIXEL_NV12:
        return 1;
    case EV_PIXEL_GRAY16:
        return 2;
    case EV_PIXEL_RGB:
    case EV_PIXEL_BGR:
        return 3;
    case EV_PIXEL_RGBX:
    case EV_PIXEL_BGRX:
    case EV_PIXEL_XRGB:
    case EV_PIXEL_XBGR:
    case EV_PIXEL_RGBA:
    case EV_PIXEL_BGRA:
        return 4;
    }
    return 0;
}

/* Where R, G and B sit in a pixel; gray formats have is_gray set. */
typedef struct pixel_layout {
    int bytes;
    bool is_gray, is_16bit;
    int r, g, b;
} pixel_layout;

static pixel_layout layout_of(ev_pixel_format format)
{
    pixel_layout l = {ev_pixel_format_bytes(format), false, false, 0, 1, 2};
    switch (format) {
    case EV_PIXEL_GRAY16:
        l.is_16bit = true;
        l.is_gray = true;
        break;
    case EV_PIXEL_GRAY8:
    case EV_PIXEL_I420:
    case EV_PIXEL_NV12:
        l.is_gray = true;
        break;
    case EV_PIXEL_BGR:
    case EV_PIXEL_BGRX:
    case EV_PIXEL_BGRA:
        l.r = 2, l.b = 0;
        break;
    case EV_PIXEL_XRGB:
        l.r = 1, l.g = 2, l.b = 3;
        break;
    case EV_PIXEL_XBGR:
        l.r = 3, l.g = 2, l.b = 1;
        break;
    default: /* RGB, RGBX, RGBA */
        break;
    }
    return l;
}

static int check_frame(const ev_frame *frame, const char *who, ev_error *err)
{
    if (!frame)
        return ev_fail(err, EV_ERR_INVALID, "%s: frame is NULL", who);
    if (!frame->data)
        return ev_fail(err, EV_ERR_INVALID, "%s: frame has no data", who);
    if (frame->width < 1 || frame->height < 1)
        return ev_fail(err, EV_ERR_INVALID, "%s: frame size %dx%d is empty", who, frame->width,
                       frame->height);
    int bytes = ev_pixel_format_bytes(frame->format);
    if (bytes == 0)
        return ev_fail(err, EV_ERR_INVALID, "%s: unknown pixel format %d", who, (int)frame->format);
    if ((int64_t)frame->stride < (int64_t)frame->width * bytes)
        return ev_fail(err, EV_ERR_INVALID,
                       "%s: stride %d is smaller than a row of %d pixels "
                       "(%lld bytes)",
                       who, frame->stride, frame->width, (long long)frame->width * bytes);
    return EV_OK;
}

/* Gray value or RGB of one pixel on the 8-bit scale. */
static inline void read_pixel(const uint8_t *p, const pixel_layout *l, double rgb[3])
{
    if (l->is_16bit) {
        uint16_t v;
        memcpy(&v, p, 2);
        rgb[0] = rgb[1] = rgb[2] = v / 257.0;
    } else if (l->is_gray) {
        rgb[0] = rgb[1] = rgb[2] = p[0];
    } else {
        rgb[0] = p[l->r];
        rgb[1] = p[l->g];
        rgb[2] = p[l->b];
    }
}

static inline double read_luma(const uint8_t *p, const pixel_layout *l)
{
    if (l->is_16bit) {
        uint16_t v;
        memcpy(&v, p, 2);
        return v / 257.0;
    }
    if (l->is_gray)
        return p[0];
    return (299.0 * p[l->r] + 587.0 * p[l->g] + 114.0 * p[l->b]) / 1000.0;
}

/* The part of source pixel i, in units of 1/out, that output pixel o's footprint covers:
 * output o spans [o*in, (o+1)*in) and source i spans [i*out, (i+1)*out) on a common grid of
 * in*out units, so coverages are exact integers and an output pixel's weights sum to `in`. */
static inline int64_t coverage(int64_t o_start, int64_t o_end, int64_t i, int64_t out)
{
    int64_t lo = i * out > o_start ? i * out : o_start;
    int64_t hi = (i + 1) * out < o_end ? (i + 1) * out : o_end;
    return hi - lo;
}

int ev_preprocess(const ev_preprocess_params *params, const ev_frame *frame, const ev_rect *roi,
                  float *out, ev_error *err)
{
    static const char who[] = "ev_preprocess";
    if (!params)
        return ev_fail(err, EV_ERR_INVALID, "%s: params is NULL", who);
    if (!out)
        return ev_fail(err, EV_ERR_INVALID, "%s: output is NULL", who);
    int rc = check_frame(frame, who, err);
    if (rc != EV_OK)
        return rc;
    const int dw = params->width, dh = params->height, channels = params->channels;
    if (dw < 1 || dh < 1 || dw > PREPROCESS_MAX_SIDE || dh > PREPROCESS_MAX_SIDE)
        return ev_fail(err, EV_ERR_INVALID, "%s: output size %dx%d is out of range (1..%d)", who,
                       dw, dh, PREPROCESS_MAX_SIDE);
    if (channels != 1 && channels != 3)
        return ev_fail(err, EV_ERR_INVALID, "%s: %d channels (models take 1 or 3)", who, channels);
    if (params->normalize != EV_NORMALIZE_NONE && params->normalize != EV_NORMALIZE_SECTOR)
        return ev_fail(err, EV_ERR_INVALID, "%s: unknown normalisation %d", who,
                       (int)params->normalize);
    const bool sector = params->normalize == EV_NORMALIZE_SECTOR;
    size_t plane, total;
    if (!ev_mul_size((size_t)dw, (size_t)dh, &plane) ||
        !ev_mul_size(plane, (size_t)channels, &total) || total > SIZE_MAX / sizeof(float))
        return ev_fail(err, EV_ERR_NOMEM, "%s: output %dx%dx%d overflows", who, dw, dh, channels);
    if (!isfinite(params->scale))
        return ev_fail(err, EV_ERR_INVALID, "%s: scale is not finite", who);
    for (int c = 0; c < channels; c++)
        if (!isfinite(params->mean[c]) || !isfinite(params->std[c]) || params->std[c] == 0.0f)
            return ev_fail(err, EV_ERR_INVALID,
                           "%s: channel %d: mean %g / std %g (std must be "
                           "finite and non-zero)",
                           who, c, params->mean[c], params->std[c]);

    ev_rect area = {0, 0, frame->width, frame->height};
    if (roi) {
        if (roi->width < 1 || roi->height < 1 || roi->x < 0 || roi->y < 0 ||
            roi->x > frame->width - roi->width || roi->y > frame->height - roi->height)
            return ev_fail(err, EV_ERR_INVALID,
                           "%s: roi %dx%d at (%d,%d) is not inside the %dx%d frame", who,
                           roi->width, roi->height, roi->x, roi->y, frame->width, frame->height);
        area = *roi;
    }

    const pixel_layout layout = layout_of(frame->format);
    const int64_t sw = area.width, sh = area.height;
    const double total_weight = (double)sw * (double)sh;
    const size_t stride = (size_t)frame->stride;
    const uint8_t *origin = frame->data + (size_t)area.y * stride + (size_t)area.x * layout.bytes;
    double scale[3], offset[3];
    for (int c = 0; c < channels; c++) {
        scale[c] = (double)params->scale / params->std[c];
        offset[c] = (double)params->mean[c] / params->std[c];
    }

    for (int oy = 0; oy < dh; oy++) {
        const int64_t y_start = oy * sh, y_end = (oy + 1) * sh;
        const int64_t sy0 = y_start / dh, sy1 = (y_end + dh - 1) / dh;
        for (int ox = 0; ox < dw; ox++) {
            const int64_t x_start = ox * sw, x_end = (ox + 1) * sw;
            const int64_t sx0 = x_start / dw, sx1 = (x_end + dw - 1) / dw;
            double sum[3] = {0.0, 0.0, 0.0};
            for (int64_t sy = sy0; sy < sy1; sy++) {
                const double wy = (double)coverage(y_start, y_end, sy, dh);
                const uint8_t *row = origin + (size_t)sy * stride;
                for (int64_t sx = sx0; sx < sx1; sx++) {
                    const double w = wy * (double)coverage(x_start, x_end, sx, dw);
                    const uint8_t *p = row + (size_t)sx * layout.bytes;
                    if (channels == 1) {
                        sum[0] += w * read_luma(p, &layout);
                    } else {
                        double rgb[3];
                        read_pixel(p, &layout, rgb);
                        sum[0] += w * rgb[0];
                        sum[1] += w * rgb[1];
                        sum[2] += w * rgb[2];
                    }
                }
            }
            const size_t at = (size_t)oy * (size_t)dw + (size_t)ox;
            for (int c = 0; c < channels; c++) {
                /* when the crop equals the output, sum / total_weight is the pixel, exactly */
                const double pixel = sum[c] / total_weight;
                out[(size_t)c * plane + at] =
                    sector ? (float)pixel : (float)(pixel * scale[c] - offset[c]);
            }
        }
    }
    if (sector)
        for (int c = 0; c < channels; c++) {
            float *p = out + (size_t)c * plane;
            ev_normalize_sector(p, dw, dh);
            for (size_t i = 0; i < plane; i++)
                p[i] = (float)(p[i] * scale[c] - offset[c]);
        }
    return EV_OK;
}

/* ---- sector normalisation ---------------------------------------------------------------------
 *
 * Histogram equalisation restricted to the sector: the network then sees ranks, not grey levels,
 * and a phantom's grey map and a scanner's (gain, compression curve, dynamic range) look alike.
 * The sector is what lies above a floor relative to the 99th percentile, so it is the same set of
 * pixels when the gain changes; black outside the fan (and overlays' black) stays 0. */

#define SECTOR_LEVELS 1024
#define SECTOR_FLOOR_FRACTION 0.08
#define SECTOR_TOP_QUANTILE 0.99

static inline int sector_level(float v)
{
    if (!(v > 0.0f))
        return 0;
    int b = (int)(v * (SECTOR_LEVELS / 256.0f));
    return b < SECTOR_LEVELS ? b : SECTOR_LEVELS - 1;
}

void ev_normalize_sector(float *plane, int width, int height)
{
    if (!plane || width < 1 || height < 1)
        return;
    const size_t n = (size_t)width * (size_t)height;
    uint32_t hist[SECTOR_LEVELS] = {0};
    float map[SECTOR_LEVELS];
    for (size_t i = 0; i < n; i++)
        hist[sector_level(plane[i])]++;
    /* the 99th percentile's level, then the floor below which a pixel is background */
    const double top_count = SECTOR_TOP_QUANTILE * (double)n;
    int top = 0;
    for (double cum = 0.0; top < SECTOR_LEVELS - 1; top++) {
        cum += hist[top];
        if (cum >= top_count)
            break;
    }
    const int floor_level = (int)(SECTOR_FLOOR_FRACTION * top);
    uint64_t inside = 0;
    for (int b = floor_level + 1; b < SECTOR_LEVELS; b++)
        inside += hist[b];
    if (inside == 0) {
        for (size_t i = 0; i < n; i++)
            plane[i] = 0.0f;
        return;
    }
    uint64_t below = 0;
    for (int b = 0; b < SECTOR_LEVELS; b++) {
        if (b <= floor_level) {
            map[b] = 0.0f;
            continue;
        }
        map[b] = (float)(255.0 * ((double)below + 0.5 * hist[b]) / (double)inside);
        below += hist[b];
    }
    for (size_t i = 0; i < n; i++)
        plane[i] = map[sector_level(plane[i])];
}

void ev_model_preprocess_params(const ev_model *model, ev_preprocess_params *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!model)
        return;
    out->width = model->input_width;
    out->height = model->input_height;
    out->channels = model->input_channels;
    out->scale = model->scale;
    out->normalize = model->normalize;
    for (int c = 0; c < 3; c++) {
        out->mean[c] = model->mean[c];
        out->std[c] = model->std[c];
    }
}

int ev_preprocess_frame(const ev_model *model, const ev_frame *frame, const ev_rect *roi,
                        float *out, ev_error *err)
{
    if (!model)
        return ev_fail(err, EV_ERR_INVALID, "ev_preprocess_frame: model is NULL");
    ev_preprocess_params params;
    ev_model_preprocess_params(model, &params);
    int rc = ev_preprocess(&params, frame, roi, out, err);
    if (rc != EV_OK)
        ev_fail_prefix(err, "model %s: ", model->name);
    return rc;
}

/* ---- ultrasound region detection ------------------------------------------------------------
 *
 * A scanner frame is a bright, speckled fan (or rectangle) on black, with thin overlays: text,
 * a depth ruler of dots, an ECG trace, a gray bar, a logo. The method:
 *  1. Luma on the 8-bit scale; foreground is luma > background + 16, the background being the
 *     5th percentile (black bars and letterboxing sit at the bottom of the histogram).
 *  2. Blocks of B x B pixels (B = min side / 64, clamped to 8..32) are active when at least half
 *     their pixels are foreground and, in the first pass, a quarter are textured (a local
 *     gradient |dx| + |dy| of 6 or more). Lines up to 3 px cover less than half a block; flat
 *     logos and gray bars are not textured. If no textured region stands out, a second pass
 *     drops the texture test (smooth or heavily filtered images).
 *  3. The largest 4-connected component of active blocks, plus any other large component that
 *     touches its box (a dark chamber can split a fan), is the coarse region; it must cover at
 *     least 2% of the frame.
 *  4. The edges are refined in pixels, in a window of 3 blocks around the coarse box: the
 *     foreground goes through a speckle-tolerant opening (keep pixels with at least 16 of their
 *     5 x 5 neighbours in the foreground, then grow by 1 px), which erases lines up to 3 px and
 *     small dots but not a speckled fan with dark holes. Starting at the coarse box, each edge
 *     moves outward while the next row/column still holds such pixels, or inward past empty
 *     ones. A sharp apex or corner loses a pixel or two; a 3 px line crossing the fan's edge
 *     can add one or two.
 * Limits: an overlay thicker than 3 px that touches the fan with no empty row or column between
 * them is taken as part of it; a fan that is not brighter than its surround is not found.
 */

#define ROI_FOREGROUND_MARGIN 16
#define ROI_TEXTURE_GRADIENT 6
#define ROI_OPEN_RADIUS 2
#define ROI_CORE_COUNT 16 /* of 25 */
#define ROI_GROW_RADIUS 1
#define ROI_MIN_AREA_FRACTION 0.02

typedef struct roi_box {
    int x0, y0, x1, y1; /* inclusive */
} roi_box;

static uint8_t luma8(const uint8_t *p, const pixel_layout *l)
{
    if (l->is_16bit) {
        uint16_t v;
        memcpy(&v, p, 2);
        return (uint8_t)((v + 128u) / 257u);
    }
    if (l->is_gray)
        return p[0];
    return (uint8_t)((299u * p[l->r] + 587u * p[l->g] + 114u * p[l->b] + 500u) / 1000u);
}

/* Labels 4-connected active blocks and sets the merged box of the main region in blocks.
 * Returns EV_OK, EV_ERR_INVALID when nothing large enough stands out, or EV_ERR_NOMEM. */
static int find_region(const uint8_t *active, int nbx, int nby, int *label, int *queue,
                       roi_box *out)
{
    const int nb = nbx * nby;
    enum { MAX_COMPONENTS = 4096 };
    static const int dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
    typedef struct component {
        int size;
        roi_box box;
    } component;
    component *comps = malloc(sizeof *comps * MAX_COMPONENTS);
    if (!comps)
        return EV_ERR_NOMEM;
    int count = 0;
    for (int i = 0; i < nb; i++)
        label[i] = -1;
    for (int start = 0; start < nb; start++) {
        if (!active[start] || label[start] >= 0)
            continue;
        /* components past the cap are ignored: a frame with thousands is noise, and the fan is
         * found first or among the first in raster order anyway */
        if (count == MAX_COMPONENTS)
            break;
        component *c = &comps[count];
        c->size = 0;
        c->box = (roi_box){start % nbx, start / nbx, start % nbx, start / nbx};
        int head = 0, tail = 0;
        queue[tail++] = start;
        label[start] = count;
        while (head < tail) {
            int b = queue[head++];
            int bx = b % nbx, by = b / nbx;
            c->size++;
            if (bx < c->box.x0)
                c->box.x0 = bx;
            if (bx > c->box.x1)
                c->box.x1 = bx;
            if (by < c->box.y0)
                c->box.y0 = by;
            if (by > c->box.y1)
                c->box.y1 = by;
            for (int k = 0; k < 4; k++) {
                int nx = bx + dx[k], ny = by + dy[k];
                if (nx < 0 || ny < 0 || nx >= nbx || ny >= nby)
                    continue;
                int n = ny * nbx + nx;
                if (active[n] && label[n] < 0) {
                    label[n] = count;
                    queue[tail++] = n;
                }
            }
        }
        count++;
    }
    int main = -1;
    for (int i = 0; i < count; i++)
        if (main < 0 || comps[i].size > comps[main].size)
            main = i;
    if (main < 0 || comps[main].size < (int)ceil(ROI_MIN_AREA_FRACTION * nb) ||
        comps[main].size < 4) {
        free(comps);
        return EV_ERR_INVALID;
    }
    roi_box box = comps[main].box;
    int main_size = comps[main].size;
    comps[main].size = 0; /* merged */
    for (bool merged = true; merged;) {
        merged = false;
        for (int i = 0; i < count; i++) {
            const component *c = &comps[i];
            if (c->size == 0 || c->size * 10 < main_size)
                continue;
            /* within two blocks of the region's box */
            if (c->box.x0 > box.x1 + 2 || c->box.x1 < box.x0 - 2 || c->box.y0 > box.y1 + 2 ||
                c->box.y1 < box.y0 - 2)
                continue;
            if (c->box.x0 < box.x0)
                box.x0 = c->box.x0;
            if (c->box.x1 > box.x1)
                box.x1 = c->box.x1;
            if (c->box.y0 < box.y0)
                box.y0 = c->box.y0;
            if (c->box.y1 > box.y1)
                box.y1 = c->box.y1;
            comps[i].size = 0;
            merged = true;
        }
    }
    free(comps);
    *out = box;
    return EV_OK;
}

/* Sums of a w x h array of small counts over a sliding window of 2r+1 along rows
 * (horizontal) or columns; outside the array counts as zero. */
static void window_sum(const uint8_t *in, uint8_t *out, int w, int h, int r, bool horizontal)
{
    const int len = horizontal ? w : h, lines = horizontal ? h : w;
    const size_t step = horizontal ? 1 : (size_t)w, line_step = horizontal ? (size_t)w : 1;
    for (int line = 0; line < lines; line++) {
        const uint8_t *src = in + (size_t)line * line_step;
        uint8_t *dst = out + (size_t)line * line_step;
        int sum = 0;
        for (int i = 0; i < r && i < len; i++)
            sum += src[(size_t)i * step];
        for (int i = 0; i < len; i++) {
            if (i + r < len)
                sum += src[(size_t)(i + r) * step];
            if (i - r - 1 >= 0)
                sum -= src[(size_t)(i - r - 1) * step];
            dst[(size_t)i * step] = (uint8_t)sum;
        }
    }
}

/* mask (0/1) -> pixels whose (2r+1)^2 neighbourhood holds at least `needed` foreground pixels,
 * in place; tmp is scratch of the same size. */
static void rank_filter(uint8_t *mask, uint8_t *tmp, int w, int h, int r, int needed)
{
    window_sum(mask, tmp, w, h, r, true);
    window_sum(tmp, mask, w, h, r, false);
    const size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++)
        mask[i] = mask[i] >= needed;
}

/* Moves one edge of [lo, hi] outward while profile[] stays non-empty, else inward past empty
 * entries; limit is how far out it may go. Returns the new edge. */
static int walk_edge(const int *profile, int edge, int limit, int inner, int direction)
{
    if (profile[edge] > 0) {
        while (edge != limit && profile[edge + direction] > 0)
            edge += direction;
    } else {
        while (edge != inner && profile[edge] == 0)
            edge -= direction;
    }
    return edge;
}

/* Pixel-accurate edges around the coarse box (pixels, inclusive); false if nothing is left. */
static bool refine_box(const uint8_t *luma, int w, int h, int threshold, int block, roi_box *box)
{
    const int margin = 3 * block;
    const int wx0 = box->x0 - margin < 0 ? 0 : box->x0 - margin;
    const int wy0 = box->y0 - margin < 0 ? 0 : box->y0 - margin;
    const int wx1 = box->x1 + margin >= w ? w - 1 : box->x1 + margin;
    const int wy1 = box->y1 + margin >= h ? h - 1 : box->y1 + margin;
    const int ww = wx1 - wx0 + 1, wh = wy1 - wy0 + 1;
    const size_t n = (size_t)ww * (size_t)wh;
    uint8_t *mask = malloc(n), *tmp = malloc(n);
    int *rows = calloc((size_t)h, sizeof *rows), *cols = calloc((size_t)w, sizeof *cols);
    bool ok = false;
    if (!mask || !tmp || !rows || !cols)
        goto out;
    for (int y = 0; y < wh; y++)
        for (int x = 0; x < ww; x++)
            mask[(size_t)y * ww + x] = luma[(size_t)(wy0 + y) * w + (wx0 + x)] > threshold;
    /* an opening that tolerates speckle: keep pixels with most of their 5x5 neighbourhood in
     * the foreground (a 3 px line reaches 15 of 25, never the 16 needed), then grow back */
    rank_filter(mask, tmp, ww, wh, ROI_OPEN_RADIUS, ROI_CORE_COUNT);
    rank_filter(mask, tmp, ww, wh, ROI_GROW_RADIUS, 1);

    /* profiles over the coarse box widened by a block, so overlays beside the fan's extent do
     * not count for the other axis */
    const int px0 = box->x0 - block < wx0 ? wx0 : box->x0 - block;
    const int px1 = box->x1 + block > wx1 ? wx1 : box->x1 + block;
    const int py0 = box->y0 - block < wy0 ? wy0 : box->y0 - block;
    const int py1 = box->y1 + block > wy1 ? wy1 : box->y1 + block;
    for (int y = wy0; y <= wy1; y++)
        for (int x = wx0; x <= wx1; x++) {
            if (!mask[(size_t)(y - wy0) * ww + (x - wx0)])
                continue;
            if (x >= px0 && x <= px1)
                rows[y]++;
            if (y >= py0 && y <= py1)
                cols[x]++;
        }
    roi_box r;
    r.y0 = walk_edge(rows, box->y0, wy0, box->y1, -1);
    r.y1 = walk_edge(rows, box->y1, wy1, r.y0, +1);
    r.x0 = walk_edge(cols, box->x0, wx0, box->x1, -1);
    r.x1 = walk_edge(cols, box->x1, wx1, r.x0, +1);
    if (rows[r.y0] > 0 && rows[r.y1] > 0 && cols[r.x0] > 0 && cols[r.x1] > 0 && r.x1 > r.x0 &&
        r.y1 > r.y0) {
        *box = r;
        ok = true;
    }
out:
    free(mask);
    free(tmp);
    free(rows);
    free(cols);
    return ok;
}

/* The detection of ev_detect_roi. On EV_OK, *box is the region in pixels (inclusive) and, when
 * luma_out is given, *luma_out the frame's 8-bit luma (the caller frees it) and *threshold_out
 * the foreground threshold. */
static int detect_region(const ev_frame *frame, roi_box *box_out, uint8_t **luma_out,
                         int *threshold_out)
{
    const int w = frame->width, h = frame->height;
    int block = (w < h ? w : h) / 64;
    block = block < 8 ? 8 : block > 32 ? 32 : block;
    if (w < 4 * block || h < 4 * block)
        return EV_ERR_INVALID; /* too small for a region to stand out */
    size_t pixels;
    if (!ev_mul_size((size_t)w, (size_t)h, &pixels))
        return EV_ERR_NOMEM;
    const int nbx = (w + block - 1) / block, nby = (h + block - 1) / block;
    const size_t nb = (size_t)nbx * (size_t)nby;
    uint8_t *luma = malloc(pixels);
    int *cover = calloc(nb, sizeof *cover), *textured = calloc(nb, sizeof *textured);
    int *label = malloc(nb * sizeof *label), *queue = malloc(nb * sizeof *queue);
    uint8_t *active = malloc(nb);
    int rc = EV_ERR_NOMEM;
    if (!luma || !cover || !textured || !label || !queue || !active)
        goto out;
    const pixel_layout layout = layout_of(frame->format);
    size_t histogram[256] = {0};
    for (int y = 0; y < h; y++) {
        const uint8_t *row = frame->data + (size_t)y * (size_t)frame->stride;
        uint8_t *dst = luma + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            dst[x] = luma8(row + (size_t)x * layout.bytes, &layout);
            histogram[dst[x]]++;
        }
    }
    int background = 0;
    for (size_t seen = 0; background < 255; background++) {
        seen += histogram[background];
        if (seen * 20 >= pixels)
            break;
    }
    int threshold = background + ROI_FOREGROUND_MARGIN;
    if (threshold > 254)
        threshold = 254;

    for (int y = 0; y < h; y++) {
        const uint8_t *row = luma + (size_t)y * w;
        const uint8_t *below = y + 1 < h ? row + w : row;
        int *cover_row = cover + (size_t)(y / block) * nbx;
        int *texture_row = textured + (size_t)(y / block) * nbx;
        for (int x = 0; x < w; x++) {
            int gradient = abs((int)row[x + (x + 1 < w)] - row[x]) + abs((int)below[x] - row[x]);
            cover_row[x / block] += row[x] > threshold;
            texture_row[x / block] += gradient >= ROI_TEXTURE_GRADIENT;
        }
    }

    rc = EV_ERR_INVALID;
    roi_box box;
    for (int pass = 0; pass < 2 && rc == EV_ERR_INVALID; pass++) {
        for (int by = 0; by < nby; by++)
            for (int bx = 0; bx < nbx; bx++) {
                int bw = (bx + 1) * block > w ? w - bx * block : block;
                int bh = (by + 1) * block > h ? h - by * block : block;
                size_t i = (size_t)by * nbx + bx;
                bool covered = 2 * cover[i] >= bw * bh;
                bool texture = 4 * textured[i] >= bw * bh;
                active[i] = covered && (pass == 1 || texture);
            }
        rc = find_region(active, nbx, nby, label, queue, &box);
    }
    if (rc != EV_OK)
        goto out;
    roi_box pixels_box = {box.x0 * block, box.y0 * block,
                          (box.x1 + 1) * block > w ? w - 1 : (box.x1 + 1) * block - 1,
                          (box.y1 + 1) * block > h ? h - 1 : (box.y1 + 1) * block - 1};
    roi_box refined = pixels_box;
    if (!refine_box(luma, w, h, threshold, block, &refined))
        refined = pixels_box;
    *box_out = refined;
    if (threshold_out)
        *threshold_out = threshold;
    if (luma_out) {
        *luma_out = luma;
        luma = NULL;
    }
    rc = EV_OK;
out:
    free(luma);
    free(cover);
    free(textured);
    free(label);
    free(queue);
    free(active);
    return rc;
}

int ev_detect_roi(const ev_frame *frame, ev_rect *out)
{
    if (check_frame(frame, "ev_detect_roi", NULL) != EV_OK || !out)
        return EV_ERR_INVALID;
    roi_box box;
    int rc = detect_region(frame, &box, NULL, NULL);
    if (rc == EV_OK)
        *out = (ev_rect){box.x0, box.y0, box.x1 - box.x0 + 1, box.y1 - box.y0 + 1};
    return rc;
}

/* ---- screen type: a 2D fan or not -----------------------------------------------------------
 *
 * M-mode and spectral (PW, CW, tissue) Doppler screens show a time axis: a wide rectangular
 * strip (M-mode: textured over its whole area; spectra: a bright envelope over a black strip),
 * usually under a small 2D reference image. A 2D frame is a fan: narrow at the apex, widening
 * downward without a break. The evidence is measured on the region ev_detect_roi finds, on its
 * opened foreground mask (the same speckle-tolerant opening as the edge refinement), row by row:
 * the width of each row (leftmost to rightmost foreground pixel) over the region's width.
 *   apex_width: mean row width over the top tenth of the region's rows;
 *   break_rows: the longest run of rows narrower than a tenth of the region between rows at
 *               least a fifth as wide (a 2D image stacked over a strip leaves such a run),
 *               over the region's height;
 *   fill:       the foreground share of the region's box; area: the box's share of the frame.
 * The decision (the thresholds were set on phantom frames only, docs/ACCURACY.md):
 *   a frame under SCREEN_MIN_SIDE pixels a side -> undecided (nothing claimed);
 *   no region stands out, area < EV_SCREEN_AREA_MIN (only a small reference image), fill >
 *   EV_SCREEN_FILL_MAX (a filled rectangle) or apex_width > EV_SCREEN_APEX_MAX (a wide top)
 *   -> not 2D; otherwise -> 2D.
 * break_rows is reported, not used: on phantom 2D frames a banner merged above the apex made
 * it fire, and every phantom non-2D screen is caught without it.
 */
#define SCREEN_APEX_ROWS 0.10
#define SCREEN_NARROW 0.10
#define SCREEN_WIDE 0.20
#define SCREEN_MIN_SIDE 64 /* smaller frames are not judged */
#define EV_SCREEN_AREA_MIN 0.12f  /* a fan's box covers at least this share of the frame */
#define EV_SCREEN_FILL_MAX 0.80f  /* a fan fills at most this share of its box */
#define EV_SCREEN_APEX_MAX 0.60f  /* a fan's top tenth is narrower than this share of its box */

static void measure_screen(const uint8_t *luma, int w, int threshold, const roi_box *box,
                           ev_screen_info *info, bool *ok)
{
    const int bw = box->x1 - box->x0 + 1, bh = box->y1 - box->y0 + 1;
    const size_t n = (size_t)bw * (size_t)bh;
    uint8_t *mask = malloc(n), *tmp = malloc(n);
    *ok = false;
    if (!mask || !tmp)
        goto out;
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++)
            mask[(size_t)y * bw + x] = luma[(size_t)(box->y0 + y) * w + (box->x0 + x)] > threshold;
    rank_filter(mask, tmp, bw, bh, ROI_OPEN_RADIUS, ROI_CORE_COUNT);
    rank_filter(mask, tmp, bw, bh, ROI_GROW_RADIUS, 1);
    const int apex_rows = (int)ceil(SCREEN_APEX_ROWS * bh);
    double apex = 0.0;
    size_t foreground = 0;
    /* a break: a run of narrow rows between wide ones (an image stacked over a strip) */
    int run = 0, longest = 0;
    bool seen_wide = false;
    for (int y = 0; y < bh; y++) {
        const uint8_t *row = mask + (size_t)y * bw;
        int first = -1, last = -1;
        for (int x = 0; x < bw; x++)
            if (row[x]) {
                if (first < 0)
                    first = x;
                last = x;
                foreground++;
            }
        double width = first < 0 ? 0.0 : (double)(last - first + 1) / bw;
        if (y < apex_rows)
            apex += width;
        if (width >= SCREEN_WIDE) {
            if (seen_wide && run > longest)
                longest = run;
            seen_wide = true;
            run = 0;
        } else if (width < SCREEN_NARROW && seen_wide) {
            run++;
        }
    }
    info->apex_width = (float)(apex / apex_rows);
    info->break_rows = (float)longest / (float)bh;
    info->fill = (float)((double)foreground / (double)n);
    *ok = true;
out:
    free(mask);
    free(tmp);
}

int ev_detect_screen(const ev_frame *frame, ev_screen_info *out)
{
    if (!out)
        return EV_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->type = EV_SCREEN_UNDECIDED;
    out->reason = "no ultrasound region stands out";
    if (check_frame(frame, "ev_detect_screen", NULL) != EV_OK)
        return EV_ERR_INVALID;
    roi_box box;
    uint8_t *luma = NULL;
    int threshold = 0;
    const int side = frame->width < frame->height ? frame->width : frame->height;
    if (side < SCREEN_MIN_SIDE)
        return EV_OK; /* undecided: too small to tell (e.g. a frame at the network's size) */
    int rc = detect_region(frame, &box, &luma, &threshold);
    if (rc == EV_ERR_INVALID) {
        out->type = EV_SCREEN_NOT_2D;
        out->reason = "no fan: no bright textured region stands out";
        return EV_OK;
    }
    if (rc != EV_OK)
        return rc;
    bool ok;
    out->region_found = 1;
    out->roi = (ev_rect){box.x0, box.y0, box.x1 - box.x0 + 1, box.y1 - box.y0 + 1};
    out->area = (float)((double)out->roi.width * out->roi.height /
                        ((double)frame->width * frame->height));
    measure_screen(luma, frame->width, threshold, &box, out, &ok);
    free(luma);
    if (!ok)
        return EV_ERR_NOMEM;
    if (out->area < EV_SCREEN_AREA_MIN) {
        out->type = EV_SCREEN_NOT_2D;
        out->reason = "no fan: the only image is small (a reference image beside a strip)";
    } else if (out->fill > EV_SCREEN_FILL_MAX) {
        out->type = EV_SCREEN_NOT_2D;
        out->reason = "no fan: the region is a filled rectangle (a time-axis strip)";
    } else if (out->apex_width > EV_SCREEN_APEX_MAX) {
        out->type = EV_SCREEN_NOT_2D;
        out->reason = "no fan: the region is as wide at its top as below (a time-axis strip)";
    } else {
        out->type = EV_SCREEN_2D;
        out->reason = "a fan: narrow apex widening downward";
    }
    return EV_OK;
}
