/* ep_render.c: image formation, from a view scene to an 8-bit B-mode frame.
 *
 * The chain, all on a polar grid of beams x depth samples sized for the output:
 *   1. echogenicity map: background, chest wall layers, the scene's primitives painted in
 *      order, then acquisition artefacts of the quality grade (near-field clutter and
 *      reverberation arcs, rib/lung shadows and dropout);
 *   2. complex scatterers: a per-patient random field indexed by tissue (material) position,
 *      so speckle follows the probe pose and cardiac motion; amplitude = echogenicity times
 *      two-way attenuation exp(-alpha r); electronic noise added on top;
 *   3. the point spread function: Gaussian axially, Gaussian laterally with a beam width that
 *      grows away from the focal depth (both normalised to unit energy), applied to I and Q;
 *   4. envelope detection (|I + jQ|^2), TGC that compensates the patient's attenuation
 *      imperfectly, gain, log compression over the dynamic range through a grey map;
 *   5. scan conversion into the fan by bilinear interpolation (precomputed per geometry);
 *   6. optional overlays: depth ruler, ECG with the current-phase marker, acquisition text.
 */
#include "ep_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAUSS_TABLE 1024
#define PHASE_TABLE 256
#define GREY_TABLE 1024
#define MAX_TAPS 9 /* half-width of a PSF kernel, samples */
#define MAX_SHADOWS 6

struct ep_renderer {
    int width, height;
    int nb, ns; /* beams, samples per beam */
    float *echo;
    uint8_t *label;
    float *re, *im, *tre, *tim;
    float *grey; /* polar grey levels */
    float *sin_b, *cos_b;
    float *row_att, *row_tgc, *row_lat; /* per sample row */
    float *kernel_lat;                  /* ns x (2*MAX_TAPS+1) */
    /* scan conversion: per output pixel the polar index of its top-left neighbour, or -1,
     * and the bilinear fractions */
    int32_t *lut_index;
    float *lut_frac;
    int lut_valid, lut_framing;
    float lut_half_angle;
    float lut_key[6]; /* version, steer, zoom, apex_x, top margin, vendor of the cached LUT */
    uint8_t *frame;   /* grey frame under an RGB rendering */
    float gauss_mag[GAUSS_TABLE];
    float cos_t[PHASE_TABLE], sin_t[PHASE_TABLE];
    float grey_map[GREY_TABLE];
    ep_scene scene;
};

/* ---- helpers ------------------------------------------------------------------------------- */

static inline uint32_t hash3(uint32_t a, uint32_t b, uint32_t seed)
{
    uint32_t h = seed ^ (a * 0x8DA6B343u) ^ (b * 0xD8163841u);
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 15;
    h *= 0x846CA68Bu;
    h ^= h >> 16;
    return h;
}

/* log2 to ~1e-4 from the float's bits: no libm call in the hot loop, identical everywhere. */
static inline float fast_log2(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {x};
    float e = (float)(int)((v.u >> 23) & 0xFF) - 127.0f;
    v.u = (v.u & 0x007FFFFFu) | 0x3F800000u; /* mantissa in [1,2) */
    float m = v.f;
    /* minimax-like polynomial for log2 on [1,2) */
    float p = -0.034436006f * m + 0.31821337f;
    p = p * m - 1.2315303f;
    p = p * m + 2.5988452f;
    p = p * m - 1.6514188f;
    return e + p;
}

static void free_members(ep_renderer *r)
{
    free(r->echo);
    free(r->label);
    free(r->re);
    free(r->im);
    free(r->tre);
    free(r->tim);
    free(r->grey);
    free(r->sin_b);
    free(r->cos_b);
    free(r->row_att);
    free(r->row_tgc);
    free(r->row_lat);
    free(r->kernel_lat);
    free(r->lut_index);
    free(r->lut_frac);
    free(r->frame);
}

static void *alloc_array(size_t count, size_t size)
{
    if (count == 0 || size == 0 || count > SIZE_MAX / size)
        return NULL;
    return calloc(count, size);
}

ep_renderer *ep_renderer_create(int width, int height)
{
    if (width < 8 || height < 8 || width > 4096 || height > 4096)
        return NULL;
    ep_renderer *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->width = width;
    r->height = height;
    /* the polar grid oversamples depth a little and keeps beams near a real scanner's count */
    int ns = (int)ceilf(1.25f * (float)height);
    int nb = (int)ceilf(0.9f * (float)width);
    r->ns = ns < 64 ? 64 : (ns > 640 ? 640 : ns);
    r->nb = nb < 64 ? 64 : (nb > 256 ? 256 : nb);
    size_t np = (size_t)r->ns * (size_t)r->nb;
    size_t npix = (size_t)width * (size_t)height;
    r->echo = alloc_array(np, sizeof(float));
    r->label = alloc_array(np, 1);
    r->re = alloc_array(np, sizeof(float));
    r->im = alloc_array(np, sizeof(float));
    r->tre = alloc_array(np, sizeof(float));
    r->tim = alloc_array(np, sizeof(float));
    r->grey = alloc_array(np, sizeof(float));
    r->sin_b = alloc_array((size_t)r->nb, sizeof(float));
    r->cos_b = alloc_array((size_t)r->nb, sizeof(float));
    r->row_att = alloc_array((size_t)r->ns, sizeof(float));
    r->row_tgc = alloc_array((size_t)r->ns, sizeof(float));
    r->row_lat = alloc_array((size_t)r->ns, sizeof(float));
    r->kernel_lat = alloc_array((size_t)r->ns * (2 * MAX_TAPS + 1), sizeof(float));
    r->lut_index = alloc_array(npix, sizeof(int32_t));
    r->lut_frac = alloc_array(npix * 2, sizeof(float));
    r->frame = alloc_array(npix, 1);
    if (!r->frame || !r->echo || !r->label || !r->re || !r->im || !r->tre || !r->tim || !r->grey ||
        !r->sin_b || !r->cos_b || !r->row_att || !r->row_tgc || !r->row_lat || !r->kernel_lat ||
        !r->lut_index || !r->lut_frac) {
        free_members(r);
        free(r);
        return NULL;
    }
    /* complex Gaussian scatterers as Rayleigh magnitude x uniform phase (unit mean power) */
    for (int i = 0; i < GAUSS_TABLE; i++) {
        double u = ((double)i + 0.5) / GAUSS_TABLE;
        r->gauss_mag[i] = (float)sqrt(-log(u));
    }
    for (int i = 0; i < PHASE_TABLE; i++) {
        double a = 2.0 * 3.14159265358979323846 * (double)i / PHASE_TABLE;
        r->cos_t[i] = (float)cos(a);
        r->sin_t[i] = (float)sin(a);
    }
    return r;
}

void ep_renderer_free(ep_renderer *r)
{
    if (!r)
        return;
    free_members(r);
    free(r);
}

/* ---- geometry ---------------------------------------------------------------------------- */

/* Pixel = (ax + sx * x/R, ay + sy * z/R) for a point (x, z) of a fan of radius R. */
typedef struct fan_map {
    float ax, ay, sx, sy;
} fan_map;

static fan_map fan_map_for(int framing, float half_angle, int width, int height)
{
    fan_map m;
    float sh = sinf(half_angle);
    if (framing == EP_FRAMING_SECTOR) {
        m.ax = 0.5f * (float)width;
        m.sx = (float)width / (2.0f * sh);
        m.ay = 0.0f;
        m.sy = (float)height;
    } else {
        /* scanner layout: a top margin for text, a bottom strip for the ECG */
        float top = 0.07f * (float)height;
        float radius = fminf(0.80f * (float)height, 0.47f * (float)width / sh);
        m.ax = 0.5f * (float)width;
        m.ay = top;
        m.sx = radius;
        m.sy = radius;
    }
    return m;
}

/* Version 2: the fan (steered by steer radians) has the unit-radius bounding box
 * [x0, x1] x [0, z1]; sector framing stretches that box over the output, scanner framing puts
 * the apex at apex_x below a vendor-dependent top margin, magnified by zoom. */
static void fan_box_v2(float half_angle, float steer, float *x0, float *x1, float *z1)
{
    float lo = steer - half_angle, hi = steer + half_angle;
    float a = 0.0f, b = 0.0f, c = 0.0f;
    for (int i = 0; i <= 32; i++) {
        float t = lo + (hi - lo) * (float)i / 32.0f;
        float x = sinf(t), z = cosf(t);
        a = fminf(a, x);
        b = fmaxf(b, x);
        c = fmaxf(c, z);
    }
    if (lo < 0.0f && hi > 0.0f)
        c = 1.0f;
    *x0 = a, *x1 = b, *z1 = c;
}

static float top_margin_v2(int vendor)
{
    static const float top[EP_VENDOR_COUNT] = {0.07f, 0.11f, 0.06f, 0.09f};
    return top[vendor];
}

