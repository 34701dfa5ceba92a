/* onnx_export.c: writes a model as a standard ONNX graph (opset 13) with protobuf-c and the
 * schema subset in engine/onnx/onnx.proto. The graph mirrors the evaluation network node for
 * node, except that every BN is folded into the conv before it (weights scaled, bias added),
 * drop-path disappears (identity at inference), `none` edges drop out of their sums and the
 * auxiliary head is left out. Ops: Conv (group for depthwise), Relu, MaxPool, AveragePool
 * (count_include_pad 0), Slice (FactorizedReduce's shift), Add, Concat, GlobalAveragePool,
 * Flatten, Gemm, Mul (only for an all-`none` node). */
#include "ev_onnx.h"
#include "ev_private.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7

typedef struct exporter {
    const ev_graph *g;
    ev_error *err;
    int failed;
    void **allocs;
    size_t num_allocs, cap_allocs;
    Onnx__NodeProto **nodes;
    size_t num_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t num_inits, cap_inits;
    char (*names)[32]; /* output tensor name per graph node */
    int *uses, *consumer;
    int counter;
} exporter;

static void *xalloc(exporter *x, size_t bytes)
{
    if (x->failed)
        return NULL;
    if (x->num_allocs == x->cap_allocs) {
        size_t cap = x->cap_allocs ? 2 * x->cap_allocs : 1024;
        void **a = realloc(x->allocs, cap * sizeof *a);
        if (!a) {
            x->failed = 1;
            return NULL;
        }
        x->allocs = a;
        x->cap_allocs = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        x->failed = 1;
        return NULL;
    }
    x->allocs[x->num_allocs++] = p;
    return p;
}

static char *xstrdup(exporter *x, const char *s)
{
    char *d = xalloc(x, strlen(s) + 1);
    if (d)
        strcpy(d, s);
    return d;
}

