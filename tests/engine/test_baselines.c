/* test_baselines.c: the paper's baseline networks (engine/baselines.c) against torchvision:
 * parameter counts, state_dict names, eval logits (<= 1e-4) and one training step's loss, logits
 * and weight gradients (<= 1e-3) on the fixtures of tests/fixtures/gen_golden_baselines.py, whose
 * weights both sides make from the same generator (below, as in the script); the model.yaml
 * `arch` key (bundle round trip, DARTS keys refused), the ONNX export (it runs; ONNX Runtime's
 * logits are compared by hand, docs/ENGINE.md), the cpu backend's logits (dense convolutions,
 * standalone BN, rectified pools, sums and head) and the configuration errors. */
#include "ev_bundle.h"
#include "ev_graph.h"
#include "ev_safetensors.h"
#include "test_util.h"
#include "golden_util.h"
#ifdef EV_HAVE_ONNX_EXPORT
#include "ev_onnx.h"
#endif

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SIZE 32
#define BATCH 2
#define TRAIN_BATCH 4
#define CLASSES 14

static char tmpdir[] = "/tmp/ev_baselines_XXXXXX";

/* ---- the fixture script's weights (golden_util.h has its generator) -------------------------- */

static void fill_param(ev_param *p)
{
    const uint64_t key = golden_fnv1a64(p->name);
    const size_t fan_in = p->ndim >= 2 ? p->numel / (size_t)p->shape[0] : 1;
    for (size_t i = 0; i < p->numel; i++) {
        const double u = golden_uniform(key, i);
        double v;
        switch (p->kind) {
        case EV_PARAM_WEIGHT:
            v = (2 * u - 1) *
                (p->ndim == 4 ? sqrt(6.0 / (double)fan_in) : 1.0 / sqrt((double)fan_in));
            break;
        case EV_PARAM_BIAS:
            v = (2 * u - 1) * 0.1;
            break;
        case EV_PARAM_BN_WEIGHT:
        case EV_PARAM_RUNNING_VAR:
            v = 0.5 + u;
            break;
        default: /* BN bias, running mean */
            v = (2 * u - 1) * 0.2;
            break;
        }
        p->data[i] = (float)v;
    }
}

static ev_net_config config(ev_arch arch, int channels, int classes, int size)
{
    ev_net_config cfg = {0};
    cfg.arch = arch;
    cfg.in_channels = channels;
    cfg.num_classes = classes;
    cfg.input_width = cfg.input_height = size;
    return cfg;
}

/* ---- parameter counts and configuration errors ---------------------------------------------- */

static void check_counts(void)
{
    static const struct {
        ev_arch arch;
        int channels, classes;
        long long params;
    } want[] = {
        /* torchvision's numbers: the paper's 11,177 k; 1-channel 14-class DenseNet201 is
         * 18,113,550, while the paper's 20,013 k is the 3-channel 1000-class ImageNet model:
         * 18,119,822 (3 channels) + 986 x 1,921 (classifier rows) = 20,013,928 */
        {EV_ARCH_RESNET18, 1, 14, 11177422},
        {EV_ARCH_RESNET18, 3, 14, 11183694},
        {EV_ARCH_DENSENET201, 1, 14, 18113550},
        {EV_ARCH_DENSENET201, 3, 14, 18119822},
        /* the paper's 134,316 k; BN adds 2 x 4,224 channels */
        {EV_ARCH_VGG16, 1, 14, 134316750},
        {EV_ARCH_VGG16, 3, 14, 134317902},
        {EV_ARCH_VGG16_BN, 1, 14, 134325198},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ev_net_config cfg = config(want[i].arch, want[i].channels, want[i].classes, 64);
        ev_net *net = NULL;
        ev_error err = {0};
        int rc = ev_net_create(&cfg, 1, false, &net, &err);
        long long got = rc ? -1 : (long long)ev_net_count_params(net);
        CHECK(got == want[i].params, "%s %d-channel %d-class: %lld parameters (torchvision %lld)",
              ev_arch_name(want[i].arch), want[i].channels, want[i].classes, got, want[i].params);
        ev_net_free(net);
    }
}

static void check_config_errors(void)
{
    ev_error err = {0};
    ev_net *net = NULL;
    ev_net_config cfg = config(EV_ARCH_DENSENET201, 1, 14, 16);
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "use at least 32x32",
              "densenet201 at 16 px is refused");
    cfg = config(EV_ARCH_VGG16_BN, 1, 14, 31);
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "need at least 32x32",
              "vgg16_bn at 31 px is refused");
    cfg = config(EV_ARCH_RESNET18, 0, 14, 32);
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "0 input channels",
              "resnet18 with 0 input channels is refused");
    cfg = config(EV_ARCH_RESNET18, 1, 14, 32);
    cfg.auxiliary = true;
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "no auxiliary head",
              "resnet18 with an auxiliary head is refused");
    cfg = config(EV_ARCH_RESNET18, 1, 14, 5000);
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "out of range 1..4096",
              "resnet18 at 5000 px is refused");
    ev_arch a;
    CHECK(ev_arch_from_name("densenet201", &a) && a == EV_ARCH_DENSENET201 &&
              !ev_arch_from_name("vgg19", &a) && !strcmp(ev_arch_name(EV_ARCH_DARTS), "darts"),
          "arch names");
}

