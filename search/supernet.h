/* supernet.h: DARTS architecture search (library echoviewsearch): the search network whose
 * every edge is a mixed op over the 8 primitives weighted by softmax(alpha), the bilevel
 * optimiser (first order and unrolled second order), genotype derivation, and the search loop
 * behind `echoview search`.
 *
 * Facts matched (the DARTS paper, Liu et al. ICLR 2019, and quark0/darts cnn/model_search.py
 * and architect.py): search-time BN without affine parameters, pooling followed by BN, steps 4,
 * multiplier 4, stem multiplier 3, alphas 1e-3 * N(0,1), arch Adam 3e-4 (0.5, 0.999) wd 1e-3,
 * weights SGD 0.025 momentum 0.9 wd 3e-4 cosine to 0.001, clip 5, finite-difference Hessian-vector
 * product with r = 0.01 / ||dw'||. Beyond the paper: PC-DARTS edge normalisation (beta), a cap on
 * skip connections at derivation, and a latency term from a measured per-op table.
 */
#ifndef SEARCH_SUPERNET_H
#define SEARCH_SUPERNET_H

#include "ev_search.h"

#define SEARCH_STEPS 4               /* intermediate nodes per cell */
#define SEARCH_EDGES 14              /* 2 + 3 + 4 + 5 */
#define SEARCH_OPS EV_NUM_PRIMITIVES /* 8, `none` first */
#define SEARCH_ALPHA_SIZE (2 * SEARCH_EDGES * SEARCH_OPS)
#define SEARCH_ARCH_SIZE (SEARCH_ALPHA_SIZE + 2 * SEARCH_EDGES) /* alphas, then betas */

typedef struct search_supernet_config {
    int init_channels; /* C (16 in the paper) */
    int num_cells;     /* layout length (8 in the paper) */
    bool reduction[EV_MAX_CELLS];
    int in_channels, num_classes;
    int size;             /* input width = height */
    bool edge_norm;       /* PC-DARTS edge normalisation: node = sum softmax(beta)_j edge_j */
    int partial_channels; /* PC-DARTS K: mixed ops see 1/K of the channels (0 or 1: off) */
} search_supernet_config;

typedef struct search_arch_options {
    int order; /* 1: first order, 2: unrolled second order */
    float arch_lr, arch_beta1, arch_beta2, arch_weight_decay;
    float momentum, weight_decay; /* of the weight optimiser (used by the unrolled step) */
    float latency_weight;         /* lambda (per ms of expected latency); 0: off */
    float latency[SEARCH_OPS];    /* ms per edge per primitive (latency table), none = 0 */
} search_arch_options;

void search_arch_defaults(search_arch_options *o);

typedef struct search_supernet search_supernet;

int search_supernet_create(const search_supernet_config *cfg, int batch, int threads, uint64_t seed,
                           search_supernet **out, ev_error *err);
void search_supernet_free(search_supernet *s);
ev_net *search_supernet_net(search_supernet *s);
/* The architecture parameters: alpha normal [14][8], alpha reduce [14][8], beta normal [14],
 * beta reduce [14] (SEARCH_ARCH_SIZE floats), owned by the supernet. Change them freely; the
 * mixing weights are refreshed before every forward. */
float *search_supernet_arch(search_supernet *s);
/* Adam state of the architecture parameters and the weight optimiser's momentum (one float per
 * trainable parameter element, in parameter order), for checkpoints. */
float *search_supernet_arch_adam(search_supernet *s, float **v, int64_t **step);
float *search_supernet_momentum(search_supernet *s, size_t *count, bool **has_momentum);

/* Training-mode forward and cross-entropy; with grads, backward too: parameter gradients in the
 * net and d loss / d arch into grad (SEARCH_ARCH_SIZE doubles, may be NULL). */
int search_supernet_loss(search_supernet *s, const float *input, const int32_t *labels, bool grads,
                         double *grad, float *loss, float *accuracy, ev_error *err);
/* Eval-mode forward (running BN statistics); logits of the batch. */
int search_supernet_infer(search_supernet *s, const float *input, const float **logits,
                          ev_error *err);

/* The architecture gradient (SEARCH_ARCH_SIZE doubles) at the current weights: first order
 * d L_val / d arch, or (order 2) the unrolled gradient with eta = the current weight learning
 * rate, plus the latency term. Weights and BN statistics are left as they were. */
