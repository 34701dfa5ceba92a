/* cuda_kernels.h: the cuda backend's own kernels, as C-callable launchers (kernels.cu) used by
 * the plan compiler (backend_cuda.c).
 *
 * Every activation is addressed through a view, so a kernel can read a channel slice of a
 * concat buffer, a cropped map (FactorizedReduce's x[:, :, 1:, 1:]) or apply ReLU on load
 * without a copy. Activations are float or half (`half` argument); weights, biases and every
 * accumulation are float. `accumulate` adds to what the output already holds (node sums).
 * Launchers return a cudaError_t value (0 = cudaSuccess) from the launch.
 */
#ifndef EV_CUDA_KERNELS_H
#define EV_CUDA_KERNELS_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evk_view {
    void *data; /* element (n, c, h, w) at data + n*nstride + c*cstride + h*hstride + w */
    int c, h, w;
    long long nstride, cstride, hstride;
    int relu; /* apply ReLU when loading */
} evk_view;

/* Dense or grouped convolution, one thread per output (stem, and anything without a faster
 * kernel). weight (cout, x.c/groups, k, k); bias may be NULL. */
int evk_conv_direct(cudaStream_t s, int half, int n, evk_view x, evk_view y, const float *weight,
                    const float *bias, int k, int stride, int pad, int dilation, int groups,
                    int accumulate);
/* Depthwise (groups = channels = y.c), plain or dilated. */
int evk_depthwise(cudaStream_t s, int half, int n, evk_view x, evk_view y, const float *weight,
                  const float *bias, int k, int stride, int pad, int dilation, int accumulate);
/* 1x1 convolution with stride (FactorizedReduce uses stride 2, its second half on a cropped
 * view). weight (y.c, x.c). */
int evk_pointwise(cudaStream_t s, int half, int n, evk_view x, evk_view y, const float *weight,
                  const float *bias, int stride, int accumulate);
/* 3x3-style pools; max: padding never wins, NaN wins; avg: padding not in the divisor. */
int evk_pool(cudaStream_t s, int half, int n, evk_view x, evk_view y, int k, int stride, int pad,
             int is_max, int accumulate);
/* y (+)= x, same shape (identity edges, concat copies). */
int evk_add(cudaStream_t s, int half, int n, evk_view x, evk_view y, int accumulate);
int evk_fill_zero(cudaStream_t s, int half, int n, evk_view y);
/* y[:, c] += bias[c] (after a cuDNN convolution). */
int evk_bias_add(cudaStream_t s, int half, int n, evk_view y, const float *bias);
/* Global average pool of x into gap (n x x.c floats), then logits = gap . W^T + b. */
int evk_gap_linear(cudaStream_t s, int half, int n, evk_view x, float *gap, const float *weight,
                   const float *bias, int classes, float *logits);
/* float -> half, count elements (contiguous). */
int evk_float_to_half(cudaStream_t s, const float *in, void *out, long long count);
/* Any view -> contiguous float NCHW (tests and debugging). */
int evk_gather(cudaStream_t s, int half, int n, evk_view x, float *out);

#ifdef __cplusplus
}
#endif
#endif
