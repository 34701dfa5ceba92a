/* ep_api.c: view names, patients and acquisitions drawn from seeds, argument checking. */
#include "ep_internal.h"

#include <math.h>
#include <stddef.h>

static const char *const view_names[EP_VIEW_COUNT] = {
    "A2CH",         "A3CH",          "A4CH-LV",   "A4CH-RV",      "A5CH",
    "Apical-LA/MV", "PLAX-TV",       "PLAX-full", "PLAX-valves",  "PSAX-AV",
    "PSAX-LV",      "Subcostal-IVC", "Subcostal", "Suprasternal",
};

int ep_view_count(void) { return EP_VIEW_COUNT; }

const char *ep_view_name(int view)
{
    if (view < 0 || view >= EP_VIEW_COUNT)
        return NULL;
    return view_names[view];
}

static int ascii_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

int ep_view_parse(const char *name)
{
    if (!name)
        return -1;
    for (int v = 0; v < EP_VIEW_COUNT; v++) {
        const char *a = view_names[v], *b = name;
        while (*a && *b && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b))
            a++, b++;
        if (!*a && !*b)
            return v;
    }
    return -1;
}

const char *ep_strerror(int code)
{
    switch (code) {
    case EP_OK:
        return "success";
    case EP_ERR_INVALID:
        return "invalid argument";
    case EP_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

int ep_patient_init(ep_patient *p, uint64_t seed)
{
    if (!p)
        return EP_ERR_INVALID;
    ep_rng g = ep_rng_make(seed, 0x70A7);
    /* correlated sizes: a big heart is big everywhere */
    float size = ep_rng_range(&g, -1.0f, 1.0f);
    p->seed = seed;
    p->lv_length_mm = 85.0f + 9.0f * size + ep_rng_range(&g, -6.0f, 6.0f);
    p->lv_width_mm = 47.0f + 6.0f * size + ep_rng_range(&g, -4.0f, 4.0f);
    p->wall_mm = ep_rng_range(&g, 7.5f, 12.5f);
    p->rv_scale = ep_rng_range(&g, 0.8f, 1.2f);
    p->la_scale = ep_rng_range(&g, 0.85f, 1.25f);
    p->ra_scale = ep_rng_range(&g, 0.85f, 1.2f);
    p->aorta_mm = 29.0f + 3.0f * size + ep_rng_range(&g, -2.5f, 2.5f);
    p->ivc_mm = ep_rng_range(&g, 14.0f, 23.0f);
    p->heart_tilt_deg = ep_rng_range(&g, -10.0f, 10.0f);
    p->heart_shift_mm = ep_rng_range(&g, -6.0f, 6.0f);
    p->chest_wall_mm = ep_rng_range(&g, 11.0f, 26.0f);
    p->liver_mm = ep_rng_range(&g, 55.0f, 85.0f);
    p->contraction = ep_rng_range(&g, 0.2f, 0.4f);
    p->heart_rate_bpm = ep_rng_range(&g, 55.0f, 100.0f);
    p->attenuation_db_cm = ep_rng_range(&g, 2.0f, 3.0f);
    p->myocardium_echo = ep_rng_range(&g, 0.75f, 1.25f);
    for (int i = 0; i < 6; i++)
        p->shape[i] = ep_rng_range(&g, -1.0f, 1.0f);
    return EP_OK;
}

int ep_scan_default(ep_scan *s, int view)
{
    if (!s || view < 0 || view >= EP_VIEW_COUNT)
        return EP_ERR_INVALID;
    s->view = view;
    ep_view_nominal(view, &s->depth_mm, &s->sector_deg);
    s->probe_shift_mm = 0.0f;
    s->probe_depth_mm = 0.0f;
    s->probe_tilt_deg = 0.0f;
    s->gain_db = 0.0f;
    s->dynamic_range_db = 55.0f;
    s->tgc = 1.0f;
    s->quality = 5;
    s->overlays = 0;
    s->framing = EP_FRAMING_SCANNER;
    s->flags = 0;
    s->seed = 0;
    s->noise_seed = 0;
    s->version = EP_VERSION_1;
    s->screen = EP_SCREEN_BMODE;
    s->vendor = 0;
    s->gamma = 1.8f;
    s->smoothing = 0.0f;
    s->harmonic = 0.0f;
    s->steer_deg = 0.0f;
    s->zoom = 1.0f;
    s->apex_x = 0.5f;
    s->color_box[0] = -0.5f;
    s->color_box[1] = 0.5f;
    s->color_box[2] = 0.3f;
    s->color_box[3] = 0.8f;
    return EP_OK;
}

int ep_scan_init(ep_scan *s, int view, uint64_t seed)
{
    int rc = ep_scan_default(s, view);
    if (rc != EP_OK)
        return rc;
    ep_rng g = ep_rng_make(seed, 0x5CA7);
    /* grades as a busy echo lab sees them: most fair to good, some poor */
    static const float grade_cdf[5] = {0.08f, 0.25f, 0.55f, 0.83f, 1.0f};
    float u = ep_rng_uniform(&g);
    int q = 1;
    while (q < 5 && u >= grade_cdf[q - 1])
        q++;
    float bad = (float)(5 - q) * 0.25f;
    s->quality = q;
    /* sonographers set depth per window, varying it by about +-10% with the patient */
    s->depth_mm *= ep_rng_range(&g, 0.92f, 1.10f);
    s->sector_deg = ep_clampf(s->sector_deg + ep_rng_range(&g, -12.0f, 8.0f), 50.0f, 95.0f);
    s->probe_shift_mm = ep_rng_range(&g, -9.0f, 9.0f);
    s->probe_depth_mm = ep_rng_range(&g, -6.0f, 6.0f);
    s->probe_tilt_deg = ep_rng_range(&g, -9.0f, 9.0f);
    s->gain_db = ep_rng_range(&g, -3.0f - 5.0f * bad, 3.0f + 5.0f * bad);
    s->dynamic_range_db = ep_rng_range(&g, 48.0f, 62.0f);
    s->tgc = ep_rng_range(&g, 0.92f, 1.06f);
    s->seed = ep_rng_next(&g);
    s->noise_seed = ep_rng_next(&g);
    return EP_OK;
}

static int finite_in(float v, float lo, float hi) { return isfinite(v) && v >= lo && v <= hi; }

const char *ep_screen_name(int screen)
{
    static const char *const names[EP_SCREEN_COUNT] = {"bmode", "color", "mmode",
                                                       "pw",    "cw",    "tdi"};
    if (screen < 0 || screen >= EP_SCREEN_COUNT)
        return NULL;
    return names[screen];
}

int ep_scan_style(ep_scan *s, uint64_t scanner_seed, uint64_t acquisition_seed)
{
    if (!s || ep_scan_validate(s) != EP_OK)
        return EP_ERR_INVALID;
    ep_rng g = ep_rng_make(scanner_seed, 0x57E1);
    float bad = (float)(5 - s->quality) * 0.25f;
    s->version = EP_VERSION_2;
    s->screen = EP_SCREEN_BMODE;
    s->vendor = (int)(ep_rng_next(&g) % EP_VENDOR_COUNT);
    s->gamma = ep_rng_range(&g, 1.3f, 2.2f);
    /* modern machines smooth speckle and image in harmonics; older ones do not */
    s->smoothing = ep_rng_uniform(&g) < 0.8f ? ep_rng_range(&g, 0.4f, 1.0f) : 0.0f;
    s->harmonic = ep_rng_uniform(&g) < 0.75f ? ep_rng_range(&g, 0.5f, 1.0f) : 0.0f;
    float dr_base = ep_rng_range(&g, 45.0f, 62.0f);

    ep_rng a = ep_rng_make(acquisition_seed, 0xA5C2);
    /* real sectors: 60-90 degrees, 10-24 cm deep, often steered or zoomed */
    float u_sector = ep_rng_uniform(&a), u_depth = ep_rng_uniform(&a), base = s->depth_mm;
    s->sector_deg = 60.0f + 30.0f * u_sector;
    s->depth_mm = ep_clampf(base * (0.75f + 0.6f * u_depth), 100.0f, 240.0f);
    s->steer_deg = ep_rng_uniform(&a) < 0.35f ? ep_rng_range(&a, -12.0f, 12.0f) : 0.0f;
    s->zoom = ep_rng_uniform(&a) < 0.25f ? ep_rng_range(&a, 1.1f, 1.6f) : 1.0f;
    if (s->view <= EP_VIEW_A5CH) {
        /* apical views of the ventricles (ASE 2015/2019): the sonographer sets the depth so the
         * whole heart, atria included, is in the sector, the crux at about 55-65 % of the depth
         * (the LV tip at 2-3 cm, the crux at 10-14 cm): 1.05-1.3 times the nominal 16 cm. The
         * display zoom stays mild (at most 1.12: the 1.1-1.6 of other views pushes the atria,
         * these views' defining anatomy, out of the bottom of the frame) and so does steering.
         * The same draws as above, remapped, so the other views keep their geometry. */
        s->depth_mm = ep_clampf(base * (1.05f + 0.25f * u_depth), 100.0f, 240.0f);
        s->steer_deg *= 0.6f;
        s->zoom = 1.0f + (s->zoom - 1.0f) * 0.2f;
    } else if (s->view == EP_VIEW_APICAL_LA_MV) {
        /* the LA/MV view: the probe aimed and the depth reduced onto the LA and mitral valve,
         * a narrower sector (50-70 degrees) about 12-17 cm deep, the LA filling its centre */
        s->sector_deg = 50.0f + 20.0f * u_sector;
        s->depth_mm = ep_clampf(base * (0.88f + 0.14f * u_depth), 100.0f, 240.0f);
        s->zoom = 1.0f + (s->zoom - 1.0f) * 0.3f;
    }
    s->apex_x = ep_rng_range(&a, 0.40f, 0.60f);
    s->dynamic_range_db = ep_clampf(dr_base + ep_rng_range(&a, -4.0f, 4.0f), 40.0f, 70.0f);
    s->gain_db = ep_rng_range(&a, -1.0f - 3.0f * bad, 6.0f + 3.0f * bad);
    s->tgc = ep_rng_range(&a, 0.80f, 1.0f); /* sonographers rarely lift the far field fully */
    /* colour box: a third to a half of the sector, over the middle depths */
    float c = ep_rng_range(&a, -0.35f, 0.35f), w = ep_rng_range(&a, 0.25f, 0.5f);
    s->color_box[0] = ep_clampf(c - w, -1.0f, 1.0f);
    s->color_box[1] = ep_clampf(c + w, -1.0f, 1.0f);
    float d0 = ep_rng_range(&a, 0.15f, 0.45f);
    s->color_box[2] = d0;
    s->color_box[3] = ep_clampf(d0 + ep_rng_range(&a, 0.3f, 0.5f), 0.0f, 1.0f);
    return EP_OK;
}

int ep_scan_validate(const ep_scan *s)
{
    if (!s)
        return EP_ERR_INVALID;
    if (s->view < 0 || s->view >= EP_VIEW_COUNT)
        return EP_ERR_INVALID;
    if (!finite_in(s->depth_mm, 40.0f, 300.0f) || !finite_in(s->sector_deg, 30.0f, 100.0f) ||
        !finite_in(s->probe_shift_mm, -60.0f, 60.0f) ||
        !finite_in(s->probe_depth_mm, -40.0f, 40.0f) ||
        !finite_in(s->probe_tilt_deg, -45.0f, 45.0f) || !finite_in(s->gain_db, -30.0f, 30.0f) ||
        !finite_in(s->dynamic_range_db, 20.0f, 90.0f) || !finite_in(s->tgc, 0.0f, 1.5f))
        return EP_ERR_INVALID;
    if (s->quality < 1 || s->quality > 5)
        return EP_ERR_INVALID;
    if ((s->overlays & ~(unsigned)EP_OVERLAY_ALL) != 0 ||
        (s->flags & ~(unsigned)EP_FLAG_UNIFORM_PHANTOM) != 0)
        return EP_ERR_INVALID;
    if (s->framing != EP_FRAMING_SCANNER && s->framing != EP_FRAMING_SECTOR)
        return EP_ERR_INVALID;
    if (s->version == EP_VERSION_1)
        return s->screen == EP_SCREEN_BMODE ? EP_OK : EP_ERR_INVALID;
    if (s->version != EP_VERSION_2 || s->screen < 0 || s->screen >= EP_SCREEN_COUNT ||
        s->vendor < 0 || s->vendor >= EP_VENDOR_COUNT || !finite_in(s->gamma, 1.0f, 3.5f) ||
        !finite_in(s->smoothing, 0.0f, 1.0f) || !finite_in(s->harmonic, 0.0f, 1.0f) ||
        !finite_in(s->steer_deg, -25.0f, 25.0f) || !finite_in(s->zoom, 1.0f, 2.0f) ||
        !finite_in(s->apex_x, 0.25f, 0.75f))
        return EP_ERR_INVALID;
    if (!finite_in(s->color_box[0], -1.0f, 1.0f) || !finite_in(s->color_box[1], -1.0f, 1.0f) ||
        !finite_in(s->color_box[2], 0.0f, 1.0f) || !finite_in(s->color_box[3], 0.0f, 1.0f) ||
        s->color_box[0] >= s->color_box[1] || s->color_box[2] >= s->color_box[3])
        return EP_ERR_INVALID;
    /* a steered fan must still fit the half plane below the probe */
    if (0.5f * s->sector_deg + fabsf(s->steer_deg) > 70.0f)
        return EP_ERR_INVALID;
    return EP_OK;
}
