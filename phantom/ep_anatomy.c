/* ep_anatomy.c: the anatomy of the 14 views as parametric scenes.
 *
 * Each view is a painter's list of filled ellipses and capsules (walls first, cavities over
 * them, valves last) in scene millimetres: x lateral (+ = screen right), z depth from the
 * nominal probe position. The heart is built in a local "heart frame" (u across, v along the
 * long axis) that the patient tilts and shifts, so one patient has one heart in every window.
 * Adjacent views share builders and differ only where real anatomy does:
 *   A4CH-LV  four chambers, crux near the centre line, LV on the right;
 *   A5CH     the same heart angled anteriorly: LVOT and aortic root open in the centre,
 *            aortic cusps, atria foreshortened;
 *   A4CH-RV  the same heart with the probe moved so the RV is centred and larger;
 *   Apical-LA/MV the same heart with the probe aimed at the atria: LA centred, MV mid-field,
 *            interatrial septum and pulmonary veins;
 *   A2CH     LV + LA only, left atrial appendage at the base on the right;
 *   A3CH     A2CH-like LV with the LVOT and aortic root at the base on the right;
 *   PLAX-full / PLAX-valves the same long-axis scene; "valves" is the zoomed, valve-centred
 *            acquisition (shallower depth, narrower fan, probe aimed at the AV/MV).
 * Finally the probe pose (shift, push, tilt) maps scene to image millimetres.
 */
#include "ep_internal.h"

#include <math.h>
#include <string.h>

/* Echogenicities (scatterer amplitudes; pericardium ~1). */
#define ECHO_BLOOD 0.010f
#define ECHO_MYO 0.30f
#define ECHO_ATRIAL 0.22f
#define ECHO_VALVE 0.62f
#define ECHO_ANNULUS 0.55f
#define ECHO_PERI 1.0f
#define ECHO_VWALL 0.55f
#define ECHO_LIVER 0.24f
#define ECHO_FAT 0.10f  /* version 2: epicardial fat inside the pericardial sac */
#define ECHO_LUNG 0.02f /* version 2: aerated lung beside the heart in the apical window */

/* ---- cardiac timing ---------------------------------------------------------------------- */

static float smooth01(float x)
{
    x = ep_clampf(x, 0.0f, 1.0f);
    return x * x * (3.0f - 2.0f * x);
}

float ep_contraction_at(float phase)
{
    if (phase < 0.36f)
        return smooth01(phase / 0.36f);
    if (phase < 0.50f)
        return 1.0f - 0.8f * smooth01((phase - 0.36f) / 0.14f);
    if (phase < 0.84f)
        return 0.2f - 0.15f * smooth01((phase - 0.50f) / 0.34f);
    /* atrial kick stretches the ventricle a little more before the next beat */
    return 0.05f * (1.0f - smooth01((phase - 0.84f) / 0.16f));
}

float ep_av_opening_at(float phase)
{
    if (phase < 0.05f || phase > 0.38f)
        return 0.0f;
    if (phase < 0.09f)
        return smooth01((phase - 0.05f) / 0.04f);
    if (phase > 0.33f)
        return 1.0f - smooth01((phase - 0.33f) / 0.05f);
    return 1.0f;
}

float ep_mv_opening_at(float phase)
{
    if (phase < 0.42f || phase > 0.99f)
        return 0.0f;
    if (phase < 0.48f) /* E wave */
        return smooth01((phase - 0.42f) / 0.06f);
    if (phase < 0.66f) /* diastasis: leaflets drift half closed */
        return 1.0f - 0.6f * smooth01((phase - 0.48f) / 0.18f);
    if (phase < 0.80f)
        return 0.4f;
    if (phase < 0.88f) /* A wave */
        return 0.4f + 0.45f * smooth01((phase - 0.80f) / 0.08f);
    return 0.85f * (1.0f - smooth01((phase - 0.88f) / 0.11f));
}

void ep_view_nominal(int view, float *depth_mm, float *sector_deg)
{
    /* PLAX-valves is the valve-centred view: shallower (13.5 cm against the 16 cm of the full
     * long axis) and a little narrower; deeper zooms would no longer look like the full view */
    static const float depth[EP_VIEW_COUNT] = {160, 160, 160, 160, 160, 150, 150,
                                               160, 135, 140, 140, 170, 190, 140};
    static const float sector[EP_VIEW_COUNT] = {80, 80, 80, 80, 80, 75, 75,
                                                80, 76, 75, 75, 80, 85, 75};
    int v = (view >= 0 && view < EP_VIEW_COUNT) ? view : 0;
    *depth_mm = depth[v];
    *sector_deg = sector[v];
}

/* ---- scene construction helpers ------------------------------------------------------------ */

/* A local frame: (u, v) -> scene (x, z) = origin + rotation(angle) * (u, v). */
typedef struct frame {
    float ox, oz, cs, sn, angle;
} frame;

static frame frame_make(float ox, float oz, float angle_rad)
{
    frame f = {ox, oz, cosf(angle_rad), sinf(angle_rad), angle_rad};
    return f;
}

static void frame_point(const frame *f, float u, float v, float *x, float *z)
{
    *x = f->ox + u * f->cs - v * f->sn;
    *z = f->oz + u * f->sn + v * f->cs;
}

static ep_prim *prim_push(ep_scene *sc)
{
    if (sc->count >= EP_MAX_PRIMS)
        return NULL;
    ep_prim *p = &sc->prims[sc->count++];
    memset(p, 0, sizeof *p);
    return p;
}

static void ellipse(ep_scene *sc, const frame *f, int tissue, float echo, float u, float v, float a,
                    float b, float rot_rad, float soft)
{
    ep_prim *p = prim_push(sc);
    if (!p || a <= 0.05f || b <= 0.05f)
        return;
    p->type = EP_PRIM_ELLIPSE;
    p->tissue = tissue;
    p->echo = echo;
    p->soft = soft;
    frame_point(f, u, v, &p->cx, &p->cz);
    p->a = a;
    p->b = b;
    p->cs = cosf(rot_rad + f->angle);
    p->sn = sinf(rot_rad + f->angle);
}

static void capsule(ep_scene *sc, const frame *f, int tissue, float echo, float u0, float v0,
                    float u1, float v1, float radius, float soft)
{
    ep_prim *p = prim_push(sc);
    if (!p || radius <= 0.05f)
        return;
    p->type = EP_PRIM_CAPSULE;
    p->tissue = tissue;
    p->echo = echo;
    p->soft = soft;
    frame_point(f, u0, v0, &p->x0, &p->z0);
    frame_point(f, u1, v1, &p->x1, &p->z1);
    p->radius = radius;
}

