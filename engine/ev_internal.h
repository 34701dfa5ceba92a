/* ev_internal.h: the engine's inner API, shared by the engine's own files, its backends, the
 * training code in search/ and the tests. Not installed: applications use echoview.h.
 *
 * Pieces: errors, arenas, parameters (named tensors that map 1:1 to the reference PyTorch
 * state_dict), genotypes, network descriptions (genotype + layout + channels), and the compute
 * graph that the reference backend runs forward and backward.
 */
#ifndef EV_INTERNAL_H
#define EV_INTERNAL_H

#include "echoview.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors --------------------------------------------------------------------------------- */

#if defined(__GNUC__)
#define EV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EV_PRINTF(a, b)
#endif

/* Sets err (if non-NULL) and returns code, so callers can `return ev_fail(err, ...)`. */
int ev_fail(ev_error *err, int code, const char *fmt, ...) EV_PRINTF(3, 4);
/* Prefixes an existing message with context ("cells.1: " + message). */
int ev_fail_prefix(ev_error *err, const char *fmt, ...) EV_PRINTF(2, 3);

/* Overflow-checked size arithmetic: return false on overflow. */
bool ev_mul_size(size_t a, size_t b, size_t *out);
bool ev_add_size(size_t a, size_t b, size_t *out);

/* ---- arena: bump allocator for planned memory ------------------------------------------------ */

typedef struct ev_arena {
    unsigned char *base;
    size_t size, used;
} ev_arena;

int ev_arena_init(ev_arena *arena, size_t size);
/* 64-byte aligned, zeroed; NULL when the arena is exhausted. */
void *ev_arena_alloc(ev_arena *arena, size_t bytes);
void ev_arena_free(ev_arena *arena);

void *ev_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; free with ev_aligned_free */
void ev_aligned_free(void *p);

/* ---- primitives and genotypes ---------------------------------------------------------------- */

typedef enum ev_primitive {
    EV_PRIM_NONE = 0,
    EV_PRIM_MAX_POOL_3X3,
    EV_PRIM_AVG_POOL_3X3,
    EV_PRIM_SKIP_CONNECT,
    EV_PRIM_SEP_CONV_3X3,
    EV_PRIM_SEP_CONV_5X5,
    EV_PRIM_DIL_CONV_3X3,
    EV_PRIM_DIL_CONV_5X5,
    EV_NUM_PRIMITIVES
} ev_primitive;

const char *ev_primitive_name(ev_primitive p);
int ev_primitive_parse(const char *name); /* -1 when unknown */

#define EV_GENOTYPE_MAX_NODES 8
#define EV_GENOTYPE_MAX_EDGES (2 * EV_GENOTYPE_MAX_NODES)

typedef struct ev_genotype_edge {
    ev_primitive op;
    int input; /* 0 = cell k-2, 1 = cell k-1, 2.. = intermediate nodes */
} ev_genotype_edge;

typedef struct ev_cell_genotype {
    int num_nodes; /* intermediate nodes; each has two incoming edges */
    ev_genotype_edge edges[EV_GENOTYPE_MAX_EDGES];
    int num_concat;
    int concat[EV_GENOTYPE_MAX_NODES + 2];
} ev_cell_genotype;

typedef struct ev_genotype {
    ev_cell_genotype normal, reduce;
} ev_genotype;

/* Parses either the published one-line `Genotype(normal=[...], normal_concat=..., ...)` form or
 * the YAML form (a mapping with normal/normal_concat/reduce/reduce_concat). Validates. */
int ev_genotype_parse(const char *text, ev_genotype *out, ev_error *err);
int ev_genotype_load_file(const char *path, ev_genotype *out, ev_error *err);
int ev_genotype_validate(const ev_genotype *g, ev_error *err);
/* YAML text (malloc'ed) and the one-line published form (malloc'ed). */
char *ev_genotype_to_yaml(const ev_genotype *g, const char *name);
char *ev_genotype_to_string(const ev_genotype *g);
bool ev_genotype_equal(const ev_genotype *a, const ev_genotype *b);

/* ---- network description ----------------------------------------------------------------------- */

#define EV_MAX_CELLS 64

typedef struct ev_net_config {
    ev_genotype genotype;
    int init_channels; /* C */
    int num_cells;     /* layout length */
    bool reduction[EV_MAX_CELLS];
    int in_channels; /* 1 (gray) or 3 (RGB) */
    int num_classes;
    int input_height, input_width;
    bool auxiliary;       /* training-only head after cell 2L/3 (reference rule) */
    float drop_path_prob; /* training-only; 0 disables */
} ev_net_config;

