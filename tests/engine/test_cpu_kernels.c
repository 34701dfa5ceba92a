/* test_cpu_kernels.c: every fused kernel of the cpu backend, on every instruction set this
 * machine has (generic, AVX2+FMA, AVX-512), against the double-precision reference ops within
 * 1e-5 relative: pointwise conv (ReLU on load, folded BN, stride 2 with the FactorizedReduce
 * offset, accumulate), depthwise+pointwise (k 3/5, stride 1/2, dilation 1/2), max/avg pool
 * (padding never wins / not counted; 1..3 destinations, each writing or adding; ReLU on load),
 * the stem (1..3 input channels), the dense conv (im2col tiles through the pointwise GEMM: k
 * 1/3/5/7, stride 1/2, padding, dilation 1/2, ReLU on load, folded BN, accumulate, K past one
 * chunk, tiles that start and end inside rows), the per-channel affine, copy (ReLU) and zero. Shapes are random with odd sizes (7x9, 13x11, ...) and, for
 * the kernels with multi-pixel interior blocks, wide rows (5x41, 3x64, ...) cut into odd row
 * tiles, so blocks, leftovers and borders all run; channel counts are not multiples of the
 * vector width; tensors are channel slices of wider buffers (pixel stride > channels) so stores
 * must not touch the neighbours.
 */
#include "cpu/cpu_internal.h"
#include "ops_ref.h"
#include "test_util.h"

#include <stdlib.h>

static uint64_t rng = 12345;

static double urand(void) { return 2.0 * ev_rng_uniform(&rng) - 1.0; }
static int irand(int lo, int hi) { return lo + (int)(ev_rng_uniform(&rng) * (hi - lo + 1)); }

static const int sizes[][2] = {{7, 9}, {13, 11}, {8, 8}, {5, 3}, {1, 1}, {16, 12}, {9, 17}};
#define NUM_SIZES (int)(sizeof sizes / sizeof sizes[0])
/* wide rows for the depthwise kernels' multi-pixel interior blocks (and their leftovers) */
static const int wide_sizes[][2] = {{5, 41}, {6, 30}, {3, 64}, {7, 53}, {4, 37}};
#define NUM_WIDE_SIZES (int)(sizeof wide_sizes / sizeof wide_sizes[0])

/* an NHWC float buffer holding a c-channel slice at channel offset `off` of `ld` channels, with
 * the neighbours and the slack filled with a sentinel */
typedef struct slice {
    float *mem;
    int h, w, c, ld, off;
} slice;

#define SENTINEL 1234.5f

static slice slice_new(int h, int w, int c)
{
    slice s = {NULL, h, w, c, c + irand(0, 5), 0};
    s.off = irand(0, s.ld - c);
    size_t n = (size_t)h * w * s.ld + EV_CPU_SLACK_FLOATS;
    s.mem = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        s.mem[i] = SENTINEL;
    return s;
}

static float *at(const slice *s, int y, int x, int c)
{
    return s->mem + ((size_t)y * s->w + x) * s->ld + s->off + c;
}

/* NCHW double -> slice */
static void slice_fill(slice *s, const double *x)
{
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < s->h; y++)
            for (int xx = 0; xx < s->w; xx++)
                *at(s, y, xx, c) = (float)x[((size_t)c * s->h + y) * s->w + xx];
}

/* max |got - want| / max |want|, and whether every float outside the slice kept its sentinel */
static double slice_error(const slice *s, const double *want, int *clobbered)
{
    double diff = 0, scale = 0;
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < s->h; y++)
            for (int x = 0; x < s->w; x++) {
                double w = want[((size_t)c * s->h + y) * s->w + x];
                double d = fabs((double)*at(s, y, x, c) - w);
                if (d > diff || d != d)
                    diff = d;
                if (fabs(w) > scale)
                    scale = fabs(w);
            }
    *clobbered = 0;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            for (int c = 0; c < s->ld; c++)
                if ((c < s->off || c >= s->off + s->c) &&
                    s->mem[((size_t)y * s->w + x) * s->ld + c] != SENTINEL)
                    (*clobbered)++;
    return scale > 0 ? diff / scale : diff;
}

