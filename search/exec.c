/* exec.c: the fast training executor. It runs an ev_net's graph (the same nodes, shapes and
 * parameters the reference executor runs) forward and backward with the kernels of
 * train_kernels.h, the engine's thread pool (ev_pool.h) running chunks of the batch.
 *
 * Determinism: the batch is cut into a fixed number of chunks whatever the thread count; every
 * cross-sample reduction (batch-norm statistics, weight gradients) is summed per chunk in double
 * and the chunks are combined in order. So the same seed gives the same bytes on 1 or 16 threads.
 *
 * Gradient buffers are not zeroed up front (that would cost a full pass over gigabytes per step):
 * the first consumer (in backward order) of a node zeroes the node's gradient rows of its chunk
 * right before accumulating into them, and a node nobody propagated into is skipped.
 *
 * Gradient buffers are shared between nodes whose gradients are never live at once. A node's
 * gradient is live in backward from its last consumer (highest index) down to the node itself;
 * most of a DARTS graph is chains (relu, conv, conv, bn), so a handful of buffers the size of the
 * largest activations serve hundreds of nodes. One buffer per node cost as much memory as the
 * forward activations themselves (gigabytes at batch 64 x 96 px). Likewise a node output that
 * no backward step reads (a batch-norm output feeding a ReLU or an add, a cell's concat) only
 * lives until its last consumer has run forward, in buffers shared the same way. The
 * arithmetic is unchanged, so results are bit-identical to separate buffers.
 *
 * About 1,300 lines for one job: every node kind's forward and backward share the chunking,
 * the buffer planners and the first-consumer zeroing above, which a cut into files would have
 * to export; the kernels themselves are in train_kernels_*.c.
 */
#include "ev_isa.h"
#include "ev_pool.h"
#include "ev_search.h"
#include "ops_ref.h"
#include "train_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1
#define MAX_CHUNKS 8

struct search_exec {
    ev_net *net;
    const search_kernels *k;
    int threads;
    int nchunks;
    double bn_momentum; /* BN running-statistics update weight in training forwards */
    int chunk_lo[MAX_CHUNKS + 1];
    bool planned;       /* the node outputs were laid out by plan_activations */
    float **grad;       /* per node: points into grad_block (shared by liveness) */
    size_t *grad_off;   /* per node: offset in grad_block in floats; SIZE_MAX for none */
    size_t grad_floats; /* size of grad_block in floats */
    float *grad_block;  /* every node gradient, allocated on the first backward */
    bool *touched;      /* per node: some consumer wrote its gradient this backward */
    bool *first;        /* per node x input slot: this consumer zeroes the input's rows */
    bool *skip;         /* per node: not run (auxiliary head outside training) */
    bool *aux_node;
    size_t *param_off;   /* offset of each trainable param in a chunk's partial block */
    size_t partial_size; /* doubles per chunk */
    double *partial;     /* nchunks x partial_size weight-gradient partials */
    double *bn_part;     /* nchunks x 2 x max channels */
    double *bn_sums;     /* 2 x max channels */
    ev_pool *pool;
    int max_channels;
    float **wt;       /* per node: transposed 1x1 weight for dx (NULL otherwise) */
    int32_t **argmax; /* per max-pool node: the winning input index of every output */
    float *scratch;   /* nchunks x scratch_size */
    size_t scratch_size;
    bool use_aux;
    /* weighted ADD nodes (the supernet's mixed ops, search_exec_set_weighted_add) */
    const float **mix_w;  /* per node: NULL, or one weight per input */
    double **mix_grad;    /* per node: dL/dweight per input, written by backward */
    double *mix_part;     /* nchunks x EV_NODE_MAX_INPUTS partial dot products */
    const int **chan_map; /* per CONCAT node: NULL, or the source channel of each output */
};

/* The engine's selector decides; training has no AVX-512 kernels, so an AVX-512 machine (which
 * runs AVX2 + FMA too) trains on the AVX2 ones. */
const search_kernels *search_kernels_get(void)
{
    const search_kernels *k = NULL;
    if (ev_cpu_isa_best() >= EV_CPU_ISA_AVX2)
        k = search_kernels_avx2();
    return k ? k : search_kernels_generic();
}

const char *search_kernels_name(void) { return search_kernels_get()->name; }

static bool is_pointwise(const ev_node *n)
{
    return n->op == EV_OP_CONV2D && n->kernel == 1 && n->groups == 1 && n->pad == 0;
}

void search_exec_free(search_exec *e)
{
    if (!e)
        return;
    ev_aligned_free(e->grad_block);
    free(e->grad_off);
    if (e->wt)
        for (int i = 0; i < e->net->graph.num_nodes; i++)
            free(e->wt[i]);
    if (e->argmax)
        for (int i = 0; i < e->net->graph.num_nodes; i++)
            free(e->argmax[i]);
    free(e->argmax);
    free(e->mix_w);
    free(e->mix_grad);
    free(e->mix_part);
    free(e->chan_map);
    free(e->grad);
    free(e->wt);
    free(e->touched);
    free(e->first);
    free(e->skip);
    free(e->aux_node);
    free(e->param_off);
    ev_aligned_free(e->partial);
    free(e->bn_part);
    free(e->bn_sums);
    ev_pool_free(e->pool);
    ev_aligned_free(e->scratch);
    free(e);
}

/* Whether backward reads node i's forward output: its own backward (ReLU), or a consumer's
 * (convolution, batch-norm, linear, a weighted add); the logits and graph outputs are read
 * after the step. Max-pool keeps indices, drop-path its mask; add, concat, crop, pooling and
 * global pooling backward need only shapes. */
static bool output_kept(const search_exec *e, int i)
{
    const ev_graph *g = &e->net->graph;
    const ev_node *n = &g->nodes[i];
    if (i == g->logits || i == g->aux_logits || n->op == EV_OP_INPUT || n->op == EV_OP_RELU)
        return true;
    bool consumed = false;
    for (int j = i + 1; j < g->num_nodes; j++) {
        const ev_node *c = &g->nodes[j];
        for (int k = 0; k < c->num_inputs; k++) {
            if (c->inputs[k] != i)
                continue;
            consumed = true;
            switch (c->op) {
            case EV_OP_MAXPOOL:
            case EV_OP_AVGPOOL:
            case EV_OP_ZERO:
            case EV_OP_CONCAT:
            case EV_OP_CROP:
            case EV_OP_GAP:
            case EV_OP_DROP_PATH:
                break;
            case EV_OP_ADD:
                if (e->mix_w && e->mix_w[j])
                    return true;
                break;
            default:
                return true;
            }
        }
    }
    return !consumed;
}

/* Floats a node's buffer takes: 64-byte aligned, with the 64 bytes of slack a buffer of its
 * own had. */
static size_t node_floats(const ev_node *n)
{
    return ((ev_shape_numel(n->shape) + 15) & ~(size_t)15) + 16;
}

/* Best-fit choice of a free slot for a buffer of need floats: the smallest free slot that is
 * large enough, else the largest free one grown to need, else a new slot. Marks it busy. */
static int take_slot(size_t *slot_cap, bool *slot_busy, int *nslots, size_t need)
{
    int best = -1, largest = -1;
    for (int s = 0; s < *nslots; s++) {
        if (slot_busy[s])
            continue;
        if (slot_cap[s] >= need && (best < 0 || slot_cap[s] < slot_cap[best]))
            best = s;
        if (largest < 0 || slot_cap[s] > slot_cap[largest])
            largest = s;
    }
    if (best < 0)
        best = largest >= 0 ? largest : (*nslots)++;
    if (slot_cap[best] < need)
        slot_cap[best] = need;
    slot_busy[best] = true;
    return best;
}

