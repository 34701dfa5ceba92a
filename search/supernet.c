/* supernet.c: the DARTS search network and its bilevel optimiser.
 *
 * The supernet is an ordinary ev_net graph, built with the engine's graph builder (so the fast
 * training executor, its kernels, its threads and its determinism all apply unchanged, and its
 * stem, preprocessing, FactorizedReduce and conv blocks are the evaluation network's, with BN
 * affine off): every edge's 7 non-none primitives are
 * nodes, and the edge's output is an ADD node that the executor weights by softmax(alpha)
 * (search_exec_set_weighted_add) and for which it returns d loss / d weight. `none` contributes
 * zeros, so it has no node; its weight still takes part in the softmax. The ReLU that starts
 * sep/dil convs and the stride-2 skip (FactorizedReduce) is one node per state and cell, shared by
 * every edge leaving that state, which saves a third of the activation memory; so are the
 * parameter-free pooling + BN branches (5 per cell instead of 14).
 *
 * Parameter names follow the reference search network (model_search.py) so that checkpoints read
 * like its state_dict: cells.<i>._ops.<edge>._ops.<primitive>.op.<k>.weight, ...
 */
#include "ev_builder.h"
#include "ops_ref.h"
#include "supernet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void search_arch_defaults(search_arch_options *o)
{
    memset(o, 0, sizeof *o);
    o->order = 1;
    o->arch_lr = 3e-4f;
    o->arch_beta1 = 0.5f;
    o->arch_beta2 = 0.999f;
    o->arch_weight_decay = 1e-3f;
    o->momentum = 0.9f;
    o->weight_decay = 3e-4f;
}

struct search_supernet {
    search_supernet_config cfg;
    ev_net *net;
    search_exec *ex;
    int batch;
    float arch[SEARCH_ARCH_SIZE];
    float mixw[2][SEARCH_EDGES][SEARCH_OPS];      /* softmax(alpha); the executor reads [1..7] */
    float bw[2][SEARCH_EDGES];                    /* edge weights (softmax(beta) per node, or 1) */
    double (*mix_grad)[SEARCH_EDGES][SEARCH_OPS]; /* per cell: d loss / d w[e][1..7] at [0..6] */
    double (*node_grad)[SEARCH_STEPS][EV_NODE_MAX_INPUTS]; /* per cell: d loss / d bw */
    float adam_m[SEARCH_ARCH_SIZE], adam_v[SEARCH_ARCH_SIZE];
    int64_t adam_step;
    size_t trainable; /* trainable elements */
    float *momentum;  /* SGD buffer per trainable element */
    bool has_momentum;
    size_t all;         /* every parameter element (running statistics included) */
    float *saved, *vec; /* snapshot of all parameters; the unrolled step's vector */
    double *tmp_grad;   /* 2 x SEARCH_ARCH_SIZE */
    int *maps;          /* PC-DARTS channel maps (slices and shuffles), per cell */
};

/* ---- building the graph ------------------------------------------------------------------ */

/* The engine's graph builder (net_builder.c) with BN affine off, plus PC-DARTS channel maps. */
typedef struct sn_builder {
    ev_builder base;
    int *maps; /* channel-map storage (PC-DARTS) */
    int maps_used;
    int map_node[4 * SEARCH_EDGES * EV_MAX_CELLS]; /* CONCAT node of each map */
    int map_at[4 * SEARCH_EDGES * EV_MAX_CELLS];   /* its offset in maps */
    int num_maps;
} sn_builder;

/* A CONCAT node whose output channels are picked from its inputs by a map (the executor's
 * channel-map hook): fill(map, channels) writes the map; the node has `channels` outputs. */
static int sn_mapped(sn_builder *b, const int *in, int count, int channels, int cell,
                     const char *tag, int **map)
{
    if (b->base.rc)
        return -1;
    if (b->num_maps == (int)(sizeof b->map_node / sizeof b->map_node[0]))
        return ev_builder_fail(&b->base, EV_ERR_INVALID, "too many channel maps");
    ev_shape s = ev_builder_shape(&b->base, in[0]);
    s.c = channels;
    int node = ev_builder_node(&b->base, EV_OP_CONCAT, s, count, in, cell, tag);
    if (node < 0)
        return -1;
    int *m = realloc(b->maps, (size_t)(b->maps_used + channels) * sizeof *m);
    if (!m)
        return ev_builder_fail(&b->base, EV_ERR_NOMEM, "out of memory");
    b->maps = m;
    b->map_node[b->num_maps] = node;
    b->map_at[b->num_maps++] = b->maps_used;
    *map = b->maps + b->maps_used;
    b->maps_used += channels;
    return node;
}