/* ---- golden fixtures ------------------------------------------------------------------------- */

static void check_names(const char *arch, const char *io_path, const ev_net *net)
{
    json_t *meta = ev_safetensors_read_metadata(io_path);
    const char *names = meta ? json_string_value(json_object_get(meta, "names")) : NULL;
    int i = 0, bad = 0;
    for (const char *s = names; s && *s && i <= net->num_params; i++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (i >= net->num_params || strlen(net->params[i].name) != len ||
            strncmp(net->params[i].name, s, len)) {
            if (bad++ < 3)
                printf("  name %d: torchvision %.*s, engine %s\n", i, (int)len, s,
                       i < net->num_params ? net->params[i].name : "(none)");
        }
        s = e ? e + 1 : s + len;
    }
    CHECK(names && !bad && i == net->num_params,
          "%s: the %d tensors are named and ordered as torchvision's state_dict", arch, i);
    json_decref(meta);
}

/* One gradient step: batch-statistic BN when the fixture says so (ResNet18), the running
 * statistics otherwise (DenseNet201; the script says why). */
static void check_step(const char *arch, const char *io_path, const ev_safetensors *io, ev_net *src)
{
    json_t *meta = ev_safetensors_read_metadata(io_path);
    const char *bn = meta ? json_string_value(json_object_get(meta, "bn")) : NULL;
    const bool batch_stats = bn && !strcmp(bn, "batch");
    CHECK(bn && (batch_stats || !strcmp(bn, "running")), "%s: gradient step with %s BN statistics",
          arch, bn ? bn : "(missing)");
    json_decref(meta);
    ev_error err = {0};
    ev_net *net = NULL;
    int rc = ev_net_create(&src->cfg, TRAIN_BATCH, true, &net, &err);
    if (!rc)
        rc = ev_net_copy_params(net, src, &err);
    /* VGG's dropout off, as in the fixture's step (a random mask cannot be matched); it is
     * checked on its own in check_dropout */
    for (int i = 0; !rc && i < net->graph.num_nodes; i++)
        if (net->graph.nodes[i].op == EV_OP_DROPOUT)
            net->graph.nodes[i].drop_prob = 0.0f;
    const float *x = golden_tensor(io, "train_input", NULL);
    const float *lf = golden_tensor(io, "train_labels", NULL);
    int32_t labels[TRAIN_BATCH] = {0};
    for (int i = 0; i < TRAIN_BATCH && lf; i++)
        labels[i] = (int32_t)lf[i];
    float loss = 0;
    if (!rc) {
        ev_net_zero_grad(net);
        rc = ev_net_forward(net, x, batch_stats, &err);
    }
    if (!rc)
        rc = ev_net_backward(net, labels, 0.0f, &loss, &err);
    CHECK(rc == 0, "%s: a training step runs (%s)", arch, rc ? err.message : "ok");
    if (rc) {
        ev_net_free(net);
        return;
    }
    double e = rel_error(ev_net_logits(net), golden_tensor(io, "train_logits", NULL),
                         TRAIN_BATCH * CLASSES);
    const float *want_loss = golden_tensor(io, "train_loss", NULL);
    CHECK(e <= 1e-4 && fabs(loss - want_loss[0]) <= 1e-4 * fabs(want_loss[0]),
          "%s: step logits rel error %.2e <= 1e-4, loss %.7f vs %.7f", arch, e, loss, want_loss[0]);
    golden_grads gr = golden_compare_grads(io, net, true);
    CHECK(gr.bad == 0 && gr.full > 0 && gr.projected > 0,
          "%s: %d gradients in full, %d projected, worst rel error %.2e (%s) <= 1e-3", arch,
          gr.full, gr.projected, gr.worst, gr.worst_name);
    ev_net_free(net);
}

/* The ONNX exporter writes the model (float32 weights with BN folded into the convolutions:
 * nearly 4 bytes a parameter); the file is removed again (VGG's is half a gigabyte). */
