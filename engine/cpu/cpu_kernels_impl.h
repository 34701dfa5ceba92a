/* cpu_kernels_impl.h: the cpu backend's kernels, written once over a small vector vocabulary and
 * compiled once per instruction set (kernels_generic.c, kernels_avx2.c, kernels_avx512.c define
 * the vocabulary and include this file). Every function carries KTARGET, the per-file
 * `__attribute__((target(...)))`, so the library builds for baseline x86-64 and the dispatcher
 * picks the widest set the machine has.
 *
 * Vocabulary the includer defines: VL, vf, V_ZERO(), V_SET1(s), V_LOAD(p), V_STORE(p, v),
 * V_LOAD_N(p, n), V_STORE_N(p, v, n) (n < VL lanes), V_FMA(a, b, c) = a*b + c, V_ADD, V_MUL,
 * V_MAX, V_MIN_INF (a vector of -inf); KFN(name), KTARGET; NR_MAX (panels per pointwise
 * register tile) and MR_1..MR_4 (pixels per tile for 1..4 panels); KERNELS_NAME. Optional:
 * STEM_PX x STEM_NP (pixels x panels of the stem's register tile; default 4 x 4 for 32
 * registers, set 2 x 3 for 16).
 */

/* V_KEEP(v): keeps a loaded vector in a register, so the compiler does not fold the load into
 * every instruction that uses it (one load per use); a no-op where loads do not fold. */
#ifndef V_KEEP
#define V_KEEP(v) ((void)0)
#endif

#ifndef STEM_PX
#define STEM_PX 4
#define STEM_NP 4
#endif

#define KINLINE static inline __attribute__((always_inline)) KTARGET

/* stores the first n (1..VL) lanes, n >= VL: the whole vector */
KINLINE void KFN(store_part)(float *p, vf v, int n)
{
    if (n >= VL)
        V_STORE(p, v);
    else
        V_STORE_N(p, v, n);
}

KINLINE vf KFN(load_part)(const float *p, int n) { return n >= VL ? V_LOAD(p) : V_LOAD_N(p, n); }

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
                               ptrdiff_t wps, const float *bias, float *y, ptrdiff_t ys, int ncols,
                               int acc, const int MR, const int NF, const int RELU)
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

#define PW_RUN_HALF(MRV, NFV)                                                                   \
    for (int i = 0; i < pn; i += MRV) {                                                         \
        int m = pn - i < MRV ? pn - i : MRV;                                                    \
        if (rl)                                                                                 \
            KFN(pw_tile_half)                                                                   \
            (xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols, acc, MRV, NFV, 1); \
        else                                                                                    \
            KFN(pw_tile_half)                                                                   \
            (xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols, acc, MRV, NFV, 0); \
    }
#endif