/* Lays out the node outputs of a training network in one block: outputs backward reads each
 * have their own place; the others share places by forward liveness (a node's output is live
 * from the node to its last consumer), taken best-fit like the gradients'. Sets n->out and
 * n->saved and hands the block to the net (net->activations), which frees it. With dry_run only
 * the size is computed. */
static int plan_activations(const search_exec *e, bool dry_run, size_t *bytes_out)
{
    ev_net *net = e->net;
    ev_graph *g = &net->graph;
    const int nn = g->num_nodes;
    int *live_to = malloc((size_t)(nn ? nn : 1) * sizeof *live_to);
    int *slot_of = malloc((size_t)(nn ? nn : 1) * sizeof *slot_of);
    size_t *slot_cap = calloc((size_t)(nn ? nn : 1), sizeof *slot_cap);
    size_t *node_off = malloc((size_t)(nn ? nn : 1) * sizeof *node_off);
    size_t *saved_off = malloc((size_t)(nn ? nn : 1) * sizeof *saved_off);
    bool *slot_busy = calloc((size_t)(nn ? nn : 1), sizeof *slot_busy);
    int nslots = 0, rc = EV_ERR_NOMEM;
    if (!live_to || !slot_of || !slot_cap || !node_off || !saved_off || !slot_busy)
        goto out;
    size_t total = 0; /* in floats, 64-byte aligned pieces */
    for (int i = 0; i < nn; i++) {
        const ev_node *n = &g->nodes[i];
        size_t extra = n->op == EV_OP_BATCHNORM   ? 2 * (size_t)n->shape.c
                       : n->op == EV_OP_DROP_PATH ? (size_t)n->shape.n
                                                  : 0;
        saved_off[i] = SIZE_MAX;
        if (extra) {
            saved_off[i] = total;
            total += (extra + 15) & ~(size_t)15;
        }
        live_to[i] = i;
        slot_of[i] = -1;
        node_off[i] = SIZE_MAX;
        if (output_kept(e, i)) { /* 64-byte aligned, 64 bytes of slack as in the net's arena */
            node_off[i] = total;
            total += node_floats(n);
        }
    }
    for (int j = 0; j < nn; j++)
        for (int k = 0; k < g->nodes[j].num_inputs; k++) {
            int in = g->nodes[j].inputs[k];
            if (in >= 0 && in < nn && j > live_to[in])
                live_to[in] = j;
        }
    for (int t = 0; t < nn; t++) {
        if (node_off[t] == SIZE_MAX) { /* node t writes a shared place */
            slot_of[t] = take_slot(slot_cap, slot_busy, &nslots, node_floats(&g->nodes[t]));
        }
        for (int i = 0; i <= t; i++) /* outputs whose last consumer was node t */
            if (slot_of[i] >= 0 && live_to[i] == t)
                slot_busy[slot_of[i]] = false;
    }
    for (int s = 0; s < nslots; s++) {
        size_t cap = slot_cap[s];
        slot_cap[s] = total; /* now the slot's offset */
        total += cap;
    }
    *bytes_out = total * sizeof(float) + 64;
    rc = EV_OK;
    if (dry_run)
        goto out;
    float *block = ev_aligned_alloc(total * sizeof(float) + 64);
    if (!block) {
        rc = EV_ERR_NOMEM;
        goto out;
    }
    memset(block, 0, total * sizeof(float) + 64);
    for (int i = 0; i < nn; i++) {
        ev_node *n = &g->nodes[i];
        n->out = block + (node_off[i] != SIZE_MAX ? node_off[i] : slot_cap[slot_of[i]]);
        n->saved = saved_off[i] != SIZE_MAX ? block + saved_off[i] : NULL;
    }
    net->activations = (ev_arena){(unsigned char *)block, *bytes_out, *bytes_out};
out:
    free(live_to);
    free(slot_of);
    free(slot_cap);
    free(node_off);
    free(saved_off);
    free(slot_busy);
    return rc;
}

/* Places every node gradient in one block, sharing space between nodes whose gradients are
 * never live at the same time (see the header comment). Backward visits nodes from the last to
 * the first; node i's gradient is written first by its highest-numbered consumer and read last
 * by node i itself, so it is live over the closed interval [i, last consumer] (the logits from
 * the start, where the loss writes them). Slots are taken best-fit when a gradient becomes live
 * and freed once its node has run; a slot grows when no free one is large enough. */
static int plan_gradients(search_exec *e)
{
    const ev_graph *g = &e->net->graph;
    const int nn = g->num_nodes;
    int *live_from = malloc((size_t)nn * sizeof *live_from);
    int *slot_of = malloc((size_t)nn * sizeof *slot_of);
    size_t *slot_cap = calloc((size_t)nn, sizeof *slot_cap), *slot_off = NULL;
    bool *slot_busy = calloc((size_t)nn, sizeof *slot_busy);
    int nslots = 0, rc = -1;
    if (!live_from || !slot_of || !slot_cap || !slot_busy ||
        !(e->grad_off = malloc((size_t)nn * sizeof *e->grad_off)))
        goto out;
    for (int i = 0; i < nn; i++) {
        live_from[i] = i == g->logits || i == g->aux_logits ? nn : i;
        slot_of[i] = -1;
    }
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < g->nodes[i].num_inputs; j++) {
            int in = g->nodes[i].inputs[j];
            if (in >= 0 && in < nn && i > live_from[in])
                live_from[in] = i;
        }
    for (int t = nn; t >= 0; t--) {
        for (int i = t < nn ? t : nn - 1; i >= 0; i--) { /* gradients that become live at t */
            if (live_from[i] != t || g->nodes[i].op == EV_OP_INPUT)
                continue;
            slot_of[i] = take_slot(slot_cap, slot_busy, &nslots, node_floats(&g->nodes[i]));
        }
        if (t < nn && slot_of[t] >= 0) /* node t has run: its gradient is dead */
            slot_busy[slot_of[t]] = false;
    }
    if (!(slot_off = malloc((size_t)(nslots ? nslots : 1) * sizeof *slot_off)))
        goto out;
    size_t total = 0;
    for (int s = 0; s < nslots; s++) {
        slot_off[s] = total;
        total += slot_cap[s];
    }
    for (int i = 0; i < nn; i++)
        e->grad_off[i] = slot_of[i] >= 0 ? slot_off[slot_of[i]] : SIZE_MAX;
    e->grad_floats = total;
    rc = 0;
out:
    free(live_from);
    free(slot_of);
    free(slot_cap);
    free(slot_off);
    free(slot_busy);
    return rc;
}

