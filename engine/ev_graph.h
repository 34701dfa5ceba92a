/* ev_graph.h: the network the engine builds from a configuration (network.c): named parameters
 * that map 1:1 to the reference PyTorch state_dict, the compute graph of nodes over them, and the
 * reference executor that runs it forward and backward in plain NCHW.
 *
 * This is the internal graph header that executors outside the engine build on: search/'s
 * training executor (exec.c) runs the same nodes, shapes and parameters with its own kernels, the
 * supernet (search/supernet.c, with ev_builder.h) adds its mixed edges to one, and the tools read
 * a loaded model's graph through ev_model_network() (ev_bundle.h). The model and plan structs
 * stay private to the engine (ev_private.h). Not installed.
 */
#ifndef EV_GRAPH_H
#define EV_GRAPH_H

#include "ev_base.h"
#include "ev_genotype.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- network description ----------------------------------------------------------------------- */

#define EV_MAX_CELLS 64

/* Which network the configuration builds: the DARTS evaluation network (genotype, cells) or one
 * of the paper's baselines at torchvision's definition (baselines.c), which use only the input,
 * class and size fields. EV_ARCH_DARTS is 0, so a zeroed configuration is a DARTS one. */
typedef enum ev_arch {
    EV_ARCH_DARTS = 0,
    EV_ARCH_RESNET18,
    EV_ARCH_DENSENET201,
    EV_ARCH_VGG16,
    EV_ARCH_VGG16_BN,
    EV_NUM_ARCHS
} ev_arch;

/* "darts", "resnet18", "densenet201", "vgg16", "vgg16_bn" (the model.yaml
 * `network: {arch: ...}` names). */
const char *ev_arch_name(ev_arch arch);
/* The arch of that name; false when there is none. */
bool ev_arch_from_name(const char *name, ev_arch *out);

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
    ev_arch arch;         /* EV_ARCH_DARTS unless a baseline */
} ev_net_config;

/* The reference layout rule for `layers: L`: reduction cells at L/3 and 2L/3. */
void ev_layout_from_layers(int layers, bool *reduction);

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
    EV_OP_CONV2D,    /* params[0] weight (Cout, Cin/groups, kh, kw); params[1] bias or NULL */
    EV_OP_BATCHNORM, /* params: weight, bias (NULL if affine off), running_mean, running_var */
    EV_OP_RELU,
    EV_OP_MAXPOOL,          /* k, stride, pad; padding never wins */
    EV_OP_AVGPOOL,          /* k, stride, pad; padded cells not counted in the divisor */
    EV_OP_ZERO,             /* zeros of the strided shape (the `none` primitive) */
    EV_OP_ADD,              /* sum of inputs[0..n) */
    EV_OP_CONCAT,           /* along channels */
    EV_OP_CROP,             /* x[:, :, crop:, crop:] */
    EV_OP_GAP,              /* global average pool: (N,C,H,W) -> (N,C,1,1) */
    EV_OP_LINEAR,           /* params: weight (out,in), bias (out); input flattened */
    EV_OP_DROP_PATH,        /* training only: per-sample keep mask / keep_prob */
    EV_OP_ADAPTIVE_AVGPOOL, /* PyTorch's AdaptiveAvgPool2d to the node's height and width */
    EV_OP_DROPOUT,          /* training only: per-element keep mask / (1 - drop_prob) */
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
/* The parameter of that reference name, NULL when there is none. */
ev_param *ev_net_find_param(const ev_net *net, const char *name);
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

#endif