static fan_map fan_map_v2(const ep_scan *s, float half_angle, int width, int height)
{
    fan_map m;
    float x0, x1, z1, steer = s->steer_deg * EP_DEG;
    fan_box_v2(half_angle, steer, &x0, &x1, &z1);
    if (s->framing == EP_FRAMING_SECTOR) {
        m.sx = (float)width / (x1 - x0);
        m.ax = -x0 * m.sx;
        m.ay = 0.0f;
        m.sy = (float)height / z1;
    } else {
        float top = top_margin_v2(s->vendor) * (float)height;
        float ax = s->apex_x * (float)width;
        /* the widest radius that keeps the fan inside the frame, then the zoom */
        float room = fminf((ax - 0.03f * (float)width) / fmaxf(-x0, 1e-3f),
                           (0.97f * (float)width - ax) / fmaxf(x1, 1e-3f));
        float radius = fminf(0.80f * (float)height / z1, room) * s->zoom;
        m.ax = ax;
        m.ay = top;
        m.sx = radius;
        m.sy = radius;
    }
    return m;
}

static int is_2d(const ep_scan *s) { return s->screen <= EP_SCREEN_COLOR; }

int ep_sector_roi(const ep_scan *s, int width, int height, ep_rect *roi)
{
    if (!s || !roi || width < 1 || height < 1 || ep_scan_validate(s) != EP_OK)
        return EP_ERR_INVALID;
    if (s->version == EP_VERSION_2) {
        float h = 0.5f * s->sector_deg * EP_DEG, x0, x1, z1;
        if (!is_2d(s)) {
            *roi = (ep_rect){0, 0, width, height};
            return EP_OK;
        }
        fan_box_v2(h, s->steer_deg * EP_DEG, &x0, &x1, &z1);
        fan_map m = fan_map_v2(s, h, width, height);
        int a = (int)floorf(m.ax + m.sx * x0), b = (int)ceilf(m.ax + m.sx * x1);
        int c = (int)floorf(m.ay), d = (int)ceilf(m.ay + m.sy * z1);
        a = a < 0 ? 0 : a;
        c = c < 0 ? 0 : c;
        b = b > width ? width : b;
        d = d > height ? height : d;
        *roi = (ep_rect){a, c, b - a, d - c};
        return EP_OK;
    }
    float h = 0.5f * s->sector_deg * EP_DEG;
    fan_map m = fan_map_for(s->framing, h, width, height);
    float sh = sinf(h);
    int x0 = (int)floorf(m.ax - m.sx * sh), x1 = (int)ceilf(m.ax + m.sx * sh);
    int y0 = (int)floorf(m.ay), y1 = (int)ceilf(m.ay + m.sy);
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > width)
        x1 = width;
    if (y1 > height)
        y1 = height;
    roi->x = x0;
    roi->y = y0;
    roi->width = x1 - x0;
    roi->height = y1 - y0;
    return EP_OK;
}

static void build_lut(ep_renderer *r, const ep_scan *s, float half_angle)
{
    int framing = s->framing;
    float steer = 0.0f;
    float key[6] = {1.0f, 0.0f, 1.0f, 0.5f, 0.0f, 0.0f};
    if (s->version == EP_VERSION_2) {
        steer = s->steer_deg * EP_DEG;
        key[0] = 2.0f, key[1] = s->steer_deg, key[2] = s->zoom, key[3] = s->apex_x;
        key[4] = (float)s->vendor;
    }
    if (r->lut_valid && r->lut_framing == framing && r->lut_half_angle == half_angle &&
        !memcmp(key, r->lut_key, sizeof key))
        return;
    fan_map m = s->version == EP_VERSION_2 ? fan_map_v2(s, half_angle, r->width, r->height)
                                           : fan_map_for(framing, half_angle, r->width, r->height);
    float dth = 2.0f * half_angle / (float)r->nb;
    for (int py = 0; py < r->height; py++) {
        for (int px = 0; px < r->width; px++) {
            size_t o = (size_t)py * (size_t)r->width + (size_t)px;
            float x = ((float)px + 0.5f - m.ax) / m.sx, z = ((float)py + 0.5f - m.ay) / m.sy;
            float rr = sqrtf(x * x + z * z), th = atan2f(x, z) - steer;
            r->lut_index[o] = -1;
            if (z <= 0.0f || rr >= 1.0f || fabsf(th) >= half_angle)
                continue;
            float fb = (th + half_angle) / dth - 0.5f, fs = rr * (float)r->ns - 0.5f;
            fb = ep_clampf(fb, 0.0f, (float)r->nb - 1.001f);
            fs = ep_clampf(fs, 0.0f, (float)r->ns - 1.001f);
            int b0 = (int)fb, s0 = (int)fs;
            r->lut_index[o] = s0 * r->nb + b0;
            r->lut_frac[2 * o] = fb - (float)b0;
            r->lut_frac[2 * o + 1] = fs - (float)s0;
        }
    }
    r->lut_valid = 1;
    r->lut_framing = framing;
    r->lut_half_angle = half_angle;
    memcpy(r->lut_key, key, sizeof key);
}

/* ---- step 1: echogenicity map -------------------------------------------------------------- */

static void paint_prim(ep_renderer *r, const ep_prim *p, float dr, float half_angle, float dth)
{
    /* bounding box in image mm, then its polar range */
    float x0, x1, z0, z1, pad = p->soft + 0.5f;
    if (p->type == EP_PRIM_ELLIPSE) {
        float ex = sqrtf(p->a * p->a * p->cs * p->cs + p->b * p->b * p->sn * p->sn);
        float ez = sqrtf(p->a * p->a * p->sn * p->sn + p->b * p->b * p->cs * p->cs);
        x0 = p->cx - ex - pad, x1 = p->cx + ex + pad, z0 = p->cz - ez - pad, z1 = p->cz + ez + pad;
    } else {
        float rr = p->radius + pad;
        x0 = fminf(p->x0, p->x1) - rr, x1 = fmaxf(p->x0, p->x1) + rr;
        z0 = fminf(p->z0, p->z1) - rr, z1 = fmaxf(p->z0, p->z1) + rr;
    }
    if (z1 <= 0.0f)
        return;
    float cx = ep_clampf(0.0f, x0, x1), cz = ep_clampf(0.0f, z0, z1);
    float rmin = sqrtf(cx * cx + cz * cz);
    float rmax = sqrtf(fmaxf(x0 * x0, x1 * x1) + fmaxf(z0 * z0, z1 * z1));
    float tmin = -half_angle, tmax = half_angle;
    if (z0 > 0.0f) {
        float a00 = atan2f(x0, z0), a01 = atan2f(x0, z1), a10 = atan2f(x1, z0),
              a11 = atan2f(x1, z1);
        tmin = fminf(fminf(a00, a01), fminf(a10, a11));
        tmax = fmaxf(fmaxf(a00, a01), fmaxf(a10, a11));
    }
    int j0 = (int)floorf(rmin / dr - 0.5f), j1 = (int)ceilf(rmax / dr - 0.5f);
    int b0 = (int)floorf((tmin + half_angle) / dth - 0.5f),
        b1 = (int)ceilf((tmax + half_angle) / dth - 0.5f);
    if (j0 < 0)
        j0 = 0;
    if (j1 > r->ns - 1)
        j1 = r->ns - 1;
    if (b0 < 0)
        b0 = 0;
    if (b1 > r->nb - 1)
        b1 = r->nb - 1;
    if (j0 > j1 || b0 > b1)
        return;
    float inv_soft = 1.0f / p->soft;
    static const float specular[EP_TISSUE_COUNT] = {0, 0, 0, 0.45f, 0.4f, 0.75f, 0.6f, 0};
    float spec = (p->tissue >= 0 && p->tissue < EP_TISSUE_COUNT) ? specular[p->tissue] : 0.0f;
    for (int j = j0; j <= j1; j++) {
        float rj = ((float)j + 0.5f) * dr;
        float *e = r->echo + (size_t)j * r->nb;
        uint8_t *lab = r->label + (size_t)j * r->nb;
        for (int b = b0; b <= b1; b++) {
            float x = rj * r->sin_b[b], z = rj * r->cos_b[b];
            float d;
            if (!ep_prim_distance(p, x, z, &d))
                continue; /* well outside: distance exceeds the edge width */
            float alpha = 0.5f - d * inv_soft;
            if (alpha <= 0.0f)
                continue;
            float echo = p->echo;
            if (spec > 0.0f) {
                /* specular boundaries echo most where the beam meets them head-on */
                float nx, nz;
                if (p->type == EP_PRIM_ELLIPSE) {
                    float dx = x - p->cx, dz = z - p->cz;
                    float u = (dx * p->cs + dz * p->sn) / (p->a * p->a),
                          v = (-dx * p->sn + dz * p->cs) / (p->b * p->b);
                    nx = u * p->cs - v * p->sn;
                    nz = u * p->sn + v * p->cs;
                } else {
                    float ux = p->x1 - p->x0, uz = p->z1 - p->z0;
                    float len2 = ux * ux + uz * uz;
                    float t = len2 > 0.0f ? ((x - p->x0) * ux + (z - p->z0) * uz) / len2 : 0.0f;
                    t = ep_clampf(t, 0.0f, 1.0f);
                    nx = x - p->x0 - t * ux, nz = z - p->z0 - t * uz;
                }
                float nn = nx * nx + nz * nz;
                float c =
                    nn > 1e-12f ? fabsf(nx * r->sin_b[b] + nz * r->cos_b[b]) / sqrtf(nn) : 1.0f;
                echo *= 1.0f - spec + spec * c * c;
            }
            if (alpha >= 1.0f) {
                e[b] = echo;
                lab[b] = (uint8_t)p->tissue;
            } else {
                e[b] += alpha * (echo - e[b]);
                if (alpha >= 0.5f)
                    lab[b] = (uint8_t)p->tissue;
            }
        }
    }
}

