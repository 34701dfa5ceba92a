/* ep_internal.h: what the phantom's own files share: the random number helpers, the anatomy
 * primitives a view scene is made of, and the scene builder the renderer calls per frame. */
#ifndef EP_INTERNAL_H
#define EP_INTERNAL_H

#include "echophantom.h"

#include <stddef.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#define EP_PI 3.14159265358979323846f
#define EP_DEG (EP_PI / 180.0f)

/* ---- random numbers (splitmix64: small, fast, identical everywhere) ---------------------------- */

typedef struct ep_rng {
    uint64_t state;
} ep_rng;

static inline uint64_t ep_rng_next(ep_rng *g)
{
    uint64_t z = (g->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0,1). */
static inline float ep_rng_uniform(ep_rng *g)
{
    return (float)(ep_rng_next(g) >> 40) * (1.0f / 16777216.0f);
}

static inline float ep_rng_range(ep_rng *g, float lo, float hi)
{
    return lo + (hi - lo) * ep_rng_uniform(g);
}

/* Mixes a seed and a stream tag into a fresh generator state. */
static inline ep_rng ep_rng_make(uint64_t seed, uint64_t stream)
{
    ep_rng g = {seed ^ (stream * 0xD1B54A32D192ED03ull)};
    (void)ep_rng_next(&g);
    return g;
}

static inline float ep_clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* ---- anatomy primitives ---------------------------------------------------------------------- */

enum { EP_PRIM_ELLIPSE = 0, EP_PRIM_CAPSULE = 1 };

/* A filled shape with an echogenicity, painted over what lies below with an anti-aliased edge.
 * Coordinates are image millimetres: x lateral (+ = screen right), z depth from the probe. */
typedef struct ep_prim {
    int type;
    int tissue;                   /* EP_TISSUE_* */
    float echo;                   /* scatterer amplitude (echogenicity), pericardium ~1 */
    float soft;                   /* edge width, mm */
    float cx, cz;                 /* ellipse centre */
    float a, b;                   /* ellipse semi-axes (a along the rotated x axis) */
    float cs, sn;                 /* ellipse rotation: cos, sin */
    float x0, z0, x1, z1, radius; /* capsule: segment and radius */
} ep_prim;

/* The signed distance (mm, negative inside) from (x, z) to p's edge, approximate for ellipses
 * (the implicit function over its gradient); false when the point is so far outside an ellipse
 * that its edge cannot reach it (the painter skips it). */
static inline bool ep_prim_distance(const ep_prim *p, float x, float z, float *d)
{
    if (p->type == EP_PRIM_ELLIPSE) {
        float dx = x - p->cx, dz = z - p->cz;
        float u = (dx * p->cs + dz * p->sn) / p->a, v = (-dx * p->sn + dz * p->cs) / p->b;
        float f = u * u + v * v;
        if (f > 4.0f && fminf(p->a, p->b) > p->soft)
            return false;
        float g = sqrtf(u * u / (p->a * p->a) + v * v / (p->b * p->b)) + 1e-6f;
        *d = (f - 1.0f) / (2.0f * g);
    } else {
        float ux = p->x1 - p->x0, uz = p->z1 - p->z0;
        float len2 = ux * ux + uz * uz;
        float t = len2 > 0.0f ? ((x - p->x0) * ux + (z - p->z0) * uz) / len2 : 0.0f;
        t = ep_clampf(t, 0.0f, 1.0f);
        float qx = x - p->x0 - t * ux, qz = z - p->z0 - t * uz;
        *d = sqrtf(qx * qx + qz * qz) - p->radius;
    }
    return true;
}

#define EP_MAX_PRIMS 160

/* A scene: the primitives of one view at one phase, plus what the renderer needs to move the
 * speckle with the tissue. */
typedef struct ep_scene {
    int count;
    ep_prim prims[EP_MAX_PRIMS];
    float background_echo;      /* echogenicity of tissue no primitive covers */
    float motion_cx, motion_cz; /* centre of cardiac contraction (image mm) */
    float motion_radius;        /* its extent */
    float motion_amount;        /* relative contraction at this phase (speckle displacement) */
    /* Inverse probe pose: image mm -> scene mm (for the scatterer field). */
    float pose_cs, pose_sn, pose_tx, pose_tz;
} ep_scene;

/* Builds the scene of s->view for patient p at phase in [0,1). */
void ep_scene_build(ep_scene *scene, const ep_patient *p, const ep_scan *s, float phase);

/* Cardiac timing shared by anatomy and overlays. */
float ep_contraction_at(float phase); /* 0 at end-diastole .. 1 at end-systole */
float ep_av_opening_at(float phase);  /* semilunar (aortic, pulmonic) valves: 0 closed .. 1 open */
float ep_mv_opening_at(float phase);  /* atrioventricular (mitral, tricuspid) valves */

/* Nominal depth and sector of a view. */
void ep_view_nominal(int view, float *depth_mm, float *sector_deg);

/* ---- drawing helpers of ep_render.c, shared with ep_screens.c ------------------------------- */

void ep_draw_dot(uint8_t *out, size_t stride, int w, int h, int x, int y, int size, uint8_t v);
/* 3x5 capitals, digits and . / : - % + at scale; unknown characters leave a gap. */
void ep_draw_text(uint8_t *out, size_t stride, int w, int h, int x, int y, int scale,
                  const char *text, uint8_t v);
void ep_draw_rect(uint8_t *out, size_t stride, int w, int h, int x, int y, int rw, int rh,
                  uint8_t v);
/* An ECG trace of `cycles` beats from x0 to x1 around baseline y0, starting at phase. */
void ep_draw_ecg(uint8_t *out, size_t stride, int w, int h, int x0, int x1, int y0, int amp,
                 float cycles, float phase, int thick, uint8_t v);
float ep_ecg_at(float t);
int ep_fmt_int(char *dst, int v);

/* ---- version 2 non-2D screens (ep_screens.c) ------------------------------------------------ */

/* The polar grey image of the current acquisition (after log compression). */
typedef struct ep_polar_view {
    const float *grey;
    int nb, ns;
    float half_angle, depth_mm;
} ep_polar_view;

/* Version-2 echogenicity factor of a tissue class (relative to version 1's scatterer amplitudes). */
float ep_v2_tissue_gain(int tissue);

/* Draws an M-mode, PW, CW or TDI screen of s->screen into the w x h grey frame out. */
void ep_draw_screen(const ep_polar_view *pv, const ep_patient *p, const ep_scan *s, float phase,
                    int w, int h, uint8_t *out, size_t stride);

#endif /* EP_INTERNAL_H */
