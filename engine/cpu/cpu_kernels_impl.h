/* cpu_kernels_impl.h: the cpu backend's kernels, written once over a small vector vocabulary and
 * compiled once per instruction set (kernels_generic.c, kernels_avx2.c, kernels_avx512.c define
 * the vocabulary and include this file). Every function carries KTARGET, the per-file
 * `__attribute__((target(...)))`, so the library builds for baseline x86-64 and the dispatcher
 * picks the widest set the machine has.
 *
 * Vocabulary the includer defines: VL, vf, V_ZERO(), V_SET1(s), V_LOAD(p), V_STORE(p, v),
 * V_LOAD_N(p, n), V_STORE_N(p, v, n) (n < VL lanes), V_FMA(a, b, c) = a*b + c, V_ADD, V_MUL,
 * V_MAX, V_MIN_INF (a vector of -inf); KFN(name), KTARGET; NR_MAX (panels per pointwise
 * register tile) and MR_1..MR_4 (pixels per tile for 1..4 panels); KERNELS_NAME.
 */

#define KINLINE static inline __attribute__((always_inline)) KTARGET

/* stores the first n (1..VL) lanes, n >= VL: the whole vector */
KINLINE void KFN(store_part)(float *p, vf v, int n)
{
    if (n >= VL)
        V_STORE(p, v);
    else
        V_STORE_N(p, v, n);
}

KINLINE vf KFN(load_part)(const float *p, int n)
{
    return n >= VL ? V_LOAD(p) : V_LOAD_N(p, n);
}

/* ---- pointwise (1x1) convolution: a small GEMM with an MR-pixel x NR-panel register tile ---- */

KINLINE void KFN(pw_tile)(const float *x, ptrdiff_t xs, int m, int cin, const float *w,
                          ptrdiff_t wps, const float *bias, float *y, ptrdiff_t ys, int ncols,
                          int acc, const int MR, const int NR, const int RELU)
{
    vf c[12][4];
    const float *xp[12];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        /* pixels past m repeat the last one: harmless work, no bounds checks in the loop */
        xp[i] = x + (ptrdiff_t)(i < m ? i : m - 1) * xs;
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++)
            c[i][j] = V_ZERO();
    }
    for (int k = 0; k < cin; k++) {
        vf b[4];
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++)
            b[j] = V_LOAD(w + j * wps + (ptrdiff_t)k * VL);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            vf a = V_SET1(xp[i][k]);
            if (RELU)
                a = V_MAX(a, V_ZERO());
#pragma GCC unroll 4
            for (int j = 0; j < NR; j++)
                c[i][j] = V_FMA(a, b[j], c[i][j]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if (i >= m)
            break;
        float *yp = y + (ptrdiff_t)i * ys;
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++) {
            int left = ncols - j * VL;
            if (left <= 0)
                break;
            vf v = V_ADD(c[i][j], V_LOAD(bias + j * VL));
            if (acc)
                v = V_ADD(v, KFN(load_part)(yp + j * VL, left));
            KFN(store_part)(yp + j * VL, v, left);
        }
    }
}

#ifdef HAS_HALF
/* Same tile with NF full panels plus a last panel of at most VL/2 valid columns computed in
 * half-width vectors: on machines that split wide vectors in two (AMD Zen 4) that halves the
 * cost of the channel tail, e.g. 36 = 16 + 16 + 4 output channels. */