static int sn_slice(sn_builder *b, int x, int c0, int c1, int cell, const char *tag)
{
    int *map;
    int node = sn_mapped(b, &x, 1, c1 - c0, cell, tag, &map);
    for (int o = 0; node >= 0 && o < c1 - c0; o++)
        map[o] = c0 + o;
    return node;
}

/* Max and average pooling + BN(affine off) of a state: the same function on every edge that
 * leaves the state (same input, same stride, no parameters), so one node pair serves them all;
 * their running statistics would be equal too. */
static void sn_state_pools(ev_builder *b, int x, int stride, int cell, int state, int *pools)
{
    char prefix[EV_PARAM_NAME_MAX], name[2 * EV_PARAM_NAME_MAX];
    for (int k = 0; k < 2; k++) {
        snprintf(prefix, sizeof prefix, "cells.%d.state%d.%s", cell, state,
                 k ? "avg_pool_3x3" : "max_pool_3x3");
        int y =
            ev_builder_pool(b, k ? EV_OP_AVGPOOL : EV_OP_MAXPOOL, x, 3, stride, 1, cell, prefix);
        snprintf(name, sizeof name, "%s.1", prefix);
        pools[k] = ev_builder_batchnorm(b, y, false, cell, name);
    }
}

/* The mixed op of one edge: the 7 non-none primitives of x (r = ReLU(x)), summed by an ADD. */
static int sn_mixed_op(ev_builder *b, int x, int r, const int *pools, int stride, int cell,
                       int edge)
{
    char prefix[EV_PARAM_NAME_MAX];
    int outs[SEARCH_OPS - 1];
    for (int p = 1; p < SEARCH_OPS; p++) {
        snprintf(prefix, sizeof prefix, "cells.%d._ops.%d._ops.%d", cell, edge, p);
        int y = -1;
        switch (p) {
        case EV_PRIM_MAX_POOL_3X3:
        case EV_PRIM_AVG_POOL_3X3:
            y = pools[p == EV_PRIM_AVG_POOL_3X3];
            break;
        case EV_PRIM_SKIP_CONNECT:
            y = stride == 1 ? x
                            : ev_builder_factorized_reduce(b, r, ev_builder_shape(b, x).c, false,
                                                           cell, prefix);
            break;
        case EV_PRIM_SEP_CONV_3X3:
        case EV_PRIM_SEP_CONV_5X5: {
            int k = p == EV_PRIM_SEP_CONV_3X3 ? 3 : 5;
            y = ev_builder_dw_pw_bn(b, r, k, stride, k / 2, 1, false, cell, prefix, 1);
            y = ev_builder_unary(b, EV_OP_RELU, y, cell, prefix);
            y = ev_builder_dw_pw_bn(b, y, k, 1, k / 2, 1, false, cell, prefix, 5);
            break;
        }
        case EV_PRIM_DIL_CONV_3X3:
            y = ev_builder_dw_pw_bn(b, r, 3, stride, 2, 2, false, cell, prefix, 1);
            break;
        case EV_PRIM_DIL_CONV_5X5:
            y = ev_builder_dw_pw_bn(b, r, 5, stride, 4, 2, false, cell, prefix, 1);
            break;
        }
        outs[p - 1] = y;
    }
    snprintf(prefix, sizeof prefix, "cells.%d._ops.%d", cell, edge);
    return ev_builder_sum(b, EV_OP_ADD, outs, SEARCH_OPS - 1, cell, prefix);
}

/* PC-DARTS's mixed op: the primitives see the first C/K channels of x; the rest pass by (max
 * pooled 2x2 on stride-2 edges); the concatenation is channel-shuffled with K groups. xs, rs:
 * x's first C/K channels and their ReLU; rest: the other channels at the output size. */
static int sn_partial_mixed_op(sn_builder *b, int xs, int rs, const int *pools, int rest,
                               int stride, int K, int cell, int edge, int *mix)
{
    char prefix[EV_PARAM_NAME_MAX];
    *mix = sn_mixed_op(&b->base, xs, rs, pools, stride, cell, edge);
    if (b->base.rc)
        return -1;
    const int C = ev_builder_shape(&b->base, *mix).c + ev_builder_shape(&b->base, rest).c;
    const int per = C / K;
    int in[2] = {*mix, rest}, *map;
    snprintf(prefix, sizeof prefix, "cells.%d._ops.%d.shuffle", cell, edge);
    int node = sn_mapped(b, in, 2, C, cell, prefix, &map);
    for (int g = 0; node >= 0 && g < K; g++) /* channel_shuffle(x, K): view(K, C/K).T */
        for (int i = 0; i < per; i++)
            map[i * K + g] = g * per + i;
    return node;
}

