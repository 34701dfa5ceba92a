/* ev_private.h: the structs behind the public handles and the backend table, private to the
 * engine (model.c, plan.c, the backends and the ONNX exporter). Everything outside the engine
 * goes through echoview.h and the accessors of ev_bundle.h. Two rules keep it that way: only
 * targets built with echoview_private_dep (the engine itself, its tests and benchmarks) define
 * EV_ENGINE_PRIVATE, so anything else including this header (or cpu/cpu_internal.h, which
 * includes it) fails to compile; and tests/test_layering.py fails the suite when a module names
 * an engine header outside its allowance (docs/ARCHITECTURE.md). */
#ifndef EV_PRIVATE_H
#define EV_PRIVATE_H

#ifndef EV_ENGINE_PRIVATE
#error "ev_private.h is private to the engine: use echoview.h, ev_bundle.h (docs/ARCHITECTURE.md)"
#endif

#include "ev_bundle.h"

#include <stdint.h>

/* ---- model bundles ------------------------------------------------------------------------- */

struct ev_model {
    char name[128];
    int num_classes;
    char **class_names;
    int input_width, input_height, input_channels;
    float scale, mean[3], std[3];
    ev_net_config cfg;
    ev_net *net; /* batch 1, weights loaded; backends read parameters from here */
    int64_t params, macs;
};

/* ---- backends -------------------------------------------------------------------------------- */

typedef struct ev_backend_vtable {
    const char *name;
    int (*create)(ev_plan *plan, ev_error *err); /* plan->model, options set */
    int (*run)(ev_plan *plan, const float *input, float *logits, ev_error *err);
    void (*destroy)(ev_plan *plan);
} ev_backend_vtable;

struct ev_plan {
    const ev_model *model;
    ev_plan_options options;
    ev_backend_kind backend;
    const ev_backend_vtable *vt;
    void *impl; /* backend state */
};

/* Provided by the cpu backend (cpu/cpu_plan.c) and the cuda backend (cuda/backend_cuda.c) when
 * built, else by backend_none.c; a NULL vtable means "not built". */
const ev_backend_vtable *ev_backend_cpu_vtable(void);
const ev_backend_vtable *ev_backend_cuda_vtable(void);
int ev_cuda_device_count(void);

#endif