static double *drand_array(size_t n)
{
    double *a = malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = urand();
    return a;
}

static float *to_float(const double *a, size_t n)
{
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)a[i];
    return f;
}

/* y = scale * conv + shift (+ prior), per channel, NCHW */
static void affine(double *y, int c, int hw, const double *scale, const double *shift,
                   const double *prior)
{
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < hw; i++) {
            size_t j = (size_t)ch * hw + i;
            y[j] = y[j] * scale[ch] + shift[ch] + (prior ? prior[j] : 0.0);
        }
}

static void rectify(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0 ? x[i] : 0;
}

/* the rounded weights the kernels see, back in double, so only accumulation error remains */
static double *rounded(const double *a, size_t n)
{
    double *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; i++)
        r[i] = (double)(float)a[i];
    return r;
}

static void test_pointwise(const ev_cpu_kernels *k, int trial)
{
    const int *hw = sizes[trial % NUM_SIZES];
    int stride = trial % 3 == 2 ? 2 : 1, offset = stride == 2 ? trial % 2 : 0;
    int h = hw[0], w = hw[1];
    if (stride == 2) { /* FactorizedReduce sizes are even */
        h += h % 2;
        w += w % 2;
    }
    int cin = irand(1, 70), cout = irand(1, 70), relu = trial % 2, acc = (trial / 2) % 2;
    int ch = h - offset, cw = w - offset; /* cropped input */
    int oh = (ch - 1) / stride + 1, ow = (cw - 1) / stride + 1;
    double *x = drand_array((size_t)cin * h * w), *wt = drand_array((size_t)cin * cout);
    double *scale = drand_array((size_t)cout), *shift = drand_array((size_t)cout);
    double *prior = drand_array((size_t)cout * oh * ow);
    float *wf = to_float(wt, (size_t)cin * cout);
    double *wr = rounded(wt, (size_t)cin * cout);
    /* reference: relu, crop, 1x1 conv stride s, BN affine, + prior */
    double *xr = malloc((size_t)cin * ch * cw * sizeof *xr);
    for (int c = 0; c < cin; c++)
        for (int y = 0; y < ch; y++)
            for (int xx = 0; xx < cw; xx++)
                xr[((size_t)c * ch + y) * cw + xx] =
                    (double)(float)x[((size_t)c * h + y + offset) * w + xx + offset];
    if (relu)
        rectify(xr, (size_t)cin * ch * cw);
    double *want = calloc((size_t)cout * oh * ow, sizeof *want);
    ev_conv_desc d = {1, 1, stride, 0, 1, 1};
    /* the kernel folds scale into float weights: compare against that rounding too */
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++)
            wr[(size_t)co * cin + ci] = (double)(float)(wr[(size_t)co * cin + ci] * scale[co]);
    ev_ref64_conv2d_forward(xr, (ev_shape){1, cin, ch, cw}, wr, cout, &d, want,
                            (ev_shape){1, cout, oh, ow});
    double ones[80];
    for (int i = 0; i < 80; i++)
        ones[i] = 1.0;
    double *shift_r = rounded(shift, (size_t)cout);
    affine(want, cout, oh * ow, ones, shift_r, acc ? prior : NULL);

    slice xs = slice_new(h, w, cin), ys = slice_new(oh, ow, cout);
    slice_fill(&xs, x);
    if (acc)
        slice_fill(&ys, prior);
    float *packed = malloc(ev_cpu_pw_size(cin, cout, k->vl) * sizeof(float) + 64);
    ev_cpu_pw pw;
    ev_cpu_pw_pack(&pw, wf, cin, cout, scale, shift, k->vl, packed);
    for (int oy = 0; oy < oh; oy++) {
        int iy = oy * stride + offset;
        k->pointwise(at(&xs, iy, offset, 0), (ptrdiff_t)stride * xs.ld, ow, relu, &pw,
                     at(&ys, oy, 0, 0), ys.ld, acc);
    }
    int clobbered;
    double e = slice_error(&ys, want, &clobbered);
    CHECK(e <= 1e-5 && !clobbered,
          "%s pointwise %dx%d cin %d cout %d stride %d offset %d relu %d acc %d: rel error "
          "%.2e, %d neighbours touched",
          k->name, h, w, cin, cout, stride, offset, relu, acc, e, clobbered);
    free(x), free(wt), free(scale), free(shift), free(prior), free(wf), free(wr), free(xr);
    free(want), free(shift_r), free(xs.mem), free(ys.mem), free(packed);
}

