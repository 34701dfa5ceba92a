/* ops_ref_impl.h: the bodies of the reference ops (plain NCHW loops, forward and backward),
 * written once over a scalar type. ops_ref.c includes this file twice: with EV_REAL = float and
 * EV_REF_FN(name) = ev_ref_##name for the engine's float oracle, and with EV_REAL = double and
 * EV_REF_FN(name) = ev_ref64_##name for the double versions the gradient tests run on.
 *
 * Sums (convolutions, statistics, pools, the loss) accumulate in double for both types, so the
 * float versions differ from the double ones only by the rounding of their inputs and outputs.
 * Backward functions accumulate (+=) into their gradient outputs so that fan-out works; callers
 * zero them first. A NULL gradient output is skipped.
 *
 * The includer defines EV_REAL and EV_REF_FN; they are undefined at the end of this file.
 * Shapes are trusted: the graph builder computes them with ev_conv2d_out_size and checks them.
 */

#if !defined(EV_REAL) || !defined(EV_REF_FN)
#error "define EV_REAL and EV_REF_FN before including ops_ref_impl.h"
#endif

#ifndef EV_OPS_REF_IMPL_HELPERS
#define EV_OPS_REF_IMPL_HELPERS

#include "ops_ref.h"

#include <math.h>
#include <string.h>

/* Convolution output tiles are accumulated in this many doubles on the stack: enough to
 * amortise the loop setup per kernel tap, small enough for any thread's stack. */
#define EV_REF_TILE 2048

static inline int ev_ref_min(int a, int b) { return a < b ? a : b; }

