/* golden_util.h: reading the golden PyTorch fixtures (tests/fixtures/gen_golden.py and
 * gen_golden_baselines.py) and checking one training step against them; shared by the engine's
 * reference executor and baseline tests and the training executor's test. Include after
 * test_util.h, ev_bundle.h and ev_safetensors.h. */
#ifndef EV_GOLDEN_UTIL_H
#define EV_GOLDEN_UTIL_H

/* Every fixture gen_golden.py writes, as tests/fixtures/golden/<name>. */
static const char *const golden_fixture_names[] = {
    "darts_v2_nrnr_g1", "darts_v2_nrnr_rgb", "darts_v2_l3_g1",  "darts_v2_l8_rgb",
    "paper128_nrnr_g1", "paper128_nrnr_rgb", "paper128_l3_rgb", "paper128_l8_g1",
    "darts_v1_nrnr_g1", "coverage_nrnr_rgb",
};
#define GOLDEN_FIXTURE_COUNT (sizeof golden_fixture_names / sizeof golden_fixture_names[0])

static inline const float *golden_tensor(const ev_safetensors *st, const char *name, size_t *numel)
{
    const ev_st_tensor *t = ev_safetensors_find(st, name);
    if (!t || t->dtype != EV_DTYPE_F32)
        return NULL;
    if (numel)
        *numel = (t->end - t->begin) / 4;
    return (const float *)(st->data + t->begin);
}

/* The fixture's model and its io tensors, checked; nonzero when either did not load (the caller
 * frees whatever did). */
static inline int golden_load(const char *dir, ev_model **model, ev_safetensors *io)
{
    char path[4200];
    ev_error err = {0};
    int rc = ev_model_load(dir, model, &err);
    CHECK(rc == 0, "%s: load model (%s)", dir, rc ? err.message : "ok");
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    rc = ev_safetensors_read(path, io, &err);
    CHECK(rc == 0, "%s: read io (%s)", dir, rc ? err.message : "ok");
    return rc;
}

/* The training step's labels (stored as floats) as int32, at most 64; returns how many. */
static inline size_t golden_train_labels(const ev_safetensors *io, int32_t labels[64])
{
    size_t n = 0;
    const float *f = golden_tensor(io, "train_labels", &n);
    n = f && n <= 64 ? n : 0;
    for (size_t i = 0; i < n; i++)
        labels[i] = (int32_t)f[i];
    return n;
}

/* The fixture scripts' generator: FNV-1a of a name as the key, then a SplitMix64 step per index
 * to a uniform number in [0, 1) on a 2^-24 grid (as gen_golden_baselines.py writes it). */
static inline uint64_t golden_fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline double golden_uniform(uint64_t key, size_t i)
{
    uint64_t z = key + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 40) * (1.0 / 16777216.0);
}

/* How net's weight gradients compare with a fixture's. */
typedef struct golden_grads {
    int full;      /* compared element by element (grad.NAME) */
    int projected; /* compared through one random projection (gradproj.NAME) */
    int bad;       /* over 1e-3 relative error, NaN, or with no reference */
    double worst;
    const char *worst_name;
} golden_grads;

/* Each gradient in net against grad.NAME; with projections, a tensor the fixture keeps only as
 * gradproj.NAME = {<grad, r>, scale} (r uniform in [-1, 1) from the generator keyed by
 * "proj:NAME": large baseline tensors) is compared as |<grad, r> - ref| / scale. */
static inline golden_grads golden_compare_grads(const ev_safetensors *io, const ev_net *net,
                                                bool projections)
{
    golden_grads r = {.worst_name = ""};
    for (int i = 0; i < net->num_params; i++) {
        const ev_param *p = &net->params[i];
        if (!p->grad)
            continue;
        char name[160];
        size_t n = 0;
        snprintf(name, sizeof name, "grad.%s", p->name);
        const float *g = golden_tensor(io, name, &n);
        double ge;
        if (g && n == p->numel) {
            ge = rel_error(p->grad, g, n);
            r.full++;
        } else if (projections) {
            snprintf(name, sizeof name, "gradproj.%s", p->name);
            g = golden_tensor(io, name, &n);
            if (!g || n != 2) {
                printf("  no gradient reference for %s\n", p->name);
                r.bad++;
                continue;
            }
            snprintf(name, sizeof name, "proj:%s", p->name);
            const uint64_t key = golden_fnv1a64(name);
            double dot = 0;
            for (size_t j = 0; j < p->numel; j++)
                dot += (double)p->grad[j] * (2 * golden_uniform(key, j) - 1);
            ge = fabs(dot - g[0]) / (g[1] > 0 ? g[1] : 1);
            r.projected++;
        } else {
            printf("  missing or mis-sized grad.%s\n", p->name);
            r.bad++;
            continue;
        }
        if (ge > r.worst || ge != ge) {
            r.worst = ge;
            r.worst_name = p->name;
        }
        r.bad += !(ge <= 1e-3);
    }
    return r;
}

/* The training step of a fixture: logits and loss (<= 1e-4), every weight gradient (<= 1e-3),
 * the stem BN's running statistics after the step (<= 1e-4). net holds the gradients. */
static inline void golden_check_step(const char *name, const ev_safetensors *io, ev_net *net,
                                     const float *logits, float loss, size_t n_logits)
{
    double e = rel_error(logits, golden_tensor(io, "train_logits", NULL), n_logits);
    CHECK(e <= 1e-4, "%s: train-mode logits rel error %.2e <= 1e-4", name, e);
    const float *want_loss = golden_tensor(io, "train_loss", NULL);
    CHECK(fabs(loss - want_loss[0]) <= 1e-4 * fabs(want_loss[0]), "%s: loss %.7f vs %.7f", name,
          loss, want_loss[0]);
    golden_grads gr = golden_compare_grads(io, net, false);
    CHECK(gr.bad == 0 && gr.full > 0, "%s: %d weight gradients, worst rel error %.2e (%s) <= 1e-3",
          name, gr.full, gr.worst, gr.worst_name);
    ev_param *rm = ev_net_find_param(net, "stem.1.running_mean");
    ev_param *rv = ev_net_find_param(net, "stem.1.running_var");
    double em =
        rel_error(rm->data, golden_tensor(io, "running_mean_after.stem.1", NULL), rm->numel);
    double ev = rel_error(rv->data, golden_tensor(io, "running_var_after.stem.1", NULL), rv->numel);
    CHECK(em <= 1e-4 && ev <= 1e-4, "%s: stem BN running stats after a step (%.1e, %.1e)", name, em,
          ev);
}

#endif