static int push(exporter *x, void ***arr, size_t *n, size_t *cap, void *item)
{
    if (!item || x->failed)
        return -1;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        void **a = realloc(*arr, c * sizeof *a);
        if (!a) {
            x->failed = 1;
            return -1;
        }
        *arr = a;
        *cap = c;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static Onnx__AttributeProto *attr_int(exporter *x, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = xalloc(x, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = xstrdup(x, name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->i = v;
    return a;
}

static Onnx__AttributeProto *attr_ints(exporter *x, const char *name, const int64_t *v, int n)
{
    Onnx__AttributeProto *a = xalloc(x, sizeof *a);
    int64_t *d = xalloc(x, (size_t)n * sizeof *d);
    if (!a || !d)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = xstrdup(x, name);
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    memcpy(d, v, (size_t)n * sizeof *d);
    a->ints = d;
    a->n_ints = (size_t)n;
    return a;
}

/* a node with up to 3 inputs, one output and up to 6 attributes (NULL-terminated) */
static Onnx__NodeProto *add_node(exporter *x, const char *op, const char *const *inputs,
                                 int num_inputs, const char *output,
                                 Onnx__AttributeProto *const *attrs)
{
    Onnx__NodeProto *n = xalloc(x, sizeof *n);
    char **in = xalloc(x, (size_t)(num_inputs > 0 ? num_inputs : 1) * sizeof *in);
    char **out = xalloc(x, sizeof *out);
    if (!n || !in || !out)
        return NULL;
    onnx__node_proto__init(n);
    for (int i = 0; i < num_inputs; i++)
        in[i] = xstrdup(x, inputs[i]);
    out[0] = xstrdup(x, output);
    n->input = in;
    n->n_input = (size_t)num_inputs;
    n->output = out;
    n->n_output = 1;
    n->op_type = xstrdup(x, op);
    char name[48];
    snprintf(name, sizeof name, "%s_%d", op, x->counter++);
    n->name = xstrdup(x, name);
    int na = 0;
    while (attrs && attrs[na])
        na++;
    if (na) {
        n->attribute = xalloc(x, (size_t)na * sizeof *n->attribute);
        if (n->attribute)
            for (int i = 0; i < na; i++)
                n->attribute[i] = attrs[i];
        n->n_attribute = (size_t)na;
    }
    push(x, (void ***)&x->nodes, &x->num_nodes, &x->cap_nodes, n);
    return n;
}

/* float initializer; data copied */
static void add_float_init(exporter *x, const char *name, const int64_t *dims, int ndim,
                           const float *data, size_t count)
{
    Onnx__TensorProto *t = xalloc(x, sizeof *t);
    int64_t *d = xalloc(x, (size_t)ndim * sizeof *d);
    uint8_t *raw = xalloc(x, count * sizeof(float));
    if (!t || !d || !raw)
        return;
    onnx__tensor_proto__init(t);
    if (ndim > 0)
        memcpy(d, dims, (size_t)ndim * sizeof *d);
    memcpy(raw, data, count * sizeof(float)); /* raw_data is little-endian; so are our hosts */
    t->dims = d;
    t->n_dims = (size_t)ndim;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->name = xstrdup(x, name);
    t->raw_data.data = raw;
    t->raw_data.len = count * sizeof(float);
    push(x, (void ***)&x->inits, &x->num_inits, &x->cap_inits, t);
}

static void add_int64_init(exporter *x, const char *name, const int64_t *data, int count)
{
    Onnx__TensorProto *t = xalloc(x, sizeof *t);
    int64_t *d = xalloc(x, sizeof *d);
    int64_t *v = xalloc(x, (size_t)count * sizeof *v);
    if (!t || !d || !v)
        return;
    onnx__tensor_proto__init(t);
    d[0] = count;
    memcpy(v, data, (size_t)count * sizeof *v);
    t->dims = d;
    t->n_dims = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->name = xstrdup(x, name);
    t->int64_data = v;
    t->n_int64_data = (size_t)count;
    push(x, (void ***)&x->inits, &x->num_inits, &x->cap_inits, t);
}

static int resolve(const ev_graph *g, int i)
{
    while (g->nodes[i].op == EV_OP_DROP_PATH || g->nodes[i].op == EV_OP_DROPOUT)
        i = g->nodes[i].inputs[0];
    return i;
}

static int is_conv_only_concat(const ev_graph *g, const ev_node *n)
{
    for (int i = 0; i < n->num_inputs; i++)
        if (g->nodes[resolve(g, n->inputs[i])].op != EV_OP_CONV2D)
            return 0;
    return 1;
}

/* conv node ci as an ONNX Conv writing `out`; scale/shift: folded BN (NULL: plain conv) */
static void emit_conv(exporter *x, int ci, const char *out, const double *scale,
                      const double *shift)
{
    const ev_node *c = &x->g->nodes[ci];
    const ev_param *w = c->params[0], *cb = c->params[1];
    float *wf = xalloc(x, w->numel * sizeof *wf);
    float *bias = scale || cb ? xalloc(x, (size_t)c->shape.c * sizeof *bias) : NULL;
    if (!wf || ((scale || cb) && !bias))
        return;
    const size_t per = w->numel / (size_t)c->shape.c;
    for (int o = 0; o < c->shape.c; o++) {
        for (size_t j = 0; j < per; j++)
            wf[(size_t)o * per + j] =
                (float)((double)w->data[(size_t)o * per + j] * (scale ? scale[o] : 1.0));
        /* the conv's own bias b (VGG): BN(conv + b) = scale * conv + scale * b + shift */
        if (bias)
            bias[o] = (float)((cb ? (double)cb->data[o] * (scale ? scale[o] : 1.0) : 0.0) +
                              (shift ? shift[o] : 0.0));
    }
    char wname[48], bname[48];
    snprintf(wname, sizeof wname, "w%d", ci);
    snprintf(bname, sizeof bname, "b%d", ci);
    const int64_t dims[4] = {w->shape[0], w->shape[1], w->shape[2], w->shape[3]};
    add_float_init(x, wname, dims, 4, wf, w->numel);
    if (bias) {
        const int64_t bd[1] = {c->shape.c};
        add_float_init(x, bname, bd, 1, bias, (size_t)c->shape.c);
    }
    const int64_t k[2] = {c->kernel, c->kernel}, s[2] = {c->stride, c->stride};
    const int64_t d[2] = {c->dilation, c->dilation};
    const int64_t p[4] = {c->pad, c->pad, c->pad, c->pad};
    Onnx__AttributeProto *attrs[] = {
        attr_ints(x, "kernel_shape", k, 2), attr_ints(x, "strides", s, 2),
        attr_ints(x, "dilations", d, 2),    attr_ints(x, "pads", p, 4),
        attr_int(x, "group", c->groups),    NULL};
    const char *in[3] = {x->names[resolve(x->g, c->inputs[0])], wname, bname};
    add_node(x, "Conv", in, bias ? 3 : 2, out, attrs);
}

static void fold_bn(const ev_node *bn, double *scale, double *shift)
{
    const float *gamma = bn->params[0] ? bn->params[0]->data : NULL;
    const float *beta = bn->params[1] ? bn->params[1]->data : NULL;
    for (int i = 0; i < bn->shape.c; i++) {
        double s = (gamma ? gamma[i] : 1.0) / sqrt((double)bn->params[3]->data[i] + 1e-5);
        scale[i] = s;
        shift[i] = (beta ? beta[i] : 0.0) - (double)bn->params[2]->data[i] * s;
    }
}

/* zeros shaped like node ni (the `none` op): Mul(x strided, 0) */
static void emit_zero(exporter *x, int ni, const char *out)
{
    const ev_node *n = &x->g->nodes[ni];
    char src[48], zname[48];
    snprintf(src, sizeof src, "%s", x->names[resolve(x->g, n->inputs[0])]);
    if (n->stride > 1) {
        char names[4][48];
        const char *kinds[4] = {"starts", "ends", "axes", "steps"};
        const int64_t vals[4][2] = {{0, 0}, {INT64_MAX, INT64_MAX}, {2, 3}, {n->stride, n->stride}};
        for (int i = 0; i < 4; i++) {
            snprintf(names[i], sizeof names[i], "%s%d", kinds[i], ni);
            add_int64_init(x, names[i], vals[i], 2);
        }
        char sliced[48];
        snprintf(sliced, sizeof sliced, "zs%d", ni);
        const char *in[5] = {src, names[0], names[1], names[2], names[3]};
        add_node(x, "Slice", in, 5, sliced, NULL);
        snprintf(src, sizeof src, "%s", sliced);
    }
    snprintf(zname, sizeof zname, "zero%d", ni);
    const float zero = 0.0f;
    add_float_init(x, zname, NULL, 0, &zero, 1);
    const char *in[2] = {src, zname};
    add_node(x, "Mul", in, 2, out, NULL);
}

static int export_graph(exporter *x, double *scale, double *shift)
{
    const ev_graph *g = x->g;
    const int nn = g->num_nodes;
    unsigned char *needed = ev_graph_logits_closure(g);
    if (!needed)
        return ev_fail(x->err, EV_ERR_NOMEM, "onnx: out of memory");
    for (int i = 0; i < nn; i++)
        if (needed[i] && g->nodes[i].op != EV_OP_DROP_PATH && g->nodes[i].op != EV_OP_DROPOUT)
            for (int j = 0; j < g->nodes[i].num_inputs; j++) {
                int b = resolve(g, g->nodes[i].inputs[j]);
                x->uses[b]++;
                x->consumer[b] = i;
            }

    int rc = EV_OK;
    for (int i = 0; i < nn && !rc && !x->failed; i++) {
        const ev_node *n = &g->nodes[i];
        if (!needed[i])
            continue;
        snprintf(x->names[i], sizeof x->names[i], "t%d", i);
        const char *in0 = n->num_inputs ? x->names[resolve(g, n->inputs[0])] : NULL;
        const int bn_next = x->uses[i] == 1 && g->nodes[x->consumer[i]].op == EV_OP_BATCHNORM;
        switch (n->op) {
        case EV_OP_INPUT:
            snprintf(x->names[i], sizeof x->names[i], "input");
            break;
        case EV_OP_DROP_PATH:
        case EV_OP_DROPOUT: /* training only */
            snprintf(x->names[i], sizeof x->names[i], "%s", in0);
            break;
        case EV_OP_ADAPTIVE_AVGPOOL: {
            /* PyTorch's windows as one constant matrix P (H*W x oh*ow): Reshape (N, C, H*W),
             * MatMul P, Reshape (N, C, oh, ow); exact for any sizes, overlapping windows too */
            const ev_shape xs = g->nodes[resolve(g, n->inputs[0])].shape, ys = n->shape;
            const size_t hw = (size_t)xs.h * (size_t)xs.w, ohw = (size_t)ys.h * (size_t)ys.w;
            float *pm = xalloc(x, hw * ohw * sizeof *pm);
            if (!pm) {
                rc = ev_fail(x->err, EV_ERR_NOMEM, "onnx: out of memory");
                break;
            }
            for (int oy = 0; oy < ys.h; oy++)
                for (int ox = 0; ox < ys.w; ox++) {
                    const int y0 = (int)((long long)oy * xs.h / ys.h);
                    const int y1 = (int)(((long long)(oy + 1) * xs.h + ys.h - 1) / ys.h);
                    const int x0 = (int)((long long)ox * xs.w / ys.w);
                    const int x1 = (int)(((long long)(ox + 1) * xs.w + ys.w - 1) / ys.w);
                    const float v = 1.0f / (float)((y1 - y0) * (x1 - x0));
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                            pm[((size_t)iy * (size_t)xs.w + (size_t)ix) * ohw +
                               (size_t)oy * (size_t)ys.w + (size_t)ox] = v;
                }
            char pname[32], s1[32], s2[32], flat[32], mm[32];
            snprintf(pname, sizeof pname, "apool%d", i);
            snprintf(s1, sizeof s1, "apool_in%d", i);
            snprintf(s2, sizeof s2, "apool_out%d", i);
            snprintf(flat, sizeof flat, "apool_flat%d", i);
            snprintf(mm, sizeof mm, "apool_mm%d", i);
            const int64_t pd[2] = {(int64_t)hw, (int64_t)ohw};
            add_float_init(x, pname, pd, 2, pm, hw * ohw);
            const int64_t shape_in[3] = {0, xs.c, (int64_t)hw},
                          shape_out[4] = {0, ys.c, ys.h, ys.w};
            add_int64_init(x, s1, shape_in, 3);
            add_int64_init(x, s2, shape_out, 4);
            const char *rin[2] = {in0, s1};
            add_node(x, "Reshape", rin, 2, flat, NULL);
            const char *min[2] = {flat, pname};
            add_node(x, "MatMul", min, 2, mm, NULL);
            const char *oin[2] = {mm, s2};
            add_node(x, "Reshape", oin, 2, x->names[i], NULL);
            break;
        }
        case EV_OP_CONV2D: {
            /* convs before a BN, directly or through FactorizedReduce's concat, are emitted by
             * the BN with the BN folded in */
            const ev_node *next = x->uses[i] == 1 ? &g->nodes[x->consumer[i]] : NULL;
            int deferred = bn_next;
            if (next && next->op == EV_OP_CONCAT && is_conv_only_concat(g, next)) {
                int ci = (int)(next - g->nodes);
                deferred = x->uses[ci] == 1 && g->nodes[x->consumer[ci]].op == EV_OP_BATCHNORM;
            }
            if (!deferred)
                emit_conv(x, i, x->names[i], NULL, NULL);
            break;
        }
        case EV_OP_BATCHNORM: {
            int src = resolve(g, n->inputs[0]);
            const ev_node *s = &g->nodes[src];
            fold_bn(n, scale, shift);
            if (s->op == EV_OP_CONV2D && x->uses[src] == 1) {
                emit_conv(x, src, x->names[i], scale, shift);
            } else if (s->op == EV_OP_CONCAT && x->uses[src] == 1 && is_conv_only_concat(g, s)) {
                const char *parts[EV_NODE_MAX_INPUTS];
                char part_names[EV_NODE_MAX_INPUTS][32];
                int off = 0;
                for (int j = 0; j < s->num_inputs; j++) {
                    int ci = resolve(g, s->inputs[j]);
                    snprintf(part_names[j], sizeof part_names[j], "t%d", ci);
                    emit_conv(x, ci, part_names[j], scale + off, shift + off);
                    parts[j] = part_names[j];
                    off += g->nodes[ci].shape.c;
                }
                Onnx__AttributeProto *attrs[] = {attr_int(x, "axis", 1), NULL};
                add_node(x, "Concat", parts, s->num_inputs, x->names[i], attrs);
            } else {
                /* a batch norm of a shared tensor (DenseNet's norm1 of a dense block's
                 * concatenation): the folded per-channel affine as Mul and Add */
                const int c = n->shape.c;
                float *fs = xalloc(x, 2 * (size_t)c * sizeof *fs);
                if (!fs) {
                    rc = ev_fail(x->err, EV_ERR_NOMEM, "onnx: out of memory");
                    break;
                }
                for (int j = 0; j < c; j++) {
                    fs[j] = (float)scale[j];
                    fs[c + j] = (float)shift[j];
                }
                char sname[32], bname[32], mname[32];
                snprintf(sname, sizeof sname, "bn_scale%d", i);
                snprintf(bname, sizeof bname, "bn_shift%d", i);
                snprintf(mname, sizeof mname, "bn_mul%d", i);
                const int64_t dims[4] = {1, c, 1, 1};
                add_float_init(x, sname, dims, 4, fs, (size_t)c);
                add_float_init(x, bname, dims, 4, fs + c, (size_t)c);
                const char *mul_in[2] = {in0, sname};
                add_node(x, "Mul", mul_in, 2, mname, NULL);
                const char *add_in[2] = {mname, bname};
                add_node(x, "Add", add_in, 2, x->names[i], NULL);
            }
            break;
        }
        case EV_OP_RELU: {
            const char *in[1] = {in0};
            add_node(x, "Relu", in, 1, x->names[i], NULL);
            break;
        }
        case EV_OP_CROP: {
            char names[3][48];
            const char *kinds[3] = {"cstarts", "cends", "caxes"};
            const int64_t vals[3][2] = {{n->crop, n->crop}, {INT64_MAX, INT64_MAX}, {2, 3}};
            for (int j = 0; j < 3; j++) {
                snprintf(names[j], sizeof names[j], "%s%d", kinds[j], i);
                add_int64_init(x, names[j], vals[j], 2);
            }
            const char *in[4] = {in0, names[0], names[1], names[2]};
            add_node(x, "Slice", in, 4, x->names[i], NULL);
            break;
        }
        case EV_OP_MAXPOOL:
        case EV_OP_AVGPOOL: {
            const int64_t k[2] = {n->kernel, n->kernel}, s[2] = {n->stride, n->stride};
            const int64_t p[4] = {n->pad, n->pad, n->pad, n->pad};
            const char *in[1] = {in0};
            if (n->op == EV_OP_MAXPOOL) {
                Onnx__AttributeProto *attrs[] = {attr_ints(x, "kernel_shape", k, 2),
                                                 attr_ints(x, "strides", s, 2),
                                                 attr_ints(x, "pads", p, 4), NULL};
                add_node(x, "MaxPool", in, 1, x->names[i], attrs);
            } else {
                Onnx__AttributeProto *attrs[] = {
                    attr_ints(x, "kernel_shape", k, 2), attr_ints(x, "strides", s, 2),
                    attr_ints(x, "pads", p, 4), attr_int(x, "count_include_pad", 0), NULL};
                add_node(x, "AveragePool", in, 1, x->names[i], attrs);
            }
            break;
        }
        case EV_OP_ZERO:
            /* emitted only where a sum has nothing else (see EV_OP_ADD) */
            break;
        case EV_OP_ADD: {
            const char *terms[EV_NODE_MAX_INPUTS];
            int nt = 0;
            for (int j = 0; j < n->num_inputs; j++) {
                int b = resolve(g, n->inputs[j]);
                if (g->nodes[b].op != EV_OP_ZERO)
                    terms[nt++] = x->names[b];
            }
            if (nt == 0) {
                emit_zero(x, resolve(g, n->inputs[0]), x->names[i]);
            } else if (nt == 1) {
                add_node(x, "Identity", terms, 1, x->names[i], NULL);
            } else {
                char partial[48];
                const char *acc = terms[0];
                for (int j = 1; j < nt; j++) {
                    const char *in[2] = {acc, terms[j]};
                    if (j == nt - 1) {
                        add_node(x, "Add", in, 2, x->names[i], NULL);
                    } else {
                        snprintf(partial, sizeof partial, "t%d_%d", i, j);
                        add_node(x, "Add", in, 2, partial, NULL);
                        acc = partial;
                    }
                }
            }
            break;
        }
        case EV_OP_CONCAT:
            if (!(bn_next && is_conv_only_concat(g, n))) {
                const char *parts[EV_NODE_MAX_INPUTS];
                for (int j = 0; j < n->num_inputs; j++) {
                    int b = resolve(g, n->inputs[j]);
                    if (g->nodes[b].op == EV_OP_ZERO) {
                        rc = ev_fail(x->err, EV_ERR_UNSUPPORTED, "onnx: concat of a zero node");
                        break;
                    }
                    parts[j] = x->names[b];
                }
                Onnx__AttributeProto *attrs[] = {attr_int(x, "axis", 1), NULL};
                add_node(x, "Concat", parts, n->num_inputs, x->names[i], attrs);
            }
            break;
        case EV_OP_GAP: {
            char pooled[48];
            snprintf(pooled, sizeof pooled, "gap%d", i);
            const char *in[1] = {in0};
            add_node(x, "GlobalAveragePool", in, 1, pooled, NULL);
            const char *fin[1] = {pooled};
            Onnx__AttributeProto *attrs[] = {attr_int(x, "axis", 1), NULL};
            add_node(x, "Flatten", fin, 1, x->names[i], attrs);
            break;
        }
        case EV_OP_LINEAR: {
            const ev_param *w = n->params[0], *b = n->params[1];
            const int64_t wd[2] = {w->shape[0], w->shape[1]}, bd[1] = {w->shape[0]};
            /* the logits layer keeps the names it always had; VGG's hidden layers are lw/lb<i> */
            char wname[48], bname[48];
            snprintf(wname, sizeof wname, i == g->logits ? "classifier.weight" : "lw%d", i);
            snprintf(bname, sizeof bname, i == g->logits ? "classifier.bias" : "lb%d", i);
            add_float_init(x, wname, wd, 2, w->data, w->numel);
            const float *bias = b ? b->data : NULL;
            float *zeros = bias ? NULL : xalloc(x, (size_t)w->shape[0] * sizeof(float));
            add_float_init(x, bname, bd, 1, bias ? bias : zeros, (size_t)w->shape[0]);
            char flat[48];
            if (g->nodes[resolve(g, n->inputs[0])].op == EV_OP_ADAPTIVE_AVGPOOL) {
                /* Gemm takes (N, C*H*W): flattened in PyTorch's order */
                snprintf(flat, sizeof flat, "flat%d", i);
                const char *fin[1] = {in0};
                Onnx__AttributeProto *fattrs[] = {attr_int(x, "axis", 1), NULL};
                add_node(x, "Flatten", fin, 1, flat, fattrs);
                in0 = flat;
            }
            const char *in[3] = {in0, wname, bname};
            Onnx__AttributeProto *attrs[] = {attr_int(x, "transB", 1), NULL};
            add_node(x, "Gemm", in, 3, i == g->logits ? "logits" : x->names[i], attrs);
            break;
        }
        default:
            rc = ev_fail(x->err, EV_ERR_UNSUPPORTED, "onnx: node %d (%s): op %s not exported", i,
                         n->tag, ev_op_name(n->op));
        }
    }
    free(needed);
    return rc;
}

static Onnx__ValueInfoProto *value_info(exporter *x, const char *name, int c, int h, int w,
                                        int ndim)
{
    Onnx__ValueInfoProto *v = xalloc(x, sizeof *v);
    Onnx__TypeProto *t = xalloc(x, sizeof *t);
    Onnx__TypeProto__Tensor *tt = xalloc(x, sizeof *tt);
    Onnx__TensorShapeProto *s = xalloc(x, sizeof *s);
    Onnx__TensorShapeProto__Dimension **dims = xalloc(x, 4 * sizeof *dims);
    if (!v || !t || !tt || !s || !dims)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(s);
    const int64_t sizes[4] = {0, c, h, w};
    for (int i = 0; i < ndim; i++) {
        dims[i] = xalloc(x, sizeof *dims[i]);
        if (!dims[i])
            return NULL;
        onnx__tensor_shape_proto__dimension__init(dims[i]);
        if (i == 0) {
            dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dims[i]->dim_param = xstrdup(x, "N");
        } else {
            dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dims[i]->dim_value = sizes[i];
        }
    }
    s->dim = dims;
    s->n_dim = (size_t)ndim;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = s;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = xstrdup(x, name);
    v->type = t;
    return v;
}

/* A JSON string of s (quotes, backslashes and control characters escaped) appended at *p. */
static void json_string_append(char **p, const char *s)
{
    *(*p)++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            *p += sprintf(*p, "\\%c", *c);
        else if (*c < 0x20)
            *p += sprintf(*p, "\\u%04x", *c);
        else
            *(*p)++ = (char)*c;
    }
    *(*p)++ = '"';
    **p = 0;
}

/* What a runtime needs beyond the graph, as metadata_props (JSON values): the class names of
 * the logits, the input size and the preprocessing (x = (pixel * scale - mean) / std after the
 * crop, area resize and luma, and the sector normalisation when "normalize" says so), and the
 * calibration temperature the logits are to be divided by. */
static Onnx__StringStringEntryProto **model_metadata(exporter *x, const ev_model *m, size_t *n)
{
    size_t need = 8;
    for (int i = 0; i < m->num_classes; i++)
        need += 6 * strlen(m->class_names[i]) + 4;
    char *classes = xalloc(x, need), *p = classes;
    char input[96], pre[512], temperature[48];
    Onnx__StringStringEntryProto **props = xalloc(x, 4 * sizeof *props);
    if (!classes || !props)
        return NULL;
    *p++ = '[';
    for (int i = 0; i < m->num_classes; i++) {
        if (i)
            *p++ = ',';
        json_string_append(&p, m->class_names[i]);
    }
    *p++ = ']';
    *p = 0;
    ev_preprocess_params pp;
    ev_model_preprocess_params(m, &pp);
    snprintf(input, sizeof input, "{\"width\":%d,\"height\":%d,\"channels\":%d}", pp.width,
             pp.height, pp.channels);
    int w = snprintf(pre, sizeof pre, "{\"scale\":%.9g,\"mean\":[", (double)pp.scale);
    for (int c = 0; c < pp.channels; c++)
        w += snprintf(pre + w, sizeof pre - (size_t)w, "%s%.9g", c ? "," : "", (double)pp.mean[c]);
    w += snprintf(pre + w, sizeof pre - (size_t)w, "],\"std\":[");
    for (int c = 0; c < pp.channels; c++)
        w += snprintf(pre + w, sizeof pre - (size_t)w, "%s%.9g", c ? "," : "", (double)pp.std[c]);
    snprintf(pre + w, sizeof pre - (size_t)w, "],\"normalize\":\"%s\"}",
             pp.normalize == EV_NORMALIZE_SECTOR ? "sector" : "none");
    snprintf(temperature, sizeof temperature, "%.9g", (double)ev_model_temperature(m));
    const char *keys[4] = {"classes", "input", "preprocess", "temperature"};
    const char *values[4] = {classes, input, pre, temperature};
    for (int i = 0; i < 4; i++) {
        Onnx__StringStringEntryProto *e = xalloc(x, sizeof *e);
        if (!e)
            return NULL;
        onnx__string_string_entry_proto__init(e);
        e->key = xstrdup(x, keys[i]);
        e->value = xstrdup(x, values[i]);
        props[i] = e;
    }
    *n = 4;
    return props;
}

int ev_model_export_onnx(const ev_model *m, const char *path, ev_error *err)
{
    return ev_model_export_onnx_with(m, path, NULL, err);
}

int ev_model_export_onnx_with(const ev_model *m, const char *path, const ev_onnx_options *o,
                              ev_error *err)
{
    const bool probabilities = o && o->probabilities;
    if (!m || !path)
        return ev_fail(err, EV_ERR_INVALID, "onnx: NULL argument");
    const ev_graph *g = &m->net->graph;
    exporter x = {.g = g, .err = err};
    const size_t nn = (size_t)g->num_nodes;
    x.names = calloc(nn, sizeof *x.names);
    x.uses = calloc(nn, sizeof *x.uses);
    x.consumer = calloc(nn, sizeof *x.consumer);
    int maxc = 1;
    for (size_t i = 0; i < nn; i++)
        if (g->nodes[i].shape.c > maxc)
            maxc = g->nodes[i].shape.c;
    double *scale = calloc((size_t)maxc, sizeof *scale);
    double *shift = calloc((size_t)maxc, sizeof *shift);
    uint8_t *buf = NULL;
    FILE *f = NULL;
    int rc;
    if (!x.names || !x.uses || !x.consumer || !scale || !shift) {
        rc = ev_fail(err, EV_ERR_NOMEM, "onnx: out of memory");
        goto out;
    }
    if ((rc = export_graph(&x, scale, shift)))
        goto out;
    if (probabilities) { /* softmax(logits / temperature) over the classes */
        const float t = ev_model_temperature(m);
        const int64_t one[1] = {1};
        add_float_init(&x, "temperature", one, 1, &t, 1);
        const char *div_in[2] = {"logits", "temperature"}, *sm_in[1] = {"scaled_logits"};
        add_node(&x, "Div", div_in, 2, "scaled_logits", NULL);
        Onnx__AttributeProto *attrs[] = {attr_int(&x, "axis", 1), NULL};
        add_node(&x, "Softmax", sm_in, 1, "probabilities", attrs);
    }

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = "echoview";
    graph.node = x.nodes;
    graph.n_node = x.num_nodes;
    graph.initializer = x.inits;
    graph.n_initializer = x.num_inits;
    const ev_shape in = g->nodes[g->input].shape;
    Onnx__ValueInfoProto *inputs[1] = {value_info(&x, "input", in.c, in.h, in.w, 4)};
    Onnx__ValueInfoProto *outputs[2] = {
        value_info(&x, "logits", m->num_classes, 0, 0, 2),
        probabilities ? value_info(&x, "probabilities", m->num_classes, 0, 0, 2) : NULL};
    graph.input = inputs;
    graph.n_input = 1;
    graph.output = outputs;
    graph.n_output = probabilities ? 2 : 1;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = "";
    opset.version = ONNX_OPSET;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.ir_version = ONNX_IR_VERSION;
    model.producer_name = "echoview";
    model.producer_version = EV_VERSION;
    model.graph = &graph;
    model.opset_import = opsets;
    model.n_opset_import = 1;
    model.metadata_props = model_metadata(&x, m, &model.n_metadata_props);
    if (x.failed || !inputs[0] || !outputs[0] || (probabilities && !outputs[1]) ||
        !model.metadata_props) {
        rc = ev_fail(err, EV_ERR_NOMEM, "onnx: out of memory");
        goto out;
    }
    size_t size = onnx__model_proto__get_packed_size(&model);
    if (!(buf = malloc(size ? size : 1))) {
        rc = ev_fail(err, EV_ERR_NOMEM, "onnx: out of memory for %zu bytes", size);
        goto out;
    }
    onnx__model_proto__pack(&model, buf);
    if (!(f = fopen(path, "wb")) || fwrite(buf, 1, size, f) != size) {
        rc = ev_fail(err, EV_ERR_IO, "onnx: %s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    if (fclose(f)) {
        f = NULL;
        rc = ev_fail(err, EV_ERR_IO, "onnx: %s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    f = NULL;
out:
    if (f)
        fclose(f);
    free(buf);
    for (size_t i = 0; i < x.num_allocs; i++)
        free(x.allocs[i]);
    free(x.allocs);
    free(x.nodes);
    free(x.inits);
    free(x.names);
    free(x.uses);
    free(x.consumer);
    free(scale);
    free(shift);
    return rc;
}
