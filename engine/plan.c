/* plan.c: inference plans: backend selection (auto -> cuda, cpu, reference) and the reference
 * backend, which runs the plain NCHW graph of a batch-sized copy of the model's network. */
#include "ev_private.h"

#include <stdlib.h>
#include <string.h>

static const char *const backend_names[] = {"auto", "reference", "cpu", "cuda"};

const char *ev_backend_name(ev_backend_kind kind)
{
    return (unsigned)kind < 4 ? backend_names[kind] : "?";
}

int ev_backend_parse(const char *name, ev_backend_kind *out)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, backend_names[i]) == 0) {
            *out = (ev_backend_kind)i;
            return 0;
        }
    return -1;
}

static const ev_backend_vtable ev_backend_reference; /* defined below */

static const ev_backend_vtable *backend_vtable(ev_backend_kind kind)
{
    switch (kind) {
    case EV_BACKEND_REFERENCE:
        return &ev_backend_reference;
    case EV_BACKEND_CPU:
        return ev_backend_cpu_vtable();
    case EV_BACKEND_CUDA:
        return ev_cuda_device_count() > 0 ? ev_backend_cuda_vtable() : NULL;
    default:
        return NULL;
    }
}

int ev_backend_available(ev_backend_kind kind)
{
    if (kind == EV_BACKEND_AUTO)
        return 1;
    return backend_vtable(kind) != NULL;
}

int ev_plan_create(const ev_model *model, const ev_plan_options *options, ev_plan **out,
                   ev_error *err)
{
    *out = NULL;
    if (!model)
        return ev_fail(err, EV_ERR_INVALID, "plan: no model");
    ev_plan_options opt = options ? *options : (ev_plan_options){0};
    if (opt.batch <= 0)
        opt.batch = 1;
    if (opt.threads <= 0)
        opt.threads = 1;
    if (opt.batch > 65536 || opt.threads > 1024)
        return ev_fail(err, EV_ERR_INVALID, "plan: batch %d or threads %d out of range", opt.batch,
                       opt.threads);
    ev_backend_kind kind = opt.backend;
    const ev_backend_vtable *vt = NULL;
    if (kind == EV_BACKEND_AUTO) {
        static const ev_backend_kind order[] = {EV_BACKEND_CUDA, EV_BACKEND_CPU,
                                                EV_BACKEND_REFERENCE};
        /* the cuda backend compiles DARTS networks only: a baseline (ResNet18, DenseNet201)
         * runs on the cpu backend, else the reference one */
        for (int i = model->cfg.arch == EV_ARCH_DARTS ? 0 : 1; i < 3 && !vt; i++)
            if ((vt = backend_vtable(order[i])))
                kind = order[i];
    } else if (!(vt = backend_vtable(kind))) {
        if (kind == EV_BACKEND_CUDA)
            return ev_fail(err, EV_ERR_UNSUPPORTED,
                           ev_backend_cuda_vtable() ? "plan: backend cuda: no usable GPU found"
                                                    : "plan: backend cuda is not built in");
        return ev_fail(err, EV_ERR_UNSUPPORTED, "plan: backend %s is not available",
                       ev_backend_name(kind));
    }
    ev_plan *plan = calloc(1, sizeof *plan);
    if (!plan)
        return ev_fail(err, EV_ERR_NOMEM, "plan: out of memory");
    plan->model = model;
    plan->options = opt;
    plan->backend = kind;
    plan->vt = vt;
    int rc = vt->create(plan, err);
    if (rc == EV_ERR_UNSUPPORTED && opt.backend == EV_BACKEND_AUTO && kind == EV_BACKEND_CPU) {
        /* AUTO: a network the cpu backend does not compile runs on the reference backend */
        plan->backend = kind = EV_BACKEND_REFERENCE;
        plan->vt = vt = backend_vtable(kind);
        rc = vt->create(plan, err);
    }
    if (rc) {
        free(plan);
        return rc;
    }
    *out = plan;
    return EV_OK;
}

ev_backend_kind ev_plan_backend(const ev_plan *plan) { return plan->backend; }
int ev_plan_batch(const ev_plan *plan) { return plan->options.batch; }

int ev_plan_run(ev_plan *plan, const float *input, float *logits, ev_error *err)
{
    if (!plan || !input || !logits)
        return ev_fail(err, EV_ERR_INVALID, "plan: NULL argument");
    int rc = plan->vt->run(plan, input, logits, err);
    /* calibration: one division after every backend, so they all report the same confidence */
    const float t = plan->model->temperature;
    if (rc == EV_OK && t != 1.0f) {
        const size_t n = (size_t)plan->options.batch * (size_t)plan->model->num_classes;
        for (size_t i = 0; i < n; i++)
            logits[i] /= t;
    }
    return rc;
}

void ev_plan_free(ev_plan *plan)
{
    if (!plan)
        return;
    plan->vt->destroy(plan);
    free(plan);
}

/* ---- the reference backend ------------------------------------------------------------------ */

static int reference_create(ev_plan *plan, ev_error *err)
{
    ev_net *net;
    int rc = ev_net_create(&plan->model->cfg, plan->options.batch, false, &net, err);
    if (rc)
        return rc;
    if ((rc = ev_net_copy_params(net, plan->model->net, err))) {
        ev_net_free(net);
        return rc;
    }
    plan->impl = net;
    return EV_OK;
}

static int reference_run(ev_plan *plan, const float *input, float *logits, ev_error *err)
{
    ev_net *net = plan->impl;
    int rc = ev_net_forward(net, input, false, err);
    if (rc)
        return rc;
    memcpy(logits, ev_net_logits(net),
           (size_t)net->batch * (size_t)net->cfg.num_classes * sizeof(float));
    return EV_OK;
}

static void reference_destroy(ev_plan *plan) { ev_net_free(plan->impl); }

static const ev_backend_vtable ev_backend_reference = {
    .name = "reference",
    .create = reference_create,
    .run = reference_run,
    .destroy = reference_destroy,
};