/* The reference layout rule for `layers: L`: reduction cells at L/3 and 2L/3. */
void ev_layout_from_layers(int layers, bool *reduction);
/* Checks the configuration, including that every FactorizedReduce sees even sizes. */
int ev_net_config_check(const ev_net_config *cfg, ev_error *err);

/* ---- parameters: named tensors matching the reference state_dict --------------------------- */

typedef enum ev_param_kind {
    EV_PARAM_WEIGHT = 0,   /* conv / linear weight: trainable */
    EV_PARAM_BIAS,         /* linear bias: trainable */
    EV_PARAM_BN_WEIGHT,    /* BN gamma: trainable */
    EV_PARAM_BN_BIAS,      /* BN beta: trainable */
    EV_PARAM_RUNNING_MEAN, /* BN buffer */
    EV_PARAM_RUNNING_VAR,  /* BN buffer */
} ev_param_kind;

#define EV_PARAM_NAME_MAX 96

typedef struct ev_param {
    char name[EV_PARAM_NAME_MAX];
    ev_param_kind kind;
    int ndim;
    int shape[4];
    size_t numel;
    float *data;
    float *grad;    /* NULL unless trainable and gradients were requested */
    bool auxiliary; /* part of the auxiliary head (excluded from the parameter count) */
} ev_param;

static inline bool ev_param_trainable(const ev_param *p)
{
    return p->kind != EV_PARAM_RUNNING_MEAN && p->kind != EV_PARAM_RUNNING_VAR;
}

/* ---- compute graph ------------------------------------------------------------------------- */

typedef enum ev_op {
    EV_OP_INPUT = 0,
    EV_OP_CONV2D,    /* params[0] weight (Cout, Cin/groups, kh, kw); no bias */
    EV_OP_BATCHNORM, /* params: weight, bias (NULL if affine off), running_mean, running_var */
    EV_OP_RELU,
    EV_OP_MAXPOOL,   /* k, stride, pad; padding never wins */
    EV_OP_AVGPOOL,   /* k, stride, pad; padded cells not counted in the divisor */
    EV_OP_ZERO,      /* zeros of the strided shape (the `none` primitive) */
    EV_OP_ADD,       /* sum of inputs[0..n) */
    EV_OP_CONCAT,    /* along channels */
    EV_OP_CROP,      /* x[:, :, crop:, crop:] */
    EV_OP_GAP,       /* global average pool: (N,C,H,W) -> (N,C,1,1) */
    EV_OP_LINEAR,    /* params: weight (out,in), bias (out); input flattened */
    EV_OP_DROP_PATH, /* training only: per-sample keep mask / keep_prob */
    EV_NUM_OPS
} ev_op;

const char *ev_op_name(ev_op op);

#define EV_NODE_MAX_INPUTS 8

typedef struct ev_shape {
    int n, c, h, w;
} ev_shape;

