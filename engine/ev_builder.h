/* ev_builder.h: the graph-building steps (net_builder.c) shared by the evaluation network
 * (network.c) and the search supernet (search/supernet.c): parameters by reference name, nodes
 * with inferred shapes, and the DARTS blocks (stem, preprocess, ReLUConvBN, FactorizedReduce,
 * separable and dilated halves, classifier). */
#ifndef EV_BUILDER_H
#define EV_BUILDER_H

#include "ev_graph.h"

/* The steps shared by the evaluation network and the search supernet (search/supernet.c). Each
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
/* Linear layer on x (flattened) with <name>.weight (out, in) and <name>.bias. */
int ev_builder_linear(ev_builder *b, int x, int out, int cell, const char *name);
/* Global average pool of x and the linear classifier; sets graph.logits; returns rc. */
int ev_builder_classifier(ev_builder *b, int x, int num_classes, int batch);
/* The same head with the linear layer's name (torchvision's ResNet calls it "fc"). */
int ev_builder_classifier_named(ev_builder *b, int x, int num_classes, const char *name);
/* Baseline networks (baselines.c): the input node, the whole torchvision network with its
 * state_dict names, graph.input and graph.logits set; returns rc. */
int ev_build_baseline(ev_builder *b, int batch);
/* Checks what is baseline-specific in a configuration (a size every layer can take, no DARTS
 * options); network.c checks the input channels, classes and size of every architecture first. */
int ev_baseline_config_check(const ev_net_config *cfg, ev_error *err);
/* One storage block for every parameter (16-float aligned per tensor; BN weight and running
 * variance 1, the rest 0) and, with_grads, one for the trainable gradients; links the nodes'
 * params[] to the parameters. */
int ev_net_alloc_params(ev_net *net, bool with_grads, const char *who, ev_error *err);

#endif
