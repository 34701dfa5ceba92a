/* network.c: assembles the DARTS evaluation network (reference model.py NetworkCIFAR, with
 * explicit layouts and any input channels) from a genotype: the parameters, named exactly like
 * the reference state_dict, and the compute graph that the reference backend runs forward and
 * backward and that the fast backends compile into their own plans. */
#include "ev_builder.h"
#include "ops_ref.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

void ev_layout_from_layers(int layers, bool *reduction)
{
    for (int i = 0; i < layers && i < EV_MAX_CELLS; i++)
        reduction[i] = (i == layers / 3 || i == 2 * layers / 3);
}

/* ---- configuration checks ----------------------------------------------------------------- */

static int aux_cell_index(const ev_net_config *cfg) { return 2 * cfg->num_cells / 3; }

/* Input channels, classes and input size: the same limits for every architecture. */
static int net_io_check(const ev_net_config *cfg, ev_error *err)
{
    if (cfg->in_channels < 1 || cfg->in_channels > 4)
        return ev_fail(err, EV_ERR_INVALID, "network: %d input channels; need 1..4",
                       cfg->in_channels);
    if (cfg->num_classes < 1 || cfg->num_classes > EV_MAX_CLASSES)
        return ev_fail(err, EV_ERR_INVALID, "network: %d classes; need 1..%d", cfg->num_classes,
                       EV_MAX_CLASSES);
    if (cfg->input_height < 1 || cfg->input_width < 1 || cfg->input_height > 4096 ||
        cfg->input_width > 4096)
        return ev_fail(err, EV_ERR_INVALID, "network: input %dx%d out of range 1..4096",
                       cfg->input_width, cfg->input_height);
    return EV_OK;
}

static int ev_net_config_check(const ev_net_config *cfg, ev_error *err)
{
    int io = net_io_check(cfg, err);
    if (io)
        return io;
    if (cfg->arch != EV_ARCH_DARTS)
        return ev_baseline_config_check(cfg, err);
    int rc = ev_genotype_validate(&cfg->genotype, err);
    if (rc)
        return rc;
    if (cfg->init_channels < 1 || cfg->init_channels > 4096)
        return ev_fail(err, EV_ERR_INVALID, "network: init_channels %d out of range 1..4096",
                       cfg->init_channels);
    if (cfg->num_cells < 1 || cfg->num_cells > EV_MAX_CELLS)
        return ev_fail(err, EV_ERR_INVALID, "network: %d cells; need 1..%d", cfg->num_cells,
                       EV_MAX_CELLS);
    if (cfg->drop_path_prob < 0.0f || cfg->drop_path_prob >= 1.0f)
        return ev_fail(err, EV_ERR_INVALID, "network: drop_path_prob %g out of range [0, 1)",
                       (double)cfg->drop_path_prob);
    /* Walk the spatial sizes. A reduction cell halves the size; the FactorizedReduce in its
     * stride-2 skip edges and in the next cell's preprocess0 needs an even size: its two halves
     * (x and x[1:, 1:]) differ by one pixel otherwise, and the reference code fails there. */
    int h = cfg->input_height, w = cfg->input_width;
    int reductions = 0;
    for (int i = 0; i < cfg->num_cells; i++)
        reductions += cfg->reduction[i];
    int mult = 1 << reductions;
    for (int i = 0; i < cfg->num_cells; i++) {
        if (!cfg->reduction[i])
            continue;
        if (h % 2 || w % 2) {
            int need = mult;
            int h_ok = (cfg->input_height + need - 1) / need * need;
            int w_ok = (cfg->input_width + need - 1) / need * need;
            return ev_fail(err, EV_ERR_INVALID,
                           "network: input %dx%d does not work: reduction cell %d sees %dx%d, "
                           "but its FactorizedReduce needs even sizes; use sizes that are "
                           "multiples of %d (e.g. %dx%d)",
                           cfg->input_width, cfg->input_height, i, w, h, need, w_ok, h_ok);
        }
        h /= 2;
        w /= 2;
    }
    if (cfg->auxiliary) {
        /* size at the auxiliary head: after cell 2L/3 */
        int ah = cfg->input_height, aw = cfg->input_width;
        for (int i = 0; i <= aux_cell_index(cfg) && i < cfg->num_cells; i++)
            if (cfg->reduction[i]) {
                ah /= 2;
                aw /= 2;
            }
        if (ah < 8 || aw < 8)
            return ev_fail(err, EV_ERR_INVALID,
                           "network: the auxiliary head after cell %d sees %dx%d; it needs at "
                           "least 8x8 (avg pool 5 stride 3, then a 2x2 conv)",
                           aux_cell_index(cfg), aw, ah);
    }
    return EV_OK;
}

