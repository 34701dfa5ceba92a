/* test_auxiliary.c: bundles trained with the DARTS auxiliary head run on every inference
 * backend. The head (auxiliary_head.*, after cell 2L/3) is training-only: at inference the
 * output is the main classifier's logits and the head is not computed at all. For a network
 * with random weights and non-trivial BN statistics, saved as a bundle with the head and loaded
 * back, this checks:
 *   - the cpu backend (and cuda where a GPU is visible) matches the reference backend;
 *   - logits are bit-identical to the same weights in a bundle without the head, on both the
 *     reference and the cpu backend;
 *   - the cpu plan has the same steps and arena as the plan without the head (no time or memory
 *     goes to the head), and the reference executor leaves the head alone in eval mode.
 * Fixtures are made at test time in a temporary folder.
 */
#include "cpu/cpu_internal.h"
#include "ev_safetensors.h"
#include "test_util.h"

#include <stdlib.h>
#include <unistd.h>

static const char *const genotypes[][2] = {
    {"DARTS_V2",
     "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
     "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
     "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
     "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
     "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"},
    {"coverage",
     "Genotype(normal=[('sep_conv_5x5', 1), ('avg_pool_3x3', 0), ('dil_conv_5x5', 0), "
     "('skip_connect', 2), ('max_pool_3x3', 1), ('none', 3), ('dil_conv_3x3', 2), "
     "('sep_conv_3x3', 4)], normal_concat=[2, 3, 4, 5], reduce=[('avg_pool_3x3', 0), "
     "('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_5x5', 2), ('max_pool_3x3', 1), "
     "('none', 2), ('sep_conv_5x5', 3), ('skip_connect', 4)], reduce_concat=[2, 3, 4, 5])"},
};

static char *class_names[14];

/* Random weights, and BN affine parameters and running statistics away from 1 and 0 so that
 * every BN (the head's included) changes its input. */
static void randomise(ev_net *net, uint64_t seed)
{
    ev_net_init_weights(net, seed);
    uint64_t rng = seed * 7919u + 1;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            float u = ev_rng_uniform(&rng);
            switch (p->kind) {
            case EV_PARAM_BN_WEIGHT:
            case EV_PARAM_RUNNING_VAR:
                p->data[j] = 0.5f + u;
                break;
            case EV_PARAM_BN_BIAS:
            case EV_PARAM_RUNNING_MEAN:
            case EV_PARAM_BIAS:
                p->data[j] = 0.2f * (u - 0.5f);
                break;
            default:
                break;
            }
        }
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (e > d || e != e)
            d = e;
    }
    return d;
}

static int run_plan(const ev_model *m, ev_backend_kind kind, int batch, int threads,
                    const float *input, float *logits, ev_plan **keep)
{
    ev_plan_options opt = {.backend = kind, .batch = batch, .threads = threads};
    ev_plan *plan = NULL;
    ev_error err = {0};
    int rc = ev_plan_create(m, &opt, &plan, &err);
    if (!rc)
        rc = ev_plan_run(plan, input, logits, &err);
    if (rc)
        printf("#    %s plan, batch %d: %s\n", ev_backend_name(kind), batch, err.message);
    if (keep && !rc)
        *keep = plan;
    else
        ev_plan_free(plan);
    return rc;
}

static bool all_zero(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f)
            return false;
    return true;
}

/* The reference executor runs the head in training mode only. */
static void check_reference_eval_skips_head(const ev_net_config *cfg, const char *label)
{
    ev_net *net = NULL;
    ev_error err = {0};
    int rc = ev_net_create(cfg, 2, false, &net, &err);
    CHECK(rc == 0, "%s: network with the head builds (%s)", label, rc ? err.message : "ok");
    if (rc)
        return;
    randomise(net, 11);
    size_t n = 2 * (size_t)cfg->in_channels * cfg->input_height * cfg->input_width;
    float *input = malloc(n * sizeof *input);
    uint64_t rng = 5;
    for (size_t i = 0; i < n; i++)
        input[i] = ev_rng_normal(&rng);
    const ev_graph *g = &net->graph;
    size_t k = 2 * (size_t)cfg->num_classes;
    int head_nodes = 0;
    for (int i = 0; i < g->num_nodes; i++)
        head_nodes += g->nodes[i].auxiliary;
    rc = ev_net_forward(net, input, false, &err);
    CHECK(rc == 0 && g->aux_logits >= 0 && head_nodes == 10 && g->nodes[g->aux_logits].auxiliary &&
              !g->nodes[g->logits].auxiliary && all_zero(g->nodes[g->aux_logits].out, k) &&
              !all_zero(ev_net_logits(net), k),
          "%s: eval forward leaves the %d head nodes unrun (auxiliary logits untouched)", label,
          head_nodes);
    rc = ev_net_forward(net, input, true, &err);
    CHECK(rc == 0 && !all_zero(g->nodes[g->aux_logits].out, k),
          "%s: training forward computes the auxiliary logits", label);
    free(input);
    ev_net_free(net);
}