/* Chest wall: skin, fat and striated muscle layers under the probe. */
static float chest_wall_echo(float rmm, float cw)
{
    if (rmm < 1.5f)
        return 0.9f;
    if (rmm < 0.35f * cw)
        return 0.14f;
    if (rmm < cw) {
        float s = sinf(rmm * 2.1f);
        return 0.32f + 0.12f * s * s;
    }
    return -1.0f;
}

static void build_echo_map(ep_renderer *r, const ep_patient *p, const ep_scan *s, float dr,
                           float half_angle, float dth)
{
    const ep_scene *sc = &r->scene;
    int uniform = (s->flags & EP_FLAG_UNIFORM_PHANTOM) != 0;
    for (int j = 0; j < r->ns; j++) {
        float rmm = ((float)j + 0.5f) * dr;
        float e = uniform ? -1.0f : chest_wall_echo(rmm, p->chest_wall_mm);
        uint8_t lab = EP_TISSUE_SOFT;
        if (e < 0.0f)
            e = sc->background_echo;
        float *row = r->echo + (size_t)j * r->nb;
        uint8_t *lrow = r->label + (size_t)j * r->nb;
        for (int b = 0; b < r->nb; b++) {
            row[b] = e;
            lrow[b] = lab;
        }
    }
    for (int i = 0; i < sc->count; i++)
        paint_prim(r, &sc->prims[i], dr, half_angle, dth);

    if (uniform)
        return;
    /* myocardial brightness varies between patients */
    if (p->myocardium_echo != 1.0f) {
        size_t np = (size_t)r->ns * r->nb;
        for (size_t i = 0; i < np; i++)
            if (r->label[i] == EP_TISSUE_MYOCARDIUM)
                r->echo[i] *= p->myocardium_echo;
    }
}

static const float v2_gain[EP_TISSUE_COUNT] = {1.0f, 0.30f, 0.20f, 1.00f, 1.0f, 1.0f, 0.85f, 0.75f};

float ep_v2_tissue_gain(int tissue)
{
    return tissue >= 0 && tissue < EP_TISSUE_COUNT ? v2_gain[tissue] : 1.0f;
}

/* Version 2: echogenicity as real scanners show it, relative to the pericardium: near-black
 * blood, mid-grey myocardium, dim tissue outside the heart; drop-out where a wall runs along the
 * beam (no specular return), rib and lung shadows at the sector edges and the lateral fall-off
 * of the transducer's sensitivity. */
static void tissue_look_v2(ep_renderer *r, const ep_patient *p, const ep_scan *s, float dr,
                           float half_angle, float dth)
{
    const float *gain = v2_gain;
    int nb = r->nb, ns = r->ns;
    float bad = (float)(5 - s->quality) * 0.25f;
    float cw = p->chest_wall_mm;
    for (int j = 0; j < ns; j++) {
        float rmm = ((float)j + 0.5f) * dr;
        float *e = r->echo + (size_t)j * nb;
        const uint8_t *lab = r->label + (size_t)j * nb;
        float near = rmm < cw ? 2.2f : 1.0f; /* the chest wall stays bright under the probe */
        for (int b = 0; b < nb; b++)
            e[b] *= gain[lab[b]] * near;
    }
    /* drop-out: the share of the local contrast that is lateral (wall parallel to the beam).
     * Only specular interfaces lose their echo when the beam runs along them; the myocardium
     * is a diffuse (Rayleigh) scatterer that echoes at any angle, so a thick wall along the beam
     * (the septum of the apical views, apex to crux) keeps most of its grey: it loses a fifth of
     * the drop-out of thin specular structures (valves, pericardium, vessel walls) */
    float k = 0.35f + 0.3f * bad;
    for (int j = 1; j + 1 < ns; j++) {
        float *e = r->echo + (size_t)j * nb;
        const float *up = e - nb, *dn = e + nb;
        const uint8_t *lab = r->label + (size_t)j * nb;
        float *t = r->tre + (size_t)j * nb;
        for (int b = 1; b + 1 < nb; b++) {
            float ax = dn[b] - up[b], lat = e[b + 1] - e[b - 1];
            float l2 = lat * lat, a2 = ax * ax, c = e[b] * e[b] * 0.02f + 1e-8f;
            float kb = lab[b] == EP_TISSUE_MYOCARDIUM ? 0.2f * k : k;
            t[b] = 1.0f - kb * l2 / (l2 + a2 + c);
        }
    }
    for (int j = 1; j + 1 < ns; j++) {
        float *e = r->echo + (size_t)j * nb;
        const float *t = r->tre + (size_t)j * nb;
        for (int b = 1; b + 1 < nb; b++)
            e[b] *= t[b];
    }
    /* sensitivity falls towards the fan's edges; lung or rib shadow on one edge */
    ep_rng g = ep_rng_make(s->seed, 0x5EDE);
    float edge = ep_rng_range(&g, 0.15f, 0.45f);
    int side = ep_rng_uniform(&g) < 0.5f ? -1 : 1;
    float lung = ep_rng_uniform(&g) < 0.3f + 0.4f * bad ? ep_rng_range(&g, 0.08f, 0.25f) : 0.0f;
    if (s->view <= EP_VIEW_APICAL_LA_MV && lung == 0.0f) {
        /* apical window: the lingula lies lateral to the LV apex and free wall (screen right),
         * so a lung shadow on the lateral edge of the fan is the rule rather than the
         * exception; drawn from the same generator after the draws above */
        side = 1;
        lung = ep_rng_uniform(&g) < 0.6f ? ep_rng_range(&g, 0.10f, 0.30f) : 0.0f;
    }
    for (int b = 0; b < nb; b++) {
        float th = (-half_angle + ((float)b + 0.5f) * dth) / half_angle; /* -1..1 */
        float f = 1.0f - edge * th * th * th * th;
        float q = (float)side * th;
        if (lung > 0.0f && q > 1.0f - lung)
            f *= 0.08f + 0.92f * ep_clampf((1.0f - q) / lung * 4.0f - 3.0f, 0.0f, 1.0f);
        for (int j = 0; j < ns; j++)
            r->echo[(size_t)j * nb + b] *= f;
    }
}

/* Acquisition artefacts, stronger at poor quality grades. */
static void apply_artefacts(ep_renderer *r, const ep_patient *p, const ep_scan *s, float dr,
                            float half_angle, float dth, float clutter)
{
    float bad = (float)(5 - s->quality) * 0.25f;
    ep_rng g = ep_rng_make(s->seed, 0xA27E);
    float depth = s->depth_mm;
    float cw = p->chest_wall_mm;
    /* near-field clutter (haze over the blood pools) and reverberation arcs */
    float haze = (0.006f + 0.16f * bad * bad + 0.03f * bad) * clutter;
    float haze_len = (0.18f + 0.2f * bad) * depth;
    float rev = 0.10f * bad * clutter;
    float ph = ep_rng_range(&g, 0.0f, 6.28f), fr = ep_rng_range(&g, 3.0f, 7.0f);
    for (int j = 0; j < r->ns; j++) {
        float rmm = ((float)j + 0.5f) * dr;
        float add = haze * expf(-rmm / haze_len);
        for (int k = 2; k <= 4; k++) {
            float d = (rmm - (float)k * cw) / 2.0f;
            add += rev * expf(-d * d) / (float)(k - 1);
        }
        if (add < 1e-4f)
            continue;
        float *row = r->echo + (size_t)j * r->nb;
        for (int b = 0; b < r->nb; b++) {
            float th = -half_angle + ((float)b + 0.5f) * dth;
            float m = 0.65f + 0.35f * sinf(fr * th + ph);
            row[b] += add * m;
        }
    }
    /* shadows: ribs and lung edge (whole depth beyond a start), dropout (partial) */
    int n = (int)(bad * 3.0f + ep_rng_uniform(&g) * (0.6f + 1.5f * bad));
    if (n > MAX_SHADOWS)
        n = MAX_SHADOWS;
    for (int i = 0; i < n; i++) {
        float width = ep_rng_range(&g, 3.0f, 9.0f) * EP_DEG;
        float centre = ep_rng_range(&g, -half_angle, half_angle);
        float start = ep_rng_range(&g, 0.05f, 0.6f) * depth;
        float factor = ep_rng_range(&g, 0.08f, 0.45f);
        float edge = 1.2f * EP_DEG;
        for (int b = 0; b < r->nb; b++) {
            float th = -half_angle + ((float)b + 0.5f) * dth;
            float w = (0.5f * width + edge - fabsf(th - centre)) / edge;
            if (w <= 0.0f)
                continue;
            float att = 1.0f - (1.0f - factor) * ep_clampf(w, 0.0f, 1.0f);
            for (int j = (int)(start / dr); j < r->ns; j++) {
                float ramp = ep_clampf(((float)j * dr - start) / 8.0f, 0.0f, 1.0f);
                r->echo[(size_t)j * r->nb + b] *= 1.0f - ramp * (1.0f - att);
            }
        }
    }
}

