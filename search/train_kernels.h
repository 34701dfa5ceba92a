/* train_kernels.h: the fast training kernels of the search module (forward and backward of the
 * convolutions the DARTS cells use), as a table of function pointers per instruction set.
 *
 * train_kernels_impl.h holds the portable bodies; train_kernels_generic.c compiles them for any
 * CPU and train_kernels_avx2.c for AVX2+FMA (the 1x1 GEMMs there use intrinsics, the plane loops
 * are auto-vectorised). search_kernels_get() picks by the engine's selector (ev_isa.h): the
 * AVX2 set when it allows AVX2 or AVX-512, the generic one otherwise (EV_CPU_ISA=generic).
 * Every kernel is tested against the engine's reference ops (tests/search/test_kernels.c).
 */
#ifndef SEARCH_TRAIN_KERNELS_H
#define SEARCH_TRAIN_KERNELS_H

#include <stdbool.h>

typedef struct search_kernels {
    const char *name;
    /* y[M x P] = (accumulate ? y : 0) + w[M x K] . x[K x P]   (1x1 convolution of one sample) */
    void (*gemm_nn)(int M, int K, int P, const float *w, const float *x, float *y, bool accumulate);
    /* dw[M x K] += dy[M x P] . x[K x P]^T, summed in float over blocks and in double across them */
    void (*gemm_nt)(int M, int K, int P, const float *dy, const float *x, double *dw);
    /* One input plane into one output plane, k x k taps, accumulated: y += conv(x, w). */
    void (*conv_plane_forward)(const float *x, int xh, int xw, const float *w, int k, int stride,
                               int pad, int dil, float *y, int yh, int yw);
    /* dx += conv_transpose(dy, w) for one plane pair. */
    void (*conv_plane_backward_data)(const float *dy, int yh, int yw, const float *w, int k,
                                     int stride, int pad, int dil, float *dx, int xh, int xw);
    /* dw[k x k] += correlation of x and dy for one plane pair (double accumulators). */
    void (*conv_plane_backward_weight)(const float *x, int xh, int xw, const float *dy, int yh,
                                       int yw, int k, int stride, int pad, int dil, double *dw);
} search_kernels;

const search_kernels *search_kernels_generic(void);
/* NULL when not compiled for x86-64 or the machine lacks AVX2 + FMA */
const search_kernels *search_kernels_avx2(void);
const search_kernels *search_kernels_get(void);

#endif