int search_exec_create(ev_net *net, int threads, search_exec **out, ev_error *err)
{
    *out = NULL;
    /* VGG's convolution biases, adaptive pool and dropout have no kernels here: refused, never
     * run as something else */
    for (int i = 0; i < net->graph.num_nodes; i++) {
        const ev_node *n = &net->graph.nodes[i];
        if (n->op == EV_OP_ADAPTIVE_AVGPOOL || n->op == EV_OP_DROPOUT ||
            (n->op == EV_OP_CONV2D && n->param_index[1] >= 0))
            return ev_fail(err, EV_ERR_UNSUPPORTED,
                           "executor: node %d (%s, %s) is not supported by the training executor",
                           i, ev_op_name(n->op), n->tag);
    }
    /* a training network's outputs are laid out by plan_activations on the first forward (once
     * the weighted adds, whose inputs backward reads, are known) */
    if (!net->grad_storage) {
        int rc = ev_net_alloc_activations(net, err);
        if (rc)
            return rc;
    }
    search_exec *e = calloc(1, sizeof *e);
    if (!e)
        return ev_fail(err, EV_ERR_NOMEM, "executor: out of memory");
    e->bn_momentum = BN_MOMENTUM;
    e->net = net;
    e->k = search_kernels_get();
    e->threads = threads < 1 ? 1 : threads;
    int batch = net->batch;
    e->nchunks = batch < MAX_CHUNKS ? batch : MAX_CHUNKS;
    for (int c = 0; c <= e->nchunks; c++)
        e->chunk_lo[c] = (int)((long)batch * c / e->nchunks);
    ev_graph *g = &net->graph;
    int nn = g->num_nodes;
    e->grad = calloc((size_t)nn, sizeof *e->grad);
    e->wt = calloc((size_t)nn, sizeof *e->wt);
    e->argmax = calloc((size_t)nn, sizeof *e->argmax);
    e->touched = calloc((size_t)nn, sizeof *e->touched);
    e->first = calloc((size_t)nn * EV_NODE_MAX_INPUTS, sizeof *e->first);
    e->skip = calloc((size_t)nn, sizeof *e->skip);
    e->aux_node = calloc((size_t)nn, sizeof *e->aux_node);
    e->param_off = calloc((size_t)net->num_params, sizeof *e->param_off);
    if (!e->grad || !e->wt || !e->argmax || !e->touched || !e->first || !e->skip || !e->aux_node ||
        !e->param_off || (net->grad_storage && plan_gradients(e)))
        goto nomem;
    size_t off = 0;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        e->param_off[i] = off;
        if (ev_param_trainable(p) && p->kind != EV_PARAM_BN_WEIGHT && p->kind != EV_PARAM_BN_BIAS)
            off += (p->numel + 7) & ~(size_t)7;
    }
    e->partial_size = off;
    e->partial = ev_aligned_alloc((size_t)e->nchunks * off * sizeof(double) + 64);
    if (!e->partial)
        goto nomem;
    size_t scratch = 0;
    for (int i = 0; i < nn; i++) {
        ev_node *n = &g->nodes[i];
        e->aux_node[i] = n->auxiliary;
        if (n->shape.c > e->max_channels)
            e->max_channels = n->shape.c;
        if (n->op == EV_OP_MAXPOOL &&
            !(e->argmax[i] = malloc(ev_shape_numel(n->shape) * sizeof(int32_t))))
            goto nomem;
        if (is_pointwise(n)) {
            const ev_shape *xs = &g->nodes[n->inputs[0]].shape;
            if (!(e->wt[i] = malloc((size_t)xs->c * n->shape.c * sizeof(float))))
                goto nomem;
            if (n->stride != 1) {
                size_t need = 2 * (size_t)xs->c * n->shape.h * n->shape.w;
                if (need > scratch)
                    scratch = need;
            }
        }
    }
    e->scratch_size = (scratch + 15) & ~(size_t)15;
    if (scratch &&
        !(e->scratch = ev_aligned_alloc((size_t)e->nchunks * e->scratch_size * sizeof(float))))
        goto nomem;
    if (!(e->bn_part = malloc((size_t)e->nchunks * 2 * (size_t)e->max_channels * sizeof(double))) ||
        !(e->bn_sums = malloc(2 * (size_t)e->max_channels * sizeof(double))) ||
        ev_pool_create(e->threads, EV_POOL_SLEEP, &e->pool))
        goto nomem;
    *out = e;
    return EV_OK;
nomem:
    search_exec_free(e);
    return ev_fail(err, EV_ERR_NOMEM, "executor: out of memory for the training buffers");
}

const float *search_exec_logits(const search_exec *e) { return ev_net_logits(e->net); }

void search_exec_memory_use(const search_exec *e, search_exec_memory *m)
{
    const ev_graph *g = &e->net->graph;
    memset(m, 0, sizeof *m);
    m->activations = e->net->activations.size;
    if (!e->net->activations.base && plan_activations(e, true, &m->activations))
        m->activations = 0;
    m->gradients = e->grad_floats * sizeof(float);
    m->other = (size_t)e->nchunks * e->partial_size * sizeof(double) +
               (size_t)e->nchunks * e->scratch_size * sizeof(float);
    for (int i = 0; i < g->num_nodes; i++) {
        const ev_node *n = &g->nodes[i];
        if (e->argmax[i])
            m->other += ev_shape_numel(n->shape) * sizeof(int32_t);
        if (e->wt[i])
            m->other += (size_t)g->nodes[n->inputs[0]].shape.c * n->shape.c * sizeof(float);
    }
}

int search_exec_set_channel_map(search_exec *e, int node, const int *map, ev_error *err)
{
    ev_graph *g = &e->net->graph;
    if (node < 0 || node >= g->num_nodes || g->nodes[node].op != EV_OP_CONCAT)
        return ev_fail(err, EV_ERR_INVALID, "executor: node %d is not a concat", node);
    const ev_node *n = &g->nodes[node];
    int total = 0;
    for (int k = 0; k < n->num_inputs; k++)
        total += g->nodes[n->inputs[k]].shape.c;
    for (int o = 0; o < n->shape.c; o++)
        if (map[o] < 0 || map[o] >= total)
            return ev_fail(err, EV_ERR_INVALID, "executor: channel map entry %d out of range",
                           map[o]);
    if (!e->chan_map && !(e->chan_map = calloc((size_t)g->num_nodes, sizeof *e->chan_map)))
        return ev_fail(err, EV_ERR_NOMEM, "executor: out of memory");
    e->chan_map[node] = map;
    return EV_OK;
}

