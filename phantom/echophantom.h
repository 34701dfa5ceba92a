/* echophantom.h: the synthetic echo scanner ("phantom") of echoview.
 *
 * Renders B-mode frames and cine loops of the 14 standard echocardiography views from a
 * physically motivated image-formation chain: per-view parametric anatomy (chambers, walls,
 * septa, valves, great vessels, liver) placed in a probe-centred polar grid, tissue-dependent
 * random complex scatterers that move with the tissue, a depth-dependent axial/lateral point
 * spread function, attenuation and imperfect time-gain compensation, electronic noise,
 * envelope detection, log compression through a grey map and scan conversion into a fan.
 *
 * Usage:
 *     ep_patient pat;  ep_patient_init(&pat, patient_seed);
 *     ep_scan scan;    ep_scan_init(&scan, EP_VIEW_A4CH_LV, acquisition_seed);
 *     ep_renderer *r = ep_renderer_create(128, 128);          // once per thread
 *     scan.framing = EP_FRAMING_SECTOR;                        // sector cropped to 128x128
 *     ep_render(r, &pat, &scan, phase, frame, 128);            // no allocation per frame
 *     ep_renderer_free(r);
 *
 * Everything is deterministic: the same patient, scan and phase give identical bytes. A renderer
 * is not shared between threads; separate renderers on separate threads are independent.
 * The only dependency is libm.
 */
#ifndef ECHOPHANTOM_H
#define ECHOPHANTOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success, errors are negative. */
enum {
    EP_OK = 0,
    EP_ERR_INVALID = -1, /* bad argument (NULL, out of range, buffer too small) */
    EP_ERR_NOMEM = -2,   /* allocation failed or a size overflowed */
};

/* The 14 views, in the order of the paper's confusion matrix (ids 0..13). */
enum {
    EP_VIEW_A2CH = 0,
    EP_VIEW_A3CH = 1,
    EP_VIEW_A4CH_LV = 2,
    EP_VIEW_A4CH_RV = 3,
    EP_VIEW_A5CH = 4,
    EP_VIEW_APICAL_LA_MV = 5,
    EP_VIEW_PLAX_TV = 6,
    EP_VIEW_PLAX_FULL = 7,
    EP_VIEW_PLAX_VALVES = 8,
    EP_VIEW_PSAX_AV = 9,
    EP_VIEW_PSAX_LV = 10,
    EP_VIEW_SUBCOSTAL_IVC = 11,
    EP_VIEW_SUBCOSTAL = 12,
    EP_VIEW_SUPRASTERNAL = 13,
    EP_VIEW_COUNT = 14
};

/* Tissue classes of the ground-truth label map (ep_render_labels). */
enum {
    EP_TISSUE_NONE = 0,       /* outside the sector */
    EP_TISSUE_SOFT = 1,       /* chest wall, mediastinal fat, generic soft tissue */
    EP_TISSUE_BLOOD = 2,      /* blood pools: chambers and vessel lumens */
    EP_TISSUE_MYOCARDIUM = 3, /* ventricular and atrial walls, septa, papillary muscles */
    EP_TISSUE_VALVE = 4,      /* valve leaflets and cusps */
    EP_TISSUE_PERICARDIUM = 5,
    EP_TISSUE_VESSEL_WALL = 6,
    EP_TISSUE_LIVER = 7,
    EP_TISSUE_COUNT = 8
};

/* Overlay bits for ep_scan.overlays. */
enum {
    EP_OVERLAY_RULER = 1u << 0, /* depth marks every 1 cm beside the fan */
    EP_OVERLAY_ECG = 1u << 1,   /* ECG trace with the current-phase marker (scanner framing) */
    EP_OVERLAY_TEXT =
        1u << 2, /* acquisition text: depth, frequency, frame rate (scanner framing) */
    EP_OVERLAY_ALL = 7u
};

/* Where the fan goes in the output frame. */
enum {
    /* Scanner-like frame: apex at the top centre, margins, room for overlays; use
     * ep_sector_roi() for the fan's bounding box. */
    EP_FRAMING_SCANNER = 0,
    /* The fan's bounding box stretched over the whole output (what "crop to the ultrasound
     * region, resize to S x S" gives); the cheap way to build datasets. */
    EP_FRAMING_SECTOR = 1,
};

/* Renderer generations for ep_scan.version. Version 1 is the original renderer, kept byte for
 * byte so existing datasets, fixtures and model recipes reproduce; version 2 renders the look of
 * real scanners (near-black blood, mid-grey speckled myocardium, dim tissue outside the heart,
 * drop-out of walls parallel to the beam, speckle reduction, harmonic look, vendor-like screen
 * layouts, steered and zoomed fans) and the non-2D screens below. */
enum { EP_VERSION_1 = 1, EP_VERSION_2 = 2 };