/* trials 0..23: small images, row tiles of 5 pixels; 24..47: wide rows, tiles of a whole row,
 * 16 or 13 pixels */
static void test_separable(const ev_cpu_kernels *k, int trial)
{
    const int wide = trial >= 24;
    const int *hw = wide ? wide_sizes[trial % NUM_WIDE_SIZES] : sizes[trial % NUM_SIZES];
    int h = hw[0], w = hw[1];
    int kk = trial % 2 ? 5 : 3, dil = (trial / 2) % 2 ? 2 : 1, stride = (trial / 4) % 2 ? 2 : 1;
    int pad = dil * (kk - 1) / 2, c = irand(1, 70), cout = irand(1, 70);
    int relu = (trial / 8) % 2 == 0, acc = (trial / 3) % 2;
    int oh = ev_conv2d_out_size(h, kk, stride, pad, dil),
        ow = ev_conv2d_out_size(w, kk, stride, pad, dil);
    double *x = drand_array((size_t)c * h * w), *wd = drand_array((size_t)c * kk * kk);
    double *wp = drand_array((size_t)c * cout), *scale = drand_array((size_t)cout);
    double *shift = drand_array((size_t)cout), *prior = drand_array((size_t)cout * oh * ow);
    float *wdf = to_float(wd, (size_t)c * kk * kk), *wpf = to_float(wp, (size_t)c * cout);
    double *xr = rounded(x, (size_t)c * h * w), *wdr = rounded(wd, (size_t)c * kk * kk);
    double *wpr = malloc((size_t)c * cout * sizeof *wpr);
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < c; ci++)
            wpr[(size_t)co * c + ci] =
                (double)(float)((double)wpf[(size_t)co * c + ci] * scale[co]);
    if (relu)
        rectify(xr, (size_t)c * h * w);
    double *mid = calloc((size_t)c * oh * ow, sizeof *mid);
    double *want = calloc((size_t)cout * oh * ow, sizeof *want);
    ev_conv_desc dd = {kk, kk, stride, pad, dil, c}, pd = {1, 1, 1, 0, 1, 1};
    ev_ref64_conv2d_forward(xr, (ev_shape){1, c, h, w}, wdr, c, &dd, mid, (ev_shape){1, c, oh, ow});
    ev_ref64_conv2d_forward(mid, (ev_shape){1, c, oh, ow}, wpr, cout, &pd, want,
                            (ev_shape){1, cout, oh, ow});
    double ones[80];
    for (int i = 0; i < 80; i++)
        ones[i] = 1.0;
    double *shift_r = rounded(shift, (size_t)cout);
    affine(want, cout, oh * ow, ones, shift_r, acc ? prior : NULL);

    slice xs = slice_new(h, w, c), ys = slice_new(oh, ow, cout);
    slice_fill(&xs, x);
    if (acc)
        slice_fill(&ys, prior);
    float *pdw = malloc(ev_cpu_dw_size(c, kk, k->vl) * sizeof(float));
    float *ppw = malloc(ev_cpu_pw_size(c, cout, k->vl) * sizeof(float));
    ev_cpu_dw dw;
    ev_cpu_pw pw;
    ev_cpu_dw_pack(&dw, wdf, c, kk, stride, pad, dil, k->vl, pdw);
    ev_cpu_pw_pack(&pw, wpf, c, cout, scale, shift, k->vl, ppw);
    /* odd tiles: rows split into several pieces */
    const int tile = !wide ? 5 : trial % 3 == 0 ? ow : trial % 3 == 1 ? 16 : 13;
    float *scratch = malloc(((size_t)tile * dw.cpad + EV_CPU_SLACK_FLOATS) * sizeof(float));
    ev_cpu_image img = {at(&xs, 0, 0, 0), h, w, c, xs.ld};
    for (int oy = 0; oy < oh; oy++)
        for (int x0 = 0; x0 < ow; x0 += tile) {
            int n = ow - x0 < tile ? ow - x0 : tile;
            k->depthwise_row(&img, relu, &dw, oy, x0, n, scratch, dw.cpad);
            k->pointwise(scratch, dw.cpad, n, 0, &pw, at(&ys, oy, x0, 0), ys.ld, acc);
        }
    int clobbered;
    double e = slice_error(&ys, want, &clobbered);
    CHECK(e <= 1e-5 && !clobbered,
          "%s depthwise %dx%d + pointwise %dx%d c %d cout %d k %d stride %d dilation %d "
          "relu %d acc %d: rel error %.2e, %d neighbours touched",
          k->name, kk, kk, h, w, c, cout, kk, stride, dil, relu, acc, e, clobbered);
    free(x), free(wd), free(wp), free(scale), free(shift), free(prior), free(wdf), free(wpf);
    free(xr), free(wdr), free(wpr), free(mid), free(want), free(shift_r), free(xs.mem);
    free(ys.mem), free(pdw), free(ppw), free(scratch);
}

