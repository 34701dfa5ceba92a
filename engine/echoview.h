/* echoview.h: the public API of libechoview, the DARTS view-classifier engine.
 *
 * Opaque types and verbs: load a model bundle (model.yaml + safetensors), create an inference
 * plan on a backend (all memory planned at create time), run it on preprocessed frames, free.
 * Frames become network input through ev_preprocess_frame(), the one preprocessing path shared
 * by training, `echoview classify` and the GStreamer element.
 */
#ifndef ECHOVIEW_H
#define ECHOVIEW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EV_VERSION "0.1.0"
#define EV_MAX_CLASSES 256
#define EV_ERROR_MESSAGE_SIZE 512

/* Status codes: 0 is success, everything else is negative. */
enum {
    EV_OK = 0,
    EV_ERR_INVALID = -1,     /* bad argument or malformed input */
    EV_ERR_IO = -2,          /* file could not be read or written */
    EV_ERR_FORMAT = -3,      /* file content is corrupt or inconsistent */
    EV_ERR_NOMEM = -4,       /* allocation failed or a size overflowed */
    EV_ERR_UNSUPPORTED = -5, /* valid request this build or machine cannot serve */
};

/* Every fallible call takes an optional ev_error that receives a message naming what failed
 * and where (file, tensor, line). */
typedef struct ev_error {
    int code;
    char message[EV_ERROR_MESSAGE_SIZE];
} ev_error;

typedef struct ev_model ev_model;
typedef struct ev_plan ev_plan;

/* ---- models ---------------------------------------------------------------------------- */

/* path: a bundle folder or its model.yaml. */
int ev_model_load(const char *path, ev_model **out, ev_error *err);
void ev_model_free(ev_model *model);

const char *ev_model_name(const ev_model *model);
int ev_model_num_classes(const ev_model *model);
const char *ev_model_class_name(const ev_model *model, int index);
void ev_model_input_shape(const ev_model *model, int *width, int *height, int *channels);
int64_t ev_model_num_params(const ev_model *model); /* trainable, auxiliary head excluded */
int64_t ev_model_num_macs(const ev_model *model);   /* multiply-adds for one frame */

/* Calibration (model.yaml `calibration:`, fitted on a validation split by `echoview eval
 * --calibrate`). Every plan divides its logits by the temperature (1 when the bundle has none),
 * so softmax of ev_plan_run's logits is the calibrated confidence on every backend. Below the
 * confidence threshold (0 when none) a frame's answer is EV_UNKNOWN_LABEL. */
#define EV_UNKNOWN_LABEL "unknown"
float ev_model_temperature(const ev_model *model);
float ev_model_confidence_threshold(const ev_model *model);

/* ---- inference plans --------------------------------------------------------------------- */

typedef enum ev_backend_kind {
    EV_BACKEND_AUTO = 0, /* cuda when a GPU is usable, else cpu, else reference */
    EV_BACKEND_REFERENCE,
    EV_BACKEND_CPU,
    EV_BACKEND_CUDA,
} ev_backend_kind;

typedef struct ev_plan_options {
    ev_backend_kind backend;
    int batch;   /* frames per run, >= 1 (0 means 1) */
    int threads; /* worker threads for the cpu backend, >= 1 (0 means 1) */
    int gpu_id;  /* cuda device ordinal */
    int fp16;    /* cuda: half precision storage and math */
} ev_plan_options;

/* Name of a backend ("reference", "cpu", "cuda", "auto"); parse returns -1 for unknown. */
const char *ev_backend_name(ev_backend_kind kind);
int ev_backend_parse(const char *name, ev_backend_kind *out);
/* Whether this build and machine can run the backend (cuda: compiled in and a GPU visible). */
int ev_backend_available(ev_backend_kind kind);

int ev_plan_create(const ev_model *model, const ev_plan_options *options, ev_plan **out,
                   ev_error *err);
/* The backend the plan really uses (AUTO resolved). */
ev_backend_kind ev_plan_backend(const ev_plan *plan);
int ev_plan_batch(const ev_plan *plan);
/* input: batch x channels x height x width floats (NCHW, already preprocessed).
 * logits: batch x classes floats. No allocation happens inside. */
int ev_plan_run(ev_plan *plan, const float *input, float *logits, ev_error *err);
void ev_plan_free(ev_plan *plan);

/* Numerically stable softmax over n values, in place allowed. */
void ev_softmax(const float *logits, float *probabilities, int n);

/* ---- frames and preprocessing ------------------------------------------------------------ */