/* ---- builder: the shared steps (net_builder.c) with affine BN -------------------------------- */

/* One sep/dil conv block: ReLU, depthwise k x k, pointwise 1x1, BN; layer indices first..first+2 */
static int dw_pw_bn(ev_builder *b, int x, int k, int stride, int pad, int dil, int cell,
                    const char *prefix, int first)
{
    int r = ev_builder_unary(b, EV_OP_RELU, x, cell, prefix);
    return ev_builder_dw_pw_bn(b, r, k, stride, pad, dil, true, cell, prefix, first);
}

static int factorized_reduce(ev_builder *b, int x, int cout, int cell, const char *prefix)
{
    int r = ev_builder_unary(b, EV_OP_RELU, x, cell, prefix);
    return ev_builder_factorized_reduce(b, r, cout, true, cell, prefix);
}

/* Builds primitive p on input x; returns its output node and whether it is the identity. */
static int primitive(ev_builder *b, ev_primitive p, int x, int stride, int cell, const char *prefix,
                     bool *identity)
{
    *identity = false;
    switch (p) {
    case EV_PRIM_NONE: {
        if (b->rc)
            return -1;
        ev_shape xs = ev_builder_shape(b, x);
        ev_shape ys = {xs.n, xs.c, (xs.h + stride - 1) / stride, (xs.w + stride - 1) / stride};
        int node = ev_builder_node(b, EV_OP_ZERO, ys, 1, &x, cell, prefix);
        if (node >= 0)
            b->net->graph.nodes[node].stride = stride;
        return node;
    }
    case EV_PRIM_MAX_POOL_3X3:
        return ev_builder_pool(b, EV_OP_MAXPOOL, x, 3, stride, 1, cell, prefix);
    case EV_PRIM_AVG_POOL_3X3:
        return ev_builder_pool(b, EV_OP_AVGPOOL, x, 3, stride, 1, cell, prefix);
    case EV_PRIM_SKIP_CONNECT:
        if (stride == 1) {
            *identity = true;
            return x;
        }
        return factorized_reduce(b, x, ev_builder_shape(b, x).c, cell, prefix);
    case EV_PRIM_SEP_CONV_3X3:
    case EV_PRIM_SEP_CONV_5X5: {
        int k = p == EV_PRIM_SEP_CONV_3X3 ? 3 : 5;
        int y = dw_pw_bn(b, x, k, stride, k / 2, 1, cell, prefix, 1);
        return dw_pw_bn(b, y, k, 1, k / 2, 1, cell, prefix, 5);
    }
    case EV_PRIM_DIL_CONV_3X3:
        return dw_pw_bn(b, x, 3, stride, 2, 2, cell, prefix, 1);
    case EV_PRIM_DIL_CONV_5X5:
        return dw_pw_bn(b, x, 5, stride, 4, 2, cell, prefix, 1);
    default:
        return ev_builder_fail(b, EV_ERR_INVALID, "unknown primitive");
    }
}