/* Builds the graph; mixed[cell][edge] and nodes[cell][node] receive the ADD node indices. */
static int sn_build(sn_builder *sb, const search_supernet_config *cfg, int batch,
                    int (*mixed)[SEARCH_EDGES], int (*nodes)[SEARCH_STEPS])
{
    ev_builder *b = &sb->base;
    ev_shape in = {batch, cfg->in_channels, cfg->size, cfg->size};
    int stem = ev_builder_stem(b, in, cfg->init_channels);
    int s0 = stem, s1 = stem, c_curr = cfg->init_channels;
    bool reduction_prev = false;
    char prefix[EV_PARAM_NAME_MAX];
    for (int cell = 0; cell < cfg->num_cells && !b->rc; cell++) {
        bool reduction = cfg->reduction[cell];
        if (reduction)
            c_curr *= 2;
        int p0, p1;
        ev_builder_preprocess(b, cell, s0, s1, c_curr, reduction_prev, false, &p0, &p1);
        int states[SEARCH_STEPS + 2] = {p0, p1}, relus[SEARCH_STEPS + 2];
        int xs_of[SEARCH_STEPS + 2], rs_of[SEARCH_STEPS + 2], rest_of[SEARCH_STEPS + 2];
        int pools_of[SEARCH_STEPS + 2][2];
        int offset = 0;
        for (int i = 0; i < SEARCH_STEPS && !b->rc; i++) {
            const int K = cfg->partial_channels > 1 ? cfg->partial_channels : 1;
            if (K == 1) {
                snprintf(prefix, sizeof prefix, "cells.%d.relu%d", cell, i + 1);
                relus[i + 1] = ev_builder_unary(b, EV_OP_RELU, states[i + 1], cell, prefix);
                if (i == 0) {
                    snprintf(prefix, sizeof prefix, "cells.%d.relu0", cell);
                    relus[0] = ev_builder_unary(b, EV_OP_RELU, states[0], cell, prefix);
                }
            }
            if (K > 1) { /* the partial views of the new state(s) */
                for (int j = i == 0 ? 0 : i + 1; j < i + 2 && !b->rc; j++) {
                    snprintf(prefix, sizeof prefix, "cells.%d.partial%d", cell, j);
                    xs_of[j] = sn_slice(sb, states[j], 0, c_curr / K, cell, prefix);
                    rs_of[j] = ev_builder_unary(b, EV_OP_RELU, xs_of[j], cell, prefix);
                    rest_of[j] = sn_slice(sb, states[j], c_curr / K, c_curr, cell, prefix);
                    if (reduction && j < 2)
                        rest_of[j] =
                            ev_builder_pool(b, EV_OP_MAXPOOL, rest_of[j], 2, 2, 0, cell, prefix);
                }
            }
            for (int j = i == 0 ? 0 : i + 1; j < i + 2 && !b->rc; j++)
                sn_state_pools(b, K > 1 ? xs_of[j] : states[j], reduction && j < 2 ? 2 : 1, cell, j,
                               pools_of[j]);
            int edges[SEARCH_STEPS + 2];
            for (int j = 0; j < i + 2; j++) {
                int stride = reduction && j < 2 ? 2 : 1;
                if (K > 1)
                    edges[j] =
                        sn_partial_mixed_op(sb, xs_of[j], rs_of[j], pools_of[j], rest_of[j], stride,
                                            K, cell, offset + j, &mixed[cell][offset + j]);
                else
                    edges[j] = mixed[cell][offset + j] =
                        sn_mixed_op(b, states[j], relus[j], pools_of[j], stride, cell, offset + j);
            }
            snprintf(prefix, sizeof prefix, "cells.%d.node%d", cell, i + 2);
            states[i + 2] = ev_builder_sum(b, EV_OP_ADD, edges, i + 2, cell, prefix);
            nodes[cell][i] = states[i + 2];
            offset += i + 2;
        }
        snprintf(prefix, sizeof prefix, "cells.%d", cell);
        int out = ev_builder_sum(b, EV_OP_CONCAT, states + 2, SEARCH_STEPS, cell, prefix);
        s0 = s1;
        s1 = out;
        reduction_prev = reduction;
    }
    return ev_builder_classifier(b, s1, cfg->num_classes, batch);
}

void search_supernet_free(search_supernet *s)
{
    if (!s)
        return;
    search_exec_free(s->ex);
    ev_net_free(s->net);
    free(s->mix_grad);
    free(s->node_grad);
    free(s->momentum);
    free(s->saved);
    free(s->vec);
    free(s->tmp_grad);
    free(s->maps);
    free(s);
}