/* trials 24..47: wide rows (the multi-pixel interior blocks) */
static void test_pool(const ev_cpu_kernels *k, int trial)
{
    const int *hw = trial >= 24 ? wide_sizes[trial % NUM_WIDE_SIZES] : sizes[trial % NUM_SIZES];
    int h = hw[0], w = hw[1], avg = trial % 2, stride = (trial / 2) % 2 ? 2 : 1;
    int acc = (trial / 4) % 2, c = irand(1, 70), relu = (trial / 8) % 2;
    int oh = ev_conv2d_out_size(h, 3, stride, 1, 1), ow = ev_conv2d_out_size(w, 3, stride, 1, 1);
    double *x = drand_array((size_t)c * h * w), *prior = drand_array((size_t)c * oh * ow);
    /* all-negative inputs: a max pool that let the zero padding win would be caught */
    for (size_t i = 0; i < (size_t)c * h * w; i++)
        x[i] = relu ? x[i] : -fabs(x[i]) - 0.01;
    double *xr = rounded(x, (size_t)c * h * w);
    if (relu)
        rectify(xr, (size_t)c * h * w);
    double *want = calloc((size_t)c * oh * ow, sizeof *want);
    if (avg)
        ev_ref64_avgpool_forward(xr, (ev_shape){1, c, h, w}, 3, stride, 1, want,
                                 (ev_shape){1, c, oh, ow});
    else
        ev_ref64_maxpool_forward(xr, (ev_shape){1, c, h, w}, 3, stride, 1, want,
                                 (ev_shape){1, c, oh, ow});
    /* 1..3 destinations (one computation summed into several nodes), the first one adding
     * when acc, the others alternating */
    const int ndst = 1 + trial % 3;
    double *want_acc = malloc((size_t)c * oh * ow * sizeof *want_acc);
    for (size_t i = 0; i < (size_t)c * oh * ow; i++)
        want_acc[i] = want[i] + (double)(float)prior[i];
    slice xs = slice_new(h, w, c), ys[3];
    int dacc[3];
    slice_fill(&xs, x);
    for (int d = 0; d < ndst; d++) {
        ys[d] = slice_new(oh, ow, c);
        dacc[d] = d == 0 ? acc : (acc + d) % 2;
        if (dacc[d])
            slice_fill(&ys[d], prior);
    }
    ev_cpu_image img = {at(&xs, 0, 0, 0), h, w, c, xs.ld};
    for (int oy = 0; oy < oh; oy++) {
        ev_cpu_dest dst[3];
        for (int d = 0; d < ndst; d++)
            dst[d] = (ev_cpu_dest){at(&ys[d], oy, 0, 0), ys[d].ld, dacc[d]};
        k->pool_row(&img, avg, relu, 3, stride, 1, oy, 0, ow, dst, ndst);
    }
    for (int d = 0; d < ndst; d++) {
        int clobbered;
        double e = slice_error(&ys[d], dacc[d] ? want_acc : want, &clobbered);
        CHECK(e <= 1e-5 && !clobbered,
              "%s %s pool 3x3 %dx%d c %d stride %d relu %d destination %d of %d acc %d: rel "
              "error %.2e",
              k->name, avg ? "avg" : "max", h, w, c, stride, relu, d + 1, ndst, dacc[d], e);
        free(ys[d].mem);
    }
    free(x), free(prior), free(xr), free(want), free(want_acc), free(xs.mem);
}

