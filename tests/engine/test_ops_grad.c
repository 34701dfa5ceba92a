/* test_ops_grad.c: checks the reference ops, the engine's correctness oracle.
 *
 * - Every backward against central finite differences in double (h = 1e-6; a gradient passes
 *   when |analytic - numeric| <= 1e-4 * max(|analytic|, |numeric|) + 1e-6), for input and
 *   parameter gradients, with points within 1e-3 of a ReLU kink or a max-pool tie skipped.
 *   The scalar under test is sum(y * r) for a fixed random r, so the backward runs with dy = r.
 *   Gradient buffers start at 0.25 (not 0) to check that backward accumulates.
 * - Forward values against hand computations (convolution, pool divisors, batch-norm running
 *   statistics, cross-entropy).
 * - The float ops against the double ops on random inputs (1e-5 relative).
 *
 * Prints one line per check; exits 0 when all pass, 1 otherwise. About 1,100 lines: one
 * finite-difference harness and every op's cases beside it, so that a new op is one more case
 * here, not one more test program.
 */
#include "ops_ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_STEP 1e-6
#define FD_REL_TOL 1e-4
#define FD_ABS_TOL 1e-6
#define KINK_MARGIN 1e-3
#define ACC_OFFSET 0.25 /* gradient buffers start here: backward must add, not overwrite */
#define FLOAT_REL_TOL 1e-5

static int g_checks, g_failures;
static uint64_t g_rng = 0x5eed0ec40ull;

static void EV_PRINTF(2, 3) check(bool ok, const char *fmt, ...)
{
    va_list ap;
    g_checks++;
    if (!ok)
        g_failures++;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- allocation: everything is freed at exit so that LeakSanitizer stays quiet ------------ */

#define MAX_ALLOCS 4096
static void *g_allocs[MAX_ALLOCS];
static int g_num_allocs;

static void *tracked_calloc(size_t count, size_t size)
{
    if (g_num_allocs == MAX_ALLOCS) {
        fprintf(stderr, "test_ops_grad: too many allocations\n");
        exit(1);
    }
    void *p = calloc(count ? count : 1, size);
    if (!p) {
        fprintf(stderr, "test_ops_grad: out of memory\n");
        exit(1);
    }
    g_allocs[g_num_allocs++] = p;
    return p;
}

static double *dalloc(size_t n) { return tracked_calloc(n, sizeof(double)); }
static float *falloc(size_t n) { return tracked_calloc(n, sizeof(float)); }

static void free_all(void)
{
    for (int i = 0; i < g_num_allocs; i++)
        free(g_allocs[i]);
    g_num_allocs = 0;
}

/* Values are drawn in float so the float and double versions see exactly the same inputs. */
static double *random_normal(size_t n, double scale)
{
    double *p = dalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (double)ev_rng_normal(&g_rng) * scale;
    return p;
}

static double *filled(size_t n, double value)
{
    double *p = dalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = value;
    return p;
}

static float *to_float(const double *p, size_t n)
{
    float *f = falloc(n);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)p[i];
    return f;
}

static void subtract_offset(double *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] -= ACC_OFFSET;
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static ev_shape shape(int n, int c, int h, int w) { return (ev_shape){n, c, h, w}; }

/* ---- finite differences ------------------------------------------------------------------ */

typedef double (*loss_fn)(void *ctx);

/* Compares the analytic gradient ana[0..n) of f with respect to param[0..n) with central
 * differences; entries with skip[i] set are not compared (kinks and ties). */
static void grad_check(const char *what, loss_fn f, void *ctx, double *param, const double *ana,
                       size_t n, const bool *skip)
{
    double max_diff = 0.0, worst = 0.0, max_grad = 0.0;
    size_t compared = 0, skipped = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) {
            skipped++;
            continue;
        }
        const double keep = param[i];
        param[i] = keep + FD_STEP;
        const double plus = f(ctx);
        param[i] = keep - FD_STEP;
        const double minus = f(ctx);
        param[i] = keep;
        const double num = (plus - minus) / (2.0 * FD_STEP);
        const double diff = fabs(num - ana[i]);
        const double scale = fmax(fabs(num), fabs(ana[i]));
        const double tol = FD_REL_TOL * scale + FD_ABS_TOL;
        if (diff > max_diff)
            max_diff = diff;
        if (diff / tol > worst)
            worst = diff / tol;
        if (scale > max_grad)
            max_grad = scale;
        if (diff > tol)
            bad++;
        compared++;
    }
    f(ctx); /* leave the outputs at the unperturbed point */
    /* A gradient that is zero everywhere would pass trivially: require a real signal. */
    check(bad == 0 && compared > 0 && max_grad > 1e-3,
          "grad %-44s %4zu compared, %2zu skipped, max |diff| %.2e, worst diff/tol %.3f%s", what,
          compared, skipped, max_diff, worst, max_grad > 1e-3 ? "" : " (gradient is all zero)");
}

/* ---- conv2d ------------------------------------------------------------------------------- */

typedef struct conv_case {
    ev_shape xs, ys;
    int cout;
    ev_conv_desc d;
    double *x, *w, *y, *r;
} conv_case;

static double conv_loss(void *p)
{
    conv_case *c = p;
    ev_ref64_conv2d_forward(c->x, c->xs, c->w, c->cout, &c->d, c->y, c->ys);
    return dot(c->y, c->r, ev_shape_numel(c->ys));
}

/* The definition, written independently of the tiled loops: every tap, bounds checked. */
static void naive_conv(const double *x, ev_shape xs, const double *w, int cout,
                       const ev_conv_desc *d, double *y, ev_shape ys)
{
    const int cin_g = xs.c / d->groups, cout_g = cout / d->groups;
    for (int n = 0; n < xs.n; n++)
        for (int oc = 0; oc < cout; oc++)
            for (int oh = 0; oh < ys.h; oh++)
                for (int ow = 0; ow < ys.w; ow++) {
                    double s = 0.0;
                    for (int ic = 0; ic < cin_g; ic++)
                        for (int i = 0; i < d->kernel_h; i++)
                            for (int j = 0; j < d->kernel_w; j++) {
                                const int ih = oh * d->stride - d->pad + i * d->dilation;
                                const int iw = ow * d->stride - d->pad + j * d->dilation;
                                if (ih < 0 || iw < 0 || ih >= xs.h || iw >= xs.w)
                                    continue;
                                const int ci = (oc / cout_g) * cin_g + ic;
                                s += w[((size_t)(oc * cin_g + ic) * d->kernel_h + i) * d->kernel_w +
                                       j] *
                                     x[(((size_t)n * xs.c + ci) * xs.h + ih) * xs.w + iw];
                            }
                    y[(((size_t)n * cout + oc) * ys.h + oh) * ys.w + ow] = s;
                }
}