int search_supernet_create(const search_supernet_config *cfg, int batch, int threads, uint64_t seed,
                           search_supernet **out, ev_error *err)
{
    *out = NULL;
    if (cfg->num_cells < 1 || cfg->num_cells > EV_MAX_CELLS)
        return ev_fail(err, EV_ERR_INVALID, "supernet: %d cells outside 1..%d", cfg->num_cells,
                       EV_MAX_CELLS);
    if (cfg->init_channels < 2 || cfg->init_channels > 256 || cfg->init_channels % 2)
        return ev_fail(err, EV_ERR_INVALID, "supernet: init channels %d (even, 2..256)",
                       cfg->init_channels);
    if (cfg->size < 4 || cfg->size > 4096 || cfg->in_channels < 1 || cfg->in_channels > 4 ||
        cfg->num_classes < 2 || cfg->num_classes > EV_MAX_CLASSES)
        return ev_fail(err, EV_ERR_INVALID, "supernet: size %d, %d input channels, %d classes",
                       cfg->size, cfg->in_channels, cfg->num_classes);
    if (batch < 2 || batch > 4096)
        return ev_fail(err, EV_ERR_INVALID, "supernet: batch %d outside 2..4096", batch);
    const int K = cfg->partial_channels;
    if (K > 1 && (K > 64 || cfg->init_channels % K || (cfg->init_channels / K) % 2))
        return ev_fail(err, EV_ERR_INVALID,
                       "supernet: partial channels K = %d needs init channels (%d) divisible by "
                       "2K (the ops' FactorizedReduce needs C/K even)",
                       K, cfg->init_channels);
    search_supernet *s = calloc(1, sizeof *s);
    int(*mixed)[SEARCH_EDGES] = calloc((size_t)cfg->num_cells, sizeof *mixed);
    int(*nodes)[SEARCH_STEPS] = calloc((size_t)cfg->num_cells, sizeof *nodes);
    int rc = EV_OK;
    if (!s || !mixed || !nodes || !(s->net = calloc(1, sizeof *s->net))) {
        rc = ev_fail(err, EV_ERR_NOMEM, "supernet: out of memory");
        goto fail;
    }
    s->cfg = *cfg;
    s->batch = batch;
    ev_net *net = s->net;
    net->batch = batch;
    net->cfg.init_channels = cfg->init_channels;
    net->cfg.num_cells = cfg->num_cells;
    memcpy(net->cfg.reduction, cfg->reduction, sizeof net->cfg.reduction);
    net->cfg.in_channels = cfg->in_channels;
    net->cfg.num_classes = cfg->num_classes;
    net->cfg.input_height = net->cfg.input_width = cfg->size;
    sn_builder *bp = calloc(1, sizeof *bp);
    if (!bp) {
        rc = ev_fail(err, EV_ERR_NOMEM, "supernet: out of memory");
        goto fail;
    }
    bp->base = (ev_builder){.net = net, .err = err, .who = "supernet"};
    rc = sn_build(bp, cfg, batch, mixed, nodes);
    s->maps = bp->maps;
    int num_maps = bp->num_maps;
    int *map_node = malloc(((size_t)num_maps + 1) * sizeof *map_node);
    int *map_at = malloc(((size_t)num_maps + 1) * sizeof *map_at);
    if (map_node && map_at) {
        memcpy(map_node, bp->map_node, (size_t)num_maps * sizeof *map_node);
        memcpy(map_at, bp->map_at, (size_t)num_maps * sizeof *map_at);
    } else if (!rc) {
        rc = ev_fail(err, EV_ERR_NOMEM, "supernet: out of memory");
    }
    free(bp);
    if (rc || (rc = ev_net_alloc_params(net, true, "supernet", err))) {
        free(map_node);
        free(map_at);
        goto fail;
    }
    ev_net_init_weights(net, seed);
    net->graph.rng_state = 0x5eed;
    /* alphas 1e-3 * N(0,1) (normal then reduce), betas the same (PC-DARTS) */
    uint64_t rng = seed ^ 0xa1fa5eedull;
    for (int i = 0; i < SEARCH_ARCH_SIZE; i++)
        s->arch[i] = 1e-3f * ev_rng_normal(&rng);
    for (int i = 0; i < net->num_params; i++) {
        if (ev_param_trainable(&net->params[i]))
            s->trainable += net->params[i].numel;
        s->all += net->params[i].numel;
    }
    s->mix_grad = calloc((size_t)cfg->num_cells, sizeof *s->mix_grad);
    s->node_grad = calloc((size_t)cfg->num_cells, sizeof *s->node_grad);
    s->momentum = calloc(s->trainable + 1, sizeof(float));
    s->saved = malloc((s->all + 1) * sizeof(float));
    s->vec = malloc((s->trainable + 1) * sizeof(float));
    s->tmp_grad = malloc(2 * SEARCH_ARCH_SIZE * sizeof(double));
    if (!s->mix_grad || !s->node_grad || !s->momentum || !s->saved || !s->vec || !s->tmp_grad) {
        free(map_node);
        free(map_at);
        rc = ev_fail(err, EV_ERR_NOMEM, "supernet: out of memory");
        goto fail;
    }
    if (!(rc = search_exec_create(net, threads, &s->ex, err)))
        for (int m = 0; m < num_maps && !rc; m++)
            rc = search_exec_set_channel_map(s->ex, map_node[m], s->maps + map_at[m], err);
    free(map_node);
    free(map_at);
    if (rc)
        goto fail;
    for (int c = 0; c < cfg->num_cells && !rc; c++) {
        int t = cfg->reduction[c] ? 1 : 0;
        for (int e = 0; e < SEARCH_EDGES && !rc; e++)
            rc = search_exec_set_weighted_add(s->ex, mixed[c][e], &s->mixw[t][e][1],
                                              s->mix_grad[c][e], err);
        for (int i = 0, off = 0; i < SEARCH_STEPS && !rc && cfg->edge_norm; off += i + 2, i++)
            rc = search_exec_set_weighted_add(s->ex, nodes[c][i], &s->bw[t][off],
                                              s->node_grad[c][i], err);
    }
    if (rc)
        goto fail;
    free(mixed);
    free(nodes);
    *out = s;
    return EV_OK;
fail:
    free(mixed);
    free(nodes);
    search_supernet_free(s);
    return rc;
}