int search_exec_set_weighted_add(search_exec *e, int node, const float *weights, double *grad,
                                 ev_error *err)
{
    ev_graph *g = &e->net->graph;
    if (node < 0 || node >= g->num_nodes || g->nodes[node].op != EV_OP_ADD)
        return ev_fail(err, EV_ERR_INVALID, "executor: node %d is not an add", node);
    if (e->planned && !(e->mix_w && e->mix_w[node]))
        return ev_fail(err, EV_ERR_INVALID,
                       "executor: weighted adds are set before the first forward (node %d)", node);
    if (!e->mix_w) {
        e->mix_w = calloc((size_t)g->num_nodes, sizeof *e->mix_w);
        e->mix_grad = calloc((size_t)g->num_nodes, sizeof *e->mix_grad);
        e->mix_part = calloc((size_t)e->nchunks * EV_NODE_MAX_INPUTS, sizeof *e->mix_part);
        if (!e->mix_w || !e->mix_grad || !e->mix_part)
            return ev_fail(err, EV_ERR_NOMEM, "executor: out of memory");
    }
    e->mix_w[node] = weights;
    e->mix_grad[node] = grad;
    return EV_OK;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static size_t sample_size(ev_shape s) { return (size_t)s.c * s.h * s.w; }

/* The executor's reductions all add in one order, so that a value does not depend on which loop
 * made it: float lanes of 8 within blocks of 256 (the lanes added pairwise, then the tail), the
 * blocks added in double. BLOCKED_SUM adds TERM(k) for k < n into total; a macro, so that each
 * reduction still compiles to its own loop. */
static inline float lanes_sum(const float s[8], float tail)
{
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + tail;
}

#define BLOCKED_SUM(n, TERM, total)                        \
    for (size_t blk_ = 0; blk_ < (n); blk_ += 256) {       \
        const size_t m_ = (n)-blk_ < 256 ? (n)-blk_ : 256; \
        float s_[8] = {0};                                 \
        size_t i_ = 0;                                     \
        for (; i_ + 8 <= m_; i_ += 8)                      \
            for (int l_ = 0; l_ < 8; l_++)                 \
                s_[l_] += TERM(blk_ + i_ + l_);            \
        float t_ = 0;                                      \
        for (; i_ < m_; i_++)                              \
            t_ += TERM(blk_ + i_);                         \
        (total) += (double)lanes_sum(s_, t_);              \
    }

/* Sum of a row of floats. */
static double sum_floats(const float *x, size_t n)
{
    double total = 0.0;
#define SUM_TERM(k) x[k]
    BLOCKED_SUM(n, SUM_TERM, total)
#undef SUM_TERM
    return total;
}

static double sum_sq_dev(const float *x, size_t n, float mean)
{
    double total = 0.0;
#define SQ_DEV_TERM(k) ((x[k] - mean) * (x[k] - mean))
    BLOCKED_SUM(n, SQ_DEV_TERM, total)
#undef SQ_DEV_TERM
    return total;
}

/* sum dy and sum dy * (x - mean) */
static void sum_dy_dev(const float *dy, const float *x, size_t n, float mean, double *sd,
                       double *sdx)
{
    double a = 0.0, b = 0.0;
    for (size_t blk = 0; blk < n; blk += 256) {
        size_t m = n - blk < 256 ? n - blk : 256;
        float s[8] = {0}, t[8] = {0};
        size_t i = 0;
        for (; i + 8 <= m; i += 8)
            for (int l = 0; l < 8; l++) {
                float d = dy[blk + i + l];
                s[l] += d;
                t[l] += d * (x[blk + i + l] - mean);
            }
        float s1 = 0, t1 = 0;
        for (; i < m; i++) {
            s1 += dy[blk + i];
            t1 += dy[blk + i] * (x[blk + i] - mean);
        }
        a += (double)lanes_sum(s, s1);
        b += (double)lanes_sum(t, t1);
    }
    *sd += a;
    *sdx += b;
}

/* ---- element-wise loops (restrict lets the compiler vectorise them) -------------------------- */

static void add_into(float *restrict d, const float *restrict src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] += src[i];
}

/* Output channel o of a mapped CONCAT node is channel map[o] of its inputs' concatenation;
 * the input and channel of it within that input. */
static int map_source(const ev_graph *g, const ev_node *n, int src, int *channel)
{
    int k = 0;
    while (k < n->num_inputs - 1 && src >= g->nodes[n->inputs[k]].shape.c)
        src -= g->nodes[n->inputs[k++]].shape.c;
    *channel = src;
    return k;
}

/* d = (accumulate ? d : 0) + a * src */
static void scale_into(float *restrict d, const float *restrict src, size_t n, float a,
                       bool accumulate)
{
    if (accumulate)
        for (size_t i = 0; i < n; i++)
            d[i] += a * src[i];
    else
        for (size_t i = 0; i < n; i++)
            d[i] = a * src[i];
}

/* sum of dy . x */
static double dot_floats(const float *dy, const float *x, size_t n)
{
    double total = 0.0;
#define DOT_TERM(k) (dy[k] * x[k])
    BLOCKED_SUM(n, DOT_TERM, total)
#undef DOT_TERM
    return total;
}

static void relu_forward(const float *restrict x, float *restrict y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

static void relu_backward(const float *restrict x, const float *restrict dy, float *restrict dx,
                          size_t n, bool first)
{
    /* loads first, then a select: the compiler vectorises this form */
    if (first)
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i], v = x[i];
            dx[i] = v > 0.0f ? g : 0.0f;
        }
    else
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i], v = x[i], d = dx[i];
            dx[i] = d + (v > 0.0f ? g : 0.0f);
        }
}

static void affine(const float *restrict x, float *restrict y, size_t n, float a, float b)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * a + b;
}

static void bn_dx(const float *restrict x, const float *restrict dy, float *restrict dx, size_t n,
                  float k, float mean_dy, float mean, float invstd_mdx, bool first)
{
    if (first)
        for (size_t i = 0; i < n; i++)
            dx[i] = k * (dy[i] - mean_dy - (x[i] - mean) * invstd_mdx);
    else
        for (size_t i = 0; i < n; i++)
            dx[i] += k * (dy[i] - mean_dy - (x[i] - mean) * invstd_mdx);
}

/* ---- pools -------------------------------------------------------------------------------------- */

/* Max pool of planes, remembering the first maximum of each window in row-major order (the
 * reference's tie rule; padding never wins). */
static void maxpool_forward_planes(const float *x, ev_shape xs, int k, int stride, int pad,
                                   float *y, ev_shape ys, int32_t *arg)
{
    const size_t in_plane = (size_t)xs.h * xs.w, out_plane = (size_t)ys.h * ys.w;
    for (size_t nc = 0; nc < (size_t)xs.n * xs.c; nc++) {
        const float *p = x + nc * in_plane;
        float *q = y + nc * out_plane;
        int32_t *a = arg + nc * out_plane;
        for (int oh = 0; oh < ys.h; oh++) {
            int h0 = oh * stride - pad, h1 = h0 + k;
            h0 = h0 < 0 ? 0 : h0;
            h1 = h1 > xs.h ? xs.h : h1;
            for (int ow = 0; ow < ys.w; ow++) {
                int w0 = ow * stride - pad, w1 = w0 + k;
                w0 = w0 < 0 ? 0 : w0;
                w1 = w1 > xs.w ? xs.w : w1;
                int best_at = h0 * xs.w + w0;
                float best = p[best_at];
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float v = p[ih * xs.w + iw];
                        if (v > best) {
                            best = v;
                            best_at = ih * xs.w + iw;
                        }
                    }
                q[oh * ys.w + ow] = best;
                a[oh * ys.w + ow] = best_at;
            }
        }
    }
}

static void maxpool_backward_planes(ev_shape xs, const float *dy, ev_shape ys, const int32_t *arg,
                                    float *dx)
{
    const size_t in_plane = (size_t)xs.h * xs.w, out_plane = (size_t)ys.h * ys.w;
    for (size_t nc = 0; nc < (size_t)xs.n * xs.c; nc++) {
        float *r = dx + nc * in_plane;
        const float *q = dy + nc * out_plane;
        const int32_t *a = arg + nc * out_plane;
        for (size_t i = 0; i < out_plane; i++)
            r[a[i]] += q[i];
    }
}

/* ---- convolution ------------------------------------------------------------------------------ */

static void gather_strided(const float *x, int c, int xh, int xw, int stride, int oh, int ow,
                           float *dst)
{
    for (int ch = 0; ch < c; ch++)
        for (int h = 0; h < oh; h++) {
            const float *src = x + ((size_t)ch * xh + (size_t)h * stride) * xw;
            float *d = dst + ((size_t)ch * oh + h) * ow;
            for (int w = 0; w < ow; w++)
                d[w] = src[(size_t)w * stride];
        }
}