/* ceil(a / b) for b > 0 and any sign of a (C division truncates toward zero). */
static inline int ev_ref_ceil_div(int a, int b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* The output indices o in [out_lo, out_hi) whose input index o * stride + offset falls in
 * [in_lo, in_hi): written to [*lo, *hi), empty when *lo == *hi. This is how the loops below skip
 * padding without a branch per element. */
static inline void ev_ref_out_range(int in_lo, int in_hi, int offset, int stride, int out_lo,
                                    int out_hi, int *lo, int *hi)
{
    int a = ev_ref_ceil_div(in_lo - offset, stride);
    int b = ev_ref_ceil_div(in_hi - offset, stride);
    if (a < out_lo)
        a = out_lo;
    if (b > out_hi)
        b = out_hi;
    *lo = a;
    *hi = b > a ? b : a;
}

/* Clipped pooling window [*start, *end) along one axis for output index o. */
static inline void ev_ref_pool_window(int o, int k, int stride, int pad, int in, int *start,
                                      int *end)
{
    int s = o * stride - pad;
    int e = s + k;
    *start = s < 0 ? 0 : s;
    *end = e > in ? in : e;
}

#endif /* EV_OPS_REF_IMPL_HELPERS */

/* ---- conv2d ------------------------------------------------------------------------------- */

void EV_REF_FN(conv2d_forward)(const EV_REAL *x, ev_shape xs, const EV_REAL *w, int cout,
                               const ev_conv_desc *d, EV_REAL *y, ev_shape ys)
{
    const int groups = d->groups, stride = d->stride, pad = d->pad, dil = d->dilation;
    const int kh = d->kernel_h, kw = d->kernel_w;
    const int cin_g = xs.c / groups, cout_g = cout / groups;
    const size_t in_plane = (size_t)xs.h * (size_t)xs.w, out_plane = (size_t)ys.h * (size_t)ys.w;
    const int tile_w = ys.w < EV_REF_TILE ? ys.w : EV_REF_TILE;
    const int tile_h = tile_w > 0 ? EV_REF_TILE / tile_w : 0;
    double acc[EV_REF_TILE];

    if (out_plane == 0)
        return;
    for (int n = 0; n < xs.n; n++) {
        for (int oc = 0; oc < cout; oc++) {
            const int g = oc / cout_g;
            const EV_REAL *wo = w + (size_t)oc * (size_t)cin_g * (size_t)kh * (size_t)kw;
            EV_REAL *yp = y + ((size_t)n * (size_t)cout + (size_t)oc) * out_plane;
            for (int oh0 = 0; oh0 < ys.h; oh0 += tile_h) {
                const int oh1 = ev_ref_min(oh0 + tile_h, ys.h);
                for (int ow0 = 0; ow0 < ys.w; ow0 += tile_w) {
                    const int ow1 = ev_ref_min(ow0 + tile_w, ys.w), tw = ow1 - ow0;
                    memset(acc, 0, sizeof(double) * (size_t)(oh1 - oh0) * (size_t)tw);
                    for (int ic = 0; ic < cin_g; ic++) {
                        const EV_REAL *xp =
                            x + ((size_t)n * (size_t)xs.c + (size_t)(g * cin_g + ic)) * in_plane;
                        for (int i = 0; i < kh; i++) {
                            const int offh = i * dil - pad;
                            int h_lo, h_hi;
                            ev_ref_out_range(0, xs.h, offh, stride, oh0, oh1, &h_lo, &h_hi);
                            for (int j = 0; j < kw; j++) {
                                const int offw = j * dil - pad;
                                const double wv = wo[((size_t)ic * kh + i) * kw + j];
                                int w_lo, w_hi;
                                ev_ref_out_range(0, xs.w, offw, stride, ow0, ow1, &w_lo, &w_hi);
                                for (int oh = h_lo; oh < h_hi; oh++) {
                                    const EV_REAL *xr =
                                        xp + (size_t)(oh * stride + offh) * (size_t)xs.w;
                                    double *ar = acc + (size_t)(oh - oh0) * (size_t)tw;
                                    for (int ow = w_lo; ow < w_hi; ow++)
                                        ar[ow - ow0] += wv * xr[ow * stride + offw];
                                }
                            }
                        }
                    }
                    for (int oh = oh0; oh < oh1; oh++)
                        for (int ow = ow0; ow < ow1; ow++)
                            yp[(size_t)oh * ys.w + ow] =
                                (EV_REAL)acc[(size_t)(oh - oh0) * tw + (ow - ow0)];
                }
            }
        }
    }
}

void EV_REF_FN(conv2d_backward)(const EV_REAL *x, ev_shape xs, const EV_REAL *w, int cout,
                                const ev_conv_desc *d, const EV_REAL *dy, ev_shape ys, EV_REAL *dx,
                                EV_REAL *dw)
{
    const int groups = d->groups, stride = d->stride, pad = d->pad, dil = d->dilation;
    const int kh = d->kernel_h, kw = d->kernel_w;
    const int cin_g = xs.c / groups, cout_g = cout / groups;
    const size_t in_plane = (size_t)xs.h * (size_t)xs.w, out_plane = (size_t)ys.h * (size_t)ys.w;

    if (out_plane == 0 || in_plane == 0)
        return;

    /* dx: for each input tile, gather every (output channel, tap, output pixel) that reads it. */
    if (dx) {
        const int tile_w = xs.w < EV_REF_TILE ? xs.w : EV_REF_TILE;
        const int tile_h = EV_REF_TILE / tile_w;
        double acc[EV_REF_TILE];
        for (int n = 0; n < xs.n; n++) {
            for (int ci = 0; ci < xs.c; ci++) {
                const int g = ci / cin_g, ic = ci - g * cin_g;
                EV_REAL *dxp = dx + ((size_t)n * (size_t)xs.c + (size_t)ci) * in_plane;
                for (int ih0 = 0; ih0 < xs.h; ih0 += tile_h) {
                    const int ih1 = ev_ref_min(ih0 + tile_h, xs.h);
                    for (int iw0 = 0; iw0 < xs.w; iw0 += tile_w) {
                        const int iw1 = ev_ref_min(iw0 + tile_w, xs.w), tw = iw1 - iw0;
                        memset(acc, 0, sizeof(double) * (size_t)(ih1 - ih0) * (size_t)tw);
                        for (int oc = g * cout_g; oc < (g + 1) * cout_g; oc++) {
                            const EV_REAL *dyp =
                                dy + ((size_t)n * (size_t)cout + (size_t)oc) * out_plane;
                            const EV_REAL *wo =
                                w + ((size_t)oc * cin_g + ic) * (size_t)kh * (size_t)kw;
                            for (int i = 0; i < kh; i++) {
                                const int offh = i * dil - pad;
                                int h_lo, h_hi;
                                ev_ref_out_range(ih0, ih1, offh, stride, 0, ys.h, &h_lo, &h_hi);
                                for (int j = 0; j < kw; j++) {
                                    const int offw = j * dil - pad;
                                    const double wv = wo[(size_t)i * kw + j];
                                    int w_lo, w_hi;
                                    ev_ref_out_range(iw0, iw1, offw, stride, 0, ys.w, &w_lo, &w_hi);
                                    for (int oh = h_lo; oh < h_hi; oh++) {
                                        const EV_REAL *dyr = dyp + (size_t)oh * (size_t)ys.w;
                                        double *ar =
                                            acc + (size_t)(oh * stride + offh - ih0) * (size_t)tw;
                                        for (int ow = w_lo; ow < w_hi; ow++)
                                            ar[ow * stride + offw - iw0] += wv * dyr[ow];
                                    }
                                }
                            }
                        }
                        for (int ih = ih0; ih < ih1; ih++)
                            for (int iw = iw0; iw < iw1; iw++)
                                dxp[(size_t)ih * xs.w + iw] +=
                                    (EV_REAL)acc[(size_t)(ih - ih0) * tw + (iw - iw0)];
                    }
                }
            }
        }
    }

    /* dw: each tap is a dot product of an output-gradient plane and a shifted input plane. */
    if (dw) {
        for (int oc = 0; oc < cout; oc++) {
            const int g = oc / cout_g;
            for (int ic = 0; ic < cin_g; ic++) {
                for (int i = 0; i < kh; i++) {
                    const int offh = i * dil - pad;
                    int h_lo, h_hi;
                    ev_ref_out_range(0, xs.h, offh, stride, 0, ys.h, &h_lo, &h_hi);
                    for (int j = 0; j < kw; j++) {
                        const int offw = j * dil - pad;
                        int w_lo, w_hi;
                        ev_ref_out_range(0, xs.w, offw, stride, 0, ys.w, &w_lo, &w_hi);
                        double a = 0.0;
                        for (int n = 0; n < xs.n; n++) {
                            const EV_REAL *xp =
                                x +
                                ((size_t)n * (size_t)xs.c + (size_t)(g * cin_g + ic)) * in_plane;
                            const EV_REAL *dyp =
                                dy + ((size_t)n * (size_t)cout + (size_t)oc) * out_plane;
                            for (int oh = h_lo; oh < h_hi; oh++) {
                                const EV_REAL *xr =
                                    xp + (size_t)(oh * stride + offh) * (size_t)xs.w;
                                const EV_REAL *dyr = dyp + (size_t)oh * (size_t)ys.w;
                                for (int ow = w_lo; ow < w_hi; ow++)
                                    a += (double)dyr[ow] * xr[ow * stride + offw];
                            }
                        }
                        dw[(((size_t)oc * cin_g + ic) * kh + i) * kw + j] += (EV_REAL)a;
                    }
                }
            }
        }
    }
}

/* ---- batch norm ----------------------------------------------------------------------------- */

void EV_REF_FN(batchnorm_forward)(const EV_REAL *x, ev_shape s, const EV_REAL *gamma,
                                  const EV_REAL *beta, EV_REAL *running_mean, EV_REAL *running_var,
                                  bool training, EV_REAL momentum, EV_REAL eps, EV_REAL *saved,
                                  EV_REAL *y)
{
    const size_t plane = (size_t)s.h * (size_t)s.w;
    const size_t count = (size_t)s.n * plane;

    for (int c = 0; c < s.c; c++) {
        double mean, invstd;
        if (training) {
            double sum = 0.0, sq = 0.0;
            for (int n = 0; n < s.n; n++) {
                const EV_REAL *p = x + ((size_t)n * (size_t)s.c + (size_t)c) * plane;
                for (size_t i = 0; i < plane; i++)
                    sum += p[i];
            }
            mean = count ? sum / (double)count : 0.0;
            for (int n = 0; n < s.n; n++) {
                const EV_REAL *p = x + ((size_t)n * (size_t)s.c + (size_t)c) * plane;
                for (size_t i = 0; i < plane; i++)
                    sq += (p[i] - mean) * (p[i] - mean);
            }
            /* Normalisation uses the biased variance, the running estimate the unbiased one
             * (PyTorch). PyTorch refuses count == 1; here the running update then uses the
             * biased value rather than dividing by zero. */
            const double var = count ? sq / (double)count : 0.0;
            invstd = 1.0 / sqrt(var + (double)eps);
            if (saved) {
                saved[c] = (EV_REAL)mean;
                saved[s.c + c] = (EV_REAL)invstd;
            }
            if (running_mean)
                running_mean[c] =
                    (EV_REAL)((1.0 - (double)momentum) * running_mean[c] + (double)momentum * mean);
            if (running_var) {
                const double unbiased = count > 1 ? sq / (double)(count - 1) : var;
                running_var[c] = (EV_REAL)((1.0 - (double)momentum) * running_var[c] +
                                           (double)momentum * unbiased);
            }
        } else {
            mean = running_mean ? running_mean[c] : 0.0;
            invstd = 1.0 / sqrt((running_var ? (double)running_var[c] : 1.0) + (double)eps);
            /* Kept for the backward's d gamma, which needs the mean it normalised with. */
            if (saved) {
                saved[c] = (EV_REAL)mean;
                saved[s.c + c] = (EV_REAL)invstd;
            }
        }
        const double scale = invstd * (gamma ? (double)gamma[c] : 1.0);
        const double shift = beta ? (double)beta[c] : 0.0;
        for (int n = 0; n < s.n; n++) {
            const size_t base = ((size_t)n * (size_t)s.c + (size_t)c) * plane;
            for (size_t i = 0; i < plane; i++)
                y[base + i] = (EV_REAL)((x[base + i] - mean) * scale + shift);
        }
    }
}

void EV_REF_FN(batchnorm_backward)(const EV_REAL *x, ev_shape s, const EV_REAL *gamma,
                                   const EV_REAL *saved, bool training, const EV_REAL *running_var,
                                   EV_REAL eps, const EV_REAL *dy, EV_REAL *dx, EV_REAL *dgamma,
                                   EV_REAL *dbeta)
{
    const size_t plane = (size_t)s.h * (size_t)s.w;
    const size_t count = (size_t)s.n * plane;

    for (int c = 0; c < s.c; c++) {
        const double g = gamma ? (double)gamma[c] : 1.0;
        double mean, invstd;
        if (training) {
            mean = saved[c];
            invstd = saved[s.c + c];
        } else {
            /* Eval mode: y is affine in x; the mean only matters for d gamma and comes from
             * the saved values the eval forward wrote (d gamma is skipped without them). */
            mean = saved ? (double)saved[c] : 0.0;
            invstd = 1.0 / sqrt((running_var ? (double)running_var[c] : 1.0) + (double)eps);
        }
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int n = 0; n < s.n; n++) {
            const size_t base = ((size_t)n * (size_t)s.c + (size_t)c) * plane;
            for (size_t i = 0; i < plane; i++) {
                sum_dy += dy[base + i];
                sum_dy_xhat += (double)dy[base + i] * ((x[base + i] - mean) * invstd);
            }
        }
        if (dgamma && (training || saved))
            dgamma[c] += (EV_REAL)sum_dy_xhat;
        if (dbeta)
            dbeta[c] += (EV_REAL)sum_dy;
        if (!dx)
            continue;
        const double k = g * invstd;
        const double mean_dy = training && count ? sum_dy / (double)count : 0.0;
        const double mean_dy_xhat = training && count ? sum_dy_xhat / (double)count : 0.0;
        for (int n = 0; n < s.n; n++) {
            const size_t base = ((size_t)n * (size_t)s.c + (size_t)c) * plane;
            for (size_t i = 0; i < plane; i++) {
                const double xhat = (x[base + i] - mean) * invstd;
                dx[base + i] += (EV_REAL)(k * (dy[base + i] - mean_dy - xhat * mean_dy_xhat));
            }
        }
    }
}