/* trials 24..47: wide rows (the multi-pixel interior tiles) */
static void test_stem(const ev_cpu_kernels *k, int trial)
{
    const int *hw = trial >= 24 ? wide_sizes[trial % NUM_WIDE_SIZES] : sizes[trial % NUM_SIZES];
    int h = hw[0], w = hw[1], cin = 1 + trial % 3, cout = irand(1, 120);
    int kk = trial % 4 == 3 ? 5 : 3, pad = kk / 2, stride = trial % 5 == 4 ? 2 : 1;
    int oh = ev_conv2d_out_size(h, kk, stride, pad, 1),
        ow = ev_conv2d_out_size(w, kk, stride, pad, 1);
    size_t nw = (size_t)cout * cin * kk * kk;
    double *x = drand_array((size_t)cin * h * w), *wt = drand_array(nw);
    double *scale = drand_array((size_t)cout), *shift = drand_array((size_t)cout);
    float *xf = to_float(x, (size_t)cin * h * w), *wf = to_float(wt, nw);
    double *xr = rounded(x, (size_t)cin * h * w), *wr = malloc(nw * sizeof *wr);
    for (size_t i = 0; i < nw; i++)
        wr[i] = (double)(float)((double)wf[i] * scale[i / ((size_t)cin * kk * kk)]);
    double *want = calloc((size_t)cout * oh * ow, sizeof *want);
    ev_conv_desc d = {kk, kk, stride, pad, 1, 1};
    ev_ref64_conv2d_forward(xr, (ev_shape){1, cin, h, w}, wr, cout, &d, want,
                            (ev_shape){1, cout, oh, ow});
    double ones[128];
    for (int i = 0; i < 128; i++)
        ones[i] = 1.0;
    double *shift_r = rounded(shift, (size_t)cout);
    affine(want, cout, oh * ow, ones, shift_r, NULL);
    slice ys = slice_new(oh, ow, cout);
    float *packed = malloc(ev_cpu_stem_size(cin, cout, kk, k->vl) * sizeof(float));
    ev_cpu_stem st;
    ev_cpu_stem_pack(&st, wf, cin, cout, kk, stride, pad, scale, shift, k->vl, packed);
    for (int oy = 0; oy < oh; oy++)
        k->stem_row(xf, h, w, &st, oy, 0, ow, at(&ys, oy, 0, 0), ys.ld);
    int clobbered;
    double e = slice_error(&ys, want, &clobbered);
    CHECK(e <= 1e-5 && !clobbered, "%s stem %dx%d cin %d cout %d k %d stride %d: rel error %.2e",
          k->name, h, w, cin, cout, kk, stride, e);
    free(x), free(wt), free(scale), free(shift), free(xf), free(wf), free(xr), free(wr);
    free(want), free(shift_r), free(ys.mem), free(packed);
}

