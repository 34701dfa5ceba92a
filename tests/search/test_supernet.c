/* test_supernet.c: DARTS search. The architecture gradient of a tiny supernet against central
 * finite differences: first order (d L_val / d alpha, beta) and second order (the unrolled
 * objective L_val(w - eta dL_train/dw ..., alpha) differentiated directly, against the
 * finite-difference Hessian-vector approximation). Derivation-rule cases (ties, none excluded,
 * two distinct predecessors, the skip cap), thread-count determinism and bad inputs.
 *
 * The supernet runs on the float training executor, so the finite differences use a step (2e-2)
 * at which float rounding of the loss (~1e-7) is two orders below the tolerance. */
#include "supernet.h"
#include "test_util.h"

#include <stdlib.h>

#define B 12
#define K 3
#define S 16

static void make_batch(uint64_t seed, float *x, int32_t *y)
{
    uint64_t rng = seed;
    for (int i = 0; i < B * S * S; i++)
        x[i] = ev_rng_normal(&rng);
    for (int i = 0; i < B; i++)
        y[i] = (int32_t)(i % K);
}

static search_supernet *tiny_k(bool edge_norm, int partial, int threads, uint64_t seed)
{
    search_supernet_config cfg = {.init_channels = partial > 1 ? 4 * partial : 4,
                                  .num_cells = 2,
                                  .in_channels = 1,
                                  .num_classes = K,
                                  .size = S,
                                  .edge_norm = edge_norm,
                                  .partial_channels = partial};
    cfg.reduction[1] = true;
    search_supernet *s = NULL;
    ev_error err = {0};
    int rc = search_supernet_create(&cfg, B, threads, seed, &s, &err);
    CHECK(rc == 0, "tiny supernet (%s)", rc ? err.message : "ok");
    if (s) { /* spread the alphas so the softmaxes are not uniform */
        uint64_t rng = seed + 99;
        float *a = search_supernet_arch(s);
        for (int i = 0; i < SEARCH_ARCH_SIZE; i++)
            a[i] = 0.5f * ev_rng_normal(&rng);
    }
    return s;
}

/* indices checked: a spread over alpha normal, alpha reduce and (edge norm) the betas */
static search_supernet *tiny(bool edge_norm, int threads, uint64_t seed)
{
    return tiny_k(edge_norm, 0, threads, seed);
}

static int pick_indices(bool edge_norm, int *idx)
{
    int n = 0;
    for (int i = 0; i < SEARCH_ALPHA_SIZE; i += 7)
        idx[n++] = i;
    if (edge_norm)
        for (int i = SEARCH_ALPHA_SIZE; i < SEARCH_ARCH_SIZE; i += 3)
            idx[n++] = i;
    return n;
}

/* The loss as a function of the architecture parameters (what the gradient differentiates). */
typedef struct objective {
    search_supernet *s;
    const float *xt, *xv;
    const int32_t *yt, *yv;
    int order;
    float eta;
} objective;

static float objective_value(const objective *ob)
{
    float f = NAN;
    ev_error err = {0};
    if (ob->order == 1) {
        search_supernet_loss(ob->s, ob->xv, ob->yv, false, NULL, &f, NULL, &err);
    } else { /* the unrolled objective L_val(w'(alpha), alpha), w' recomputed at this alpha */
        search_arch_options o;
        search_arch_defaults(&o);
        o.order = 2;
        double scratch[SEARCH_ARCH_SIZE];
        search_supernet_arch_grad(ob->s, &o, ob->eta, ob->xt, ob->yt, ob->xv, ob->yv, scratch, &f,
                                  &err);
    }
    return f;
}

/* Central differences with step h. A tiny ReLU network is piecewise smooth: where a ReLU or a
 * max-pool winner flips within h, the two one-sided slopes differ; there the analytic value must
 * lie between them (the convention's "skip points near a kink", made checkable), elsewhere it
 * must match the central difference. At most a quarter of the points may be kinked. */