static void check_genotype(const char *name, const char *text, int layers, const char *tmp)
{
    ev_error err = {0};
    ev_net_config cfg = {0};
    int rc = ev_genotype_parse(text, &cfg.genotype, &err);
    CHECK(rc == 0, "%s: genotype parses (%s)", name, rc ? err.message : "ok");
    if (rc)
        return;
    cfg.init_channels = 8;
    cfg.num_cells = layers;
    if (layers == 4) { /* N R N R: the head after cell 2 sees 16x16 (global pool added) */
        cfg.reduction[1] = cfg.reduction[3] = true;
    } else { /* the reference rule: the head after cell 2L/3 sees the reference 8x8 */
        ev_layout_from_layers(layers, cfg.reduction);
    }
    cfg.in_channels = 1;
    cfg.num_classes = 14;
    cfg.input_height = cfg.input_width = 32;
    cfg.auxiliary = true;
    char label[96];
    snprintf(label, sizeof label, "%s, %d cells", name, layers);
    check_reference_eval_skips_head(&cfg, label);

    /* one set of weights, saved with the head (as training writes it) and without */
    char aux_dir[512], plain_dir[512], weights[600];
    snprintf(aux_dir, sizeof aux_dir, "%s/%s_%d_aux", tmp, name, layers);
    snprintf(plain_dir, sizeof plain_dir, "%s/%s_%d_plain", tmp, name, layers);
    snprintf(weights, sizeof weights, "%s/weights.safetensors", aux_dir);
    const float mean[1] = {0.2f}, std[1] = {0.3f};
    ev_net *aux_net = NULL, *plain_net = NULL;
    ev_model *aux = NULL, *plain = NULL;
    ev_safetensors st = {0};
    rc = ev_net_create(&cfg, 1, false, &aux_net, &err);
    if (!rc) {
        randomise(aux_net, 3);
        rc =
            ev_model_save_bundle(aux_dir, label, aux_net, class_names, 1.0f / 255, mean, std, &err);
    }
    cfg.auxiliary = false;
    if (!rc)
        rc = ev_net_create(&cfg, 1, false, &plain_net, &err);
    if (!rc)
        rc = ev_safetensors_read(weights, &st, &err);
    if (!rc)
        rc = ev_net_load_weights(plain_net, &st, &err);
    if (!rc)
        rc = ev_model_save_bundle(plain_dir, label, plain_net, class_names, 1.0f / 255, mean, std,
                                  &err);
    if (!rc)
        rc = ev_model_load(aux_dir, &aux, &err);
    if (!rc)
        rc = ev_model_load(plain_dir, &plain, &err);
    CHECK(rc == 0 && ev_model_network(aux)->cfg.auxiliary &&
              !ev_model_network(plain)->cfg.auxiliary &&
              ev_net_find_param(ev_model_network(aux), "auxiliary_head.classifier.weight") != NULL,
          "%s: bundles with the head (its weights kept) and without it load (%s)", label,
          rc ? err.message : "ok");
    ev_safetensors_free(&st);
    ev_net_free(aux_net);
    ev_net_free(plain_net);
    if (rc)
        goto out;

    for (int batch = 1; batch <= 3; batch += 2) {
        size_t n = (size_t)batch * 32 * 32, k = (size_t)batch * 14;
        float *input = malloc(n * sizeof *input);
        float *ref_aux = malloc(k * sizeof(float)), *ref_plain = malloc(k * sizeof(float));
        float *cpu_aux = malloc(k * sizeof(float)), *cpu_plain = malloc(k * sizeof(float));
        uint64_t rng = 100 + (uint64_t)batch;
        for (size_t i = 0; i < n; i++)
            input[i] = ev_rng_normal(&rng);
        rc = run_plan(aux, EV_BACKEND_REFERENCE, batch, 1, input, ref_aux, NULL);
        rc |= run_plan(plain, EV_BACKEND_REFERENCE, batch, 1, input, ref_plain, NULL);
        CHECK(rc == 0 && memcmp(ref_aux, ref_plain, k * sizeof(float)) == 0,
              "%s batch %d: reference logits with the head bit-identical to without", label, batch);
        for (int threads = 1; threads <= 2; threads++) {
            ev_plan *pa = NULL, *pp = NULL;
            rc = run_plan(aux, EV_BACKEND_CPU, batch, threads, input, cpu_aux, &pa);
            rc |= run_plan(plain, EV_BACKEND_CPU, batch, threads, input, cpu_plain, &pp);
            double diff = rc ? INFINITY : max_abs_diff(cpu_aux, ref_aux, k);
            double rel = rc ? INFINITY : rel_error(cpu_aux, ref_aux, k);
            CHECK(rc == 0 && rel <= 1e-5,
                  "%s batch %d threads %d: cpu with the head vs reference: max abs diff %.2e, "
                  "rel %.2e (<= 1e-5)",
                  label, batch, threads, diff, rel);
            CHECK(rc == 0 && memcmp(cpu_aux, cpu_plain, k * sizeof(float)) == 0,
                  "%s batch %d threads %d: cpu logits with the head bit-identical to without",
                  label, batch, threads);
            CHECK(rc == 0 && ev_cpu_plan_num_steps(pa) == ev_cpu_plan_num_steps(pp) &&
                      ev_cpu_plan_arena_bytes(pa) == ev_cpu_plan_arena_bytes(pp),
                  "%s batch %d threads %d: cpu plan with the head has the same %d steps and "
                  "%zu-byte arena as without (the head is not planned)",
                  label, batch, threads, pa ? ev_cpu_plan_num_steps(pa) : -1,
                  pa ? ev_cpu_plan_arena_bytes(pa) : 0);
            ev_plan_free(pa);
            ev_plan_free(pp);
        }
        if (ev_backend_available(EV_BACKEND_CUDA)) {
            float *gpu = malloc(k * sizeof(float));
            rc = run_plan(aux, EV_BACKEND_CUDA, batch, 1, input, gpu, NULL);
            double rel = rc ? INFINITY : rel_error(gpu, ref_aux, k);
            CHECK(rc == 0 && rel <= 1e-4,
                  "%s batch %d: cuda with the head vs reference: max abs diff %.2e, rel %.2e "
                  "(<= 1e-4)",
                  label, batch, rc ? INFINITY : max_abs_diff(gpu, ref_aux, k), rel);
            free(gpu);
        } else {
            printf("#    %s batch %d: no usable GPU, cuda not checked\n", label, batch);
        }
        free(input);
        free(ref_aux);
        free(ref_plain);
        free(cpu_aux);
        free(cpu_plain);
    }
out:
    ev_model_free(aux);
    ev_model_free(plain);
    const char *files[] = {"model.yaml", "weights.safetensors"};
    char path[700];
    for (int d = 0; d < 2; d++) {
        const char *dir = d ? plain_dir : aux_dir;
        for (int f = 0; f < 2; f++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[f]);
            remove(path);
        }
        rmdir(dir);
    }
}

int main(void)
{
    for (int i = 0; i < 14; i++)
        class_names[i] = (char *)ev_echo_views[i];
    char tmp[] = "/tmp/ev_test_auxiliary_XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t g = 0; g < sizeof genotypes / sizeof genotypes[0]; g++) {
        check_genotype(genotypes[g][0], genotypes[g][1], 4, tmp);
        check_genotype(genotypes[g][0], genotypes[g][1], 3, tmp);
    }
    rmdir(tmp);
    return test_finish();
}