#define PW_RUN(MRV, NRV)                                                                        \
    for (int i = 0; i < pn; i += MRV) {                                                         \
        int m = pn - i < MRV ? pn - i : MRV;                                                    \
        if (rl)                                                                                 \
            KFN(pw_tile)                                                                        \
            (xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols, acc, MRV, NRV, 1); \
        else                                                                                    \
            KFN(pw_tile)                                                                        \
            (xb + i * xbs, xbs, m, cin, wg, wps, bg, yg + i * ys, ys, ncols, acc, MRV, NRV, 0); \
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

/* Output pixels per block of the sliding-window path: each input vector of a kernel row is
 * loaded (and rectified) once and feeds every output of the block that uses it, so for 3x3
 * stride 1 a block costs 10 loads per row for 24 FMAs instead of 24 + 24. */
#define DW_NB 8

/* One kernel row of a block of DW_NB interior output pixels for one channel vector: q points at
 * the block's first input pixel in that row, wr at the row's weights (stride cpad per tap). All
 * of KC, S, D are compile-time constants, so the tap selection below folds away. */
KINLINE void KFN(dw_block_row)(const float *q, ptrdiff_t ld, const float *wr, ptrdiff_t cpad,
                               vf *acc, const int RELU, const int KC, const int S, const int D)
{
    const int span = (DW_NB - 1) * S + (KC - 1) * D + 1;
    vf wv[5];
#pragma GCC unroll 5
    for (int t = 0; t < KC; t++)
        wv[t] = V_LOAD(wr + (ptrdiff_t)t * cpad);
#pragma GCC unroll 32
    for (int j = 0; j < span; j++) {
        vf v = V_LOAD(q + (ptrdiff_t)j * ld);
        if (RELU)
            v = V_MAX(v, V_ZERO());
        else
            V_KEEP(v); /* one load, not one memory operand per FMA */
#pragma GCC unroll 8
        for (int i = 0; i < DW_NB; i++) {
            const int t = j - i * S;
            if (t >= 0 && t % D == 0 && t / D < KC)
                acc[i] = V_FMA(v, wv[t / D], acc[i]);
        }
    }
}

/* One block of DW_NB interior outputs whose first input pixel in x is ix0, into o */
KINLINE void KFN(dw_block)(const ev_cpu_image *x, const ev_cpu_dw *dw, int iy0, int ky0, int ky1,
                           int ix0, float *o, ptrdiff_t os, const int RELU, const int KC,
                           const int S, const int D)
{
    const ptrdiff_t ld = x->ld, cpad = dw->cpad;
    for (int c = 0; c < cpad; c += VL) {
        vf acc[DW_NB];
#pragma GCC unroll 8
        for (int b = 0; b < DW_NB; b++)
            acc[b] = V_ZERO();
        for (int ky = ky0; ky < ky1; ky++) {
            const float *q = x->base + ((ptrdiff_t)(iy0 + ky * D) * x->w + ix0) * ld + c;
            KFN(dw_block_row)
            (q, ld, dw->w + (ptrdiff_t)ky * KC * cpad + c, cpad, acc, RELU, KC, S, D);
        }
#pragma GCC unroll 8
        for (int b = 0; b < DW_NB; b++)
            V_STORE(o + (ptrdiff_t)b * os + c, acc[b]);
    }
}

/* Interior blocks of DW_NB outputs starting at output i (every tap inside the image in x);
 * returns the number of outputs done. A last partial block is computed as a whole block ending
 * at output n - 1 that recomputes (identically) outputs already written. */
KINLINE int KFN(dw_blocks)(const ev_cpu_image *x, const ev_cpu_dw *dw, int iy0, int ky0, int ky1,
                           int ox0, int i, int n, float *out, ptrdiff_t os, const int RELU,
                           const int KC, const int S, const int D)
{
    int done = 0;
    for (; i + done + DW_NB <= n; done += DW_NB) {
        const int ix0 = (ox0 + i + done) * S - dw->pad;
        if (ix0 < 0 || ix0 + (DW_NB - 1) * S + (KC - 1) * D >= x->w)
            return done;
        KFN(dw_block)
        (x, dw, iy0, ky0, ky1, ix0, out + (ptrdiff_t)(i + done) * os, os, RELU, KC, S, D);
    }
    if (done && i + done < n) {
        const int first = n - DW_NB, ix0 = (ox0 + first) * S - dw->pad;
        if (ix0 + (DW_NB - 1) * S + (KC - 1) * D < x->w) {
            KFN(dw_block)
            (x, dw, iy0, ky0, ky1, ix0, out + (ptrdiff_t)first * os, os, RELU, KC, S, D);
            done = n - i;
        }
    }
    return done;
}

KINLINE void KFN(dw_row_impl)(const ev_cpu_image *x, const ev_cpu_dw *dw, int oy, int ox0, int n,
                              float *out, ptrdiff_t os, const int RELU, const int KC, const int SC,
                              const int DC)
{
    /* KC: the kernel size as a compile-time constant (3 or 5: tap loops unrolled), 0: any;
     * SC, DC: stride and dilation as constants (sliding-window blocks), 0: from dw */
    const int k = KC ? KC : dw->k, s = dw->stride, d = dw->dilation, cpad = dw->cpad;
    const ptrdiff_t ld = x->ld;
    const int iy0 = oy * s - dw->pad;
    int ky0, ky1;
    KFN(tap_range)(iy0, d, k, x->h, &ky0, &ky1);
    for (int i = 0; i < n; i++) {
        const int ix0 = (ox0 + i) * s - dw->pad;
        if (KC && SC && DC && i + DW_NB <= n && ix0 >= 0) {
            const int done =
                KFN(dw_blocks)(x, dw, iy0, ky0, ky1, ox0, i, n, out, os, RELU, KC, SC, DC);
            if (done) {
                i += done - 1;
                continue;
            }
        }
        if (i + 4 <= n && ix0 >= 0 && ix0 + 3 * s + (k - 1) * d < x->w) {
            /* four interior pixels: every tap valid, one weight load feeds four FMAs */
            const ptrdiff_t step = (ptrdiff_t)s * ld;
            for (int c = 0; c < cpad; c += VL) {
                vf a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
                for (int ky = ky0; ky < ky1; ky++) {
                    const float *row = x->base + ((ptrdiff_t)(iy0 + ky * d) * x->w + ix0) * ld + c;
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

#define DW_SD(RELU, KC)                                                   \
    do {                                                                  \
        if (dw->stride == 1 && dw->dilation == 1)                         \
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, RELU, KC, 1, 1); \
        else if (dw->stride == 1 && dw->dilation == 2)                    \
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, RELU, KC, 1, 2); \
        else if (dw->stride == 2 && dw->dilation == 1)                    \
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, RELU, KC, 2, 1); \
        else if (dw->stride == 2 && dw->dilation == 2)                    \
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, RELU, KC, 2, 2); \
        else                                                              \
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, RELU, KC, 0, 0); \
    } while (0)

static KTARGET void KFN(depthwise_row)(const ev_cpu_image *x, int relu, const ev_cpu_dw *dw, int oy,
                                       int ox0, int n, float *out, ptrdiff_t os)
{
    if (dw->k == 3) {
        if (relu)
            DW_SD(1, 3);
        else
            DW_SD(0, 3);
    } else if (dw->k == 5) {
        if (relu)
            DW_SD(1, 5);
        else
            DW_SD(0, 5);
    } else {
        if (relu)
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 1, 0, 0, 0);
        else
            KFN(dw_row_impl)(x, dw, oy, ox0, n, out, os, 0, 0, 0, 0);
    }
}
#undef DW_SD