/* What a frame shows (ep_scan.screen; anything but EP_SCREEN_BMODE needs version 2). */
enum {
    EP_SCREEN_BMODE = 0, /* 2D grey-scale image */
    EP_SCREEN_COLOR = 1, /* 2D image with a colour-Doppler box (ep_render_rgb for the colours) */
    EP_SCREEN_MMODE = 2, /* small 2D image with the M-line plus the time-motion strip */
    EP_SCREEN_PW = 3,    /* pulsed-wave spectral Doppler (mitral inflow E/A waves) */
    EP_SCREEN_CW = 4,    /* continuous-wave spectral Doppler (aortic outflow, high velocity) */
    EP_SCREEN_TDI = 5,   /* pulsed tissue-Doppler spectrum of the mitral annulus (s', e', a') */
    EP_SCREEN_COUNT = 6
};

/* Screen layouts of version 2 (ep_scan.vendor): four vendor-like arrangements of text blocks,
 * depth ruler, grey bar, ECG and orientation marker. */
#define EP_VENDOR_COUNT 4

/* Flags for ep_scan.flags. */
enum {
    /* Replace the anatomy by homogeneous tissue (a calibration phantom): for testing
     * attenuation and TGC. */
    EP_FLAG_UNIFORM_PHANTOM = 1u << 0,
};

/* One "patient": heart size and shape, body habitus, tissue properties. Drawn from a seed by
 * ep_patient_init(); fields may be edited afterwards (lengths in mm, angles in degrees). */
typedef struct ep_patient {
    uint64_t seed;           /* scatterer field and shape details derive from it */
    float lv_length_mm;      /* LV apex to mitral annulus at end-diastole, 70..100 */
    float lv_width_mm;       /* LV cavity diameter at end-diastole, 38..58 */
    float wall_mm;           /* LV wall thickness at end-diastole, 7..13 */
    float rv_scale;          /* RV size relative to the LV, 0.75..1.25 */
    float la_scale;          /* left atrium size factor, 0.8..1.3 */
    float ra_scale;          /* right atrium size factor, 0.8..1.25 */
    float aorta_mm;          /* aortic root diameter, 24..36 */
    float ivc_mm;            /* inferior vena cava diameter, 14..24 */
    float heart_tilt_deg;    /* rotation of the heart axis within every window, -12..12 */
    float heart_shift_mm;    /* lateral offset of the heart in every window, -8..8 */
    float chest_wall_mm;     /* skin + chest wall thickness, 10..30 */
    float liver_mm;          /* liver thickness in subcostal windows, 50..90 */
    float contraction;       /* fractional shortening of the LV, 0.18..0.42 */
    float heart_rate_bpm;    /* for ep_render_time() and the ECG overlay, 50..110 */
    float attenuation_db_cm; /* two-way attenuation at the imaging frequency, 1.8..3.2 */
    float myocardium_echo;   /* myocardial echogenicity factor, 0.7..1.3 */
    float shape[6];          /* small per-patient shape perturbations, -1..1 */
} ep_patient;

/* One acquisition: view, probe pose, machine settings. Drawn by ep_scan_init(); any field may
 * be overridden afterwards. */
typedef struct ep_scan {
    int view;               /* EP_VIEW_* */
    float depth_mm;         /* imaging depth (fan radius), 40..300 */
    float sector_deg;       /* fan opening angle, 30..100 */
    float probe_shift_mm;   /* lateral probe offset from the view's nominal position */
    float probe_depth_mm;   /* push (+) / lift (-) of the probe along the beam axis */
    float probe_tilt_deg;   /* probe rotation in the image plane */
    float gain_db;          /* overall gain, nominal 0, -20..20 */
    float dynamic_range_db; /* log-compression range, 30..80 */
    float tgc;              /* time-gain compensation strength: 1 nominal, 0 off, 0..1.5 */
    int quality;            /* image-quality grade 1 (very poor) .. 5 (excellent) */
    unsigned overlays;      /* EP_OVERLAY_* bits */
    int framing;            /* EP_FRAMING_* */
    unsigned flags;         /* EP_FLAG_* bits */
    uint64_t seed;          /* acquisition details: shadows, clutter, TGC ripple */
    uint64_t noise_seed;    /* electronic noise of this frame; change it per frame */
    /* version 2 only (ep_scan_default and ep_scan_init set version 1 and neutral values) */
    int version;        /* EP_VERSION_1 or EP_VERSION_2 */
    int screen;         /* EP_SCREEN_* */
    int vendor;         /* screen layout 0..EP_VENDOR_COUNT-1 */
    float gamma;        /* grey-map exponent, 1..3.5 */
    float smoothing;    /* speckle reduction, 0 (none) .. 1 (strong) */
    float harmonic;     /* 0 fundamental .. 1 harmonic imaging (finer beam, less clutter) */
    float steer_deg;    /* fan rotation about its apex on screen, -25..25 */
    float zoom;         /* display magnification in scanner framing, 1..2 */
    float apex_x;       /* apex position in scanner framing, fraction of the width, 0.25..0.75 */
    float color_box[4]; /* colour box: angle from, to (-1..1 of the half sector), depth from,
                               to (0..1 of the depth) */
} ep_scan;

