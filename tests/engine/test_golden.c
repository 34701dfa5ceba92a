/* test_golden.c: the engine's networks equal the reference PyTorch DARTS network on the golden
 * fixtures made by tests/fixtures/gen_golden.py: eval logits within 1e-4 relative, and one
 * training step (loss, logits, every weight gradient, BN running statistics) within 1e-3. */
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "test_util.h"
#include "golden_util.h"

#include <stdlib.h>

static void check_fixture(const char *dir)
{
    ev_error err = {0};
    ev_model *model = NULL;
    ev_safetensors io = {0};
    ev_plan *plan = NULL;
    ev_net *train = NULL;
    int rc = golden_load(dir, &model, &io);
    if (rc)
        goto out;
    size_t n_in = 0, n_logits = 0;
    const float *input = golden_tensor(&io, "input", &n_in);
    const float *want = golden_tensor(&io, "logits", &n_logits);
    int k = ev_model_num_classes(model);
    int batch = (int)(n_logits / (size_t)k);
    ev_plan_options opt = {.backend = EV_BACKEND_REFERENCE, .batch = batch};
    rc = ev_plan_create(model, &opt, &plan, &err);
    CHECK(rc == 0, "%s: plan (%s)", dir, rc ? err.message : "ok");
    if (rc)
        goto out;
    float got[64 * EV_MAX_CLASSES];
    rc = ev_plan_run(plan, input, got, &err);
    double e = rel_error(got, want, n_logits);
    CHECK(rc == 0 && e <= 1e-4, "%s: eval logits (batch %d) rel error %.2e <= 1e-4", dir, batch, e);

    /* one training step */
    size_t n_train = 0;
    const float *train_input = golden_tensor(&io, "train_input", &n_train);
    int32_t labels[64];
    size_t n_labels = golden_train_labels(&io, labels);
    rc = ev_net_create(&ev_model_network(model)->cfg, (int)n_labels, true, &train, &err);
    if (!rc)
        rc = ev_net_copy_params(train, ev_model_network(model), &err);
    CHECK(rc == 0, "%s: training net (%s)", dir, rc ? err.message : "ok");
    if (rc)
        goto out;
    ev_net_zero_grad(train);
    float loss = 0;
    rc = ev_net_forward(train, train_input, true, &err);
    if (!rc)
        rc = ev_net_backward(train, labels, 0.0f, &loss, &err);
    CHECK(rc == 0, "%s: train step (%s)", dir, rc ? err.message : "ok");
    golden_check_step(dir, &io, train, ev_net_logits(train), loss, n_labels * (size_t)k);
out:
    ev_net_free(train);
    ev_plan_free(plan);
    ev_safetensors_free(&io);
    ev_model_free(model);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    for (size_t i = 0; i < GOLDEN_FIXTURE_COUNT; i++) {
        char dir[2048];
        snprintf(dir, sizeof dir, "%s/golden/%s", root, golden_fixture_names[i]);
        check_fixture(dir);
    }
    return test_finish();
}