ev_net *search_supernet_net(search_supernet *s) { return s->net; }
float *search_supernet_arch(search_supernet *s) { return s->arch; }

float *search_supernet_arch_adam(search_supernet *s, float **v, int64_t **step)
{
    *v = s->adam_v;
    *step = &s->adam_step;
    return s->adam_m;
}

float *search_supernet_momentum(search_supernet *s, size_t *count, bool **has_momentum)
{
    *count = s->trainable;
    *has_momentum = &s->has_momentum;
    return s->momentum;
}

/* ---- architecture weights ------------------------------------------------------------------ */

static void softmax(const float *x, int n, float *y)
{
    double m = x[0], sum = 0.0, e[SEARCH_OPS];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    for (int i = 0; i < n; i++)
        sum += e[i] = exp((double)x[i] - m);
    for (int i = 0; i < n; i++)
        y[i] = (float)(e[i] / sum);
}

void search_arch_weights(const float *arch, int reduce, bool edge_norm, float w[][SEARCH_OPS],
                         float *bw)
{
    const float *alpha = arch + (size_t)reduce * SEARCH_EDGES * SEARCH_OPS;
    const float *beta = arch + SEARCH_ALPHA_SIZE + (size_t)reduce * SEARCH_EDGES;
    for (int e = 0; e < SEARCH_EDGES; e++)
        softmax(alpha + e * SEARCH_OPS, SEARCH_OPS, w[e]);
    for (int i = 0, off = 0; i < SEARCH_STEPS; off += i + 2, i++) {
        if (edge_norm)
            softmax(beta + off, i + 2, bw + off);
        else
            for (int j = 0; j < i + 2; j++)
                bw[off + j] = 1.0f;
    }
}

static void refresh_weights(search_supernet *s)
{
    for (int t = 0; t < 2; t++)
        search_arch_weights(s->arch, t, s->cfg.edge_norm, s->mixw[t], s->bw[t]);
}

