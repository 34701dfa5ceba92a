/* train_kernels_avx2.c: the training kernels for AVX2 + FMA: the 1x1 convolutions as register-
 * blocked GEMMs with intrinsics (4 output rows x 16 pixels per step), the plane loops of
 * train_kernels_impl.h auto-vectorised for the same target. Selected at run time. */
#include "ev_isa.h"
#include "train_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#pragma GCC push_options
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#define KERNEL_FN(name) avx2_##name
#include "train_kernels_impl.h"

static inline float hsum(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

static void avx2_gemm_nn(int M, int K, int P, const float *w, const float *x, float *y,
                         bool accumulate)
{
    const int P16 = P & ~15, M4 = M & ~3;
    for (int p = 0; p < P16; p += 16) {
        int m = 0;
        for (; m < M4; m += 4) {
            __m256 a00, a01, a10, a11, a20, a21, a30, a31;
            float *y0 = y + (size_t)m * P + p, *y1 = y0 + P, *y2 = y1 + P, *y3 = y2 + P;
            if (accumulate) {
                a00 = _mm256_loadu_ps(y0), a01 = _mm256_loadu_ps(y0 + 8);
                a10 = _mm256_loadu_ps(y1), a11 = _mm256_loadu_ps(y1 + 8);
                a20 = _mm256_loadu_ps(y2), a21 = _mm256_loadu_ps(y2 + 8);
                a30 = _mm256_loadu_ps(y3), a31 = _mm256_loadu_ps(y3 + 8);
            } else {
                a00 = a01 = a10 = a11 = a20 = a21 = a30 = a31 = _mm256_setzero_ps();
            }
            const float *w0 = w + (size_t)m * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
            const float *xp = x + p;
            for (int k = 0; k < K; k++, xp += P) {
                const __m256 x0 = _mm256_loadu_ps(xp), x1 = _mm256_loadu_ps(xp + 8);
                __m256 b = _mm256_broadcast_ss(w0 + k);
                a00 = _mm256_fmadd_ps(b, x0, a00), a01 = _mm256_fmadd_ps(b, x1, a01);
                b = _mm256_broadcast_ss(w1 + k);
                a10 = _mm256_fmadd_ps(b, x0, a10), a11 = _mm256_fmadd_ps(b, x1, a11);
                b = _mm256_broadcast_ss(w2 + k);
                a20 = _mm256_fmadd_ps(b, x0, a20), a21 = _mm256_fmadd_ps(b, x1, a21);
                b = _mm256_broadcast_ss(w3 + k);
                a30 = _mm256_fmadd_ps(b, x0, a30), a31 = _mm256_fmadd_ps(b, x1, a31);
            }
            _mm256_storeu_ps(y0, a00), _mm256_storeu_ps(y0 + 8, a01);
            _mm256_storeu_ps(y1, a10), _mm256_storeu_ps(y1 + 8, a11);
            _mm256_storeu_ps(y2, a20), _mm256_storeu_ps(y2 + 8, a21);
            _mm256_storeu_ps(y3, a30), _mm256_storeu_ps(y3 + 8, a31);
        }
        for (; m < M; m++) {
            float *y0 = y + (size_t)m * P + p;
            __m256 a0 = accumulate ? _mm256_loadu_ps(y0) : _mm256_setzero_ps();
            __m256 a1 = accumulate ? _mm256_loadu_ps(y0 + 8) : _mm256_setzero_ps();
            const float *w0 = w + (size_t)m * K, *xp = x + p;
            for (int k = 0; k < K; k++, xp += P) {
                const __m256 b = _mm256_broadcast_ss(w0 + k);
                a0 = _mm256_fmadd_ps(b, _mm256_loadu_ps(xp), a0);
                a1 = _mm256_fmadd_ps(b, _mm256_loadu_ps(xp + 8), a1);
            }
            _mm256_storeu_ps(y0, a0), _mm256_storeu_ps(y0 + 8, a1);
        }
    }
    if (P16 < P) /* the last few pixels of every row */
        for (int m = 0; m < M; m++)
            for (int p = P16; p < P; p++) {
                float a = accumulate ? y[(size_t)m * P + p] : 0.0f;
                for (int k = 0; k < K; k++)
                    a += w[(size_t)m * K + k] * x[(size_t)k * P + p];
                y[(size_t)m * P + p] = a;
            }
}

static void avx2_gemm_nt(int M, int K, int P, const float *dy, const float *x, double *dw)
{
    enum { PB = 512 };
    for (int p0 = 0; p0 < P; p0 += PB) {
        const int pn = P - p0 < PB ? P - p0 : PB, p8 = pn & ~7;
        int m = 0;
        for (; m + 2 <= M; m += 2) {
            const float *d0 = dy + (size_t)m * P + p0, *d1 = d0 + P;
            int k = 0;
            for (; k + 4 <= K; k += 4) {
                const float *x0 = x + (size_t)k * P + p0, *x1 = x0 + P, *x2 = x1 + P, *x3 = x2 + P;
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00,
                       a11 = a00, a12 = a00, a13 = a00;
                for (int p = 0; p < p8; p += 8) {
                    const __m256 e0 = _mm256_loadu_ps(d0 + p), e1 = _mm256_loadu_ps(d1 + p);
                    __m256 v = _mm256_loadu_ps(x0 + p);
                    a00 = _mm256_fmadd_ps(e0, v, a00), a10 = _mm256_fmadd_ps(e1, v, a10);
                    v = _mm256_loadu_ps(x1 + p);
                    a01 = _mm256_fmadd_ps(e0, v, a01), a11 = _mm256_fmadd_ps(e1, v, a11);
                    v = _mm256_loadu_ps(x2 + p);
                    a02 = _mm256_fmadd_ps(e0, v, a02), a12 = _mm256_fmadd_ps(e1, v, a12);
                    v = _mm256_loadu_ps(x3 + p);
                    a03 = _mm256_fmadd_ps(e0, v, a03), a13 = _mm256_fmadd_ps(e1, v, a13);
                }
                float t[8] = {0};
                for (int p = p8; p < pn; p++) {
                    t[0] += d0[p] * x0[p], t[1] += d0[p] * x1[p];
                    t[2] += d0[p] * x2[p], t[3] += d0[p] * x3[p];
                    t[4] += d1[p] * x0[p], t[5] += d1[p] * x1[p];
                    t[6] += d1[p] * x2[p], t[7] += d1[p] * x3[p];
                }
                double *r0 = dw + (size_t)m * K + k, *r1 = r0 + K;
                r0[0] += (double)(hsum(a00) + t[0]), r0[1] += (double)(hsum(a01) + t[1]);
                r0[2] += (double)(hsum(a02) + t[2]), r0[3] += (double)(hsum(a03) + t[3]);
                r1[0] += (double)(hsum(a10) + t[4]), r1[1] += (double)(hsum(a11) + t[5]);
                r1[2] += (double)(hsum(a12) + t[6]), r1[3] += (double)(hsum(a13) + t[7]);
            }
            for (; k < K; k++) {
                const float *xk = x + (size_t)k * P + p0;
                dw[(size_t)m * K + k] += (double)avx2_dot(d0, xk, pn);
                dw[(size_t)(m + 1) * K + k] += (double)avx2_dot(d1, xk, pn);
            }
        }
        for (; m < M; m++)
            for (int k = 0; k < K; k++)
                dw[(size_t)m * K + k] +=
                    (double)avx2_dot(dy + (size_t)m * P + p0, x + (size_t)k * P + p0, pn);
    }
}

static const search_kernels avx2_kernels = {
    .name = "avx2",
    .gemm_nn = avx2_gemm_nn,
    .gemm_nt = avx2_gemm_nt,
    .conv_plane_forward = avx2_conv_plane_forward,
    .conv_plane_backward_data = avx2_conv_plane_backward_data,
    .conv_plane_backward_weight = avx2_conv_plane_backward_weight,
};

#pragma GCC pop_options

const search_kernels *search_kernels_avx2(void)
{
    return ev_cpu_isa_supported(EV_CPU_ISA_AVX2) ? &avx2_kernels : NULL;
}

#else
const search_kernels *search_kernels_avx2(void) { return NULL; }
#endif