static void conv_forward_chunk(search_exec *e, const ev_node *n, const ev_node *x, int n0, int n1,
                               float *scratch)
{
    const ev_shape xs = x->shape, ys = n->shape;
    const float *w = n->params[0]->data;
    const size_t xsz = sample_size(xs), ysz = sample_size(ys);
    const int P = ys.h * ys.w;
    for (int s = n0; s < n1; s++) {
        const float *xp = x->out + (size_t)s * xsz;
        float *yp = n->out + (size_t)s * ysz;
        if (is_pointwise(n)) {
            if (n->stride != 1) {
                gather_strided(xp, xs.c, xs.h, xs.w, n->stride, ys.h, ys.w, scratch);
                xp = scratch;
            }
            e->k->gemm_nn(ys.c, xs.c, P, w, xp, yp, false);
            continue;
        }
        const int cin_g = xs.c / n->groups, cout_g = ys.c / n->groups, kk = n->kernel * n->kernel;
        memset(yp, 0, ysz * sizeof(float));
        for (int oc = 0; oc < ys.c; oc++) {
            const int g = oc / cout_g;
            for (int ic = 0; ic < cin_g; ic++)
                e->k->conv_plane_forward(xp + (size_t)(g * cin_g + ic) * xs.h * xs.w, xs.h, xs.w,
                                         w + ((size_t)oc * cin_g + ic) * kk, n->kernel, n->stride,
                                         n->pad, n->dilation, yp + (size_t)oc * P, ys.h, ys.w);
        }
    }
}

static void conv_backward_chunk(search_exec *e, int node, int n0, int n1, double *partial,
                                float *scratch)
{
    ev_graph *g = &e->net->graph;
    const ev_node *n = &g->nodes[node];
    const ev_node *x = &g->nodes[n->inputs[0]];
    const ev_shape xs = x->shape, ys = n->shape;
    const ev_param *wp = n->params[0];
    const float *w = wp->data;
    double *dw = partial + e->param_off[n->param_index[0]];
    float *dxall = e->grad[n->inputs[0]];
    const float *dyall = e->grad[node];
    const size_t xsz = sample_size(xs), ysz = sample_size(ys);
    const int P = ys.h * ys.w;
    for (int s = n0; s < n1; s++) {
        const float *xp = x->out + (size_t)s * xsz;
        const float *dy = dyall + (size_t)s * ysz;
        float *dx = dxall ? dxall + (size_t)s * xsz : NULL;
        if (is_pointwise(n)) {
            if (n->stride == 1) {
                e->k->gemm_nt(ys.c, xs.c, P, dy, xp, dw);
                if (dx)
                    e->k->gemm_nn(xs.c, ys.c, P, e->wt[node], dy, dx, true);
            } else {
                float *xg = scratch, *dg = scratch + e->scratch_size / 2;
                gather_strided(xp, xs.c, xs.h, xs.w, n->stride, ys.h, ys.w, xg);
                e->k->gemm_nt(ys.c, xs.c, P, dy, xg, dw);
                if (dx) {
                    e->k->gemm_nn(xs.c, ys.c, P, e->wt[node], dy, dg, false);
                    for (int ch = 0; ch < xs.c; ch++)
                        for (int h = 0; h < ys.h; h++) {
                            float *d = dx + ((size_t)ch * xs.h + (size_t)h * n->stride) * xs.w;
                            const float *src = dg + ((size_t)ch * ys.h + h) * ys.w;
                            for (int ww = 0; ww < ys.w; ww++)
                                d[(size_t)ww * n->stride] += src[ww];
                        }
                }
            }
            continue;
        }
        const int cin_g = xs.c / n->groups, cout_g = ys.c / n->groups, kk = n->kernel * n->kernel;
        const size_t in_plane = (size_t)xs.h * xs.w;
        for (int oc = 0; oc < ys.c; oc++) {
            const int gi = oc / cout_g;
            for (int ic = 0; ic < cin_g; ic++) {
                const size_t wo = ((size_t)oc * cin_g + ic) * kk;
                const size_t xo = (size_t)(gi * cin_g + ic) * in_plane;
                e->k->conv_plane_backward_weight(xp + xo, xs.h, xs.w, dy + (size_t)oc * P, ys.h,
                                                 ys.w, n->kernel, n->stride, n->pad, n->dilation,
                                                 dw + wo);
                if (dx)
                    e->k->conv_plane_backward_data(dy + (size_t)oc * P, ys.h, ys.w, w + wo,
                                                   n->kernel, n->stride, n->pad, n->dilation,
                                                   dx + xo, xs.h, xs.w);
            }
        }
    }
}

/* ---- forward ----------------------------------------------------------------------------------- */

/* Work shared by the chunk tasks of one batch-norm op. */
typedef struct bn_task {
    search_exec *e;
    ev_node *n;
    const ev_node *x;
    int node, C, kind;
    size_t plane, count;
    const float *mean, *invstd, *gamma, *beta, *dy;
    const double *sd, *sdx;
    float *dx;
    bool first;
} bn_task;

enum { BN_SUM, BN_SQ, BN_NORMALISE, BN_GRAD_SUMS, BN_GRAD_DX };

static void bn_chunk(void *ctx, int ch, int chunks, int thread)
{
    (void)chunks;
    (void)thread;
    const bn_task *t = ctx;
    search_exec *e = t->e;
    const int C = t->C;
    const size_t plane = t->plane;
    const float *x = t->x->out;
    double *part = e->bn_part + (size_t)ch * 2 * C;
    switch (t->kind) {
    case BN_SUM:
        for (int c = 0; c < C; c++)
            part[c] = 0.0;
        for (int b = e->chunk_lo[ch]; b < e->chunk_lo[ch + 1]; b++)
            for (int c = 0; c < C; c++)
                part[c] += sum_floats(x + ((size_t)b * C + c) * plane, plane);
        break;
    case BN_SQ:
        for (int c = 0; c < C; c++)
            part[C + c] = 0.0;
        for (int b = e->chunk_lo[ch]; b < e->chunk_lo[ch + 1]; b++)
            for (int c = 0; c < C; c++)
                part[C + c] += sum_sq_dev(x + ((size_t)b * C + c) * plane, plane, t->mean[c]);
        break;
    case BN_NORMALISE:
        for (int b = e->chunk_lo[ch]; b < e->chunk_lo[ch + 1]; b++)
            for (int c = 0; c < C; c++) {
                const double sc = (double)t->invstd[c] * (t->gamma ? t->gamma[c] : 1.0);
                const float o = (float)((t->beta ? t->beta[c] : 0.0) - (double)t->mean[c] * sc);
                affine(x + ((size_t)b * C + c) * plane, t->n->out + ((size_t)b * C + c) * plane,
                       plane, (float)sc, o);
            }
        break;
    case BN_GRAD_SUMS:
        for (int c = 0; c < 2 * C; c++)
            part[c] = 0.0;
        for (int b = e->chunk_lo[ch]; b < e->chunk_lo[ch + 1]; b++)
            for (int c = 0; c < C; c++) {
                size_t o = ((size_t)b * C + c) * plane;
                sum_dy_dev(t->dy + o, x + o, plane, t->mean[c], &part[c], &part[C + c]);
            }
        break;
    case BN_GRAD_DX:
        for (int b = e->chunk_lo[ch]; b < e->chunk_lo[ch + 1]; b++)
            for (int c = 0; c < C; c++) {
                size_t o = ((size_t)b * C + c) * plane;
                const double k = (t->gamma ? t->gamma[c] : 1.0) * t->invstd[c];
                const float md = (float)(t->sd[c] / (double)t->count);
                const float mdx = (float)(t->sdx[c] / (double)t->count);
                bn_dx(x + o, t->dy + o, t->dx + o, plane, (float)k, md, t->mean[c],
                      t->invstd[c] * mdx, t->first);
            }
        break;
    }
}

