/* cpu_plan.c: the fast cpu backend. create() compiles the network graph into a short list of
 * fused steps and plans all memory; run() walks the steps with the kernels chosen for this
 * machine; nothing is allocated per frame.
 *
 * Compilation (create):
 *  - RELU, CROP and DROP_PATH nodes vanish: ReLU is applied by the consumer while it loads its
 *    input, the crop of FactorizedReduce becomes a pixel offset of its strided 1x1 conv, and
 *    drop-path is the identity at inference.
 *  - Every BN folds into the conv before it (eval mode: running statistics, eps 1e-5); a
 *    depthwise conv feeding a pointwise conv becomes one fused step that keeps the depthwise
 *    output in a per-thread tile; FactorizedReduce's two convs write the two channel halves.
 *  - Node sums are accumulated in place: the first contribution to a node writes, the others
 *    add; `none` contributes nothing. A pool that several nodes of a cell take of the same
 *    tensor is computed once and written into all of them. Nodes a cell concatenates live in channel slices of the
 *    concat buffer (channels-last with a pixel stride), so CONCAT copies nothing.
 *  - Buffers get arena offsets from their live ranges (first writer .. last reader), largest
 *    first, so buffers whose lives do not overlap share memory. One allocation holds every
 *    activation, the per-thread tiles and the pooled features of the head.
 *
 * About 950 lines for one job, like the cuda backend's compiler: the fusion passes, the arena
 * plan and the step runner read the same step list; the kernels are in kernels_*.c and
 * cpu_kernels_impl.h, the packing in cpu_dispatch.c, the threads in cpu_pool.c.
 */
#include "cpu_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5
#define EV_CPU_PARALLEL_WORK 200000.0 /* ~4 us of kernel time */

typedef enum step_kind {
    STEP_STEM,
    STEP_POINTWISE,
    STEP_SEPARABLE, /* depthwise + pointwise */
    STEP_POOL,
    STEP_COPY,
    STEP_ZERO,
    STEP_HEAD,
    STEP_CONV,   /* dense k x k conv: im2col tiles through the pointwise GEMM */
    STEP_AFFINE, /* a batch norm no conv absorbs */
} step_kind;

typedef struct view {
    int buf; /* -1: the caller's NCHW input */
    int c_off, ld;
    int c, h, w;
} view;

typedef struct step {
    step_kind kind;
    view in, out;
    int relu, acc;
    /* pool: more destinations written from the same computation (num_extra of them) */
    int num_extra;
    view extra[EV_CPU_MAX_DESTS - 1];
    int extra_acc[EV_CPU_MAX_DESTS - 1];
    float *extra_base[EV_CPU_MAX_DESTS - 1];
    size_t extra_image[EV_CPU_MAX_DESTS - 1];
    int stride, offset; /* pointwise: input pixel (stride*o + offset) */
    int avg, k, pad;    /* pool */
    ev_cpu_pw pw;
    ev_cpu_dw dw;
    ev_cpu_stem stem;
    ev_cpu_conv conv;
    int conv_tile;                  /* output pixels per im2col tile */
    const float *scale_f, *shift_f; /* affine, in packed */
    float *packed;                  /* owned weights */
    const float *lin_w, *lin_b;
    int classes;
    float *in_base, *out_base; /* resolved at setup */
    size_t in_image, out_image;
    int parallel; /* worth splitting across threads */
} step;

typedef struct buffer {
    size_t floats;
    int first, last;
    size_t offset;
} buffer;

typedef struct cpu_plan {
    const ev_cpu_kernels *k;
    int batch, threads, tile;
    step *steps;
    int num_steps, cap_steps;
    buffer *bufs;
    int num_bufs, cap_bufs;
    float *arena;
    size_t arena_floats;
    float *scratch; /* threads x scratch_stride */
    size_t scratch_stride;
    float *pooled; /* head: batch x channels */
    ev_pool *pool;
    /* per run */
    const float *input;
    float *logits;
    const step *current;
} cpu_plan;

/* ---- graph analysis -------------------------------------------------------------------------- */

typedef enum role {
    ROLE_UNUSED = 0,
    ROLE_INPUT,
    ROLE_TRANSPARENT, /* relu, crop, drop-path */
    ROLE_PENDING,     /* conv or FactorizedReduce concat, computed by the BN after it */
    ROLE_STORED,      /* has its own storage (or a concat slice) */
    ROLE_INTO,        /* computed straight into its consumer node's storage */
    ROLE_HEAD,
} role;

typedef struct value {
    int base;
    int relu, crop;
} value;

typedef struct compiler {
    cpu_plan *p;
    const ev_graph *g;
    ev_error *err;
    int *uses, *consumer;
    role *roles;
    view *storage;
    unsigned char *copy_in; /* per concat node: inputs that need a copy (bit i) */
    unsigned char *written; /* per sum node: some contribution has been written */
    unsigned char *done;    /* per pool node: already summed into its node by an earlier step */
    double *scale, *shift;
    double *bias_shift; /* a conv's own bias folded with the BN after it */
} compiler;

static value resolve(const ev_graph *g, int i)
{
    value v = {i, 0, 0};
    for (;;) {
        const ev_node *n = &g->nodes[v.base];
        if (n->op == EV_OP_DROP_PATH) {
            v.base = n->inputs[0];
        } else if (n->op == EV_OP_RELU) {
            v.relu = 1;
            v.base = n->inputs[0];
        } else if (n->op == EV_OP_CROP) {
            v.crop += n->crop;
            v.base = n->inputs[0];
        } else {
            return v;
        }
    }
}

static int unsupported(compiler *cc, int node, const char *what)
{
    const ev_node *n = &cc->g->nodes[node];
    return ev_fail(cc->err, EV_ERR_UNSUPPORTED, "cpu backend: node %d (%s, %s): %s", node,
                   ev_op_name(n->op), n->tag, what);
}

