/* kernels_avx2.c: the AVX2 + FMA kernels (8 floats per vector), compiled with function target
 * attributes so the library itself needs no -mavx2; chosen at run time. */
#include "cpu_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

static const int32_t avx2_tail_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
#define AVX2_MASK(n) _mm256_loadu_si256((const __m256i *)(avx2_tail_mask + 8 - (n)))

#define VL 8
typedef __m256 vf;
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(s) _mm256_set1_ps(s)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_LOAD_N(p, n) _mm256_maskload_ps((p), AVX2_MASK(n))
#define V_STORE_N(p, v, n) _mm256_maskstore_ps((p), AVX2_MASK(n), (v))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_KEEP(v) __asm__("" : "+x"(v))
#define V_MIN_INF() _mm256_set1_ps(-__builtin_inff())
#define KFN(name) avx2_##name
#define KTARGET __attribute__((target("avx2,fma")))
#define KERNELS_NAME "avx2"
#define NR_MAX 3
#define MR_1 8
#define MR_2 6
#define MR_3 4
#define MR_4 3
#define STEM_PX 2
#define STEM_NP 3

#include "cpu_kernels_impl.h"

const ev_cpu_kernels *ev_cpu_kernels_avx2(void) { return &avx2_table; }
#else
const ev_cpu_kernels *ev_cpu_kernels_avx2(void) { return NULL; }
#endif