static void fd_check(const char *what, const objective *ob, const double *grad, bool betas, float h,
                     double *fd_out)
{
    double scale = 0.0;
    for (int i = 0; i < SEARCH_ARCH_SIZE; i++)
        scale = fmax(scale, fabs(grad[i]));
    int idx[SEARCH_ARCH_SIZE], n = pick_indices(betas, idx), bad = 0, kinked = 0;
    double worst = 0.0, l2_diff = 0.0, l2_fd = 0.0;
    float *a = search_supernet_arch(ob->s);
    const double f0 = objective_value(ob);
    for (int m = 0; m < n; m++) {
        const int i = idx[m];
        const float keep = a[i];
        a[i] = keep + h;
        const double fp = objective_value(ob);
        a[i] = keep - h;
        const double fn = objective_value(ob);
        a[i] = keep;
        const double fd = (fp - fn) / (2.0 * h), right = (fp - f0) / h, left = (f0 - fn) / h;
        if (fd_out) {
            fd_out[m] = fd;
            continue;
        }
        /* float resolution of the loss over the step: 3 ulps of f0 over h */
        const double noise = 3.0 * 1.2e-7 * fabs(f0) / h;
        const double tol = 5e-3 * scale + 2e-2 * fabs(fd) + noise;
        const bool smooth = fabs(right - left) <= tol;
        bool ok;
        if (smooth) {
            ok = fabs(grad[i] - fd) <= tol;
            l2_diff += (grad[i] - fd) * (grad[i] - fd);
            l2_fd += fd * fd;
            worst = fmax(worst, fabs(grad[i] - fd) / scale);
        } else {
            kinked++;
            ok = grad[i] >= fmin(left, right) - tol && grad[i] <= fmax(left, right) + tol;
        }
        if (!ok) {
            bad++;
            printf("  arch[%d]: analytic %.6e, central %.6e (left %.6e, right %.6e)\n", i, grad[i],
                   fd, left, right);
        }
    }
    if (fd_out)
        return;
    const double rel_l2 = sqrt(l2_diff / (l2_fd + 1e-300));
    CHECK(bad == 0 && kinked * 4 <= n && scale > 1e-4 && rel_l2 < 0.05,
          "%s vs central differences: %d points (%d at a kink, bracketed), max |grad| %.3e, "
          "worst error %.2e of max, relative L2 error %.3f",
          what, n, kinked, scale, worst, rel_l2);
}

static void check_first_order(bool edge_norm, int partial)
{
    search_supernet *s = tiny_k(edge_norm, partial, 1, 3);
    if (!s)
        return;
    float x[B * S * S];
    int32_t y[B];
    make_batch(11, x, y);
    ev_error err = {0};
    double grad[SEARCH_ARCH_SIZE];
    float loss;
    int rc = search_supernet_loss(s, x, y, true, grad, &loss, NULL, &err);
    CHECK(rc == 0 && isfinite(loss), "first-order loss %.5f", (double)loss);
    objective ob = {.s = s, .xv = x, .yv = y, .order = 1};
    char what[128];
    snprintf(what, sizeof what, "first-order d L_val / d %s%s",
             edge_norm ? "(alpha, beta)" : "alpha",
             partial > 1 ? " with partial channels (K = 2, shuffle)" : "");
    fd_check(what, &ob, grad, edge_norm, 5e-3f, NULL);
    search_supernet_free(s);
}