/* ---- pooling: padding never wins the max and is not counted in the average ------------------- */

/* One kernel row of a block of DW_NB interior outputs of a k x k pool, one channel vector */
KINLINE void KFN(pool_block_row)(const float *q, ptrdiff_t ld, vf *r, const int AVG, const int KC,
                                 const int S, const int RELU)
{
    const int span = (DW_NB - 1) * S + KC;
#pragma GCC unroll 32
    for (int j = 0; j < span; j++) {
        vf v = V_LOAD(q + (ptrdiff_t)j * ld);
        if (RELU)
            v = V_MAX(v, V_ZERO());
        V_KEEP(v);
#pragma GCC unroll 8
        for (int i = 0; i < DW_NB; i++) {
            const int t = j - i * S;
            if (t >= 0 && t < KC)
                r[i] = AVG ? V_ADD(r[i], v) : V_MAX(r[i], v);
        }
    }
}

/* AVG, KC, S: compile-time average flag, kernel size and stride (KC = 0: any k and stride, no
 * multi-pixel blocks) */
/* writes (or adds) the c-channel vector v of output pixel i to every destination; ONE: a single
 * destination known at compile time */
KINLINE void KFN(store_dests)(const ev_cpu_dest *dst, int ndst, int i, int c, int left, vf v,
                              const int ONE)
{
    for (int d = 0; d < (ONE ? 1 : ndst); d++) {
        float *yp = dst[d].y + (ptrdiff_t)i * dst[d].ys + c;
        vf r = v;
        if (dst[d].acc)
            r = V_ADD(r, KFN(load_part)(yp, left));
        KFN(store_part)(yp, r, left);
    }
}

