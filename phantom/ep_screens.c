/* ep_screens.c: the non-2D screens of a real exam (version 2), drawn as scanners lay them out:
 * a small 2D image with the cursor line at the top, the strip below it, a scale, text and the
 * ECG along the bottom.
 *   M-mode: depth down, time across (2.5 beats): the echogenicity along the M-line evaluated
 *           from the view's scene at 32 phases of the cycle, with speckle that streaks along
 *           time as tissue does;
 *   PW:     mitral inflow spectrum, E and A waves above the baseline, hollow "spectral window";
 *   CW:     aortic outflow below the baseline, filled, up to several m/s;
 *   TDI:    mitral annulus tissue velocities: s' above, e' and a' below, a narrow bright band.
 * Velocities and timing are per patient (seeded); everything is deterministic per scan. */
#include "ep_internal.h"

#include <math.h>
#include <string.h>

#define MM_PHASES 32
#define MM_DEPTHS 256

static inline uint32_t mix32(uint32_t a, uint32_t b)
{
    uint32_t h = a * 0x9E3779B1u ^ (b + 0x7F4A7C15u) * 0x85EBCA77u;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    return h;
}

/* Echogenicity at one point of a scene (the painter's rule of ep_render.c, without the
 * specular term), with version 2's tissue factors. */
static float scene_echo_at(const ep_scene *sc, const ep_patient *p, float x, float z)
{
    float e = sc->background_echo * ep_v2_tissue_gain(EP_TISSUE_SOFT);
    if (z < p->chest_wall_mm)
        e = (z < 1.5f ? 0.9f : 0.3f) * ep_v2_tissue_gain(EP_TISSUE_SOFT) * 1.6f;
    for (int i = 0; i < sc->count; i++) {
        const ep_prim *q = &sc->prims[i];
        float d;
        if (!ep_prim_distance(q, x, z, &d))
            continue;
        float alpha = 0.5f - d / q->soft;
        if (alpha <= 0.0f)
            continue;
        float echo = q->echo * ep_v2_tissue_gain(q->tissue);
        if (q->tissue == EP_TISSUE_MYOCARDIUM)
            echo *= p->myocardium_echo;
        e = alpha >= 1.0f ? echo : e + alpha * (echo - e);
    }
    return e;
}

static float rayleigh(uint32_t h)
{
    float u = ((float)(h >> 8) + 0.5f) * (1.0f / 16777216.0f);
    return sqrtf(-logf(u));
}

/* Grey level of an echo amplitude through the scan's dynamic range and gamma. */
static uint8_t to_grey(float amp, const ep_scan *s)
{
    float db = 20.0f * log10f(amp + 1e-6f) + s->gain_db + 2.0f;
    float x = (db + s->dynamic_range_db) / s->dynamic_range_db;
    x = ep_clampf(x, 0.0f, 1.0f);
    return (uint8_t)(255.0f * powf(x, s->gamma) + 0.5f);
}

/* Signed velocity (m/s, + towards the probe) of the spectral envelope at a cardiac phase. */
static float envelope(int screen, float phase, const float *k)
{
    float v = 0.0f, d;
    switch (screen) {
    case EP_SCREEN_PW: /* mitral inflow: E then A */
        d = (phase - 0.49f) / 0.065f;
        v += k[0] * expf(-d * d);
        d = (phase - 0.87f) / 0.045f;
        v += k[1] * expf(-d * d);
        break;
    case EP_SCREEN_CW: /* aortic ejection away from the apex, a faint mitral inflow */
        if (phase > 0.06f && phase < 0.36f)
            v -= k[2] * powf(sinf(EP_PI * (phase - 0.06f) / 0.30f), 0.7f);
        d = (phase - 0.49f) / 0.065f;
        v += 0.8f * k[0] * expf(-d * d);
        break;
    default: /* TDI: s', e', a' of the mitral annulus */
        d = (phase - 0.20f) / 0.08f;
        v += k[3] * expf(-d * d);
        d = (phase - 0.49f) / 0.05f;
        v -= k[4] * expf(-d * d);
        d = (phase - 0.87f) / 0.04f;
        v -= k[5] * expf(-d * d);
        break;
    }
    return v;
}

