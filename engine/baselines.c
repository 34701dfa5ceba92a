/* baselines.c: the paper's comparison networks at torchvision's definition (torchvision.models
 * resnet18, densenet201, vgg16 and vgg16_bn), with any input channels and classes, built on the
 * engine's graph
 * from the shared steps (net_builder.c) and named exactly like torchvision's state_dict, so
 * torchvision weights load as DARTS ones do. Only existing graph ops are used: convolutions of
 * any size and stride, batch norm, ReLU, max and average pools, sums, channel concatenation,
 * global average pooling and the linear classifier; VGG adds its convolutions' biases, the
 * adaptive average pool to 7x7 and dropout (training only). A dense block concatenates its features one
 * layer at a time (concat of the previous concatenation and the new layer's output), which is
 * torchvision's torch.cat of every earlier feature in the same channel order. */
#include "ev_builder.h"
#include "ops_ref.h"

#include <stdio.h>
#include <string.h>

static const char *const arch_names[EV_NUM_ARCHS] = {"darts", "resnet18", "densenet201", "vgg16",
                                                     "vgg16_bn"};

const char *ev_arch_name(ev_arch arch)
{
    return (unsigned)arch < EV_NUM_ARCHS ? arch_names[arch] : "?";
}

bool ev_arch_from_name(const char *name, ev_arch *out)
{
    for (int i = 0; i < EV_NUM_ARCHS; i++)
        if (strcmp(name, arch_names[i]) == 0) {
            *out = (ev_arch)i;
            return true;
        }
    return false;
}

/* ---- configuration checks ----------------------------------------------------------------- */

/* The size after the 7x7 stride-2 stem conv (pad 3) and the 3x3 stride-2 max pool (pad 1) that
 * both networks start with. */
static int stem_size(int in)
{
    return ev_conv2d_out_size(ev_conv2d_out_size(in, 7, 2, 3, 1), 3, 2, 1, 1);
}

int ev_baseline_config_check(const ev_net_config *cfg, ev_error *err)
{
    const char *arch = ev_arch_name(cfg->arch);
    if (cfg->arch <= EV_ARCH_DARTS || cfg->arch >= EV_NUM_ARCHS)
        return ev_fail(err, EV_ERR_INVALID, "network: arch %d is not a baseline", (int)cfg->arch);
    if (cfg->auxiliary || cfg->drop_path_prob != 0.0f)
        return ev_fail(err, EV_ERR_INVALID,
                       "network: %s has no auxiliary head and no drop-path (DARTS only)", arch);
    if (cfg->arch == EV_ARCH_VGG16 || cfg->arch == EV_ARCH_VGG16_BN) {
        /* five 2x2 stride-2 max pools: each needs at least 2x2 (PyTorch refuses less) */
        if (cfg->input_height < 32 || cfg->input_width < 32)
            return ev_fail(err, EV_ERR_INVALID,
                           "network: %s input %dx%d is too small: its five 2x2 max pools need at "
                           "least 32x32",
                           arch, cfg->input_width, cfg->input_height);
    }
    if (cfg->arch == EV_ARCH_DENSENET201) {
        /* Three transitions average-pool 2x2 with stride 2; PyTorch refuses a map smaller than
         * the window, so each needs at least 2x2: 32x32 is the smallest input. */
        int h = stem_size(cfg->input_height), w = stem_size(cfg->input_width);
        for (int t = 1; t <= 3; t++) {
            if (h < 2 || w < 2)
                return ev_fail(err, EV_ERR_INVALID,
                               "network: densenet201 input %dx%d is too small: transition %d "
                               "sees %dx%d and its 2x2 average pool needs at least 2x2; use at "
                               "least 32x32",
                               cfg->input_width, cfg->input_height, t, w, h);
            h /= 2;
            w /= 2;
        }
    }
    return EV_OK;
}

/* ---- ResNet18: torchvision.models.resnet18 -------------------------------------------------- */