/* A vessel along a polyline: all walls first, then all lumens, so joints stay open. */
static void tube(ep_scene *sc, const frame *f, const float *uv, int n, float lumen, float wall)
{
    for (int i = 0; i + 1 < n; i++)
        capsule(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, uv[2 * i], uv[2 * i + 1], uv[2 * i + 2],
                uv[2 * i + 3], lumen + wall, 0.8f);
    for (int i = 0; i + 1 < n; i++)
        capsule(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, uv[2 * i], uv[2 * i + 1], uv[2 * i + 2],
                uv[2 * i + 3], lumen, 0.8f);
}

/* A leaflet hinged at (u, v), pointing at angle closed..open (radians in the frame). */
static void leaflet(ep_scene *sc, const frame *f, float u, float v, float length, float closed_rad,
                    float open_rad, float opening)
{
    float a = closed_rad + (open_rad - closed_rad) * opening;
    capsule(sc, f, EP_TISSUE_VALVE, ECHO_VALVE, u, v, u + length * cosf(a), v + length * sinf(a),
            0.9f, 0.7f);
}

static float angle_to(float u0, float v0, float u1, float v1) { return atan2f(v1 - v0, u1 - u0); }

/* Shared per-frame state of the heart. */
typedef struct heart {
    float L, W, wall, wall_t, c, fs, mv, av;
    float rv, la, ra, ao;
    const float *shape;
    int v2; /* phantom version 2: the few anatomy details below that only it draws */
} heart;

static heart heart_make(const ep_patient *p, float phase)
{
    heart h;
    h.L = p->lv_length_mm;
    h.W = p->lv_width_mm;
    h.wall = p->wall_mm;
    h.c = ep_contraction_at(phase);
    h.fs = p->contraction;
    h.wall_t = p->wall_mm * (1.0f + 0.45f * h.c);
    h.mv = ep_mv_opening_at(phase);
    h.av = ep_av_opening_at(phase);
    h.rv = p->rv_scale;
    h.la = p->la_scale;
    h.ra = p->ra_scale;
    h.ao = p->aorta_mm;
    h.v2 = 0;
    h.shape = p->shape;
    return h;
}

enum { FOUR_PLAIN = 0, FOUR_LVOT = 1, FOUR_RV = 2, FOUR_ATRIA = 3 };

/* Apical four-chamber heart in frame f: origin at the end-diastolic crux, +u towards the LV,
 * +v from the apex towards the atria. Variants add the LVOT (A5CH), enlarge the RV (RV-focused)
 * or the atria (LA/MV view). lvot in [0,1] is how much of the LVOT lies in the plane: a
 * vessel cut obliquely shows a narrower lumen, so a plain four-chamber plane angled slightly
 * anteriorly shows a hint of it and a poorly angled five-chamber plane barely opens it. */