/* d loss / d arch from the executor's mixing-weight gradients, through the softmaxes. */
static void arch_grad_from_mix(search_supernet *s, double *grad)
{
    memset(grad, 0, SEARCH_ARCH_SIZE * sizeof(double));
    for (int t = 0; t < 2; t++) {
        double gw[SEARCH_EDGES][SEARCH_OPS] = {{0}}, gb[SEARCH_EDGES] = {0};
        for (int c = 0; c < s->cfg.num_cells; c++) {
            if ((s->cfg.reduction[c] ? 1 : 0) != t)
                continue;
            for (int e = 0; e < SEARCH_EDGES; e++)
                for (int p = 1; p < SEARCH_OPS; p++)
                    gw[e][p] += s->mix_grad[c][e][p - 1];
            for (int i = 0, off = 0; i < SEARCH_STEPS && s->cfg.edge_norm; off += i + 2, i++)
                for (int j = 0; j < i + 2; j++)
                    gb[off + j] += s->node_grad[c][i][j];
        }
        double *ga = grad + (size_t)t * SEARCH_EDGES * SEARCH_OPS;
        for (int e = 0; e < SEARCH_EDGES; e++) {
            double dot = 0.0;
            for (int p = 0; p < SEARCH_OPS; p++)
                dot += (double)s->mixw[t][e][p] * gw[e][p];
            for (int p = 0; p < SEARCH_OPS; p++)
                ga[e * SEARCH_OPS + p] = s->mixw[t][e][p] * (gw[e][p] - dot);
        }
        if (!s->cfg.edge_norm)
            continue;
        double *gbeta = grad + SEARCH_ALPHA_SIZE + (size_t)t * SEARCH_EDGES;
        for (int i = 0, off = 0; i < SEARCH_STEPS; off += i + 2, i++) {
            double dot = 0.0;
            for (int j = 0; j < i + 2; j++)
                dot += (double)s->bw[t][off + j] * gb[off + j];
            for (int j = 0; j < i + 2; j++)
                gbeta[off + j] = s->bw[t][off + j] * (gb[off + j] - dot);
        }
    }
}

/* ---- loss and steps -------------------------------------------------------------------------- */

static double batch_accuracy(const float *logits, int n, int k, const int32_t *labels)
{
    int correct = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[(size_t)i * k + j] > logits[(size_t)i * k + best])
                best = j;
        correct += best == labels[i];
    }
    return (double)correct / n;
}