typedef enum ev_pixel_format {
    EV_PIXEL_GRAY8 = 0,
    EV_PIXEL_GRAY16, /* little-endian host order uint16 */
    EV_PIXEL_RGB,
    EV_PIXEL_BGR,
    EV_PIXEL_RGBX,
    EV_PIXEL_BGRX,
    EV_PIXEL_XRGB,
    EV_PIXEL_XBGR,
    EV_PIXEL_RGBA,
    EV_PIXEL_BGRA,
    EV_PIXEL_I420, /* planar; only the luma plane (plane 0) is read */
    EV_PIXEL_NV12, /* semi-planar; only the luma plane is read */
} ev_pixel_format;

/* A frame in memory. For I420/NV12, data/stride describe the luma plane. For colour formats
 * and a 3-channel model the chroma of I420/NV12 is not used (luma replicated). */
typedef struct ev_frame {
    const uint8_t *data;
    int width, height;
    int stride; /* bytes per row */
    ev_pixel_format format;
} ev_frame;

typedef struct ev_rect {
    int x, y, width, height;
} ev_rect;

/* Bytes per pixel of the (first) plane; 0 for unknown formats. */
int ev_pixel_format_bytes(ev_pixel_format format);

/* Crop the frame to roi (NULL: the whole frame), area-resize to the model input, convert to
 * luma for 1-channel models (or keep RGB order for 3-channel models), normalise with the model's
 * preprocess block. out: channels x height x width floats. */
int ev_preprocess_frame(const ev_model *model, const ev_frame *frame, const ev_rect *roi,
                        float *out, ev_error *err);

/* Intensity normalisation inside the scan sector (model.yaml `preprocess: normalize:`), applied
 * after the resize and before scale/mean/std. NONE keeps the pixel values as they are. */
typedef enum ev_normalize {
    EV_NORMALIZE_NONE = 0,
    EV_NORMALIZE_SECTOR = 1, /* histogram equalisation of the sector's pixels (ev_normalize_sector) */
} ev_normalize;

/* Same, with explicit geometry and normalisation, for callers without a model (datasets). */
typedef struct ev_preprocess_params {
    int width, height, channels;
    float scale;
    float mean[3];
    float std[3];
    ev_normalize normalize; /* zero: none */
} ev_preprocess_params;
void ev_model_preprocess_params(const ev_model *model, ev_preprocess_params *out);
int ev_preprocess(const ev_preprocess_params *params, const ev_frame *frame, const ev_rect *roi,
                  float *out, ev_error *err);

/* Sector normalisation of one plane of pixel values on the 8-bit scale (0..255), in place:
 * the sector is the pixels above 8% of the plane's 99th percentile (so the same pixels for any
 * gain); each becomes 255 x its mid-rank among them (histogram equalisation, 1024 levels), the
 * rest 0. Any increasing grey map of the sector therefore gives the same output. A plane with
 * no sector stays all 0. No allocation. */
void ev_normalize_sector(float *plane, int width, int height);

/* Find the ultrasound region: the bounding box of the sector (the bright, textured fan) in a
 * scanner frame, ignoring thin overlays. Returns EV_OK and the box, or EV_ERR_INVALID when no
 * region stands out (the caller then uses the whole frame). */
int ev_detect_roi(const ev_frame *frame, ev_rect *out);

/* Screen type of a scanner frame: a 2D image (a fan) or a screen without one (M-mode, PW, CW
 * or tissue Doppler spectra: a time-axis strip). Callers that detect the region (classify
 * --auto-roi, echoviewclassify roi=auto, hence the daemon) run this instead of ev_detect_roi and
 * answer EV_OTHER_LABEL for EV_SCREEN_NOT_2D without running the network. */
#define EV_OTHER_LABEL "other"
typedef enum ev_screen_type {
    EV_SCREEN_UNDECIDED = 0, /* too small to tell: nothing is claimed */
    EV_SCREEN_2D,
    EV_SCREEN_NOT_2D,
} ev_screen_type;
/* The rule and its thresholds (set on phantom frames only; docs/ACCURACY.md) are in
 * engine/preprocess.c: no region, too small an image, a filled rectangle or a wide top mean
 * no fan (break_rows is evidence only). */
typedef struct ev_screen_info {
    ev_screen_type type;
    const char *reason; /* a static sentence */
    int region_found;   /* non-zero: roi is ev_detect_roi's region */
    ev_rect roi;
    float area;       /* the region's box / the frame */
    float fill;       /* foreground share of the box */
    float apex_width; /* mean row width over the top tenth of the box's rows / box width */
    float break_rows; /* longest run of rows under a tenth of the box width between rows at
                       * least a fifth as wide, / box height */
} ev_screen_info;
/* EV_OK with *out filled (type UNDECIDED for a frame under 64 pixels a side), EV_ERR_INVALID
 * for a bad frame or out, EV_ERR_NOMEM. */
int ev_detect_screen(const ev_frame *frame, ev_screen_info *out);

#ifdef __cplusplus
}
#endif
#endif