static void bn_forward(search_exec *e, ev_node *n, const ev_node *x, bool training)
{
    const ev_shape s = x->shape;
    const size_t plane = (size_t)s.h * s.w, count = (size_t)s.n * plane;
    const int C = s.c, nch = e->nchunks;
    float *running_mean = n->params[2]->data, *running_var = n->params[3]->data;
    float *mean = n->saved, *invstd = n->saved + C;
    bn_task t = {.e = e,
                 .n = n,
                 .x = x,
                 .C = C,
                 .plane = plane,
                 .count = count,
                 .mean = mean,
                 .invstd = invstd,
                 .gamma = n->params[0] ? n->params[0]->data : NULL,
                 .beta = n->params[1] ? n->params[1]->data : NULL};
    if (training) {
        t.kind = BN_SUM;
        ev_pool_run(e->pool, bn_chunk, &t, nch);
        for (int c = 0; c < C; c++) {
            double sum = 0.0;
            for (int ch = 0; ch < nch; ch++)
                sum += e->bn_part[(size_t)ch * 2 * C + c];
            mean[c] = (float)(sum / (double)count);
        }
        t.kind = BN_SQ;
        ev_pool_run(e->pool, bn_chunk, &t, nch);
        for (int c = 0; c < C; c++) {
            double sq = 0.0, sum = 0.0;
            for (int ch = 0; ch < nch; ch++) {
                sq += e->bn_part[(size_t)ch * 2 * C + C + c];
                sum += e->bn_part[(size_t)ch * 2 * C + c];
            }
            double m = sum / (double)count; /* the double mean, as the reference keeps it */
            /* sq was taken around the float mean; shift it to the double mean */
            double dm = m - (double)mean[c];
            sq -= (double)count * dm * dm;
            if (sq < 0)
                sq = 0;
            double var = sq / (double)count;
            invstd[c] = (float)(1.0 / sqrt(var + BN_EPS));
            mean[c] = (float)m;
            running_mean[c] =
                (float)((1.0 - e->bn_momentum) * running_mean[c] + e->bn_momentum * m);
            double unbiased = count > 1 ? sq / (double)(count - 1) : var;
            running_var[c] =
                (float)((1.0 - e->bn_momentum) * running_var[c] + e->bn_momentum * unbiased);
        }
    } else {
        for (int c = 0; c < C; c++) {
            mean[c] = running_mean[c];
            invstd[c] = (float)(1.0 / sqrt((double)running_var[c] + BN_EPS));
        }
    }
    t.kind = BN_NORMALISE;
    ev_pool_run(e->pool, bn_chunk, &t, nch);
}

static void node_forward_chunk(search_exec *e, ev_node *n, int n0, int n1, const float *input,
                               float *scratch)
{
    ev_graph *g = &e->net->graph;
    const ev_node *x = n->num_inputs ? &g->nodes[n->inputs[0]] : NULL;
    ev_shape cs = n->shape; /* the chunk's shape */
    cs.n = n1 - n0;
    const size_t ysz = sample_size(n->shape), off = (size_t)n0 * ysz;
    const size_t xoff = x ? (size_t)n0 * sample_size(x->shape) : 0;
    ev_shape xcs = x ? x->shape : cs;
    xcs.n = n1 - n0;
    switch (n->op) {
    case EV_OP_INPUT:
        memcpy(n->out + off, input + off, (size_t)cs.n * ysz * sizeof(float));
        break;
    case EV_OP_CONV2D:
        conv_forward_chunk(e, n, x, n0, n1, scratch);
        break;
    case EV_OP_RELU:
        relu_forward(x->out + off, n->out + off, (size_t)cs.n * ysz);
        break;
    case EV_OP_MAXPOOL:
        maxpool_forward_planes(x->out + xoff, xcs, n->kernel, n->stride, n->pad, n->out + off, cs,
                               e->argmax[n - g->nodes] + off);
        break;
    case EV_OP_AVGPOOL:
        ev_ref_avgpool_forward(x->out + xoff, xcs, n->kernel, n->stride, n->pad, n->out + off, cs);
        break;
    case EV_OP_ZERO:
        memset(n->out + off, 0, (size_t)cs.n * ysz * sizeof(float));
        break;
    case EV_OP_ADD: {
        float *yp = n->out + off;
        const size_t m = (size_t)cs.n * ysz;
        const float *mw = e->mix_w ? e->mix_w[n - g->nodes] : NULL;
        if (mw) { /* mixed op: sum of weights[k] * inputs[k] */
            scale_into(yp, g->nodes[n->inputs[0]].out + off, m, mw[0], false);
            for (int k = 1; k < n->num_inputs; k++)
                scale_into(yp, g->nodes[n->inputs[k]].out + off, m, mw[k], true);
            break;
        }
        memcpy(yp, g->nodes[n->inputs[0]].out + off, m * sizeof(float));
        for (int k = 1; k < n->num_inputs; k++)
            add_into(yp, g->nodes[n->inputs[k]].out + off, m);
        break;
    }
    case EV_OP_CONCAT: {
        const float *srcs[EV_NODE_MAX_INPUTS];
        int channels[EV_NODE_MAX_INPUTS];
        for (int k = 0; k < n->num_inputs; k++) {
            const ev_node *in = &g->nodes[n->inputs[k]];
            srcs[k] = in->out + (size_t)n0 * sample_size(in->shape);
            channels[k] = in->shape.c;
        }
        const int *map = e->chan_map ? e->chan_map[n - g->nodes] : NULL;
        if (map) { /* channel selection / permutation */
            const size_t P = (size_t)cs.h * cs.w;
            for (int sm = 0; sm < cs.n; sm++)
                for (int o = 0; o < cs.c; o++) {
                    int c, k = map_source(g, n, map[o], &c);
                    memcpy(n->out + off + ((size_t)sm * cs.c + o) * P,
                           srcs[k] + ((size_t)sm * channels[k] + c) * P, P * sizeof(float));
                }
            break;
        }
        ev_ref_concat_forward(srcs, channels, n->num_inputs, cs, n->out + off);
        break;
    }
    case EV_OP_CROP:
        ev_ref_crop_forward(x->out + xoff, xcs, n->crop, n->out + off);
        break;
    case EV_OP_GAP:
        ev_ref_gap_forward(x->out + xoff, xcs, n->out + off);
        break;
    case EV_OP_LINEAR:
        ev_ref_linear_forward(x->out + xoff, cs.n, (int)sample_size(x->shape), n->params[0]->data,
                              n->params[1] ? n->params[1]->data : NULL, n->shape.c, n->out + off);
        break;
    case EV_OP_DROP_PATH:
        ev_ref_drop_path_forward(x->out + xoff, cs, n->saved + n0, n->out + off);
        break;
    default:
        break;
    }
}

typedef struct forward_task {
    search_exec *e;
    ev_node *n;
    const float *input;
} forward_task;

static void forward_chunk(void *ctx, int ch, int chunks, int thread)
{
    (void)chunks;
    (void)thread;
    forward_task *t = ctx;
    search_exec *e = t->e;
    node_forward_chunk(e, t->n, e->chunk_lo[ch], e->chunk_lo[ch + 1], t->input,
                       e->scratch ? e->scratch + (size_t)ch * e->scratch_size : NULL);
}

void search_exec_set_bn_momentum(search_exec *e, double momentum) { e->bn_momentum = momentum; }