static void test_copy_zero(const ev_cpu_kernels *k, int trial)
{
    const int *hw = sizes[trial % NUM_SIZES];
    int h = hw[0], w = hw[1], c = irand(1, 70), acc = trial % 2, relu = (trial / 2) % 2;
    size_t n = (size_t)c * h * w;
    double *x = drand_array(n), *prior = drand_array(n), *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) {
        const double v = (double)(float)x[i];
        want[i] = (relu && v < 0 ? 0.0 : v) + (acc ? (double)(float)prior[i] : 0.0);
    }
    slice xs = slice_new(h, w, c), ys = slice_new(h, w, c);
    slice_fill(&xs, x);
    slice_fill(&ys, prior);
    for (int y = 0; y < h; y++)
        k->copy(at(&xs, y, 0, 0), xs.ld, w, c, at(&ys, y, 0, 0), ys.ld, acc, relu);
    int clobbered;
    double e = slice_error(&ys, want, &clobbered);
    CHECK(e <= 1e-6 && !clobbered, "%s copy %dx%d c %d acc %d relu %d: rel error %.2e", k->name, h,
          w, c, acc, relu, e);
    k->zero(at(&ys, 0, 0, 0), ys.ld, h * w, c);
    memset(want, 0, n * sizeof *want);
    e = slice_error(&ys, want, &clobbered);
    CHECK(e == 0 && !clobbered, "%s zero %dx%d c %d", k->name, h, w, c);
    free(x), free(prior), free(want), free(xs.mem), free(ys.mem);
}

/* y = x * scale + shift per channel: a batch norm no conv absorbs */
static void test_affine(const ev_cpu_kernels *k, int trial)
{
    const int *hw = sizes[trial % NUM_SIZES];
    int h = hw[0], w = hw[1], c = irand(1, 90);
    size_t n = (size_t)c * h * w;
    double *x = drand_array(n), *want = malloc(n * sizeof *want);
    float *scale = calloc((size_t)c + 64, sizeof *scale), *shift = calloc((size_t)c + 64, 4);
    for (int i = 0; i < c; i++) {
        scale[i] = (float)urand();
        shift[i] = (float)urand();
    }
    for (size_t i = 0; i < n; i++)
        want[i] = (double)(float)x[i] * scale[i / ((size_t)h * w)] + shift[i / ((size_t)h * w)];
    slice xs = slice_new(h, w, c), ys = slice_new(h, w, c);
    slice_fill(&xs, x);
    k->affine(at(&xs, 0, 0, 0), xs.ld, h * w, c, scale, shift, at(&ys, 0, 0, 0), ys.ld);
    int clobbered;
    double e = slice_error(&ys, want, &clobbered);
    CHECK(e <= 1e-6 && !clobbered, "%s affine %dx%d c %d: rel error %.2e", k->name, h, w, c, e);
    free(x), free(want), free(scale), free(shift), free(xs.mem), free(ys.mem);
}

/* The dense conv through ev_cpu_conv_run, in tiles of irregular pixel counts (a tile starts and
 * ends inside rows, as the plan's thread chunks and conv tiles do). */
