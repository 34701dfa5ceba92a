/* net_builder.c: the graph-building steps shared by the evaluation network (network.c) and the
 * search supernet (search/supernet.c): parameters named like the reference state_dict, nodes,
 * the DARTS blocks (ReLU-conv-BN, FactorizedReduce, depthwise-pointwise-BN), the stem, a cell's
 * two preprocessing nodes, the classifier head, and the parameter storage. The two networks
 * differ only in what they pass: BN affine on (evaluation) or off (search), the message prefix. */
#include "ev_builder.h"
#include "ops_ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ev_builder_fail(ev_builder *b, int code, const char *msg)
{
    if (!b->rc)
        b->rc = ev_fail(b->err, code, "%s: %s", b->who, msg);
    return -1;
}

int ev_builder_param(ev_builder *b, ev_param_kind kind, int ndim, const int *shape, const char *fmt,
                     ...)
{
    ev_net *net = b->net;
    if (b->rc)
        return -1;
    if (net->num_params == net->cap_params) {
        int cap = net->cap_params ? net->cap_params * 2 : 256;
        ev_param *p = realloc(net->params, (size_t)cap * sizeof *p);
        if (!p)
            return ev_builder_fail(b, EV_ERR_NOMEM, "out of memory");
        net->params = p;
        net->cap_params = cap;
    }
    ev_param *p = &net->params[net->num_params];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->kind = kind;
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        if (!ev_mul_size(p->numel, (size_t)shape[i], &p->numel))
            return ev_builder_fail(b, EV_ERR_NOMEM, "parameter size overflows");
    }
    p->auxiliary = b->aux;
    return net->num_params++;
}

