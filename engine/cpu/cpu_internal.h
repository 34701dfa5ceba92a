/* cpu_internal.h: the fast cpu backend's inner pieces, shared by its plan compiler, its kernels
 * (one copy per instruction set, chosen at run time) and the kernel tests.
 *
 * Layout: every activation is channels-last (NHWC) with a pixel stride `ld` that may exceed the
 * channel count, so a tensor can be a channel slice of a wider one (the cell's concat buffer).
 * Kernels vectorise over channels in vectors of `vl` floats; stores are masked at the channel
 * tail, loads may read up to vl-1 floats past the last channel (every buffer has that slack).
 */
#ifndef EV_CPU_INTERNAL_H
#define EV_CPU_INTERNAL_H

#include "ev_isa.h"
#include "ev_pool.h"
#include "ev_private.h"

#include <stddef.h>

#define EV_CPU_SLACK_FLOATS 64 /* readable floats after every buffer (unmasked channel loads) */

/* A 1x1 convolution (or the pointwise half of a separable block) with BN folded in: weights are
 * packed in panels of vl output channels, panel p = [cin][vl], zero-padded past cout. */
typedef struct ev_cpu_pw {
    int cin, cout, npanels;
    const float *w;    /* npanels * cin * vl */
    const float *bias; /* npanels * vl */
} ev_cpu_pw;

/* A depthwise k x k convolution: weights [k*k][cpad], cpad = channels rounded up to vl. */
typedef struct ev_cpu_dw {
    int c, cpad, k, stride, pad, dilation;
    const float *w;
} ev_cpu_dw;

/* The stem: a dense 3x3 (any k) convolution from NCHW input with cin 1..4 channels; weights in
 * panels of vl output channels, panel p = [cin*k*k][vl]. */
typedef struct ev_cpu_stem {
    int cin, cout, npanels, k, stride, pad;
    const float *w;
    const float *bias;
} ev_cpu_stem;

/* A dense k x k convolution (any stride, padding, dilation; groups 1) as im2col + GEMM: a tile of
 * output pixels gathers its receptive fields (taps in (ky, kx, ci) order, rectified while
 * copied) into rows of k*k*cin floats, and the pointwise kernel multiplies them by the weights in
 * chunks of EV_CPU_CONV_KC rows of K, so a chunk of the tile and of the weights stays in cache.
 * Chunk j is an ev_cpu_pw of its own (panels then bias; the bias is zero past chunk 0). */
#define EV_CPU_CONV_KC 256
typedef struct ev_cpu_conv {
    int cin, cout, k, stride, pad, dilation;
    int K, nchunks, npanels, vl;
    const float *w; /* the chunks, one after another */
} ev_cpu_conv;

/* A channels-last image: pixel (y, x) channel c at base[(y*w + x)*ld + c]. */
typedef struct ev_cpu_image {
    const float *base;
    int h, w, c, ld;
} ev_cpu_image;

/* One destination of a kernel that can write several: y[i*ys + c] = result (acc: +=). A node
 * computed once but summed into several nodes (the same pool of the same input in a cell)
 * writes all of them from one computation. */
typedef struct ev_cpu_dest {
    float *y;
    ptrdiff_t ys;
    int acc;
} ev_cpu_dest;
#define EV_CPU_MAX_DESTS 4

/* Kernel table of one instruction set. Rows are runs of output pixels; `acc` adds into y instead
 * of overwriting it (node sums accumulated in place). */