/* ---- steps 2-4: scatterers, PSF, envelope, log compression ----------------------------------- */

static void form_image(ep_renderer *r, const ep_patient *p, const ep_scan *s, float dr, float dth)
{
    const ep_scene *sc = &r->scene;
    int nb = r->nb, ns = r->ns;
    float bad = (float)(5 - s->quality) * 0.25f;
    float depth = s->depth_mm;
    ep_rng g = ep_rng_make(s->seed, 0x7C6);

    /* attenuation (two-way, amplitude) and imperfect TGC per sample row */
    float alpha_db = p->attenuation_db_cm;
    float tgc_err = ep_rng_range(&g, -0.06f, 0.06f) * (1.0f + bad);
    float rip_a = ep_rng_range(&g, 0.5f, 1.5f + bad), rip_f = ep_rng_range(&g, 1.0f, 3.0f);
    float rip_p = ep_rng_range(&g, 0.0f, 6.28f);
    /* version 2: current receivers' thermal noise lies further under the strongest echoes;
     * at -72 dB the TGC (up to ~60 dB at 20 cm) lifted it to a bright grainy far field over
     * the whole lower sector, which real frames show only at poor windows */
    float noise_db = s->version == EP_VERSION_2 ? -78.0f + 18.0f * bad : -72.0f + 18.0f * bad;
    float noise_amp = powf(10.0f, noise_db / 20.0f);
    for (int j = 0; j < ns; j++) {
        float rcm = ((float)j + 0.5f) * dr * 0.1f;
        r->row_att[j] = powf(10.0f, -alpha_db * rcm / 20.0f);
        float ripple = rip_a * sinf(rip_f * 6.2832f * rcm / (depth * 0.1f) + rip_p);
        r->row_tgc[j] = s->tgc * (alpha_db * (1.0f + tgc_err) * rcm + ripple);
    }

    /* scatterers: the field is indexed in scene (tissue) coordinates */
    const float cell = 0.2f;
    const float inv_cell = 1.0f / cell;
    uint32_t pseed = (uint32_t)(p->seed ^ (p->seed >> 32)) * 2654435761u + 0x1234567u;
    uint32_t nseed = (uint32_t)(s->noise_seed ^ (s->noise_seed >> 32)) * 2246822519u + 0x7654321u;
    float mr2 = sc->motion_radius > 0.0f ? 1.0f / (sc->motion_radius * sc->motion_radius) : 0.0f;
    float mam = sc->motion_amount;
    for (int j = 0; j < ns; j++) {
        float rj = ((float)j + 0.5f) * dr;
        float att = r->row_att[j];
        const float *e = r->echo + (size_t)j * nb;
        float *ore = r->re + (size_t)j * nb, *oim = r->im + (size_t)j * nb;
        for (int b = 0; b < nb; b++) {
            float x = rj * r->sin_b[b], z = rj * r->cos_b[b];
            if (mam > 0.0f) { /* undo the contraction: material position of this sample */
                float dx = x - sc->motion_cx, dz = z - sc->motion_cz;
                float q = 1.0f + (dx * dx + dz * dz) * mr2;
                float w = mam / (q * q);
                x += dx * w;
                z += dz * w;
            }
            float qx = sc->pose_cs * x - sc->pose_sn * z + sc->pose_tx;
            float qz = sc->pose_sn * x + sc->pose_cs * z + sc->pose_tz;
            uint32_t h = hash3((uint32_t)(int32_t)floorf(qx * inv_cell),
                               (uint32_t)(int32_t)floorf(qz * inv_cell), pseed);
            uint32_t hn = hash3((uint32_t)b, (uint32_t)j, nseed);
            float a = e[b] * att * r->gauss_mag[h & (GAUSS_TABLE - 1)];
            float na = noise_amp * r->gauss_mag[hn & (GAUSS_TABLE - 1)];
            uint32_t ph = (h >> 10) & (PHASE_TABLE - 1), pn = (hn >> 10) & (PHASE_TABLE - 1);
            ore[b] = a * r->cos_t[ph] + na * r->cos_t[pn];
            oim[b] = a * r->sin_t[ph] + na * r->sin_t[pn];
        }
    }

    /* axial PSF (unit energy) along each beam: re/im -> tre/tim */
    /* version 2: harmonic imaging receives at twice the transmit frequency from a longer,
     * narrower-band pulse, so its speckle is longer axially (and narrower laterally, below):
     * the near-isotropic grain of modern scanners instead of long lateral streaks */
    float sig_ax = (s->version == EP_VERSION_2 ? 0.40f + 0.25f * s->harmonic : 0.30f) *
                   (1.0f + 0.5f * bad) / dr;
    if (sig_ax < 0.55f)
        sig_ax = 0.55f;
    int ka = (int)ceilf(2.5f * sig_ax);
    if (ka > MAX_TAPS)
        ka = MAX_TAPS;
    float kax[2 * MAX_TAPS + 1];
    {
        float e2 = 0.0f;
        for (int t = -ka; t <= ka; t++) {
            float v = expf(-0.5f * (float)(t * t) / (sig_ax * sig_ax));
            kax[t + ka] = v;
            e2 += v * v;
        }
        float nrm = 1.0f / sqrtf(e2);
        for (int t = 0; t <= 2 * ka; t++)
            kax[t] *= nrm;
    }
    for (int j = 0; j < ns; j++) {
        float *dre = r->tre + (size_t)j * nb, *dim = r->tim + (size_t)j * nb;
        memset(dre, 0, sizeof(float) * (size_t)nb);
        memset(dim, 0, sizeof(float) * (size_t)nb);
        for (int t = -ka; t <= ka; t++) {
            int jj = j + t;
            if (jj < 0 || jj >= ns)
                continue;
            float k = kax[t + ka];
            const float *sre = r->re + (size_t)jj * nb, *sim = r->im + (size_t)jj * nb;
            for (int b = 0; b < nb; b++) {
                dre[b] += k * sre[b];
                dim[b] += k * sim[b];
            }
        }
    }

    /* lateral PSF: beam width grows away from the focus; in beams it grows near the apex */
    float sig_lat0 = 0.9f * (1.0f + 0.8f * bad);
    if (s->version == EP_VERSION_2) /* real beams are wider; harmonics narrow them (the
                                     * harmonic beam is about the square of the fundamental's) */
        sig_lat0 *= 1.5f - 0.6f * s->harmonic;
    float focus = 0.55f * depth, zr = 0.25f * depth + 10.0f;
    int kw = 2 * MAX_TAPS + 1;
    for (int j = 0; j < ns; j++) {
        float rj = ((float)j + 0.5f) * dr;
        float dz = (rj - focus) / zr;
        float sig_mm = sig_lat0 * sqrtf(1.0f + dz * dz);
        float sig = sig_mm / (rj * dth);
        sig = ep_clampf(sig, 0.5f, (float)MAX_TAPS / 2.5f);
        int kl = (int)ceilf(2.5f * sig);
        if (kl > MAX_TAPS)
            kl = MAX_TAPS;
        float *k = r->kernel_lat + (size_t)j * kw;
        float e2 = 0.0f;
        for (int t = -MAX_TAPS; t <= MAX_TAPS; t++) {
            float v = (t < -kl || t > kl) ? 0.0f : expf(-0.5f * (float)(t * t) / (sig * sig));
            k[t + MAX_TAPS] = v;
            e2 += v * v;
        }
        float nrm = 1.0f / sqrtf(e2);
        for (int t = 0; t < kw; t++)
            k[t] *= nrm;
        r->row_lat[j] = (float)kl;
    }

    /* grey map: dB above (top - DR) -> [0,1] -> S-shaped display curve */
    float top = 1.0f - s->gain_db;
    float lo = top - s->dynamic_range_db;
    float to_index = (float)(GREY_TABLE - 1) / s->dynamic_range_db;
    /* version 2: a reject level, the toe of real scanners' grey maps: the bottom 4-8 % of the
     * displayed range (per vendor) is black, so weak scatter near the noise floor (blood, lung
     * beside the heart) reads black as on scanners instead of as dim speckle */
    static const float reject[EP_VENDOR_COUNT] = {0.05f, 0.08f, 0.06f, 0.04f};
    float toe = s->version == EP_VERSION_2 ? reject[s->vendor] : 0.0f;
    for (int i = 0; i < GREY_TABLE; i++) {
        float x = (float)i / (float)(GREY_TABLE - 1);
        if (toe > 0.0f)
            x = x > toe ? (x - toe) / (1.0f - toe) : 0.0f;
        float y = powf(x, s->version == EP_VERSION_2 ? s->gamma : 1.8f);
        r->grey_map[i] = 255.0f * y;
    }
    const float db_per_log2 = 3.0103f; /* 10 log10(2) */
    for (int j = 0; j < ns; j++) {
        const float *k = r->kernel_lat + (size_t)j * kw + MAX_TAPS;
        int kl = (int)r->row_lat[j];
        const float *sre = r->tre + (size_t)j * nb, *sim = r->tim + (size_t)j * nb;
        float *grey = r->grey + (size_t)j * nb;
        float offset = r->row_tgc[j] - lo;
        for (int b = 0; b < nb; b++) {
            float ar = 0.0f, ai = 0.0f;
            for (int t = -kl; t <= kl; t++) {
                int bb = b + t;
                bb = bb < 0 ? -bb : (bb >= nb ? 2 * nb - 2 - bb : bb);
                ar += k[t] * sre[bb];
                ai += k[t] * sim[bb];
            }
            float pw = ar * ar + ai * ai + 1e-20f;
            float db = db_per_log2 * fast_log2(pw) + offset;
            float fi = db * to_index;
            int idx = fi <= 0.0f ? 0 : (fi >= (float)(GREY_TABLE - 1) ? GREY_TABLE - 1 : (int)fi);
            grey[b] = r->grey_map[idx];
        }
    }
    if (s->version == EP_VERSION_2 && s->smoothing > 0.0f) {
        /* speckle reduction: blend with a box about 1.6 mm deep and 3-5 beams wide (separable,
         * edges clamped), as scanners' display filters smooth over a few resolution cells */
        float wgt = s->smoothing;
        int ka2 = (int)lroundf(0.8f / dr);
        ka2 = ka2 < 1 ? 1 : (ka2 > 5 ? 5 : ka2);
        int kl2 = nb >= 200 ? 2 : 1;
        float inv_l = 1.0f / (float)(2 * kl2 + 1);
        float inv_a = 1.0f / (float)(2 * ka2 + 1);
        for (int j = 0; j < ns; j++) {
            const float *gr = r->grey + (size_t)j * nb;
            float *t = r->tre + (size_t)j * nb;
            for (int b = 0; b < nb; b++) {
                float acc = 0.0f;
                for (int t2 = -kl2; t2 <= kl2; t2++) {
                    int bb = b + t2 < 0 ? 0 : (b + t2 >= nb ? nb - 1 : b + t2);
                    acc += gr[bb];
                }
                t[b] = acc * inv_l;
            }
        }
        for (int j = 0; j < ns; j++) {
            float *gr = r->grey + (size_t)j * nb;
            float *acc = r->tim + (size_t)j * nb;
            memset(acc, 0, sizeof(float) * (size_t)nb);
            for (int t = -ka2; t <= ka2; t++) {
                int jj = j + t < 0 ? 0 : (j + t >= ns ? ns - 1 : j + t);
                const float *src = r->tre + (size_t)jj * nb;
                for (int b = 0; b < nb; b++)
                    acc[b] += src[b];
            }
            for (int b = 0; b < nb; b++) {
                float box = acc[b] * inv_a;
                gr[b] += wgt * (box - gr[b]);
            }
        }
    }
}