KINLINE void KFN(pw_tile_half)(const float *x, ptrdiff_t xs, int m, int cin, const float *w,
                               ptrdiff_t wps, const float *bias, float *y, ptrdiff_t ys,
                               int ncols, int acc, const int MR, const int NF, const int RELU)
{
    vf c[12][4];
    hv h[12];
    const float *xp[12];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        xp[i] = x + (ptrdiff_t)(i < m ? i : m - 1) * xs;
#pragma GCC unroll 4
        for (int j = 0; j < NF; j++)
            c[i][j] = V_ZERO();
        h[i] = H_ZERO();
    }
    const float *wh = w + NF * wps;
    for (int k = 0; k < cin; k++) {
        vf b[4];
#pragma GCC unroll 4
        for (int j = 0; j < NF; j++)
            b[j] = V_LOAD(w + j * wps + (ptrdiff_t)k * VL);
        const hv bh = H_LOAD(wh + (ptrdiff_t)k * VL);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            vf a = V_SET1(xp[i][k]);
            if (RELU)
                a = V_MAX(a, V_ZERO());
#pragma GCC unroll 4
            for (int j = 0; j < NF; j++)
                c[i][j] = V_FMA(a, b[j], c[i][j]);
            h[i] = H_FMA(H_FROM_V(a), bh, h[i]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if (i >= m)
            break;
        float *yp = y + (ptrdiff_t)i * ys;
#pragma GCC unroll 4
        for (int j = 0; j < NF; j++) {
            vf v = V_ADD(c[i][j], V_LOAD(bias + j * VL));
            if (acc)
                v = V_ADD(v, V_LOAD(yp + j * VL));
            V_STORE(yp + j * VL, v);
        }
        const int left = ncols - NF * VL;
        hv v = H_ADD(h[i], H_LOAD(bias + NF * VL));
        if (acc)
            v = H_ADD(v, H_LOAD_N(yp + NF * VL, left));
        H_STORE_N(yp + NF * VL, v, left);
    }
}

#define PW_RUN_HALF(MRV, NFV)                                                                  \
    for (int i = 0; i < pn; i += MRV) {                                                        \
        int m = pn - i < MRV ? pn - i : MRV;                                                   \
        if (rl)                                                                                \
            KFN(pw_tile_half)(xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols,  \
                              acc, MRV, NFV, 1);                                               \
        else                                                                                   \
            KFN(pw_tile_half)(xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols,  \
                              acc, MRV, NFV, 0);                                               \
    }
#endif

#define PW_RUN(MRV, NRV)                                                                       \
    for (int i = 0; i < pn; i += MRV) {                                                        \
        int m = pn - i < MRV ? pn - i : MRV;                                                   \
        if (rl)                                                                                \
            KFN(pw_tile)(xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols, acc,  \
                         MRV, NRV, 1);                                                         \
        else                                                                                   \
            KFN(pw_tile)(xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols, acc,  \
                         MRV, NRV, 0);                                                         \
    }

static KTARGET void KFN(pointwise)(const float *x, ptrdiff_t xs, int npix, int relu,
                                   const ev_cpu_pw *pw, float *y, ptrdiff_t ys, int acc)
{
    const int cin = pw->cin, np = pw->npanels;
    const ptrdiff_t wps = (ptrdiff_t)cin * VL;
    const int groups = (np + NR_MAX - 1) / NR_MAX;
    const int per = (np + groups - 1) / groups;
    /* a block of pixels stays in L1 while every panel group passes over it */
    enum { BLOCK = 24 };
    /* A rectified input is packed once per block (ReLU vectorised over channels), so the tile
     * loop is pure broadcast-FMA; very wide inputs keep the ReLU in the tile loop instead. */
    enum { PACK_MAX_CIN = 1024 };
    float packed[BLOCK * PACK_MAX_CIN] __attribute__((aligned(64)));
    const int pack = relu && cin <= PACK_MAX_CIN;
    const ptrdiff_t ps = (ptrdiff_t)((cin + VL - 1) / VL) * VL;
    for (int p0 = 0; p0 < npix; p0 += BLOCK) {
        const int pn = npix - p0 < BLOCK ? npix - p0 : BLOCK;
        const float *xb = x + (ptrdiff_t)p0 * xs;
        ptrdiff_t xbs = xs;
        int rl = relu;
        if (pack) {
            for (int i = 0; i < pn; i++)
                for (int c = 0; c < cin; c += VL)
                    V_STORE(packed + i * ps + c, V_MAX(V_LOAD(xb + i * xs + c), V_ZERO()));
            xb = packed;
            xbs = ps;
            rl = 0;
        }
        for (int g = 0; g < np; g += per) {
            const int nr = np - g < per ? np - g : per;
            const float *wg = pw->w + (ptrdiff_t)g * wps;
            const float *bg = pw->bias + (ptrdiff_t)g * VL;
            float *yg = y + (ptrdiff_t)p0 * ys + (ptrdiff_t)g * VL;
            const int ncols = pw->cout - g * VL;
#ifdef HAS_HALF
            if (g + nr == np && ncols - (nr - 1) * VL <= VL / 2) {
                switch (nr) {
                case 1:
                    PW_RUN_HALF(MR_1, 0)
                    break;
                case 2:
                    PW_RUN_HALF(MR_2, 1)
                    break;
                case 3:
                    PW_RUN_HALF(MR_3, 2)
                    break;
                default:
                    PW_RUN_HALF(MR_4, 3)
                    break;
                }
                continue;
            }
#endif
            switch (nr) {
            case 1:
                PW_RUN(MR_1, 1)
                break;
#if NR_MAX >= 2
            case 2:
                PW_RUN(MR_2, 2)
                break;
#endif
#if NR_MAX >= 3
            case 3:
                PW_RUN(MR_3, 3)
                break;
#endif
#if NR_MAX >= 4
            case 4:
                PW_RUN(MR_4, 4)
                break;
#endif
            default:
                break;
            }
        }
    }
}
#undef PW_RUN
#undef PW_RUN_HALF

