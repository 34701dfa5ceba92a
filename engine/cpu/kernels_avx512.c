/* kernels_avx512.c: the AVX-512F (+VL) kernels (16 floats per vector, masked channel tails), compiled
 * with function target attributes; chosen at run time. */
#include "cpu_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define VL 16
typedef __m512 vf;
#define AVX512_MASK(n) ((__mmask16)((1u << (n)) - 1u))
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(s) _mm512_set1_ps(s)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_LOAD_N(p, n) _mm512_maskz_loadu_ps(AVX512_MASK(n), (p))
#define V_STORE_N(p, v, n) _mm512_mask_storeu_ps((p), AVX512_MASK(n), (v))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_MUL(a, b) _mm512_mul_ps((a), (b))
#define V_MAX(a, b) _mm512_max_ps((a), (b))
#define V_KEEP(v) __asm__("" : "+v"(v))
#define V_MIN_INF() _mm512_set1_ps(-__builtin_inff())
#define KFN(name) avx512_##name
#define KTARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define KERNELS_NAME "avx512"
/* half-width (256-bit) vectors for channel tails of at most 8, with AVX-512VL masks */
#define HAS_HALF 1
typedef __m256 hv;
#define H_ZERO() _mm256_setzero_ps()
#define H_LOAD(p) _mm256_loadu_ps(p)
#define H_FROM_V(v) _mm512_castps512_ps256(v)
#define H_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define H_ADD(a, b) _mm256_add_ps((a), (b))
#define H_LOAD_N(p, n) _mm256_maskz_loadu_ps((__mmask8)((1u << (n)) - 1u), (p))
#define H_STORE_N(p, v, n) _mm256_mask_storeu_ps((p), (__mmask8)((1u << (n)) - 1u), (v))
#define NR_MAX 4
#define MR_1 8
#define MR_2 8
#define MR_3 8
#define MR_4 6

#include "cpu_kernels_impl.h"

const ev_cpu_kernels *ev_cpu_kernels_avx512(void) { return &avx512_table; }
#else
const ev_cpu_kernels *ev_cpu_kernels_avx512(void) { return NULL; }
#endif