/* Whether node `consumer` reads node `base` as it is (no ReLU or crop between them). */
static int reads_plain(const ev_graph *g, const ev_node *consumer, int base)
{
    for (int i = 0; i < consumer->num_inputs; i++) {
        value v = resolve(g, consumer->inputs[i]);
        if (v.base == base && (v.relu || v.crop))
            return 0;
    }
    return 1;
}

static int is_conv_only_concat(const ev_graph *g, const ev_node *n)
{
    for (int i = 0; i < n->num_inputs; i++) {
        value v = resolve(g, n->inputs[i]);
        if (v.relu || v.crop || g->nodes[v.base].op != EV_OP_CONV2D)
            return 0;
    }
    return 1;
}

static int new_buffer(cpu_plan *p, size_t floats)
{
    if (p->num_bufs == p->cap_bufs) {
        int cap = p->cap_bufs ? 2 * p->cap_bufs : 64;
        buffer *b = realloc(p->bufs, (size_t)cap * sizeof *b);
        if (!b)
            return -1;
        p->bufs = b;
        p->cap_bufs = cap;
    }
    size_t rounded = (floats + EV_CPU_SLACK_FLOATS + 15) & ~(size_t)15;
    p->bufs[p->num_bufs] = (buffer){rounded, -1, -1, 0};
    return p->num_bufs++;
}

/* A buffer of its own for node i's output, the whole batch; -1 when out of memory. */
static int store_node(compiler *cc, int i)
{
    const ev_node *n = &cc->g->nodes[i];
    size_t floats = ev_shape_numel((ev_shape){1, n->shape.c, n->shape.h, n->shape.w});
    int b = ev_mul_size(floats, (size_t)cc->p->batch, &floats) ? new_buffer(cc->p, floats) : -1;
    if (b >= 0) {
        cc->storage[i].buf = b;
        cc->storage[i].ld = n->shape.c;
    }
    return b;
}