static int build_cell(ev_builder *b, int cell, const ev_cell_genotype *g, bool reduction,
                      bool reduction_prev, int s0, int s1, int c)
{
    char prefix[EV_PARAM_NAME_MAX];
    int states[EV_GENOTYPE_MAX_NODES + 2];
    ev_builder_preprocess(b, cell, s0, s1, c, reduction_prev, true, &states[0], &states[1]);
    bool drop = b->net->cfg.drop_path_prob > 0.0f;
    for (int node = 0; node < g->num_nodes; node++) {
        int h[2];
        for (int j = 0; j < 2; j++) {
            int e = 2 * node + j;
            int input = g->edges[e].input;
            int stride = reduction && input < 2 ? 2 : 1;
            bool identity;
            snprintf(prefix, sizeof prefix, "cells.%d._ops.%d", cell, e);
            h[j] = primitive(b, g->edges[e].op, states[input], stride, cell, prefix, &identity);
            if (drop && !identity)
                h[j] = ev_builder_unary(b, EV_OP_DROP_PATH, h[j], cell, prefix);
        }
        snprintf(prefix, sizeof prefix, "cells.%d.node%d", cell, node + 2);
        states[node + 2] = ev_builder_sum(b, EV_OP_ADD, h, 2, cell, prefix);
    }
    if (b->rc)
        return -1;
    /* concatenation of the chosen states, in order */
    int in[EV_NODE_MAX_INPUTS];
    ev_shape s = ev_builder_shape(b, states[g->concat[0]]);
    s.c = 0;
    for (int i = 0; i < g->num_concat; i++) {
        in[i] = states[g->concat[i]];
        ev_shape si = ev_builder_shape(b, in[i]);
        if (si.h != s.h || si.w != s.w)
            return ev_builder_fail(b, EV_ERR_INVALID,
                                   "a reduction cell concatenates one of its inputs (concat "
                                   "index 0 or 1 at a different resolution)");
        s.c += si.c;
    }
    if (g->num_concat > EV_NODE_MAX_INPUTS)
        return ev_builder_fail(b, EV_ERR_INVALID, "concat has too many states");
    snprintf(prefix, sizeof prefix, "cells.%d", cell);
    return ev_builder_node(b, EV_OP_CONCAT, s, g->num_concat, in, cell, prefix);
}

static int build_aux_head(ev_builder *b, int x)
{
    b->aux = true;
    int r = ev_builder_unary(b, EV_OP_RELU, x, -1, "auxiliary_head");
    int p = ev_builder_pool(b, EV_OP_AVGPOOL, r, 5, 3, 0, -1, "auxiliary_head.features.1");
    int c1 = ev_builder_conv(b, p, 128, 1, 1, 0, 1, 1, -1, "auxiliary_head.features.2");
    int n1 = ev_builder_batchnorm(b, c1, true, -1, "auxiliary_head.features.3");
    int r1 = ev_builder_unary(b, EV_OP_RELU, n1, -1, "auxiliary_head.features.4");
    int c2 = ev_builder_conv(b, r1, 768, 2, 1, 0, 1, 1, -1, "auxiliary_head.features.5");
    int n2 = ev_builder_batchnorm(b, c2, true, -1, "auxiliary_head.features.6");
    int r2 = ev_builder_unary(b, EV_OP_RELU, n2, -1, "auxiliary_head.features.7");
    int gap = ev_builder_unary(b, EV_OP_GAP, r2, -1, "auxiliary_head");
    int logits = -1;
    if (gap >= 0) {
        b->net->graph.nodes[gap].shape.h = b->net->graph.nodes[gap].shape.w = 1;
        ev_shape ls = {ev_builder_shape(b, gap).n, b->net->cfg.num_classes, 1, 1};
        logits = ev_builder_node(b, EV_OP_LINEAR, ls, 1, &gap, -1, "auxiliary_head.classifier");
        int wshape[2] = {b->net->cfg.num_classes, 768};
        int pw =
            ev_builder_param(b, EV_PARAM_WEIGHT, 2, wshape, "auxiliary_head.classifier.weight");
        int pb = ev_builder_param(b, EV_PARAM_BIAS, 1, wshape, "auxiliary_head.classifier.bias");
        if (logits >= 0) {
            b->net->graph.nodes[logits].param_index[0] = pw;
            b->net->graph.nodes[logits].param_index[1] = pb;
        }
    }
    b->aux = false;
    return logits;
}