static void heart_four(ep_scene *sc, const frame *f, const heart *h, int variant, float lvot)
{
    const float k = 0.72f; /* the mitral plane cuts the LV ellipse this far past its centre */
    float descent = 0.13f * h->L * h->c; /* base moves towards the apex in systole */
    float vb = -descent;
    float s_half = 0.5f * h->wall_t;
    float lv_scale_u = variant == FOUR_RV ? 0.92f : 1.0f;
    float rv_boost = variant == FOUR_RV ? 1.2f : 1.0f;
    float atria_scale = variant == FOUR_ATRIA ? 1.12f : 1.0f - 0.14f * lvot;

    /* LV */
    float lv_a = 0.5f * h->W * lv_scale_u * (1.0f - h->fs * h->c) * (1.0f + 0.05f * h->shape[0]);
    float v_endo = -h->L - h->wall + h->wall_t;
    float lv_b = (vb - v_endo) / (1.0f + k);
    float lv_u = s_half + lv_a;
    float lv_v = v_endo + lv_b;
    float base_half = lv_a * sqrtf(1.0f - k * k);
    /* RV: shorter, narrower, thin free wall */
    float rv_a = 0.5f * h->W * 0.72f * h->rv * rv_boost * (1.0f - 0.6f * h->fs * h->c);
    float rv_len =
        (variant == FOUR_RV ? 0.82f : 0.76f) * (vb - v_endo) * (1.0f + 0.04f * h->shape[1]);
    float rv_b = rv_len / (1.0f + k);
    float rv_u = -s_half - rv_a;
    float rv_v = vb - 4.0f - k * rv_b;
    /* atria grow while the ventricles contract */
    float la_a = 0.5f * 0.85f * h->W * h->la * atria_scale * (1.0f + 0.08f * h->c);
    float la_b = 19.0f * h->la * atria_scale * (1.0f + 0.06f * h->c) + 0.5f * descent;
    float la_u = 1.6f + la_a;
    float la_v = vb + la_b * 0.92f;
    float ra_a = 0.5f * 0.78f * h->W * h->ra * atria_scale * (1.0f + 0.06f * h->c);
    float ra_b = 18.0f * h->ra * atria_scale * (1.0f + 0.05f * h->c) + 0.5f * descent;
    float ra_u = -1.6f - ra_a;
    float ra_v = vb - 3.0f + ra_b * 0.92f;

    /* pericardium around the ventricles, then fat inside it */
    {
        float left = rv_u - rv_a - 4.0f, right = lv_u + lv_a + h->wall_t;
        float cu = 0.5f * (left + right), au = 0.5f * (right - left) + 3.5f;
        float top = -h->L - h->wall, cv = 0.5f * (top + vb + 10.0f),
              av = 0.5f * (vb + 10.0f - top) + 3.0f;
        /* version 2: the epicardial fat inside the sac keeps its own echogenicity; the tissue
         * outside it in the apical window is aerated lung (v2 background), far darker */
        float fat = h->v2 ? ECHO_FAT : sc->background_echo * 1.15f;
        ellipse(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, cu, cv, au + 2.2f, av + 2.2f, 0.0f, 1.2f);
        ellipse(sc, f, EP_TISSUE_SOFT, fat, cu, cv, au, av, 0.0f, 1.2f);
    }
    if (h->v2) {
        /* version 2: the atria lie outside the ventricles' sac but not in air: the AV-groove
         * fat, the oblique and transverse sinuses and the mediastinum around them echo like
         * fat, a grey mantle of several mm that real frames show around both atria */
        ellipse(sc, f, EP_TISSUE_SOFT, ECHO_FAT, la_u, la_v + 2.0f, la_a + 8.0f, la_b + 8.0f, 0,
                2.0f);
        ellipse(sc, f, EP_TISSUE_SOFT, ECHO_FAT, ra_u, ra_v + 2.0f, ra_a + 7.0f, ra_b + 7.0f, 0,
                2.0f);
    }
    /* bright fibrous tissue and descending aorta behind the atria; in version 2 the posterior
     * pericardium and AV-groove fibrous skeleton are a thicker band as bright as the
     * pericardium: fibrous tissue against lung is the strongest reflector of the apical view */
    capsule(sc, f, EP_TISSUE_PERICARDIUM, h->v2 ? ECHO_PERI : 0.8f, ra_u - ra_a * 0.6f,
            ra_v + ra_b + 4.0f, la_u + la_a * 0.8f, la_v + la_b + 5.0f, h->v2 ? 3.5f : 2.0f, 1.5f);
    {
        float da[4] = {la_u + la_a * 0.9f, la_v + la_b + 10.0f, la_u + la_a * 1.1f,
                       la_v + la_b + 14.0f};
        tube(sc, f, da, 2, 8.0f, 2.0f);
    }
    /* walls */
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, la_u, la_v, la_a + 2.5f, la_b + 2.5f, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, ra_u, ra_v, ra_a + 2.5f, ra_b + 2.5f, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, rv_u, rv_v, rv_a + 4.0f, rv_b + 4.0f, 0.04f,
            1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, lv_u, lv_v, lv_a + h->wall_t, lv_b + h->wall_t,
            0.0f, 1.0f);
    /* cavities */
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, la_u, la_v, la_a, la_b, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, ra_u, ra_v, ra_a, ra_b, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, rv_u, rv_v, rv_a, rv_b, 0.04f, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, lv_u, lv_v, lv_a, lv_b, 0.0f, 1.0f);
    /* RV moderator band and apical trabeculation */
    capsule(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO * 1.2f, rv_u - rv_a * 0.9f, rv_v - rv_b * 0.15f,
            -s_half, rv_v - rv_b * 0.45f, 1.3f, 1.0f);

    if (variant == FOUR_ATRIA) { /* pulmonary veins entering the LA floor */
        float pv1[4] = {la_u - la_a * 0.5f, la_v + la_b + 12.0f, la_u - la_a * 0.35f,
                        la_v + la_b * 0.7f};
        float pv2[4] = {la_u + la_a * 0.7f, la_v + la_b + 10.0f, la_u + la_a * 0.45f,
                        la_v + la_b * 0.7f};
        tube(sc, f, pv1, 2, 4.5f, 1.2f);
        tube(sc, f, pv2, 2, 4.5f, 1.2f);
    }

    /* mitral valve: anterior (septal side) and posterior leaflets */
    float mv_u0 = s_half + 1.5f, mv_u1 = lv_u + base_half + 0.5f;
    float mv_len = mv_u1 - mv_u0;
    float tv_u0 = -s_half - 1.5f, tv_u1 = rv_u - rv_a * sqrtf(1.0f - k * k) - 0.5f;
    float tv_v = vb - 4.0f; /* tricuspid insertion sits more apical than the mitral */
    float tv_len = tv_u0 - tv_u1;

    if (lvot > 0.2f) {
        /* LVOT and aortic root: leaves the LV between the septum and the anterior leaflet and
         * runs towards the atria, covering the interatrial septum */
        float r = 0.5f * h->ao * lvot;
        float au = s_half + r + 0.5f, av0 = vb - 16.0f;
        float pts[6] = {au, av0, au - 2.0f, vb + 8.0f, au - 5.0f, vb + 34.0f};
        tube(sc, f, pts, 3, r, 2.2f);
        /* sinuses of Valsalva */
        ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, au - 2.0f, vb + 12.0f, r + 5.0f, 8.0f, 0,
                1.0f);
        ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, au - 2.0f, vb + 12.0f, r + 3.0f, 6.5f, 0, 1.0f);
        capsule(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, au, av0 - 4.0f, au - 2.0f, vb + 14.0f, r, 0.8f);
        /* aortic cusps at the sinus: closed they meet in the middle, open they lie on the wall */
        float cv = vb + 7.0f;
        leaflet(sc, f, au - 2.0f - r, cv, r * 0.98f, 0.12f, 1.45f, h->av);
        leaflet(sc, f, au - 2.0f + r, cv, r * 0.98f, EP_PI - 0.12f, EP_PI - 1.45f + 0.0f, h->av);
        mv_u0 = au + r + 2.0f;
        mv_len = mv_u1 - mv_u0;
        if (mv_len < 8.0f)
            mv_len = 8.0f;
    }

    /* fibrous annuli (bright spots at the hinges) */
    ellipse(sc, f, EP_TISSUE_VALVE, ECHO_ANNULUS, mv_u1, vb, 2.4f, 2.0f, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_VALVE, ECHO_ANNULUS, tv_u1, tv_v, 2.2f, 2.0f, 0, 1.0f);
    /* closed: towards each other bowing slightly atrially; open: into the ventricle */
    leaflet(sc, f, mv_u0, vb, mv_len * 0.58f, 0.18f, -1.45f, h->mv);
    leaflet(sc, f, mv_u1, vb, mv_len * 0.46f, EP_PI - 0.25f, -EP_PI + 1.35f, h->mv);
    leaflet(sc, f, tv_u0, tv_v, tv_len * 0.5f, EP_PI - 0.2f, -EP_PI + 1.5f, h->mv);
    leaflet(sc, f, tv_u1, tv_v, tv_len * 0.5f, 0.2f, -1.35f, h->mv);
}

/* Apical two/three-chamber heart: LV on the long axis (v), LA below; the three-chamber view
 * adds the LVOT and aortic root on the right, the two-chamber view the LA appendage there and
 * the coronary sinus on the left. */