static void check_second_order(void)
{
    search_supernet *s = tiny(true, 1, 5);
    if (!s)
        return;
    float xt[B * S * S], xv[B * S * S];
    int32_t yt[B], yv[B];
    make_batch(21, xt, yt);
    make_batch(22, xv, yv);
    ev_error err = {0};
    float loss;
    /* one weight step so that the momentum term of the unrolled step is exercised */
    int rc = search_supernet_weight_step(s, 0.05f, 0.9f, 3e-4f, 5.0f, xt, yt, &loss, NULL, &err);
    CHECK(rc == 0, "weight step (%s)", rc ? err.message : "ok");
    search_arch_options o;
    search_arch_defaults(&o);
    o.order = 2;
    const float eta = getenv("ETA") ? (float)atof(getenv("ETA")) : 0.02f;
    double g2[SEARCH_ARCH_SIZE], g1[SEARCH_ARCH_SIZE];
    float f0;
    rc = search_supernet_arch_grad(s, &o, eta, xt, yt, xv, yv, g2, &f0, &err);
    CHECK(rc == 0, "second-order gradient (%s)", rc ? err.message : "ok");
    /* the first-order gradient at w' (the second order's first term) sizes the implicit term */
    o.order = 1;
    search_supernet_arch_grad(s, &o, eta, xt, yt, xv, yv, g1, NULL, &err);
    o.order = 2;
    double scale = 0.0, implicit = 0.0;
    for (int i = 0; i < SEARCH_ARCH_SIZE; i++) {
        scale = fmax(scale, fabs(g2[i]));
        implicit = fmax(implicit, fabs(g2[i] - g1[i]));
    }
    objective ob = {.s = s, .xt = xt, .yt = yt, .xv = xv, .yv = yv, .order = 2, .eta = eta};
    /* The unrolled objective runs two float passes through a ReLU network, and w' moves with
     * alpha, so it is rougher than the loss: compare whole vectors at a small eta (larger ones
     * cross so many kinks that central differences stop measuring the derivative). The
     * second-order gradient must be close to them, closer than the first-order term alone, and
     * the implicit term's best-fit scale must be about 1. */
    double fd[SEARCH_ARCH_SIZE];
    int idx[SEARCH_ARCH_SIZE], n = pick_indices(true, idx);
    fd_check("", &ob, g2, true, 1e-2f, fd);
    double e2 = 0.0, e1 = 0.0, norm = 0.0, num = 0.0, den = 0.0;
    for (int m = 0; m < n; m++) {
        const double d = g2[idx[m]] - g1[idx[m]];
        num += (fd[m] - g1[idx[m]]) * d;
        den += d * d;
        e2 += (g2[idx[m]] - fd[m]) * (g2[idx[m]] - fd[m]);
        e1 += (g1[idx[m]] - fd[m]) * (g1[idx[m]] - fd[m]);
        norm += fd[m] * fd[m];
    }
    e2 = sqrt(e2 / norm);
    e1 = sqrt(e1 / norm);
    CHECK(e2 < 0.1 && e2 < 0.7 * e1 && num / den > 0.7 && num / den < 1.3,
          "second-order gradient vs central differences of the unrolled objective over %d "
          "points: relative L2 error %.3f (first-order term alone: %.3f; best-fit scale of the "
          "implicit term %.2f)",
          n, e2, e1, num / den);
    CHECK(implicit > 0.05 * scale,
          "the implicit (Hessian) term is %.3e, %.0f%% of the gradient: the check sees it",
          implicit, 100.0 * implicit / scale);
    /* weights and BN statistics are untouched by the second-order step */
    float again;
    double scratch[SEARCH_ARCH_SIZE];
    search_supernet_arch_grad(s, &o, eta, xt, yt, xv, yv, scratch, &again, &err);
    CHECK(again == f0, "the unrolled step restores the weights (%.7f == %.7f)", (double)again,
          (double)f0);
    search_supernet_free(s);
}

static void set_edge(float w[][SEARCH_OPS], int e, int op, float v)
{
    for (int k = 0; k < SEARCH_OPS; k++)
        w[e][k] = 0.01f;
    w[e][op] = v;
}