/* ---- relu ------------------------------------------------------------------------------------ */

void EV_REF_FN(relu_forward)(const EV_REAL *x, size_t n, EV_REAL *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : (EV_REAL)0;
}

void EV_REF_FN(relu_backward)(const EV_REAL *x, size_t n, const EV_REAL *dy, EV_REAL *dx)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] > 0)
            dx[i] += dy[i];
}

/* ---- pools ----------------------------------------------------------------------------------- */

/* Index (within the plane) of the window's first maximum in row-major scan order; padding is
 * never a candidate and a NaN wins, as in PyTorch. -1 for an empty window. */
static inline long EV_REF_FN(maxpool_argmax)(const EV_REAL *p, ev_shape xs, int k, int stride,
                                             int pad, int oh, int ow)
{
    int h0, h1, w0, w1;
    ev_ref_pool_window(oh, k, stride, pad, xs.h, &h0, &h1);
    ev_ref_pool_window(ow, k, stride, pad, xs.w, &w0, &w1);
    long best_at = -1;
    EV_REAL best = (EV_REAL)-INFINITY;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            const EV_REAL v = p[(size_t)ih * xs.w + iw];
            if (best_at < 0 || v > best || isnan(v)) {
                best = v;
                best_at = (long)ih * xs.w + iw;
                if (isnan(v))
                    return best_at;
            }
        }
    return best_at;
}