/* aorta in [0,1]: how much of the LVOT and root lie in the plane (0: two-chamber view). */
static void heart_two(ep_scene *sc, const frame *f, const heart *h, float aorta)
{
    const float k = 0.72f;
    float descent = 0.13f * h->L * h->c;
    float vb = -descent;
    float lv_a = 0.5f * h->W * (1.0f - h->fs * h->c) * (1.0f + 0.05f * h->shape[0]);
    float v_endo = -h->L - h->wall + h->wall_t;
    float lv_b = (vb - v_endo) / (1.0f + k);
    float lv_v = v_endo + lv_b;
    float base_half = lv_a * sqrtf(1.0f - k * k);
    float la_shift = -0.22f * h->W * aorta;
    float la_a = 0.5f * 0.9f * h->W * h->la * (1.0f + 0.08f * h->c);
    float la_b = 20.0f * h->la * (1.0f + 0.06f * h->c) + 0.5f * descent;
    float la_v = vb + la_b * 0.92f;

    {
        float top = -h->L - h->wall, cv = 0.5f * (top + vb + 8.0f),
              av = 0.5f * (vb + 8.0f - top) + 3.0f;
        float au = lv_a + h->wall_t + 4.0f;
        ellipse(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, 0, cv, au + 2.2f, av + 2.2f, 0, 1.2f);
        ellipse(sc, f, EP_TISSUE_SOFT, sc->background_echo * 1.15f, 0, cv, au, av, 0, 1.2f);
    }
    capsule(sc, f, EP_TISSUE_PERICARDIUM, 0.8f, la_shift - la_a, la_v + la_b + 4.0f,
            la_shift + la_a, la_v + la_b + 5.0f, 2.0f, 1.5f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, la_shift, la_v, la_a + 2.5f, la_b + 2.5f, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, 0, lv_v, lv_a + h->wall_t, lv_b + h->wall_t, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, la_shift, la_v, la_a, la_b, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 0, lv_v, lv_a, lv_b, 0, 1.0f);

    float mv_u0 = -base_half - 0.5f, mv_u1 = base_half + 0.5f;
    if (aorta > 0.2f) {
        /* LVOT and aortic root leave the base on the right (anteroseptal side) */
        float r = 0.5f * h->ao * aorta;
        float au = base_half - r + 1.0f;
        float pts[6] = {au - 2.0f, vb - 14.0f, au + 3.0f, vb + 6.0f, au + 14.0f, vb + 34.0f};
        tube(sc, f, pts, 3, r, 2.2f);
        ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, au + 4.0f, vb + 11.0f, r + 5.0f, 8.0f,
                0.35f, 1.0f);
        ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, au + 4.0f, vb + 11.0f, r + 3.0f, 6.5f, 0.35f,
                1.0f);
        capsule(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, au - 2.0f, vb - 18.0f, au + 4.0f, vb + 13.0f, r,
                0.8f);
        float cv = vb + 6.0f;
        leaflet(sc, f, au + 2.0f - r, cv, r * 0.98f, 0.2f, 1.35f, h->av);
        leaflet(sc, f, au + 5.0f + r, cv + 2.0f, r * 0.98f, EP_PI - 0.05f, EP_PI - 1.5f, h->av);
        mv_u1 = au - r - 1.5f;
    } else {
        /* LA appendage: a small pouch at the base on the right */
        float laa[6] = {la_a * 0.75f, vb + 5.0f, la_a + 6.0f, vb + 2.0f, la_a + 11.0f, vb - 3.0f};
        tube(sc, f, laa, 3, 4.5f, 1.5f);
        /* coronary sinus in the posterior AV groove on the left */
        ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, -base_half - 8.0f, vb + 6.0f, 6.0f, 5.0f,
                0, 1.0f);
        ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, -base_half - 8.0f, vb + 6.0f, 4.0f, 3.2f, 0,
                1.0f);
    }
    float mv_len = mv_u1 - mv_u0;
    ellipse(sc, f, EP_TISSUE_VALVE, ECHO_ANNULUS, mv_u0, vb, 2.3f, 2.0f, 0, 1.0f);
    leaflet(sc, f, mv_u0, vb, mv_len * 0.45f, 0.2f, -1.35f, h->mv);
    leaflet(sc, f, mv_u1, vb, mv_len * 0.58f, EP_PI - 0.18f, -EP_PI + 1.45f, h->mv);
}

/* Parasternal long axis: frame origin at the aortic valve, +u towards the aorta (screen
 * right), +v deeper. RV(OT) under the anterior wall, septum continuous with the anterior
 * aortic wall, LV running left towards an apex that often leaves the fan, the anterior mitral
 * leaflet continuous with the posterior aortic wall, LA behind the aortic root, descending
 * aorta in cross-section behind the AV groove. */