/* The small 2D image with the cursor, at (cx, top) with radius rad. */
static void draw_thumbnail(const ep_polar_view *pv, const ep_scan *s, int w, int h, int cx, int top,
                           int rad, uint8_t *out, size_t stride)
{
    float ha = pv->half_angle;
    float sh = sinf(ha);
    int x0 = cx - (int)((float)rad * sh) - 1, x1 = cx + (int)((float)rad * sh) + 1;
    for (int y = top; y < top + rad && y < h; y++) {
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
            float dx = (float)(x - cx) + 0.5f, dz = (float)(y - top) + 0.5f;
            float rr = sqrtf(dx * dx + dz * dz) / (float)rad, th = atan2f(dx, dz);
            if (rr >= 1.0f || fabsf(th) >= ha)
                continue;
            int b = (int)((th + ha) / (2.0f * ha) * (float)pv->nb);
            int j = (int)(rr * (float)pv->ns);
            b = b >= pv->nb ? pv->nb - 1 : b;
            j = j >= pv->ns ? pv->ns - 1 : j;
            float g = pv->grey[(size_t)j * (size_t)pv->nb + (size_t)b];
            out[(size_t)y * stride + (size_t)x] = (uint8_t)ep_clampf(g + 0.5f, 0.0f, 255.0f);
        }
    }
    /* the cursor line down the middle, dotted; PW and TDI carry a sample gate */
    for (int y = top + 2; y < top + rad && y < h; y += 3)
        ep_draw_dot(out, stride, w, h, cx, y, 1, 230);
    if (s->screen == EP_SCREEN_PW || s->screen == EP_SCREEN_TDI) {
        int gy = top + (int)(0.62f * (float)rad), gw = rad / 12 + 2;
        ep_draw_rect(out, stride, w, h, cx - gw, gy, 2 * gw + 1, 1, 240);
        ep_draw_rect(out, stride, w, h, cx - gw, gy + rad / 20 + 2, 2 * gw + 1, 1, 240);
    }
}

