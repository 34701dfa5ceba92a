/* backend_cuda.c: the cuda backend: compiles the model's graph into a list of kernel launches
 * (own kernels from kernels.cu, cuDNN for dense convolutions), uploads folded weights once,
 * captures the whole forward (input copy, kernels, logits copy) as a CUDA graph and replays it
 * on every run.
 *
 * Compilation, in graph terms:
 *   - a CONV2D whose only consumer is a BATCHNORM is folded into it (eval mode: running stats,
 *     eps 1e-5): the BN node becomes one convolution with bias; FactorizedReduce (two convs,
 *     CONCAT, BN) becomes two 1x1 stride-2 convolutions writing the two channel halves;
 *   - RELU, CROP and DROP_PATH (identity at inference) are views: the consumer applies ReLU on
 *     load and reads the cropped window in place;
 *   - the edges of a node sum write into the node's buffer, the first one storing, the others
 *     accumulating; identity edges become an add; `none` edges contribute nothing;
 *   - node sums that a cell concatenates live directly in their channel slice of the cell's
 *     output (NCHW: a channel slice is contiguous per sample; views carry the sample stride);
 *   - global pooling + classifier are one step.
 * Every kept value has its own device buffer for the life of the plan (no liveness reuse yet:
 * the networks are small: 48 MB per frame for the 2-cell DARTS_V2 network at 128 px, C = 16).
 *
 * About 1,200 lines for one job: the compiler's passes share one set of views and storage
 * decisions (what is folded, what is a view, which slice a sum writes), so cutting them into
 * files would turn that state into an interface; the kernels live apart in kernels.cu.
 */
#include "ev_private.h"

#include "cuda_kernels.h"
#include "ev_cuda.h"

#include <cuda_runtime_api.h>
#ifdef EV_CUDA_HAVE_CUDNN
#include "cudnn_loader.h"
#endif

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5
#define WEIGHT_ALIGN 64                         /* floats: 256-byte aligned tensors on the device */
#define CUDNN_WORKSPACE_MAX ((size_t)256 << 20) /* bytes per convolution */

typedef enum step_kind {
    STEP_CONV,      /* dense / grouped direct convolution (or cuDNN) */
    STEP_DEPTHWISE, /* depthwise, plain or dilated */
    STEP_POINTWISE, /* 1x1 (or cuDNN) */
    STEP_POOL,
    STEP_ADD,
    STEP_ZERO,
    STEP_HEAD, /* global average pool + linear */
} step_kind;

typedef struct cuda_step {
    step_kind kind;
    evk_view in, out;
    int kernel, stride, pad, dilation, groups, is_max, accumulate, classes;
    size_t weight_off, bias_off; /* into the weight block; SIZE_MAX when absent */
    const float *weight, *bias;  /* device, resolved after the upload */
    bool cudnn_ok;               /* eligible and prepared for cuDNN */
#ifdef EV_CUDA_HAVE_CUDNN
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    cudnnConvolutionFwdAlgo_t algo;
    size_t workspace;
    void *weight_half; /* fp16 plans: the filter in half for cuDNN */
#endif
} cuda_step;

typedef enum value_kind { VAL_NONE = 0, VAL_VIEW, VAL_ZERO, VAL_DEFERRED } value_kind;

typedef struct node_info {
    bool needed;      /* on the path to the logits */
    int consumers;    /* among needed nodes */
    int consumer;     /* the last consumer seen (the only one when consumers == 1) */
    value_kind kind;  /* what the node's value is during compilation */
    evk_view view;    /* VAL_VIEW */
    bool has_storage; /* storage below is set */
    evk_view storage; /* where the node's producer writes */
    int dest;         /* node whose storage holds this one (-1: own buffer) */
    int dest_coff;    /* channel offset inside dest */
    bool accumulate;  /* add into dest instead of storing */
    bool fused;       /* accumulated into a node sum: no value of its own after a run */
    const char *kernel;
} node_info;

typedef struct cuda_plan {
    int device, batch, classes, in_count;
    bool fp16;
    size_t elem; /* bytes per activation */
    cudaStream_t stream;
    float *host_in, *host_out; /* pinned */
    float *dev_in, *dev_gap, *dev_logits;
    void *dev_in_half;
    void **allocs;
    int num_allocs, cap_allocs;
    cuda_step *steps;
    int num_steps, cap_steps;
    node_info *info;
    int num_nodes;
    float *host_weights;
    size_t num_weights, cap_weights;
    float *dev_weights;
    bool use_graphs, use_cudnn;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
#ifdef EV_CUDA_HAVE_CUDNN
    const ev_cudnn_api *dnn; /* NULL: cuDNN not loaded (ev_cudnn_status() says why) */
    cudnnHandle_t cudnn;
    void *workspace;
    size_t workspace_size;
#endif
    char device_name[320];
    char graph_failure[256]; /* why graph replay is off although it was asked for, or "" */
    char description[768];
} cuda_plan;

static const ev_backend_vtable cuda_vtable;

/* ---- small helpers -------------------------------------------------------------------------- */

static int cuda_fail(ev_error *err, cudaError_t e, const char *what)
{
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls start clean */
    return ev_fail(err, EV_ERR_UNSUPPORTED, "cuda: %s: %s", what, cudaGetErrorString(e));
}

#define CUDA_TRY(call, what)                 \
    do {                                     \
        cudaError_t e_ = (call);             \
        if (e_ != cudaSuccess)               \
            return cuda_fail(err, e_, what); \
    } while (0)

int ev_cuda_device_count(void)
{
    int count = 0;
    /* No driver, no device, a driver too old for this runtime: all are "no GPU". */
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return count > 0 ? count : 0;
}

static int device_alloc(cuda_plan *p, size_t bytes, void **out, ev_error *err)
{
    *out = NULL;
    if (p->num_allocs == p->cap_allocs) {
        int cap = p->cap_allocs ? 2 * p->cap_allocs : 64;
        void **a = realloc(p->allocs, (size_t)cap * sizeof *a);
        if (!a)
            return ev_fail(err, EV_ERR_NOMEM, "cuda: out of host memory");
        p->allocs = a;
        p->cap_allocs = cap;
    }
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return ev_fail(err, EV_ERR_NOMEM, "cuda: cannot allocate %zu bytes on the GPU: %s", bytes,
                       cudaGetErrorString(e));
    }
    p->allocs[p->num_allocs++] = *out;
    return EV_OK;
}