typedef struct ep_rect {
    int x, y, width, height;
} ep_rect;

typedef struct ep_renderer ep_renderer;

/* ---- views ---------------------------------------------------------------------------------- */

/* Number of views (14). */
int ep_view_count(void);
/* The view's label as the paper spells it ("A2CH", ..., "Suprasternal"); NULL if out of range. */
const char *ep_view_name(int view);
/* The view id for a label (exact spelling, ASCII case-insensitive); -1 if unknown or NULL. */
int ep_view_parse(const char *name);

/* ---- patients and acquisitions -------------------------------------------------------------- */

/* Draws a patient from seed. Returns EP_OK or EP_ERR_INVALID (p NULL). */
int ep_patient_init(ep_patient *p, uint64_t seed);

/* Nominal acquisition of a view: centred probe, default depth and sector, quality 5, no
 * overlays, scanner framing, TGC 1. Returns EP_OK or EP_ERR_INVALID. */
int ep_scan_default(ep_scan *s, int view);

/* A realistic random acquisition of a view: probe pose jitter, depth, sector width, gain,
 * dynamic range and a quality grade drawn from seed (overlays off, scanner framing).
 * Returns EP_OK or EP_ERR_INVALID. */
int ep_scan_init(ep_scan *s, int view, uint64_t seed);

/* Turns s into a version-2 acquisition: the scanner's style (layout, grey map, speckle
 * reduction, harmonic look) drawn from scanner_seed, so one scanner keeps one look, and the
 * geometry of this acquisition (sector 60-90 degrees, depth 10-24 cm, steer, zoom, apex
 * position, dynamic range, colour box) from acquisition_seed. screen stays EP_SCREEN_BMODE.
 * Returns EP_OK or EP_ERR_INVALID (s NULL or not a valid scan). */
int ep_scan_style(ep_scan *s, uint64_t scanner_seed, uint64_t acquisition_seed);

/* The name of a screen kind ("bmode", "color", "mmode", "pw", "cw", "tdi"); NULL if out of
 * range. */
const char *ep_screen_name(int screen);

/* Checks ranges of every field; EP_OK or EP_ERR_INVALID. */
int ep_scan_validate(const ep_scan *s);

/* ---- rendering ------------------------------------------------------------------------------ */

/* A renderer for width x height frames (8..4096 each). All working memory is allocated here;
 * rendering allocates nothing. NULL on bad size or out of memory. */
ep_renderer *ep_renderer_create(int width, int height);
void ep_renderer_free(ep_renderer *r);

/* Renders one 8-bit grey frame at cardiac phase in [0,1) (0 = end-diastole at the R wave,
 * end-systole near 0.35) into out, rows stride bytes apart (stride >= width).
 * Returns EP_OK or EP_ERR_INVALID (NULL, phase not finite, scan out of range). */
int ep_render(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase, uint8_t *out,
              size_t stride);

/* Same as ep_render into 8-bit RGB (3 bytes per pixel, rows stride bytes apart, stride >=
 * 3 * width): the colour-Doppler box in colour, everything else grey (R = G = B). ep_render of a
 * colour screen gives the luma (ITU-R 601) of this image. */
int ep_render_rgb(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase, uint8_t *out,
                  size_t stride);

/* Same at time t seconds into a loop, with the patient's heart rate:
 * phase = frac(t * heart_rate_bpm / 60). */
int ep_render_time(ep_renderer *r, const ep_patient *p, const ep_scan *s, double t_seconds,
                   uint8_t *out, size_t stride);

/* Ground truth: the EP_TISSUE_* label of every pixel of the frame ep_render would give for the
 * same arguments (overlays excluded; a non-2D screen is EP_TISSUE_NONE everywhere). Same
 * return codes. */
int ep_render_labels(ep_renderer *r, const ep_patient *p, const ep_scan *s, double phase,
                     uint8_t *out, size_t stride);

/* The fan's bounding box in a width x height frame of this scan's framing (the ultrasound
 * region a classifier should crop; a non-2D screen's region is the whole frame). Returns EP_OK
 * or EP_ERR_INVALID. */
int ep_sector_roi(const ep_scan *s, int width, int height, ep_rect *roi);

/* A short English message for a status code. */
const char *ep_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* ECHOPHANTOM_H */