/* ---- depthwise convolution, one output row segment into a scratch tile ------------------------ */

/* first and one-past-last tap t with 0 <= base + t*d < size */
KINLINE void KFN(tap_range)(int base, int d, int k, int size, int *t0, int *t1)
{
    int lo = 0, hi = k;
    while (lo < k && base + lo * d < 0)
        lo++;
    while (hi > lo && base + (hi - 1) * d >= size)
        hi--;
    *t0 = lo;
    *t1 = hi;
}

KINLINE void KFN(dw_row_impl)(const ev_cpu_image *x, const ev_cpu_dw *dw, int oy, int ox0, int n,
                              float *out, ptrdiff_t os, const int RELU, const int KC)
{
    /* KC: the kernel size as a compile-time constant (3 or 5: tap loops unrolled), 0: any */
    const int k = KC ? KC : dw->k, s = dw->stride, d = dw->dilation, cpad = dw->cpad;
    const ptrdiff_t ld = x->ld;
    const int iy0 = oy * s - dw->pad;
    int ky0, ky1;
    KFN(tap_range)(iy0, d, k, x->h, &ky0, &ky1);
    for (int i = 0; i < n; i++) {
        const int ix0 = (ox0 + i) * s - dw->pad;
        if (i + 4 <= n && ix0 >= 0 && ix0 + 3 * s + (k - 1) * d < x->w) {
            /* four interior pixels: every tap valid, one weight load feeds four FMAs */
            const ptrdiff_t step = (ptrdiff_t)s * ld;
            for (int c = 0; c < cpad; c += VL) {
                vf a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
                for (int ky = ky0; ky < ky1; ky++) {
                    const float *row =
                        x->base + ((ptrdiff_t)(iy0 + ky * d) * x->w + ix0) * ld + c;
                    const float *wr = dw->w + (ptrdiff_t)ky * k * cpad + c;
#pragma GCC unroll 5
                    for (int kx = 0; kx < k; kx++) {
                        const vf wv = V_LOAD(wr + (ptrdiff_t)kx * cpad);
                        const float *q = row + (ptrdiff_t)kx * d * ld;
                        vf v0 = V_LOAD(q), v1 = V_LOAD(q + step);
                        vf v2 = V_LOAD(q + 2 * step), v3 = V_LOAD(q + 3 * step);
                        if (RELU) {
                            v0 = V_MAX(v0, V_ZERO());
                            v1 = V_MAX(v1, V_ZERO());
                            v2 = V_MAX(v2, V_ZERO());
                            v3 = V_MAX(v3, V_ZERO());
                        }
                        a0 = V_FMA(v0, wv, a0);
                        a1 = V_FMA(v1, wv, a1);
                        a2 = V_FMA(v2, wv, a2);
                        a3 = V_FMA(v3, wv, a3);
                    }
                }
                float *o = out + (ptrdiff_t)i * os + c;
                V_STORE(o, a0);
                V_STORE(o + os, a1);
                V_STORE(o + 2 * os, a2);
                V_STORE(o + 3 * os, a3);
            }
            i += 3;
            continue;
        }
        int kx0, kx1;
        KFN(tap_range)(ix0, d, k, x->w, &kx0, &kx1);
        float *o = out + (ptrdiff_t)i * os;
        const float *px = x->base + ((ptrdiff_t)iy0 * x->w + ix0) * ld;
        int c = 0;
        /* two vectors at a time: independent accumulators hide the FMA latency */
        for (; c + 2 * VL <= cpad; c += 2 * VL) {
            vf a0 = V_ZERO(), a1 = V_ZERO();
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = px + (ptrdiff_t)ky * d * x->w * ld + c;
                const float *wr = dw->w + (ptrdiff_t)ky * k * cpad + c;
                for (int kx = kx0; kx < kx1; kx++) {
                    vf v0 = V_LOAD(row + (ptrdiff_t)kx * d * ld);
                    vf v1 = V_LOAD(row + (ptrdiff_t)kx * d * ld + VL);
                    if (RELU) {
                        v0 = V_MAX(v0, V_ZERO());
                        v1 = V_MAX(v1, V_ZERO());
                    }
                    a0 = V_FMA(v0, V_LOAD(wr + (ptrdiff_t)kx * cpad), a0);
                    a1 = V_FMA(v1, V_LOAD(wr + (ptrdiff_t)kx * cpad + VL), a1);
                }
            }
            V_STORE(o + c, a0);
            V_STORE(o + c + VL, a1);
        }
        for (; c < cpad; c += VL) {
            vf a0 = V_ZERO();
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = px + (ptrdiff_t)ky * d * x->w * ld + c;
                const float *wr = dw->w + (ptrdiff_t)ky * k * cpad + c;
                for (int kx = kx0; kx < kx1; kx++) {
                    vf v0 = V_LOAD(row + (ptrdiff_t)kx * d * ld);
                    if (RELU)
                        v0 = V_MAX(v0, V_ZERO());
                    a0 = V_FMA(v0, V_LOAD(wr + (ptrdiff_t)kx * cpad), a0);
                }
            }
            V_STORE(o + c, a0);
        }
    }
}