static int build_network(ev_builder *b, int batch)
{
    const ev_net_config *cfg = &b->net->cfg;
    ev_graph *g = &b->net->graph;
    ev_shape in = {batch, cfg->in_channels, cfg->input_height, cfg->input_width};
    int stem = ev_builder_stem(b, in, cfg->init_channels);
    int s0 = stem, s1 = stem;
    int c_curr = cfg->init_channels;
    bool reduction_prev = false;
    for (int i = 0; i < cfg->num_cells; i++) {
        bool reduction = cfg->reduction[i];
        if (reduction)
            c_curr *= 2;
        const ev_cell_genotype *cg = reduction ? &cfg->genotype.reduce : &cfg->genotype.normal;
        int out = build_cell(b, i, cg, reduction, reduction_prev, s0, s1, c_curr);
        s0 = s1;
        s1 = out;
        reduction_prev = reduction;
        if (cfg->auxiliary && i == aux_cell_index(cfg))
            g->aux_logits = build_aux_head(b, s1);
    }
    return ev_builder_classifier(b, s1, cfg->num_classes, batch);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

int ev_net_create(const ev_net_config *cfg, int batch, bool with_grads, ev_net **out, ev_error *err)
{
    *out = NULL;
    int rc = ev_net_config_check(cfg, err);
    if (rc)
        return rc;
    if (batch < 1 || batch > 65536)
        return ev_fail(err, EV_ERR_INVALID, "network: batch %d out of range 1..65536", batch);
    ev_net *net = calloc(1, sizeof *net);
    if (!net)
        return ev_fail(err, EV_ERR_NOMEM, "network: out of memory");
    net->cfg = *cfg;
    net->batch = batch;
    ev_builder b = {.net = net, .err = err, .who = "network"};
    rc = cfg->arch == EV_ARCH_DARTS ? build_network(&b, batch) : ev_build_baseline(&b, batch);
    if (!rc)
        rc = ev_net_alloc_params(net, with_grads, "network", err);
    if (rc)
        goto fail;
    net->graph.drop_path_prob = cfg->drop_path_prob;
    net->graph.rng_state = 0x5eed;
    *out = net;
    return EV_OK;
fail:
    ev_net_free(net);
    return rc;
}

void ev_net_free(ev_net *net)
{
    if (!net)
        return;
    free(net->params);
    free(net->graph.nodes);
    ev_aligned_free(net->param_storage);
    ev_aligned_free(net->grad_storage);
    ev_arena_free(&net->activations);
    ev_arena_free(&net->gradients);
    free(net);
}

ev_param *ev_net_find_param(const ev_net *net, const char *name)
{
    for (int i = 0; i < net->num_params; i++)
        if (strcmp(net->params[i].name, name) == 0)
            return &net->params[i];
    return NULL;
}

unsigned char *ev_graph_logits_closure(const ev_graph *g)
{
    int nn = g->num_nodes;
    int *stack = malloc((size_t)nn * sizeof *stack);
    unsigned char *needed = calloc((size_t)nn, 1);
    if (!stack || !needed) {
        free(stack);
        free(needed);
        return NULL;
    }
    int top = 0;
    stack[top++] = g->logits;
    needed[g->logits] = 1;
    while (top) {
        const ev_node *n = &g->nodes[stack[--top]];
        for (int i = 0; i < n->num_inputs; i++)
            if (!needed[n->inputs[i]]) {
                needed[n->inputs[i]] = 1;
                stack[top++] = n->inputs[i];
            }
    }
    free(stack);
    return needed;
}

int64_t ev_net_count_params(const ev_net *net)
{
    int64_t total = 0;
    for (int i = 0; i < net->num_params; i++)
        if (ev_param_trainable(&net->params[i]) && !net->params[i].auxiliary)
            total += (int64_t)net->params[i].numel;
    return total;
}

int64_t ev_net_count_macs(const ev_net *net)
{
    int64_t total = 0;
    for (int i = 0; i < net->graph.num_nodes; i++) {
        const ev_node *n = &net->graph.nodes[i];
        if (n->params[0] && n->params[0]->auxiliary)
            continue;
        int64_t per = (int64_t)n->shape.c * n->shape.h * n->shape.w;
        if (n->op == EV_OP_CONV2D) {
            const ev_shape *xs = &net->graph.nodes[n->inputs[0]].shape;
            total += per * (xs->c / n->groups) * n->kernel * n->kernel;
        } else if (n->op == EV_OP_LINEAR) {
            total += per * net->graph.nodes[n->inputs[0]].shape.c;
        }
    }
    return total;
}

int ev_graph_receptive_field(const ev_graph *g, int node)
{
    /* extent r (input pixels one unit sees) and jump j (input pixels between neighbouring
     * units) per node, in topological order; a sum or concatenation sees the union of its
     * inputs, and the shifted path of a FactorizedReduce widens that union by one step */
    if (node < 0 || node >= g->num_nodes)
        return -1;
    int *r = malloc((size_t)(node + 1) * 2 * sizeof *r);
    if (!r)
        return -1;
    int *j = r + node + 1;
    for (int i = 0; i <= node; i++) {
        const ev_node *n = &g->nodes[i];
        int ri = 1, ji = 1;
        for (int k = 0; k < n->num_inputs; k++) {
            ri = k ? (r[n->inputs[k]] > ri ? r[n->inputs[k]] : ri) : r[n->inputs[k]];
            ji = k ? (j[n->inputs[k]] > ji ? j[n->inputs[k]] : ji) : j[n->inputs[k]];
        }
        switch (n->op) {
        case EV_OP_CONV2D:
        case EV_OP_MAXPOOL:
        case EV_OP_AVGPOOL:
            ri += (n->kernel - 1) * (n->dilation > 1 ? n->dilation : 1) * ji;
            ji *= n->stride > 1 ? n->stride : 1;
            break;
        case EV_OP_ZERO:
            ji *= n->stride > 1 ? n->stride : 1;
            break;
        case EV_OP_CROP:
            ri += n->crop * ji;
            break;
        default:
            break;
        }
        r[i] = ri, j[i] = ji;
    }
    int out = r[node];
    free(r);
    return out;
}

void ev_net_init_weights(ev_net *net, uint64_t seed)
{
    uint64_t rng = seed ^ 0xd1b54a32d192ed03ull;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        float fill =
            (p->kind == EV_PARAM_BN_WEIGHT || p->kind == EV_PARAM_RUNNING_VAR) ? 1.0f : 0.0f;
        if (p->kind == EV_PARAM_WEIGHT || p->kind == EV_PARAM_BIAS) {
            /* PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
             * and the same bound for the linear bias. */
            const ev_param *w = p->kind == EV_PARAM_BIAS ? p - 1 : p;
            size_t fan_in = 1;
            for (int d = 1; d < w->ndim; d++)
                fan_in *= (size_t)w->shape[d];
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t j = 0; j < p->numel; j++)
                p->data[j] = (2.0f * ev_rng_uniform(&rng) - 1.0f) * bound;
        } else {
            for (size_t j = 0; j < p->numel; j++)
                p->data[j] = fill;
        }
    }
}

