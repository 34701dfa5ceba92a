/* cpu_dispatch.c: the one instruction-set selector (ev_isa.h: AVX-512 > AVX2+FMA > generic,
 * capped by the EV_CPU_ISA environment variable), the cpu backend's kernel set for it, and the
 * packing of weights into the panel layouts the kernels read. Packing is the same for every
 * set, parameterised by the vector width. */
#include "cpu_internal.h"

#include <stdlib.h>
#include <string.h>

bool ev_cpu_isa_supported(ev_cpu_isa isa)
{
    switch (isa) {
    case EV_CPU_ISA_GENERIC:
        return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    case EV_CPU_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case EV_CPU_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default:
        return false;
    }
}

ev_cpu_isa ev_cpu_isa_best(void)
{
    ev_cpu_isa cap = EV_CPU_ISA_AVX512;
    const char *env = getenv("EV_CPU_ISA");
    if (env && strcmp(env, "generic") == 0)
        cap = EV_CPU_ISA_GENERIC;
    else if (env && strcmp(env, "avx2") == 0)
        cap = EV_CPU_ISA_AVX2;
    for (int isa = cap; isa > EV_CPU_ISA_GENERIC; isa--)
        if (ev_cpu_isa_supported((ev_cpu_isa)isa))
            return (ev_cpu_isa)isa;
    return EV_CPU_ISA_GENERIC;
}

const ev_cpu_kernels *ev_cpu_kernels_for(ev_cpu_isa isa)
{
    if (!ev_cpu_isa_supported(isa))
        return NULL;
    switch (isa) {
    case EV_CPU_ISA_GENERIC:
        return ev_cpu_kernels_generic();
    case EV_CPU_ISA_AVX2:
        return ev_cpu_kernels_avx2();
    case EV_CPU_ISA_AVX512:
        return ev_cpu_kernels_avx512();
    default:
        return NULL;
    }
}

const ev_cpu_kernels *ev_cpu_kernels_best(void)
{
    for (int isa = ev_cpu_isa_best(); isa >= 0; isa--) {
        const ev_cpu_kernels *k = ev_cpu_kernels_for((ev_cpu_isa)isa);
        if (k)
            return k;
    }
    return ev_cpu_kernels_generic();
}

/* ---- packing ----------------------------------------------------------------------------------- */

static int panels(int cout, int vl) { return (cout + vl - 1) / vl; }

size_t ev_cpu_pw_size(int cin, int cout, int vl)
{
    return (size_t)panels(cout, vl) * (size_t)vl * ((size_t)cin + 1);
}

/* Weights (cout, taps) row-major, times the folded BN scale, into panels of vl output channels
 * (taps x vl floats each), then cout biases: the layout the pointwise and stem kernels read.
 * Returns the bias. */
static float *pack_panels(const float *w, size_t taps, int cout, const double *scale,
                          const double *shift, int vl, float *out)
{
    const int np = panels(cout, vl);
    memset(out, 0, (size_t)np * (size_t)vl * (taps + 1) * sizeof(float));
    float *bias = out + (size_t)np * taps * (size_t)vl;
    for (int co = 0; co < cout; co++) {
        const double s = scale ? scale[co] : 1.0;
        float *panel = out + (size_t)(co / vl) * taps * (size_t)vl;
        for (size_t t = 0; t < taps; t++)
            panel[t * (size_t)vl + (size_t)(co % vl)] =
                (float)((double)w[(size_t)co * taps + t] * s);
        bias[co] = shift ? (float)shift[co] : 0.0f;
    }
    return bias;
}

void ev_cpu_pw_pack(ev_cpu_pw *pw, const float *w, int cin, int cout, const double *scale,
                    const double *shift, int vl, float *out)
{
    pw->bias = pack_panels(w, (size_t)cin, cout, scale, shift, vl, out);
    pw->cin = cin;
    pw->cout = cout;
    pw->npanels = panels(cout, vl);
    pw->w = out;
}

size_t ev_cpu_dw_size(int c, int k, int vl)
{
    return (size_t)k * (size_t)k * (size_t)panels(c, vl) * (size_t)vl;
}

void ev_cpu_dw_pack(ev_cpu_dw *dw, const float *w, int c, int k, int stride, int pad, int dilation,
                    int vl, float *out)
{
    const int cpad = panels(c, vl) * vl;
    memset(out, 0, ev_cpu_dw_size(c, k, vl) * sizeof(float));
    for (int ch = 0; ch < c; ch++)
        for (int t = 0; t < k * k; t++)
            out[(size_t)t * (size_t)cpad + (size_t)ch] =
                w[(size_t)ch * (size_t)(k * k) + (size_t)t];
    dw->c = c;
    dw->cpad = cpad;
    dw->k = k;
    dw->stride = stride;
    dw->pad = pad;
    dw->dilation = dilation;
    dw->w = out;
}

size_t ev_cpu_stem_size(int cin, int cout, int k, int vl)
{
    return (size_t)panels(cout, vl) * (size_t)vl * ((size_t)cin * (size_t)(k * k) + 1);
}

void ev_cpu_stem_pack(ev_cpu_stem *st, const float *w, int cin, int cout, int k, int stride,
                      int pad, const double *scale, const double *shift, int vl, float *out)
{
    st->bias = pack_panels(w, (size_t)cin * (size_t)(k * k), cout, scale, shift, vl, out);
    st->cin = cin;
    st->cout = cout;
    st->npanels = panels(cout, vl);
    st->k = k;
    st->stride = stride;
    st->pad = pad;
    st->w = out;
}

/* ---- dense convolution: im2col tiles through the pointwise GEMM ----------------------------- */