void EV_REF_FN(maxpool_forward)(const EV_REAL *x, ev_shape xs, int k, int stride, int pad,
                                EV_REAL *y, ev_shape ys)
{
    const size_t in_plane = (size_t)xs.h * (size_t)xs.w, out_plane = (size_t)ys.h * (size_t)ys.w;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        const EV_REAL *p = x + nc * in_plane;
        EV_REAL *q = y + nc * out_plane;
        for (int oh = 0; oh < ys.h; oh++)
            for (int ow = 0; ow < ys.w; ow++) {
                const long at = EV_REF_FN(maxpool_argmax)(p, xs, k, stride, pad, oh, ow);
                q[(size_t)oh * ys.w + ow] = at >= 0 ? p[at] : (EV_REAL)-INFINITY;
            }
    }
}

void EV_REF_FN(maxpool_backward)(const EV_REAL *x, ev_shape xs, int k, int stride, int pad,
                                 const EV_REAL *dy, ev_shape ys, EV_REAL *dx)
{
    const size_t in_plane = (size_t)xs.h * (size_t)xs.w, out_plane = (size_t)ys.h * (size_t)ys.w;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        const EV_REAL *p = x + nc * in_plane;
        const EV_REAL *q = dy + nc * out_plane;
        EV_REAL *r = dx + nc * in_plane;
        for (int oh = 0; oh < ys.h; oh++)
            for (int ow = 0; ow < ys.w; ow++) {
                const long at = EV_REF_FN(maxpool_argmax)(p, xs, k, stride, pad, oh, ow);
                if (at >= 0)
                    r[at] += q[(size_t)oh * ys.w + ow];
            }
    }
}