static void shape_text(const ev_param *p, char *buf, size_t size)
{
    int n = snprintf(buf, size, "[");
    for (int d = 0; d < p->ndim && n > 0 && (size_t)n < size; d++)
        n += snprintf(buf + n, size - (size_t)n, "%s%d", d ? ", " : "", p->shape[d]);
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, "]");
}

int ev_net_copy_params(ev_net *dst, const ev_net *src, ev_error *err)
{
    if (dst->num_params != src->num_params)
        return ev_fail(err, EV_ERR_INVALID,
                       "network: %d parameter tensors in the source, %d in the destination",
                       src->num_params, dst->num_params);
    for (int i = 0; i < src->num_params; i++) {
        if (strcmp(dst->params[i].name, src->params[i].name))
            return ev_fail(err, EV_ERR_INVALID,
                           "network: parameter %d is %s in the source, %s in the destination", i,
                           src->params[i].name, dst->params[i].name);
        if (dst->params[i].numel != src->params[i].numel) {
            char a[64], b[64];
            shape_text(&src->params[i], a, sizeof a);
            shape_text(&dst->params[i], b, sizeof b);
            return ev_fail(err, EV_ERR_INVALID,
                           "network: parameter %s is %s in the source, %s in the destination",
                           src->params[i].name, a, b);
        }
        memcpy(dst->params[i].data, src->params[i].data, src->params[i].numel * sizeof(float));
    }
    return EV_OK;
}

/* ---- reference execution -------------------------------------------------------------------- */

static const char *const op_names[EV_NUM_OPS] = {
    "input",  "conv2d", "batchnorm", "relu",   "maxpool",   "avgpool",          "zero",    "add",
    "concat", "crop",   "gap",       "linear", "drop_path", "adaptive_avgpool", "dropout",
};

const char *ev_op_name(ev_op op) { return (unsigned)op < EV_NUM_OPS ? op_names[op] : "?"; }

static ev_conv_desc conv_desc(const ev_node *n)
{
    return (ev_conv_desc){n->kernel, n->kernel, n->stride, n->pad, n->dilation, n->groups};
}