static int conv_chunks(int K) { return (K + EV_CPU_CONV_KC - 1) / EV_CPU_CONV_KC; }

size_t ev_cpu_conv_size(int cin, int cout, int k, int vl)
{
    const size_t K = (size_t)k * (size_t)k * (size_t)cin;
    return (size_t)panels(cout, vl) * (size_t)vl * (K + (size_t)conv_chunks((int)K));
}

void ev_cpu_conv_pack(ev_cpu_conv *cv, const float *w, int cin, int cout, int k, int stride,
                      int pad, int dilation, const double *scale, const double *shift, int vl,
                      float *out)
{
    const int K = k * k * cin, nc = conv_chunks(K), np = panels(cout, vl);
    memset(out, 0, ev_cpu_conv_size(cin, cout, k, vl) * sizeof(float));
    for (int j = 0; j < nc; j++) {
        const int t0 = j * EV_CPU_CONV_KC, kc = K - t0 < EV_CPU_CONV_KC ? K - t0 : EV_CPU_CONV_KC;
        float *chunk = out + (size_t)j * (size_t)np * (size_t)vl * (EV_CPU_CONV_KC + 1);
        float *bias = chunk + (size_t)np * (size_t)kc * (size_t)vl;
        for (int co = 0; co < cout; co++) {
            const double s = scale ? scale[co] : 1.0;
            float *panel = chunk + (size_t)(co / vl) * (size_t)kc * (size_t)vl;
            for (int r = 0; r < kc; r++) {
                /* row t of K is tap (ky, kx), input channel ci: t = (ky * k + kx) * cin + ci */
                const int t = t0 + r, tap = t / cin, ci = t % cin;
                const float v =
                    w[((size_t)co * (size_t)cin + (size_t)ci) * (size_t)(k * k) + (size_t)tap];
                panel[(size_t)r * (size_t)vl + (size_t)(co % vl)] = (float)((double)v * s);
            }
            if (j == 0)
                bias[co] = shift ? (float)shift[co] : 0.0f;
        }
    }
    *cv = (ev_cpu_conv){.cin = cin,
                        .cout = cout,
                        .k = k,
                        .stride = stride,
                        .pad = pad,
                        .dilation = dilation,
                        .K = K,
                        .nchunks = nc,
                        .npanels = np,
                        .vl = vl,
                        .w = out};
}

ev_cpu_pw ev_cpu_conv_chunk(const ev_cpu_conv *cv, int j)
{
    const int t0 = j * EV_CPU_CONV_KC;
    const int kc = cv->K - t0 < EV_CPU_CONV_KC ? cv->K - t0 : EV_CPU_CONV_KC;
    const float *chunk =
        cv->w + (size_t)j * (size_t)cv->npanels * (size_t)cv->vl * (EV_CPU_CONV_KC + 1);
    return (ev_cpu_pw){.cin = kc,
                       .cout = cv->cout,
                       .npanels = cv->npanels,
                       .w = chunk,
                       .bias = chunk + (size_t)cv->npanels * (size_t)kc * (size_t)cv->vl};
}

int ev_cpu_conv_tile(const ev_cpu_conv *cv)
{
    int t = 65536 / cv->K / 24 * 24;
    return t < 24 ? 24 : t > 192 ? 192 : t;
}

void ev_cpu_conv_run(const ev_cpu_kernels *k, const ev_cpu_conv *cv, const ev_cpu_image *x,
                     int relu, int ow, int p0, int n, float *tile, float *y, ptrdiff_t ys, int acc)
{
    const int K = cv->K, cin = cv->cin, s = cv->stride, d = cv->dilation;
    const ptrdiff_t ld = x->ld;
    /* gather: one output row segment at a time; per tap the valid pixels are one strided run */
    for (int done = 0; done < n;) {
        const int p = p0 + done, oy = p / ow, ox0 = p % ow;
        const int len = ow - ox0 < n - done ? ow - ox0 : n - done;
        float *rows = tile + (size_t)done * (size_t)K;
        for (int ky = 0; ky < cv->k; ky++) {
            const int iy = oy * s - cv->pad + ky * d;
            for (int kx = 0; kx < cv->k; kx++) {
                float *col = rows + (size_t)(ky * cv->k + kx) * (size_t)cin;
                if (iy < 0 || iy >= x->h) {
                    k->zero(col, K, len, cin);
                    continue;
                }
                /* ix = ox * s + off must lie in [0, w) */
                const int off = kx * d - cv->pad;
                const int vlo = off >= 0 ? 0 : (-off + s - 1) / s;
                const int vhi = x->w - 1 - off >= 0 ? (x->w - 1 - off) / s + 1 : 0;
                const int end = ox0 + len;
                int a = vlo > ox0 ? vlo : ox0, b = vhi < end ? vhi : end;
                if (a > end)
                    a = end;
                if (b < a)
                    b = a;
                if (a > ox0)
                    k->zero(col, K, a - ox0, cin);
                if (b > a)
                    k->copy(x->base + ((ptrdiff_t)iy * x->w + (ptrdiff_t)a * s + off) * ld,
                            (ptrdiff_t)s * ld, b - a, cin, col + (size_t)(a - ox0) * (size_t)K, K,
                            0, relu);
                if (end > b)
                    k->zero(col + (size_t)(b - ox0) * (size_t)K, K, end - b, cin);
            }
        }
        done += len;
    }
    for (int j = 0; j < cv->nchunks; j++) {
        const ev_cpu_pw pw = ev_cpu_conv_chunk(cv, j);
        k->pointwise(tile + (size_t)j * EV_CPU_CONV_KC, K, n, 0, &pw, y, ys, j ? 1 : acc);
    }
}