int search_exec_forward(search_exec *e, const float *input, bool training, ev_error *err)
{
    ev_graph *g = &e->net->graph;
    if (!e->net->activations.base) {
        size_t bytes;
        if (plan_activations(e, false, &bytes))
            return ev_fail(err, EV_ERR_NOMEM, "executor: out of memory for %zu MiB of activations",
                           bytes >> 20);
        e->planned = true;
    }
    g->training = training;
    for (int i = 0; i < g->num_nodes; i++) {
        ev_node *n = &g->nodes[i];
        e->skip[i] = e->aux_node[i] && !training;
        if (e->skip[i])
            continue;
        if (n->op >= EV_NUM_OPS)
            return ev_fail(err, EV_ERR_INVALID, "executor: node %d (%s): op not runnable", i,
                           n->tag);
        if (n->op == EV_OP_BATCHNORM) {
            bn_forward(e, n, &g->nodes[n->inputs[0]], training);
            continue;
        }
        if (n->op == EV_OP_DROP_PATH) { /* masks drawn in sample order, as the reference does */
            float prob = training ? g->drop_path_prob : 0.0f;
            for (int s = 0; s < n->shape.n; s++)
                n->saved[s] = prob <= 0.0f                                  ? 1.0f
                              : ev_rng_uniform(&g->rng_state) < 1.0f - prob ? 1.0f / (1.0f - prob)
                                                                            : 0.0f;
        }
        forward_task t = {e, n, input};
        ev_pool_run(e->pool, forward_chunk, &t, e->nchunks);
    }
    return EV_OK;
}

/* ---- backward ---------------------------------------------------------------------------------- */

static void bn_backward(search_exec *e, int node)
{
    ev_graph *g = &e->net->graph;
    ev_node *n = &g->nodes[node];
    const ev_node *x = &g->nodes[n->inputs[0]];
    const ev_shape s = x->shape;
    const size_t plane = (size_t)s.h * s.w, count = (size_t)s.n * plane;
    const int C = s.c, nch = e->nchunks;
    double *sd = e->bn_sums, *sdx = e->bn_sums + C;
    bn_task t = {.e = e,
                 .n = n,
                 .x = x,
                 .node = node,
                 .C = C,
                 .plane = plane,
                 .count = count,
                 .mean = n->saved,
                 .invstd = n->saved + C,
                 .gamma = n->params[0] ? n->params[0]->data : NULL,
                 .dy = e->grad[node],
                 .dx = e->grad[n->inputs[0]],
                 .sd = sd,
                 .sdx = sdx,
                 .first = e->first[(size_t)node * EV_NODE_MAX_INPUTS]};
    t.kind = BN_GRAD_SUMS;
    ev_pool_run(e->pool, bn_chunk, &t, nch);
    for (int c = 0; c < 2 * C; c++)
        sd[c] = 0.0;
    for (int ch = 0; ch < nch; ch++)
        for (int c = 0; c < C; c++) {
            sd[c] += e->bn_part[(size_t)ch * 2 * C + c];
            sdx[c] += e->bn_part[(size_t)ch * 2 * C + C + c];
        }
    for (int c = 0; c < C; c++) {
        sdx[c] *= (double)t.invstd[c]; /* sum dy * xhat */
        if (n->params[0] && n->params[0]->grad)
            n->params[0]->grad[c] = (float)sdx[c];
        if (n->params[1] && n->params[1]->grad)
            n->params[1]->grad[c] = (float)sd[c];
    }
    if (t.dx) {
        t.kind = BN_GRAD_DX;
        ev_pool_run(e->pool, bn_chunk, &t, nch);
    }
}

static void node_backward_chunk(search_exec *e, int node, int ch)
{
    ev_graph *g = &e->net->graph;
    ev_node *n = &g->nodes[node];
    const int n0 = e->chunk_lo[ch], n1 = e->chunk_lo[ch + 1];
    const bool *first = e->first + (size_t)node * EV_NODE_MAX_INPUTS;
    /* the first consumer zeroes its inputs' gradient rows of this chunk */
    for (int j = 0; j < n->num_inputs; j++) {
        float *d = e->grad[n->inputs[j]];
        if (first[j] && d && !(n->op == EV_OP_RELU && j == 0)) {
            size_t sz = sample_size(g->nodes[n->inputs[j]].shape);
            memset(d + (size_t)n0 * sz, 0, (size_t)(n1 - n0) * sz * sizeof(float));
        }
    }
    const ev_node *x = n->num_inputs ? &g->nodes[n->inputs[0]] : NULL;
    float *dx = x ? e->grad[n->inputs[0]] : NULL;
    ev_shape cs = n->shape;
    cs.n = n1 - n0;
    const size_t ysz = sample_size(n->shape), off = (size_t)n0 * ysz;
    const size_t xoff = x ? (size_t)n0 * sample_size(x->shape) : 0;
    ev_shape xcs = x ? x->shape : cs;
    xcs.n = n1 - n0;
    const float *dy = e->grad[node] + off;
    double *partial = e->partial + (size_t)ch * e->partial_size;
    float *scratch = e->scratch ? e->scratch + (size_t)ch * e->scratch_size : NULL;
    switch (n->op) {
    case EV_OP_CONV2D:
        conv_backward_chunk(e, node, n0, n1, partial, scratch);
        break;
    case EV_OP_RELU:
        if (dx)
            /* y > 0 exactly where x > 0 (y = x > 0 ? x : 0), so the mask comes from the output
             * and the input need not be kept for backward (plan_activations) */
            relu_backward(n->out + off, dy, dx + xoff, (size_t)cs.n * ysz, first[0]);
        break;
    case EV_OP_MAXPOOL:
        if (dx)
            maxpool_backward_planes(xcs, dy, cs, e->argmax[node] + off, dx + xoff);
        break;
    case EV_OP_AVGPOOL:
        if (dx)
            ev_ref_avgpool_backward(xcs, n->kernel, n->stride, n->pad, dy, cs, dx + xoff);
        break;
    case EV_OP_ADD: {
        const float *mw = e->mix_w ? e->mix_w[node] : NULL;
        for (int j = 0; j < n->num_inputs; j++) {
            float *d = e->grad[n->inputs[j]];
            if (mw) { /* mixed op: dx_j += w_j dy; dL/dw_j = sum dy . x_j (per chunk) */
                e->mix_part[(size_t)ch * EV_NODE_MAX_INPUTS + j] =
                    dot_floats(dy, g->nodes[n->inputs[j]].out + off, (size_t)cs.n * ysz);
                if (d)
                    scale_into(d + off, dy, (size_t)cs.n * ysz, mw[j], true);
            } else if (d) {
                add_into(d + off, dy, (size_t)cs.n * ysz);
            }
        }
        break;
    }
    case EV_OP_CONCAT: {
        float *dxs[EV_NODE_MAX_INPUTS];
        int channels[EV_NODE_MAX_INPUTS];
        for (int j = 0; j < n->num_inputs; j++) {
            const ev_node *in = &g->nodes[n->inputs[j]];
            float *d = e->grad[n->inputs[j]];
            dxs[j] = d ? d + (size_t)n0 * sample_size(in->shape) : NULL;
            channels[j] = in->shape.c;
        }
        const int *map = e->chan_map ? e->chan_map[node] : NULL;
        if (map) { /* a map is injective: each output channel adds into its one source */
            const size_t P = (size_t)cs.h * cs.w;
            for (int sm = 0; sm < cs.n; sm++)
                for (int o = 0; o < cs.c; o++) {
                    int c, k = map_source(g, n, map[o], &c);
                    if (dxs[k])
                        add_into(dxs[k] + ((size_t)sm * channels[k] + c) * P,
                                 dy + ((size_t)sm * cs.c + o) * P, P);
                }
            break;
        }
        ev_ref_concat_backward(dy, cs, channels, n->num_inputs, dxs);
        break;
    }
    case EV_OP_CROP:
        if (dx)
            ev_ref_crop_backward(xcs, n->crop, dy, dx + xoff);
        break;
    case EV_OP_GAP:
        if (dx)
            ev_ref_gap_backward(xcs, dy, dx + xoff);
        break;
    case EV_OP_LINEAR: {
        const int in = (int)sample_size(x->shape), out = n->shape.c;
        if (dx)
            ev_ref_linear_backward(x->out + xoff, cs.n, in, n->params[0]->data, out, dy, dx + xoff,
                                   NULL, NULL);
        double *dw = partial + e->param_off[n->param_index[0]];
        for (int s = 0; s < cs.n; s++)
            for (int o = 0; o < out; o++) {
                const double d = dy[(size_t)s * out + o];
                const float *xr = x->out + xoff + (size_t)s * in;
                for (int i = 0; i < in; i++)
                    dw[(size_t)o * in + i] += d * xr[i];
            }
        if (n->param_index[1] >= 0) {
            double *db = partial + e->param_off[n->param_index[1]];
            for (int s = 0; s < cs.n; s++)
                for (int o = 0; o < out; o++)
                    db[o] += dy[(size_t)s * out + o];
        }
        break;
    }
    case EV_OP_DROP_PATH:
        if (dx)
            ev_ref_drop_path_backward(cs, n->saved + n0, dy, dx + xoff);
        break;
    default: /* ZERO: nothing flows back */
        break;
    }
}