/* ---- step 5: scan conversion ------------------------------------------------------------------ */

static void scan_convert(const ep_renderer *r, uint8_t *out, size_t stride)
{
    int nb = r->nb;
    for (int py = 0; py < r->height; py++) {
        uint8_t *row = out + (size_t)py * stride;
        for (int px = 0; px < r->width; px++) {
            size_t o = (size_t)py * (size_t)r->width + (size_t)px;
            int32_t idx = r->lut_index[o];
            if (idx < 0) {
                row[px] = 0;
                continue;
            }
            float fb = r->lut_frac[2 * o], fs = r->lut_frac[2 * o + 1];
            const float *g0 = r->grey + idx, *g1 = g0 + nb;
            float top = g0[0] + fb * (g0[1] - g0[0]);
            float bot = g1[0] + fb * (g1[1] - g1[0]);
            float v = top + fs * (bot - top) + 0.5f;
            row[px] = (uint8_t)(v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v));
        }
    }
}

/* ---- step 6: overlays -------------------------------------------------------------------------- */

static void put_dot(uint8_t *out, size_t stride, int w, int h, int x, int y, int size, uint8_t v)
{
    for (int dy = 0; dy < size; dy++)
        for (int dx = 0; dx < size; dx++) {
            int xx = x + dx, yy = y + dy;
            if (xx >= 0 && yy >= 0 && xx < w && yy < h)
                out[(size_t)yy * stride + (size_t)xx] = v;
        }
}

/* 3x5 glyphs, rows top to bottom, bit 2 = left column. */
static const struct {
    char c;
    uint8_t rows[5];
} font[] = {
    {'0', {7, 5, 5, 5, 7}}, {'1', {2, 6, 2, 2, 7}}, {'2', {7, 1, 7, 4, 7}}, {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 7, 1, 7}}, {'6', {7, 4, 7, 5, 7}}, {'7', {7, 1, 1, 2, 2}},
    {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 7}}, {'A', {2, 5, 7, 5, 5}}, {'B', {6, 5, 6, 5, 6}},
    {'C', {7, 4, 4, 4, 7}}, {'D', {6, 5, 5, 5, 6}}, {'E', {7, 4, 6, 4, 7}}, {'F', {7, 4, 6, 4, 4}},
    {'G', {7, 4, 5, 5, 7}}, {'H', {5, 5, 7, 5, 5}}, {'I', {7, 2, 2, 2, 7}}, {'K', {5, 5, 6, 5, 5}},
    {'L', {4, 4, 4, 4, 7}}, {'M', {5, 7, 7, 5, 5}}, {'N', {5, 7, 7, 7, 5}}, {'O', {7, 5, 5, 5, 7}},
    {'P', {6, 5, 6, 4, 4}}, {'R', {6, 5, 6, 5, 5}}, {'S', {7, 4, 7, 1, 7}}, {'T', {7, 2, 2, 2, 2}},
    {'U', {5, 5, 5, 5, 7}}, {'V', {5, 5, 5, 5, 2}}, {'Z', {7, 1, 2, 4, 7}}, {'.', {0, 0, 0, 0, 2}},
    {'/', {1, 1, 2, 4, 4}}, {':', {0, 2, 0, 2, 0}}, {'-', {0, 0, 7, 0, 0}}, {'W', {5, 5, 7, 7, 5}},
    {'X', {5, 5, 2, 5, 5}}, {'Y', {5, 5, 2, 2, 2}}, {'J', {1, 1, 1, 5, 7}}, {'Q', {7, 5, 5, 7, 1}},
    {'%', {5, 1, 2, 4, 5}}, {'+', {0, 2, 7, 2, 0}},
};

static void put_text(uint8_t *out, size_t stride, int w, int h, int x, int y, int scale,
                     const char *text, uint8_t v)
{
    for (; *text; text++, x += 4 * scale) {
        for (size_t g = 0; g < sizeof font / sizeof font[0]; g++) {
            if (font[g].c != *text)
                continue;
            for (int row = 0; row < 5; row++)
                for (int col = 0; col < 3; col++)
                    if (font[g].rows[row] & (4 >> col))
                        put_dot(out, stride, w, h, x + col * scale, y + row * scale, scale, v);
            break;
        }
    }
}

/* Lead II-like trace, phase 0 at the R peak. */
static float ecg_at(float t)
{
    t -= floorf(t);
    float v = 0.0f;
    float d;
    d = (t - 0.88f) / 0.025f; /* P */
    v += 0.12f * expf(-d * d);
    d = (t > 0.5f ? t - 1.0f : t) / 0.008f; /* R */
    v += 1.0f * expf(-d * d);
    d = ((t > 0.5f ? t - 1.0f : t) + 0.018f) / 0.008f; /* Q */
    v -= 0.12f * expf(-d * d);
    d = (t - 0.022f) / 0.01f; /* S */
    v -= 0.22f * expf(-d * d);
    d = (t - 0.27f) / 0.05f; /* T */
    v += 0.28f * expf(-d * d);
    return v;
}

