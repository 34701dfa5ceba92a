/* kernels_generic.c: the portable kernels (GCC/Clang vector extensions, 4 floats: one SSE or NEON register), used on
 * machines without AVX2 and on other architectures. */
#include "cpu_internal.h"

#include <string.h>

#define VL 4
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int vi __attribute__((vector_size(VL * sizeof(int))));

static inline vf generic_load(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline vf generic_load_n(const float *p, int n)
{
    vf v = {0};
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}
static inline void generic_store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline void generic_store_n(float *p, vf v, int n)
{
    memcpy(p, &v, (size_t)n * sizeof(float));
}
static inline vf generic_max(vf a, vf b)
{
    vi m = a > b;
    return (vf)(((vi)a & m) | ((vi)b & ~m));
}

#define V_ZERO() ((vf){0})
#define V_SET1(s) ((vf){0} + (float)(s))
#define V_LOAD(p) generic_load(p)
#define V_STORE(p, v) generic_store((p), (v))
#define V_LOAD_N(p, n) generic_load_n((p), (n))
#define V_STORE_N(p, v, n) generic_store_n((p), (v), (n))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_ADD(a, b) ((a) + (b))
#define V_MUL(a, b) ((a) * (b))
#define V_MAX(a, b) generic_max((a), (b))
#define V_MIN_INF() ((vf){0} - __builtin_inff())
#define KFN(name) generic_##name
#define KTARGET
#define KERNELS_NAME "generic"
#define NR_MAX 3
#define MR_1 4
#define MR_2 4
#define MR_3 4
#define MR_4 4
#define STEM_PX 2
#define STEM_NP 3

#include "cpu_kernels_impl.h"

const ev_cpu_kernels *ev_cpu_kernels_generic(void) { return &generic_table; }