int ev_net_alloc_activations(ev_net *net, ev_error *err)
{
    if (net->activations.base)
        return EV_OK;
    size_t act = 0;
    for (int i = 0; i < net->graph.num_nodes; i++) {
        ev_node *n = &net->graph.nodes[i];
        size_t numel = ev_shape_numel(n->shape), extra = 0;
        if (n->op == EV_OP_BATCHNORM)
            extra = 2 * (size_t)n->shape.c;
        else if (n->op == EV_OP_DROP_PATH)
            extra = (size_t)n->shape.n;
        else if (n->op == EV_OP_DROPOUT)
            extra = numel;
        size_t need = ((numel + 15) & ~(size_t)15) * 4 + ((extra + 15) & ~(size_t)15) * 4 + 128;
        if (!ev_add_size(act, need, &act))
            return ev_fail(err, EV_ERR_NOMEM, "network: activations overflow");
    }
    if (ev_arena_init(&net->activations, act))
        return ev_fail(err, EV_ERR_NOMEM, "network: out of memory for %zu bytes of activations",
                       act);
    for (int i = 0; i < net->graph.num_nodes; i++) {
        ev_node *n = &net->graph.nodes[i];
        n->out = ev_arena_alloc(&net->activations, ev_shape_numel(n->shape) * sizeof(float));
        if (n->op == EV_OP_BATCHNORM)
            n->saved = ev_arena_alloc(&net->activations, 2 * (size_t)n->shape.c * sizeof(float));
        else if (n->op == EV_OP_DROP_PATH)
            n->saved = ev_arena_alloc(&net->activations, (size_t)n->shape.n * sizeof(float));
        else if (n->op == EV_OP_DROPOUT)
            n->saved = ev_arena_alloc(&net->activations, ev_shape_numel(n->shape) * sizeof(float));
    }
    return EV_OK;
}

int ev_net_forward(ev_net *net, const float *input, bool training, ev_error *err)
{
    ev_graph *g = &net->graph;
    int rc = ev_net_alloc_activations(net, err);
    if (rc)
        return rc;
    g->training = training;
    for (int i = 0; i < g->num_nodes; i++) {
        ev_node *n = &g->nodes[i];
        if (n->auxiliary && !training)
            continue; /* training-only, as in the reference: eval logits never depend on it */
        const ev_node *x = n->num_inputs ? &g->nodes[n->inputs[0]] : NULL;
        size_t numel = ev_shape_numel(n->shape);
        switch (n->op) {
        case EV_OP_INPUT:
            memcpy(n->out, input, numel * sizeof(float));
            break;
        case EV_OP_CONV2D: {
            ev_conv_desc d = conv_desc(n);
            ev_ref_conv2d_forward(x->out, x->shape, n->params[0]->data, n->shape.c, &d, n->out,
                                  n->shape);
            if (n->params[1])
                ev_ref_bias_forward(n->out, n->shape, n->params[1]->data);
            break;
        }
        case EV_OP_BATCHNORM:
            ev_ref_batchnorm_forward(x->out, x->shape, n->params[0] ? n->params[0]->data : NULL,
                                     n->params[1] ? n->params[1]->data : NULL, n->params[2]->data,
                                     n->params[3]->data, training, BN_MOMENTUM, BN_EPS, n->saved,
                                     n->out);
            break;
        case EV_OP_RELU:
            ev_ref_relu_forward(x->out, numel, n->out);
            break;
        case EV_OP_MAXPOOL:
            ev_ref_maxpool_forward(x->out, x->shape, n->kernel, n->stride, n->pad, n->out,
                                   n->shape);
            break;
        case EV_OP_AVGPOOL:
            ev_ref_avgpool_forward(x->out, x->shape, n->kernel, n->stride, n->pad, n->out,
                                   n->shape);
            break;
        case EV_OP_ZERO:
            memset(n->out, 0, numel * sizeof(float));
            break;
        case EV_OP_ADD: {
            const float *a = g->nodes[n->inputs[0]].out;
            memcpy(n->out, a, numel * sizeof(float));
            for (int k = 1; k < n->num_inputs; k++) {
                const float *bsrc = g->nodes[n->inputs[k]].out;
                for (size_t j = 0; j < numel; j++)
                    n->out[j] += bsrc[j];
            }
            break;
        }
        case EV_OP_CONCAT: {
            const float *srcs[EV_NODE_MAX_INPUTS];
            int channels[EV_NODE_MAX_INPUTS];
            for (int k = 0; k < n->num_inputs; k++) {
                srcs[k] = g->nodes[n->inputs[k]].out;
                channels[k] = g->nodes[n->inputs[k]].shape.c;
            }
            ev_ref_concat_forward(srcs, channels, n->num_inputs, n->shape, n->out);
            break;
        }
        case EV_OP_CROP:
            ev_ref_crop_forward(x->out, x->shape, n->crop, n->out);
            break;
        case EV_OP_GAP:
            ev_ref_gap_forward(x->out, x->shape, n->out);
            break;
        case EV_OP_LINEAR:
            ev_ref_linear_forward(x->out, n->shape.n, x->shape.c * x->shape.h * x->shape.w,
                                  n->params[0]->data, n->params[1] ? n->params[1]->data : NULL,
                                  n->shape.c, n->out);
            break;
        case EV_OP_DROP_PATH: {
            float prob = training ? g->drop_path_prob : 0.0f;
            for (int s = 0; s < n->shape.n; s++)
                n->saved[s] = prob <= 0.0f                                  ? 1.0f
                              : ev_rng_uniform(&g->rng_state) < 1.0f - prob ? 1.0f / (1.0f - prob)
                                                                            : 0.0f;
            ev_ref_drop_path_forward(x->out, n->shape, n->saved, n->out);
            break;
        }
        case EV_OP_ADAPTIVE_AVGPOOL:
            ev_ref_adaptive_avgpool_forward(x->out, x->shape, n->out, n->shape);
            break;
        case EV_OP_DROPOUT: {
            /* the mask is kept whole (1 in eval), so backward reads it either way */
            float prob = training ? n->drop_prob : 0.0f;
            for (size_t j = 0; j < numel; j++) {
                n->saved[j] = prob <= 0.0f                                  ? 1.0f
                              : ev_rng_uniform(&g->rng_state) < 1.0f - prob ? 1.0f / (1.0f - prob)
                                                                            : 0.0f;
                n->out[j] = x->out[j] * n->saved[j];
            }
            break;
        }
        default:
            return ev_fail(err, EV_ERR_INVALID, "network: node %d (%s): op not runnable", i,
                           n->tag);
        }
    }
    return EV_OK;
}

