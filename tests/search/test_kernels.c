/* test_kernels.c: every fast training kernel (generic and, where the CPU has it, AVX2) against
 * the engine's reference conv ops: forward within 1e-5 relative, backward within 1e-4. */
#include "ev_isa.h"
#include "ev_search.h"
#include "ops_ref.h"
#include "test_util.h"
#include "train_kernels.h"

#include <stdlib.h>
#include <string.h>

static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ev_rng_normal(&seed);
}

/* conv of one sample through the kernel set, the way the executor calls it */
static void fast_conv(const search_kernels *k, const float *x, ev_shape xs, const float *w,
                      int cout, const ev_conv_desc *d, float *y, ev_shape ys, const float *dy,
                      float *dx, double *dw)
{
    const int cin_g = xs.c / d->groups, cout_g = cout / d->groups, kk = d->kernel_h * d->kernel_w;
    const int P = ys.h * ys.w;
    if (d->kernel_h == 1 && d->groups == 1 && d->stride == 1 && d->pad == 0) {
        k->gemm_nn(cout, xs.c, P, w, x, y, false);
        float *wt = malloc(sizeof(float) * cout * xs.c);
        for (int a = 0; a < cout; a++)
            for (int b = 0; b < xs.c; b++)
                wt[b * cout + a] = w[a * xs.c + b];
        k->gemm_nn(xs.c, cout, P, wt, dy, dx, true);
        k->gemm_nt(cout, xs.c, P, dy, x, dw);
        free(wt);
        return;
    }
    memset(y, 0, sizeof(float) * cout * P);
    for (int oc = 0; oc < cout; oc++) {
        int g = oc / cout_g;
        for (int ic = 0; ic < cin_g; ic++) {
            const float *xp = x + (size_t)(g * cin_g + ic) * xs.h * xs.w;
            const float *wp = w + ((size_t)oc * cin_g + ic) * kk;
            k->conv_plane_forward(xp, xs.h, xs.w, wp, d->kernel_h, d->stride, d->pad, d->dilation,
                                  y + (size_t)oc * P, ys.h, ys.w);
            k->conv_plane_backward_data(dy + (size_t)oc * P, ys.h, ys.w, wp, d->kernel_h, d->stride,
                                        d->pad, d->dilation,
                                        dx + (size_t)(g * cin_g + ic) * xs.h * xs.w, xs.h, xs.w);
            k->conv_plane_backward_weight(xp, xs.h, xs.w, dy + (size_t)oc * P, ys.h, ys.w,
                                          d->kernel_h, d->stride, d->pad, d->dilation,
                                          dw + ((size_t)oc * cin_g + ic) * kk);
        }
    }
}

static void check(const search_kernels *k, const char *what, int cin, int cout, int h, int w,
                  int kernel, int stride, int pad, int dil, int groups)
{
    ev_conv_desc d = {kernel, kernel, stride, pad, dil, groups};
    ev_shape xs = {1, cin, h, w};
    ev_shape ys = {1, cout, ev_conv2d_out_size(h, kernel, stride, pad, dil),
                   ev_conv2d_out_size(w, kernel, stride, pad, dil)};
    size_t nx = (size_t)cin * h * w, ny = (size_t)cout * ys.h * ys.w,
           nw = (size_t)cout * (cin / groups) * kernel * kernel;
    float *x = malloc(nx * 4), *wt = malloc(nw * 4), *dy = malloc(ny * 4);
    float *y_ref = calloc(ny, 4), *y = calloc(ny, 4), *dx_ref = calloc(nx, 4), *dx = calloc(nx, 4);
    float *dw_ref = calloc(nw, 4), *dwf = calloc(nw, 4);
    double *dw = calloc(nw, 8);
    fill(x, nx, 1);
    fill(wt, nw, 2);
    fill(dy, ny, 3);
    ev_ref_conv2d_forward(x, xs, wt, cout, &d, y_ref, ys);
    ev_ref_conv2d_backward(x, xs, wt, cout, &d, dy, ys, dx_ref, dw_ref);
    fast_conv(k, x, xs, wt, cout, &d, y, ys, dy, dx, dw);
    for (size_t i = 0; i < nw; i++)
        dwf[i] = (float)dw[i];
    double ef = rel_error(y, y_ref, ny), ex = rel_error(dx, dx_ref, nx),
           ew = rel_error(dwf, dw_ref, nw);
    CHECK(ef <= 1e-5 && ex <= 1e-4 && ew <= 1e-4,
          "%s %s: forward %.1e <= 1e-5, dx %.1e <= 1e-4, dw %.1e <= 1e-4", k->name, what, ef, ex,
          ew);
    free(x), free(wt), free(dy), free(y_ref), free(y), free(dx_ref), free(dx), free(dw_ref),
        free(dwf), free(dw);
}