int search_supernet_loss(search_supernet *s, const float *input, const int32_t *labels, bool grads,
                         double *grad, float *loss, float *accuracy, ev_error *err)
{
    const int k = s->cfg.num_classes;
    for (int i = 0; i < s->batch; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return ev_fail(err, EV_ERR_INVALID, "supernet: label %d of sample %d outside 0..%d",
                           labels[i], i, k - 1);
    refresh_weights(s);
    int rc = search_exec_forward(s->ex, input, true, err);
    if (rc)
        return rc;
    const float *logits = search_exec_logits(s->ex);
    float l = 0.0f;
    if (grads) {
        if ((rc = search_exec_backward(s->ex, labels, 0.0f, &l, err)))
            return rc;
        if (grad)
            arch_grad_from_mix(s, grad);
    } else {
        l = ev_ref_cross_entropy_forward(logits, s->batch, k, labels);
    }
    if (loss)
        *loss = l;
    if (accuracy)
        *accuracy = (float)batch_accuracy(logits, s->batch, k, labels);
    return EV_OK;
}

int search_supernet_infer(search_supernet *s, const float *input, const float **logits,
                          ev_error *err)
{
    refresh_weights(s);
    int rc = search_exec_forward(s->ex, input, false, err);
    if (!rc && logits)
        *logits = search_exec_logits(s->ex);
    return rc;
}

static void snapshot(search_supernet *s, bool restore)
{
    size_t off = 0;
    for (int i = 0; i < s->net->num_params; i++) {
        ev_param *p = &s->net->params[i];
        if (restore)
            memcpy(p->data, s->saved + off, p->numel * sizeof(float));
        else
            memcpy(s->saved + off, p->data, p->numel * sizeof(float));
        off += p->numel;
    }
}

/* w = saved + a * vec over the trainable parameters */
static void move_weights(search_supernet *s, double a)
{
    size_t off = 0, toff = 0;
    for (int i = 0; i < s->net->num_params; i++) {
        ev_param *p = &s->net->params[i];
        if (ev_param_trainable(p)) {
            for (size_t j = 0; j < p->numel; j++)
                p->data[j] = (float)(s->saved[off + j] + a * s->vec[toff + j]);
            toff += p->numel;
        }
        off += p->numel;
    }
}

static void add_latency_grad(search_supernet *s, const search_arch_options *o, double *grad)
{
    if (o->latency_weight == 0.0f)
        return;
    for (int t = 0; t < 2; t++) {
        int cells = 0;
        for (int c = 0; c < s->cfg.num_cells; c++)
            cells += (s->cfg.reduction[c] ? 1 : 0) == t;
        double *ga = grad + (size_t)t * SEARCH_EDGES * SEARCH_OPS;
        for (int e = 0; e < SEARCH_EDGES; e++) {
            double dot = 0.0;
            for (int p = 0; p < SEARCH_OPS; p++)
                dot += (double)s->mixw[t][e][p] * o->latency[p];
            for (int p = 0; p < SEARCH_OPS; p++)
                ga[e * SEARCH_OPS + p] +=
                    (double)o->latency_weight * cells * s->mixw[t][e][p] * (o->latency[p] - dot);
        }
    }
}

int search_supernet_arch_grad(search_supernet *s, const search_arch_options *o, float eta,
                              const float *train_x, const int32_t *train_y, const float *val_x,
                              const int32_t *val_y, double *grad, float *val_loss, ev_error *err)
{
    int rc;
    if (o->order != 2) {
        rc = search_supernet_loss(s, val_x, val_y, true, grad, val_loss, NULL, err);
        if (!rc)
            add_latency_grad(s, o, grad);
        return rc;
    }
    /* unrolled: w' = w - eta (momentum buf + dL_train/dw + wd w) */
    snapshot(s, false);
    if ((rc = search_supernet_loss(s, train_x, train_y, true, NULL, NULL, NULL, err)))
        goto out;
    size_t toff = 0;
    for (int i = 0; i < s->net->num_params; i++) {
        ev_param *p = &s->net->params[i];
        if (!ev_param_trainable(p))
            continue;
        for (size_t j = 0; j < p->numel; j++) {
            double m = s->has_momentum ? (double)o->momentum * s->momentum[toff + j] : 0.0;
            s->vec[toff + j] = (float)(m + p->grad[j] + (double)o->weight_decay * p->data[j]);
        }
        toff += p->numel;
    }
    move_weights(s, -(double)eta);
    if ((rc = search_supernet_loss(s, val_x, val_y, true, grad, val_loss, NULL, err)))
        goto out;
    /* vector = dL_val/dw' ; R = 0.01 / ||vector|| */
    double norm = 0.0;
    toff = 0;
    for (int i = 0; i < s->net->num_params; i++) {
        ev_param *p = &s->net->params[i];
        if (!ev_param_trainable(p))
            continue;
        for (size_t j = 0; j < p->numel; j++) {
            s->vec[toff + j] = p->grad[j];
            norm += (double)p->grad[j] * p->grad[j];
        }
        toff += p->numel;
    }
    norm = sqrt(norm);
    if (norm > 0.0) {
        const double r = 0.01 / norm;
        double *gp = s->tmp_grad, *gn = s->tmp_grad + SEARCH_ARCH_SIZE;
        snapshot(s, true);
        move_weights(s, r);
        if ((rc = search_supernet_loss(s, train_x, train_y, true, gp, NULL, NULL, err)))
            goto out;
        snapshot(s, true);
        move_weights(s, -r);
        if ((rc = search_supernet_loss(s, train_x, train_y, true, gn, NULL, NULL, err)))
            goto out;
        for (int i = 0; i < SEARCH_ARCH_SIZE; i++)
            grad[i] -= (double)eta * (gp[i] - gn[i]) / (2.0 * r);
    }
    add_latency_grad(s, o, grad);
out:
    snapshot(s, true);
    return rc;
}

int search_supernet_arch_step(search_supernet *s, const search_arch_options *o, float eta,
                              const float *train_x, const int32_t *train_y, const float *val_x,
                              const int32_t *val_y, float *val_loss, ev_error *err)
{
    double grad[SEARCH_ARCH_SIZE];
    int rc =
        search_supernet_arch_grad(s, o, eta, train_x, train_y, val_x, val_y, grad, val_loss, err);
    if (rc)
        return rc;
    /* torch.optim.Adam with L2 weight decay */
    s->adam_step++;
    const double b1 = o->arch_beta1, b2 = o->arch_beta2;
    const double bc1 = 1.0 - pow(b1, (double)s->adam_step);
    const double bc2 = 1.0 - pow(b2, (double)s->adam_step);
    const int n = s->cfg.edge_norm ? SEARCH_ARCH_SIZE : SEARCH_ALPHA_SIZE;
    for (int i = 0; i < n; i++) {
        double g = grad[i] + (double)o->arch_weight_decay * s->arch[i];
        s->adam_m[i] = (float)(b1 * s->adam_m[i] + (1.0 - b1) * g);
        s->adam_v[i] = (float)(b2 * s->adam_v[i] + (1.0 - b2) * g * g);
        double denom = sqrt((double)s->adam_v[i]) / sqrt(bc2) + 1e-8;
        s->arch[i] -= (float)((double)o->arch_lr / bc1 * s->adam_m[i] / denom);
    }
    return EV_OK;
}

int search_supernet_weight_step(search_supernet *s, float lr, float momentum, float weight_decay,
                                float clip, const float *x, const int32_t *y, float *loss,
                                float *accuracy, ev_error *err)
{
    int rc = search_supernet_loss(s, x, y, true, NULL, loss, accuracy, err);
    if (rc)
        return rc;
    ev_net *net = s->net;
    double sq = 0.0;
    for (int i = 0; i < net->num_params; i++) {
        const ev_param *p = &net->params[i];
        if (ev_param_trainable(p))
            for (size_t j = 0; j < p->numel; j++)
                sq += (double)p->grad[j] * p->grad[j];
    }
    /* PyTorch clip_grad_norm_: scale by max / (norm + 1e-6) when above */
    const double norm = sqrt(sq);
    const float f = clip > 0.0f && norm > clip ? (float)(clip / (norm + 1e-6)) : 1.0f;
    size_t off = 0;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        if (!ev_param_trainable(p))
            continue;
        float *m = s->momentum + off;
        for (size_t j = 0; j < p->numel; j++) {
            float g = p->grad[j] * f + weight_decay * p->data[j];
            m[j] = s->has_momentum ? momentum * m[j] + g : g;
            p->data[j] -= lr * m[j];
        }
        off += p->numel;
    }
    s->has_momentum = true;
    return EV_OK;
}