typedef struct backward_task {
    search_exec *e;
    int node;
} backward_task;

static void backward_chunk(void *ctx, int ch, int chunks, int thread)
{
    (void)chunks;
    (void)thread;
    backward_task *t = ctx;
    node_backward_chunk(t->e, t->node, ch);
}

int search_exec_backward(search_exec *e, const int32_t *labels, float aux_weight, float *loss,
                         ev_error *err)
{
    ev_net *net = e->net;
    ev_graph *g = &net->graph;
    const int k = net->cfg.num_classes, batch = net->batch;
    for (int s = 0; s < batch; s++)
        if (labels[s] < 0 || labels[s] >= k)
            return ev_fail(err, EV_ERR_INVALID,
                           "executor: label %d of sample %d out of range 0..%d", labels[s], s,
                           k - 1);
    if (!g->training)
        return ev_fail(err, EV_ERR_INVALID, "executor: backward needs a training forward");
    if (!net->grad_storage)
        return ev_fail(err, EV_ERR_INVALID, "executor: the network was created without gradients");
    if (!e->grad_block) { /* gradient buffers on the first backward */
        if (!e->grad_off)
            return ev_fail(err, EV_ERR_INVALID, "executor: no gradient plan");
        if (!(e->grad_block = ev_aligned_alloc(e->grad_floats * sizeof(float) + 64)))
            return ev_fail(err, EV_ERR_NOMEM, "executor: out of memory for %zu MiB of gradients",
                           e->grad_floats * sizeof(float) >> 20);
        for (int i = 0; i < g->num_nodes; i++)
            e->grad[i] = e->grad_off[i] != SIZE_MAX ? e->grad_block + e->grad_off[i] : NULL;
    }
    e->use_aux = g->aux_logits >= 0 && aux_weight > 0.0f;
    memset(e->touched, 0, (size_t)g->num_nodes * sizeof *e->touched);
    memset(e->first, 0, (size_t)g->num_nodes * EV_NODE_MAX_INPUTS * sizeof *e->first);

    const float *logits = g->nodes[g->logits].out;
    float l = ev_ref_cross_entropy_forward(logits, batch, k, labels);
    memset(e->grad[g->logits], 0, (size_t)batch * k * sizeof(float));
    ev_ref_cross_entropy_backward(logits, batch, k, labels, 1.0f, e->grad[g->logits]);
    e->touched[g->logits] = true;
    if (e->use_aux) {
        const float *aux = g->nodes[g->aux_logits].out;
        l += aux_weight * ev_ref_cross_entropy_forward(aux, batch, k, labels);
        memset(e->grad[g->aux_logits], 0, (size_t)batch * k * sizeof(float));
        ev_ref_cross_entropy_backward(aux, batch, k, labels, aux_weight, e->grad[g->aux_logits]);
        e->touched[g->aux_logits] = true;
    }
    if (loss)
        *loss = l;

    memset(e->partial, 0, (size_t)e->nchunks * e->partial_size * sizeof(double));
    if (e->mix_w) /* mixed ops the loss does not reach keep zero weight gradients */
        for (int i = 0; i < g->num_nodes; i++)
            if (e->mix_w[i] && e->mix_grad[i])
                memset(e->mix_grad[i], 0, (size_t)g->nodes[i].num_inputs * sizeof(double));
    for (int i = 0; i < net->num_params; i++)
        if (net->params[i].grad)
            memset(net->params[i].grad, 0, net->params[i].numel * sizeof(float));

    for (int i = g->num_nodes - 1; i >= 0; i--) {
        ev_node *n = &g->nodes[i];
        if (n->op == EV_OP_INPUT || !e->touched[i] || e->skip[i])
            continue;
        if (e->aux_node[i] && !e->use_aux)
            continue;
        bool *first = e->first + (size_t)i * EV_NODE_MAX_INPUTS;
        if (n->op != EV_OP_ZERO)
            for (int j = 0; j < n->num_inputs; j++) {
                int in = n->inputs[j];
                if (g->nodes[in].op == EV_OP_INPUT)
                    continue;
                first[j] = !e->touched[in];
                e->touched[in] = true;
            }
        if (n->op == EV_OP_BATCHNORM) {
            bn_backward(e, i);
            continue;
        }
        if (is_pointwise(n)) { /* W^T for dx = W^T dy */
            const int co = n->shape.c, ci = g->nodes[n->inputs[0]].shape.c;
            const float *w = n->params[0]->data;
            for (int a = 0; a < co; a++)
                for (int b = 0; b < ci; b++)
                    e->wt[i][(size_t)b * co + a] = w[(size_t)a * ci + b];
        }
        backward_task t = {e, i};
        ev_pool_run(e->pool, backward_chunk, &t, e->nchunks);
        if (e->mix_w && e->mix_w[i] && e->mix_grad[i]) /* chunk partials summed in order */
            for (int j = 0; j < n->num_inputs; j++) {
                double sum = 0.0;
                for (int ch = 0; ch < e->nchunks; ch++)
                    sum += e->mix_part[(size_t)ch * EV_NODE_MAX_INPUTS + j];
                e->mix_grad[i][j] = sum;
            }
    }

    /* weight gradients: chunk partials summed in order */
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        if (!p->grad || p->kind == EV_PARAM_BN_WEIGHT || p->kind == EV_PARAM_BN_BIAS)
            continue;
        const size_t o = e->param_off[i];
        const int nch = e->nchunks;
        const size_t psz = e->partial_size;
        const double *part = e->partial;
        float *gr = p->grad;
        const size_t numel = p->numel;
        for (size_t j = 0; j < numel; j++) {
            double s = 0.0;
            for (int ch = 0; ch < nch; ch++)
                s += part[(size_t)ch * psz + o + j];
            gr[j] = (float)s;
        }
    }
    return EV_OK;
}