KINLINE void KFN(pool_row_impl)(const ev_cpu_image *x, int kr, int sr, int pad, int oy, int ox0,
                                int n, const ev_cpu_dest *dst, int ndst, const int AVG,
                                const int KC, const int S, const int ONE, const int RELU)
{
    const int k = KC ? KC : kr, stride = KC ? S : sr;
    const ptrdiff_t ld = x->ld;
    const int iy0 = oy * stride - pad;
    int ky0, ky1;
    KFN(tap_range)(iy0, 1, k, x->h, &ky0, &ky1);
    for (int i = 0; i < n; i++) {
        const int ix0 = (ox0 + i) * stride - pad;
        if (KC && i + DW_NB <= n && ix0 >= 0 && ix0 + (DW_NB - 1) * S + KC <= x->w) {
            /* DW_NB interior pixels: each input vector of a row is loaded once */
            const int count = (ky1 - ky0) * KC;
            const vf inv = V_SET1(count > 0 ? 1.0f / (float)count : 0.0f);
            const float *px = x->base + ((ptrdiff_t)iy0 * x->w + ix0) * ld;
            for (int c = 0; c < x->c; c += VL) {
                vf r[DW_NB];
#pragma GCC unroll 8
                for (int b = 0; b < DW_NB; b++)
                    r[b] = AVG ? V_ZERO() : V_MIN_INF();
                for (int ky = ky0; ky < ky1; ky++)
                    KFN(pool_block_row)
                    (px + (ptrdiff_t)ky * x->w * ld + c, ld, r, AVG, KC, S, RELU);
                const int left = x->c - c;
#pragma GCC unroll 8
                for (int b = 0; b < DW_NB; b++)
                    KFN(store_dests)(dst, ndst, i + b, c, left, AVG ? V_MUL(r[b], inv) : r[b], ONE);
            }
            i += DW_NB - 1;
            continue;
        }
        int kx0, kx1;
        KFN(tap_range)(ix0, 1, k, x->w, &kx0, &kx1);
        const float *px = x->base + ((ptrdiff_t)iy0 * x->w + ix0) * ld;
        const int count = (ky1 - ky0) * (kx1 - kx0);
        const vf inv = V_SET1(count > 0 ? 1.0f / (float)count : 0.0f);
        for (int c = 0; c < x->c; c += VL) {
            vf r = AVG ? V_ZERO() : V_MIN_INF();
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = px + (ptrdiff_t)ky * x->w * ld + c;
                for (int kx = kx0; kx < kx1; kx++) {
                    vf v = V_LOAD(row + (ptrdiff_t)kx * ld);
                    if (RELU)
                        v = V_MAX(v, V_ZERO());
                    r = AVG ? V_ADD(r, v) : V_MAX(r, v);
                }
            }
            if (AVG)
                r = V_MUL(r, inv);
            KFN(store_dests)(dst, ndst, i, c, x->c - c, r, ONE);
        }
    }
}

#define POOL_ONE(AVG, KC, S, RELU)                                                             \
    do {                                                                                       \
        if (ndst == 1)                                                                         \
            KFN(pool_row_impl)(x, k, stride, pad, oy, ox0, n, dst, 1, AVG, KC, S, 1, RELU);    \
        else                                                                                   \
            KFN(pool_row_impl)(x, k, stride, pad, oy, ox0, n, dst, ndst, AVG, KC, S, 0, RELU); \
    } while (0)

/* RELU: the input is rectified as it is loaded (a pool of a ReLU's output) */
#define POOL_KS(RELU)                                                                           \
    do {                                                                                        \
        if (k == 3 && stride == 1) {                                                            \
            if (avg)                                                                            \
                POOL_ONE(1, 3, 1, RELU);                                                        \
            else                                                                                \
                POOL_ONE(0, 3, 1, RELU);                                                        \
        } else if (k == 3 && stride == 2) {                                                     \
            if (avg)                                                                            \
                POOL_ONE(1, 3, 2, RELU);                                                        \
            else                                                                                \
                POOL_ONE(0, 3, 2, RELU);                                                        \
        } else {                                                                                \
            if (avg)                                                                            \
                KFN(pool_row_impl)(x, k, stride, pad, oy, ox0, n, dst, ndst, 1, 0, 0, 0, RELU); \
            else                                                                                \
                KFN(pool_row_impl)(x, k, stride, pad, oy, ox0, n, dst, ndst, 0, 0, 0, 0, RELU); \
        }                                                                                       \
    } while (0)

static KTARGET void KFN(pool_row)(const ev_cpu_image *x, int avg, int relu, int k, int stride,
                                  int pad, int oy, int ox0, int n, const ev_cpu_dest *dst, int ndst)
{
    if (relu)
        POOL_KS(1);
    else
        POOL_KS(0);
}
#undef POOL_KS
#undef POOL_ONE

/* ---- stem: dense conv from the NCHW input, few input channels ------------------------------ */

KINLINE void KFN(stem_tile)(const float *x, int h, int w, const ev_cpu_stem *st, int iy0, int ix0,
                            int ky0, int ky1, int kx0, int kx1, int p0, float *yp, const int NP)
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

/* STEM_PX interior pixels (every tap inside the image) x NP panels at once: independent
 * accumulators instead of NP chains of cin*k*k dependent FMAs per pixel. */