static void check_derivation(void)
{
    float w[SEARCH_EDGES][SEARCH_OPS];
    ev_cell_genotype g;
    /* none excluded: edge 0 is all `none`, still only its best non-none op counts */
    for (int e = 0; e < SEARCH_EDGES; e++)
        set_edge(w, e, EV_PRIM_SEP_CONV_3X3, 0.2f);
    w[0][EV_PRIM_NONE] = 0.9f;
    w[0][EV_PRIM_SEP_CONV_3X3] = 0.05f;
    w[1][EV_PRIM_DIL_CONV_5X5] = 0.3f;
    search_derive_cell(w, NULL, -1, &g);
    CHECK(g.edges[0].input == 1 && g.edges[0].op == EV_PRIM_DIL_CONV_5X5 && g.edges[1].input == 0 &&
              g.edges[1].op == EV_PRIM_SEP_CONV_3X3,
          "node 2 keeps both inputs, strongest first; `none` (0.9 on edge 0) never chosen: "
          "got (%s,%d) (%s,%d)",
          ev_primitive_name(g.edges[0].op), g.edges[0].input, ev_primitive_name(g.edges[1].op),
          g.edges[1].input);
    /* ranking by the strongest non-none op: an edge dominated by `none` ranks last */
    for (int e = 0; e < SEARCH_EDGES; e++)
        set_edge(w, e, EV_PRIM_MAX_POOL_3X3, 0.2f);
    w[9][EV_PRIM_NONE] = 0.99f;          /* node 5 input 0: none-heavy, weak otherwise */
    w[10][EV_PRIM_AVG_POOL_3X3] = 0.25f; /* node 5 input 1 */
    w[12][EV_PRIM_SKIP_CONNECT] = 0.4f;  /* node 5 input 3 */
    search_derive_cell(w, NULL, -1, &g);
    CHECK(g.edges[6].input == 3 && g.edges[6].op == EV_PRIM_SKIP_CONNECT && g.edges[7].input == 1 &&
              g.edges[7].op == EV_PRIM_AVG_POOL_3X3,
          "node 5: top-2 by strongest non-none weight, strongest first: (%s,%d) (%s,%d)",
          ev_primitive_name(g.edges[6].op), g.edges[6].input, ev_primitive_name(g.edges[7].op),
          g.edges[7].input);
    /* ties: equal edges keep the lower input index (stable sort), equal ops the lower primitive */
    for (int e = 0; e < SEARCH_EDGES; e++)
        for (int k = 0; k < SEARCH_OPS; k++)
            w[e][k] = 0.125f;
    search_derive_cell(w, NULL, -1, &g);
    bool ties = true;
    for (int i = 0; i < SEARCH_STEPS; i++)
        ties = ties && g.edges[2 * i].input == 0 && g.edges[2 * i + 1].input == 1 &&
               g.edges[2 * i].op == EV_PRIM_MAX_POOL_3X3 &&
               g.edges[2 * i + 1].op == EV_PRIM_MAX_POOL_3X3;
    CHECK(ties, "all-equal weights: every node takes inputs 0 then 1 with max_pool_3x3");
    w[7][EV_PRIM_DIL_CONV_3X3] = 0.2f; /* node 4 input 2 strongest; inputs 0,1 tie for second */
    search_derive_cell(w, NULL, -1, &g);
    CHECK(g.edges[4].input == 2 && g.edges[4].op == EV_PRIM_DIL_CONV_3X3 && g.edges[5].input == 0,
          "node 4: strongest (dil_conv_3x3, 2), then the lower-index of two tied inputs: (%s,%d) "
          "(%s,%d)",
          ev_primitive_name(g.edges[4].op), g.edges[4].input, ev_primitive_name(g.edges[5].op),
          g.edges[5].input);
    /* two distinct predecessors whatever the weights */
    uint64_t rng = 77;
    bool distinct = true;
    for (int trial = 0; trial < 200; trial++) {
        for (int e = 0; e < SEARCH_EDGES; e++)
            for (int k = 0; k < SEARCH_OPS; k++)
                w[e][k] = ev_rng_uniform(&rng);
        search_derive_cell(w, NULL, -1, &g);
        for (int i = 0; i < SEARCH_STEPS; i++)
            distinct = distinct && g.edges[2 * i].input != g.edges[2 * i + 1].input &&
                       g.edges[2 * i].input <= i + 1 && g.edges[2 * i].op != EV_PRIM_NONE &&
                       g.edges[2 * i + 1].op != EV_PRIM_NONE;
    }
    CHECK(distinct, "200 random cells: two distinct valid predecessors per node, never `none`");
    /* skip cap: four skips, cap 2 keeps the two strongest */
    for (int e = 0; e < SEARCH_EDGES; e++)
        set_edge(w, e, EV_PRIM_SEP_CONV_3X3, 0.3f);
    const int skip_edges[4] = {0, 2, 5, 9}; /* input 0 of nodes 2..5 */
    const float skip_w[4] = {0.9f, 0.6f, 0.8f, 0.7f};
    for (int i = 0; i < 4; i++)
        set_edge(w, skip_edges[i], EV_PRIM_SKIP_CONNECT, skip_w[i]);
    w[2][EV_PRIM_DIL_CONV_3X3] = 0.35f; /* node 3's input 0: second choice when skip is removed */
    ev_cell_genotype uncapped;
    search_derive_cell(w, NULL, -1, &uncapped);
    search_derive_cell(w, NULL, 2, &g);
    int skips = 0, skips_uncapped = 0;
    for (int m = 0; m < 8; m++) {
        skips += g.edges[m].op == EV_PRIM_SKIP_CONNECT;
        skips_uncapped += uncapped.edges[m].op == EV_PRIM_SKIP_CONNECT;
    }
    CHECK(skips_uncapped == 4 && skips == 2 && g.edges[0].op == EV_PRIM_SKIP_CONNECT &&
              g.edges[4].op == EV_PRIM_SKIP_CONNECT && g.edges[2].op == EV_PRIM_DIL_CONV_3X3 &&
              g.edges[2].input == 0,
          "skip cap 2: 4 skips -> 2 (the 0.9 and 0.8 ones kept; node 3 input 0 falls back to "
          "dil_conv_3x3)");
    ev_genotype full;
    float arch[SEARCH_ARCH_SIZE] = {0};
    search_derive_genotype(arch, true, 2, &full);
    ev_error err = {0};
    CHECK(ev_genotype_validate(&full, &err) == 0, "a derived genotype validates (%s)", err.message);
}