int ev_builder_node(ev_builder *b, ev_op op, ev_shape shape, int num_inputs, const int *inputs,
                    int cell, const char *tag)
{
    ev_graph *g = &b->net->graph;
    if (b->rc)
        return -1;
    if (shape.c < 1 || shape.h < 1 || shape.w < 1)
        return ev_builder_fail(b, EV_ERR_INVALID,
                               "a feature map shrank to nothing (input too small)");
    if (g->num_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        ev_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return ev_builder_fail(b, EV_ERR_NOMEM, "out of memory");
        g->nodes = n;
        g->cap_nodes = cap;
    }
    ev_node *n = &g->nodes[g->num_nodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->shape = shape;
    n->num_inputs = num_inputs;
    for (int i = 0; i < num_inputs; i++)
        n->inputs[i] = inputs[i];
    for (int i = 0; i < 4; i++)
        n->param_index[i] = -1;
    n->cell = cell;
    snprintf(n->tag, sizeof n->tag, "%s", tag ? tag : "");
    n->auxiliary = b->aux;
    return g->num_nodes++;
}

/* After a failure node indices may be -1; callers stop at b->rc, this keeps them in bounds. */
ev_shape ev_builder_shape(const ev_builder *b, int node)
{
    if (b->rc || node < 0 || node >= b->net->graph.num_nodes)
        return (ev_shape){1, 2, 2, 2};
    return b->net->graph.nodes[node].shape;
}

int ev_builder_conv(ev_builder *b, int x, int cout, int k, int stride, int pad, int dil, int groups,
                    int cell, const char *name)
{
    if (b->rc)
        return -1;
    ev_shape xs = ev_builder_shape(b, x);
    ev_shape ys = {xs.n, cout, ev_conv2d_out_size(xs.h, k, stride, pad, dil),
                   ev_conv2d_out_size(xs.w, k, stride, pad, dil)};
    int node = ev_builder_node(b, EV_OP_CONV2D, ys, 1, &x, cell, name);
    int shape[4] = {cout, xs.c / groups, k, k};
    int p = ev_builder_param(b, EV_PARAM_WEIGHT, 4, shape, "%s.weight", name);
    if (node < 0 || p < 0)
        return -1;
    ev_node *n = &b->net->graph.nodes[node];
    n->kernel = k;
    n->stride = stride;
    n->pad = pad;
    n->dilation = dil;
    n->groups = groups;
    n->param_index[0] = p;
    return node;
}

int ev_builder_batchnorm(ev_builder *b, int x, bool affine, int cell, const char *name)
{
    if (b->rc)
        return -1;
    ev_shape xs = ev_builder_shape(b, x);
    int node = ev_builder_node(b, EV_OP_BATCHNORM, xs, 1, &x, cell, name);
    int c = xs.c;
    int pw = affine ? ev_builder_param(b, EV_PARAM_BN_WEIGHT, 1, &c, "%s.weight", name) : -1;
    int pb = affine ? ev_builder_param(b, EV_PARAM_BN_BIAS, 1, &c, "%s.bias", name) : -1;
    int pm = ev_builder_param(b, EV_PARAM_RUNNING_MEAN, 1, &c, "%s.running_mean", name);
    int pv = ev_builder_param(b, EV_PARAM_RUNNING_VAR, 1, &c, "%s.running_var", name);
    if (node < 0 || pm < 0 || pv < 0)
        return -1;
    ev_node *n = &b->net->graph.nodes[node];
    n->param_index[0] = pw;
    n->param_index[1] = pb;
    n->param_index[2] = pm;
    n->param_index[3] = pv;
    return node;
}

int ev_builder_unary(ev_builder *b, ev_op op, int x, int cell, const char *tag)
{
    if (b->rc)
        return -1;
    return ev_builder_node(b, op, ev_builder_shape(b, x), 1, &x, cell, tag);
}

int ev_builder_pool(ev_builder *b, ev_op op, int x, int k, int stride, int pad, int cell,
                    const char *tag)
{
    if (b->rc)
        return -1;
    ev_shape xs = ev_builder_shape(b, x);
    ev_shape ys = {xs.n, xs.c, ev_conv2d_out_size(xs.h, k, stride, pad, 1),
                   ev_conv2d_out_size(xs.w, k, stride, pad, 1)};
    int node = ev_builder_node(b, op, ys, 1, &x, cell, tag);
    if (node >= 0) {
        ev_node *n = &b->net->graph.nodes[node];
        n->kernel = k;
        n->stride = stride;
        n->pad = pad;
    }
    return node;
}

int ev_builder_sum(ev_builder *b, ev_op op, const int *in, int count, int cell, const char *tag)
{
    if (b->rc)
        return -1;
    ev_shape s = ev_builder_shape(b, in[0]);
    if (op == EV_OP_CONCAT)
        s.c = 0;
    for (int i = 0; i < count; i++) {
        ev_shape si = ev_builder_shape(b, in[i]);
        if (si.h != s.h || si.w != s.w || (op == EV_OP_ADD && si.c != s.c))
            return ev_builder_fail(b, EV_ERR_INVALID, "shape mismatch inside a cell");
        if (op == EV_OP_CONCAT)
            s.c += si.c;
    }
    return ev_builder_node(b, op, s, count, in, cell, tag);
}

static int relu_conv_bn(ev_builder *b, int x, int cout, bool affine, int cell, const char *prefix)
{
    char name[2 * EV_PARAM_NAME_MAX];
    int r = ev_builder_unary(b, EV_OP_RELU, x, cell, prefix);
    snprintf(name, sizeof name, "%s.op.1", prefix);
    int c = ev_builder_conv(b, r, cout, 1, 1, 0, 1, 1, cell, name);
    snprintf(name, sizeof name, "%s.op.2", prefix);
    return ev_builder_batchnorm(b, c, affine, cell, name);
}

int ev_builder_factorized_reduce(ev_builder *b, int r, int cout, bool affine, int cell,
                                 const char *prefix)
{
    char name[2 * EV_PARAM_NAME_MAX];
    ev_shape xs = ev_builder_shape(b, r);
    if (cout % 2 || xs.h % 2 || xs.w % 2)
        return ev_builder_fail(b, EV_ERR_INVALID,
                               "FactorizedReduce needs even channels and feature-map sizes (use "
                               "an input size that is a multiple of 2^reductions)");
    snprintf(name, sizeof name, "%s.conv_1", prefix);
    int a = ev_builder_conv(b, r, cout / 2, 1, 2, 0, 1, 1, cell, name);
    int shifted = ev_builder_unary(b, EV_OP_CROP, r, cell, prefix);
    if (shifted >= 0) {
        ev_node *n = &b->net->graph.nodes[shifted];
        n->crop = 1;
        n->shape.h = xs.h - 1;
        n->shape.w = xs.w - 1;
    }
    snprintf(name, sizeof name, "%s.conv_2", prefix);
    int c = ev_builder_conv(b, shifted, cout / 2, 1, 2, 0, 1, 1, cell, name);
    int in[2] = {a, c};
    int cat = ev_builder_sum(b, EV_OP_CONCAT, in, 2, cell, prefix);
    snprintf(name, sizeof name, "%s.bn", prefix);
    return ev_builder_batchnorm(b, cat, affine, cell, name);
}

int ev_builder_dw_pw_bn(ev_builder *b, int r, int k, int stride, int pad, int dil, bool affine,
                        int cell, const char *prefix, int first)
{
    char name[2 * EV_PARAM_NAME_MAX];
    int c = ev_builder_shape(b, r).c;
    snprintf(name, sizeof name, "%s.op.%d", prefix, first);
    int dw = ev_builder_conv(b, r, c, k, stride, pad, dil, c, cell, name);
    snprintf(name, sizeof name, "%s.op.%d", prefix, first + 1);
    int pw = ev_builder_conv(b, dw, c, 1, 1, 0, 1, 1, cell, name);
    snprintf(name, sizeof name, "%s.op.%d", prefix, first + 2);
    return ev_builder_batchnorm(b, pw, affine, cell, name);
}

int ev_builder_stem(ev_builder *b, ev_shape input, int init_channels)
{
    ev_graph *g = &b->net->graph;
    g->aux_logits = -1;
    g->input = ev_builder_node(b, EV_OP_INPUT, input, 0, NULL, -1, "input");
    int stem = ev_builder_conv(b, g->input, 3 * init_channels, 3, 1, 1, 1, 1, -1, "stem.0");
    return ev_builder_batchnorm(b, stem, true, -1, "stem.1");
}

void ev_builder_preprocess(ev_builder *b, int cell, int s0, int s1, int c, bool reduction_prev,
                           bool affine, int *p0, int *p1)
{
    char prefix[EV_PARAM_NAME_MAX];
    snprintf(prefix, sizeof prefix, "cells.%d.preprocess0", cell);
    if (reduction_prev) {
        int r = ev_builder_unary(b, EV_OP_RELU, s0, cell, prefix);
        *p0 = ev_builder_factorized_reduce(b, r, c, affine, cell, prefix);
    } else {
        *p0 = relu_conv_bn(b, s0, c, affine, cell, prefix);
    }
    snprintf(prefix, sizeof prefix, "cells.%d.preprocess1", cell);
    *p1 = relu_conv_bn(b, s1, c, affine, cell, prefix);
}

int ev_builder_linear(ev_builder *b, int x, int out, int cell, const char *name)
{
    if (b->rc)
        return -1;
    ev_shape xs = ev_builder_shape(b, x);
    ev_shape ls = {xs.n, out, 1, 1};
    int node = ev_builder_node(b, EV_OP_LINEAR, ls, 1, &x, cell, name);
    int wshape[2] = {out, xs.c * xs.h * xs.w};
    int pw = ev_builder_param(b, EV_PARAM_WEIGHT, 2, wshape, "%s.weight", name);
    int pb = ev_builder_param(b, EV_PARAM_BIAS, 1, wshape, "%s.bias", name);
    if (node < 0 || pw < 0 || pb < 0)
        return -1;
    b->net->graph.nodes[node].param_index[0] = pw;
    b->net->graph.nodes[node].param_index[1] = pb;
    return node;
}

int ev_builder_classifier_named(ev_builder *b, int x, int num_classes, const char *name)
{
    ev_graph *g = &b->net->graph;
    int gap = ev_builder_unary(b, EV_OP_GAP, x, -1, "global_pooling");
    if (gap < 0)
        return b->rc;
    g->nodes[gap].shape.h = g->nodes[gap].shape.w = 1;
    g->logits = ev_builder_linear(b, gap, num_classes, -1, name);
    return b->rc;
}

int ev_builder_classifier(ev_builder *b, int x, int num_classes, int batch)
{
    (void)batch; /* the classifier has the batch of its input */
    return ev_builder_classifier_named(b, x, num_classes, "classifier");
}

int ev_net_alloc_params(ev_net *net, bool with_grads, const char *who, ev_error *err)
{
    size_t total = 0, grad_total = 0;
    for (int i = 0; i < net->num_params; i++) {
        size_t padded = (net->params[i].numel + 15) & ~(size_t)15;
        if (!ev_add_size(total, padded, &total))
            return ev_fail(err, EV_ERR_NOMEM, "%s: parameters overflow", who);
        if (ev_param_trainable(&net->params[i]))
            grad_total += padded;
    }
    /* 64 spare bytes past the last tensor, as the supernet has always had */
    size_t bytes;
    if (!ev_mul_size(total, sizeof(float), &bytes) || !ev_add_size(bytes, 64, &bytes) ||
        !(net->param_storage = ev_aligned_alloc(bytes)))
        return ev_fail(err, EV_ERR_NOMEM, "%s: out of memory for %zu parameters", who, total);
    if (with_grads && !(net->grad_storage = ev_aligned_alloc(grad_total * sizeof(float) + 64)))
        return ev_fail(err, EV_ERR_NOMEM, "%s: out of memory for gradients", who);
    size_t off = 0, goff = 0;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        size_t padded = (p->numel + 15) & ~(size_t)15;
        p->data = net->param_storage + off;
        off += padded;
        if (with_grads && ev_param_trainable(p)) {
            p->grad = net->grad_storage + goff;
            goff += padded;
        }
        if (p->kind == EV_PARAM_BN_WEIGHT || p->kind == EV_PARAM_RUNNING_VAR)
            for (size_t j = 0; j < p->numel; j++)
                p->data[j] = 1.0f;
    }
    for (int i = 0; i < net->graph.num_nodes; i++) {
        ev_node *n = &net->graph.nodes[i];
        for (int k = 0; k < 4; k++)
            n->params[k] = n->param_index[k] >= 0 ? &net->params[n->param_index[k]] : NULL;
    }
    return EV_OK;
}