static void heart_plax(ep_scene *sc, const frame *f, const heart *h)
{
    float r = 0.5f * h->ao;
    float sl = h->L / 85.0f, sw = h->W / 48.0f;
    float lv_a = 46.0f * sl * (1.0f - 0.1f * h->c);
    float lv_b = 21.0f * sw * (1.0f - h->fs * h->c);
    float rot = -0.10f + 0.04f * h->shape[2];
    float wt = h->wall_t;
    float lv_top = -r + 4.0f + wt; /* endocardial septum under the aortic anterior wall */
    float lv_u = -46.0f * sl, lv_v = lv_top + lv_b + 3.0f;
    float in_u = -12.0f, in_v = r + 16.0f, in_a = 13.0f, in_b = 16.0f * (1.0f - 0.3f * h->c);
    float la_a = 21.0f * h->la * (1.0f + 0.08f * h->c),
          la_b = 16.0f * h->la * (1.0f + 0.08f * h->c);
    float la_u = 22.0f, la_v = r + 4.5f + la_b;
    float rv_b = 11.0f * h->rv;
    float groove_v = in_v + in_b; /* posterior mitral annulus */
    float peri_v = fmaxf(lv_v + lv_b + wt + 3.0f, groove_v + wt);

    /* pericardium behind the posterior wall, running on under the LA */
    ellipse(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, lv_u, lv_v, lv_a + wt + 3.5f, lv_b + wt + 3.5f,
            rot, 1.2f);
    ellipse(sc, f, EP_TISSUE_SOFT, sc->background_echo * 1.15f, lv_u, lv_v, lv_a + wt + 1.8f,
            lv_b + wt + 1.8f, rot, 1.2f);
    capsule(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, in_u - 10.0f, peri_v, la_u + la_a,
            la_v + la_b + 6.0f, 1.8f, 1.5f);
    /* descending aorta in cross-section behind the AV groove */
    ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, 6.0f, la_v + la_b + 17.0f, 10.5f, 10.0f, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 6.0f, la_v + la_b + 17.0f, 8.5f, 8.0f, 0, 1.0f);
    /* RV and RVOT under the anterior RV wall */
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, -28.0f, -r - 3.0f - rv_b, 64.0f, rv_b + 5.0f,
            0.06f, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, -28.0f, -r - 3.0f - rv_b, 60.0f, rv_b, 0.06f, 1.0f);
    /* LA */
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, la_u, la_v, la_a + 2.5f, la_b + 2.5f, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, la_u, la_v, la_a, la_b, 0, 1.0f);
    /* LV: septum above, posterior wall below, inflow towards the mitral annulus */
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, lv_u, lv_v, lv_a + wt, lv_b + wt, rot, 1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, in_u, in_v, in_a + wt, in_b + wt, 0.0f, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, lv_u, lv_v, lv_a, lv_b, rot, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, in_u, in_v, in_a, in_b, 0.0f, 1.0f);
    /* aortic root continuing from the LVOT, sinuses at the valve, ascending aorta up-right */
    {
        float pts[6] = {-16.0f, 2.0f, 8.0f, 0.0f, 50.0f, -9.0f};
        tube(sc, f, pts, 3, r, 2.4f);
        ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, 9.0f, 0.0f, 9.0f, r + 4.0f, 0, 1.0f);
        ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 9.0f, 0.0f, 7.5f, r + 2.0f, 0, 1.0f);
        capsule(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, -16.0f, 2.0f, 24.0f, -3.0f, r, 0.8f);
        /* LVOT: open from the LV cavity into the root */
        ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, -14.0f, 6.0f, 14.0f, r * 0.8f, 0.3f, 1.0f);
        /* right coronary and non-coronary cusps */
        leaflet(sc, f, 2.0f, -r, r * 0.98f, 1.35f, 0.1f, h->av);
        leaflet(sc, f, 2.0f, r, r * 0.98f, -1.35f, -0.1f, h->av);
    }
    /* mitral valve: anterior leaflet from the posterior aortic root, posterior from the groove */
    {
        float u0 = -1.0f, v0 = r + 2.5f, u1 = 1.0f, v1 = groove_v - 1.0f;
        float span = sqrtf((u1 - u0) * (u1 - u0) + (v1 - v0) * (v1 - v0));
        float towards = angle_to(u0, v0, u1, v1);
        ellipse(sc, f, EP_TISSUE_VALVE, ECHO_ANNULUS, u1, v1, 2.4f, 2.2f, 0, 1.0f);
        leaflet(sc, f, u0, v0, span * 0.62f, towards - 0.15f, EP_PI - 0.25f, h->mv);
        leaflet(sc, f, u1, v1, span * 0.42f, towards + EP_PI + 0.2f, EP_PI + 0.45f, h->mv);
    }
}

/* RV inflow: RV above (apex to the left), RA below right, tricuspid valve between,
 * IVC entering the RA from below. Frame: +v from the RV towards the RA. */
static void heart_rv_inflow(ep_scene *sc, const frame *f, const heart *h)
{
    float rv_a = 24.0f * h->rv * (1.0f - 0.3f * h->fs * h->c),
          rv_b = 38.0f * h->rv * (1.0f - 0.08f * h->c);
    float ra_a = 25.0f * h->ra * (1.0f + 0.06f * h->c),
          ra_b = 21.0f * h->ra * (1.0f + 0.06f * h->c);
    float rv_v = -rv_b * 0.8f, ra_v = 1.0f + ra_b * 0.9f;
    ellipse(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, 0.0f, ra_v + 3.0f, ra_a + 8.0f, ra_b + 7.0f, 0,
            1.2f);
    ellipse(sc, f, EP_TISSUE_SOFT, sc->background_echo * 1.15f, 0.0f, ra_v + 2.0f, ra_a + 6.0f,
            ra_b + 5.0f, 0, 1.2f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, -2.0f, rv_v, rv_a + 5.0f, rv_b + 5.0f, 0.12f,
            1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, 2.0f, ra_v, ra_a + 2.5f, ra_b + 2.5f, 0.1f,
            1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, -2.0f, rv_v, rv_a, rv_b, 0.12f, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 2.0f, ra_v, ra_a, ra_b, 0.1f, 1.0f);
    /* trabeculations and the moderator band towards the apex */
    capsule(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO * 1.2f, -rv_a + 2.0f, rv_v - 8.0f, rv_a - 4.0f,
            rv_v - 22.0f, 1.5f, 1.0f);
    capsule(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, -rv_a + 1.0f, rv_v + 6.0f, -rv_a + 10.0f,
            rv_v - 4.0f, 1.2f, 1.0f);
    {
        float ivc[6] = {-14.0f, ra_v + ra_b + 26.0f, -12.0f, ra_v + ra_b + 8.0f,
                        -9.0f,  ra_v + ra_b - 8.0f};
        tube(sc, f, ivc, 3, 7.5f, 1.5f);
        float cs[4] = {ra_a + 6.0f, ra_v - 4.0f, ra_a - 8.0f, ra_v - 6.0f}; /* coronary sinus */
        tube(sc, f, cs, 2, 4.0f, 1.2f);
    }
    float u0 = -rv_a + 2.0f, u1 = rv_a - 2.0f;
    float span = u1 - u0;
    ellipse(sc, f, EP_TISSUE_VALVE, ECHO_ANNULUS, u0, 0.0f, 2.4f, 2.2f, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_VALVE, ECHO_ANNULUS, u1, 1.0f, 2.4f, 2.2f, 0, 1.0f);
    leaflet(sc, f, u0, 0.0f, span * 0.55f, 0.15f, -1.25f, h->mv);
    leaflet(sc, f, u1, 1.0f, span * 0.45f, EP_PI - 0.1f, -EP_PI + 1.3f, h->mv);
}

/* Parasternal short axis at the aortic valve: the "Mercedes" aortic valve in the centre,
 * LA below, RA on the left, RVOT arching over the top to the pulmonic valve on the right. */