/* every > 1 compares only every every-th input gradient (large, multi-tile images). */
static void test_conv_grad(int n, int cin, int h, int w, int cout, int k, int stride, int pad,
                           int dilation, int groups, int every)
{
    conv_case c = {
        .xs = shape(n, cin, h, w), .cout = cout, .d = {k, k, stride, pad, dilation, groups}};
    c.ys = shape(n, cout, ev_conv2d_out_size(h, k, stride, pad, dilation),
                 ev_conv2d_out_size(w, k, stride, pad, dilation));
    const size_t nx = ev_shape_numel(c.xs), ny = ev_shape_numel(c.ys);
    const size_t nw = (size_t)cout * (size_t)(cin / groups) * (size_t)k * (size_t)k;
    c.x = random_normal(nx, 1.0);
    c.w = random_normal(nw, 0.5);
    c.y = dalloc(ny);
    c.r = random_normal(ny, 1.0);
    double *dx = filled(nx, ACC_OFFSET), *dw = filled(nw, ACC_OFFSET);
    ev_ref64_conv2d_backward(c.x, c.xs, c.w, cout, &c.d, c.r, c.ys, dx, dw);
    subtract_offset(dx, nx);
    subtract_offset(dw, nw);

    char what[96];
    snprintf(what, sizeof what, "conv %dx%dx%dx%d->%d k%d s%d p%d d%d g%d", n, cin, h, w, cout, k,
             stride, pad, dilation, groups);

    double *direct = dalloc(ny);
    naive_conv(c.x, c.xs, c.w, cout, &c.d, direct, c.ys);
    conv_loss(&c);
    double fwd = 0.0;
    for (size_t i = 0; i < ny; i++)
        fwd = fmax(fwd, fabs(direct[i] - c.y[i]));
    check(fwd < 1e-12, "%s forward == direct definition (max diff %.1e)", what, fwd);

    bool *sample = NULL;
    if (every > 1) {
        sample = tracked_calloc(nx, sizeof(bool));
        for (size_t i = 0; i < nx; i++)
            sample[i] = i % (size_t)every != 0;
    }
    char name[128];
    snprintf(name, sizeof name, every > 1 ? "%s dx (sampled)" : "%s dx", what);
    grad_check(name, conv_loss, &c, c.x, dx, nx, sample);
    snprintf(name, sizeof name, "%s dw", what);
    grad_check(name, conv_loss, &c, c.w, dw, nw, NULL);

    /* dx = NULL must skip dx and leave dw identical; and vice versa. */
    double *dw_only = dalloc(nw), *dx_only = dalloc(nx);
    ev_ref64_conv2d_backward(c.x, c.xs, c.w, cout, &c.d, c.r, c.ys, NULL, dw_only);
    ev_ref64_conv2d_backward(c.x, c.xs, c.w, cout, &c.d, c.r, c.ys, dx_only, NULL);
    double diff = 0.0;
    for (size_t i = 0; i < nw; i++)
        diff = fmax(diff, fabs(dw_only[i] - dw[i]));
    for (size_t i = 0; i < nx; i++)
        diff = fmax(diff, fabs(dx_only[i] - dx[i]));
    check(diff < 1e-12, "%s: NULL dx or dw skips only that gradient (max diff %.1e)", what, diff);
}

static void test_conv_forward_hand(void)
{
    /* x = 1..9 on a 3x3 grid */
    double x[9], y[4];
    for (int i = 0; i < 9; i++)
        x[i] = i + 1;

    /* 2x2 kernel [[1,2],[3,4]], no padding */
    const double w22[4] = {1, 2, 3, 4};
    ev_conv_desc d = {2, 2, 1, 0, 1, 1};
    ev_ref64_conv2d_forward(x, shape(1, 1, 3, 3), w22, 1, &d, y, shape(1, 1, 2, 2));
    check(y[0] == 37 && y[1] == 47 && y[2] == 67 && y[3] == 77,
          "conv forward hand case k2 s1 p0: [%g %g; %g %g] == [37 47; 67 77]", y[0], y[1], y[2],
          y[3]);

    /* 3x3 ones, pad 1, stride 2: each output sums the real cells of its window */
    double ones[9];
    for (int i = 0; i < 9; i++)
        ones[i] = 1;
    d = (ev_conv_desc){3, 3, 2, 1, 1, 1};
    ev_ref64_conv2d_forward(x, shape(1, 1, 3, 3), ones, 1, &d, y, shape(1, 1, 2, 2));
    check(y[0] == 12 && y[1] == 16 && y[2] == 24 && y[3] == 28,
          "conv forward hand case k3 s2 p1: [%g %g; %g %g] == [12 16; 24 28]", y[0], y[1], y[2],
          y[3]);

    /* dilation 2 on a 5x5 grid of 0..24: taps at even rows and columns, sum 108 */
    double x5[25];
    for (int i = 0; i < 25; i++)
        x5[i] = i;
    d = (ev_conv_desc){3, 3, 1, 0, 2, 1};
    ev_ref64_conv2d_forward(x5, shape(1, 1, 5, 5), ones, 1, &d, y, shape(1, 1, 1, 1));
    check(y[0] == 108, "conv forward hand case k3 d2 p0: %g == 108", y[0]);

    /* groups: each output channel sees only its own input channel */
    const double xg[2] = {2, 3}, wg[2] = {5, 7};
    d = (ev_conv_desc){1, 1, 1, 0, 1, 2};
    ev_ref64_conv2d_forward(xg, shape(1, 2, 1, 1), wg, 2, &d, y, shape(1, 2, 1, 1));
    check(y[0] == 10 && y[1] == 21, "conv forward hand case groups 2: [%g %g] == [10 21]", y[0],
          y[1]);

    /* the float version on the first case */
    float xf[9], wf[4] = {1, 2, 3, 4}, yf[4];
    for (int i = 0; i < 9; i++)
        xf[i] = (float)(i + 1);
    d = (ev_conv_desc){2, 2, 1, 0, 1, 1};
    ev_ref_conv2d_forward(xf, shape(1, 1, 3, 3), wf, 1, &d, yf, shape(1, 1, 2, 2));
    check(yf[0] == 37 && yf[1] == 47 && yf[2] == 67 && yf[3] == 77,
          "conv forward hand case k2 s1 p0 (float)");
}

