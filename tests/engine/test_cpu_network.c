/* test_cpu_network.c: the whole network on the cpu backend equals the reference backend within
 * 1e-4 relative: every genotype (the published ones, the echo paper's 128 px cell, one that uses
 * every primitive, and the yaml files in models/genotypes), at 32/64/96 px, layouts [N R N R] and [N R],
 * init channels 16 and 36, random weights and random BN statistics, batch 1 and 3, threads 1
 * and 2, gray and RGB input; and on every golden fixture (tests/fixtures/golden/<name>): logits
 * within 1e-4 of PyTorch's.
 * Usage: test_cpu_network [fixtures_dir] [genotypes_dir] [--quick]
 */
#include "cpu/cpu_internal.h"
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "test_util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static const char *const builtin_names[] = {"DARTS_V1", "DARTS_V2", "PAPER128", "ALL_OPS"};
static const char *const builtin_genotypes[] = {
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])",
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])",
    "Genotype(normal=[('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('dil_conv_5x5', 1), "
    "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 2), ('max_pool_3x3', 1), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 1), "
    "('dil_conv_5x5', 0), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('dil_conv_5x5', 2), "
    "('dil_conv_5x5', 3), ('dil_conv_5x5', 4), ('dil_conv_5x5', 3)], reduce_concat=[2, 3, 4, 5])",
    /* every primitive in both cells, `none` included, and concat of an input state */
    "Genotype(normal=[('none', 0), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0), "
    "('dil_conv_3x3', 2), ('skip_connect', 3), ('dil_conv_5x5', 1), ('sep_conv_3x3', 4), "
    "('max_pool_3x3', 2)], normal_concat=[1, 2, 3, 4, 5], reduce=[('sep_conv_5x5', 0), "
    "('avg_pool_3x3', 1), ('none', 2), ('skip_connect', 1), ('dil_conv_3x3', 3), "
    "('sep_conv_3x3', 2), ('dil_conv_5x5', 0), ('none', 4)], reduce_concat=[2, 3, 4, 5])",
};

/* A model in memory: random weights and BN statistics. */
static ev_model *make_model(const ev_genotype *g, int c, const bool *layout, int cells,
                            int in_channels, int size, uint64_t seed)
{
    ev_error err = {0};
    ev_net_config cfg = {.genotype = *g,
                         .init_channels = c,
                         .num_cells = cells,
                         .in_channels = in_channels,
                         .num_classes = 14,
                         .input_height = size,
                         .input_width = size};
    for (int i = 0; i < cells; i++)
        cfg.reduction[i] = layout[i];
    ev_net *net = NULL;
    if (ev_net_create(&cfg, 1, false, &net, &err)) {
        printf("net: %s\n", err.message);
        return NULL;
    }
    ev_net_init_weights(net, seed);
    uint64_t rng = seed * 7919u + 1;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            float u = ev_rng_uniform(&rng);
            switch (p->kind) {
            case EV_PARAM_BN_WEIGHT:
                p->data[j] = 0.5f + u;
                break;
            case EV_PARAM_BN_BIAS:
            case EV_PARAM_RUNNING_MEAN:
                p->data[j] = 0.4f * (u - 0.5f);
                break;
            case EV_PARAM_RUNNING_VAR:
                p->data[j] = 0.5f + u;
                break;
            default:
                break;
            }
        }
    }
    const ev_model_info info = {.name = "random", .scale = 1.0f};
    ev_model *m = NULL;
    if (ev_model_from_net(net, &info, &m, &err))
        printf("model: %s\n", err.message);
    return m;
}

static int run_plan(const ev_model *m, ev_backend_kind kind, int batch, int threads,
                    const float *input, float *logits)
{
    ev_plan_options opt = {.backend = kind, .batch = batch, .threads = threads};
    ev_plan *plan = NULL;
    ev_error err = {0};
    int rc = ev_plan_create(m, &opt, &plan, &err);
    if (rc) {
        printf("  plan (%s): %s\n", ev_backend_name(kind), err.message);
        return rc;
    }
    rc = ev_plan_run(plan, input, logits, &err);
    /* twice: a second run over the same arena must give the same answer */
    if (!rc)
        rc = ev_plan_run(plan, input, logits, &err);
    ev_plan_free(plan);
    return rc;
}

static void check_random(const char *gname, const ev_genotype *g, int size, const bool *layout,
                         int cells, int c, int in_channels, uint64_t seed)
{
    ev_model *m = make_model(g, c, layout, cells, in_channels, size, seed);
    CHECK(m != NULL, "%s: model %dpx C=%d cells=%d", gname, size, c, cells);
    if (!m)
        return;
    const size_t per = (size_t)in_channels * size * size;
    float *input = malloc(3 * per * sizeof(float));
    float want[3 * 14], got[3 * 14];
    uint64_t rng = seed;
    for (size_t i = 0; i < 3 * per; i++)
        input[i] = 2.0f * ev_rng_uniform(&rng) - 1.0f;
    int rc = 0;
    for (int b = 0; b < 3 && !rc; b++)
        rc = run_plan(m, EV_BACKEND_REFERENCE, 1, 1, input + b * per, want + b * 14);
    static const int configs[4][2] = {{1, 1}, {1, 2}, {3, 1}, {3, 2}};
    double worst = 0;
    for (int k = 0; k < 4 && !rc; k++) {
        int batch = configs[k][0], threads = configs[k][1];
        memset(got, 0, sizeof got);
        rc = run_plan(m, EV_BACKEND_CPU, batch, threads, input, got);
        double e = rel_error(got, want, (size_t)batch * 14);
        if (e > worst || e != e)
            worst = e;
    }
    CHECK(rc == 0 && worst <= 1e-4,
          "%s %dpx %s C=%d in=%d: cpu vs reference, batch 1/3, threads 1/2: rel error %.2e", gname,
          size, cells == 4 ? "NRNR" : "NR", c, in_channels, worst);
    free(input);
    ev_model_free(m);
}

