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

static float uniform_pm(uint64_t *rng, float r) { return (2.0f * ev_rng_uniform(rng) - 1.0f) * r; }

void search_frame_to_input(const uint8_t *src, int w, int h, int c, const search_augment *aug,
                           uint64_t *rng, float scale, const float *mean, const float *std,
                           float *out)
{
    const size_t plane = (size_t)w * h;
    if (!aug || !aug->enabled) {
        for (int ch = 0; ch < c; ch++) {
            const float a = scale / std[ch], b = mean[ch] / std[ch];
            for (size_t i = 0; i < plane; i++)
                out[ch * plane + i] = src[ch * plane + i] * a - b;
        }
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
                float v = 0.0f;
                const int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
                if (x0 >= -1 && y0 >= -1 && x0 < w && y0 < h) {
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
                    v = (p00 * (1 - fx) + p01 * fx) * (1 - fy) + (p10 * (1 - fx) + p11 * fx) * fy;
                }
                /* speckle-like multiplicative noise keeps black black and scales with the echo */
                const float noise = 1.0f + aug->speckle * ev_rng_normal(rng);
                float g = v / 255.0f;
                g = g > 0.0f ? powf(g, gamma) : 0.0f;
                v = 255.0f * g * gain * (noise > 0.0f ? noise : 0.0f);
                if (v > 255.0f)
                    v = 255.0f;
                out[ch * plane + (size_t)y * w + x] = v * a - b;
            }
    }
}