static void test_out_size(void)
{
    const struct {
        int in, k, s, p, d, want;
    } cases[] = {
        {7, 3, 1, 1, 1, 7}, {7, 3, 2, 1, 1, 4}, {9, 3, 2, 1, 1, 5},   {9, 5, 2, 4, 2, 5},
        {7, 5, 3, 0, 1, 1}, {8, 5, 3, 0, 1, 2}, {32, 1, 2, 0, 1, 16}, {7, 1, 2, 0, 1, 4},
        {2, 3, 1, 0, 1, 0}, {5, 3, 1, 0, 3, 0}, {5, 3, 0, 1, 1, 0},   {0, 1, 1, 0, 1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = ev_conv2d_out_size(cases[i].in, cases[i].k, cases[i].s, cases[i].p, cases[i].d);
        check(got == cases[i].want, "ev_conv2d_out_size(in %d, k %d, s %d, p %d, d %d) = %d == %d",
              cases[i].in, cases[i].k, cases[i].s, cases[i].p, cases[i].d, got, cases[i].want);
    }
}

/* ---- batch norm --------------------------------------------------------------------------- */

typedef struct bn_case {
    ev_shape s;
    double *x, *gamma, *beta, *running_mean, *running_var, *saved, *y, *r;
    bool training;
} bn_case;

static double bn_loss(void *p)
{
    bn_case *c = p;
    ev_ref64_batchnorm_forward(c->x, c->s, c->gamma, c->beta, c->running_mean, c->running_var,
                               c->training, 0.1, 1e-5, c->saved, c->y);
    return dot(c->y, c->r, ev_shape_numel(c->s));
}

static void test_bn_grad(bool training, bool affine)
{
    bn_case c = {.s = shape(3, 4, 5, 7), .training = training};
    const size_t n = ev_shape_numel(c.s), ch = (size_t)c.s.c;
    c.x = random_normal(n, 2.0);
    for (size_t i = 0; i < n; i++)
        c.x[i] += 0.5 * (double)((i / 35) % 4); /* per-channel offsets */
    if (affine) {
        c.gamma = random_normal(ch, 1.0);
        c.beta = random_normal(ch, 1.0);
    }
    if (!training) {
        /* Eval uses running statistics; training leaves them NULL so the loss is repeatable. */
        c.running_mean = random_normal(ch, 0.5);
        c.running_var = dalloc(ch);
        for (size_t i = 0; i < ch; i++)
            c.running_var[i] = 0.5 + fabs((double)ev_rng_normal(&g_rng));
    }
    c.saved = dalloc(2 * ch);
    c.y = dalloc(n);
    c.r = random_normal(n, 1.0);
    bn_loss(&c);
    double *dx = filled(n, ACC_OFFSET), *dg = filled(ch, ACC_OFFSET), *db = filled(ch, ACC_OFFSET);
    ev_ref64_batchnorm_backward(c.x, c.s, c.gamma, c.saved, training, c.running_var, 1e-5, c.r, dx,
                                affine ? dg : NULL, affine ? db : NULL);
    subtract_offset(dx, n);
    subtract_offset(dg, ch);
    subtract_offset(db, ch);

    char name[96];
    const char *mode = training ? "train" : "eval";
    const char *aff = affine ? "affine" : "no affine";
    snprintf(name, sizeof name, "batchnorm %s %s dx", mode, aff);
    grad_check(name, bn_loss, &c, c.x, dx, n, NULL);
    if (affine) {
        snprintf(name, sizeof name, "batchnorm %s %s dgamma", mode, aff);
        grad_check(name, bn_loss, &c, c.gamma, dg, ch, NULL);
        snprintf(name, sizeof name, "batchnorm %s %s dbeta", mode, aff);
        grad_check(name, bn_loss, &c, c.beta, db, ch, NULL);
    }
}

static void test_bn_forward(void)
{
    const ev_shape s = shape(2, 3, 3, 5);
    const size_t n = ev_shape_numel(s), plane = 15, count = 30;
    double *x = random_normal(n, 1.5), *gamma = random_normal(3, 1.0),
           *beta = random_normal(3, 1.0);
    double rm[3] = {0.5, -0.25, 1.0}, rv[3] = {2.0, 0.5, 1.0};
    double saved[6], *y = dalloc(n);
    ev_ref64_batchnorm_forward(x, s, gamma, beta, rm, rv, true, 0.1, 1e-5, saved, y);

    double worst_stat = 0.0, worst_y = 0.0;
    for (int c = 0; c < 3; c++) {
        double sum = 0.0, sq = 0.0;
        for (int b = 0; b < 2; b++)
            for (size_t i = 0; i < plane; i++)
                sum += x[((size_t)b * 3 + c) * plane + i];
        const double mean = sum / count;
        for (int b = 0; b < 2; b++)
            for (size_t i = 0; i < plane; i++) {
                const double v = x[((size_t)b * 3 + c) * plane + i] - mean;
                sq += v * v;
            }
        const double biased = sq / count, unbiased = sq / (count - 1);
        const double want_rm = 0.9 * (double[]){0.5, -0.25, 1.0}[c] + 0.1 * mean;
        const double want_rv = 0.9 * (double[]){2.0, 0.5, 1.0}[c] + 0.1 * unbiased;
        const double invstd = 1.0 / sqrt(biased + 1e-5);
        worst_stat = fmax(worst_stat, fabs(rm[c] - want_rm));
        worst_stat = fmax(worst_stat, fabs(rv[c] - want_rv));
        worst_stat = fmax(worst_stat, fabs(saved[c] - mean));
        worst_stat = fmax(worst_stat, fabs(saved[3 + c] - invstd));
        for (int b = 0; b < 2; b++)
            for (size_t i = 0; i < plane; i++) {
                const size_t at = ((size_t)b * 3 + c) * plane + i;
                const double want = (x[at] - mean) * invstd * gamma[c] + beta[c];
                worst_y = fmax(worst_y, fabs(y[at] - want));
            }
    }
    check(worst_stat < 1e-12,
          "batchnorm train forward: running_mean/var = 0.9 old + 0.1 batch (unbiased var), "
          "saved = mean, 1/sqrt(biased var + 1e-5) (max err %.1e)",
          worst_stat);
    check(worst_y < 1e-12,
          "batchnorm train forward: y normalised with the biased variance "
          "(max err %.1e)",
          worst_y);

    /* eval: running statistics, which must stay untouched */
    const double rm0[3] = {rm[0], rm[1], rm[2]}, rv0[3] = {rv[0], rv[1], rv[2]};
    ev_ref64_batchnorm_forward(x, s, gamma, beta, rm, rv, false, 0.1, 1e-5, NULL, y);
    double worst_eval = 0.0;
    for (int c = 0; c < 3; c++)
        for (int b = 0; b < 2; b++)
            for (size_t i = 0; i < plane; i++) {
                const size_t at = ((size_t)b * 3 + c) * plane + i;
                const double want = (x[at] - rm0[c]) / sqrt(rv0[c] + 1e-5) * gamma[c] + beta[c];
                worst_eval = fmax(worst_eval, fabs(y[at] - want));
            }
    bool unchanged = memcmp(rm, rm0, sizeof rm) == 0 && memcmp(rv, rv0, sizeof rv) == 0;
    check(worst_eval < 1e-12 && unchanged,
          "batchnorm eval forward: uses running stats, leaves them unchanged (max err %.1e)",
          worst_eval);
}

/* ---- relu ---------------------------------------------------------------------------------- */

typedef struct relu_case {
    size_t n;
    double *x, *y, *r;
} relu_case;

static double relu_loss(void *p)
{
    relu_case *c = p;
    ev_ref64_relu_forward(c->x, c->n, c->y);
    return dot(c->y, c->r, c->n);
}

static void test_relu_grad(void)
{
    relu_case c = {.n = 2 * 3 * 7 * 9};
    c.x = random_normal(c.n, 1.0);
    c.x[0] = 0.0; /* the kink itself and a point next to it: skipped */
    c.x[1] = 5e-4;
    c.x[2] = -5e-4;
    c.y = dalloc(c.n);
    c.r = random_normal(c.n, 1.0);
    double *dx = filled(c.n, ACC_OFFSET);
    ev_ref64_relu_backward(c.x, c.n, c.r, dx);
    subtract_offset(dx, c.n);
    bool *skip = tracked_calloc(c.n, sizeof(bool));
    for (size_t i = 0; i < c.n; i++)
        skip[i] = fabs(c.x[i]) < KINK_MARGIN;
    grad_check("relu dx", relu_loss, &c, c.x, dx, c.n, skip);
    check(dx[0] == 0.0 && c.y[0] == 0.0, "relu at exactly 0: y = 0 and dx = 0");
}

/* ---- pools ---------------------------------------------------------------------------------- */

typedef struct pool_case {
    ev_shape xs, ys;
    int k, stride, pad;
    bool max;
    double *x, *y, *r;
} pool_case;

static double pool_loss(void *p)
{
    pool_case *c = p;
    if (c->max)
        ev_ref64_maxpool_forward(c->x, c->xs, c->k, c->stride, c->pad, c->y, c->ys);
    else
        ev_ref64_avgpool_forward(c->x, c->xs, c->k, c->stride, c->pad, c->y, c->ys);
    return dot(c->y, c->r, ev_shape_numel(c->ys));
}

/* Marks the cells within KINK_MARGIN of their window's maximum when more than one such cell
 * exists: there the max is (nearly) tied and the derivative is not defined. */
static void mark_pool_ties(const pool_case *c, bool *skip)
{
    const size_t plane = (size_t)c->xs.h * (size_t)c->xs.w;
    for (size_t nc = 0; nc < (size_t)c->xs.n * (size_t)c->xs.c; nc++)
        for (int oh = 0; oh < c->ys.h; oh++)
            for (int ow = 0; ow < c->ys.w; ow++) {
                double best = -INFINITY;
                int near = 0;
                for (int pass = 0; pass < 2; pass++)
                    for (int i = 0; i < c->k; i++)
                        for (int j = 0; j < c->k; j++) {
                            const int ih = oh * c->stride - c->pad + i;
                            const int iw = ow * c->stride - c->pad + j;
                            if (ih < 0 || iw < 0 || ih >= c->xs.h || iw >= c->xs.w)
                                continue;
                            const double v = c->x[nc * plane + (size_t)ih * c->xs.w + iw];
                            if (pass == 0)
                                best = fmax(best, v);
                            else if (best - v < KINK_MARGIN)
                                near++;
                        }
                if (near < 2)
                    continue;
                for (int i = 0; i < c->k; i++)
                    for (int j = 0; j < c->k; j++) {
                        const int ih = oh * c->stride - c->pad + i;
                        const int iw = ow * c->stride - c->pad + j;
                        if (ih < 0 || iw < 0 || ih >= c->xs.h || iw >= c->xs.w)
                            continue;
                        const size_t at = nc * plane + (size_t)ih * c->xs.w + iw;
                        if (best - c->x[at] < KINK_MARGIN)
                            skip[at] = true;
                    }
            }
}

static void test_pool_grad(bool max, int h, int w, int k, int stride, int pad)
{
    pool_case c = {.xs = shape(2, 3, h, w), .k = k, .stride = stride, .pad = pad, .max = max};
    c.ys = shape(2, 3, ev_conv2d_out_size(h, k, stride, pad, 1),
                 ev_conv2d_out_size(w, k, stride, pad, 1));
    const size_t nx = ev_shape_numel(c.xs), ny = ev_shape_numel(c.ys);
    c.x = random_normal(nx, 1.0);
    if (max) {
        /* a few planted near-ties, which must be skipped */
        c.x[1] = c.x[0] + 2e-4;
        c.x[nx - 1] = c.x[nx - 2];
    }
    c.y = dalloc(ny);
    c.r = random_normal(ny, 1.0);
    double *dx = filled(nx, ACC_OFFSET);
    if (max)
        ev_ref64_maxpool_backward(c.x, c.xs, k, stride, pad, c.r, c.ys, dx);
    else
        ev_ref64_avgpool_backward(c.xs, k, stride, pad, c.r, c.ys, dx);
    subtract_offset(dx, nx);
    bool *skip = tracked_calloc(nx, sizeof(bool));
    if (max)
        mark_pool_ties(&c, skip);
    char name[96];
    snprintf(name, sizeof name, "%s k%d s%d p%d on %dx%d dx", max ? "maxpool" : "avgpool", k,
             stride, pad, h, w);
    grad_check(name, pool_loss, &c, c.x, dx, nx, max ? skip : NULL);
}

static void test_pool_forward(void)
{
    /* avg pool 3x3 s1 p1 on 4x5: the corner output averages its 4 real cells, an edge output its
     * 6, an inner output its 9 (padding is not in the divisor) */
    const ev_shape xs = shape(1, 1, 4, 5);
    double *x = random_normal(20, 1.0), y[20];
    ev_ref64_avgpool_forward(x, xs, 3, 1, 1, y, xs);
    const double corner = (x[0] + x[1] + x[5] + x[6]) / 4.0;
    const double edge = (x[0] + x[1] + x[2] + x[5] + x[6] + x[7]) / 6.0;
    double inner = 0.0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            inner += x[i * 5 + j];
    inner /= 9.0;
    check(fabs(y[0] - corner) < 1e-14 && fabs(y[1] - edge) < 1e-14 && fabs(y[6] - inner) < 1e-14,
          "avgpool k3 s1 p1 forward: corner = mean of 4 real cells, edge = mean of 6, inner = "
          "mean of 9");
    /* the far corner of a strided pool on 5x5: window rows 3..5, cols 3..5, of which 2x2 real */
    double *x5 = random_normal(25, 1.0), y5[9];
    ev_ref64_avgpool_forward(x5, shape(1, 1, 5, 5), 3, 2, 1, y5, shape(1, 1, 3, 3));
    const double far = (x5[18] + x5[19] + x5[23] + x5[24]) / 4.0;
    const double side = (x5[8] + x5[9] + x5[13] + x5[14] + x5[18] + x5[19]) / 6.0;
    check(fabs(y5[8] - far) < 1e-14 && fabs(y5[5] - side) < 1e-14,
          "avgpool k3 s2 p1 forward on 5x5: far corner = mean of 4 cells, far edge = mean of 6");

    /* max pool on all-negative input: padding (-inf) never wins, the output is a real cell */
    const ev_shape ms = shape(1, 2, 5, 7);
    double *neg = dalloc(70);
    for (int i = 0; i < 70; i++)
        neg[i] = -5.0 - fabs((double)ev_rng_normal(&g_rng));
    const ev_shape mys = shape(1, 2, 3, 4);
    double my[24];
    ev_ref64_maxpool_forward(neg, ms, 3, 2, 1, my, mys);
    bool ok = true;
    for (int c = 0; c < 2; c++)
        for (int oh = 0; oh < 3; oh++)
            for (int ow = 0; ow < 4; ow++) {
                double best = -INFINITY;
                for (int ih = oh * 2 - 1; ih <= oh * 2 + 1; ih++)
                    for (int iw = ow * 2 - 1; iw <= ow * 2 + 1; iw++)
                        if (ih >= 0 && iw >= 0 && ih < 5 && iw < 7)
                            best = fmax(best, neg[c * 35 + ih * 7 + iw]);
                const double got = my[(c * 3 + oh) * 4 + ow];
                ok = ok && got == best && got < -5.0;
            }
    check(ok, "maxpool k3 s2 p1 on all-negative input: each output is its window's real max");

    /* ties: all-equal input routes each window's gradient to its first cell in scan order */
    double flat[20], dflat[20] = {0}, ones[20];
    for (int i = 0; i < 20; i++) {
        flat[i] = 1.0;
        ones[i] = 1.0;
    }
    ev_ref64_maxpool_backward(flat, xs, 3, 1, 1, ones, xs, dflat);
    /* window (oh, ow) starts at (max(oh-1,0), max(ow-1,0)) */
    double want[20] = {0};
    for (int oh = 0; oh < 4; oh++)
        for (int ow = 0; ow < 5; ow++)
            want[(oh > 0 ? oh - 1 : 0) * 5 + (ow > 0 ? ow - 1 : 0)] += 1.0;
    check(memcmp(dflat, want, sizeof want) == 0,
          "maxpool tie: gradient goes to the first maximum in row-major window order");
}

/* ---- crop, concat, gap ---------------------------------------------------------------------- */

typedef struct shape_case {
    ev_shape xs, ys;
    int crop;
    double *x[3];
    int channels[3];
    double *y, *r;
    int kind; /* 0 crop, 1 concat, 2 gap, 3 adaptive average pool, 4 conv bias */
} shape_case;

static double shape_loss(void *p)
{
    shape_case *c = p;
    if (c->kind == 0)
        ev_ref64_crop_forward(c->x[0], c->xs, c->crop, c->y);
    else if (c->kind == 1)
        ev_ref64_concat_forward((const double *const *)c->x, c->channels, 3, c->ys, c->y);
    else if (c->kind == 2)
        ev_ref64_gap_forward(c->x[0], c->xs, c->y);
    else if (c->kind == 3)
        ev_ref64_adaptive_avgpool_forward(c->x[0], c->xs, c->y, c->ys);
    else {
        memset(c->y, 0, ev_shape_numel(c->ys) * sizeof *c->y);
        ev_ref64_bias_forward(c->y, c->ys, c->x[0]);
    }
    return dot(c->y, c->r, ev_shape_numel(c->ys));
}

static void test_crop_concat_gap(void)
{
    /* crop x[:, :, 1:, 1:] */
    shape_case c = {.xs = shape(2, 3, 7, 9), .ys = shape(2, 3, 6, 8), .crop = 1, .kind = 0};
    size_t nx = ev_shape_numel(c.xs), ny = ev_shape_numel(c.ys);
    c.x[0] = random_normal(nx, 1.0);
    c.y = dalloc(ny);
    c.r = random_normal(ny, 1.0);
    double *dx = filled(nx, ACC_OFFSET);
    ev_ref64_crop_backward(c.xs, 1, c.r, dx);
    subtract_offset(dx, nx);
    grad_check("crop 1 on 2x3x7x9 dx", shape_loss, &c, c.x[0], dx, nx, NULL);
    check(c.y[0] == c.x[0][1 * 9 + 1] && c.y[ny - 1] == c.x[0][nx - 1],
          "crop forward: y[0,0,0,0] = x[0,0,1,1] and the last cells agree");

    /* concat of 2 + 3 + 1 channels */
    shape_case k = {.ys = shape(2, 6, 3, 5), .channels = {2, 3, 1}, .kind = 1};
    ny = ev_shape_numel(k.ys);
    k.y = dalloc(ny);
    k.r = random_normal(ny, 1.0);
    double *dxs[3];
    for (int i = 0; i < 3; i++) {
        const size_t n = (size_t)2 * k.channels[i] * 15;
        k.x[i] = random_normal(n, 1.0);
        dxs[i] = filled(n, ACC_OFFSET);
    }
    ev_ref64_concat_backward(k.r, k.ys, k.channels, 3, dxs);
    for (int i = 0; i < 3; i++) {
        const size_t n = (size_t)2 * k.channels[i] * 15;
        subtract_offset(dxs[i], n);
        char name[64];
        snprintf(name, sizeof name, "concat 2+3+1 channels dx[%d]", i);
        grad_check(name, shape_loss, &k, k.x[i], dxs[i], n, NULL);
    }
    /* sample 1, channel 2 of the output is sample 1, channel 0 of input 1 */
    check(k.y[(1 * 6 + 2) * 15 + 4] == k.x[1][(1 * 3 + 0) * 15 + 4],
          "concat forward: channel blocks land per sample in order");

    /* global average pool */
    shape_case g = {.xs = shape(2, 3, 7, 9), .ys = shape(2, 3, 1, 1), .kind = 2};
    nx = ev_shape_numel(g.xs);
    g.x[0] = random_normal(nx, 1.0);
    g.y = dalloc(6);
    g.r = random_normal(6, 1.0);
    dx = filled(nx, ACC_OFFSET);
    ev_ref64_gap_backward(g.xs, g.r, dx);
    subtract_offset(dx, nx);
    grad_check("global average pool 2x3x7x9 dx", shape_loss, &g, g.x[0], dx, nx, NULL);

    /* adaptive average pool (VGG's to 7x7): shrinking with overlapping windows (9 -> 7 wide),
     * growing (1 -> 7, 3 -> 7) */
    static const int sizes[3][2] = {{5, 9}, {1, 1}, {3, 2}};
    for (int t = 0; t < 3; t++) {
        shape_case a = {.xs = shape(2, 3, sizes[t][0], sizes[t][1]), .ys = shape(2, 3, 7, 7),
                        .kind = 3};
        nx = ev_shape_numel(a.xs);
        ny = ev_shape_numel(a.ys);
        a.x[0] = random_normal(nx, 1.0);
        a.y = dalloc(ny);
        a.r = random_normal(ny, 1.0);
        dx = filled(nx, ACC_OFFSET);
        ev_ref64_adaptive_avgpool_backward(a.xs, a.r, a.ys, dx);
        subtract_offset(dx, nx);
        char name[64];
        snprintf(name, sizeof name, "adaptive avg pool 2x3x%dx%d -> 7x7 dx", sizes[t][0],
                 sizes[t][1]);
        grad_check(name, shape_loss, &a, a.x[0], dx, nx, NULL);
        if (t == 0) {
            /* output (0, 1): row [0, 1), columns [1, 3) of 9 -> 7; output (1, 0): rows [0, 2)
             * of 5 -> 7, columns [0, 2) */
            const double *x0 = a.x[0];
            check(fabs(a.y[1] - (x0[1] + x0[2]) / 2) < 1e-12 &&
                      fabs(a.y[7] - (x0[0] + x0[1] + x0[9] + x0[10]) / 4) < 1e-12,
                  "adaptive avg pool forward: PyTorch's windows");
        }
        if (t == 1)
            check(a.y[0] == a.x[0][0] && a.y[48] == a.x[0][0],
                  "adaptive avg pool forward: a 1x1 map is replicated");
    }

    /* a convolution's bias: d loss / d b[c] = sum over n, h, w */
    shape_case b = {.ys = shape(2, 4, 3, 5), .kind = 4};
    ny = ev_shape_numel(b.ys);
    b.x[0] = random_normal(4, 1.0);
    b.y = dalloc(ny);
    b.r = random_normal(ny, 1.0);
    dx = filled(4, ACC_OFFSET);
    ev_ref64_bias_backward(b.r, b.ys, dx);
    subtract_offset(dx, 4);
    grad_check("conv bias 2x4x3x5 db", shape_loss, &b, b.x[0], dx, 4, NULL);
}

/* ---- linear ---------------------------------------------------------------------------------- */

typedef struct linear_case {
    int n, in, out;
    double *x, *w, *b, *y, *r;
} linear_case;

static double linear_loss(void *p)
{
    linear_case *c = p;
    ev_ref64_linear_forward(c->x, c->n, c->in, c->w, c->b, c->out, c->y);
    return dot(c->y, c->r, (size_t)c->n * c->out);
}

static void test_linear_grad(bool bias)
{
    linear_case c = {.n = 3, .in = 10, .out = 4};
    c.x = random_normal(30, 1.0);
    c.w = random_normal(40, 0.5);
    c.b = bias ? random_normal(4, 1.0) : NULL;
    c.y = dalloc(12);
    c.r = random_normal(12, 1.0);
    double *dx = filled(30, ACC_OFFSET), *dw = filled(40, ACC_OFFSET), *db = filled(4, ACC_OFFSET);
    ev_ref64_linear_backward(c.x, 3, 10, c.w, 4, c.r, dx, dw, bias ? db : NULL);
    subtract_offset(dx, 30);
    subtract_offset(dw, 40);
    subtract_offset(db, 4);
    grad_check(bias ? "linear 3x10->4 with bias dx" : "linear 3x10->4 no bias dx", linear_loss, &c,
               c.x, dx, 30, NULL);
    grad_check(bias ? "linear 3x10->4 with bias dw" : "linear 3x10->4 no bias dw", linear_loss, &c,
               c.w, dw, 40, NULL);
    if (bias)
        grad_check("linear 3x10->4 with bias db", linear_loss, &c, c.b, db, 4, NULL);
}

/* ---- cross entropy ----------------------------------------------------------------------------- */

typedef struct ce_case {
    int n, k;
    double *logits, scale;
    const int32_t *labels;
} ce_case;

static double ce_loss(void *p)
{
    ce_case *c = p;
    return c->scale * ev_ref64_cross_entropy_forward(c->logits, c->n, c->k, c->labels);
}

static void test_cross_entropy(void)
{
    /* hand case: rows [1 2 3] label 2 and [0 0 0] label 1 */
    const double logits[6] = {1, 2, 3, 0, 0, 0};
    const int32_t labels[2] = {2, 1};
    const double want = 0.5 * ((log(exp(1.0) + exp(2.0) + exp(3.0)) - 3.0) + log(3.0));
    const double got = ev_ref64_cross_entropy_forward(logits, 2, 3, labels);
    check(fabs(got - want) < 1e-14, "cross entropy forward hand case: %.12f == %.12f", got, want);
    const float logits_f[6] = {1, 2, 3, 0, 0, 0};
    const float got_f = ev_ref_cross_entropy_forward(logits_f, 2, 3, labels);
    check(fabs(got_f - want) < 1e-6, "cross entropy forward hand case (float): %.7f", got_f);
    /* large logits stay finite (log-sum-exp with the max subtracted) */
    const double big[3] = {1000, 0, -1000};
    const int32_t l0 = 0;
    const double small = ev_ref64_cross_entropy_forward(big, 1, 3, &l0);
    check(small >= 0 && small < 1e-300 + 1e-12, "cross entropy of logits +-1000 is finite (%g)",
          small);
    const int32_t bad = 3;
    check(isnan(ev_ref64_cross_entropy_forward(logits, 1, 3, &bad)),
          "cross entropy with a label out of range is NaN");

    static const int32_t fd_labels[4] = {0, 4, 2, 2};
    ce_case c = {.n = 4, .k = 5, .scale = 0.7, .labels = fd_labels};
    c.logits = random_normal(20, 2.0);
    double *dl = filled(20, ACC_OFFSET);
    ev_ref64_cross_entropy_backward(c.logits, 4, 5, fd_labels, 0.7, dl);
    subtract_offset(dl, 20);
    grad_check("cross entropy 4x5 scale 0.7 dlogits", ce_loss, &c, c.logits, dl, 20, NULL);
}

/* ---- drop path ------------------------------------------------------------------------------ */

typedef struct drop_case {
    ev_shape s;
    double *x, *mask, *y, *r;
} drop_case;

static double drop_loss(void *p)
{
    drop_case *c = p;
    ev_ref64_drop_path_forward(c->x, c->s, c->mask, c->y);
    return dot(c->y, c->r, ev_shape_numel(c->s));
}

static void test_drop_path(void)
{
    drop_case c = {.s = shape(3, 2, 5, 7)};
    const size_t n = ev_shape_numel(c.s);
    static double mask[3] = {0.0, 1.0 / 0.8, 1.0 / 0.8};
    c.mask = mask;
    c.x = random_normal(n, 1.0);
    c.y = dalloc(n);
    c.r = random_normal(n, 1.0);
    double *dx = filled(n, ACC_OFFSET);
    ev_ref64_drop_path_backward(c.s, c.mask, c.r, dx);
    subtract_offset(dx, n);
    grad_check("drop path mask [0, 1.25, 1.25] dx", drop_loss, &c, c.x, dx, n, NULL);
    bool ok = true;
    for (size_t i = 0; i < 70; i++)
        ok = ok && c.y[i] == 0.0 && dx[i] == 0.0;
    check(ok, "drop path: a dropped sample has zero output and zero gradient");
}

/* ---- float versions against double versions ---------------------------------------------- */

/* |a - b| <= 1e-5 * |b|, with a floor of 1e-5 * 1e-2 * max|b| for entries that cancel to ~0. */
static void compare_float(const char *what, const float *a, const double *b, size_t n)
{
    double max_abs = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        max_abs = fmax(max_abs, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        const double tol = FLOAT_REL_TOL * (fabs(b[i]) + 1e-2 * max_abs) + 1e-30;
        worst = fmax(worst, fabs((double)a[i] - b[i]) / tol);
    }
    check(worst <= 1.0 && max_abs > 0.0, "float == double %-42s worst diff/tol %.3f", what, worst);
}

static void test_float_vs_double(void)
{
    /* conv: grouped, strided, dilated, padded */
    {
        const ev_shape xs = shape(2, 6, 11, 9);
        const ev_conv_desc d = {3, 3, 2, 2, 2, 3};
        const int cout = 9;
        const ev_shape ys =
            shape(2, cout, ev_conv2d_out_size(11, 3, 2, 2, 2), ev_conv2d_out_size(9, 3, 2, 2, 2));
        const size_t nx = ev_shape_numel(xs), ny = ev_shape_numel(ys), nw = (size_t)cout * 2 * 9;
        double *x = random_normal(nx, 1.0), *w = random_normal(nw, 0.5), *dy = random_normal(ny, 1);
        double *y = dalloc(ny), *dx = dalloc(nx), *dw = dalloc(nw);
        float *yf = falloc(ny), *dxf = falloc(nx), *dwf = falloc(nw);
        float *xf = to_float(x, nx), *wf = to_float(w, nw), *dyf = to_float(dy, ny);
        ev_ref64_conv2d_forward(x, xs, w, cout, &d, y, ys);
        ev_ref_conv2d_forward(xf, xs, wf, cout, &d, yf, ys);
        ev_ref64_conv2d_backward(x, xs, w, cout, &d, dy, ys, dx, dw);
        ev_ref_conv2d_backward(xf, xs, wf, cout, &d, dyf, ys, dxf, dwf);
        compare_float("conv k3 s2 p2 d2 g3 y", yf, y, ny);
        compare_float("conv k3 s2 p2 d2 g3 dx", dxf, dx, nx);
        compare_float("conv k3 s2 p2 d2 g3 dw", dwf, dw, nw);
    }
    /* conv: a wide image that needs several accumulation tiles (5 x 700 > one tile) */
    {
        const ev_shape xs = shape(1, 2, 5, 700);
        const ev_conv_desc d = {3, 3, 1, 1, 1, 1};
        const ev_shape ys = shape(1, 3, 5, 700);
        const size_t nx = ev_shape_numel(xs), ny = ev_shape_numel(ys), nw = 3 * 2 * 9;
        double *x = random_normal(nx, 1.0), *w = random_normal(nw, 0.5), *dy = random_normal(ny, 1);
        double *y = dalloc(ny), *dx = dalloc(nx), *dw = dalloc(nw);
        float *yf = falloc(ny), *dxf = falloc(nx), *dwf = falloc(nw);
        float *xf = to_float(x, nx), *wf = to_float(w, nw), *dyf = to_float(dy, ny);
        ev_ref64_conv2d_forward(x, xs, w, 3, &d, y, ys);
        ev_ref_conv2d_forward(xf, xs, wf, 3, &d, yf, ys);
        ev_ref64_conv2d_backward(x, xs, w, 3, &d, dy, ys, dx, dw);
        ev_ref_conv2d_backward(xf, xs, wf, 3, &d, dyf, ys, dxf, dwf);
        compare_float("conv 5x700 (tiled) y", yf, y, ny);
        compare_float("conv 5x700 (tiled) dx", dxf, dx, nx);
        compare_float("conv 5x700 (tiled) dw", dwf, dw, nw);
        /* and the tiled result against a direct sum at a few points */
        double worst = 0.0;
        const int points[4][3] = {{0, 0, 0}, {1, 2, 350}, {2, 4, 699}, {0, 3, 511}};
        for (int p = 0; p < 4; p++) {
            const int oc = points[p][0], oh = points[p][1], ow = points[p][2];
            double s = 0.0;
            for (int ic = 0; ic < 2; ic++)
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        const int ih = oh - 1 + i, iw = ow - 1 + j;
                        if (ih >= 0 && iw >= 0 && ih < 5 && iw < 700)
                            s += w[((oc * 2 + ic) * 3 + i) * 3 + j] * x[(ic * 5 + ih) * 700 + iw];
                    }
            worst = fmax(worst, fabs(s - y[(oc * 5 + oh) * 700 + ow]));
        }
        check(worst < 1e-12, "conv 5x700 (tiled) equals a direct sum at 4 points (%.1e)", worst);
    }
    /* batch norm, training with running stats, then eval */
    {
        const ev_shape s = shape(4, 5, 6, 7);
        const size_t n = ev_shape_numel(s);
        double *x = random_normal(n, 3.0), *g = random_normal(5, 1.0), *b = random_normal(5, 1.0);
        double *dy = random_normal(n, 1.0), *rm = random_normal(5, 1.0), *rv = filled(5, 1.5);
        float *xf = to_float(x, n), *gf = to_float(g, 5), *bf = to_float(b, 5);
        float *dyf = to_float(dy, n), *rmf = to_float(rm, 5), *rvf = to_float(rv, 5);
        double *y = dalloc(n), *saved = dalloc(10), *dx = dalloc(n), *dg = dalloc(5);
        double *db = dalloc(5);
        float *yf = falloc(n), *savedf = falloc(10), *dxf = falloc(n), *dgf = falloc(5);
        float *dbf = falloc(5);
        ev_ref64_batchnorm_forward(x, s, g, b, rm, rv, true, 0.1, 1e-5, saved, y);
        ev_ref_batchnorm_forward(xf, s, gf, bf, rmf, rvf, true, 0.1f, 1e-5f, savedf, yf);
        ev_ref64_batchnorm_backward(x, s, g, saved, true, rv, 1e-5, dy, dx, dg, db);
        ev_ref_batchnorm_backward(xf, s, gf, savedf, true, rvf, 1e-5f, dyf, dxf, dgf, dbf);
        compare_float("batchnorm train y", yf, y, n);
        compare_float("batchnorm train saved mean, invstd", savedf, saved, 10);
        compare_float("batchnorm train running_mean", rmf, rm, 5);
        compare_float("batchnorm train running_var", rvf, rv, 5);
        compare_float("batchnorm train dx", dxf, dx, n);
        compare_float("batchnorm train dgamma", dgf, dg, 5);
        compare_float("batchnorm train dbeta", dbf, db, 5);
        ev_ref64_batchnorm_forward(x, s, g, b, rm, rv, false, 0.1, 1e-5, saved, y);
        ev_ref_batchnorm_forward(xf, s, gf, bf, rmf, rvf, false, 0.1f, 1e-5f, savedf, yf);
        compare_float("batchnorm eval y", yf, y, n);
    }
    /* element-wise, pools, shape ops, linear, loss */
    {
        const ev_shape xs = shape(2, 3, 9, 11);
        const size_t nx = ev_shape_numel(xs);
        double *x = random_normal(nx, 1.0), *dyx = random_normal(nx, 1.0);
        float *xf = to_float(x, nx), *dyxf = to_float(dyx, nx);
        double *y = dalloc(nx), *dx = dalloc(nx);
        float *yf = falloc(nx), *dxf = falloc(nx);
        ev_ref64_relu_forward(x, nx, y);
        ev_ref_relu_forward(xf, nx, yf);
        ev_ref64_relu_backward(x, nx, dyx, dx);
        ev_ref_relu_backward(xf, nx, dyxf, dxf);
        compare_float("relu y", yf, y, nx);
        compare_float("relu dx", dxf, dx, nx);

        for (int max = 0; max < 2; max++) {
            const int k = max ? 3 : 5, st = max ? 2 : 3, pad = max ? 1 : 0;
            const ev_shape ys = shape(2, 3, ev_conv2d_out_size(9, k, st, pad, 1),
                                      ev_conv2d_out_size(11, k, st, pad, 1));
            const size_t ny = ev_shape_numel(ys);
            double *py = dalloc(ny), *pdy = random_normal(ny, 1.0), *pdx = dalloc(nx);
            float *pyf = falloc(ny), *pdyf = to_float(pdy, ny), *pdxf = falloc(nx);
            if (max) {
                ev_ref64_maxpool_forward(x, xs, k, st, pad, py, ys);
                ev_ref_maxpool_forward(xf, xs, k, st, pad, pyf, ys);
                ev_ref64_maxpool_backward(x, xs, k, st, pad, pdy, ys, pdx);
                ev_ref_maxpool_backward(xf, xs, k, st, pad, pdyf, ys, pdxf);
            } else {
                ev_ref64_avgpool_forward(x, xs, k, st, pad, py, ys);
                ev_ref_avgpool_forward(xf, xs, k, st, pad, pyf, ys);
                ev_ref64_avgpool_backward(xs, k, st, pad, pdy, ys, pdx);
                ev_ref_avgpool_backward(xs, k, st, pad, pdyf, ys, pdxf);
            }
            compare_float(max ? "maxpool k3 s2 p1 y" : "avgpool k5 s3 p0 y", pyf, py, ny);
            compare_float(max ? "maxpool k3 s2 p1 dx" : "avgpool k5 s3 p0 dx", pdxf, pdx, nx);
        }

        const ev_shape cs = shape(2, 3, 8, 10);
        const size_t nc = ev_shape_numel(cs);
        double *cy = dalloc(nc), *cdy = random_normal(nc, 1.0), *cdx = dalloc(nx);
        float *cyf = falloc(nc), *cdyf = to_float(cdy, nc), *cdxf = falloc(nx);
        ev_ref64_crop_forward(x, xs, 1, cy);
        ev_ref_crop_forward(xf, xs, 1, cyf);
        ev_ref64_crop_backward(xs, 1, cdy, cdx);
        ev_ref_crop_backward(xs, 1, cdyf, cdxf);
        compare_float("crop y", cyf, cy, nc);
        compare_float("crop dx", cdxf, cdx, nx);

        const double *parts[2] = {x, dyx};
        const float *parts_f[2] = {xf, dyxf};
        const int channels[2] = {3, 3};
        const ev_shape ks = shape(2, 6, 9, 11);
        double *ky = dalloc(2 * nx), *kdy = random_normal(2 * nx, 1.0);
        float *kyf = falloc(2 * nx), *kdyf = to_float(kdy, 2 * nx);
        double *kd0 = dalloc(nx), *kd1 = dalloc(nx);
        float *kd0f = falloc(nx), *kd1f = falloc(nx);
        double *const kdx[2] = {kd0, kd1};
        float *const kdxf[2] = {kd0f, kd1f};
        ev_ref64_concat_forward(parts, channels, 2, ks, ky);
        ev_ref_concat_forward(parts_f, channels, 2, ks, kyf);
        ev_ref64_concat_backward(kdy, ks, channels, 2, kdx);
        ev_ref_concat_backward(kdyf, ks, channels, 2, kdxf);
        compare_float("concat y", kyf, ky, 2 * nx);
        compare_float("concat dx[1]", kd1f, kd1, nx);

        double gy[6], gdx_seed[6];
        float gyf[6], gdyf[6];
        for (int i = 0; i < 6; i++) {
            gdx_seed[i] = (double)ev_rng_normal(&g_rng);
            gdyf[i] = (float)gdx_seed[i];
        }
        double *gdx = dalloc(nx);
        float *gdxf = falloc(nx);
        ev_ref64_gap_forward(x, xs, gy);
        ev_ref_gap_forward(xf, xs, gyf);
        ev_ref64_gap_backward(xs, gdx_seed, gdx);
        ev_ref_gap_backward(xs, gdyf, gdxf);
        compare_float("global average pool y", gyf, gy, 6);
        compare_float("global average pool dx", gdxf, gdx, nx);

        static const double mask[2] = {1.0 / 0.7, 0.0};
        static const float mask_f[2] = {(float)(1.0 / 0.7), 0.0f};
        double *dpy = dalloc(nx), *dpdx = dalloc(nx);
        float *dpyf = falloc(nx), *dpdxf = falloc(nx);
        ev_ref64_drop_path_forward(x, xs, mask, dpy);
        ev_ref_drop_path_forward(xf, xs, mask_f, dpyf);
        ev_ref64_drop_path_backward(xs, mask, dyx, dpdx);
        ev_ref_drop_path_backward(xs, mask_f, dyxf, dpdxf);
        compare_float("drop path y", dpyf, dpy, nx);
        compare_float("drop path dx", dpdxf, dpdx, nx);
    }
    {
        const int n = 4, in = 64, out = 14;
        double *x = random_normal((size_t)n * in, 1.0), *w = random_normal((size_t)out * in, 0.2);
        double *b = random_normal(out, 1.0), *dy = random_normal((size_t)n * out, 1.0);
        float *xf = to_float(x, (size_t)n * in), *wf = to_float(w, (size_t)out * in);
        float *bf = to_float(b, out), *dyf = to_float(dy, (size_t)n * out);
        double *y = dalloc((size_t)n * out), *dx = dalloc((size_t)n * in);
        double *dw = dalloc((size_t)out * in), *db = dalloc(out);
        float *yf = falloc((size_t)n * out), *dxf = falloc((size_t)n * in);
        float *dwf = falloc((size_t)out * in), *dbf = falloc(out);
        ev_ref64_linear_forward(x, n, in, w, b, out, y);
        ev_ref_linear_forward(xf, n, in, wf, bf, out, yf);
        ev_ref64_linear_backward(x, n, in, w, out, dy, dx, dw, db);
        ev_ref_linear_backward(xf, n, in, wf, out, dyf, dxf, dwf, dbf);
        compare_float("linear y", yf, y, (size_t)n * out);
        compare_float("linear dx", dxf, dx, (size_t)n * in);
        compare_float("linear dw", dwf, dw, (size_t)out * in);
        compare_float("linear db", dbf, db, out);

        /* the loss on the rounded float logits, so both versions see the same values */
        static const int32_t labels[4] = {3, 0, 13, 7};
        float *yf_exact = to_float(y, (size_t)n * out);
        double *y_rounded = dalloc((size_t)n * out);
        for (int i = 0; i < n * out; i++)
            y_rounded[i] = (double)yf_exact[i];
        const double loss = ev_ref64_cross_entropy_forward(y_rounded, n, out, labels);
        const float loss_f = ev_ref_cross_entropy_forward(yf_exact, n, out, labels);
        compare_float("cross entropy value", &loss_f, &loss, 1);
        double *dl = dalloc((size_t)n * out);
        float *dlf = falloc((size_t)n * out);
        ev_ref64_cross_entropy_backward(y_rounded, n, out, labels, 0.4, dl);
        ev_ref_cross_entropy_backward(yf_exact, n, out, labels, 0.4f, dlf);
        compare_float("cross entropy dlogits", dlf, dl, (size_t)n * out);
    }
}