static void check_determinism(void)
{
    search_supernet *a = tiny_k(true, 2, 1, 9), *b = tiny_k(true, 2, 2, 9);
    if (!a || !b)
        goto out;
    float xt[B * S * S], xv[B * S * S];
    int32_t yt[B], yv[B];
    make_batch(31, xt, yt);
    make_batch(32, xv, yv);
    search_arch_options o;
    search_arch_defaults(&o);
    o.order = 2;
    ev_error err = {0};
    for (int step = 0; step < 2; step++) {
        float l;
        search_supernet_arch_step(a, &o, 0.025f, xt, yt, xv, yv, &l, &err);
        search_supernet_arch_step(b, &o, 0.025f, xt, yt, xv, yv, &l, &err);
        search_supernet_weight_step(a, 0.025f, 0.9f, 3e-4f, 5.0f, xt, yt, &l, NULL, &err);
        search_supernet_weight_step(b, 0.025f, 0.9f, 3e-4f, 5.0f, xt, yt, &l, NULL, &err);
    }
    ev_net *na = search_supernet_net(a), *nb = search_supernet_net(b);
    bool same =
        !memcmp(search_supernet_arch(a), search_supernet_arch(b), SEARCH_ARCH_SIZE * sizeof(float));
    for (int i = 0; i < na->num_params; i++)
        same = same &&
               !memcmp(na->params[i].data, nb->params[i].data, na->params[i].numel * sizeof(float));
    CHECK(same, "two second-order search steps (PC-DARTS K = 2): 1 and 2 threads give identical "
                "weights and alphas");
out:
    search_supernet_free(a);
    search_supernet_free(b);
}

static void check_bad_input(void)
{
    search_supernet *s = tiny(false, 1, 1);
    if (!s)
        return;
    float x[B * S * S];
    int32_t y[B];
    make_batch(1, x, y);
    y[2] = K;
    ev_error err = {0};
    CHECK_ERR(search_supernet_loss(s, x, y, true, NULL, NULL, NULL, &err), err, "label 3",
              "label out of range");
    search_supernet_free(s);
    search_supernet_config cfg = {
        .init_channels = 4, .num_cells = 3, .in_channels = 1, .num_classes = K, .size = 10};
    cfg.reduction[0] = cfg.reduction[1] = true;
    CHECK_ERR(search_supernet_create(&cfg, B, 1, 1, &s, &err), err, "FactorizedReduce",
              "size 10 with two reductions");
    cfg.init_channels = 3;
    CHECK_ERR(search_supernet_create(&cfg, B, 1, 1, &s, &err), err, "init channels 3",
              "odd channels");
    cfg.init_channels = 8;
    cfg.size = 16;
    cfg.partial_channels = 8;
    CHECK_ERR(search_supernet_create(&cfg, B, 1, 1, &s, &err), err, "divisible by 2K",
              "K = 8 with C = 8");
}

int main(void)
{
    check_derivation();
    check_first_order(false, 0);
    check_first_order(true, 0);
    check_first_order(true, 2);
    check_second_order();
    check_determinism();
    check_bad_input();
    return test_finish();
}
