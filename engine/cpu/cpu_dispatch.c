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