static int fmt_int(char *dst, int v)
{
    char tmp[12];
    int n = 0, k = 0;
    if (v < 0) {
        dst[k++] = '-';
        v = -v;
    }
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < 11);
    while (n)
        dst[k++] = tmp[--n];
    dst[k] = 0;
    return k;
}

static void draw_overlays(const ep_renderer *r, const ep_patient *p, const ep_scan *s, float phase,
                          float half_angle, uint8_t *out, size_t stride)
{
    int w = r->width, h = r->height;
    fan_map m = fan_map_for(s->framing, half_angle, w, h);
    int dot = w >= 400 ? 3 : (w >= 200 ? 2 : 1);
    if (s->overlays & EP_OVERLAY_RULER) {
        float a = half_angle + 2.5f * EP_DEG;
        for (int cm = 1; cm * 10.0f <= s->depth_mm; cm++) {
            float rr = cm * 10.0f / s->depth_mm;
            int x = (int)(m.ax + m.sx * rr * sinf(a)), y = (int)(m.ay + m.sy * rr * cosf(a));
            int sz = (cm % 5 == 0) ? dot + 1 : dot;
            put_dot(out, stride, w, h, x, y, sz, 200);
        }
    }
    if (s->framing != EP_FRAMING_SCANNER)
        return; /* ECG and text live outside the fan's box; a cropped frame has no room */
    int scale = h >= 400 ? 2 : 1;
    if (s->overlays & EP_OVERLAY_ECG) {
        int y0 = (int)(0.885f * (float)h), amp = (int)(0.06f * (float)h);
        int x0 = (int)(0.08f * (float)w), x1 = (int)(0.92f * (float)w);
        int prev = y0;
        for (int x = x0; x < x1; x++) {
            float t = 2.0f * (float)(x - x0) / (float)(x1 - x0);
            int y = y0 - (int)((float)amp * ecg_at(t));
            int ya = prev < y ? prev : y, yb = prev < y ? y : prev;
            for (int yy = ya; yy <= yb; yy++)
                put_dot(out, stride, w, h, x, yy, scale, 170);
            prev = y;
        }
        int xm = x0 + (int)((1.0f + phase) * 0.5f * (float)(x1 - x0));
        for (int yy = y0 - amp - 2; yy <= y0 + amp / 2; yy++)
            put_dot(out, stride, w, h, xm, yy, scale, 255);
    }
    if (s->overlays & EP_OVERLAY_TEXT) {
        char line[48];
        int k;
        int cy = (int)(0.012f * (float)h) + 1, lh = 7 * scale;
        put_text(out, stride, w, h, 4, cy, scale, "ADULT ECHO 2.5MHZ", 210);
        memcpy(line, "DEPTH ", 6);
        k = 6 + fmt_int(line + 6, (int)lroundf(s->depth_mm * 0.1f));
        memcpy(line + k, "CM", 3);
        put_text(out, stride, w, h, 4, cy + lh, scale, line, 210);
        memcpy(line, "HR ", 3);
        k = 3 + fmt_int(line + 3, (int)lroundf(p->heart_rate_bpm));
        memcpy(line + k, " BPM", 5);
        put_text(out, stride, w, h, w - 4 - 4 * scale * 10, cy, scale, line, 210);
        memcpy(line, "G ", 2);
        k = 2 + fmt_int(line + 2, (int)lroundf(50.0f + s->gain_db));
        memcpy(line + k, " DR ", 4);
        k += 4;
        k += fmt_int(line + k, (int)lroundf(s->dynamic_range_db));
        put_text(out, stride, w, h, w - 4 - 4 * scale * 10, cy + lh, scale, line, 210);
    }
}

/* Shared with ep_screens.c (ep_internal.h). */
void ep_draw_dot(uint8_t *out, size_t stride, int w, int h, int x, int y, int size, uint8_t v)
{
    put_dot(out, stride, w, h, x, y, size, v);
}

void ep_draw_text(uint8_t *out, size_t stride, int w, int h, int x, int y, int scale,
                  const char *text, uint8_t v)
{
    put_text(out, stride, w, h, x, y, scale, text, v);
}

float ep_ecg_at(float t) { return ecg_at(t); }

int ep_fmt_int(char *dst, int v) { return fmt_int(dst, v); }

void ep_draw_rect(uint8_t *out, size_t stride, int w, int h, int x, int y, int rw, int rh,
                  uint8_t v)
{
    for (int yy = y < 0 ? 0 : y; yy < y + rh && yy < h; yy++)
        for (int xx = x < 0 ? 0 : x; xx < x + rw && xx < w; xx++)
            out[(size_t)yy * stride + (size_t)xx] = v;
}

void ep_draw_ecg(uint8_t *out, size_t stride, int w, int h, int x0, int x1, int y0, int amp,
                 float cycles, float phase, int thick, uint8_t v)
{
    int prev = y0;
    for (int x = x0; x < x1; x++) {
        float t = cycles * (float)(x - x0) / (float)(x1 - x0);
        int y = y0 - (int)((float)amp * ecg_at(t + phase));
        int ya = prev < y ? prev : y, yb = prev < y ? y : prev;
        for (int yy = ya; yy <= yb; yy++)
            put_dot(out, stride, w, h, x, yy, thick, v);
        prev = y;
    }
}

/* ---- version 2 overlays: vendor-like screen layouts ------------------------------------------ */

static void text_line(char *dst, size_t n, const char *a, int v, const char *b)
{
    char num[16];
    fmt_int(num, v);
    snprintf(dst, n, "%s%s%s", a, num, b);
}