KINLINE void KFN(stem_tile_px)(const float *x, int h, int w, const ev_cpu_stem *st, int iy0,
                               int ix0, int ky0, int ky1, int p0, float *y, ptrdiff_t ys,
                               const int NP)
{
    const int k = st->k, kk = k * k, s = st->stride;
    const ptrdiff_t pstride = (ptrdiff_t)st->cin * kk * VL;
    const float *wp = st->w + p0 * pstride;
    vf a[STEM_PX][4];
#pragma GCC unroll 4
    for (int q = 0; q < STEM_PX; q++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++)
            a[q][j] = V_LOAD(st->bias + (p0 + j) * VL);
    for (int ci = 0; ci < st->cin; ci++) {
        const float *plane = x + (ptrdiff_t)ci * h * w;
        for (int ky = ky0; ky < ky1; ky++) {
            const float *row = plane + (ptrdiff_t)(iy0 + ky) * w + ix0;
            for (int kx = 0; kx < k; kx++) {
                const float *wt = wp + ((ptrdiff_t)ci * kk + ky * k + kx) * VL;
                vf wv[4];
#pragma GCC unroll 4
                for (int j = 0; j < NP; j++)
                    wv[j] = V_LOAD(wt + j * pstride);
#pragma GCC unroll 4
                for (int q = 0; q < STEM_PX; q++) {
                    const vf v = V_SET1(row[q * s + kx]);
#pragma GCC unroll 4
                    for (int j = 0; j < NP; j++)
                        a[q][j] = V_FMA(v, wv[j], a[q][j]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < STEM_PX; q++)
#pragma GCC unroll 4
        for (int j = 0; j < NP; j++) {
            int left = st->cout - (p0 + j) * VL;
            KFN(store_part)(y + q * ys + (p0 + j) * VL, a[q][j], left);
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
        float *yp = y + (ptrdiff_t)i * ys;
        if (i + STEM_PX <= n && ix0 >= 0 && ix0 + (STEM_PX - 1) * st->stride + st->k <= w) {
            for (int p0 = 0; p0 < st->npanels; p0 += STEM_NP) {
                switch (st->npanels - p0 < STEM_NP ? st->npanels - p0 : STEM_NP) {
                case 1:
                    KFN(stem_tile_px)(x, h, w, st, iy0, ix0, ky0, ky1, p0, yp, ys, 1);
                    break;
                case 2:
                    KFN(stem_tile_px)(x, h, w, st, iy0, ix0, ky0, ky1, p0, yp, ys, 2);
                    break;
#if STEM_NP >= 3
                case 3:
                    KFN(stem_tile_px)(x, h, w, st, iy0, ix0, ky0, ky1, p0, yp, ys, 3);
                    break;
#endif
#if STEM_NP >= 4
                default:
                    KFN(stem_tile_px)(x, h, w, st, iy0, ix0, ky0, ky1, p0, yp, ys, 4);
                    break;
#endif
                }
            }
            i += STEM_PX - 1;
            continue;
        }
        int kx0, kx1;
        KFN(tap_range)(ix0, 1, st->k, w, &kx0, &kx1);
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

static KTARGET void KFN(copy)(const float *x, ptrdiff_t xs, int npix, int c, float *y, ptrdiff_t ys,
                              int acc, int relu)
{
    for (int p = 0; p < npix; p++) {
        const float *xp = x + (ptrdiff_t)p * xs;
        float *yp = y + (ptrdiff_t)p * ys;
        for (int j = 0; j < c; j += VL) {
            vf v = V_LOAD(xp + j);
            if (relu)
                v = V_MAX(v, V_ZERO());
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

/* ---- per-channel affine (a batch norm that no conv absorbs: DenseNet's BN of a concat) ----- */

static KTARGET void KFN(affine)(const float *x, ptrdiff_t xs, int npix, int c, const float *scale,
                                const float *shift, float *y, ptrdiff_t ys)
{
    for (int p = 0; p < npix; p++) {
        const float *xp = x + (ptrdiff_t)p * xs;
        float *yp = y + (ptrdiff_t)p * ys;
        for (int j = 0; j < c; j += VL)
            KFN(store_part)
            (yp + j, V_FMA(V_LOAD(xp + j), V_LOAD(scale + j), V_LOAD(shift + j)), c - j);
    }
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
    .affine = KFN(affine),
};

#undef KINLINE