int main(void)
{
    test_out_size();
    test_conv_forward_hand();

    /* conv2d: dense, grouped, depthwise; strides 1 and 2; padding; dilation 2; kernels 1/3/5;
     * odd spatial sizes */
    test_conv_grad(2, 3, 7, 9, 4, 3, 1, 1, 1, 1, 1);
    test_conv_grad(2, 3, 7, 9, 4, 3, 2, 1, 1, 1, 1);
    test_conv_grad(2, 3, 7, 9, 4, 3, 2, 0, 1, 1, 1);
    test_conv_grad(2, 3, 7, 9, 4, 1, 1, 0, 1, 1, 1);
    test_conv_grad(2, 4, 7, 9, 4, 1, 2, 0, 1, 1, 1);
    test_conv_grad(1, 3, 7, 9, 2, 5, 1, 2, 1, 1, 1);
    test_conv_grad(1, 2, 9, 7, 3, 3, 2, 2, 2, 1, 1);
    test_conv_grad(2, 4, 7, 9, 6, 3, 1, 1, 1, 2, 1);
    test_conv_grad(2, 6, 7, 9, 3, 1, 2, 0, 1, 3, 1);
    test_conv_grad(2, 4, 7, 9, 4, 3, 1, 1, 1, 4, 1);
    test_conv_grad(2, 4, 7, 9, 4, 3, 2, 1, 1, 4, 1);
    test_conv_grad(2, 3, 7, 9, 3, 5, 1, 2, 1, 3, 1);
    test_conv_grad(2, 3, 7, 9, 3, 5, 2, 2, 1, 3, 1);
    test_conv_grad(2, 3, 7, 9, 3, 3, 1, 2, 2, 3, 1);
    test_conv_grad(2, 3, 7, 9, 3, 3, 2, 2, 2, 3, 1);
    test_conv_grad(2, 3, 11, 9, 3, 5, 1, 4, 2, 3, 1);
    test_conv_grad(1, 3, 11, 9, 3, 5, 2, 4, 2, 3, 1);
    /* several accumulation tiles: rows (5 x 700) and columns (3 x 2100) */
    test_conv_grad(1, 2, 5, 700, 3, 3, 1, 1, 1, 1, 29);
    test_conv_grad(1, 2, 7, 701, 2, 3, 2, 1, 1, 1, 31);
    test_conv_grad(1, 1, 3, 2100, 2, 3, 1, 1, 1, 1, 37);
    test_conv_grad(1, 2, 3, 2100, 2, 5, 1, 4, 2, 2, 37);

    test_bn_forward();
    test_bn_grad(true, true);
    test_bn_grad(true, false);
    test_bn_grad(false, true);
    test_bn_grad(false, false);

    test_relu_grad();

    test_pool_forward();
    for (int max = 0; max < 2; max++) {
        test_pool_grad(max, 7, 9, 3, 1, 1);
        test_pool_grad(max, 7, 9, 3, 2, 1);
        test_pool_grad(max, 8, 8, 3, 2, 1);
        test_pool_grad(max, 7, 9, 5, 3, 0);
        test_pool_grad(max, 8, 11, 5, 3, 0);
    }

    test_crop_concat_gap();
    test_linear_grad(true);
    test_linear_grad(false);
    test_cross_entropy();
    test_drop_path();

    test_float_vs_double();

    free_all();
    printf("%d checks, %d failed\n", g_checks, g_failures);
    return g_failures ? 1 : 0;
}