static void draw_overlays_v2(const ep_renderer *r, const ep_patient *p, const ep_scan *s,
                             float phase, float half_angle, uint8_t *out, size_t stride)
{
    int w = r->width, h = r->height;
    fan_map m = fan_map_v2(s, half_angle, w, h);
    float steer = s->steer_deg * EP_DEG;
    int dot = w >= 400 ? 2 : 1;
    int scale = h >= 400 ? 2 : 1, lh = 7 * scale;
    int vendor = s->vendor;
    char line[48];
    if (s->overlays & EP_OVERLAY_RULER) {
        /* depth marks beside the fan: dots (vendors 0, 1), ticks with numbers (2, 3) */
        int left = vendor == 2;
        float a = left ? steer - half_angle - 3.0f * EP_DEG : steer + half_angle + 3.0f * EP_DEG;
        for (int cm = 1; cm * 10.0f <= s->depth_mm; cm++) {
            float rr = cm * 10.0f / s->depth_mm;
            int x = (int)(m.ax + m.sx * rr * sinf(a)), y = (int)(m.ay + m.sy * rr * cosf(a));
            if (vendor == 3)
                x = (int)(0.95f * (float)w), y = (int)(m.ay + m.sy * rr);
            if (vendor <= 1) {
                put_dot(out, stride, w, h, x, y, (cm % 5 == 0) ? dot + 1 : dot, 190);
            } else {
                int len = (cm % 5 == 0 ? 4 : 2) * dot;
                ep_draw_rect(out, stride, w, h, left ? x - len : x, y, len, dot, 200);
                if (cm % 5 == 0) {
                    fmt_int(line, cm);
                    put_text(out, stride, w, h, left ? x - len - 10 * scale : x + len + 2, y - 2,
                             scale, line, 200);
                }
            }
        }
        if (vendor == 3)
            ep_draw_rect(out, stride, w, h, (int)(0.95f * (float)w) - 1, (int)m.ay, 1,
                         (int)(m.sy * fminf(1.0f, ((float)h - m.ay) / m.sy)), 120);
    }
    if (s->framing != EP_FRAMING_SCANNER)
        return;
    /* orientation marker beside the apex */
    {
        int mx = (int)m.ax + (vendor == 2 ? -14 : 10) * scale, my = (int)m.ay + 2 * scale;
        put_text(out, stride, w, h, mx, my, scale, vendor == 1 ? "" : "V", 220);
        if (vendor == 1)
            put_dot(out, stride, w, h, mx, my, 3 * scale, 200);
    }
    if (vendor == 1) /* a grey banner over the top of the screen */
        ep_draw_rect(out, stride, w, h, 0, 0, w, (int)(0.07f * (float)h), 30);
    if (vendor == 3) { /* thin frame around the image area */
        ep_draw_rect(out, stride, w, h, 2, 2, w - 4, 1, 70);
        ep_draw_rect(out, stride, w, h, 2, h - 3, w - 4, 1, 70);
        ep_draw_rect(out, stride, w, h, 2, 2, 1, h - 4, 70);
        ep_draw_rect(out, stride, w, h, w - 3, 2, 1, h - 4, 70);
    }
    /* grey bar */
    {
        int bx = vendor == 0 ? (int)(0.03f * (float)w) : (int)(0.92f * (float)w);
        int by = (int)((vendor == 2 ? 0.55f : 0.18f) * (float)h), bh = (int)(0.22f * (float)h);
        int bw = w >= 400 ? 6 : 3;
        for (int y = 0; y < bh; y++)
            ep_draw_rect(out, stride, w, h, bx, by + y, bw, 1,
                         (uint8_t)(255 - 255 * y / (bh > 1 ? bh - 1 : 1)));
    }
    if (s->overlays & EP_OVERLAY_ECG) {
        float ey = vendor == 2 ? 0.95f : (vendor == 3 ? 0.90f : 0.92f);
        int y0 = (int)(ey * (float)h), amp = (int)(0.05f * (float)h);
        int x0 = (int)((vendor == 1 ? 0.15f : 0.06f) * (float)w), x1 = (int)(0.90f * (float)w);
        ep_draw_ecg(out, stride, w, h, x0, x1, y0, amp, 2.0f, 0.0f, scale, 160);
        int xm = x0 + (int)((1.0f + phase) * 0.5f * (float)(x1 - x0));
        for (int yy = y0 - amp - 2; yy <= y0 + amp / 2; yy++)
            put_dot(out, stride, w, h, xm, yy, scale, 255);
    }
    if (s->overlays & EP_OVERLAY_TEXT) {
        int tx, ty;
        static const char *const probe[EP_VENDOR_COUNT] = {"M5S", "S5-1", "4V1C", "PST-30BT"};
        int fr = 30 + (int)((uint32_t)(s->seed >> 20) % 50u);
        switch (vendor) {
        case 0:
            tx = 4, ty = (int)(0.012f * (float)h) + 1;
            break;
        case 1:
            tx = 4, ty = (int)(0.13f * (float)h);
            break;
        case 2:
            tx = 4, ty = (int)(0.70f * (float)h);
            break;
        default:
            tx = (int)(0.78f * (float)w), ty = (int)(0.15f * (float)h);
            break;
        }
        put_text(out, stride, w, h, tx, ty, scale, probe[vendor], 210);
        text_line(line, sizeof line, "FR ", fr, "HZ");
        put_text(out, stride, w, h, tx, ty + lh, scale, line, 200);
        text_line(line, sizeof line, "", (int)lroundf(s->depth_mm * 0.1f), "CM");
        put_text(out, stride, w, h, tx, ty + 2 * lh, scale, line, 200);
        text_line(line, sizeof line, "G ", (int)lroundf(50.0f + s->gain_db), "%");
        put_text(out, stride, w, h, tx, ty + 3 * lh, scale, line, 190);
        text_line(line, sizeof line, "DR ", (int)lroundf(s->dynamic_range_db), "");
        put_text(out, stride, w, h, tx, ty + 4 * lh, scale, line, 190);
        put_text(out, stride, w, h, tx, ty + 5 * lh, scale, s->harmonic > 0.0f ? "HGEN" : "GEN",
                 190);
        int rx = w - 4 - 4 * scale * 12, ry = vendor == 1 ? 2 : (int)(0.012f * (float)h) + 1;
        put_text(out, stride, w, h, rx, ry, scale, "TIS0.7 MI1.2", 200);
        text_line(line, sizeof line, "HR ", (int)lroundf(p->heart_rate_bpm), " BPM");
        put_text(out, stride, w, h, rx, (int)(0.97f * (float)h) - 5 * scale, scale, line, 190);
    }
}

/* ---- version 2 colour Doppler ------------------------------------------------------------------ */

/* Smooth value noise in [0, 1) on a grid of cell mm. */
static float value_noise(float x, float z, float cell, uint32_t seed)
{
    float fx = x / cell, fz = z / cell;
    float ix = floorf(fx), iz = floorf(fz);
    float tx = fx - ix, tz = fz - iz;
    int32_t a = (int32_t)ix, b = (int32_t)iz;
    float v00 = (float)(hash3((uint32_t)a, (uint32_t)b, seed) >> 8) * (1.0f / 16777216.0f);
    float v10 = (float)(hash3((uint32_t)(a + 1), (uint32_t)b, seed) >> 8) * (1.0f / 16777216.0f);
    float v01 = (float)(hash3((uint32_t)a, (uint32_t)(b + 1), seed) >> 8) * (1.0f / 16777216.0f);
    float v11 =
        (float)(hash3((uint32_t)(a + 1), (uint32_t)(b + 1), seed) >> 8) * (1.0f / 16777216.0f);
    tx = tx * tx * (3.0f - 2.0f * tx);
    tz = tz * tz * (3.0f - 2.0f * tz);
    float top = v00 + tx * (v10 - v00), bot = v01 + tx * (v11 - v01);
    return top + tz * (bot - top);
}

/* Writes one colour pixel: RGB, or its luma into a grey frame. */
static void put_colour(uint8_t *out, size_t stride, int channels, int x, int y, int cr, int cg,
                       int cb)
{
    uint8_t *q = out + (size_t)y * stride + (size_t)x * (size_t)channels;
    cr = cr > 255 ? 255 : cr, cg = cg > 255 ? 255 : cg, cb = cb > 255 ? 255 : cb;
    if (channels == 3) {
        q[0] = (uint8_t)cr, q[1] = (uint8_t)cg, q[2] = (uint8_t)cb;
    } else {
        q[0] = (uint8_t)((299 * cr + 587 * cg + 114 * cb + 500) / 1000);
    }
}

/* Blood velocity towards the probe in [-1, 1] of the Nyquist limit: inflow (towards the probe in
 * the windows this phantom images from) in diastole, outflow away in systole, with patches of
 * faster flow; above the limit the colour aliases to the other sign. */
static float flow_at(const ep_scan *s, float x, float z, float phase, uint32_t seed)
{
    float sys = ep_av_opening_at(phase), dia = ep_mv_opening_at(phase);
    float n = value_noise(x, z, 7.0f, seed), n2 = value_noise(x, z, 2.5f, seed ^ 0x55u);
    float v = (1.1f * dia - 1.3f * sys) * (0.35f + 0.9f * n) + 0.25f * (n2 - 0.5f);
    if (s->view == EP_VIEW_PLAX_FULL || s->view == EP_VIEW_PLAX_VALVES ||
        s->view == EP_VIEW_PLAX_TV)
        v = -v; /* the long-axis window sees the same flows the other way round */
    if (v > 1.0f)
        v -= 2.0f;
    else if (v < -1.0f)
        v += 2.0f;
    return v;
}

static void draw_colour(const ep_renderer *r, const ep_scan *s, float phase, float half_angle,
                        uint8_t *out, size_t stride, int channels)
{
    int nb = r->nb, ns = r->ns;
    float b0 = (s->color_box[0] + 1.0f) * 0.5f * (float)nb,
          b1 = (s->color_box[1] + 1.0f) * 0.5f * (float)nb;
    float j0 = s->color_box[2] * (float)ns, j1 = s->color_box[3] * (float)ns;
    float dr = s->depth_mm / (float)ns;
    uint32_t seed = hash3((uint32_t)s->seed, (uint32_t)(s->noise_seed >> 7), 0xC0105u);
    float bad = (float)(5 - s->quality) * 0.25f;
    for (int py = 0; py < r->height; py++) {
        for (int px = 0; px < r->width; px++) {
            size_t o = (size_t)py * (size_t)r->width + (size_t)px;
            int32_t idx = r->lut_index[o];
            if (idx < 0)
                continue;
            float fb = (float)(idx % nb) + r->lut_frac[2 * o] + 0.5f;
            float fs = (float)(idx / nb) + r->lut_frac[2 * o + 1] + 0.5f;
            if (fb < b0 - 0.7f || fb > b1 + 0.7f || fs < j0 - 0.7f || fs > j1 + 0.7f)
                continue;
            if (fb < b0 || fb > b1 || fs < j0 || fs > j1) { /* the box's outline */
                put_colour(out, stride, channels, px, py, 170, 170, 170);
                continue;
            }
            int db = r->lut_frac[2 * o] >= 0.5f, ds = r->lut_frac[2 * o + 1] >= 0.5f;
            int q = idx + ds * nb + db;
            if (r->label[q] != EP_TISSUE_BLOOD)
                continue;
            float rj = fs * dr;
            int bb = q % nb;
            float x = rj * r->sin_b[bb], z = rj * r->cos_b[bb];
            float v = flow_at(s, x, z, phase, seed);
            /* the wall filter blanks slow flow; poor windows drop colour in patches */
            if (fabsf(v) < 0.12f || value_noise(x, z, 4.0f, seed ^ 0xD0u) < 0.35f * bad)
                continue;
            float a = fabsf(v);
            int hi = (int)(460.0f * fmaxf(0.0f, a - 0.55f));
            if (v > 0.0f)
                put_colour(out, stride, channels, px, py, 70 + (int)(280.0f * a), hi, 10);
            else
                put_colour(out, stride, channels, px, py, 10, hi, 70 + (int)(280.0f * a));
        }
    }
    if (s->framing == EP_FRAMING_SCANNER) { /* colour scale: red above, blue below */
        int w = r->width, h = r->height;
        int bx = (int)(0.955f * (float)w), by = (int)(0.45f * (float)h), bh = (int)(0.2f * h);
        int bw = w >= 400 ? 6 : 3;
        for (int y = 0; y < bh; y++) {
            float v = 1.0f - 2.0f * (float)y / (float)(bh - 1);
            float a = fabsf(v);
            int hi = (int)(460.0f * fmaxf(0.0f, a - 0.55f));
            for (int x = bx; x < bx + bw && x < w; x++)
                if (by + y < h)
                    put_colour(out, stride, channels, x, by + y,
                               v > 0 ? 70 + (int)(280.0f * a) : 10, hi,
                               v > 0 ? 10 : 70 + (int)(280.0f * a));
        }
    }
}