int search_supernet_arch_grad(search_supernet *s, const search_arch_options *o, float eta,
                              const float *train_x, const int32_t *train_y, const float *val_x,
                              const int32_t *val_y, double *grad, float *val_loss, ev_error *err);
/* One architecture step: the gradient above, then Adam on the arch parameters. */
int search_supernet_arch_step(search_supernet *s, const search_arch_options *o, float eta,
                              const float *train_x, const int32_t *train_y, const float *val_x,
                              const int32_t *val_y, float *val_loss, ev_error *err);
/* One weight step on a training batch: SGD with momentum and weight decay after clipping the
 * gradient norm to clip (0: off). */
int search_supernet_weight_step(search_supernet *s, float lr, float momentum, float weight_decay,
                                float clip, const float *x, const int32_t *y, float *loss,
                                float *accuracy, ev_error *err);

/* Mixing weights softmax(alpha) of one cell type: w[14][8]; beta weights (per node softmax over
 * its incoming edges) into bw[14] (1 each without edge normalisation). */
void search_arch_weights(const float *arch, int reduce, bool edge_norm, float w[][SEARCH_OPS],
                         float *bw);

/* The reference derivation rule on weights w[14][8] (times bw[14] per edge when not NULL): per
 * node the two incoming edges with the strongest non-none op weight (ties: lower input index),
 * on each the strongest non-none op (ties: lower primitive index); concat [2, 3, 4, 5].
 * max_skips >= 0 caps skip_connect edges: while there are more, the chosen skip with the
 * weakest weight has its skip weight removed and the cell is derived again. */
void search_derive_cell(const float w[][SEARCH_OPS], const float *bw, int max_skips,
                        ev_cell_genotype *out);
/* Both cells from arch (max_skips applies to the normal cell only, as P-DARTS does). */
void search_derive_genotype(const float *arch, bool edge_norm, int max_skips, ev_genotype *out);

/* ---- the search loop (`echoview search`) -------------------------------------------------- */

typedef struct search_darts_options {
    const char *data;
    const char *out_dir;
    int size, init_channels, num_cells;
    bool reduction[EV_MAX_CELLS];
    int epochs, batch, threads;
    uint64_t seed;
    bool resume;
    float lr, lr_min, momentum, weight_decay, grad_clip;
    search_arch_options arch;
    bool edge_norm;
    int partial_channels; /* PC-DARTS K (0: off) */
    int arch_warmup;      /* epochs of weight steps only before the first arch step (0) */
    int max_skips;        /* normal cell, at derivation; -1: no cap */
    bool augment, auto_roi;
    int num_classes;
    char **class_names;
    int max_steps;      /* cap steps per epoch (0: a pass over the search-train half) */
    int max_val_frames; /* cap the end-of-epoch evaluation (0: whole search-val half) */
    int stop_after;     /* stop after this many epochs in this run (0: no) */
    bool quiet;
    search_dataset *dataset; /* optional, preloaded (not freed) */
} search_darts_options;

void search_darts_defaults(search_darts_options *o);

typedef struct search_darts_result {
    int epochs_run;
    ev_genotype genotype;
    double images_per_second; /* search steps: (arch + weight step) per training image */
    double seconds_per_epoch; /* whole epochs of this run: steps, validation, checkpoint, plots */
} search_darts_result;

int search_darts_run(const search_darts_options *o, search_darts_result *result, ev_error *err);

/* Search-step throughput on random frames (warmup untimed steps, then steps timed). */
int search_darts_benchmark(const search_darts_options *o, int warmup, int steps,
                           double *seconds_per_step, double *images_per_second, ev_error *err);

/* Per-primitive latency (ms per edge, relative to the cheapest op) measured with the cpu
 * inference backend at o's size, layout and channels, batch 1, `threads` threads; written to
 * path as JSON when path is not NULL. */
int search_latency_measure(const search_darts_options *o, int threads, int iterations,
                           float latency[SEARCH_OPS], const char *path, ev_error *err);
int search_latency_load(const char *path, float latency[SEARCH_OPS], ev_error *err);

/* Graphviz cell diagram (dot source); rendered to PNG with `dot` when png_path is not NULL. */
int search_cell_dot(const ev_cell_genotype *cell, const char *title, const char *dot_path,
                    const char *png_path, ev_error *err);

#endif