static KTARGET void KFN(depthwise_row)(const ev_cpu_image *x, int relu, const ev_cpu_dw *dw,
                                       int oy, int ox0, int n, float *out, ptrdiff_t os)
{
    if (dw->k == 3) {
        if (relu)
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 1, 3);
        else
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 0, 3);
    } else if (dw->k == 5) {
        if (relu)
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 1, 5);
        else
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 0, 5);
    } else {
        if (relu)
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 1, 0);
        else
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 0, 0);
    }
}

/* ---- pooling: padding never wins the max and is not counted in the average ------------------- */

static KTARGET void KFN(pool_row)(const ev_cpu_image *x, int avg, int k, int stride, int pad,
                                  int oy, int ox0, int n, float *y, ptrdiff_t ys, int acc)
{
    const ptrdiff_t ld = x->ld;
    const int iy0 = oy * stride - pad;
    int ky0, ky1;
    KFN(tap_range)(iy0, 1, k, x->h, &ky0, &ky1);
    for (int i = 0; i < n; i++) {
        const int ix0 = (ox0 + i) * stride - pad;
        int kx0, kx1;
        KFN(tap_range)(ix0, 1, k, x->w, &kx0, &kx1);
        const float *px = x->base + ((ptrdiff_t)iy0 * x->w + ix0) * ld;
        float *yp = y + (ptrdiff_t)i * ys;
        const int count = (ky1 - ky0) * (kx1 - kx0);
        const vf inv = V_SET1(count > 0 ? 1.0f / (float)count : 0.0f);
        for (int c = 0; c < x->c; c += VL) {
            vf r = avg ? V_ZERO() : V_MIN_INF();
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = px + (ptrdiff_t)ky * x->w * ld + c;
                for (int kx = kx0; kx < kx1; kx++) {
                    vf v = V_LOAD(row + (ptrdiff_t)kx * ld);
                    r = avg ? V_ADD(r, v) : V_MAX(r, v);
                }
            }
            if (avg)
                r = V_MUL(r, inv);
            const int left = x->c - c;
            if (acc)
                r = V_ADD(r, KFN(load_part)(yp + c, left));
            KFN(store_part)(yp + c, r, left);
        }
    }
}

