/* test_exec.c: the fast training executor equals PyTorch (the golden fixtures' training step:
 * logits, loss, every weight gradient, BN running statistics) and equals the reference executor
 * on the same network, and its results do not depend on the thread count. */
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "ev_search.h"
#include "test_util.h"
#include "golden_util.h"

#include <stdlib.h>
#include <string.h>

static void check_fixture(const char *root, const char *name, int threads)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/golden/%s", root, name);
    ev_error err = {0};
    ev_model *model = NULL;
    ev_safetensors io = {0};
    ev_net *net = NULL;
    search_exec *ex = NULL;
    int rc = golden_load(dir, &model, &io);
    if (rc)
        goto out;
    const float *x = golden_tensor(&io, "train_input", NULL);
    int32_t labels[64];
    size_t n_labels = golden_train_labels(&io, labels);
    rc = ev_net_create(&ev_model_network(model)->cfg, (int)n_labels, true, &net, &err);
    if (!rc)
        rc = ev_net_copy_params(net, ev_model_network(model), &err);
    if (!rc)
        rc = search_exec_create(net, threads, &ex, &err);
    CHECK(rc == 0, "%s: executor (%s)", name, rc ? err.message : "ok");
    if (rc)
        goto out;
    float loss = 0;
    rc = search_exec_forward(ex, x, true, &err);
    if (!rc)
        rc = search_exec_backward(ex, labels, 0.0f, &loss, &err);
    CHECK(rc == 0, "%s: step (%s)", name, rc ? err.message : "ok");
    int k = ev_model_num_classes(model);
    char label[96];
    snprintf(label, sizeof label, "%s (%d threads)", name, threads);
    golden_check_step(label, &io, net, search_exec_logits(ex), loss, n_labels * (size_t)k);
out:
    search_exec_free(ex);
    ev_net_free(net);
    ev_safetensors_free(&io);
    ev_model_free(model);
}

/* Same network, same random batch: executor vs reference executor, and 1 vs 3 threads give
 * identical bytes. Drop-path and the auxiliary head are on. */