static void check_onnx_export(const char *name, const ev_model *model)
{
#ifdef EV_HAVE_ONNX_EXPORT
    char path[512];
    ev_error err = {0};
    snprintf(path, sizeof path, "%s/%s.onnx", tmpdir, name);
    int rc = ev_model_export_onnx(model, path, &err);
    FILE *f = rc ? NULL : fopen(path, "rb");
    long size = 0;
    if (f && fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (f)
        fclose(f);
    CHECK(rc == 0 && size > 3 * ev_model_num_params(model), "%s: ONNX export, %ld bytes (%s)",
          name, size, rc ? err.message : "ok");
    unlink(path);
#else
    (void)name;
    (void)model;
#endif
}

static void check_fixture(const char *root, ev_arch arch)
{
    const char *name = ev_arch_name(arch);
    char path[4200];
    snprintf(path, sizeof path, "%s/baselines/%s/io.safetensors", root, name);
    ev_error err = {0};
    ev_safetensors io = {0};
    ev_net *net = NULL;
    ev_model *model = NULL, *loaded = NULL;
    ev_plan *plan = NULL, *plan2 = NULL;
    int rc = ev_safetensors_read(path, &io, &err);
    CHECK(rc == 0, "%s: read %s (%s)", name, path, rc ? err.message : "ok");
    if (rc)
        return;
    ev_net_config cfg = config(arch, 1, CLASSES, SIZE);
    rc = ev_net_create(&cfg, 1, false, &net, &err);
    CHECK(rc == 0, "%s: network (%s)", name, rc ? err.message : "ok");
    if (rc)
        goto out;
    for (int i = 0; i < net->num_params; i++)
        fill_param(&net->params[i]);
    check_names(name, path, net);
    check_step(name, path, &io, net);
    /* VGG (134 M parameters): no bundle round trip (a 537 MB file; the arch key round-trips
     * with the others), and AUTO runs it on the reference backend (the cpu backend does not
     * compile its adaptive pool and classifier) */
    const bool vgg = arch == EV_ARCH_VGG16 || arch == EV_ARCH_VGG16_BN;
    const ev_backend_kind auto_kind = vgg ? EV_BACKEND_REFERENCE : EV_BACKEND_CPU;

    /* eval logits through a model and a plan: the reference backend, then the cpu backend
     * (AUTO picks it for a baseline) at 1 and 2 threads */
    rc = ev_model_from_net(net, NULL, &model, &err);
    net = NULL;
    ev_plan_options opt = {.backend = EV_BACKEND_REFERENCE, .batch = BATCH};
    if (!rc)
        rc = ev_plan_create(model, &opt, &plan, &err);
    float got[BATCH * CLASSES], again[BATCH * CLASSES];
    const float *input = golden_tensor(&io, "input", NULL);
    const float *want = golden_tensor(&io, "logits", NULL);
    if (!rc)
        rc = ev_plan_run(plan, input, got, &err);
    double e = rc ? INFINITY : rel_error(got, want, BATCH * CLASSES);
    CHECK(rc == 0 && e <= 1e-4 && ev_plan_backend(plan) == EV_BACKEND_REFERENCE,
          "%s: reference eval logits rel error %.2e <= 1e-4 (%s)", name, e, rc ? err.message : "ok");
    if (rc)
        goto out;
    for (int threads = 1; threads <= 2; threads++) {
        ev_plan_options co = {.backend = EV_BACKEND_AUTO, .batch = BATCH, .threads = threads};
        ev_plan *cpu = NULL;
        float cg[BATCH * CLASSES];
        int crc = ev_plan_create(model, &co, &cpu, &err);
        if (!crc)
            crc = ev_plan_run(cpu, input, cg, &err);
        double ce = crc ? INFINITY : rel_error(cg, want, BATCH * CLASSES);
        CHECK(crc == 0 && ce <= 1e-4 && ev_plan_backend(cpu) == auto_kind,
              "%s: %s backend (AUTO), %d thread(s), eval logits rel error %.2e <= 1e-4 (%s)", name,
              ev_backend_name(auto_kind), threads, ce, crc ? err.message : "ok");
        ev_plan_free(cpu);
        if (vgg)
            break;
    }
    if (vgg) {
        check_onnx_export(name, model);
        goto out;
    }

    /* bundle round trip: model.yaml says `arch:`, the weights go by torchvision's names */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    const float mean = 0.5f, std = 0.25f;
    rc = ev_model_save_bundle(dir, name, ev_model_network(model), NULL, 1.0f / 255, &mean, &std,
                              &err);
    if (!rc)
        rc = ev_model_load(dir, &loaded, &err);
    opt.backend = EV_BACKEND_REFERENCE;
    if (!rc)
        rc = ev_plan_create(loaded, &opt, &plan2, &err);
    if (!rc)
        rc = ev_plan_run(plan2, input, again, &err);
    CHECK(rc == 0 && !memcmp(got, again, sizeof got) &&
              ev_model_num_params(loaded) == ev_model_num_params(model),
          "%s: bundle round trip (arch in model.yaml, same logits) (%s)", name,
          rc ? err.message : "ok");
    if (!rc)
        check_onnx_export(name, loaded); /* DenseNet's BN of a concatenation: Mul and Add */
out:
    ev_plan_free(plan);
    ev_plan_free(plan2);
    ev_model_free(model);
    ev_model_free(loaded);
    ev_net_free(net);
    ev_safetensors_free(&io);
}

/* Dropout (VGG's classifier, training only): in training about half the features are zeroed and
 * the rest doubled, the gradient follows the same mask; in eval it is the identity. */
static void check_dropout(void)
{
    ev_net_config cfg = config(EV_ARCH_VGG16, 1, CLASSES, 32);
    ev_net *net = NULL;
    ev_error err = {0};
    int rc = ev_net_create(&cfg, 2, true, &net, &err);
    CHECK(rc == 0, "vgg16 for the dropout check (%s)", rc ? err.message : "ok");
    if (rc)
        return;
    ev_net_init_weights(net, 7);
    float input[2 * 32 * 32];
    uint64_t rng = 3;
    for (size_t i = 0; i < sizeof input / sizeof input[0]; i++)
        input[i] = 2 * ev_rng_uniform(&rng) - 1;
    int drops = 0, zeroed = 0, doubled = 0, other = 0, grads_follow = 1, eval_identity = 1;
    size_t total = 0;
    rc = ev_net_forward(net, input, true, &err);
    int32_t labels[2] = {1, 5};
    float loss;
    if (!rc) {
        ev_net_zero_grad(net);
        rc = ev_net_backward(net, labels, 0.0f, &loss, &err);
    }
    for (int i = 0; !rc && i < net->graph.num_nodes; i++) {
        const ev_node *n = &net->graph.nodes[i];
        if (n->op != EV_OP_DROPOUT)
            continue;
        const ev_node *x = &net->graph.nodes[n->inputs[0]];
        drops++;
        for (size_t j = 0; j < ev_shape_numel(n->shape); j++, total++) {
            if (x->out[j] == 0.0f)
                continue; /* ReLU's zeros say nothing */
            if (n->out[j] == 0.0f)
                zeroed++;
            else if (n->out[j] == 2.0f * x->out[j])
                doubled++;
            else
                other++;
            if (x->grad[j] != n->grad[j] * n->saved[j])
                grads_follow = 0;
        }
    }
    const int seen = zeroed + doubled;
    CHECK(rc == 0 && drops == 2 && other == 0 && seen > 1000 && zeroed > seen * 4 / 10 &&
              zeroed < seen * 6 / 10 && grads_follow,
          "vgg16 dropout in training: %d nodes, %d zeroed, %d doubled, %d other of %zu; the "
          "gradient follows the mask (%s)",
          drops, zeroed, doubled, other, total, rc ? err.message : "ok");
    if (!rc)
        rc = ev_net_forward(net, input, false, &err);
    for (int i = 0; !rc && i < net->graph.num_nodes; i++) {
        const ev_node *n = &net->graph.nodes[i];
        if (n->op == EV_OP_DROPOUT &&
            memcmp(n->out, net->graph.nodes[n->inputs[0]].out, ev_shape_numel(n->shape) * 4))
            eval_identity = 0;
    }
    CHECK(rc == 0 && eval_identity, "vgg16 dropout is the identity in eval");
    ev_net_free(net);
}

/* ---- model.yaml ------------------------------------------------------------------------------ */

static void write_yaml(const char *path, const char *network)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f,
            "name: t\ninput: {width: 32, height: 32, channels: 1}\n"
            "preprocess: {scale: 0.00392156863, mean: [0.5], std: [0.25]}\n"
            "network: %s\n",
            network);
    fclose(f);
}

static void check_yaml_errors(void)
{
    char path[300];
    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    ev_error err = {0};
    ev_model *m = NULL;
    write_yaml(path, "{arch: resnet18, init_channels: 8}");
    CHECK_ERR(ev_model_load(path, &m, &err), err, "init_channels is a DARTS setting",
              "arch resnet18 with init_channels is refused");
    write_yaml(path, "{arch: vgg19}");
    CHECK_ERR(ev_model_load(path, &m, &err), err, "arch 'vgg19' is not",
              "an unknown arch is refused");
    write_yaml(path, "{arch: densenet201, genotype: DARTS_V2}");
    CHECK_ERR(ev_model_load(path, &m, &err), err, "genotype is a DARTS setting",
              "arch densenet201 with a genotype is refused");
    ev_model_free(m);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    check_counts();
    check_config_errors();
    check_yaml_errors();
    check_fixture(root, EV_ARCH_RESNET18);
    check_fixture(root, EV_ARCH_DENSENET201);
    check_fixture(root, EV_ARCH_VGG16);
    check_fixture(root, EV_ARCH_VGG16_BN);
    check_dropout();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("  cleanup failed\n");
    return test_finish();
}