/* ---- stem: dense conv from the NCHW input, few input channels ------------------------------ */

KINLINE void KFN(stem_tile)(const float *x, int h, int w, const ev_cpu_stem *st, int iy0, int ix0,
                            int ky0, int ky1, int kx0, int kx1, int p0, float *yp,
                            const int NP)
{
    const int k = st->k, kk = k * k;
    const ptrdiff_t pstride = (ptrdiff_t)st->cin * kk * VL;
    const float *wp = st->w + p0 * pstride;
    vf a[4];
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++)
        a[j] = V_LOAD(st->bias + (p0 + j) * VL);
    for (int ci = 0; ci < st->cin; ci++) {
        const float *plane = x + (ptrdiff_t)ci * h * w;
        for (int ky = ky0; ky < ky1; ky++) {
            const float *row = plane + (ptrdiff_t)(iy0 + ky) * w + ix0;
            for (int kx = kx0; kx < kx1; kx++) {
                const vf v = V_SET1(row[kx]);
                const float *wt = wp + ((ptrdiff_t)ci * kk + ky * k + kx) * VL;
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++)
                    a[j] = V_FMA(v, V_LOAD(wt + j * pstride), a[j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < NP; j++) {
        int left = st->cout - (p0 + j) * VL;
        KFN(store_part)(yp + (p0 + j) * VL, a[j], left);
    }
}

static KTARGET void KFN(stem_row)(const float *x, int h, int w, const ev_cpu_stem *st, int oy,
                                  int ox0, int n, float *y, ptrdiff_t ys)
{
    const int iy0 = oy * st->stride - st->pad;
    int ky0, ky1;
    KFN(tap_range)(iy0, 1, st->k, h, &ky0, &ky1);
    for (int i = 0; i < n; i++) {
        const int ix0 = (ox0 + i) * st->stride - st->pad;
        int kx0, kx1;
        KFN(tap_range)(ix0, 1, st->k, w, &kx0, &kx1);
        float *yp = y + (ptrdiff_t)i * ys;
        for (int p0 = 0; p0 < st->npanels; p0 += 4) {
            switch (st->npanels - p0 < 4 ? st->npanels - p0 : 4) {
            case 1:
                KFN(stem_tile)(x, h, w, st, iy0, ix0, ky0, ky1, kx0, kx1, p0, yp, 1);
                break;
            case 2:
                KFN(stem_tile)(x, h, w, st, iy0, ix0, ky0, ky1, kx0, kx1, p0, yp, 2);
                break;
            case 3:
                KFN(stem_tile)(x, h, w, st, iy0, ix0, ky0, ky1, kx0, kx1, p0, yp, 3);
                break;
            default:
                KFN(stem_tile)(x, h, w, st, iy0, ix0, ky0, ky1, kx0, kx1, p0, yp, 4);
                break;
            }
        }
    }
}

/* ---- identity edges (copy or accumulate) and zero fill ------------------------------------- */

static KTARGET void KFN(copy)(const float *x, ptrdiff_t xs, int npix, int c, float *y,
                              ptrdiff_t ys, int acc)
{
    for (int p = 0; p < npix; p++) {
        const float *xp = x + (ptrdiff_t)p * xs;
        float *yp = y + (ptrdiff_t)p * ys;
        for (int j = 0; j < c; j += VL) {
            vf v = V_LOAD(xp + j);
            if (acc)
                v = V_ADD(v, KFN(load_part)(yp + j, c - j));
            KFN(store_part)(yp + j, v, c - j);
        }
    }
}

static KTARGET void KFN(zero)(float *y, ptrdiff_t ys, int npix, int c)
{
    for (int p = 0; p < npix; p++)
        for (int j = 0; j < c; j += VL)
            KFN(store_part)(y + (ptrdiff_t)p * ys + j, V_ZERO(), c - j);
}

static const ev_cpu_kernels KFN(table) = {
    .name = KERNELS_NAME,
    .vl = VL,
    .pointwise = KFN(pointwise),
    .depthwise_row = KFN(depthwise_row),
    .pool_row = KFN(pool_row),
    .stem_row = KFN(stem_row),
    .copy = KFN(copy),
    .zero = KFN(zero),
};

#undef KINLINE