/* ---- entry points ---------------------------------------------------------------------------- */

static int patient_ok(const ep_patient *p)
{
    return isfinite(p->lv_length_mm) && p->lv_length_mm >= 40.0f && p->lv_length_mm <= 150.0f &&
           isfinite(p->lv_width_mm) && p->lv_width_mm >= 20.0f && p->lv_width_mm <= 90.0f &&
           isfinite(p->wall_mm) && p->wall_mm >= 3.0f && p->wall_mm <= 25.0f &&
           isfinite(p->rv_scale) && p->rv_scale >= 0.4f && p->rv_scale <= 2.0f &&
           isfinite(p->la_scale) && p->la_scale >= 0.4f && p->la_scale <= 2.0f &&
           isfinite(p->ra_scale) && p->ra_scale >= 0.4f && p->ra_scale <= 2.0f &&
           isfinite(p->aorta_mm) && p->aorta_mm >= 10.0f && p->aorta_mm <= 60.0f &&
           isfinite(p->ivc_mm) && p->ivc_mm >= 5.0f && p->ivc_mm <= 40.0f &&
           isfinite(p->heart_tilt_deg) && fabsf(p->heart_tilt_deg) <= 45.0f &&
           isfinite(p->heart_shift_mm) && fabsf(p->heart_shift_mm) <= 40.0f &&
           isfinite(p->chest_wall_mm) && p->chest_wall_mm >= 3.0f && p->chest_wall_mm <= 60.0f &&
           isfinite(p->liver_mm) && p->liver_mm >= 20.0f && p->liver_mm <= 150.0f &&
           isfinite(p->contraction) && p->contraction >= 0.0f && p->contraction <= 0.7f &&
           isfinite(p->heart_rate_bpm) && p->heart_rate_bpm >= 20.0f &&
           p->heart_rate_bpm <= 250.0f && isfinite(p->attenuation_db_cm) &&
           p->attenuation_db_cm >= 0.0f && p->attenuation_db_cm <= 10.0f &&
           isfinite(p->myocardium_echo) && p->myocardium_echo >= 0.1f &&
           p->myocardium_echo <= 3.0f && isfinite(p->shape[0]) && isfinite(p->shape[1]) &&
           isfinite(p->shape[2]) && isfinite(p->shape[3]) && isfinite(p->shape[4]) &&
           isfinite(p->shape[5]);
}

/* Shared front half: checks, scene, polar geometry, echogenicity map. */
static int prepare(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase,
                   const uint8_t *out, size_t stride, float *dr, float *half_angle, float *dth,
                   float *ph_out)
{
    if (!r || !p || !s || !out || stride < (size_t)r->width || !isfinite(phase))
        return EP_ERR_INVALID;
    if (ep_scan_validate(s) != EP_OK || !patient_ok(p))
        return EP_ERR_INVALID;
    if ((size_t)r->height > SIZE_MAX / stride)
        return EP_ERR_INVALID;
    float ph = (float)(phase - floor(phase));
    if (ph >= 1.0f)
        ph = 0.0f;
    *ph_out = ph;
    *half_angle = 0.5f * s->sector_deg * EP_DEG;
    *dr = s->depth_mm / (float)r->ns;
    *dth = 2.0f * *half_angle / (float)r->nb;
    for (int b = 0; b < r->nb; b++) {
        float th = -*half_angle + ((float)b + 0.5f) * *dth;
        r->sin_b[b] = sinf(th);
        r->cos_b[b] = cosf(th);
    }
    ep_scene_build(&r->scene, p, s, ph);
    build_echo_map(r, p, s, *dr, *half_angle, *dth);
    build_lut(r, s, *half_angle);
    return EP_OK;
}

/* B-mode (or the screen) into the grey frame out; colour into rgb (3 channels) when given,
 * else as luma into out. */
static int render_frame(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase,
                        uint8_t *out, size_t stride, uint8_t *rgb, size_t rgb_stride)
{
    float dr, ha, dth, ph;
    int rc = prepare(r, p, s, phase, out, stride, &dr, &ha, &dth, &ph);
    if (rc != EP_OK)
        return rc;
    int v2 = s->version == EP_VERSION_2;
    if (!(s->flags & EP_FLAG_UNIFORM_PHANTOM)) {
        if (v2)
            tissue_look_v2(r, p, s, dr, ha, dth);
        /* harmonics suppress near-field clutter and reverberation: those echoes are too weak to
         * generate the second harmonic (the main reason harmonic imaging is used); v2 */
        apply_artefacts(r, p, s, dr, ha, dth, v2 ? 1.0f - 0.8f * s->harmonic : 1.0f);
    }
    form_image(r, p, s, dr, dth);
    if (v2 && !is_2d(s)) {
        ep_polar_view pv = {r->grey, r->nb, r->ns, ha, s->depth_mm};
        ep_draw_screen(&pv, p, s, ph, r->width, r->height, out, stride);
    } else {
        scan_convert(r, out, stride);
        if (s->overlays)
            (v2 ? draw_overlays_v2 : draw_overlays)(r, p, s, ph, ha, out, stride);
    }
    if (rgb) {
        for (int y = 0; y < r->height; y++) {
            const uint8_t *g = out + (size_t)y * stride;
            uint8_t *q = rgb + (size_t)y * rgb_stride;
            for (int x = 0; x < r->width; x++)
                q[3 * x] = q[3 * x + 1] = q[3 * x + 2] = g[x];
        }
    }
    if (v2 && s->screen == EP_SCREEN_COLOR)
        draw_colour(r, s, ph, ha, rgb ? rgb : out, rgb ? rgb_stride : stride, rgb ? 3 : 1);
    return EP_OK;
}

int ep_render(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase, uint8_t *out,
              size_t stride)
{
    return render_frame(r, p, s, phase, out, stride, NULL, 0);
}

int ep_render_rgb(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase, uint8_t *out,
                  size_t stride)
{
    if (!r || !out || stride / 3 < (size_t)r->width)
        return EP_ERR_INVALID;
    if ((size_t)r->height > SIZE_MAX / stride)
        return EP_ERR_INVALID;
    return render_frame(r, p, s, phase, r->frame, (size_t)r->width, out, stride);
}

int ep_render_time(ep_renderer *r, const ep_patient *p, const ep_scan *s, double t_seconds,
                   uint8_t *out, size_t stride)
{
    if (!p || !isfinite(t_seconds))
        return EP_ERR_INVALID;
    double phase = t_seconds * (double)p->heart_rate_bpm / 60.0;
    return ep_render(r, p, s, phase - floor(phase), out, stride);
}

int ep_render_labels(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase,
                     uint8_t *out, size_t stride)
{
    float dr, ha, dth, ph;
    int rc = prepare(r, p, s, phase, out, stride, &dr, &ha, &dth, &ph);
    if (rc != EP_OK)
        return rc;
    if (!is_2d(s)) {
        for (int py = 0; py < r->height; py++)
            memset(out + (size_t)py * stride, EP_TISSUE_NONE, (size_t)r->width);
        return EP_OK;
    }
    for (int py = 0; py < r->height; py++) {
        uint8_t *row = out + (size_t)py * stride;
        for (int px = 0; px < r->width; px++) {
            size_t o = (size_t)py * (size_t)r->width + (size_t)px;
            int32_t idx = r->lut_index[o];
            if (idx < 0) {
                row[px] = EP_TISSUE_NONE;
                continue;
            }
            int db = r->lut_frac[2 * o] >= 0.5f, ds = r->lut_frac[2 * o + 1] >= 0.5f;
            row[px] = r->label[idx + ds * r->nb + db];
        }
    }
    return EP_OK;
}