void ep_draw_screen(const ep_polar_view *pv, const ep_patient *p, const ep_scan *s, float phase,
                    int w, int h, uint8_t *out, size_t stride)
{
    for (int y = 0; y < h; y++)
        memset(out + (size_t)y * stride, 0, (size_t)w);
    int scale = h >= 400 ? 2 : 1, lh = 7 * scale;
    int vendor = s->vendor;
    /* layout: thumbnail on top, strip below, ECG at the bottom */
    int thumb_r = (int)(0.30f * (float)h);
    int thumb_cx = (int)((vendor == 1 || vendor == 3 ? 0.30f : 0.5f) * (float)w);
    int thumb_top = (int)(0.04f * (float)h);
    draw_thumbnail(pv, s, w, h, thumb_cx, thumb_top, thumb_r, out, stride);
    int sx0 = (int)(0.04f * (float)w), sx1 = (int)(0.90f * (float)w);
    int sy0 = (int)(0.38f * (float)h), sy1 = (int)(0.86f * (float)h);
    if (sx1 - sx0 < 4 || sy1 - sy0 < 4)
        return;
    ep_draw_rect(out, stride, w, h, sx0, sy0 - 1, sx1 - sx0, 1, 90);
    const float cycles = 2.5f;
    uint32_t seed = (uint32_t)(s->noise_seed ^ (s->noise_seed >> 32));
    uint32_t pseed = (uint32_t)(p->seed ^ (p->seed >> 29));
    float bad = (float)(5 - s->quality) * 0.25f;
    char line[40];

    if (s->screen == EP_SCREEN_MMODE) {
        /* echogenicity along the M-line (the fan's centre) at MM_PHASES phases */
        float prof[MM_PHASES][MM_DEPTHS];
        ep_scene sc;
        for (int k = 0; k < MM_PHASES; k++) {
            ep_scene_build(&sc, p, s, (float)k / (float)MM_PHASES);
            for (int i = 0; i < MM_DEPTHS; i++) {
                float z = ((float)i + 0.5f) / (float)MM_DEPTHS * s->depth_mm;
                float att = powf(10.0f, -0.15f * (1.0f + bad) * z * 0.1f / 20.0f);
                prof[k][i] = scene_echo_at(&sc, p, 0.0f, z) * att;
            }
        }
        for (int x = sx0; x < sx1; x++) {
            float t = phase - cycles + cycles * (float)(x - sx0) / (float)(sx1 - sx0);
            float f = (t - floorf(t)) * (float)MM_PHASES;
            int k0 = (int)f % MM_PHASES, k1 = (k0 + 1) % MM_PHASES;
            float a = f - floorf(f);
            for (int y = sy0; y < sy1; y++) {
                float fd = ((float)(y - sy0) + 0.5f) / (float)(sy1 - sy0) * (float)MM_DEPTHS;
                int i = (int)fd;
                i = i >= MM_DEPTHS ? MM_DEPTHS - 1 : i;
                float e = prof[k0][i] + a * (prof[k1][i] - prof[k0][i]);
                /* speckle streaks along time: mostly per depth row, a little per column */
                uint32_t hr = mix32((uint32_t)y, pseed), hc = mix32((uint32_t)(x * 7919 + y), seed);
                float sp = 0.75f * rayleigh(hr) + 0.35f * rayleigh(hc);
                out[(size_t)y * stride + (size_t)x] = to_grey(e * sp + 0.002f * rayleigh(hc), s);
            }
        }
        /* depth scale on the right: a tick per cm, numbers every 5 cm */
        for (int cm = 1; cm * 10.0f <= s->depth_mm; cm++) {
            int y = sy0 + (int)((float)(sy1 - sy0) * cm * 10.0f / s->depth_mm);
            int len = (cm % 5 == 0 ? 5 : 2) * scale;
            ep_draw_rect(out, stride, w, h, sx1 + 2, y, len, scale, 200);
            if (cm % 5 == 0) {
                ep_fmt_int(line, cm);
                ep_draw_text(out, stride, w, h, sx1 + 4 + len, y - 2 * scale, scale, line, 200);
            }
        }
    } else {
        /* per-patient velocities (m/s): E, A, aortic peak, s', e', a' */
        uint32_t hv = mix32(pseed, 0x5EC7u);
        float u0 = (float)(hv & 0xFF) / 255.0f, u1 = (float)((hv >> 8) & 0xFF) / 255.0f;
        float u2 = (float)((hv >> 16) & 0xFF) / 255.0f, u3 = (float)(hv >> 24) / 255.0f;
        float k[6] = {0.55f + 0.45f * u0, 0.35f + 0.4f * u1,  1.0f + 3.5f * u2,
                      0.06f + 0.05f * u3, 0.07f + 0.08f * u0, 0.06f + 0.05f * u1};
        float vmax, base;
        int step_cm;
        switch (s->screen) {
        case EP_SCREEN_PW:
            vmax = 1.2f, base = 0.70f, step_cm = 20;
            break;
        case EP_SCREEN_CW:
            vmax = k[2] > 3.0f ? 6.0f : 4.0f, base = 0.22f, step_cm = 100;
            break;
        default:
            vmax = 0.2f, base = 0.5f, step_cm = 5;
            break;
        }
        float vscale = vmax / ((float)(sy1 - sy0) * fmaxf(base, 1.0f - base));
        int yb = sy0 + (int)(base * (float)(sy1 - sy0));
        for (int x = sx0; x < sx1; x++) {
            float t = phase - cycles + cycles * (float)(x - sx0) / (float)(sx1 - sx0);
            float env = envelope(s->screen, t - floorf(t), k);
            float aenv = fabsf(env);
            for (int y = sy0; y < sy1; y++) {
                float v = (float)(yb - y) * vscale; /* + above the baseline */
                uint32_t hn = mix32((uint32_t)(x * 7919 + y), seed);
                float n = rayleigh(hn);
                float in = 0.0015f * (1.0f + bad) * n;
                float av = fabsf(v);
                if (aenv > 0.02f && v * env > 0.0f && av <= aenv * 1.04f) {
                    float q = av / aenv;
                    float body;
                    if (s->screen == EP_SCREEN_PW)
                        body = 0.25f + 0.75f * q * q;
                    else if (s->screen == EP_SCREEN_CW)
                        body = 0.95f - 0.45f * q;
                    else
                        body = expf(-(1.0f - q) * (1.0f - q) / 0.02f) + 0.1f;
                    if (q > 1.0f)
                        body *= 0.4f;
                    in += body * n * 0.8f;
                }
                if (av < 0.025f * vmax) /* the wall filter near the baseline */
                    in *= 0.3f;
                out[(size_t)y * stride + (size_t)x] =
                    (uint8_t)(255.0f * powf(ep_clampf(in, 0.0f, 1.0f), 0.8f) + 0.5f);
            }
        }
        ep_draw_rect(out, stride, w, h, sx0, yb, sx1 - sx0, 1, 150);
        /* velocity scale on the right (cm/s) */
        for (int c = -10 * step_cm; c <= 10 * step_cm; c += step_cm) {
            int y = yb - (int)((float)c * 0.01f / vscale);
            if (c == 0 || y < sy0 || y >= sy1)
                continue;
            ep_draw_rect(out, stride, w, h, sx1 + 2, y, 3 * scale, scale, 200);
            ep_fmt_int(line, s->screen == EP_SCREEN_CW ? c / 100 : c);
            ep_draw_text(out, stride, w, h, sx1 + 4 + 3 * scale, y - 2 * scale, scale, line, 200);
        }
        ep_draw_text(out, stride, w, h, sx1 + 2, sy0 - lh, scale,
                     s->screen == EP_SCREEN_CW ? "M/S" : "CM/S", 190);
    }
    /* ECG under the strip, time-aligned */
    int ey = (int)(0.93f * (float)h), amp = (int)(0.04f * (float)h);
    ep_draw_ecg(out, stride, w, h, sx0, sx1, ey, amp, cycles, phase - cycles, scale, 160);
    /* text: mode and settings, vendor-placed */
    static const char *const mode[EP_SCREEN_COUNT] = {"2D", "CF", "M", "PW", "CW", "TDI"};
    int tx = vendor == 1 || vendor == 3 ? (int)(0.62f * (float)w) : 4;
    int ty = (int)(0.03f * (float)h);
    ep_draw_text(out, stride, w, h, tx, ty, scale, mode[s->screen], 220);
    if (s->screen == EP_SCREEN_MMODE) {
        ep_fmt_int(line, (int)lroundf(s->depth_mm * 0.1f));
        memcpy(line + strlen(line), "CM", 3);
    } else {
        memcpy(line, "SV 3MM", 7);
    }
    ep_draw_text(out, stride, w, h, tx, ty + lh, scale, line, 200);
    ep_draw_text(out, stride, w, h, tx, ty + 2 * lh, scale, "SWEEP 100", 200);
    ep_fmt_int(line, (int)lroundf(p->heart_rate_bpm));
    memcpy(line + strlen(line), " BPM", 5);
    ep_draw_text(out, stride, w, h, tx, ty + 3 * lh, scale, line, 190);
}