static void test_conv(const ev_cpu_kernels *k, int trial)
{
    const int *hw = trial >= 24 ? wide_sizes[trial % NUM_WIDE_SIZES] : sizes[trial % NUM_SIZES];
    static const int ks[4] = {3, 1, 7, 5};
    const int kk = ks[trial % 4], stride = (trial / 4) % 2 ? 2 : 1;
    const int dil = kk == 3 && trial % 7 == 3 ? 2 : 1, pad = trial % 5 == 4 ? 0 : dil * (kk / 2);
    /* one trial in three has K = k*k*cin past one chunk of EV_CPU_CONV_KC rows */
    const int cin = trial % 3 == 2 ? irand(EV_CPU_CONV_KC / (kk * kk) + 1, 300) : irand(1, 40);
    const int cout = irand(1, 90), relu = trial % 2, acc = (trial / 2) % 2;
    const int h = hw[0] + kk, w = hw[1] + kk; /* at least one output pixel */
    const int oh = ev_conv2d_out_size(h, kk, stride, pad, dil),
              ow = ev_conv2d_out_size(w, kk, stride, pad, dil);
    const size_t nx = (size_t)cin * h * w, nw = (size_t)cout * cin * kk * kk,
                 ny = (size_t)cout * oh * ow;
    double *x = drand_array(nx), *wt = drand_array(nw), *prior = drand_array(ny);
    double *scale = drand_array((size_t)cout), *shift = drand_array((size_t)cout);
    float *wf = to_float(wt, nw);
    double *xr = rounded(x, nx), *wr = malloc(nw * sizeof *wr);
    if (relu)
        rectify(xr, nx);
    for (size_t i = 0; i < nw; i++)
        wr[i] = (double)(float)((double)wf[i] * scale[i / ((size_t)cin * kk * kk)]);
    double *want = calloc(ny, sizeof *want);
    ev_conv_desc d = {kk, kk, stride, pad, dil, 1};
    ev_ref64_conv2d_forward(xr, (ev_shape){1, cin, h, w}, wr, cout, &d, want,
                            (ev_shape){1, cout, oh, ow});
    double *ones = malloc((size_t)cout * sizeof *ones), *priorf = rounded(prior, ny);
    for (int i = 0; i < cout; i++)
        ones[i] = 1.0;
    double *shift_r = rounded(shift, (size_t)cout);
    affine(want, cout, oh * ow, ones, shift_r, acc ? priorf : NULL);
    slice xs = slice_new(h, w, cin), ys = slice_new(oh, ow, cout);
    slice_fill(&xs, x);
    if (acc)
        slice_fill(&ys, prior);
    float *packed = malloc(ev_cpu_conv_size(cin, cout, kk, k->vl) * sizeof(float));
    ev_cpu_conv cv;
    ev_cpu_conv_pack(&cv, wf, cin, cout, kk, stride, pad, dil, scale, shift, k->vl, packed);
    const int tile = ev_cpu_conv_tile(&cv);
    float *scratch = malloc(((size_t)tile * cv.K + EV_CPU_SLACK_FLOATS) * sizeof(float));
    ev_cpu_image img = {at(&xs, 0, 0, 0), h, w, cin, xs.ld};
    for (int p = 0; p < oh * ow;) {
        int n = irand(1, tile);
        n = n < oh * ow - p ? n : oh * ow - p;
        ev_cpu_conv_run(k, &cv, &img, relu, ow, p, n, scratch, at(&ys, p / ow, p % ow, 0), ys.ld,
                        acc);
        p += n;
    }
    int clobbered;
    double e = slice_error(&ys, want, &clobbered);
    CHECK(e <= 1e-5 && !clobbered,
          "%s conv %dx%d cin %d cout %d k %d stride %d pad %d dil %d relu %d acc %d (%d chunks): "
          "rel error %.2e",
          k->name, h, w, cin, cout, kk, stride, pad, dil, relu, acc, cv.nchunks, e);
    free(x), free(wt), free(prior), free(scale), free(shift), free(wf), free(xr), free(wr);
    free(want), free(ones), free(priorf), free(shift_r), free(xs.mem), free(ys.mem);
    free(packed), free(scratch);
}

int main(void)
{
    static const char *const isa_names[] = {"generic", "avx2", "avx512"};
    for (int isa = 0; isa < EV_CPU_NUM_ISA; isa++) {
        const ev_cpu_kernels *k = ev_cpu_kernels_for((ev_cpu_isa)isa);
        if (!k) {
            printf("skip %s: not supported by this build or machine\n", isa_names[isa]);
            continue;
        }
        for (int t = 0; t < 24; t++) {
            test_pointwise(k, t);
            test_separable(k, t);
            test_pool(k, t);
            test_stem(k, t);
            test_copy_zero(k, t);
            test_affine(k, t);
            test_conv(k, t);
        }
        for (int t = 24; t < 48; t++) {
            test_separable(k, t);
            test_pool(k, t);
            test_stem(k, t);
            test_conv(k, t);
        }
    }
    CHECK(ev_cpu_kernels_best() != NULL, "best kernels: %s", ev_cpu_kernels_best()->name);
    return test_finish();
}
