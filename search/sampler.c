/* sampler.c: balanced online batch selection (the paper's: every batch holds the same number of
 * frames of every view, small views oversampled) and the ultrasound augmentation applied to the
 * frames of a training batch. */
#include "ev_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct search_sampler {
    int batch, num_classes, present;
    int *class_ids; /* classes with frames */
    int **members;  /* per present class: its frame indices (shuffled) */
    int *count, *pos;
    int rotation; /* where the remainder of batch / present starts */
    uint64_t rng;
};

static void shuffle(int *a, int n, uint64_t *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(ev_rng_next(rng) % (uint64_t)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void search_sampler_free(search_sampler *s)
{
    if (!s)
        return;
    if (s->members)
        for (int i = 0; i < s->present; i++)
            free(s->members[i]);
    free(s->members);
    free(s->class_ids);
    free(s->count);
    free(s->pos);
    free(s);
}

int search_sampler_create(const int *indices, int count, const int32_t *labels, int num_classes,
                          int batch, search_sampler **out, ev_error *err)
{
    *out = NULL;
    if (batch < 1 || num_classes < 1 || count < 1)
        return ev_fail(err, EV_ERR_INVALID, "sampler: %d frames, %d classes, batch %d", count,
                       num_classes, batch);
    search_sampler *s = calloc(1, sizeof *s);
    int *per = calloc((size_t)num_classes, sizeof *per);
    if (!s || !per)
        goto nomem;
    s->batch = batch;
    s->num_classes = num_classes;
    for (int i = 0; i < count; i++) {
        int l = labels[indices[i]];
        if (l < 0 || l >= num_classes) {
            free(per);
            search_sampler_free(s);
            return ev_fail(err, EV_ERR_INVALID, "sampler: label %d out of range", l);
        }
        per[l]++;
    }
    for (int c = 0; c < num_classes; c++)
        s->present += per[c] > 0;
    s->class_ids = malloc((size_t)s->present * sizeof *s->class_ids);
    s->members = calloc((size_t)s->present, sizeof *s->members);
    s->count = calloc((size_t)s->present, sizeof *s->count);
    s->pos = calloc((size_t)s->present, sizeof *s->pos);
    if (!s->class_ids || !s->members || !s->count || !s->pos)
        goto nomem;
    for (int c = 0, j = 0; c < num_classes; c++)
        if (per[c]) {
            s->class_ids[j] = c;
            if (!(s->members[j] = malloc((size_t)per[c] * sizeof(int))))
                goto nomem;
            per[c] = j++; /* reuse: class -> slot */
        } else {
            per[c] = -1;
        }
    for (int i = 0; i < count; i++) {
        int slot = per[labels[indices[i]]];
        s->members[slot][s->count[slot]++] = indices[i];
    }
    free(per);
    search_sampler_reset(s, 0);
    *out = s;
    return EV_OK;
nomem:
    free(per);
    search_sampler_free(s);
    return ev_fail(err, EV_ERR_NOMEM, "sampler: out of memory");
}

int search_sampler_classes_present(const search_sampler *s) { return s->present; }

void search_sampler_reset(search_sampler *s, uint64_t seed)
{
    s->rng = seed ^ 0x9e3779b97f4a7c15ull;
    s->rotation = 0;
    for (int i = 0; i < s->present; i++) {
        /* sort first: the order depends only on the seed, not on the previous epoch */
        int *m = s->members[i];
        for (int a = 1; a < s->count[i]; a++) {
            int v = m[a], b = a - 1;
            while (b >= 0 && m[b] > v) {
                m[b + 1] = m[b];
                b--;
            }
            m[b + 1] = v;
        }
        shuffle(m, s->count[i], &s->rng);
        s->pos[i] = 0;
    }
}

void search_sampler_next(search_sampler *s, int *out)
{
    const int k = s->present, base = s->batch / k, extra = s->batch % k;
    int n = 0;
    for (int j = 0; j < k; j++) {
        /* classes rotation .. rotation+extra-1 (mod k) get one more frame this batch */
        int slot = j;
        int want = base + (((slot - s->rotation) % k + k) % k < extra ? 1 : 0);
        for (int t = 0; t < want; t++) {
            if (s->pos[slot] == s->count[slot]) { /* exhausted: oversample, new order */
                shuffle(s->members[slot], s->count[slot], &s->rng);
                s->pos[slot] = 0;
            }
            out[n++] = s->members[slot][s->pos[slot]++];
        }
    }
    s->rotation = (s->rotation + extra) % k;
    /* mix the classes within the batch (BN statistics do not care, drop-path masks do) */
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(ev_rng_next(&s->rng) % (uint64_t)(i + 1));
        int t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

/* ---- augmentation -------------------------------------------------------------------------- */

void search_augment_defaults(search_augment *a)
{
    *a = (search_augment){.enabled = true,
                          .rotate_deg = 5.0f,
                          .scale = 0.08f,
                          .translate = 0.05f,
                          .gain = 0.15f,
                          .contrast = 0.15f,
                          .speckle = 0.08f};
}

void search_augment_transfer(search_augment *a)
{
    *a = (search_augment){.enabled = true,
                          .rotate_deg = 10.0f,
                          .scale = 0.22f,
                          .translate = 0.10f,
                          .gain = 0.5f,
                          .contrast = 0.4f,
                          .speckle = 0.2f,
                          .stretch = 0.12f,
                          .fan_prob = 0.5f,
                          .depth_gain = 0.8f,
                          .shadow_prob = 0.3f,
                          .blur_prob = 0.5f,
                          .grain_max = 3.0f,
                          .haze = 30.0f,
                          .text_prob = 0.3f,
                          .gain_field = 0.6f};
}

int search_augment_parse(const char *name, search_augment *a)
{
    if (name && !strcmp(name, "basic"))
        search_augment_defaults(a);
    else if (name && !strcmp(name, "transfer"))
        search_augment_transfer(a);
    else
        return -1;
    return 0;
}

static float uniform_pm(uint64_t *rng, float r) { return (2.0f * ev_rng_uniform(rng) - 1.0f) * r; }
static float uniform_in(uint64_t *rng, float lo, float hi)
{
    return lo + (hi - lo) * ev_rng_uniform(rng);
}

static void normalise_planes(float *out, int w, int h, int c, ev_normalize normalize, float scale,
                             const float *mean, const float *std)
{
    const size_t plane = (size_t)w * h;
    for (int ch = 0; ch < c; ch++) {
        float *p = out + ch * plane;
        if (normalize == EV_NORMALIZE_SECTOR)
            ev_normalize_sector(p, w, h);
        const float a = scale / std[ch], b = mean[ch] / std[ch];
        for (size_t i = 0; i < plane; i++)
            p[i] = p[i] * a - b;
    }
}

/* In-place 3-tap [wt, 1 - 2 wt, wt] filter along rows and columns, edges replicated. */
static void blur_plane(float *p, int w, int h, float wt)
{
    for (int y = 0; y < h; y++) {
        float *r = p + (size_t)y * w, prev = r[0];
        for (int x = 0; x < w; x++) {
            const float cur = r[x], next = x + 1 < w ? r[x + 1] : cur;
            r[x] = wt * prev + (1.0f - 2.0f * wt) * cur + wt * next;
            prev = cur;
        }
    }
    for (int x = 0; x < w; x++) {
        float prev = p[x];
        for (int y = 0; y < h; y++) {
            float *q = p + (size_t)y * w + x;
            const float cur = *q, next = y + 1 < h ? q[w] : cur;
            *q = wt * prev + (1.0f - 2.0f * wt) * cur + wt * next;
            prev = cur;
        }
    }
}

#define GRAIN_GRID 64 /* coarse noise grid side; finer grains use per-pixel noise */

/* The transfer recipe on one frame: every random draw happens once per frame, in a fixed order,
 * so the result is a function of the rng state only. */
/* The plane s (w x h) at (sx, sy), bilinear, with zeros outside it: both geometric
 * augmentations resample through this. */
static inline float sample_bilinear(const uint8_t *s, int w, int h, float sx, float sy)
{
    const int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
    if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h)
        return 0.0f;
    const float fx = sx - x0, fy = sy - y0;
    float p00 = 0, p01 = 0, p10 = 0, p11 = 0;
    if (y0 >= 0 && x0 >= 0)
        p00 = s[(size_t)y0 * w + x0];
    if (y0 >= 0 && x0 + 1 < w)
        p01 = s[(size_t)y0 * w + x0 + 1];
    if (y0 + 1 < h && x0 >= 0)
        p10 = s[(size_t)(y0 + 1) * w + x0];
    if (y0 + 1 < h && x0 + 1 < w)
        p11 = s[(size_t)(y0 + 1) * w + x0 + 1];
    return (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
}

static void augment_transfer(const uint8_t *src, int w, int h, int c, const search_augment *aug,
                             uint64_t *rng, float *out)
{
    const size_t plane = (size_t)w * h;
    /* probe motion and a different sector crop: rotation, zoom, aspect, shift */
    const float ang = uniform_pm(rng, aug->rotate_deg) * (float)M_PI / 180.0f;
    const float zoom = 1.0f + uniform_pm(rng, aug->scale);
    const float aspect = 1.0f + uniform_pm(rng, aug->stretch);
    const float tx = uniform_pm(rng, aug->translate) * w, ty = uniform_pm(rng, aug->translate) * h;
    const float zx = zoom * aspect, zy = zoom / aspect;
    const float cs = cosf(ang), sn = sinf(ang);
    const float cx = 0.5f * (w - 1), cy = 0.5f * (h - 1);
    /* sector outline: apex near the top centre, half-opening and depth */
    const bool fan = ev_rng_uniform(rng) < aug->fan_prob;
    const float fan_x = cx + uniform_pm(rng, 0.1f) * w, fan_y = uniform_in(rng, -0.15f, 0.05f) * h;
    const float fan_half = uniform_in(rng, 30.0f, 50.0f) * (float)M_PI / 180.0f;
    const float fan_depth = uniform_in(rng, 0.85f, 1.3f) * h;
    /* machine settings: gain, grey map, depth gain, haze */
    const float gain = 1.0f + uniform_pm(rng, aug->gain);
    const float gamma = 1.0f + uniform_pm(rng, aug->contrast);
    const float depth = uniform_pm(rng, aug->depth_gain);
    const float haze = uniform_in(rng, 0.0f, aug->haze);
    const float haze_depth = uniform_in(rng, 0.1f, 0.4f) * h;
    /* shadows: 1-2 radial stripes from the apex */
    int shadows = ev_rng_uniform(rng) < aug->shadow_prob ? 1 + (ev_rng_uniform(rng) < 0.5f) : 0;
    float shadow_ang[2], shadow_half[2], shadow_keep[2];
    for (int k = 0; k < 2; k++) {
        shadow_ang[k] = uniform_pm(rng, 35.0f) * (float)M_PI / 180.0f;
        shadow_half[k] = uniform_in(rng, 1.5f, 5.0f) * (float)M_PI / 180.0f;
        shadow_keep[k] = uniform_in(rng, 0.1f, 0.5f);
    }
    /* blur, speckle grain and strength */
    const int blurs = ev_rng_uniform(rng) < aug->blur_prob ? 1 + (ev_rng_uniform(rng) < 0.5f) : 0;
    const float blur_w = uniform_in(rng, 0.1f, 0.3f);
    float grain = aug->grain_max > 1.0f ? uniform_in(rng, 1.0f, aug->grain_max) : 1.0f;
    const float speckle = uniform_in(rng, 0.0f, aug->speckle);
    /* overlay boxes */
    int boxes = ev_rng_uniform(rng) < aug->text_prob ? 1 + (int)(ev_rng_uniform(rng) * 3.0f) : 0;
    if (boxes > 3)
        boxes = 3;
    int box[3][4];
    float box_v[3];
    for (int k = 0; k < 3; k++) {
        int bw = 1 + (int)(uniform_in(rng, 0.04f, 0.2f) * w), bh = 1 + (int)(uniform_in(rng, 0.02f, 0.06f) * h);
        box[k][0] = (int)(ev_rng_uniform(rng) * (w - bw + 1));
        box[k][1] = (int)(ev_rng_uniform(rng) * (h - bh + 1));
        box[k][2] = bw;
        box[k][3] = bh;
        box_v[k] = uniform_in(rng, 150.0f, 255.0f);
    }
    /* a smooth gain field: tissue brighter here, darker there (what equalisation cannot undo) */
    float field[5 * 5];
    for (int i = 0; i < 25; i++)
        field[i] = aug->gain_field > 0.0f ? aug->gain_field * ev_rng_normal(rng) : 0.0f;
    /* a coarse noise grid when the grain is more than a pixel and the grid fits */
    float grid[GRAIN_GRID * GRAIN_GRID];
    int gw = (int)ceilf(w / grain) + 2, gh = (int)ceilf(h / grain) + 2;
    const bool coarse = grain > 1.25f && gw <= GRAIN_GRID && gh <= GRAIN_GRID;
    if (coarse)
        for (int i = 0; i < gw * gh; i++)
            grid[i] = ev_rng_normal(rng);

    for (int ch = 0; ch < c; ch++) {
        const uint8_t *s = src + ch * plane;
        float *o = out + ch * plane;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const float dx = x - cx - tx, dy = y - cy - ty;
                const float sx = (cs * dx + sn * dy) / zx + cx, sy = (-sn * dx + cs * dy) / zy + cy;
                float v = sample_bilinear(s, w, h, sx, sy);
                const float ry = y - fan_y, rx = x - fan_x;
                const float r = sqrtf(rx * rx + ry * ry), th = atan2f(rx, ry > 1e-3f ? ry : 1e-3f);
                if (fan && (ry <= 0.0f || fabsf(th) > fan_half || r > fan_depth))
                    v = 0.0f;
                for (int k = 0; k < shadows; k++)
                    if (fabsf(th - shadow_ang[k]) < shadow_half[k])
                        v *= shadow_keep[k];
                if (v > 0.0f) {
                    v += haze * expf(-(r > 0 ? r : 0) / haze_depth);
                    const float gx = 4.0f * x / (float)w, gy = 4.0f * y / (float)h;
                    const int ix = (int)gx, iy = (int)gy;
                    const float fx = gx - ix, fy = gy - iy;
                    const float *f0 = field + iy * 5 + ix, *f1 = f0 + 5;
                    const float local = (f0[0] * (1 - fx) + f0[1] * fx) * (1 - fy) +
                                        (f1[0] * (1 - fx) + f1[1] * fx) * fy;
                    v *= expf(depth * (y / (float)h - 0.5f) + local);
                }
                o[(size_t)y * w + x] = v;
            }
        for (int b = 0; b < blurs; b++)
            blur_plane(o, w, h, blur_w);
    }
    /* speckle, grey map, gain and the boxes, after the blur (the scanner's noise is not blurred
     * by our resize) */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float n;
            if (coarse) {
                const float gx = x / grain, gy = y / grain;
                const int ix = (int)gx, iy = (int)gy;
                const float fx = gx - ix, fy = gy - iy;
                const float *g0 = grid + (size_t)iy * gw + ix, *g1 = g0 + gw;
                n = (g0[0] * (1 - fx) + g0[1] * fx) * (1 - fy) + (g1[0] * (1 - fx) + g1[1] * fx) * fy;
            } else {
                n = ev_rng_normal(rng);
            }
            float noise = 1.0f + speckle * n;
            noise = noise > 0.0f ? noise : 0.0f;
            bool in_box = false;
            float bv = 0.0f;
            for (int k = 0; k < boxes; k++)
                if (x >= box[k][0] && x < box[k][0] + box[k][2] && y >= box[k][1] &&
                    y < box[k][1] + box[k][3]) {
                    in_box = true;
                    bv = box_v[k];
                }
            for (int ch = 0; ch < c; ch++) {
                float *o = out + ch * plane + (size_t)y * w + x;
                float g = *o / 255.0f;
                g = g > 0.0f ? powf(g < 1.0f ? g : 1.0f, gamma) : 0.0f;
                float v = 255.0f * g * gain * noise;
                if (in_box)
                    v = bv;
                *o = v > 255.0f ? 255.0f : v;
            }
        }
}

void search_frame_to_input(const uint8_t *src, int w, int h, int c, const search_augment *aug,
                           uint64_t *rng, ev_normalize normalize, float scale, const float *mean,
                           const float *std, float *out)
{
    const size_t plane = (size_t)w * h;
    if (!aug || !aug->enabled) {
        if (normalize == EV_NORMALIZE_NONE) { /* the exact old arithmetic */
            for (int ch = 0; ch < c; ch++) {
                const float a = scale / std[ch], b = mean[ch] / std[ch];
                for (size_t i = 0; i < plane; i++)
                    out[ch * plane + i] = src[ch * plane + i] * a - b;
            }
            return;
        }
        for (size_t i = 0; i < plane * c; i++)
            out[i] = src[i];
        normalise_planes(out, w, h, c, normalize, scale, mean, std);
        return;
    }
    if (aug->fan_prob > 0.0f || aug->shadow_prob > 0.0f || aug->blur_prob > 0.0f ||
        aug->text_prob > 0.0f || aug->haze > 0.0f || aug->depth_gain > 0.0f ||
        aug->stretch > 0.0f || aug->grain_max > 1.0f || aug->gain_field > 0.0f) {
        augment_transfer(src, w, h, c, aug, rng, out);
        normalise_planes(out, w, h, c, normalize, scale, mean, std);
        return;
    }
    /* Probe motion: small in-plane rotation about the centre, zoom and shift; bilinear
     * resampling, outside the frame is black (as outside a sector). */
    const float ang = uniform_pm(rng, aug->rotate_deg) * (float)M_PI / 180.0f;
    const float zoom = 1.0f + uniform_pm(rng, aug->scale);
    const float tx = uniform_pm(rng, aug->translate) * w, ty = uniform_pm(rng, aug->translate) * h;
    /* Machine settings: overall gain and a gamma-like contrast change of the grey map. */
    const float gain = 1.0f + uniform_pm(rng, aug->gain);
    const float gamma = 1.0f + uniform_pm(rng, aug->contrast);
    const float ca = cosf(ang) / zoom, sa = sinf(ang) / zoom;
    const float cx = 0.5f * (w - 1), cy = 0.5f * (h - 1);
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *s = src + ch * plane;
        const float a = scale / std[ch], b = mean[ch] / std[ch];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const float dx = x - cx - tx, dy = y - cy - ty;
                const float sx = ca * dx + sa * dy + cx, sy = -sa * dx + ca * dy + cy;
                float v = sample_bilinear(s, w, h, sx, sy);
                /* speckle-like multiplicative noise keeps black black and scales with the echo */
                const float noise = 1.0f + aug->speckle * ev_rng_normal(rng);
                float g = v / 255.0f;
                g = g > 0.0f ? powf(g, gamma) : 0.0f;
                v = 255.0f * g * gain * (noise > 0.0f ? noise : 0.0f);
                if (v > 255.0f)
                    v = 255.0f;
                out[ch * plane + (size_t)y * w + x] = normalize == EV_NORMALIZE_NONE ? v * a - b : v;
            }
    }
    if (normalize != EV_NORMALIZE_NONE)
        normalise_planes(out, w, h, c, normalize, scale, mean, std);
}