static inline size_t ev_shape_numel(ev_shape s)
{
    return (size_t)s.n * (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

typedef struct ev_node {
    ev_op op;
    int num_inputs;
    int inputs[EV_NODE_MAX_INPUTS]; /* node indices */
    ev_shape shape;                 /* output shape */
    /* attributes */
    int kernel, stride, pad, dilation, groups, crop;
    float drop_prob;
    ev_param *params[4];
    int param_index[4]; /* indices into ev_net.params, -1 when unused */
    /* where this node belongs, for names in messages and for backends that fuse by structure */
    int cell; /* -1 for stem and head */
    char tag[EV_PARAM_NAME_MAX];
    bool auxiliary; /* part of the auxiliary head: run only in training, never at inference */
    /* reference execution state */
    float *out;  /* forward value */
    float *grad; /* dLoss/dout, allocated when backward runs */
    float
        *saved; /* op-specific forward state (BN: mean and invstd; drop-path: mask; pool: argmax) */
} ev_node;

typedef struct ev_graph {
    ev_node *nodes;
    int num_nodes, cap_nodes;
    int input;            /* node index of the image input */
    int logits;           /* node index of the classifier logits */
    int aux_logits;       /* -1 when no auxiliary head */
    bool training;        /* mode of the last forward */
    float drop_path_prob; /* current drop-path probability (training sets it per epoch) */
    uint64_t rng_state;   /* drop-path masks */
} ev_graph;

/* ---- network: parameters + graph ------------------------------------------------------------- */

typedef struct ev_net {
    ev_net_config cfg;
    ev_param *params;
    int num_params, cap_params;
    float *param_storage; /* one block for every parameter */
    float *grad_storage;  /* one block for every trainable gradient (NULL without training) */
    ev_graph graph;
    int batch;
    ev_arena activations; /* node outputs for the reference graph */
    ev_arena gradients;   /* node gradients, allocated on the first backward */
} ev_net;

/* Builds the network for a batch size: parameters (zero weights, BN weight 1, running var 1),
 * then the graph. with_grads allocates parameter gradients. */
int ev_net_create(const ev_net_config *cfg, int batch, bool with_grads, ev_net **out,
                  ev_error *err);
void ev_net_free(ev_net *net);
ev_param *ev_net_find_param(ev_net *net, const char *name);
/* Marks (1) the nodes the classifier logits depend on, so inference backends skip the
 * auxiliary head (and any other node the logits do not need); calloc'ed mask of num_nodes
 * bytes, NULL when out of memory. */
unsigned char *ev_graph_logits_closure(const ev_graph *g);
/* Trainable parameter count (auxiliary head excluded, like the reference's count) and MACs. */
int64_t ev_net_count_params(const ev_net *net);
int64_t ev_net_count_macs(const ev_net *net);
/* Receptive field (input pixels, one side) of one unit of a node's output: how much of the
 * frame one position of the last cell sees before the global average pool. -1 on error. */
int ev_graph_receptive_field(const ev_graph *g, int node);
/* Reference (PyTorch default-like) initialisation: Kaiming-uniform conv/linear, BN gamma=1. */
void ev_net_init_weights(ev_net *net, uint64_t seed);
/* Copies the parameter values of src into dst (same config). */
int ev_net_copy_params(ev_net *dst, const ev_net *src, ev_error *err);

/* Node outputs (one buffer per graph node, the reference executor's memory), allocated on the
 * first forward so that a model compiled by the cpu or cuda backend never pays for them;
 * executors over the same graph (search/) call it before writing node outputs. */
int ev_net_alloc_activations(ev_net *net, ev_error *err);
/* Reference execution. training: batch statistics for BN (running stats updated), drop-path and
 * the auxiliary head active; in eval mode the auxiliary head is not run (its outputs keep
 * whatever the last training forward left). input: batch x in_channels x H x W. */
int ev_net_forward(ev_net *net, const float *input, bool training, ev_error *err);
const float *ev_net_logits(const ev_net *net);
/* Mean cross-entropy of the last forward against labels (plus aux_weight x auxiliary loss when
 * the head exists and training). Fills parameter gradients (accumulated: zero them first). */
int ev_net_backward(ev_net *net, const int32_t *labels, float aux_weight, float *loss,
                    ev_error *err);
void ev_net_zero_grad(ev_net *net);

/* ---- building a network graph (net_builder.c) --------------------------------------------------
 * The steps shared by the evaluation network and the search supernet (search/supernet.c). Each
 * returns a node (or parameter) index, or -1 after the first failure, which sets rc (with the
 * message prefixed by who) and makes every later step a no-op, so callers check rc once. */

typedef struct ev_builder {
    ev_net *net;
    ev_error *err;
    int rc;
    bool aux;        /* parameters being created belong to the auxiliary head */
    const char *who; /* message prefix: "network", "supernet" */
} ev_builder;

int ev_builder_fail(ev_builder *b, int code, const char *msg);
int ev_builder_param(ev_builder *b, ev_param_kind kind, int ndim, const int *shape, const char *fmt,
                     ...) EV_PRINTF(5, 6);
int ev_builder_node(ev_builder *b, ev_op op, ev_shape shape, int num_inputs, const int *inputs,
                    int cell, const char *tag);
ev_shape ev_builder_shape(const ev_builder *b, int node);
/* Conv2d without bias; parameter <name>.weight. */
int ev_builder_conv(ev_builder *b, int x, int cout, int k, int stride, int pad, int dil, int groups,
                    int cell, const char *name);
/* BatchNorm; affine adds <name>.weight and .bias before the running statistics. */
int ev_builder_batchnorm(ev_builder *b, int x, bool affine, int cell, const char *name);
int ev_builder_unary(ev_builder *b, ev_op op, int x, int cell, const char *tag);
int ev_builder_pool(ev_builder *b, ev_op op, int x, int k, int stride, int pad, int cell,
                    const char *tag);
/* ADD (equal shapes) or CONCAT (equal sizes, channels summed) of count inputs. */
int ev_builder_sum(ev_builder *b, ev_op op, const int *in, int count, int cell, const char *tag);
/* ReLUConvBN with a 1x1 conv: <prefix>.op.1 conv, <prefix>.op.2 BN. */
int ev_builder_relu_conv_bn(ev_builder *b, int x, int cout, bool affine, int cell,
                            const char *prefix);
/* FactorizedReduce on r (ReLU already applied): conv_1 on r, conv_2 on r shifted by one pixel,
 * concat, bn. */
int ev_builder_factorized_reduce(ev_builder *b, int r, int cout, bool affine, int cell,
                                 const char *prefix);
/* Depthwise k x k, pointwise 1x1, BN on r (ReLU already applied): <prefix>.op.first.. first+2;
 * one half of a SepConv or a whole DilConv. */
int ev_builder_dw_pw_bn(ev_builder *b, int r, int k, int stride, int pad, int dil, bool affine,
                        int cell, const char *prefix, int first);
/* The input node and the stem (3C 3x3 conv, affine BN); sets graph.input and aux_logits = -1. */
int ev_builder_stem(ev_builder *b, ev_shape input, int init_channels);
/* A cell's preprocess0 (FactorizedReduce after a reduction cell, else ReLUConvBN) of s0 and
 * preprocess1 of s1, both to c channels. */
void ev_builder_preprocess(ev_builder *b, int cell, int s0, int s1, int c, bool reduction_prev,
                           bool affine, int *p0, int *p1);
/* Global average pool of x and the linear classifier; sets graph.logits; returns rc. */
int ev_builder_classifier(ev_builder *b, int x, int num_classes, int batch);
/* One storage block for every parameter (16-float aligned per tensor; BN weight and running
 * variance 1, the rest 0) and, with_grads, one for the trainable gradients; links the nodes'
 * params[] to the parameters. */
int ev_net_alloc_params(ev_net *net, bool with_grads, const char *who, ev_error *err);

/* ---- reference ops: plain NCHW loops, forward and backward ---------------------------------- */
/* Shapes in ev_shape; gradient outputs are accumulated (+=) into dx/dw so that fan-out works. */

typedef struct ev_conv_desc {
    int kernel_h, kernel_w, stride, pad, dilation, groups;
} ev_conv_desc;

int ev_conv2d_out_size(int in, int kernel, int stride, int pad, int dilation);
void ev_ref_conv2d_forward(const float *x, ev_shape xs, const float *w, int cout,
                           const ev_conv_desc *d, float *y, ev_shape ys);
void ev_ref_conv2d_backward(const float *x, ev_shape xs, const float *w, int cout,
                            const ev_conv_desc *d, const float *dy, ev_shape ys, float *dx,
                            float *dw);

/* saved: 2*C floats (batch mean, inverse std) written in training mode.
 * gamma/beta may be NULL (affine off). */
void ev_ref_batchnorm_forward(const float *x, ev_shape s, const float *gamma, const float *beta,
                              float *running_mean, float *running_var, bool training,
                              float momentum, float eps, float *saved, float *y);
void ev_ref_batchnorm_backward(const float *x, ev_shape s, const float *gamma, const float *saved,
                               bool training, const float *running_var, float eps, const float *dy,
                               float *dx, float *dgamma, float *dbeta);

void ev_ref_relu_forward(const float *x, size_t n, float *y);
void ev_ref_relu_backward(const float *x, size_t n, const float *dy, float *dx);

void ev_ref_maxpool_forward(const float *x, ev_shape xs, int k, int stride, int pad, float *y,
                            ev_shape ys);
void ev_ref_maxpool_backward(const float *x, ev_shape xs, int k, int stride, int pad,
                             const float *dy, ev_shape ys, float *dx);
void ev_ref_avgpool_forward(const float *x, ev_shape xs, int k, int stride, int pad, float *y,
                            ev_shape ys);
void ev_ref_avgpool_backward(ev_shape xs, int k, int stride, int pad, const float *dy, ev_shape ys,
                             float *dx);

/* channel concat of inputs (each n x c_i x h x w) into y; backward splits dy */
void ev_ref_concat_forward(const float *const *xs, const int *channels, int count, ev_shape ys,
                           float *y);
void ev_ref_concat_backward(const float *dy, ev_shape ys, const int *channels, int count,
                            float *const *dxs);

void ev_ref_crop_forward(const float *x, ev_shape xs, int crop, float *y);
void ev_ref_crop_backward(ev_shape xs, int crop, const float *dy, float *dx);

void ev_ref_gap_forward(const float *x, ev_shape xs, float *y);
void ev_ref_gap_backward(ev_shape xs, const float *dy, float *dx);

/* y[n, out] = x[n, in] . w[out, in] + b[out] */
void ev_ref_linear_forward(const float *x, int n, int in, const float *w, const float *b, int out,
                           float *y);
void ev_ref_linear_backward(const float *x, int n, int in, const float *w, int out, const float *dy,
                            float *dx, float *dw, float *db);

/* mean over the batch of -log softmax(logits)[label]; dlogits = (softmax - onehot)/n * scale */
float ev_ref_cross_entropy_forward(const float *logits, int n, int k, const int32_t *labels);
void ev_ref_cross_entropy_backward(const float *logits, int n, int k, const int32_t *labels,
                                   float scale, float *dlogits);

/* mask: n floats, each 0 or 1/keep */
void ev_ref_drop_path_forward(const float *x, ev_shape s, const float *mask, float *y);
void ev_ref_drop_path_backward(ev_shape s, const float *mask, const float *dy, float *dx);

/* ---- random numbers: deterministic per seed ------------------------------------------------- */

uint64_t ev_rng_next(uint64_t *state); /* splitmix64 */
float ev_rng_uniform(uint64_t *state); /* [0, 1) */
float ev_rng_normal(uint64_t *state);  /* N(0, 1) */

/* ---- safetensors ----------------------------------------------------------------------------- */

#define EV_SAFETENSORS_MAX_HEADER (64u << 20)

typedef enum ev_dtype { EV_DTYPE_F32 = 0, EV_DTYPE_I64, EV_DTYPE_I32, EV_DTYPE_OTHER } ev_dtype;

typedef struct ev_st_tensor {
    char *name;
    ev_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[8];
    size_t begin, end; /* byte offsets into the data section */
} ev_st_tensor;

typedef struct ev_safetensors {
    ev_st_tensor *tensors;
    int count;
    unsigned char *data; /* data section (owned) */
    size_t data_size;
} ev_safetensors;

/* Reads and validates: header length cap, JSON, dtypes, shapes vs byte sizes, offsets inside
 * the file and not overlapping. */
int ev_safetensors_read(const char *path, ev_safetensors *out, ev_error *err);
int ev_safetensors_parse(const unsigned char *bytes, size_t size, ev_safetensors *out,
                         ev_error *err);
void ev_safetensors_free(ev_safetensors *st);
const ev_st_tensor *ev_safetensors_find(const ev_safetensors *st, const char *name);
/* The header's __metadata__ object (a jansson json_t, caller decrefs; ev_safetensors_read does
 * not keep it), reading only the header: NULL when the file is unreadable or has none. */
struct json_t *ev_safetensors_read_metadata(const char *path);

/* Writes float32 tensors (names, shapes, data) plus optional string metadata pairs. */
typedef struct ev_st_entry {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} ev_st_entry;
int ev_safetensors_write(const char *path, const ev_st_entry *entries, int count,
                         const char *const *metadata_kv, int metadata_pairs, ev_error *err);

/* Loads a network's parameters from safetensors: every parameter must be present with the
 * right shape and dtype; unknown tensors are errors except `*.num_batches_tracked` (int64) and
 * auxiliary-head tensors when the network has no auxiliary head. */
int ev_net_load_weights(ev_net *net, const ev_safetensors *st, ev_error *err);
int ev_net_save_weights(const ev_net *net, const char *path, ev_error *err);

/* ---- model bundles ------------------------------------------------------------------------- */

struct ev_model {
    char name[128];
    char dir[4096];
    char genotype_name[128];
    int num_classes;
    char **class_names;
    int input_width, input_height, input_channels;
    float scale, mean[3], std[3];
    ev_net_config cfg;
    ev_net *net; /* batch 1, weights loaded; backends read parameters from here */
    int64_t params, macs;
};

/* Parses model.yaml (path) into the model's fields (no weights); used by ev_model_load. */
int ev_model_parse_yaml(const char *path, ev_model *m, char *weights_file, size_t weights_size,
                        ev_error *err);
/* Writes a bundle: model.yaml + weights.safetensors into dir (created if missing). */
int ev_model_save_bundle(const char *dir, const char *name, const ev_net *net,
                         char *const *class_names, float scale, const float *mean, const float *std,
                         ev_error *err);

/* The 14 echo views in the paper's order. */
extern const char *const ev_echo_views[14];

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

extern const ev_backend_vtable ev_backend_reference;
/* Provided by backend_cpu.c / the cuda backend when built; NULL vtables mean "not built". */
const ev_backend_vtable *ev_backend_cpu_vtable(void);
const ev_backend_vtable *ev_backend_cuda_vtable(void);
int ev_cuda_device_count(void);

#endif