static step *new_step(compiler *cc, step_kind kind)
{
    cpu_plan *p = cc->p;
    if (p->num_steps == p->cap_steps) {
        int cap = p->cap_steps ? 2 * p->cap_steps : 128;
        step *s = realloc(p->steps, (size_t)cap * sizeof *s);
        if (!s) {
            ev_fail(cc->err, EV_ERR_NOMEM, "cpu backend: out of memory");
            return NULL;
        }
        p->steps = s;
        p->cap_steps = cap;
    }
    step *s = &p->steps[p->num_steps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

static float *alloc_packed(compiler *cc, step *s, size_t floats)
{
    size_t bytes;
    if (!ev_mul_size(floats, sizeof(float), &bytes) || !(s->packed = ev_aligned_alloc(bytes))) {
        ev_fail(cc->err, EV_ERR_NOMEM, "cpu backend: out of memory for weights");
        return NULL;
    }
    return s->packed;
}

static view input_view(compiler *cc, int node)
{
    if (cc->roles[node] == ROLE_INPUT) {
        ev_shape s = cc->g->nodes[node].shape;
        return (view){-1, 0, s.c, s.c, s.h, s.w};
    }
    return cc->storage[node];
}

/* BN in eval mode as y = scale * conv + shift, per channel, in double */
static void fold_bn(const ev_node *bn, double *scale, double *shift)
{
    const int c = bn->shape.c;
    const float *gamma = bn->params[0] ? bn->params[0]->data : NULL;
    const float *beta = bn->params[1] ? bn->params[1]->data : NULL;
    const float *mean = bn->params[2]->data, *var = bn->params[3]->data;
    for (int i = 0; i < c; i++) {
        double s = (gamma ? (double)gamma[i] : 1.0) / sqrt((double)var[i] + BN_EPS);
        scale[i] = s;
        shift[i] = (beta ? (double)beta[i] : 0.0) - (double)mean[i] * s;
    }
}

/* conv node `ci` (then BN as scale/shift, NULL: none) into dest; alone: the conv has storage of
 * its own (no BN after it), so it may be read more than once */
static int emit_conv(compiler *cc, int ci, view dest, int acc, const double *scale,
                     const double *shift, int alone)
{
    const ev_graph *g = cc->g;
    const ev_node *c = &g->nodes[ci];
    const int vl = cc->p->k->vl;
    if (cc->uses[ci] != 1 && !alone)
        return unsupported(cc, ci, "conv output used more than once");
    value x = resolve(g, c->inputs[0]);
    const ev_node *xn = &g->nodes[x.base];
    const int cout = c->shape.c, cin = xn->shape.c;
    if (c->params[1]) {
        /* the conv's bias b: BN(conv + b) = scale * conv + (scale * b + shift) */
        const float *b = c->params[1]->data;
        for (int co = 0; co < cout; co++)
            cc->bias_shift[co] =
                (scale ? scale[co] : 1.0) * (double)b[co] + (shift ? shift[co] : 0.0);
        shift = cc->bias_shift;
    }
    if (c->kernel == 1 && c->groups == 1 && c->pad == 0 && c->dilation == 1) {
        if (xn->op == EV_OP_CONV2D && !x.relu && !x.crop && cc->roles[x.base] == ROLE_PENDING) {
            /* depthwise feeding this pointwise conv */
            const ev_node *dn = xn;
            value dx = resolve(g, dn->inputs[0]);
            const int dc = g->nodes[dx.base].shape.c;
            if (cc->uses[x.base] != 1 || dn->groups != dc || dn->shape.c != dc || dx.crop ||
                cc->roles[dx.base] != ROLE_STORED)
                return unsupported(cc, x.base, "conv pattern the cpu backend does not fuse");
            step *s = new_step(cc, STEP_SEPARABLE);
            if (!s)
                return EV_ERR_NOMEM;
            size_t dsz = ev_cpu_dw_size(dc, dn->kernel, vl), psz = ev_cpu_pw_size(dc, cout, vl);
            float *mem = alloc_packed(cc, s, dsz + psz);
            if (!mem)
                return EV_ERR_NOMEM;
            ev_cpu_dw_pack(&s->dw, dn->params[0]->data, dc, dn->kernel, dn->stride, dn->pad,
                           dn->dilation, vl, mem);
            ev_cpu_pw_pack(&s->pw, c->params[0]->data, dc, cout, scale, shift, vl, mem + dsz);
            s->in = input_view(cc, dx.base);
            s->relu = dx.relu;
            s->out = dest;
            s->acc = acc;
            return EV_OK;
        }
        if (cc->roles[x.base] != ROLE_STORED)
            return unsupported(cc, ci, "pointwise conv input is not a stored tensor");
        step *s = new_step(cc, STEP_POINTWISE);
        if (!s)
            return EV_ERR_NOMEM;
        float *mem = alloc_packed(cc, s, ev_cpu_pw_size(cin, cout, vl));
        if (!mem)
            return EV_ERR_NOMEM;
        ev_cpu_pw_pack(&s->pw, c->params[0]->data, cin, cout, scale, shift, vl, mem);
        s->in = input_view(cc, x.base);
        s->relu = x.relu;
        s->stride = c->stride;
        s->offset = x.crop;
        s->out = dest;
        s->acc = acc;
        return EV_OK;
    }
    if (c->groups == 1 && xn->op == EV_OP_INPUT && !x.relu && !x.crop && c->dilation == 1 &&
        cin <= 4) {
        if (acc)
            return unsupported(cc, ci, "stem conv summed into a node");
        step *s = new_step(cc, STEP_STEM);
        if (!s)
            return EV_ERR_NOMEM;
        float *mem = alloc_packed(cc, s, ev_cpu_stem_size(cin, cout, c->kernel, vl));
        if (!mem)
            return EV_ERR_NOMEM;
        ev_cpu_stem_pack(&s->stem, c->params[0]->data, cin, cout, c->kernel, c->stride, c->pad,
                         scale, shift, vl, mem);
        s->in = input_view(cc, x.base);
        s->out = dest;
        return EV_OK;
    }
    if (c->groups == 1 && cc->roles[x.base] == ROLE_STORED && !x.crop) {
        /* dense k x k: im2col + GEMM */
        step *s = new_step(cc, STEP_CONV);
        if (!s)
            return EV_ERR_NOMEM;
        float *mem = alloc_packed(cc, s, ev_cpu_conv_size(cin, cout, c->kernel, vl));
        if (!mem)
            return EV_ERR_NOMEM;
        ev_cpu_conv_pack(&s->conv, c->params[0]->data, cin, cout, c->kernel, c->stride, c->pad,
                         c->dilation, scale, shift, vl, mem);
        s->conv_tile = ev_cpu_conv_tile(&s->conv);
        s->in = input_view(cc, x.base);
        s->relu = x.relu;
        s->out = dest;
        s->acc = acc;
        return EV_OK;
    }
    return unsupported(cc, ci, "conv pattern the cpu backend does not fuse");
}

/* The same pool of the same tensor summed into later nodes of the cell (DARTS_V2's reduction
 * cell pools each input two or three times): the step also writes those nodes, and their sums
 * skip it later. Two-term sums come out bit-identical in either order; longer ones may round
 * differently, far inside the 1e-4 tolerance against the reference. */
static void add_pool_twins(compiler *cc, int ni, step *s)
{
    const ev_graph *g = cc->g;
    const ev_node *n = &g->nodes[ni];
    const int base = resolve(g, n->inputs[0]).base;
    for (int i = cc->consumer[ni] + 1; i < g->num_nodes && s->num_extra < EV_CPU_MAX_DESTS - 1;
         i++) {
        const ev_node *sum = &g->nodes[i];
        if (cc->roles[i] != ROLE_STORED || sum->op != EV_OP_ADD)
            continue;
        for (int j = 0; j < sum->num_inputs; j++) {
            value v = resolve(g, sum->inputs[j]);
            const ev_node *q = &g->nodes[v.base];
            if (v.relu || v.crop || cc->roles[v.base] != ROLE_INTO || cc->done[v.base] ||
                q->op != n->op || q->kernel != n->kernel || q->stride != n->stride ||
                q->pad != n->pad)
                continue;
            value qx = resolve(g, q->inputs[0]);
            if (qx.base != base || qx.relu || qx.crop)
                continue;
            s->extra[s->num_extra] = cc->storage[i];
            s->extra_acc[s->num_extra] = cc->written[i];
            s->num_extra++;
            cc->written[i] = 1;
            cc->done[v.base] = 1;
            break;
        }
    }
}

/* computes node n (BN, pool or zero) into dest, writing (acc = 0) or adding (acc = 1) */
static int emit_compute(compiler *cc, int ni, view dest, int acc)
{
    const ev_graph *g = cc->g;
    const ev_node *n = &g->nodes[ni];
    switch (n->op) {
    case EV_OP_BATCHNORM: {
        value x = resolve(g, n->inputs[0]);
        const ev_node *xn = &g->nodes[x.base];
        fold_bn(n, cc->scale, cc->shift);
        if (!x.relu && !x.crop && cc->roles[x.base] == ROLE_STORED && !acc) {
            /* a BN of a stored tensor (DenseNet's of a concatenation): per-channel affine */
            step *s = new_step(cc, STEP_AFFINE);
            if (!s)
                return EV_ERR_NOMEM;
            const size_t cpad = ((size_t)n->shape.c + 15) & ~(size_t)15;
            float *mem = alloc_packed(cc, s, 2 * cpad + EV_CPU_SLACK_FLOATS);
            if (!mem)
                return EV_ERR_NOMEM;
            memset(mem, 0, (2 * cpad + EV_CPU_SLACK_FLOATS) * sizeof(float));
            for (int i = 0; i < n->shape.c; i++) {
                mem[i] = (float)cc->scale[i];
                mem[cpad + (size_t)i] = (float)cc->shift[i];
            }
            s->scale_f = mem;
            s->shift_f = mem + cpad;
            s->in = input_view(cc, x.base);
            s->out = dest;
            return EV_OK;
        }
        if (x.relu || x.crop || cc->uses[x.base] != 1)
            return unsupported(cc, ni, "batch norm not after a conv");
        if (xn->op == EV_OP_CONV2D)
            return emit_conv(cc, x.base, dest, acc, cc->scale, cc->shift, 0);
        if (xn->op == EV_OP_CONCAT && cc->roles[x.base] == ROLE_PENDING) {
            int off = 0;
            for (int i = 0; i < xn->num_inputs; i++) {
                int ci = resolve(g, xn->inputs[i]).base;
                view part = dest;
                part.c_off += off;
                part.c = g->nodes[ci].shape.c;
                int rc = emit_conv(cc, ci, part, acc, cc->scale + off, cc->shift + off, 0);
                if (rc)
                    return rc;
                off += part.c;
            }
            return EV_OK;
        }
        return unsupported(cc, ni, "batch norm not after a conv");
    }
    case EV_OP_MAXPOOL:
    case EV_OP_AVGPOOL: {
        value x = resolve(g, n->inputs[0]);
        if (x.crop || cc->roles[x.base] != ROLE_STORED)
            return unsupported(cc, ni, "pool input is not a stored tensor");
        step *s = new_step(cc, STEP_POOL);
        if (!s)
            return EV_ERR_NOMEM;
        s->in = input_view(cc, x.base);
        s->relu = x.relu;
        s->out = dest;
        s->acc = acc;
        s->avg = n->op == EV_OP_AVGPOOL;
        s->k = n->kernel;
        s->stride = n->stride;
        s->pad = n->pad;
        if (cc->roles[ni] == ROLE_INTO && !s->relu)
            add_pool_twins(cc, ni, s);
        return EV_OK;
    }
    case EV_OP_CONV2D: /* no BN after it: the conv alone, its own bias if any */
        return emit_conv(cc, ni, dest, acc, NULL, NULL, 1);
    case EV_OP_ZERO:
        if (!acc) {
            step *s = new_step(cc, STEP_ZERO);
            if (!s)
                return EV_ERR_NOMEM;
            s->out = dest;
        }
        return EV_OK;
    default:
        return unsupported(cc, ni, "op the cpu backend cannot compute");
    }
}

static int emit_copy(compiler *cc, int from, view dest, int acc, int relu)
{
    step *s = new_step(cc, STEP_COPY);
    if (!s)
        return EV_ERR_NOMEM;
    s->in = cc->storage[from];
    s->out = dest;
    s->acc = acc;
    s->relu = relu;
    return EV_OK;
}

static int compile_graph(compiler *cc)
{
    const ev_graph *g = cc->g;
    const int nn = g->num_nodes;

    /* nodes the logits depend on (the auxiliary head is skipped) */
    unsigned char *needed = ev_graph_logits_closure(g);
    if (!needed)
        return ev_fail(cc->err, EV_ERR_NOMEM, "cpu backend: out of memory");

    for (int i = 0; i < nn; i++) {
        const ev_node *n = &g->nodes[i];
        if (!needed[i] || n->op == EV_OP_RELU || n->op == EV_OP_CROP || n->op == EV_OP_DROP_PATH)
            continue;
        for (int j = 0; j < n->num_inputs; j++) {
            int b = resolve(g, n->inputs[j]).base;
            cc->uses[b]++;
            cc->consumer[b] = i;
        }
    }
    for (int i = 0; i < nn; i++) {
        const ev_node *n = &g->nodes[i];
        role r = ROLE_UNUSED;
        if (needed[i]) {
            switch (n->op) {
            case EV_OP_INPUT:
                r = ROLE_INPUT;
                break;
            case EV_OP_RELU:
            case EV_OP_CROP:
            case EV_OP_DROP_PATH:
                r = ROLE_TRANSPARENT;
                break;
            case EV_OP_CONV2D: {
                /* computed by what follows it (a BN, the pointwise half of a separable block,
                 * FactorizedReduce's concat), else on its own */
                const ev_node *cn = &g->nodes[cc->consumer[i]];
                const int fused = cc->uses[i] == 1 && reads_plain(g, cn, i) &&
                                  (cn->op == EV_OP_BATCHNORM ||
                                   (cn->op == EV_OP_CONV2D && n->groups > 1 && cn->kernel == 1) ||
                                   (cn->op == EV_OP_CONCAT && is_conv_only_concat(g, cn)));
                r = fused ? ROLE_PENDING
                    : cc->uses[i] == 1 && cn->op == EV_OP_ADD && reads_plain(g, cn, i)
                        ? ROLE_INTO
                        : ROLE_STORED;
                break;
            }
            case EV_OP_CONCAT:
                r = is_conv_only_concat(g, n) ? ROLE_PENDING : ROLE_STORED;
                break;
            case EV_OP_BATCHNORM:
            case EV_OP_MAXPOOL:
            case EV_OP_AVGPOOL:
            case EV_OP_ZERO:
                r = cc->uses[i] == 1 && g->nodes[cc->consumer[i]].op == EV_OP_ADD &&
                            reads_plain(g, &g->nodes[cc->consumer[i]], i)
                        ? ROLE_INTO
                        : ROLE_STORED;
                break;
            case EV_OP_ADD:
                r = ROLE_STORED;
                break;
            case EV_OP_GAP:
            case EV_OP_LINEAR:
                r = ROLE_HEAD;
                break;
            default:
                free(needed);
                return unsupported(cc, i, "op not supported by the cpu backend");
            }
        }
        cc->roles[i] = r;
        cc->storage[i] = (view){-2, 0, 0, n->shape.c, n->shape.h, n->shape.w};
    }
    free(needed);

    /* storage: concat buffers first, their inputs as channel slices */
    for (int i = 0; i < nn; i++) {
        const ev_node *n = &g->nodes[i];
        if (cc->roles[i] != ROLE_STORED || n->op != EV_OP_CONCAT)
            continue;
        int b = store_node(cc, i);
        if (b < 0)
            return ev_fail(cc->err, EV_ERR_NOMEM, "cpu backend: out of memory");
        int off = 0;
        for (int j = 0; j < n->num_inputs; j++) {
            value v = resolve(g, n->inputs[j]);
            const ev_node *in = &g->nodes[v.base];
            if (!v.relu && !v.crop && cc->roles[v.base] == ROLE_STORED && in->op != EV_OP_CONCAT &&
                cc->storage[v.base].buf == -2 && in->shape.h == n->shape.h &&
                in->shape.w == n->shape.w) {
                cc->storage[v.base].buf = b;
                cc->storage[v.base].c_off = off;
                cc->storage[v.base].ld = n->shape.c;
            } else {
                if (v.relu || v.crop || cc->roles[v.base] != ROLE_STORED)
                    return unsupported(cc, i, "concat input is not a stored tensor");
                cc->copy_in[i * EV_NODE_MAX_INPUTS + j] = 1;
            }
            off += in->shape.c;
        }
    }
    for (int i = 0; i < nn; i++)
        if (cc->roles[i] == ROLE_STORED && cc->storage[i].buf == -2 && store_node(cc, i) < 0)
            return ev_fail(cc->err, EV_ERR_NOMEM, "cpu backend: out of memory");

    /* steps, in graph order */
    for (int i = 0; i < nn; i++) {
        const ev_node *n = &g->nodes[i];
        int rc = EV_OK;
        if (cc->roles[i] == ROLE_STORED && n->op == EV_OP_ADD) {
            for (int j = 0; j < n->num_inputs && !rc; j++) {
                value v = resolve(g, n->inputs[j]);
                if (v.crop)
                    return unsupported(cc, i, "sum of a cropped tensor");
                const ev_node *in = &g->nodes[v.base];
                if (cc->roles[v.base] == ROLE_INTO) {
                    if (in->op == EV_OP_ZERO || cc->done[v.base])
                        continue;
                    rc = emit_compute(cc, v.base, cc->storage[i], cc->written[i]);
                } else if (cc->roles[v.base] == ROLE_STORED) {
                    /* ResNet's identity: the previous block's rectified sum */
                    rc = emit_copy(cc, v.base, cc->storage[i], cc->written[i], v.relu);
                } else {
                    return unsupported(cc, i, "sum input is not computable");
                }
                cc->written[i] = 1;
            }
            if (!rc && !cc->written[i])
                rc = emit_compute(cc, resolve(g, n->inputs[0]).base, cc->storage[i], 0);
        } else if (cc->roles[i] == ROLE_STORED && n->op == EV_OP_CONCAT) {
            int off = 0;
            for (int j = 0; j < n->num_inputs && !rc; j++) {
                int b = resolve(g, n->inputs[j]).base;
                view part = cc->storage[i];
                part.c_off += off;
                part.c = g->nodes[b].shape.c;
                if (cc->copy_in[i * EV_NODE_MAX_INPUTS + j])
                    rc = emit_copy(cc, b, part, 0, 0);
                off += part.c;
            }
        } else if (cc->roles[i] == ROLE_STORED) {
            rc = emit_compute(cc, i, cc->storage[i], 0);
        } else if (cc->roles[i] == ROLE_HEAD && n->op == EV_OP_LINEAR) {
            value gv = resolve(g, n->inputs[0]);
            const ev_node *gap = &g->nodes[gv.base];
            if (gv.relu || gv.crop || gap->op != EV_OP_GAP)
                return unsupported(cc, i, "classifier not after global pooling");
            value x = resolve(g, gap->inputs[0]);
            if (x.crop || cc->roles[x.base] != ROLE_STORED)
                return unsupported(cc, i, "global pooling of an unstored tensor");
            step *s = new_step(cc, STEP_HEAD);
            if (!s)
                return EV_ERR_NOMEM;
            s->in = cc->storage[x.base];
            s->relu = x.relu;
            s->out = (view){-1, 0, n->shape.c, n->shape.c, 1, 1};
            s->lin_w = n->params[0]->data;
            s->lin_b = n->params[1] ? n->params[1]->data : NULL;
            s->classes = n->shape.c;
        }
        if (rc)
            return rc;
    }
    return EV_OK;
}

/* ---- memory plan ----------------------------------------------------------------------------- */

static void touch(cpu_plan *p, int buf, int step_index)
{
    if (buf < 0)
        return;
    buffer *b = &p->bufs[buf];
    if (b->first < 0 || step_index < b->first)
        b->first = step_index;
    if (step_index > b->last)
        b->last = step_index;
}

static int plan_memory(cpu_plan *p, ev_error *err)
{
    for (int i = 0; i < p->num_steps; i++) {
        touch(p, p->steps[i].in.buf, i);
        touch(p, p->steps[i].out.buf, i);
        for (int e = 0; e < p->steps[i].num_extra; e++)
            touch(p, p->steps[i].extra[e].buf, i);
    }
    /* place largest first at the lowest offset free during its whole life */
    int *order = malloc((size_t)(p->num_bufs ? p->num_bufs : 1) * sizeof *order);
    int *placed = malloc((size_t)(p->num_bufs ? p->num_bufs : 1) * sizeof *placed);
    if (!order || !placed) {
        free(order);
        free(placed);
        return ev_fail(err, EV_ERR_NOMEM, "cpu backend: out of memory");
    }
    for (int i = 0; i < p->num_bufs; i++)
        order[i] = i;
    for (int i = 1; i < p->num_bufs; i++) /* insertion sort by size, descending */
        for (int j = i; j > 0 && p->bufs[order[j]].floats > p->bufs[order[j - 1]].floats; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    size_t total = 0;
    int num_placed = 0;
    for (int oi = 0; oi < p->num_bufs; oi++) {
        buffer *b = &p->bufs[order[oi]];
        if (b->first < 0)
            continue; /* never used */
        size_t offset = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int k = 0; k < num_placed; k++) {
                const buffer *o = &p->bufs[placed[k]];
                int live = o->first <= b->last && b->first <= o->last;
                int overlap = offset < o->offset + o->floats && o->offset < offset + b->floats;
                if (live && overlap) {
                    offset = o->offset + o->floats;
                    moved = 1;
                }
            }
        }
        b->offset = offset;
        placed[num_placed++] = order[oi];
        if (offset + b->floats > total)
            total = offset + b->floats;
    }
    free(order);
    free(placed);

    /* per-thread tiles for the separable steps and the head's pooled features */
    int max_cpad = 16, max_head = 1;
    for (int i = 0; i < p->num_steps; i++) {
        const step *s = &p->steps[i];
        if (s->kind == STEP_SEPARABLE && s->dw.cpad > max_cpad)
            max_cpad = s->dw.cpad;
        if (s->kind == STEP_HEAD && s->in.c > max_head)
            max_head = s->in.c;
    }
    p->tile = 4096 / max_cpad;
    p->tile = p->tile < 8 ? 8 : p->tile > 128 ? 128 : p->tile / 8 * 8;
    size_t tile_floats = (size_t)p->tile * (size_t)max_cpad;
    for (int i = 0; i < p->num_steps; i++) {
        const step *s = &p->steps[i];
        if (s->kind == STEP_CONV && (size_t)s->conv_tile * (size_t)s->conv.K > tile_floats)
            tile_floats = (size_t)s->conv_tile * (size_t)s->conv.K;
    }
    p->scratch_stride = (tile_floats + EV_CPU_SLACK_FLOATS + 15) & ~(size_t)15;
    size_t scratch = p->scratch_stride * (size_t)p->threads;
    size_t pooled = ((size_t)p->batch * (size_t)max_head + 15) & ~(size_t)15;
    size_t floats = total, bytes;
    if (!ev_add_size(floats, scratch, &floats) || !ev_add_size(floats, pooled, &floats) ||
        !ev_mul_size(floats, sizeof(float), &bytes) || !(p->arena = ev_aligned_alloc(bytes)))
        return ev_fail(err, EV_ERR_NOMEM, "cpu backend: out of memory for a %zu-float arena",
                       floats);
    p->arena_floats = floats;
    p->scratch = p->arena + total;
    p->pooled = p->scratch + scratch;

    for (int i = 0; i < p->num_steps; i++) {
        step *s = &p->steps[i];
        /* split a step across threads only when its work (multiply-adds or loads) dwarfs the
         * hand-off, a few microseconds */
        double px = (double)p->batch * s->out.h * s->out.w, work = px * s->out.c;
        if (s->kind == STEP_POINTWISE)
            work = px * s->pw.cin * s->pw.cout;
        else if (s->kind == STEP_SEPARABLE)
            work = px * (s->dw.c * s->dw.k * s->dw.k + s->pw.cin * s->pw.cout);
        else if (s->kind == STEP_STEM)
            work = px * s->stem.cout * s->stem.cin * s->stem.k * s->stem.k;
        else if (s->kind == STEP_POOL)
            work = px * s->out.c * s->k * s->k;
        else if (s->kind == STEP_CONV)
            work = px * s->conv.K * s->conv.cout;
        s->parallel = p->batch * s->out.h > 1 && work >= EV_CPU_PARALLEL_WORK;
        if (s->in.buf >= 0) {
            s->in_base = p->arena + p->bufs[s->in.buf].offset + s->in.c_off;
            s->in_image = (size_t)s->in.h * (size_t)s->in.w * (size_t)s->in.ld;
        } else {
            s->in_image = (size_t)s->in.c * (size_t)s->in.h * (size_t)s->in.w; /* NCHW */
        }
        if (s->out.buf >= 0) {
            s->out_base = p->arena + p->bufs[s->out.buf].offset + s->out.c_off;
            s->out_image = (size_t)s->out.h * (size_t)s->out.w * (size_t)s->out.ld;
        }
        for (int e = 0; e < s->num_extra; e++) {
            const view *v = &s->extra[e];
            s->extra_base[e] = p->arena + p->bufs[v->buf].offset + v->c_off;
            s->extra_image[e] = (size_t)v->h * (size_t)v->w * (size_t)v->ld;
        }
    }
    return EV_OK;
}

/* ---- execution ------------------------------------------------------------------------------- */

/* rows r0..r1 of (image, output row) pairs */
static void run_rows(cpu_plan *p, const step *s, int thread, int r0, int r1)
{
    const ev_cpu_kernels *k = p->k;
    const int oh = s->out.h, ow = s->out.w;
    const ptrdiff_t ldy = s->out.ld, ldx = s->in.ld;
    int r = r0;
    while (r < r1) {
        const int n = r / oh, oy = r % oh;
        const int rows = r1 - r < oh - oy ? r1 - r : oh - oy; /* within this image */
        float *y = s->out_base + (size_t)n * s->out_image + (size_t)oy * (size_t)ow * (size_t)ldy;
        const float *xi = s->in_base + (size_t)n * s->in_image;
        const ev_cpu_image img = {xi, s->in.h, s->in.w, s->in.c, s->in.ld};
        switch (s->kind) {
        case STEP_POINTWISE:
            if (s->stride == 1 && s->offset == 0 && s->in.w == ow) {
                k->pointwise(xi + (size_t)oy * (size_t)ow * (size_t)ldx, ldx, rows * ow, s->relu,
                             &s->pw, y, ldy, s->acc);
            } else {
                for (int j = 0; j < rows; j++) {
                    const int iy = (oy + j) * s->stride + s->offset;
                    k->pointwise(xi + ((size_t)iy * (size_t)s->in.w + (size_t)s->offset) * ldx,
                                 (ptrdiff_t)s->stride * ldx, ow, s->relu, &s->pw,
                                 y + (size_t)j * ow * ldy, ldy, s->acc);
                }
            }
            break;
        case STEP_SEPARABLE: {
            float *tile = p->scratch + (size_t)thread * p->scratch_stride;
            for (int j = 0; j < rows; j++)
                for (int x0 = 0; x0 < ow; x0 += p->tile) {
                    const int cnt = ow - x0 < p->tile ? ow - x0 : p->tile;
                    k->depthwise_row(&img, s->relu, &s->dw, oy + j, x0, cnt, tile, s->dw.cpad);
                    k->pointwise(tile, s->dw.cpad, cnt, 0, &s->pw,
                                 y + ((size_t)j * ow + (size_t)x0) * ldy, ldy, s->acc);
                }
            break;
        }
        case STEP_POOL: {
            ev_cpu_dest dst[EV_CPU_MAX_DESTS];
            dst[0] = (ev_cpu_dest){y, ldy, s->acc};
            for (int e = 0; e < s->num_extra; e++) {
                const ptrdiff_t ld = s->extra[e].ld;
                dst[e + 1] = (ev_cpu_dest){s->extra_base[e] + (size_t)n * s->extra_image[e] +
                                               (size_t)oy * (size_t)ow * (size_t)ld,
                                           ld, s->extra_acc[e]};
            }
            for (int j = 0; j < rows; j++) {
                k->pool_row(&img, s->avg, s->relu, s->k, s->stride, s->pad, oy + j, 0, ow, dst,
                            1 + s->num_extra);
                for (int d = 0; d <= s->num_extra; d++)
                    dst[d].y += (size_t)ow * (size_t)dst[d].ys;
            }
            break;
        }
        case STEP_STEM: {
            const float *x = p->input + (size_t)n * s->in_image;
            for (int j = 0; j < rows; j++)
                k->stem_row(x, s->in.h, s->in.w, &s->stem, oy + j, 0, ow, y + (size_t)j * ow * ldy,
                            ldy);
            break;
        }
        case STEP_COPY:
            k->copy(xi + (size_t)oy * (size_t)ow * (size_t)ldx, ldx, rows * ow, s->out.c, y, ldy,
                    s->acc, s->relu);
            break;
        case STEP_AFFINE:
            k->affine(xi + (size_t)oy * (size_t)ow * (size_t)ldx, ldx, rows * ow, s->out.c,
                      s->scale_f, s->shift_f, y, ldy);
            break;
        case STEP_CONV: {
            /* the rows' pixels are consecutive in the image: tiles of conv_tile pixels */
            float *tile = p->scratch + (size_t)thread * p->scratch_stride;
            const int total = rows * ow;
            for (int q = 0; q < total; q += s->conv_tile)
                ev_cpu_conv_run(k, &s->conv, &img, s->relu, ow, oy * ow + q,
                                total - q < s->conv_tile ? total - q : s->conv_tile, tile,
                                y + (size_t)q * (size_t)ldy, ldy, s->acc);
            break;
        }
        case STEP_ZERO:
            k->zero(y, ldy, rows * ow, s->out.c);
            break;
        case STEP_HEAD:
            break;
        }
        r += rows;
    }
}

static void run_head(cpu_plan *p, const step *s)
{
    const int c = s->in.c, hw = s->in.h * s->in.w;
    for (int n = 0; n < p->batch; n++) {
        float *pooled = p->pooled + (size_t)n * (size_t)c;
        const float *x = s->in_base + (size_t)n * s->in_image;
        /* channel sums with the vector kernels: one pixel at a time into the same row */
        p->k->zero(pooled, 0, 1, c);
        for (int q = 0; q < hw; q++)
            p->k->copy(x + (size_t)q * (size_t)s->in.ld, 0, 1, c, pooled, 0, 1, s->relu);
        const float inv = 1.0f / (float)hw;
        for (int cls = 0; cls < s->classes; cls++) {
            const float *w = s->lin_w + (size_t)cls * (size_t)c;
            double sum = s->lin_b ? s->lin_b[cls] : 0.0;
            for (int j = 0; j < c; j++)
                sum += (double)w[j] * (double)(pooled[j] * inv);
            p->logits[(size_t)n * (size_t)s->classes + (size_t)cls] = (float)sum;
        }
    }
}

static void step_job(void *arg, int chunk, int chunks, int thread)
{
    cpu_plan *p = arg;
    const step *s = p->current;
    const int rows = p->batch * s->out.h;
    const int r0 = (int)((long long)rows * chunk / chunks);
    const int r1 = (int)((long long)rows * (chunk + 1) / chunks);
    if (r0 < r1)
        run_rows(p, s, thread, r0, r1);
}

#ifdef EV_CPU_PROFILE
/* build with -DEV_CPU_PROFILE: time per step kind, printed at exit (development aid) */
#include <stdio.h>
#include <time.h>
static double profile_ms[STEP_AFFINE + 1], profile_flops[STEP_AFFINE + 1];
static const char *const profile_names[] = {"stem", "pointwise", "separable", "pool",  "copy",
                                            "zero", "head",      "conv",      "affine"};
static void profile_print(void)
{
    for (int i = 0; i <= STEP_AFFINE; i++)
        fprintf(stderr, "%-10s %9.3f ms %7.2f GFLOP/s\n", profile_names[i], profile_ms[i],
                profile_ms[i] > 0 ? profile_flops[i] / profile_ms[i] / 1e6 : 0.0);
}
static double profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static double step_flops(const cpu_plan *p, const step *s)
{
    double px = (double)p->batch * s->out.h * s->out.w;
    switch (s->kind) {
    case STEP_STEM:
        return 2 * px * s->stem.cout * s->stem.cin * s->stem.k * s->stem.k;
    case STEP_POINTWISE:
        return 2 * px * s->pw.cin * s->pw.cout;
    case STEP_SEPARABLE:
        return 2 * px * (s->pw.cin * s->pw.cout + s->dw.c * s->dw.k * s->dw.k);
    case STEP_CONV:
        return 2 * px * s->conv.K * s->conv.cout;
    default:
        return 0;
    }
}
#endif

static int cpu_run(ev_plan *plan, const float *input, float *logits, ev_error *err)
{
    (void)err;
    cpu_plan *p = plan->impl;
    p->input = input;
    p->logits = logits;
    for (int i = 0; i < p->num_steps; i++) {
        const step *s = &p->steps[i];
#ifdef EV_CPU_PROFILE
        static int registered;
        if (!registered++)
            atexit(profile_print);
        double t0 = profile_now();
#endif
        if (s->kind == STEP_HEAD) {
            run_head(p, s);
        } else if (p->threads > 1 && s->parallel) {
            /* a few chunks per thread: a thread that is late (its core busy) takes fewer */
            const int rows = p->batch * s->out.h, chunks = 4 * p->threads;
            p->current = s;
            ev_pool_run(p->pool, step_job, p, rows < chunks ? rows : chunks);
        } else {
            run_rows(p, s, 0, 0, p->batch * s->out.h);
        }
#ifdef EV_CPU_PROFILE
        profile_ms[s->kind] += profile_now() - t0;
        profile_flops[s->kind] += step_flops(p, s);
#endif
    }
    return EV_OK;
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

static void plan_free(cpu_plan *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->num_steps; i++)
        ev_aligned_free(p->steps[i].packed);
    free(p->steps);
    free(p->bufs);
    ev_aligned_free(p->arena);
    ev_pool_free(p->pool);
    free(p);
}

static int cpu_create(ev_plan *plan, ev_error *err)
{
    const ev_net *net = plan->model->net;
    const ev_graph *g = &net->graph;
    cpu_plan *p = calloc(1, sizeof *p);
    if (!p)
        return ev_fail(err, EV_ERR_NOMEM, "cpu backend: out of memory");
    p->k = ev_cpu_kernels_best();
    p->batch = plan->options.batch > 0 ? plan->options.batch : 1;
    p->threads = plan->options.threads > 0 ? plan->options.threads : 1;
    compiler cc = {.p = p, .g = g, .err = err};
    int maxc = 1;
    for (int i = 0; i < g->num_nodes; i++)
        if (g->nodes[i].shape.c > maxc)
            maxc = g->nodes[i].shape.c;
    const size_t nn = (size_t)g->num_nodes;
    cc.uses = calloc(nn, sizeof *cc.uses);
    cc.consumer = calloc(nn, sizeof *cc.consumer);
    cc.roles = calloc(nn, sizeof *cc.roles);
    cc.storage = calloc(nn, sizeof *cc.storage);
    cc.copy_in = calloc(nn * EV_NODE_MAX_INPUTS, 1);
    cc.written = calloc(nn, 1);
    cc.done = calloc(nn, 1);
    cc.scale = calloc((size_t)maxc, sizeof *cc.scale);
    cc.shift = calloc((size_t)maxc, sizeof *cc.shift);
    cc.bias_shift = calloc((size_t)maxc, sizeof *cc.bias_shift);
    int rc;
    if (!cc.uses || !cc.consumer || !cc.roles || !cc.storage || !cc.copy_in || !cc.written ||
        !cc.done || !cc.scale || !cc.shift || !cc.bias_shift)
        rc = ev_fail(err, EV_ERR_NOMEM, "cpu backend: out of memory");
    else
        rc = compile_graph(&cc);
    free(cc.uses);
    free(cc.consumer);
    free(cc.roles);
    free(cc.storage);
    free(cc.copy_in);
    free(cc.written);
    free(cc.done);
    free(cc.scale);
    free(cc.shift);
    free(cc.bias_shift);
    if (!rc)
        rc = plan_memory(p, err);
    if (!rc && ev_pool_create(p->threads, EV_POOL_SPIN, &p->pool))
        rc = ev_fail(err, EV_ERR_NOMEM, "cpu backend: cannot start %d threads", p->threads);
    if (rc) {
        plan_free(p);
        return rc;
    }
    plan->impl = p;
    return EV_OK;
}

static void cpu_destroy(ev_plan *plan) { plan_free(plan->impl); }

static const ev_backend_vtable cpu_vtable = {
    .name = "cpu",
    .create = cpu_create,
    .run = cpu_run,
    .destroy = cpu_destroy,
};

const ev_backend_vtable *ev_backend_cpu_vtable(void) { return &cpu_vtable; }

const char *ev_cpu_plan_kernels(const ev_plan *plan)
{
    return ((const cpu_plan *)plan->impl)->k->name;
}
size_t ev_cpu_plan_arena_bytes(const ev_plan *plan)
{
    return ((const cpu_plan *)plan->impl)->arena_floats * sizeof(float);
}
int ev_cpu_plan_num_steps(const ev_plan *plan) { return ((const cpu_plan *)plan->impl)->num_steps; }