void EV_REF_FN(avgpool_forward)(const EV_REAL *x, ev_shape xs, int k, int stride, int pad,
                                EV_REAL *y, ev_shape ys)
{
    const size_t in_plane = (size_t)xs.h * (size_t)xs.w, out_plane = (size_t)ys.h * (size_t)ys.w;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        const EV_REAL *p = x + nc * in_plane;
        EV_REAL *q = y + nc * out_plane;
        for (int oh = 0; oh < ys.h; oh++) {
            int h0, h1;
            ev_ref_pool_window(oh, k, stride, pad, xs.h, &h0, &h1);
            for (int ow = 0; ow < ys.w; ow++) {
                int w0, w1;
                ev_ref_pool_window(ow, k, stride, pad, xs.w, &w0, &w1);
                double sum = 0.0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += p[(size_t)ih * xs.w + iw];
                const int cells = (h1 - h0) * (w1 - w0); /* count_include_pad = False */
                q[(size_t)oh * ys.w + ow] = (EV_REAL)(cells > 0 ? sum / cells : 0.0);
            }
        }
    }
}

void EV_REF_FN(avgpool_backward)(ev_shape xs, int k, int stride, int pad, const EV_REAL *dy,
                                 ev_shape ys, EV_REAL *dx)
{
    const size_t in_plane = (size_t)xs.h * (size_t)xs.w, out_plane = (size_t)ys.h * (size_t)ys.w;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        const EV_REAL *q = dy + nc * out_plane;
        EV_REAL *r = dx + nc * in_plane;
        for (int oh = 0; oh < ys.h; oh++) {
            int h0, h1;
            ev_ref_pool_window(oh, k, stride, pad, xs.h, &h0, &h1);
            for (int ow = 0; ow < ys.w; ow++) {
                int w0, w1;
                ev_ref_pool_window(ow, k, stride, pad, xs.w, &w0, &w1);
                const int cells = (h1 - h0) * (w1 - w0);
                if (cells <= 0)
                    continue;
                const EV_REAL g = (EV_REAL)((double)q[(size_t)oh * ys.w + ow] / cells);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        r[(size_t)ih * xs.w + iw] += g;
            }
        }
    }
}