int main(void)
{
    const search_kernels *sets[2] = {search_kernels_generic(), search_kernels_avx2()};
    for (int s = 0; s < 2; s++) {
        const search_kernels *k = sets[s];
        if (!k) {
            printf("skip: this CPU has no AVX2+FMA\n");
            continue;
        }
        check(k, "depthwise 3x3", 16, 16, 23, 29, 3, 1, 1, 1, 16);
        check(k, "depthwise 5x5", 8, 8, 20, 20, 5, 1, 2, 1, 8);
        check(k, "depthwise 3x3 stride 2", 8, 8, 24, 24, 3, 2, 1, 1, 8);
        check(k, "depthwise 5x5 stride 2", 6, 6, 17, 18, 5, 2, 2, 1, 6);
        check(k, "dilated 3x3", 8, 8, 24, 21, 3, 1, 2, 2, 8);
        check(k, "dilated 5x5 stride 2", 8, 8, 24, 24, 5, 2, 4, 2, 8);
        check(k, "pointwise 48->16", 48, 16, 24, 24, 1, 1, 0, 1, 1);
        check(k, "pointwise 13->7 (odd sizes)", 13, 7, 9, 11, 1, 1, 0, 1, 1);
        check(k, "pointwise 64->128", 64, 128, 12, 12, 1, 1, 0, 1, 1);
        check(k, "stem 3x3 1->48", 1, 48, 32, 32, 3, 1, 1, 1, 1);
        check(k, "stem 3x3 3->12", 3, 12, 19, 16, 3, 1, 1, 1, 1);
        check(k, "dense 1x1 stride 2 (factorized reduce)", 8, 4, 16, 16, 1, 2, 0, 1, 1);
    }
    /* the engine's selector decides for training too: EV_CPU_ISA caps it, and AVX-512 (no
     * training kernels of its own) trains on the AVX2 set */
    const char *want = sets[1] ? "avx2" : "generic";
    setenv("EV_CPU_ISA", "avx512", 1);
    CHECK(!strcmp(search_kernels_get()->name, want), "EV_CPU_ISA=avx512: %s kernels (want %s)",
          search_kernels_get()->name, want);
    CHECK(ev_cpu_isa_best() != EV_CPU_ISA_AVX512 || !strcmp(search_kernels_get()->name, "avx2"),
          "an AVX-512 choice trains on the avx2 kernels");
    setenv("EV_CPU_ISA", "avx2", 1);
    CHECK(!strcmp(search_kernels_get()->name, want), "EV_CPU_ISA=avx2: %s kernels",
          search_kernels_get()->name);
    CHECK(ev_cpu_isa_best() <= EV_CPU_ISA_AVX2, "EV_CPU_ISA=avx2 caps the engine's choice");
    setenv("EV_CPU_ISA", "generic", 1);
    CHECK(ev_cpu_isa_best() == EV_CPU_ISA_GENERIC && !strcmp(search_kernels_get()->name, "generic"),
          "EV_CPU_ISA=generic: generic kernels for training and the engine");
    unsetenv("EV_CPU_ISA");
    return test_finish();
}