typedef struct ev_cpu_kernels {
    const char *name;
    int vl; /* floats per vector: panel width and channel padding */
    /* y[p, :cout] (+)= bias + sum_ci relu?(x[p*xs + ci]) * W[ci, :]  for p < npix */
    void (*pointwise)(const float *x, ptrdiff_t xs, int npix, int relu, const ev_cpu_pw *pw,
                      float *y, ptrdiff_t ys, int acc);
    /* out[i*os + c] = sum_taps relu?(x) * w  for output pixels (oy, ox0 + i), i < n; c < cpad */
    void (*depthwise_row)(const ev_cpu_image *x, int relu, const ev_cpu_dw *dw, int oy, int ox0,
                          int n, float *out, ptrdiff_t os);
    /* max (avg = 0) or average (avg = 1) pool, k x k, stride, pad; padding excluded; the row
     * of results goes to each of ndst (1..EV_CPU_MAX_DESTS) destinations */
    void (*pool_row)(const ev_cpu_image *x, int avg, int relu, int k, int stride, int pad, int oy,
                     int ox0, int n, const ev_cpu_dest *dst, int ndst);
    /* stem on an NCHW image (planes of h*w floats) */
    void (*stem_row)(const float *x, int h, int w, const ev_cpu_stem *st, int oy, int ox0, int n,
                     float *y, ptrdiff_t ys);
    /* y (+)= relu?(x) over npix pixels of c channels; zero: y = 0 (x unused) */
    void (*copy)(const float *x, ptrdiff_t xs, int npix, int c, float *y, ptrdiff_t ys, int acc,
                 int relu);
    void (*zero)(float *y, ptrdiff_t ys, int npix, int c);
    /* y = x * scale + shift per channel (scale, shift: c floats rounded up to vl) */
    void (*affine)(const float *x, ptrdiff_t xs, int npix, int c, const float *scale,
                   const float *shift, float *y, ptrdiff_t ys);
} ev_cpu_kernels;

/* The kernels of an instruction set, or NULL when this build or machine lacks it. */
const ev_cpu_kernels *ev_cpu_kernels_for(ev_cpu_isa isa);
/* The set of ev_cpu_isa_best() (ev_isa.h). */
const ev_cpu_kernels *ev_cpu_kernels_best(void);

const ev_cpu_kernels *ev_cpu_kernels_generic(void);
const ev_cpu_kernels *ev_cpu_kernels_avx2(void);
const ev_cpu_kernels *ev_cpu_kernels_avx512(void);

/* Packing helpers (weights in, packed out; `out` sized by the *_size helpers, in floats). */
size_t ev_cpu_pw_size(int cin, int cout, int vl);
/* w: (cout, cin) row-major (PyTorch's (cout, cin, 1, 1)); scale/shift: folded BN per output
 * channel (NULL scale = 1, NULL shift = 0). Writes panels then bias into out. */
void ev_cpu_pw_pack(ev_cpu_pw *pw, const float *w, int cin, int cout, const double *scale,
                    const double *shift, int vl, float *out);
size_t ev_cpu_dw_size(int c, int k, int vl);
void ev_cpu_dw_pack(ev_cpu_dw *dw, const float *w, int c, int k, int stride, int pad, int dilation,
                    int vl, float *out);
size_t ev_cpu_stem_size(int cin, int cout, int k, int vl);
void ev_cpu_stem_pack(ev_cpu_stem *st, const float *w, int cin, int cout, int k, int stride,
                      int pad, const double *scale, const double *shift, int vl, float *out);

size_t ev_cpu_conv_size(int cin, int cout, int k, int vl);
/* w: PyTorch's (cout, cin, k, k); scale/shift as for ev_cpu_pw_pack. */
void ev_cpu_conv_pack(ev_cpu_conv *cv, const float *w, int cin, int cout, int k, int stride,
                      int pad, int dilation, const double *scale, const double *shift, int vl,
                      float *out);
/* Chunk j of a packed dense conv as a pointwise GEMM over its rows of K. */
ev_cpu_pw ev_cpu_conv_chunk(const ev_cpu_conv *cv, int j);
/* Output pixels per im2col tile of a dense conv (a multiple of 24, the pointwise kernel's pixel
 * block), so that a tile of K-float rows stays near 256 KiB. */
int ev_cpu_conv_tile(const ev_cpu_conv *cv);
/* Output pixels [p0, p0 + n) of one image (row-major, consecutive) of a dense conv of the
 * channels-last image x (rectified when relu) into y (+= when acc); tile: n * K floats + slack. */
void ev_cpu_conv_run(const ev_cpu_kernels *k, const ev_cpu_conv *cv, const ev_cpu_image *x,
                     int relu, int ow, int p0, int n, float *tile, float *y, ptrdiff_t ys, int acc);

/* For tests and benchmarks: a cpu plan's kernel set, arena size and number of fused steps. */
const char *ev_cpu_plan_kernels(const ev_plan *plan);
size_t ev_cpu_plan_arena_bytes(const ev_plan *plan);
int ev_cpu_plan_num_steps(const ev_plan *plan);

#endif