/* ---- concat, crop, global average pool -------------------------------------------------------- */

void EV_REF_FN(concat_forward)(const EV_REAL *const *xs, const int *channels, int count,
                               ev_shape ys, EV_REAL *y)
{
    const size_t plane = (size_t)ys.h * (size_t)ys.w;
    for (int n = 0; n < ys.n; n++) {
        size_t offset = 0;
        for (int i = 0; i < count; i++) {
            const size_t block = (size_t)channels[i] * plane;
            memcpy(y + ((size_t)n * (size_t)ys.c) * plane + offset, xs[i] + (size_t)n * block,
                   block * sizeof(EV_REAL));
            offset += block;
        }
    }
}

void EV_REF_FN(concat_backward)(const EV_REAL *dy, ev_shape ys, const int *channels, int count,
                                EV_REAL *const *dxs)
{
    const size_t plane = (size_t)ys.h * (size_t)ys.w;
    for (int n = 0; n < ys.n; n++) {
        size_t offset = 0;
        for (int i = 0; i < count; i++) {
            const size_t block = (size_t)channels[i] * plane;
            if (dxs[i]) {
                const EV_REAL *src = dy + ((size_t)n * (size_t)ys.c) * plane + offset;
                EV_REAL *dst = dxs[i] + (size_t)n * block;
                for (size_t j = 0; j < block; j++)
                    dst[j] += src[j];
            }
            offset += block;
        }
    }
}

void EV_REF_FN(crop_forward)(const EV_REAL *x, ev_shape xs, int crop, EV_REAL *y)
{
    const int oh = xs.h - crop, ow = xs.w - crop;
    if (oh <= 0 || ow <= 0)
        return;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++)
        for (int h = 0; h < oh; h++)
            memcpy(y + (nc * (size_t)oh + (size_t)h) * (size_t)ow,
                   x + (nc * (size_t)xs.h + (size_t)(h + crop)) * (size_t)xs.w + crop,
                   (size_t)ow * sizeof(EV_REAL));
}

void EV_REF_FN(crop_backward)(ev_shape xs, int crop, const EV_REAL *dy, EV_REAL *dx)
{
    const int oh = xs.h - crop, ow = xs.w - crop;
    if (oh <= 0 || ow <= 0)
        return;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++)
        for (int h = 0; h < oh; h++) {
            const EV_REAL *src = dy + (nc * (size_t)oh + (size_t)h) * (size_t)ow;
            EV_REAL *dst = dx + (nc * (size_t)xs.h + (size_t)(h + crop)) * (size_t)xs.w + crop;
            for (int w = 0; w < ow; w++)
                dst[w] += src[w];
        }
}

void EV_REF_FN(gap_forward)(const EV_REAL *x, ev_shape xs, EV_REAL *y)
{
    const size_t plane = (size_t)xs.h * (size_t)xs.w;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        double sum = 0.0;
        for (size_t i = 0; i < plane; i++)
            sum += x[nc * plane + i];
        y[nc] = (EV_REAL)(plane ? sum / (double)plane : 0.0);
    }
}

void EV_REF_FN(gap_backward)(ev_shape xs, const EV_REAL *dy, EV_REAL *dx)
{
    const size_t plane = (size_t)xs.h * (size_t)xs.w;
    if (plane == 0)
        return;
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        const EV_REAL g = (EV_REAL)((double)dy[nc] / (double)plane);
        for (size_t i = 0; i < plane; i++)
            dx[nc * plane + i] += g;
    }
}