/* ---- genotype derivation --------------------------------------------------------------------- */

static void derive_once(float W[][SEARCH_OPS], ev_cell_genotype *out)
{
    memset(out, 0, sizeof *out);
    out->num_nodes = SEARCH_STEPS;
    for (int i = 0, start = 0; i < SEARCH_STEPS; start += i + 2, i++) {
        const int n = i + 2;
        float strength[SEARCH_STEPS + 2];
        int order[SEARCH_STEPS + 2];
        for (int j = 0; j < n; j++) {
            strength[j] = -INFINITY;
            for (int k = 1; k < SEARCH_OPS; k++)
                if (W[start + j][k] > strength[j])
                    strength[j] = W[start + j][k];
            order[j] = j;
        }
        /* stable sort by descending strength (Python's sorted with key -max) */
        for (int a = 1; a < n; a++)
            for (int c = a; c > 0 && strength[order[c]] > strength[order[c - 1]]; c--) {
                int t = order[c];
                order[c] = order[c - 1];
                order[c - 1] = t;
            }
        for (int m = 0; m < 2; m++) {
            const int j = order[m];
            int best = -1;
            for (int k = 1; k < SEARCH_OPS; k++)
                if (best < 0 || W[start + j][k] > W[start + j][best])
                    best = k;
            out->edges[2 * i + m] = (ev_genotype_edge){(ev_primitive)best, j};
        }
    }
    out->num_concat = SEARCH_STEPS;
    for (int i = 0; i < SEARCH_STEPS; i++)
        out->concat[i] = i + 2;
}

void search_derive_cell(const float w[][SEARCH_OPS], const float *bw, int max_skips,
                        ev_cell_genotype *out)
{
    float W[SEARCH_EDGES][SEARCH_OPS];
    for (int e = 0; e < SEARCH_EDGES; e++)
        for (int k = 0; k < SEARCH_OPS; k++)
            W[e][k] = w[e][k] * (bw ? bw[e] : 1.0f);
    for (;;) {
        derive_once(W, out);
        if (max_skips < 0)
            return;
        int skips = 0, weakest = -1;
        float weakest_w = INFINITY;
        for (int m = 0, start = 0; m < 2 * SEARCH_STEPS; m++) {
            const int i = m / 2;
            start = i * (i + 3) / 2; /* first edge of node i: 0, 2, 5, 9 */
            const ev_genotype_edge *ge = &out->edges[m];
            if (ge->op != EV_PRIM_SKIP_CONNECT)
                continue;
            skips++;
            const int e = start + ge->input;
            if (W[e][EV_PRIM_SKIP_CONNECT] < weakest_w) {
                weakest_w = W[e][EV_PRIM_SKIP_CONNECT];
                weakest = e;
            }
        }
        if (skips <= max_skips)
            return;
        W[weakest][EV_PRIM_SKIP_CONNECT] = -INFINITY; /* never chosen again */
    }
}

void search_derive_genotype(const float *arch, bool edge_norm, int max_skips, ev_genotype *out)
{
    float w[SEARCH_EDGES][SEARCH_OPS], bw[SEARCH_EDGES];
    search_arch_weights(arch, 0, edge_norm, w, bw);
    search_derive_cell(w, edge_norm ? bw : NULL, max_skips, &out->normal);
    search_arch_weights(arch, 1, edge_norm, w, bw);
    search_derive_cell(w, edge_norm ? bw : NULL, -1, &out->reduce);
}