const float *ev_net_logits(const ev_net *net) { return net->graph.nodes[net->graph.logits].out; }

void ev_net_zero_grad(ev_net *net)
{
    for (int i = 0; i < net->num_params; i++)
        if (net->params[i].grad)
            memset(net->params[i].grad, 0, net->params[i].numel * sizeof(float));
}

static float *grad_of(ev_graph *g, int node)
{
    return g->nodes[node].op == EV_OP_INPUT ? NULL : g->nodes[node].grad;
}

int ev_net_backward(ev_net *net, const int32_t *labels, float aux_weight, float *loss,
                    ev_error *err)
{
    ev_graph *g = &net->graph;
    if (!net->grad_storage)
        return ev_fail(err, EV_ERR_INVALID, "network: created without gradients");
    if (!net->activations.base)
        return ev_fail(err, EV_ERR_INVALID, "network: backward needs a forward first");
    int k = net->cfg.num_classes;
    for (int s = 0; s < net->batch; s++)
        if (labels[s] < 0 || labels[s] >= k)
            return ev_fail(err, EV_ERR_INVALID, "network: label %d of sample %d out of range 0..%d",
                           labels[s], s, k - 1);
    if (!net->gradients.base) {
        size_t total = 0;
        for (int i = 0; i < g->num_nodes; i++)
            total += ((ev_shape_numel(g->nodes[i].shape) + 15) & ~(size_t)15) * sizeof(float) + 64;
        if (ev_arena_init(&net->gradients, total))
            return ev_fail(err, EV_ERR_NOMEM, "network: out of memory for gradients");
        for (int i = 0; i < g->num_nodes; i++)
            g->nodes[i].grad =
                ev_arena_alloc(&net->gradients, ev_shape_numel(g->nodes[i].shape) * sizeof(float));
    }
    for (int i = 0; i < g->num_nodes; i++)
        memset(g->nodes[i].grad, 0, ev_shape_numel(g->nodes[i].shape) * sizeof(float));

    const float *logits = g->nodes[g->logits].out;
    float l = ev_ref_cross_entropy_forward(logits, net->batch, k, labels);
    ev_ref_cross_entropy_backward(logits, net->batch, k, labels, 1.0f, g->nodes[g->logits].grad);
    bool use_aux = g->aux_logits >= 0 && g->training && aux_weight > 0.0f;
    if (use_aux) {
        const float *aux = g->nodes[g->aux_logits].out;
        l += aux_weight * ev_ref_cross_entropy_forward(aux, net->batch, k, labels);
        ev_ref_cross_entropy_backward(aux, net->batch, k, labels, aux_weight,
                                      g->nodes[g->aux_logits].grad);
    }
    if (loss)
        *loss = l;

    for (int i = g->num_nodes - 1; i >= 0; i--) {
        ev_node *n = &g->nodes[i];
        if (n->op == EV_OP_INPUT)
            continue;
        if (!use_aux && n->auxiliary)
            continue;
        ev_node *x = n->num_inputs ? &g->nodes[n->inputs[0]] : NULL;
        float *dx = n->num_inputs ? grad_of(g, n->inputs[0]) : NULL;
        size_t numel = ev_shape_numel(n->shape);
        switch (n->op) {
        case EV_OP_CONV2D: {
            ev_conv_desc d = conv_desc(n);
            ev_ref_conv2d_backward(x->out, x->shape, n->params[0]->data, n->shape.c, &d, n->grad,
                                   n->shape, dx, n->params[0]->grad);
            if (n->params[1])
                ev_ref_bias_backward(n->grad, n->shape, n->params[1]->grad);
            break;
        }
        case EV_OP_BATCHNORM:
            ev_ref_batchnorm_backward(x->out, x->shape, n->params[0] ? n->params[0]->data : NULL,
                                      n->saved, g->training, n->params[3]->data, BN_EPS, n->grad,
                                      dx, n->params[0] ? n->params[0]->grad : NULL,
                                      n->params[1] ? n->params[1]->grad : NULL);
            break;
        case EV_OP_RELU:
            if (dx)
                ev_ref_relu_backward(x->out, numel, n->grad, dx);
            break;
        case EV_OP_MAXPOOL:
            if (dx)
                ev_ref_maxpool_backward(x->out, x->shape, n->kernel, n->stride, n->pad, n->grad,
                                        n->shape, dx);
            break;
        case EV_OP_AVGPOOL:
            if (dx)
                ev_ref_avgpool_backward(x->shape, n->kernel, n->stride, n->pad, n->grad, n->shape,
                                        dx);
            break;
        case EV_OP_ZERO:
            break;
        case EV_OP_ADD:
            for (int j = 0; j < n->num_inputs; j++) {
                float *d = grad_of(g, n->inputs[j]);
                if (d)
                    for (size_t t = 0; t < numel; t++)
                        d[t] += n->grad[t];
            }
            break;
        case EV_OP_CONCAT: {
            float *dxs[EV_NODE_MAX_INPUTS];
            int channels[EV_NODE_MAX_INPUTS];
            for (int j = 0; j < n->num_inputs; j++) {
                dxs[j] = grad_of(g, n->inputs[j]);
                channels[j] = g->nodes[n->inputs[j]].shape.c;
            }
            ev_ref_concat_backward(n->grad, n->shape, channels, n->num_inputs, dxs);
            break;
        }
        case EV_OP_CROP:
            if (dx)
                ev_ref_crop_backward(x->shape, n->crop, n->grad, dx);
            break;
        case EV_OP_GAP:
            if (dx)
                ev_ref_gap_backward(x->shape, n->grad, dx);
            break;
        case EV_OP_LINEAR:
            ev_ref_linear_backward(x->out, n->shape.n, x->shape.c * x->shape.h * x->shape.w,
                                   n->params[0]->data, n->shape.c, n->grad, dx, n->params[0]->grad,
                                   n->params[1] ? n->params[1]->grad : NULL);
            break;
        case EV_OP_DROP_PATH:
            if (dx)
                ev_ref_drop_path_backward(n->shape, n->saved, n->grad, dx);
            break;
        case EV_OP_ADAPTIVE_AVGPOOL:
            if (dx)
                ev_ref_adaptive_avgpool_backward(x->shape, n->grad, n->shape, dx);
            break;
        case EV_OP_DROPOUT:
            if (dx)
                for (size_t j = 0; j < numel; j++)
                    dx[j] += n->grad[j] * n->saved[j];
            break;
        default:
            return ev_fail(err, EV_ERR_INVALID, "network: node %d (%s): no backward", i, n->tag);
        }
    }
    return EV_OK;
}