/* PyTorch's AdaptiveAvgPool2d window of output o of `out` over `in`: [floor(o*in/out),
 * ceil((o+1)*in/out)) */
static inline void EV_REF_FN(adaptive_window)(int o, int in, int out, int *start, int *end)
{
    *start = (int)((long long)o * in / out);
    *end = (int)(((long long)(o + 1) * in + out - 1) / out);
}

void EV_REF_FN(adaptive_avgpool_forward)(const EV_REAL *x, ev_shape xs, EV_REAL *y, ev_shape ys)
{
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        const EV_REAL *xp = x + nc * (size_t)xs.h * (size_t)xs.w;
        EV_REAL *yp = y + nc * (size_t)ys.h * (size_t)ys.w;
        for (int oy = 0; oy < ys.h; oy++) {
            int y0, y1;
            EV_REF_FN(adaptive_window)(oy, xs.h, ys.h, &y0, &y1);
            for (int ox = 0; ox < ys.w; ox++) {
                int x0, x1;
                EV_REF_FN(adaptive_window)(ox, xs.w, ys.w, &x0, &x1);
                double sum = 0.0;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        sum += xp[(size_t)iy * (size_t)xs.w + (size_t)ix];
                yp[(size_t)oy * (size_t)ys.w + (size_t)ox] =
                    (EV_REAL)(sum / (double)((y1 - y0) * (x1 - x0)));
            }
        }
    }
}

void EV_REF_FN(adaptive_avgpool_backward)(ev_shape xs, const EV_REAL *dy, ev_shape ys, EV_REAL *dx)
{
    for (size_t nc = 0; nc < (size_t)xs.n * (size_t)xs.c; nc++) {
        EV_REAL *dxp = dx + nc * (size_t)xs.h * (size_t)xs.w;
        const EV_REAL *dyp = dy + nc * (size_t)ys.h * (size_t)ys.w;
        for (int oy = 0; oy < ys.h; oy++) {
            int y0, y1;
            EV_REF_FN(adaptive_window)(oy, xs.h, ys.h, &y0, &y1);
            for (int ox = 0; ox < ys.w; ox++) {
                int x0, x1;
                EV_REF_FN(adaptive_window)(ox, xs.w, ys.w, &x0, &x1);
                const EV_REAL g = (EV_REAL)((double)dyp[(size_t)oy * (size_t)ys.w + (size_t)ox] /
                                            (double)((y1 - y0) * (x1 - x0)));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dxp[(size_t)iy * (size_t)xs.w + (size_t)ix] += g;
            }
        }
    }
}

/* ---- per-channel bias (a convolution's) -------------------------------------------------------- */

void EV_REF_FN(bias_forward)(EV_REAL *y, ev_shape s, const EV_REAL *b)
{
    const size_t plane = (size_t)s.h * (size_t)s.w;
    for (int n = 0; n < s.n; n++)
        for (int c = 0; c < s.c; c++) {
            EV_REAL *yp = y + ((size_t)n * (size_t)s.c + (size_t)c) * plane;
            for (size_t i = 0; i < plane; i++)
                yp[i] += b[c];
        }
}

void EV_REF_FN(bias_backward)(const EV_REAL *dy, ev_shape s, EV_REAL *db)
{
    const size_t plane = (size_t)s.h * (size_t)s.w;
    for (int c = 0; c < s.c; c++) {
        double sum = 0.0;
        for (int n = 0; n < s.n; n++) {
            const EV_REAL *dp = dy + ((size_t)n * (size_t)s.c + (size_t)c) * plane;
            for (size_t i = 0; i < plane; i++)
                sum += dp[i];
        }
        db[c] += (EV_REAL)sum;
    }
}

/* ---- linear ----------------------------------------------------------------------------------- */

void EV_REF_FN(linear_forward)(const EV_REAL *x, int n, int in, const EV_REAL *w, const EV_REAL *b,
                               int out, EV_REAL *y)
{
    for (int s = 0; s < n; s++)
        for (int o = 0; o < out; o++) {
            const EV_REAL *xr = x + (size_t)s * in, *wr = w + (size_t)o * in;
            double a = b ? (double)b[o] : 0.0;
            for (int i = 0; i < in; i++)
                a += (double)xr[i] * wr[i];
            y[(size_t)s * out + o] = (EV_REAL)a;
        }
}