static void check_vs_reference(void)
{
    ev_error err = {0};
    ev_net_config cfg = {0};
    ev_genotype_parse("Genotype(normal=[('sep_conv_5x5', 0), ('avg_pool_3x3', 1), ('none', 0), "
                      "('skip_connect', 2), ('dil_conv_5x5', 3), ('max_pool_3x3', 2), "
                      "('sep_conv_3x3', 4), ('dil_conv_3x3', 1)], normal_concat=[2, 3, 4, 5], "
                      "reduce=[('skip_connect', 0), ('avg_pool_3x3', 1), ('none', 0), "
                      "('sep_conv_5x5', 1), ('skip_connect', 1), ('avg_pool_3x3', 2), "
                      "('dil_conv_5x5', 0), ('max_pool_3x3', 4)], reduce_concat=[2, 3, 4, 5])",
                      &cfg.genotype, &err);
    cfg.init_channels = 4;
    cfg.num_cells = 3;
    ev_layout_from_layers(3, cfg.reduction);
    cfg.in_channels = 1;
    cfg.num_classes = 14;
    cfg.input_height = cfg.input_width = 40;
    cfg.auxiliary = true;
    cfg.drop_path_prob = 0.2f;
    const int batch = 11;
    ev_net *ref = NULL, *a = NULL, *b = NULL;
    search_exec *ea = NULL, *eb = NULL;
    int rc = ev_net_create(&cfg, batch, true, &ref, &err);
    if (!rc)
        rc = ev_net_create(&cfg, batch, true, &a, &err);
    if (!rc)
        rc = ev_net_create(&cfg, batch, true, &b, &err);
    CHECK(rc == 0, "aux + drop-path network (%s)", rc ? err.message : "ok");
    if (rc)
        goto out;
    ev_net_init_weights(ref, 5);
    ev_net_copy_params(a, ref, &err);
    ev_net_copy_params(b, ref, &err);
    { /* another width: the error names the tensor and both shapes */
        ev_net_config wide = cfg;
        wide.init_channels = 6;
        ev_net *w = NULL;
        ev_error e2 = {0};
        if (ev_net_create(&wide, batch, true, &w, &e2) == 0) {
            int crc = ev_net_copy_params(w, ref, &e2);
            CHECK(crc == EV_ERR_INVALID && strstr(e2.message, "is [") &&
                      strstr(e2.message, "in the source, [") && strstr(e2.message, "destination"),
                  "copying into a wider network names the tensor and both shapes: %s",
                  e2.message);
            ev_net_free(w);
        }
    }
    search_exec_create(a, 1, &ea, &err);
    search_exec_create(b, 3, &eb, &err);
    float *x = malloc(sizeof(float) * batch * 40 * 40);
    int32_t labels[11];
    uint64_t rng = 9;
    for (int i = 0; i < batch * 40 * 40; i++)
        x[i] = ev_rng_normal(&rng);
    for (int i = 0; i < batch; i++)
        labels[i] = (i * 5) % 14;
    float lr = 0, la = 0, lb = 0;
    ev_net_zero_grad(ref);
    rc = ev_net_forward(ref, x, true, &err) || ev_net_backward(ref, labels, 0.4f, &lr, &err);
    rc |=
        search_exec_forward(ea, x, true, &err) || search_exec_backward(ea, labels, 0.4f, &la, &err);
    rc |=
        search_exec_forward(eb, x, true, &err) || search_exec_backward(eb, labels, 0.4f, &lb, &err);
    CHECK(rc == 0, "three training steps ran (%s)", err.message);
    CHECK(fabs(lr - la) <= 1e-5 * fabs(lr),
          "loss with aux head and drop-path: %.7f vs reference %.7f", la, lr);
    double worst = 0, fwd = rel_error(ev_net_logits(a), ev_net_logits(ref), (size_t)batch * 14);
    int identical = 1;
    for (int i = 0; i < a->num_params; i++) {
        ev_param *p = &a->params[i], *q = &ref->params[i], *r = &b->params[i];
        if (!p->grad)
            continue;
        double e = rel_error(p->grad, q->grad, p->numel);
        worst = e > worst ? e : worst;
        identical &= memcmp(p->grad, r->grad, p->numel * sizeof(float)) == 0;
    }
    CHECK(fwd <= 1e-5, "logits vs reference executor: rel error %.2e <= 1e-5", fwd);
    CHECK(worst <= 1e-4, "every gradient vs reference executor: worst rel error %.2e <= 1e-4",
          worst);
    CHECK(identical, "1 and 3 threads give bit-identical gradients");
    /* buffers shared by liveness: gradients need far less than a buffer per node, activations
     * less than every output, and the estimate given before the first forward is what was used */
    search_exec_memory m;
    search_exec_memory_use(ea, &m);
    size_t every = 0;
    for (int i = 0; i < a->graph.num_nodes; i++)
        every += ev_shape_numel(a->graph.nodes[i].shape) * sizeof(float);
    CHECK(m.gradients > 0 && m.gradients < every / 2,
          "shared gradient buffers: %zu bytes < half of one per node (%zu)", m.gradients, every);
    CHECK(m.activations > 0 && m.activations < every,
          "shared activation buffers: %zu bytes < every output (%zu)", m.activations, every);
    search_exec_memory before;
    search_exec *ec = NULL;
    ev_net *c = NULL;
    rc = ev_net_create(&cfg, batch, true, &c, &err) || search_exec_create(c, 1, &ec, &err);
    if (!rc) {
        search_exec_memory_use(ec, &before);
        CHECK(before.activations == m.activations && before.gradients == m.gradients,
              "memory estimate before the first step equals the allocation (%zu, %zu bytes)",
              before.activations, before.gradients);
        /* outputs were laid out assuming plain adds: a weighted add now would be read wrong */
        int add = -1;
        for (int i = 0; i < c->graph.num_nodes && add < 0; i++)
            if (c->graph.nodes[i].op == EV_OP_ADD)
                add = i;
        float w[EV_NODE_MAX_INPUTS] = {1, 1, 1, 1};
        double gw[EV_NODE_MAX_INPUTS];
        rc = search_exec_forward(ec, x, true, &err);
        CHECK(rc == 0 && add >= 0 &&
                  search_exec_set_weighted_add(ec, add, w, gw, &err) == EV_ERR_INVALID,
              "a weighted add set after the first forward is refused (%s)", err.message);
    }
    search_exec_free(ec);
    ev_net_free(c);
    free(x);
out:
    search_exec_free(ea);
    search_exec_free(eb);
    ev_net_free(ref);
    ev_net_free(a);
    ev_net_free(b);
}

/* A network with ops the executor has no kernels for (VGG16: convolution biases, the adaptive
 * pool, dropout) is refused by name, never trained as something else. */
static void check_refused(void)
{
    ev_net_config cfg = {.arch = EV_ARCH_VGG16,
                         .in_channels = 1,
                         .num_classes = 14,
                         .input_height = 32,
                         .input_width = 32};
    ev_net *net = NULL;
    search_exec *ex = NULL;
    ev_error err = {0};
    int rc = ev_net_create(&cfg, 2, false, &net, &err);
    CHECK(rc == 0, "vgg16 network (%s)", rc ? err.message : "ok");
    if (rc)
        return;
    CHECK_ERR(search_exec_create(net, 1, &ex, &err), err, "not supported by the training executor",
              "vgg16 is refused by the training executor");
    search_exec_free(ex);
    ev_net_free(net);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    for (size_t i = 0; i < GOLDEN_FIXTURE_COUNT; i++)
        check_fixture(root, golden_fixture_names[i], i % 2 ? 2 : 1);
    check_vs_reference();
    check_refused();
    return test_finish();
}