static void heart_psax_av(ep_scene *sc, const frame *f, const heart *h)
{
    float r = 0.5f * h->ao * (1.0f + 0.03f * h->c);
    float la_a = 28.0f * h->la * (1.0f + 0.08f * h->c),
          la_b = 17.0f * h->la * (1.0f + 0.08f * h->c);
    float la_v = r + 4.0f + la_b;
    float ra_a = 17.0f * h->ra, ra_b = 21.0f * h->ra;
    float ra_u = -r - 4.0f - ra_a, ra_v = 10.0f;
    float rvot_r = r + 15.0f * h->rv, rvot_w = 10.0f * h->rv * (1.0f - 0.2f * h->c);

    capsule(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, -la_a, la_v + la_b + 5.0f, la_a,
            la_v + la_b + 6.0f, 2.0f, 1.5f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, 0, la_v, la_a + 2.5f, la_b + 2.5f, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, ra_u, ra_v, ra_a + 2.5f, ra_b + 2.5f, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 0, la_v, la_a, la_b, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, ra_u, ra_v, ra_a, ra_b, 0, 1.0f);
    /* RVOT: an arc of RV myocardium then blood over the aorta, from the tricuspid valve on the
     * left round to the pulmonic valve on the right, continuing as the pulmonary artery */
    {
        float pts[14];
        int n = 7;
        for (int i = 0; i < n; i++) {
            float a = (200.0f + 135.0f * (float)i / (float)(n - 1)) * EP_DEG;
            pts[2 * i] = rvot_r * cosf(a);
            pts[2 * i + 1] = rvot_r * sinf(a);
        }
        for (int i = 0; i + 1 < n; i++)
            capsule(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, pts[2 * i], pts[2 * i + 1],
                    pts[2 * i + 2], pts[2 * i + 3], rvot_w + 4.0f, 1.0f);
        for (int i = 0; i + 1 < n; i++)
            capsule(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, pts[2 * i], pts[2 * i + 1], pts[2 * i + 2],
                    pts[2 * i + 3], rvot_w, 1.0f);
        float pa[6] = {pts[12],         pts[13],         pts[12] + 12.0f,
                       pts[13] + 16.0f, pts[12] + 14.0f, pts[13] + 40.0f};
        tube(sc, f, pa, 3, 10.0f * h->rv, 1.8f);
        /* pulmonic cusps at the RVOT end */
        leaflet(sc, f, pts[12] - 8.0f, pts[13] + 2.0f, 8.0f, 0.6f, 1.3f, h->av);
        leaflet(sc, f, pts[12] + 8.0f, pts[13] - 2.0f, 8.0f, EP_PI + 0.6f, EP_PI - 0.2f, h->av);
        /* tricuspid leaflets between the RA and the RVOT inflow */
        leaflet(sc, f, pts[0] - 6.0f, pts[1] + 8.0f, 10.0f, -0.6f, -1.6f, h->mv);
    }
    /* aortic root in cross-section with three cusps */
    ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, 0, 0, r + 2.6f, r + 2.6f, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 0, 0, r, r, 0, 1.0f);
    for (int i = 0; i < 3; i++) {
        float a = (90.0f + 120.0f * (float)i) * EP_DEG; /* commissures: inverted Y */
        float ca = cosf(a), sa = sinf(a);
        if (h->av < 0.5f) { /* closed: lines from the centre to the commissures */
            capsule(sc, f, EP_TISSUE_VALVE, ECHO_VALVE, 0, 0, r * ca, r * sa, 0.9f, 0.7f);
        } else { /* open: cusps against the wall leave a triangular orifice */
            float b = a + 120.0f * EP_DEG;
            float ri = r * 0.85f;
            capsule(sc, f, EP_TISSUE_VALVE, ECHO_VALVE, ri * ca, ri * sa, ri * cosf(b),
                    ri * sinf(b), 0.8f, 0.7f);
        }
    }
}

/* Parasternal short axis at the papillary muscles: LV ring, RV crescent on the upper left. */
static void heart_psax_lv(ep_scene *sc, const frame *f, const heart *h)
{
    float rc = 0.5f * h->W * (1.0f - h->fs * h->c) * (1.0f + 0.04f * h->shape[3]);
    float ro = rc + h->wall_t;
    float rv_a = 1.45f * (0.5f * h->W) * h->rv, rv_b = 11.0f * h->rv * (1.0f - 0.3f * h->c);
    float ecc = 1.0f + 0.05f * h->shape[4];
    ellipse(sc, f, EP_TISSUE_PERICARDIUM, ECHO_PERI, 0, 2.0f, ro * ecc + 4.5f, ro + 4.5f, 0, 1.2f);
    ellipse(sc, f, EP_TISSUE_SOFT, sc->background_echo * 1.15f, 0, 1.0f, ro * ecc + 2.3f, ro + 2.3f,
            0, 1.2f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, -0.45f * ro, -ro + 2.0f, rv_a + 4.0f,
            rv_b + 4.0f + ro * 0.25f, 0.35f, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, -0.45f * ro, -ro + 2.0f, rv_a, rv_b + ro * 0.25f,
            0.35f, 1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO, 0, 0, ro * ecc, ro, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 0, 0, rc * ecc, rc, 0, 1.0f);
    /* papillary muscles at about 4 and 8 o'clock */
    float pr = 5.5f * (1.0f + 0.25f * h->c);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO * 1.1f, 0.62f * rc * 0.87f, 0.62f * rc * 0.5f, pr,
            pr * 0.85f, 0.4f, 1.0f);
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_MYO * 1.1f, -0.62f * rc * 0.8f, 0.62f * rc * 0.6f, pr,
            pr * 0.85f, -0.4f, 1.0f);
}

/* Liver with the diaphragm behind it (subcostal windows). */
static void liver(ep_scene *sc, const frame *f, float cu, float cv, float a, float b, float rot)
{
    ellipse(sc, f, EP_TISSUE_PERICARDIUM, 0.85f, cu, cv, a + 3.0f, b + 3.0f, rot, 1.5f);
    ellipse(sc, f, EP_TISSUE_LIVER, ECHO_LIVER, cu, cv, a, b, rot, 1.5f);
}

static void scene_subcostal_ivc(ep_scene *sc, const frame *f, const ep_patient *p, const heart *h)
{
    float cw = p->chest_wall_mm, lv = p->liver_mm;
    float r = 0.5f * p->ivc_mm * (1.0f - 0.12f * h->c);
    liver(sc, f, -20.0f, cw + 0.55f * lv + 10.0f, 150.0f, 0.55f * lv + 28.0f, 0.12f);
    /* right atrium at the cranial (right) end */
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, 62.0f, cw + lv + 28.0f, 27.0f * h->ra,
            24.0f * h->ra, 0.2f, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 62.0f, cw + lv + 28.0f, 24.0f * h->ra,
            21.0f * h->ra, 0.2f, 1.0f);
    float z0 = cw + 0.75f * lv;
    float ivc[8] = {-110.0f, z0 + 20.0f, -50.0f, z0 + 12.0f,
                    0.0f,    z0 + 10.0f, 45.0f,  cw + lv + 24.0f};
    tube(sc, f, ivc, 4, r, 1.6f);
    float hv[6] = {-50.0f, cw + 0.2f * lv, -28.0f, z0 - 6.0f, -12.0f, z0 + 8.0f};
    tube(sc, f, hv, 3, 4.5f, 1.2f);
    float hv2[4] = {15.0f, cw + 0.25f * lv, 18.0f, z0 + 8.0f};
    tube(sc, f, hv2, 2, 3.5f, 1.2f);
}