static int push_weights(cuda_plan *p, const float *data, size_t count, size_t *offset,
                        ev_error *err)
{
    size_t start = (p->num_weights + WEIGHT_ALIGN - 1) / WEIGHT_ALIGN * WEIGHT_ALIGN;
    size_t need;
    if (!ev_add_size(start, count, &need))
        return ev_fail(err, EV_ERR_NOMEM, "cuda: weights overflow");
    if (need > p->cap_weights) {
        size_t cap = p->cap_weights ? p->cap_weights : 4096;
        while (cap < need)
            cap *= 2;
        float *w = realloc(p->host_weights, cap * sizeof *w);
        if (!w)
            return ev_fail(err, EV_ERR_NOMEM, "cuda: out of host memory for weights");
        p->host_weights = w;
        p->cap_weights = cap;
    }
    memset(p->host_weights + p->num_weights, 0, (start - p->num_weights) * sizeof(float));
    memcpy(p->host_weights + start, data, count * sizeof(float));
    p->num_weights = need;
    *offset = start;
    return EV_OK;
}

static cuda_step *add_step(cuda_plan *p, step_kind kind, ev_error *err)
{
    if (p->num_steps == p->cap_steps) {
        int cap = p->cap_steps ? 2 * p->cap_steps : 64;
        cuda_step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        if (!s) {
            ev_fail(err, EV_ERR_NOMEM, "cuda: out of host memory");
            return NULL;
        }
        p->steps = s;
        p->cap_steps = cap;
    }
    cuda_step *s = &p->steps[p->num_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->weight_off = s->bias_off = SIZE_MAX;
    s->dilation = 1;
    s->groups = 1;
    return s;
}

static evk_view contiguous_view(void *data, ev_shape s)
{
    evk_view v = {0};
    v.data = data;
    v.c = s.c;
    v.h = s.h;
    v.w = s.w;
    v.hstride = s.w;
    v.cstride = (long long)s.h * s.w;
    v.nstride = (long long)s.c * s.h * s.w;
    return v;
}

static evk_view channel_slice(const cuda_plan *p, evk_view v, int offset, int channels)
{
    v.data = (char *)v.data + (size_t)offset * (size_t)v.cstride * p->elem;
    v.c = channels;
    v.relu = 0;
    return v;
}

/* ---- compilation ---------------------------------------------------------------------------- */

typedef struct compiler {
    cuda_plan *p;
    const ev_graph *g;
    ev_error *err;
} compiler;

static const ev_node *node_at(const compiler *cc, int i) { return &cc->g->nodes[i]; }

static int unsupported(compiler *cc, int i, const char *why)
{
    return ev_fail(cc->err, EV_ERR_UNSUPPORTED, "cuda: node %d (%s %s): %s", i,
                   ev_op_name(node_at(cc, i)->op), node_at(cc, i)->tag, why);
}

/* A CONCAT that is the middle of a FactorizedReduce: convs in, one BN out. */
static bool is_fr_concat(const compiler *cc, int i)
{
    const ev_node *n = node_at(cc, i);
    const node_info *ni = &cc->p->info[i];
    if (n->op != EV_OP_CONCAT || ni->consumers != 1 ||
        node_at(cc, ni->consumer)->op != EV_OP_BATCHNORM)
        return false;
    for (int k = 0; k < n->num_inputs; k++) {
        const ev_node *in = node_at(cc, n->inputs[k]);
        if (in->op != EV_OP_CONV2D || cc->p->info[n->inputs[k]].consumers != 1)
            return false;
    }
    return true;
}

/* A conv whose output only feeds a BN (directly or through a FactorizedReduce concat). */
static bool conv_folds(const compiler *cc, int i)
{
    const node_info *ni = &cc->p->info[i];
    if (node_at(cc, i)->op != EV_OP_CONV2D || ni->consumers != 1)
        return false;
    const ev_node *c = node_at(cc, ni->consumer);
    return c->op == EV_OP_BATCHNORM || is_fr_concat(cc, ni->consumer);
}

/* Follows identity DROP_PATH nodes that only feed the next node. */
static int resolve_alias(const compiler *cc, int i)
{
    while (node_at(cc, i)->op == EV_OP_DROP_PATH && cc->p->info[i].consumers == 1)
        i = node_at(cc, i)->inputs[0];
    return i;
}

/* The buffer (or slice) node i's producer writes into, allocating it on first use. */
static int storage_of(compiler *cc, int i, evk_view *out)
{
    node_info *ni = &cc->p->info[i];
    if (!ni->has_storage) {
        const ev_shape s = node_at(cc, i)->shape;
        if (ni->dest >= 0) {
            evk_view d;
            int rc = storage_of(cc, ni->dest, &d);
            if (rc)
                return rc;
            if (d.h != s.h || d.w != s.w || ni->dest_coff + s.c > d.c)
                return unsupported(cc, i, "placement does not match its destination");
            ni->storage = channel_slice(cc->p, d, ni->dest_coff, s.c);
        } else {
            size_t count = ev_shape_numel(s) / (size_t)s.n, bytes;
            void *data;
            if (!ev_mul_size(count, (size_t)cc->p->batch, &count) ||
                !ev_mul_size(count, cc->p->elem, &bytes))
                return ev_fail(cc->err, EV_ERR_NOMEM, "cuda: activation size overflows");
            int rc = device_alloc(cc->p, bytes, &data, cc->err);
            if (rc)
                return rc;
            ni->storage = contiguous_view(data, s);
        }
        ni->has_storage = true;
    }
    *out = ni->storage;
    return EV_OK;
}

/* The value of node i as a view; a `none` value used where a tensor is needed gets a zero
 * buffer. */
static int view_of(compiler *cc, int i, evk_view *out)
{
    node_info *ni = &cc->p->info[i];
    if (ni->kind == VAL_ZERO) {
        int rc = storage_of(cc, i, &ni->view);
        if (rc)
            return rc;
        cuda_step *st = add_step(cc->p, STEP_ZERO, cc->err);
        if (!st)
            return EV_ERR_NOMEM;
        st->out = ni->view;
        ni->kind = VAL_VIEW;
    }
    if (ni->kind != VAL_VIEW)
        return unsupported(cc, i, "value is not available as a tensor");
    *out = ni->view;
    return EV_OK;
}

/* BN(conv(x)) for output channels [c0, c0 + cout) of the BN: W' = W * s, b' = beta - mean * s,
 * s = gamma / sqrt(var + eps), in double. */
static int fold_bn(compiler *cc, const ev_node *conv, const ev_node *bn, int c0, size_t *w_off,
                   size_t *b_off)
{
    const ev_param *w = conv->params[0];
    const int cout = w->shape[0];
    const size_t per = w->numel / (size_t)cout;
    float *fw = malloc(w->numel * sizeof(float));
    float *fb = malloc((size_t)cout * sizeof(float));
    int rc = EV_OK;
    if (!fw || !fb) {
        rc = ev_fail(cc->err, EV_ERR_NOMEM, "cuda: out of host memory");
        goto out;
    }
    const float *gamma = bn->params[0] ? bn->params[0]->data : NULL;
    const float *beta = bn->params[1] ? bn->params[1]->data : NULL;
    const float *mean = bn->params[2]->data, *var = bn->params[3]->data;
    for (int co = 0; co < cout; co++) {
        const int c = c0 + co;
        const double scale = (gamma ? (double)gamma[c] : 1.0) / sqrt((double)var[c] + BN_EPS);
        for (size_t j = 0; j < per; j++)
            fw[(size_t)co * per + j] = (float)((double)w->data[(size_t)co * per + j] * scale);
        fb[co] = (float)((beta ? (double)beta[c] : 0.0) - (double)mean[c] * scale);
    }
    if (!(rc = push_weights(cc->p, fw, w->numel, w_off, cc->err)))
        rc = push_weights(cc->p, fb, (size_t)cout, b_off, cc->err);
out:
    free(fw);
    free(fb);
    return rc;
}

/* One convolution step: in -> out, weights already pushed. */
static int emit_conv(compiler *cc, const ev_node *conv, evk_view in, evk_view out, size_t w_off,
                     size_t b_off, bool accumulate)
{
    step_kind kind = STEP_CONV;
    if (conv->groups == 1 && conv->kernel == 1 && conv->pad == 0 && conv->dilation == 1)
        kind = STEP_POINTWISE;
    else if (conv->groups > 1 && conv->groups == in.c && conv->groups == out.c)
        kind = STEP_DEPTHWISE;
    cuda_step *st = add_step(cc->p, kind, cc->err);
    if (!st)
        return EV_ERR_NOMEM;
    st->in = in;
    st->out = out;
    st->kernel = conv->kernel;
    st->stride = conv->stride;
    st->pad = conv->pad;
    st->dilation = conv->dilation;
    st->groups = conv->groups;
    st->weight_off = w_off;
    st->bias_off = b_off;
    st->accumulate = accumulate;
    /* cuDNN cannot apply ReLU on load; those convs (preprocess, FactorizedReduce) stay ours */
    st->cudnn_ok = conv->groups == 1 && !in.relu;
    return EV_OK;
}

static const char *conv_label(const ev_node *conv)
{
    if (conv->groups > 1)
        return conv->dilation > 1 ? "depthwise_dilated" : "depthwise";
    return conv->kernel == 1 ? "pointwise" : "conv";
}

static void mark_needed(compiler *cc)
{
    const ev_graph *g = cc->g;
    node_info *info = cc->p->info;
    info[g->logits].needed = true;
    for (int i = g->num_nodes - 1; i >= 0; i--) {
        info[i].dest = -1;
        if (!info[i].needed)
            continue;
        for (int k = 0; k < g->nodes[i].num_inputs; k++) {
            int in = g->nodes[i].inputs[k];
            info[in].needed = true;
            info[in].consumers++;
            info[in].consumer = i;
        }
    }
}

/* Decides, last node first, which values are written straight into a later node's buffer:
 * node sums into their concat slice, edge outputs into their node sum. */
static void place(compiler *cc)
{
    const ev_graph *g = cc->g;
    node_info *info = cc->p->info;
    for (int i = g->num_nodes - 1; i >= 0; i--) {
        const ev_node *n = &g->nodes[i];
        if (!info[i].needed)
            continue;
        if (n->op == EV_OP_CONCAT && !is_fr_concat(cc, i)) {
            int coff = 0;
            for (int k = 0; k < n->num_inputs; k++) {
                int src = n->inputs[k];
                if (g->nodes[src].op == EV_OP_ADD && info[src].dest < 0) {
                    info[src].dest = i;
                    info[src].dest_coff = coff;
                }
                coff += g->nodes[src].shape.c;
            }
        } else if (n->op == EV_OP_ADD) {
            int first = INT_MAX;
            for (int k = 0; k < n->num_inputs; k++) {
                int src = resolve_alias(cc, n->inputs[k]);
                const ev_node *s = &g->nodes[src];
                bool producer =
                    s->op == EV_OP_MAXPOOL || s->op == EV_OP_AVGPOOL ||
                    (s->op == EV_OP_BATCHNORM && (g->nodes[s->inputs[0]].op == EV_OP_CONV2D ||
                                                  g->nodes[s->inputs[0]].op == EV_OP_CONCAT));
                if (!producer || info[src].consumers != 1 || info[src].dest >= 0 ||
                    s->shape.c != n->shape.c || s->shape.h != n->shape.h ||
                    s->shape.w != n->shape.w)
                    continue;
                info[src].dest = i;
                info[src].dest_coff = 0;
                info[src].fused = true;
                info[src].accumulate = true;
                if (src < first)
                    first = src;
            }
            if (first != INT_MAX)
                info[first].accumulate = false; /* emitted first: it stores */
        }
    }
}

static int compile_node(compiler *cc, int i)
{
    cuda_plan *p = cc->p;
    const ev_graph *g = cc->g;
    const ev_node *n = &g->nodes[i];
    node_info *ni = &p->info[i];
    const int x = n->num_inputs ? n->inputs[0] : -1;
    evk_view in, out;
    int rc;
    switch (n->op) {
    case EV_OP_INPUT:
        ni->view = contiguous_view(p->fp16 ? p->dev_in_half : (void *)p->dev_in, n->shape);
        ni->kind = VAL_VIEW;
        ni->kernel = "input";
        return EV_OK;
    case EV_OP_RELU:
    case EV_OP_DROP_PATH:
        *ni = (node_info){.needed = ni->needed,
                          .consumers = ni->consumers,
                          .consumer = ni->consumer,
                          .dest = -1,
                          .kind = p->info[x].kind,
                          .view = p->info[x].view};
        if (n->op == EV_OP_RELU)
            ni->view.relu = 1;
        return EV_OK;
    case EV_OP_CROP:
        if ((rc = view_of(cc, x, &in)))
            return rc;
        in.data = (char *)in.data + (size_t)(n->crop * in.hstride + n->crop) * p->elem;
        in.h -= n->crop;
        in.w -= n->crop;
        if (in.h != n->shape.h || in.w != n->shape.w)
            return unsupported(cc, i, "unexpected crop shape");
        ni->view = in;
        ni->kind = VAL_VIEW;
        return EV_OK;
    case EV_OP_CONV2D: {
        if (conv_folds(cc, i)) {
            ni->kind = VAL_DEFERRED;
            return EV_OK;
        }
        size_t w_off;
        if ((rc = view_of(cc, x, &in)) || (rc = storage_of(cc, i, &out)) ||
            (rc = push_weights(p, n->params[0]->data, n->params[0]->numel, &w_off, cc->err)) ||
            (rc = emit_conv(cc, n, in, out, w_off, SIZE_MAX, false)))
            return rc;
        break;
    }
    case EV_OP_BATCHNORM: {
        const ev_node *src = &g->nodes[x];
        if ((rc = storage_of(cc, i, &out)))
            return rc;
        if (src->op == EV_OP_CONV2D && p->info[x].kind == VAL_DEFERRED) {
            size_t w_off, b_off;
            if ((rc = view_of(cc, src->inputs[0], &in)) ||
                (rc = fold_bn(cc, src, n, 0, &w_off, &b_off)) ||
                (rc = emit_conv(cc, src, in, out, w_off, b_off, ni->accumulate)))
                return rc;
            ni->kernel = src->cell < 0 ? "stem" : src->kernel == 1 ? "pointwise_bn" : "conv_bn";
        } else if (src->op == EV_OP_CONCAT && p->info[x].kind == VAL_DEFERRED) {
            int coff = 0;
            for (int k = 0; k < src->num_inputs; k++) {
                const ev_node *conv = &g->nodes[src->inputs[k]];
                size_t w_off, b_off;
                if ((rc = view_of(cc, conv->inputs[0], &in)) ||
                    (rc = fold_bn(cc, conv, n, coff, &w_off, &b_off)) ||
                    (rc = emit_conv(cc, conv, in, channel_slice(p, out, coff, conv->shape.c), w_off,
                                    b_off, ni->accumulate)))
                    return rc;
                coff += conv->shape.c;
            }
            ni->kernel = "factorized_reduce";
        } else {
            return unsupported(cc, i, "batch norm without a preceding convolution");
        }
        break;
    }
    case EV_OP_MAXPOOL:
    case EV_OP_AVGPOOL: {
        if ((rc = view_of(cc, x, &in)) || (rc = storage_of(cc, i, &out)))
            return rc;
        cuda_step *st = add_step(p, STEP_POOL, cc->err);
        if (!st)
            return EV_ERR_NOMEM;
        st->in = in;
        st->out = out;
        st->kernel = n->kernel;
        st->stride = n->stride;
        st->pad = n->pad;
        st->is_max = n->op == EV_OP_MAXPOOL;
        st->accumulate = ni->accumulate;
        ni->kernel = st->is_max ? "max_pool" : "avg_pool";
        break;
    }
    case EV_OP_ZERO:
        ni->kind = VAL_ZERO;
        return EV_OK;
    case EV_OP_ADD: {
        if ((rc = storage_of(cc, i, &out)))
            return rc;
        bool written = false;
        for (int k = 0; k < n->num_inputs; k++) {
            int src = resolve_alias(cc, n->inputs[k]);
            if (p->info[src].fused && p->info[src].dest == i)
                written = true; /* already emitted: producers come before their sum */
        }
        for (int k = 0; k < n->num_inputs; k++) {
            int src = resolve_alias(cc, n->inputs[k]);
            if ((p->info[src].fused && p->info[src].dest == i) ||
                p->info[n->inputs[k]].kind == VAL_ZERO)
                continue;
            if ((rc = view_of(cc, n->inputs[k], &in)))
                return rc;
            cuda_step *st = add_step(p, STEP_ADD, cc->err);
            if (!st)
                return EV_ERR_NOMEM;
            st->in = in;
            st->out = out;
            st->accumulate = written;
            written = true;
        }
        if (!written) {
            cuda_step *st = add_step(p, STEP_ZERO, cc->err);
            if (!st)
                return EV_ERR_NOMEM;
            st->out = out;
        }
        ni->kernel = "node_sum";
        break;
    }
    case EV_OP_CONCAT: {
        if (is_fr_concat(cc, i)) {
            ni->kind = VAL_DEFERRED;
            return EV_OK;
        }
        if ((rc = storage_of(cc, i, &out)))
            return rc;
        int coff = 0;
        for (int k = 0; k < n->num_inputs; k++) {
            int src = n->inputs[k];
            int c = g->nodes[src].shape.c;
            if (!(p->info[src].dest == i && p->info[src].dest_coff == coff)) {
                /* not written in place (a cell input, or a state concatenated twice) */
                if ((rc = view_of(cc, src, &in)))
                    return rc;
                cuda_step *st = add_step(p, STEP_ADD, cc->err);
                if (!st)
                    return EV_ERR_NOMEM;
                st->in = in;
                st->out = channel_slice(p, out, coff, c);
            }
            coff += c;
        }
        ni->kernel = "concat";
        break;
    }
    case EV_OP_GAP:
        if (ni->consumers != 1 || g->nodes[ni->consumer].op != EV_OP_LINEAR)
            return unsupported(cc, i, "global pooling must feed the classifier");
        ni->kind = VAL_DEFERRED;
        return EV_OK;
    case EV_OP_LINEAR: {
        if (i != g->logits || g->nodes[x].op != EV_OP_GAP)
            return unsupported(cc, i, "only the classifier after global pooling is supported");
        if ((rc = view_of(cc, g->nodes[x].inputs[0], &in)))
            return rc;
        cuda_step *st = add_step(p, STEP_HEAD, cc->err);
        if (!st)
            return EV_ERR_NOMEM;
        st->in = in;
        st->classes = n->shape.c;
        if ((rc = push_weights(p, n->params[0]->data, n->params[0]->numel, &st->weight_off,
                               cc->err)))
            return rc;
        if (n->params[1] &&
            (rc = push_weights(p, n->params[1]->data, n->params[1]->numel, &st->bias_off, cc->err)))
            return rc;
        void *gap;
        if ((rc = device_alloc(p, (size_t)p->batch * (size_t)in.c * sizeof(float), &gap, cc->err)))
            return rc;
        p->dev_gap = gap;
        ni->kernel = "head";
        return EV_OK;
    }
    default:
        return unsupported(cc, i, "op not supported by the cuda backend");
    }
    ni->view = out;
    ni->kind = VAL_VIEW;
    if (ni->fused)
        ni->kernel = NULL;
    else if (!ni->kernel)
        ni->kernel = conv_label(n);
    return EV_OK;
}

static int compile_graph(cuda_plan *p, const ev_net *net, ev_error *err)
{
    compiler cc = {.p = p, .g = &net->graph, .err = err};
    p->num_nodes = net->graph.num_nodes;
    p->info = calloc((size_t)p->num_nodes, sizeof *p->info);
    if (!p->info)
        return ev_fail(err, EV_ERR_NOMEM, "cuda: out of host memory");
    mark_needed(&cc);
    place(&cc);
    for (int i = 0; i < net->graph.num_nodes; i++) {
        if (!p->info[i].needed)
            continue;
        int rc = compile_node(&cc, i);
        if (rc)
            return rc;
    }
    return EV_OK;
}

/* ---- cuDNN ---------------------------------------------------------------------------------- */

#ifdef EV_CUDA_HAVE_CUDNN
static void cudnn_release(const cuda_plan *p, cuda_step *st)
{
    if (st->x_desc)
        p->dnn->cudnnDestroyTensorDescriptor(st->x_desc);
    if (st->y_desc)
        p->dnn->cudnnDestroyTensorDescriptor(st->y_desc);
    if (st->w_desc)
        p->dnn->cudnnDestroyFilterDescriptor(st->w_desc);
    if (st->conv_desc)
        p->dnn->cudnnDestroyConvolutionDescriptor(st->conv_desc);
    st->x_desc = st->y_desc = NULL;
    st->w_desc = NULL;
    st->conv_desc = NULL;
}

static bool fits_int(long long v) { return v >= 0 && v <= INT_MAX; }

/* Descriptors and an algorithm for one convolution; false leaves the step on our kernels. */
static bool cudnn_prepare(cuda_plan *p, cuda_step *st)
{
    const cudnnDataType_t type = p->fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    const evk_view *x = &st->in, *y = &st->out;
    if (!fits_int(x->nstride) || !fits_int(y->nstride) || !fits_int(x->cstride) ||
        !fits_int(y->cstride))
        return false;
    if (p->dnn->cudnnCreateTensorDescriptor(&st->x_desc) ||
        p->dnn->cudnnCreateTensorDescriptor(&st->y_desc) ||
        p->dnn->cudnnCreateFilterDescriptor(&st->w_desc) ||
        p->dnn->cudnnCreateConvolutionDescriptor(&st->conv_desc))
        goto fail;
    if (p->dnn->cudnnSetTensor4dDescriptorEx(st->x_desc, type, p->batch, x->c, x->h, x->w,
                                             (int)x->nstride, (int)x->cstride, (int)x->hstride,
                                             1) ||
        p->dnn->cudnnSetTensor4dDescriptorEx(st->y_desc, type, p->batch, y->c, y->h, y->w,
                                             (int)y->nstride, (int)y->cstride, (int)y->hstride,
                                             1) ||
        p->dnn->cudnnSetFilter4dDescriptor(st->w_desc, type, CUDNN_TENSOR_NCHW, y->c, x->c,
                                           st->kernel, st->kernel) ||
        p->dnn->cudnnSetConvolution2dDescriptor(st->conv_desc, st->pad, st->pad, st->stride,
                                                st->stride, st->dilation, st->dilation,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT))
        goto fail;
    /* fp32 must stay fp32: FMA math only (no TF32, which would miss the 1e-4 tolerance) */
    const cudnnMathType_t math = p->fp16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    if (p->dnn->cudnnSetConvolutionMathType(st->conv_desc, math))
        goto fail;
    int on, oc, oh, ow;
    if (p->dnn->cudnnGetConvolution2dForwardOutputDim(st->conv_desc, st->x_desc, st->w_desc, &on,
                                                      &oc, &oh, &ow) ||
        on != p->batch || oc != y->c || oh != y->h || ow != y->w)
        goto fail;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    if (p->dnn->cudnnGetConvolutionForwardAlgorithm_v7(
            p->cudnn, st->x_desc, st->w_desc, st->conv_desc, st->y_desc,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf))
        goto fail;
    for (int k = 0; k < found; k++) {
        if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > CUDNN_WORKSPACE_MAX)
            continue;
        if (!p->fp16 && (perf[k].mathType == CUDNN_TENSOR_OP_MATH ||
                         perf[k].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
            continue;
        size_t ws = 0;
        if (p->dnn->cudnnGetConvolutionForwardWorkspaceSize(
                p->cudnn, st->x_desc, st->w_desc, st->conv_desc, st->y_desc, perf[k].algo, &ws) ||
            ws > CUDNN_WORKSPACE_MAX)
            continue;
        st->algo = perf[k].algo;
        st->workspace = ws;
        if (ws > p->workspace_size)
            p->workspace_size = ws;
        return true;
    }
fail:
    cudnn_release(p, st);
    return false;
}

static int cudnn_setup(cuda_plan *p, ev_error *err)
{
    p->dnn = ev_cudnn_get();
    if (!p->dnn)
        return EV_OK; /* no libcudnn here: our kernels do everything */
    if (p->dnn->cudnnCreate(&p->cudnn) != CUDNN_STATUS_SUCCESS) {
        p->cudnn = NULL; /* cuDNN missing or unusable here: our kernels do everything */
        return EV_OK;
    }
    if (p->dnn->cudnnSetStream(p->cudnn, p->stream) != CUDNN_STATUS_SUCCESS) {
        p->dnn->cudnnDestroy(p->cudnn);
        p->cudnn = NULL;
        return EV_OK;
    }
    int usable = 0;
    for (int i = 0; i < p->num_steps; i++) {
        cuda_step *st = &p->steps[i];
        if (!st->cudnn_ok)
            continue;
        st->cudnn_ok = cudnn_prepare(p, st);
        if (!st->cudnn_ok)
            continue;
        usable++;
        if (p->fp16) {
            size_t count =
                (size_t)st->out.c * (size_t)st->in.c * (size_t)st->kernel * (size_t)st->kernel;
            int rc = device_alloc(p, count * 2, &st->weight_half, err);
            if (rc)
                return rc;
            CUDA_TRY(evk_float_to_half(p->stream, st->weight, st->weight_half, (long long)count),
                     "converting weights to half");
        }
    }
    if (p->workspace_size) {
        int rc = device_alloc(p, p->workspace_size, &p->workspace, err);
        if (rc)
            return rc;
    }
    CUDA_TRY(cudaStreamSynchronize(p->stream), "preparing cuDNN weights");
    p->use_cudnn = usable > 0;
    return EV_OK;
}
#endif

/* ---- recording and running ---------------------------------------------------------------- */

static int run_step(cuda_plan *p, const cuda_step *st, ev_error *err)
{
    const int half = p->fp16, n = p->batch;
    cudaStream_t s = p->stream;
    int e = 0;
#ifdef EV_CUDA_HAVE_CUDNN
    if (p->use_cudnn && st->cudnn_ok) {
        const float alpha = 1.0f, beta = st->accumulate ? 1.0f : 0.0f;
        cudnnStatus_t cs = p->dnn->cudnnConvolutionForward(
            p->cudnn, &alpha, st->x_desc, st->in.data, st->w_desc,
            half ? st->weight_half : (const void *)st->weight, st->conv_desc, st->algo,
            p->workspace, st->workspace, &beta, st->y_desc, st->out.data);
        if (cs != CUDNN_STATUS_SUCCESS)
            return ev_fail(err, EV_ERR_UNSUPPORTED, "cuda: cuDNN convolution: %s",
                           p->dnn->cudnnGetErrorString(cs));
        if (st->bias && (e = evk_bias_add(s, half, n, st->out, st->bias)))
            return cuda_fail(err, (cudaError_t)e, "bias kernel");
        return EV_OK;
    }
#endif
    switch (st->kind) {
    case STEP_CONV:
        e = evk_conv_direct(s, half, n, st->in, st->out, st->weight, st->bias, st->kernel,
                            st->stride, st->pad, st->dilation, st->groups, st->accumulate);
        break;
    case STEP_DEPTHWISE:
        e = evk_depthwise(s, half, n, st->in, st->out, st->weight, st->bias, st->kernel, st->stride,
                          st->pad, st->dilation, st->accumulate);
        break;
    case STEP_POINTWISE:
        e = evk_pointwise(s, half, n, st->in, st->out, st->weight, st->bias, st->stride,
                          st->accumulate);
        break;
    case STEP_POOL:
        e = evk_pool(s, half, n, st->in, st->out, st->kernel, st->stride, st->pad, st->is_max,
                     st->accumulate);
        break;
    case STEP_ADD:
        e = evk_add(s, half, n, st->in, st->out, st->accumulate);
        break;
    case STEP_ZERO:
        e = evk_fill_zero(s, half, n, st->out);
        break;
    case STEP_HEAD:
        e = evk_gap_linear(s, half, n, st->in, p->dev_gap, st->weight, st->bias, st->classes,
                           p->dev_logits);
        break;
    }
    if (e)
        return cuda_fail(err, (cudaError_t)e, "kernel launch");
    return EV_OK;
}

/* Everything one run does, issued on the plan's stream (captured into the graph, or direct). */
static int record(cuda_plan *p, ev_error *err)
{
    const size_t in_bytes = (size_t)p->in_count * sizeof(float);
    CUDA_TRY(cudaMemcpyAsync(p->dev_in, p->host_in, in_bytes, cudaMemcpyHostToDevice, p->stream),
             "input copy");
    if (p->fp16)
        CUDA_TRY(evk_float_to_half(p->stream, p->dev_in, p->dev_in_half, p->in_count),
                 "input conversion");
    for (int i = 0; i < p->num_steps; i++) {
        int rc = run_step(p, &p->steps[i], err);
        if (rc)
            return rc;
    }
    CUDA_TRY(cudaMemcpyAsync(p->host_out, p->dev_logits,
                             (size_t)p->batch * (size_t)p->classes * sizeof(float),
                             cudaMemcpyDeviceToHost, p->stream),
             "logits copy");
    return EV_OK;
}

static void drop_graph(cuda_plan *p)
{
    if (p->exec)
        cudaGraphExecDestroy(p->exec);
    if (p->graph)
        cudaGraphDestroy(p->graph);
    p->exec = NULL;
    p->graph = NULL;
}

static int capture(cuda_plan *p, ev_error *err)
{
    drop_graph(p);
    CUDA_TRY(cudaStreamBeginCapture(p->stream, cudaStreamCaptureModeRelaxed), "begin capture");
    int rc = record(p, err);
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(p->stream, &graph);
    if (rc || e != cudaSuccess) {
        if (graph)
            cudaGraphDestroy(graph);
        (void)cudaGetLastError();
        return rc ? rc : cuda_fail(err, e, "stream capture");
    }
    p->graph = graph;
    e = cudaGraphInstantiate(&p->exec, graph, 0);
    if (e != cudaSuccess) {
        p->exec = NULL;
        drop_graph(p);
        return cuda_fail(err, e, "graph instantiation");
    }
    return EV_OK;
}

static int run_eager(cuda_plan *p, ev_error *err)
{
    int rc = record(p, err);
    if (rc) {
        (void)cudaStreamSynchronize(p->stream);
        return rc;
    }
    CUDA_TRY(cudaStreamSynchronize(p->stream), "forward");
    return EV_OK;
}

/* Runs once directly (loads every module, checks cuDNN really works here), then captures. A
 * cuDNN failure at either point drops cuDNN for this plan rather than failing the plan. */
static int prepare_execution(cuda_plan *p, ev_error *err)
{
    int rc = run_eager(p, err);
    if (rc && p->use_cudnn) {
        p->use_cudnn = false;
        rc = run_eager(p, err);
    }
    if (rc)
        return rc;
    if (!p->use_graphs)
        return EV_OK;
    rc = capture(p, err);
    if (rc && p->use_cudnn) {
        p->use_cudnn = false;
        rc = capture(p, err);
    }
    if (rc) {
        /* The eager forward works, so a driver that cannot capture or instantiate this graph
         * costs launch overhead, not the plan: run eagerly and say so in the description. */
        snprintf(p->graph_failure, sizeof p->graph_failure, "%s", err ? err->message : "");
        p->use_graphs = false;
        rc = EV_OK;
    }
    return rc;
}

static void describe(cuda_plan *p)
{
    int cudnn_steps = 0;
    for (int i = 0; i < p->num_steps; i++)
        cudnn_steps += p->use_cudnn && p->steps[i].cudnn_ok;
    snprintf(p->description, sizeof p->description,
             "cuda: device %d (%s), %s, batch %d, %d steps (%d on cuDNN), %zu weights, graph "
             "replay %s%s%s%s",
             p->device, p->device_name, p->fp16 ? "fp16" : "fp32", p->batch, p->num_steps,
             cudnn_steps, p->num_weights, p->use_graphs && p->exec ? "on" : "off",
             p->graph_failure[0] ? " (capture failed: " : "", p->graph_failure,
             p->graph_failure[0] ? ")" : "");
}

static void cuda_destroy(ev_plan *plan)
{
    cuda_plan *p = plan->impl;
    if (!p)
        return;
    cudaSetDevice(p->device);
    if (p->stream)
        cudaStreamSynchronize(p->stream);
    drop_graph(p);
#ifdef EV_CUDA_HAVE_CUDNN
    for (int i = 0; i < p->num_steps; i++)
        cudnn_release(p, &p->steps[i]);
    if (p->cudnn)
        p->dnn->cudnnDestroy(p->cudnn);
#endif
    for (int i = 0; i < p->num_allocs; i++)
        cudaFree(p->allocs[i]);
    if (p->host_in)
        cudaFreeHost(p->host_in);
    if (p->host_out)
        cudaFreeHost(p->host_out);
    if (p->stream)
        cudaStreamDestroy(p->stream);
    (void)cudaGetLastError();
    free(p->allocs);
    free(p->steps);
    free(p->info);
    free(p->host_weights);
    free(p);
    plan->impl = NULL;
}

static int cuda_create(ev_plan *plan, ev_error *err)
{
    const ev_model *model = plan->model;
    const ev_net *net = model->net;
    const int devices = ev_cuda_device_count();
    if (plan->options.gpu_id < 0 || plan->options.gpu_id >= devices)
        return ev_fail(err, EV_ERR_INVALID, "cuda: gpu %d does not exist (%d visible)",
                       plan->options.gpu_id, devices);
    cuda_plan *p = calloc(1, sizeof *p);
    if (!p)
        return ev_fail(err, EV_ERR_NOMEM, "cuda: out of host memory");
    plan->impl = p;
    p->device = plan->options.gpu_id;
    p->batch = plan->options.batch;
    p->fp16 = plan->options.fp16 != 0;
    p->elem = p->fp16 ? 2 : 4;
    p->classes = net->cfg.num_classes;
    p->use_graphs = true;
    int rc;
    cudaError_t e;
    const ev_shape in = net->graph.nodes[net->graph.input].shape;
    size_t in_count = (size_t)in.c * (size_t)in.h * (size_t)in.w * (size_t)p->batch;
    if (in_count > (size_t)LLONG_MAX / 8 || in_count > (size_t)INT_MAX) {
        rc = ev_fail(err, EV_ERR_NOMEM, "cuda: input of %zu values is too large", in_count);
        goto fail;
    }
    p->in_count = (int)in_count;

#define STEP_TRY(call, what)               \
    do {                                   \
        if ((e = (call)) != cudaSuccess) { \
            rc = cuda_fail(err, e, what);  \
            goto fail;                     \
        }                                  \
    } while (0)

    STEP_TRY(cudaSetDevice(p->device), "selecting the device");
    struct cudaDeviceProp prop;
    STEP_TRY(cudaGetDeviceProperties(&prop, p->device), "device properties");
    snprintf(p->device_name, sizeof p->device_name, "%s, sm_%d%d", prop.name, prop.major,
             prop.minor);
    STEP_TRY(cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking), "stream");
    STEP_TRY(cudaHostAlloc((void **)&p->host_in, in_count * sizeof(float), cudaHostAllocDefault),
             "pinned input buffer");
    STEP_TRY(cudaHostAlloc((void **)&p->host_out,
                           (size_t)p->batch * (size_t)p->classes * sizeof(float),
                           cudaHostAllocDefault),
             "pinned output buffer");
    memset(p->host_in, 0, in_count * sizeof(float));
    void *buf;
    if ((rc = device_alloc(p, in_count * sizeof(float), &buf, err)))
        goto fail;
    p->dev_in = buf;
    if (p->fp16 && (rc = device_alloc(p, in_count * 2, &p->dev_in_half, err)))
        goto fail;
    if ((rc = device_alloc(p, (size_t)p->batch * (size_t)p->classes * sizeof(float), &buf, err)))
        goto fail;
    p->dev_logits = buf;

    if ((rc = compile_graph(p, net, err)))
        goto fail;

    /* weights: one upload, then pointers */
    if ((rc = device_alloc(p, p->num_weights * sizeof(float), &buf, err)))
        goto fail;
    p->dev_weights = buf;
    /* On the plan's stream, then waited for: a plain cudaMemcpy from pageable memory may return
     * before its DMA lands, and this stream does not wait for the legacy default stream
     * (cudaStreamNonBlocking), so the fp16 conversion and the first run could read stale
     * weights. */
    STEP_TRY(cudaMemcpyAsync(p->dev_weights, p->host_weights, p->num_weights * sizeof(float),
                             cudaMemcpyHostToDevice, p->stream),
             "weight upload");
    STEP_TRY(cudaStreamSynchronize(p->stream), "weight upload");
    for (int i = 0; i < p->num_steps; i++) {
        cuda_step *st = &p->steps[i];
        st->weight = st->weight_off != SIZE_MAX ? p->dev_weights + st->weight_off : NULL;
        st->bias = st->bias_off != SIZE_MAX ? p->dev_weights + st->bias_off : NULL;
    }
#ifdef EV_CUDA_HAVE_CUDNN
    if ((rc = cudnn_setup(p, err)))
        goto fail;
#endif
    if ((rc = prepare_execution(p, err)))
        goto fail;
    describe(p);
    return EV_OK;
#undef STEP_TRY
fail:
    cuda_destroy(plan);
    return rc;
}

static int cuda_run(ev_plan *plan, const float *input, float *logits, ev_error *err)
{
    cuda_plan *p = plan->impl;
    CUDA_TRY(cudaSetDevice(p->device), "selecting the device");
    memcpy(p->host_in, input, (size_t)p->in_count * sizeof(float));
    if (p->use_graphs && p->exec) {
        CUDA_TRY(cudaGraphLaunch(p->exec, p->stream), "graph launch");
        CUDA_TRY(cudaStreamSynchronize(p->stream), "forward");
    } else {
        int rc = run_eager(p, err);
        if (rc)
            return rc;
    }
    memcpy(logits, p->host_out, (size_t)p->batch * (size_t)p->classes * sizeof(float));
    return EV_OK;
}

static const ev_backend_vtable cuda_vtable = {
    .name = "cuda",
    .create = cuda_create,
    .run = cuda_run,
    .destroy = cuda_destroy,
};

const ev_backend_vtable *ev_backend_cuda_vtable(void) { return &cuda_vtable; }

/* ---- ev_cuda.h ------------------------------------------------------------------------------ */

static cuda_plan *cuda_plan_of(const ev_plan *plan)
{
    return plan && plan->vt == &cuda_vtable ? plan->impl : NULL;
}

int ev_cuda_plan_set_graphs(ev_plan *plan, int enabled)
{
    cuda_plan *p = cuda_plan_of(plan);
    if (!p)
        return EV_ERR_UNSUPPORTED;
    ev_error err;
    int rc = EV_OK;
    cudaSetDevice(p->device);
    p->use_graphs = enabled != 0;
    if (p->use_graphs && !p->exec)
        rc = capture(p, &err);
    if (!p->use_graphs || !rc)
        p->graph_failure[0] = '\0';
    describe(p);
    return rc;
}

int ev_cuda_plan_set_cudnn(ev_plan *plan, int enabled)
{
    cuda_plan *p = cuda_plan_of(plan);
    if (!p)
        return EV_ERR_UNSUPPORTED;
#ifdef EV_CUDA_HAVE_CUDNN
    bool any = false;
    for (int i = 0; i < p->num_steps; i++)
        any |= p->steps[i].cudnn_ok;
    if (enabled && (!p->cudnn || !any))
        return EV_ERR_UNSUPPORTED;
#else
    if (enabled)
        return EV_ERR_UNSUPPORTED;
#endif
    cudaSetDevice(p->device);
    p->use_cudnn = enabled != 0;
    drop_graph(p);
    ev_error err;
    int rc = p->use_graphs ? capture(p, &err) : EV_OK;
    describe(p);
    return rc;
}

const char *ev_cuda_cudnn_status(void)
{
#ifdef EV_CUDA_HAVE_CUDNN
    return ev_cudnn_status();
#else
    return "cuDNN: not in this build (cudnn.h was not found at build time)";
#endif
}

const char *ev_cuda_plan_describe(const ev_plan *plan)
{
    cuda_plan *p = cuda_plan_of(plan);
    return p ? p->description : NULL;
}

const char *ev_cuda_plan_node_kernel(const ev_plan *plan, int node)
{
    cuda_plan *p = cuda_plan_of(plan);
    if (!p || node < 0 || node >= p->num_nodes || !p->info[node].needed ||
        p->info[node].kind != VAL_VIEW || p->info[node].fused)
        return NULL;
    return p->info[node].kernel;
}

int ev_cuda_plan_node_output(ev_plan *plan, int node, float *out, size_t count, ev_error *err)
{
    cuda_plan *p = cuda_plan_of(plan);
    if (!p)
        return ev_fail(err, EV_ERR_UNSUPPORTED, "cuda: not a cuda plan");
    if (!ev_cuda_plan_node_kernel(plan, node))
        return ev_fail(err, EV_ERR_INVALID, "cuda: node %d is not kept by this plan", node);
    const evk_view v = p->info[node].view;
    const size_t want = (size_t)p->batch * (size_t)v.c * (size_t)v.h * (size_t)v.w;
    if (count != want)
        return ev_fail(err, EV_ERR_INVALID, "cuda: node %d holds %zu values, not %zu", node, want,
                       count);
    CUDA_TRY(cudaSetDevice(p->device), "selecting the device");
    float *tmp = NULL;
    CUDA_TRY(cudaMalloc((void **)&tmp, want * sizeof(float)), "node output buffer");
    int e = evk_gather(p->stream, p->fp16, p->batch, v, tmp);
    if (!e)
        e = cudaMemcpyAsync(out, tmp, want * sizeof(float), cudaMemcpyDeviceToHost, p->stream);
    if (!e)
        e = cudaStreamSynchronize(p->stream);
    cudaFree(tmp);
    if (e)
        return cuda_fail(err, (cudaError_t)e, "reading a node");
    return EV_OK;
}
