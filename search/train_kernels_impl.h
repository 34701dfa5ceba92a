/* train_kernels_impl.h: portable bodies of the training kernels, included once per instruction
 * set with KERNEL_FN(name) defined to give each copy its own names. Loops are written so that
 * the compiler vectorises the inner, unit-stride ones (rows of a plane). */
#include <stdbool.h>
#include <string.h>

/* Dot product with eight partial sums, so the compiler can vectorise it without reassociating. */
static inline float KERNEL_FN(dot)(const float *a, const float *b, int n)
{
    float s[8] = {0};
    int p = 0;
    for (; p + 8 <= n; p += 8)
        for (int l = 0; l < 8; l++)
            s[l] += a[p + l] * b[p + l];
    float t = 0;
    for (; p < n; p++)
        t += a[p] * b[p];
    return (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))) + t;
}

/* Output indices o in [0, out) whose input o * stride + offset lies in [0, in): [*lo, *hi). */
static inline void KERNEL_FN(valid_range)(int in, int out, int offset, int stride, int *lo, int *hi)
{
    int a = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    int last = in - 1 - offset; /* o * stride <= last */
    int b = last < 0 ? 0 : last / stride + 1;
    if (b > out)
        b = out;
    *lo = a;
    *hi = b > a ? b : a;
}

static void KERNEL_FN(gemm_nn_portable)(int M, int K, int P, const float *w, const float *x,
                                        float *y, bool accumulate)
{
    enum { PB = 256 };
    for (int p0 = 0; p0 < P; p0 += PB) {
        const int pn = P - p0 < PB ? P - p0 : PB;
        for (int m = 0; m < M; m++) {
            float acc[PB];
            float *yr = y + (size_t)m * P + p0;
            if (accumulate)
                memcpy(acc, yr, sizeof(float) * (size_t)pn);
            else
                memset(acc, 0, sizeof(float) * (size_t)pn);
            const float *wr = w + (size_t)m * K;
            for (int k = 0; k < K; k++) {
                const float wv = wr[k];
                const float *xr = x + (size_t)k * P + p0;
                for (int p = 0; p < pn; p++)
                    acc[p] += wv * xr[p];
            }
            memcpy(yr, acc, sizeof(float) * (size_t)pn);
        }
    }
}

static void KERNEL_FN(gemm_nt_portable)(int M, int K, int P, const float *dy, const float *x,
                                        double *dw)
{
    enum { PB = 512 };
    for (int p0 = 0; p0 < P; p0 += PB) {
        const int pn = P - p0 < PB ? P - p0 : PB;
        for (int m = 0; m < M; m++) {
            const float *dr = dy + (size_t)m * P + p0;
            for (int k = 0; k < K; k++) {
                dw[(size_t)m * K + k] += (double)KERNEL_FN(dot)(dr, x + (size_t)k * P + p0, pn);
            }
        }
    }
}

static void KERNEL_FN(conv_plane_forward)(const float *x, int xh, int xw, const float *w, int k,
                                          int stride, int pad, int dil, float *y, int yh, int yw)
{
    for (int i = 0; i < k; i++) {
        const int offh = i * dil - pad;
        int h_lo, h_hi;
        KERNEL_FN(valid_range)(xh, yh, offh, stride, &h_lo, &h_hi);
        for (int j = 0; j < k; j++) {
            const int offw = j * dil - pad;
            const float wv = w[i * k + j];
            int w_lo, w_hi;
            KERNEL_FN(valid_range)(xw, yw, offw, stride, &w_lo, &w_hi);
            for (int oh = h_lo; oh < h_hi; oh++) {
                const float *xr = x + (size_t)(oh * stride + offh) * xw + offw;
                float *yr = y + (size_t)oh * yw;
                if (stride == 1)
                    for (int ow = w_lo; ow < w_hi; ow++)
                        yr[ow] += wv * xr[ow];
                else
                    for (int ow = w_lo; ow < w_hi; ow++)
                        yr[ow] += wv * xr[ow * stride];
            }
        }
    }
}

static void KERNEL_FN(conv_plane_backward_data)(const float *dy, int yh, int yw, const float *w,
                                                int k, int stride, int pad, int dil, float *dx,
                                                int xh, int xw)
{
    for (int i = 0; i < k; i++) {
        const int offh = i * dil - pad;
        int h_lo, h_hi;
        KERNEL_FN(valid_range)(xh, yh, offh, stride, &h_lo, &h_hi);
        for (int j = 0; j < k; j++) {
            const int offw = j * dil - pad;
            const float wv = w[i * k + j];
            int w_lo, w_hi;
            KERNEL_FN(valid_range)(xw, yw, offw, stride, &w_lo, &w_hi);
            for (int oh = h_lo; oh < h_hi; oh++) {
                float *xr = dx + (size_t)(oh * stride + offh) * xw + offw;
                const float *yr = dy + (size_t)oh * yw;
                if (stride == 1)
                    for (int ow = w_lo; ow < w_hi; ow++)
                        xr[ow] += wv * yr[ow];
                else
                    for (int ow = w_lo; ow < w_hi; ow++)
                        xr[ow * stride] += wv * yr[ow];
            }
        }
    }
}

static void KERNEL_FN(conv_plane_backward_weight)(const float *x, int xh, int xw, const float *dy,
                                                  int yh, int yw, int k, int stride, int pad,
                                                  int dil, double *dw)
{
    for (int i = 0; i < k; i++) {
        const int offh = i * dil - pad;
        int h_lo, h_hi;
        KERNEL_FN(valid_range)(xh, yh, offh, stride, &h_lo, &h_hi);
        for (int j = 0; j < k; j++) {
            const int offw = j * dil - pad;
            int w_lo, w_hi;
            KERNEL_FN(valid_range)(xw, yw, offw, stride, &w_lo, &w_hi);
            double total = 0.0;
            for (int oh = h_lo; oh < h_hi; oh++) {
                const float *xr = x + (size_t)(oh * stride + offh) * xw + offw;
                const float *yr = dy + (size_t)oh * yw;
                if (stride == 1) {
                    total += KERNEL_FN(dot)(yr + w_lo, xr + w_lo, w_hi - w_lo);
                } else {
                    float s = 0.0f;
                    for (int ow = w_lo; ow < w_hi; ow++)
                        s += yr[ow] * xr[ow * stride];
                    total += s;
                }
            }
            dw[i * k + j] += total;
        }
    }
}