static void scene_suprasternal(ep_scene *sc, const frame *f, const heart *h)
{
    float r = 0.5f * h->ao * 0.92f * (1.0f + 0.04f * h->av);
    float pts[22];
    int n = 9;
    for (int i = 0; i < n; i++) {
        float a = (165.0f + 200.0f * (float)i / (float)(n - 1)) * EP_DEG;
        pts[2 * i] = 40.0f * cosf(a);
        pts[2 * i + 1] = 8.0f + 42.0f * sinf(a);
    }
    /* ascending aorta continues down on the left, descending aorta deeper on the right */
    float asc[4] = {-44.0f, 40.0f, pts[0], pts[1]};
    float desc[4] = {pts[2 * n - 2], pts[2 * n - 1], 44.0f, 80.0f};
    /* right pulmonary artery under the arch, left atrium deeper */
    ellipse(sc, f, EP_TISSUE_MYOCARDIUM, ECHO_ATRIAL, 0, 60.0f, 30.0f * h->la, 15.0f * h->la, 0,
            1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 0, 60.0f, 27.5f * h->la, 12.5f * h->la, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_VESSEL_WALL, ECHO_VWALL, 0, 22.0f, 12.5f, 11.5f, 0, 1.0f);
    ellipse(sc, f, EP_TISSUE_BLOOD, ECHO_BLOOD, 0, 22.0f, 10.5f, 9.5f, 0, 1.0f);
    /* branches towards the probe: brachiocephalic, left carotid, left subclavian */
    static const float br_angle[3] = {232.0f, 262.0f, 292.0f}, br_r[3] = {5.5f, 4.0f, 4.5f};
    for (int i = 0; i < 3; i++) {
        float a = br_angle[i] * EP_DEG;
        float u0 = 40.0f * cosf(a), v0 = 8.0f + 42.0f * sinf(a);
        float b[4] = {u0, v0, u0 * 1.25f + (float)(i - 1) * 4.0f, v0 - 34.0f};
        tube(sc, f, b, 2, br_r[i], 1.5f);
    }
    /* arch walls then lumens (one tube so the joints stay open) */
    float all[30];
    int m = 0;
    all[m++] = asc[0];
    all[m++] = asc[1];
    for (int i = 0; i < n; i++) {
        all[m++] = pts[2 * i];
        all[m++] = pts[2 * i + 1];
    }
    all[m++] = desc[2];
    all[m++] = desc[3];
    tube(sc, f, all, m / 2, r, 2.4f);
}

/* ---- the views ------------------------------------------------------------------------------- */

/* Maps the scene to image millimetres through the probe pose and records the inverse for the
 * scatterer field: image = R(-tilt) * (scene - (shift, push)). */
static void apply_pose(ep_scene *sc, const ep_scan *s)
{
    float a = s->probe_tilt_deg * EP_DEG;
    float cs = cosf(a), sn = sinf(a);
    float tx = s->probe_shift_mm, tz = s->probe_depth_mm;
    for (int i = 0; i < sc->count; i++) {
        ep_prim *p = &sc->prims[i];
        float x, z;
        if (p->type == EP_PRIM_ELLIPSE) {
            x = p->cx - tx, z = p->cz - tz;
            p->cx = cs * x + sn * z;
            p->cz = -sn * x + cs * z;
            float c2 = p->cs * cs + p->sn * sn, s2 = p->sn * cs - p->cs * sn;
            p->cs = c2, p->sn = s2;
        } else {
            x = p->x0 - tx, z = p->z0 - tz;
            p->x0 = cs * x + sn * z;
            p->z0 = -sn * x + cs * z;
            x = p->x1 - tx, z = p->z1 - tz;
            p->x1 = cs * x + sn * z;
            p->z1 = -sn * x + cs * z;
        }
    }
    float x = sc->motion_cx - tx, z = sc->motion_cz - tz;
    sc->motion_cx = cs * x + sn * z;
    sc->motion_cz = -sn * x + cs * z;
    sc->pose_cs = cs, sc->pose_sn = sn, sc->pose_tx = tx, sc->pose_tz = tz;
}