/* conv 3x3 / 1x1 named <prefix>.<conv>, then BN <prefix>.<bn> */
static int conv_bn(ev_builder *b, int x, int cout, int k, int stride, int pad, const char *prefix,
                   const char *conv, const char *bn)
{
    char name[2 * EV_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", conv);
    int c = ev_builder_conv(b, x, cout, k, stride, pad, 1, 1, -1, name);
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", bn);
    return ev_builder_batchnorm(b, c, true, -1, name);
}

/* BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + identity), where identity is x or, when
 * the block changes stride or width, downsample.0 (1x1 conv) and downsample.1 (BN) of x.
 * Parameters in torchvision's order: conv1, bn1, conv2, bn2, downsample. */
static int basic_block(ev_builder *b, int x, int planes, int stride, const char *prefix)
{
    int y = conv_bn(b, x, planes, 3, stride, 1, prefix, "conv1", "bn1");
    y = ev_builder_unary(b, EV_OP_RELU, y, -1, prefix);
    y = conv_bn(b, y, planes, 3, 1, 1, prefix, "conv2", "bn2");
    int identity = x;
    if (stride != 1 || ev_builder_shape(b, x).c != planes)
        identity = conv_bn(b, x, planes, 1, stride, 0, prefix, "downsample.0", "downsample.1");
    int in[2] = {y, identity};
    int sum = ev_builder_sum(b, EV_OP_ADD, in, 2, -1, prefix);
    return ev_builder_unary(b, EV_OP_RELU, sum, -1, prefix);
}

static int build_resnet18(ev_builder *b, int x)
{
    x = conv_bn(b, x, 64, 7, 2, 3, "", "conv1", "bn1");
    x = ev_builder_unary(b, EV_OP_RELU, x, -1, "relu");
    x = ev_builder_pool(b, EV_OP_MAXPOOL, x, 3, 2, 1, -1, "maxpool");
    static const int planes[4] = {64, 128, 256, 512};
    char prefix[EV_PARAM_NAME_MAX];
    for (int layer = 0; layer < 4; layer++)
        for (int block = 0; block < 2; block++) {
            snprintf(prefix, sizeof prefix, "layer%d.%d", layer + 1, block);
            x = basic_block(b, x, planes[layer], layer > 0 && block == 0 ? 2 : 1, prefix);
        }
    return ev_builder_classifier_named(b, x, b->net->cfg.num_classes, "fc");
}

/* ---- DenseNet201: torchvision.models.densenet201 --------------------------------------------- */

#define DENSE_GROWTH 32
#define DENSE_BN_SIZE 4

/* norm, relu, conv named <prefix>.<norm> and <prefix>.<conv> */
static int norm_relu_conv(ev_builder *b, int x, int cout, int k, int pad, const char *prefix,
                          const char *norm, const char *conv)
{
    char name[2 * EV_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.%s", prefix, norm);
    int y = ev_builder_batchnorm(b, x, true, -1, name);
    y = ev_builder_unary(b, EV_OP_RELU, y, -1, name);
    snprintf(name, sizeof name, "%s.%s", prefix, conv);
    return ev_builder_conv(b, y, cout, k, 1, pad, 1, 1, -1, name);
}

static int build_densenet201(ev_builder *b, int x)
{
    static const int block_config[4] = {6, 12, 48, 32};
    char prefix[EV_PARAM_NAME_MAX];
    x = ev_builder_conv(b, x, 64, 7, 2, 3, 1, 1, -1, "features.conv0");
    x = ev_builder_batchnorm(b, x, true, -1, "features.norm0");
    x = ev_builder_unary(b, EV_OP_RELU, x, -1, "features.relu0");
    x = ev_builder_pool(b, EV_OP_MAXPOOL, x, 3, 2, 1, -1, "features.pool0");
    for (int block = 0; block < 4; block++) {
        for (int layer = 0; layer < block_config[block]; layer++) {
            snprintf(prefix, sizeof prefix, "features.denseblock%d.denselayer%d", block + 1,
                     layer + 1);
            int y =
                norm_relu_conv(b, x, DENSE_BN_SIZE * DENSE_GROWTH, 1, 0, prefix, "norm1", "conv1");
            y = norm_relu_conv(b, y, DENSE_GROWTH, 3, 1, prefix, "norm2", "conv2");
            int in[2] = {x, y};
            x = ev_builder_sum(b, EV_OP_CONCAT, in, 2, -1, prefix);
        }
        if (block == 3)
            break;
        snprintf(prefix, sizeof prefix, "features.transition%d", block + 1);
        x = norm_relu_conv(b, x, ev_builder_shape(b, x).c / 2, 1, 0, prefix, "norm", "conv");
        x = ev_builder_pool(b, EV_OP_AVGPOOL, x, 2, 2, 0, -1, prefix);
    }
    x = ev_builder_batchnorm(b, x, true, -1, "features.norm5");
    x = ev_builder_unary(b, EV_OP_RELU, x, -1, "features.norm5");
    return ev_builder_classifier_named(b, x, b->net->cfg.num_classes, "classifier");
}

/* ---- VGG16 / VGG16_bn: torchvision.models.vgg16 and vgg16_bn ----------------------------- */

#define VGG_POOL 0
#define VGG_POOLED 7     /* AdaptiveAvgPool2d((7, 7)) */
#define VGG_HIDDEN 4096  /* the classifier's two hidden layers */
#define VGG_DROPOUT 0.5f /* torchvision's default */

/* Conv2d(3x3, padding 1) with its bias: <name>.weight, <name>.bias */
static int conv3x3_bias(ev_builder *b, int x, int cout, const char *name)
{
    int c = ev_builder_conv(b, x, cout, 3, 1, 1, 1, 1, -1, name);
    int pb = ev_builder_param(b, EV_PARAM_BIAS, 1, &cout, "%s.bias", name);
    if (c < 0 || pb < 0)
        return -1;
    b->net->graph.nodes[c].param_index[1] = pb;
    return c;
}

static int dropout(ev_builder *b, int x, const char *tag)
{
    int d = ev_builder_unary(b, EV_OP_DROPOUT, x, -1, tag);
    if (d >= 0)
        b->net->graph.nodes[d].drop_prob = VGG_DROPOUT;
    return d;
}

/* features.<i> counts torchvision's modules: conv, [BN,] ReLU per layer, MaxPool per 'M' */
static int build_vgg16(ev_builder *b, int x, bool bn)
{
    static const int cfg_d[] = {64,  64,       VGG_POOL, 128,      128, VGG_POOL,
                                256, 256,      256,      VGG_POOL, 512, 512,
                                512, VGG_POOL, 512,      512,      512, VGG_POOL};
    char name[EV_PARAM_NAME_MAX];
    int index = 0;
    for (size_t i = 0; i < sizeof cfg_d / sizeof cfg_d[0]; i++) {
        if (cfg_d[i] == VGG_POOL) {
            snprintf(name, sizeof name, "features.%d", index++);
            x = ev_builder_pool(b, EV_OP_MAXPOOL, x, 2, 2, 0, -1, name);
            continue;
        }
        snprintf(name, sizeof name, "features.%d", index++);
        x = conv3x3_bias(b, x, cfg_d[i], name);
        if (bn) {
            snprintf(name, sizeof name, "features.%d", index++);
            x = ev_builder_batchnorm(b, x, true, -1, name);
        }
        snprintf(name, sizeof name, "features.%d", index++);
        x = ev_builder_unary(b, EV_OP_RELU, x, -1, name);
    }
    ev_shape s = ev_builder_shape(b, x);
    s.h = s.w = VGG_POOLED;
    x = ev_builder_node(b, EV_OP_ADAPTIVE_AVGPOOL, s, 1, &x, -1, "avgpool");
    x = ev_builder_linear(b, x, VGG_HIDDEN, -1, "classifier.0");
    x = ev_builder_unary(b, EV_OP_RELU, x, -1, "classifier.1");
    x = dropout(b, x, "classifier.2");
    x = ev_builder_linear(b, x, VGG_HIDDEN, -1, "classifier.3");
    x = ev_builder_unary(b, EV_OP_RELU, x, -1, "classifier.4");
    x = dropout(b, x, "classifier.5");
    b->net->graph.logits = ev_builder_linear(b, x, b->net->cfg.num_classes, -1, "classifier.6");
    return b->rc;
}

int ev_build_baseline(ev_builder *b, int batch)
{
    const ev_net_config *cfg = &b->net->cfg;
    ev_graph *g = &b->net->graph;
    ev_shape in = {batch, cfg->in_channels, cfg->input_height, cfg->input_width};
    g->aux_logits = -1;
    g->input = ev_builder_node(b, EV_OP_INPUT, in, 0, NULL, -1, "input");
    switch (cfg->arch) {
    case EV_ARCH_RESNET18:
        return build_resnet18(b, g->input);
    case EV_ARCH_DENSENET201:
        return build_densenet201(b, g->input);
    case EV_ARCH_VGG16:
    case EV_ARCH_VGG16_BN:
        return build_vgg16(b, g->input, cfg->arch == EV_ARCH_VGG16_BN);
    default:
        ev_builder_fail(b, EV_ERR_INVALID, "not a baseline arch");
        return b->rc;
    }
}