void EV_REF_FN(linear_backward)(const EV_REAL *x, int n, int in, const EV_REAL *w, int out,
                                const EV_REAL *dy, EV_REAL *dx, EV_REAL *dw, EV_REAL *db)
{
    if (dx)
        for (int s = 0; s < n; s++)
            for (int i = 0; i < in; i++) {
                double a = 0.0;
                for (int o = 0; o < out; o++)
                    a += (double)dy[(size_t)s * out + o] * w[(size_t)o * in + i];
                dx[(size_t)s * in + i] += (EV_REAL)a;
            }
    if (dw)
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double a = 0.0;
                for (int s = 0; s < n; s++)
                    a += (double)dy[(size_t)s * out + o] * x[(size_t)s * in + i];
                dw[(size_t)o * in + i] += (EV_REAL)a;
            }
    if (db)
        for (int o = 0; o < out; o++) {
            double a = 0.0;
            for (int s = 0; s < n; s++)
                a += dy[(size_t)s * out + o];
            db[o] += (EV_REAL)a;
        }
}

/* ---- cross entropy ----------------------------------------------------------------------------- */

/* log(sum(exp(row))) with the max subtracted for stability. */
static inline double EV_REF_FN(log_sum_exp)(const EV_REAL *row, int k, double *max_out)
{
    double max = row[0];
    for (int j = 1; j < k; j++)
        if (row[j] > max)
            max = row[j];
    double sum = 0.0;
    for (int j = 0; j < k; j++)
        sum += exp(row[j] - max);
    *max_out = max;
    return max + log(sum);
}

/* A label outside [0, k) makes the loss NaN (loud) and its sample gets no gradient: the oracle
 * must not read out of bounds, and must not hide the bad label either. */
EV_REAL EV_REF_FN(cross_entropy_forward)(const EV_REAL *logits, int n, int k, const int32_t *labels)
{
    if (n <= 0 || k <= 0)
        return (EV_REAL)0;
    double total = 0.0;
    for (int s = 0; s < n; s++) {
        const EV_REAL *row = logits + (size_t)s * k;
        if (labels[s] < 0 || labels[s] >= k)
            return (EV_REAL)NAN;
        double max;
        total += EV_REF_FN(log_sum_exp)(row, k, &max) - row[labels[s]];
    }
    return (EV_REAL)(total / n);
}

void EV_REF_FN(cross_entropy_backward)(const EV_REAL *logits, int n, int k, const int32_t *labels,
                                       EV_REAL scale, EV_REAL *dlogits)
{
    if (n <= 0 || k <= 0)
        return;
    const double f = (double)scale / n;
    for (int s = 0; s < n; s++) {
        const EV_REAL *row = logits + (size_t)s * k;
        EV_REAL *drow = dlogits + (size_t)s * k;
        if (labels[s] < 0 || labels[s] >= k)
            continue;
        double max;
        const double lse = EV_REF_FN(log_sum_exp)(row, k, &max);
        for (int j = 0; j < k; j++) {
            const double p = exp(row[j] - lse);
            drow[j] += (EV_REAL)(f * (p - (j == labels[s] ? 1.0 : 0.0)));
        }
    }
}

/* ---- drop path --------------------------------------------------------------------------------- */

void EV_REF_FN(drop_path_forward)(const EV_REAL *x, ev_shape s, const EV_REAL *mask, EV_REAL *y)
{
    const size_t sample = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    for (int n = 0; n < s.n; n++)
        for (size_t i = 0; i < sample; i++)
            y[(size_t)n * sample + i] = x[(size_t)n * sample + i] * mask[n];
}

void EV_REF_FN(drop_path_backward)(ev_shape s, const EV_REAL *mask, const EV_REAL *dy, EV_REAL *dx)
{
    const size_t sample = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    for (int n = 0; n < s.n; n++)
        for (size_t i = 0; i < sample; i++)
            dx[(size_t)n * sample + i] += dy[(size_t)n * sample + i] * mask[n];
}

#undef EV_REAL
#undef EV_REF_FN