void ep_scene_build(ep_scene *sc, const ep_patient *p, const ep_scan *s, float phase)
{
    heart h = heart_make(p, phase);
    int v2 = s->version == EP_VERSION_2;
    h.v2 = v2;
    float cw = p->chest_wall_mm;
    float tilt = p->heart_tilt_deg * EP_DEG;
    float shift = p->heart_shift_mm;
    float apex_z = cw + 6.0f;
    frame f = frame_make(0, 0, 0);

    sc->count = 0;
    sc->background_echo = 0.05f;
    sc->motion_radius = 0.0f;
    sc->motion_cx = 0.0f;
    sc->motion_cz = 0.0f;

    /* where the LV tip sits in the heart frame of the apical builders */
    float lv_tip_u = 0.5f * h.wall + 0.5f * h.W;
    float tip_v = -h.L - h.wall;

    /* elevational aim of the acquisition: how squarely the plane cuts the structure that tells
     * a view from its neighbour (LVOT of the A5CH, aortic root of the A3CH). Drawn from the
     * scan seed; poor windows (low quality) tend to miss it. 1 for a perfect plane; the
     * neighbour uses the complement so it sometimes catches a hint of the same structure. */
    float in_plane;
    {
        ep_rng g = ep_rng_make(s->seed, 0xE1E7);
        float u = ep_rng_uniform(&g);
        float poor = 0.07f * (float)(5 - s->quality);
        in_plane = ep_clampf(1.0f - 0.55f * u * u - poor, 0.3f, 1.0f);
    }

    if (s->flags & EP_FLAG_UNIFORM_PHANTOM) {
        sc->background_echo = 0.3f;
        sc->motion_amount = 0.0f;
        apply_pose(sc, s);
        return;
    }

    /* version 2: in the apical window the heart is flanked by the lungs (the lingula lateral to
     * the LV, the right lung beyond the RA); aerated lung sends nothing back beyond the pleura,
     * so what no primitive covers is dark there rather than soft tissue */
    if (v2 && s->view <= EP_VIEW_APICAL_LA_MV)
        sc->background_echo = ECHO_LUNG;

    switch (s->view) {
    case EP_VIEW_A4CH_LV:
    case EP_VIEW_A5CH: {
        float ang = -18.0f * EP_DEG + tilt;
        float cs = cosf(ang), sn = sinf(ang);
        /* the LV tip under the probe, a little right of centre: the crux falls near the
         * centre line, LV on the right, RV on the left */
        float ox = shift + 5.0f - (lv_tip_u * cs - tip_v * sn),
              oz = apex_z - (lv_tip_u * sn + tip_v * cs);
        float lvot = s->view == EP_VIEW_A5CH ? in_plane : 0.45f * (1.0f - in_plane);
        oz -= 4.0f * lvot; /* anterior angulation brings the base a little closer */
        f = frame_make(ox, oz, ang);
        heart_four(sc, &f, &h, s->view == EP_VIEW_A5CH ? FOUR_LVOT : FOUR_PLAIN, lvot);
        break;
    }
    case EP_VIEW_A4CH_RV: {
        /* the A4CH-LV heart with the probe slid laterally towards the RV and angled a little
         * medially (ASE 2015 RV-focused view): the RV apex near the centre line and the RV at
         * its widest, the LV narrower towards the edge of the fan. The slide (about 14-20 mm)
         * exceeds the random probe placement (+-9 mm), as it does when a sonographer
         * deliberately moves to this window. */
        float ang = -17.0f * EP_DEG + tilt;
        float cs = cosf(ang), sn = sinf(ang);
        float slide = 0.5f * h.W * 0.72f * h.rv;
        float ox = shift + 5.0f + slide - (lv_tip_u * cs - tip_v * sn),
              oz = apex_z - (lv_tip_u * sn + tip_v * cs);
        f = frame_make(ox, oz, ang);
        heart_four(sc, &f, &h, FOUR_RV, 0.0f);
        break;
    }
    case EP_VIEW_APICAL_LA_MV: {
        float ang = -6.0f * EP_DEG + tilt;
        float la_u = 1.6f + 0.5f * 0.85f * h.W * h.la * 1.12f;
        /* probe aimed at the LA: LA centred, the ventricles crowd the near field */
        float mv_z = cw + 0.62f * h.L + 8.0f;
        if (v2) {
            /* version 2: the plane aimed through the LA and mitral valve cuts the LV obliquely,
             * short of its apex (foreshortened to about a third of its length), its tip just under
             * the chest wall instead of inside it, with the shallower, narrower sector that
             * ep_scan_style draws for this view: the mitral annulus in the upper half, the LA
             * filling the centre of the sector */
            h.L *= 0.35f;
            mv_z = cw + 6.0f + h.L + h.wall;
        }
        f = frame_make(shift - la_u * cosf(ang), mv_z, ang);
        heart_four(sc, &f, &h, FOUR_ATRIA, 0.0f);
        break;
    }
    case EP_VIEW_A2CH:
    case EP_VIEW_A3CH: {
        float ang = (s->view == EP_VIEW_A3CH ? -5.0f : -2.0f) * EP_DEG + tilt;
        float cs = cosf(ang), sn = sinf(ang);
        f = frame_make(shift + tip_v * sn, apex_z - tip_v * cs, ang);
        heart_two(sc, &f, &h, s->view == EP_VIEW_A3CH ? in_plane : 0.45f * (1.0f - in_plane));
        break;
    }
    case EP_VIEW_PLAX_FULL:
    case EP_VIEW_PLAX_VALVES:
        /* one scene; PLAX-valves differs in the acquisition (shallower depth, narrower fan,
         * probe aimed at the valves), so only the aim point moves here */
        sc->background_echo = 0.09f;
        if (s->view == EP_VIEW_PLAX_FULL)
            f = frame_make(shift + 14.0f, cw + 36.0f + 0.5f * h.ao, 2.0f * EP_DEG + 0.5f * tilt);
        else
            f = frame_make(shift + 7.0f, cw + 28.0f + 0.5f * h.ao, 2.0f * EP_DEG + 0.5f * tilt);
        heart_plax(sc, &f, &h);
        break;
    case EP_VIEW_PLAX_TV:
        sc->background_echo = 0.09f;
        f = frame_make(shift - 4.0f, cw + 72.0f, -32.0f * EP_DEG + 0.5f * tilt);
        heart_rv_inflow(sc, &f, &h);
        break;
    case EP_VIEW_PSAX_AV:
        sc->background_echo = 0.09f;
        f = frame_make(shift, cw + 52.0f + 0.5f * h.ao, 0.5f * tilt);
        heart_psax_av(sc, &f, &h);
        break;
    case EP_VIEW_PSAX_LV:
        sc->background_echo = 0.09f;
        f = frame_make(shift, cw + 38.0f + 0.5f * h.W, 0.5f * tilt);
        heart_psax_lv(sc, &f, &h);
        break;
    case EP_VIEW_SUBCOSTAL_IVC:
        sc->background_echo = 0.10f;
        f = frame_make(shift * 0.5f, 0.0f, 0.3f * tilt);
        scene_subcostal_ivc(sc, &f, p, &h);
        break;
    case EP_VIEW_SUBCOSTAL: {
        sc->background_echo = 0.08f;
        float lv = p->liver_mm;
        frame fl = frame_make(0, 0, 0);
        liver(sc, &fl, -25.0f, cw + 0.45f * lv, 120.0f, 0.5f * lv + 8.0f, 0.18f);
        float ang = 68.0f * EP_DEG + 0.5f * tilt;
        f = frame_make(shift - 32.0f, cw + 0.72f * lv + 52.0f, ang);
        heart_four(sc, &f, &h, FOUR_PLAIN, 0.0f);
        break;
    }
    case EP_VIEW_SUPRASTERNAL:
        sc->background_echo = 0.13f;
        f = frame_make(shift * 0.5f, cw + 58.0f, 0.3f * tilt);
        scene_suprasternal(sc, &f, &h);
        break;
    default:
        break;
    }

    /* speckle follows the heart: a contraction field around the heart frame's centre */
    frame_point(&f, 0.0f, -0.4f * h.L, &sc->motion_cx, &sc->motion_cz);
    sc->motion_radius = 0.6f * h.L + 20.0f;
    sc->motion_amount = 0.12f * h.c;
    if (s->view == EP_VIEW_SUBCOSTAL_IVC || s->view == EP_VIEW_SUPRASTERNAL)
        sc->motion_amount = 0.03f * h.c;
    apply_pose(sc, s);
}