static const float *tensor(const ev_safetensors *st, const char *name, size_t *numel)
{
    const ev_st_tensor *t = ev_safetensors_find(st, name);
    if (!t || t->dtype != EV_DTYPE_F32)
        return NULL;
    if (numel)
        *numel = (t->end - t->begin) / 4;
    return (const float *)(st->data + t->begin);
}

static void check_fixture(const char *dir)
{
    char path[4096 + 512]; /* dir is at most 4096 + 256 */
    ev_error err = {0};
    ev_model *model = NULL;
    ev_safetensors io = {0};
    int rc = ev_model_load(dir, &model, &err);
    CHECK(rc == 0, "%s: load (%s)", dir, rc ? err.message : "ok");
    if (rc)
        return;
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    rc = ev_safetensors_read(path, &io, &err);
    CHECK(rc == 0, "%s: io (%s)", dir, rc ? err.message : "ok");
    size_t n_in = 0, n_logits = 0;
    const float *input = rc ? NULL : tensor(&io, "input", &n_in);
    const float *want = rc ? NULL : tensor(&io, "logits", &n_logits);
    if (input && want) {
        int k = ev_model_num_classes(model);
        int batch = (int)(n_logits / (size_t)k);
        float *got = calloc(n_logits, sizeof *got);
        for (int threads = 1; threads <= 2; threads++) {
            rc = run_plan(model, EV_BACKEND_CPU, batch, threads, input, got);
            double e = rel_error(got, want, n_logits);
            CHECK(rc == 0 && e <= 1e-4, "%s: cpu logits (batch %d, threads %d) rel error %.2e", dir,
                  batch, threads, e);
        }
        free(got);
    }
    ev_safetensors_free(&io);
    ev_model_free(model);
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(int argc, char **argv)
{
    const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";
    const char *genotypes_dir = argc > 2 ? argv[2] : "models/genotypes";
    int quick = argc > 3 && strcmp(argv[3], "--quick") == 0;

    /* golden fixtures: every folder under golden/ */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/golden", fixtures);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "open %s", dir);
    if (d) {
        struct dirent *e;
        char names[64][256];
        int count = 0;
        while ((e = readdir(d)) && count < 64)
            if (e->d_name[0] != '.')
                snprintf(names[count++], sizeof names[0], "%s", e->d_name);
        closedir(d);
        for (int i = 0; i < count; i++) {
            char sub[4096 + 256];
            if (snprintf(sub, sizeof sub, "%s/%s", dir, names[i]) < (int)sizeof sub)
                check_fixture(sub);
        }
    }

    /* genotypes: built in, plus the yaml files in models/genotypes */
    ev_genotype gens[32];
    char gnames[32][128];
    int ng = 0;
    for (size_t i = 0; i < sizeof builtin_genotypes / sizeof builtin_genotypes[0]; i++) {
        ev_error err = {0};
        int rc = ev_genotype_parse(builtin_genotypes[i], &gens[ng], &err);
        CHECK(rc == 0, "parse %s (%s)", builtin_names[i], rc ? err.message : "ok");
        if (!rc)
            snprintf(gnames[ng++], sizeof gnames[0], "%s", builtin_names[i]);
    }
    d = opendir(genotypes_dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) && ng < 32) {
            if (!has_suffix(e->d_name, ".yaml"))
                continue;
            char path[4096 + 256];
            ev_error err = {0};
            if (snprintf(path, sizeof path, "%s/%s", genotypes_dir, e->d_name) >= (int)sizeof path)
                continue;
            int rc = ev_genotype_load_file(path, &gens[ng], &err);
            CHECK(rc == 0, "load %s (%s)", path, rc ? err.message : "ok");
            if (!rc)
                snprintf(gnames[ng++], sizeof gnames[0], "%s", e->d_name);
        }
        closedir(d);
    }

    static const bool nrnr[4] = {false, true, false, true};
    static const bool nr[2] = {false, true};
    static const int sizes[3] = {32, 64, 96};
    static const int channels[2] = {16, 36};
    uint64_t seed = 1;
    for (int gi = 0; gi < ng; gi++)
        for (int si = 0; si < (quick ? 1 : 3); si++)
            for (int li = 0; li < 2; li++)
                for (int ci = 0; ci < 2; ci++) {
                    int in_channels = (seed % 2) ? 1 : 3;
                    check_random(gnames[gi], &gens[gi], sizes[si], li ? nr : nrnr, li ? 2 : 4,
                                 channels[ci], in_channels, seed++);
                }
    return test_finish();
}
