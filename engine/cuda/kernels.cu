/* kernels.cu: the cuda backend's own kernels (see cuda_kernels.h). Deliberately plain: one
 * thread per output element (a few output channels per thread for 1x1 convolutions), grid-stride
 * loops, 64-bit offsets, float accumulation. The networks are tiny, so launch overhead (removed
 * by CUDA graph replay) matters more than the last percent of bandwidth. */
#include "cuda_kernels.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace
{

const int kThreads = 256;

__device__ __forceinline__ float load(const float *p) { return *p; }
__device__ __forceinline__ float load(const __half *p) { return __half2float(*p); }
__device__ __forceinline__ void store(float *p, float v) { *p = v; }
__device__ __forceinline__ void store(__half *p, float v) { *p = __float2half_rn(v); }

/* ReLU as the reference writes it (x > 0 ? x : 0), so a NaN becomes 0 there as well. */
__device__ __forceinline__ float relu_if(float v, int relu)
{
    return relu ? (v > 0.0f ? v : 0.0f) : v;
}

template <typename T>
__device__ __forceinline__ T *at(const evk_view &v, long long n, long long c, long long h,
                                 long long w)
{
    return static_cast<T *>(v.data) + n * v.nstride + c * v.cstride + h * v.hstride + w;
}

template <typename T> __device__ __forceinline__ void put(T *p, float v, int accumulate)
{
    if (accumulate)
        v += load(p);
    store(p, v);
}

unsigned grid_for(long long total)
{
    long long blocks = (total + kThreads - 1) / kThreads;
    if (blocks > (1LL << 22))
        blocks = 1LL << 22; /* grid-stride loops cover the rest */
    return blocks < 1 ? 1u : (unsigned)blocks;
}

int launched() { return (int)cudaGetLastError(); }

/* ---- convolutions ------------------------------------------------------------------------- */

template <typename T>
__global__ void conv_direct_kernel(int n, evk_view x, evk_view y, const float *__restrict__ w,
                                   const float *__restrict__ bias, int k, int stride, int pad,
                                   int dil, int groups, int accumulate)
{
    const long long total = (long long)n * y.c * y.h * y.w;
    const int cin_g = x.c / groups, cout_g = y.c / groups;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % y.w);
        long long t = i / y.w;
        const int oh = (int)(t % y.h);
        t /= y.h;
        const int co = (int)(t % y.c);
        const long long b = t / y.c;
        const int g = co / cout_g;
        float sum = bias ? bias[co] : 0.0f;
        for (int ci = 0; ci < cin_g; ci++) {
            const float *wk = w + ((long long)co * cin_g + ci) * k * k;
            for (int kh = 0; kh < k; kh++) {
                const int ih = oh * stride - pad + kh * dil;
                if (ih < 0 || ih >= x.h)
                    continue;
                for (int kw = 0; kw < k; kw++) {
                    const int iw = ow * stride - pad + kw * dil;
                    if (iw < 0 || iw >= x.w)
                        continue;
                    const float v = relu_if(load(at<T>(x, b, g * cin_g + ci, ih, iw)), x.relu);
                    sum += wk[kh * k + kw] * v;
                }
            }
        }
        put(at<T>(y, b, co, oh, ow), sum, accumulate);
    }
}

template <typename T, int K>
__global__ void depthwise_kernel(int n, evk_view x, evk_view y, const float *__restrict__ w,
                                 const float *__restrict__ bias, int stride, int pad, int dil,
                                 int accumulate)
{
    const long long total = (long long)n * y.c * y.h * y.w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % y.w);
        long long t = i / y.w;
        const int oh = (int)(t % y.h);
        t /= y.h;
        const int c = (int)(t % y.c);
        const long long b = t / y.c;
        const float *wk = w + (long long)c * K * K;
        const T *plane = at<T>(x, b, c, 0, 0);
        float sum = bias ? bias[c] : 0.0f;
#pragma unroll
        for (int kh = 0; kh < K; kh++) {
            const int ih = oh * stride - pad + kh * dil;
            if (ih < 0 || ih >= x.h)
                continue;
#pragma unroll
            for (int kw = 0; kw < K; kw++) {
                const int iw = ow * stride - pad + kw * dil;
                if (iw < 0 || iw >= x.w)
                    continue;
                sum += wk[kh * K + kw] * relu_if(load(plane + ih * x.hstride + iw), x.relu);
            }
        }
        put(at<T>(y, b, c, oh, ow), sum, accumulate);
    }
}

/* Each thread: one output position, kTile output channels (the input value is loaded once for
 * all of them). Neighbouring threads take neighbouring positions, so loads are coalesced and
 * the weight reads are warp-uniform broadcasts. */
const int kTile = 4;

template <typename T>
__global__ void pointwise_kernel(int n, evk_view x, evk_view y, const float *__restrict__ w,
                                 const float *__restrict__ bias, int stride, int accumulate)
{
    const int tiles = (y.c + kTile - 1) / kTile;
    const long long plane = (long long)y.h * y.w;
    const long long total = (long long)n * tiles * plane;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long p = i % plane;
        long long t = i / plane;
        const int co0 = (int)(t % tiles) * kTile;
        const long long b = t / tiles;
        const int oh = (int)(p / y.w), ow = (int)(p % y.w);
        const T *src = at<T>(x, b, 0, (long long)oh * stride, (long long)ow * stride);
        float acc[kTile];
        const float *wrow[kTile];
#pragma unroll
        for (int j = 0; j < kTile; j++) {
            const int co = co0 + j < y.c ? co0 + j : y.c - 1; /* clamped rows are discarded */
            wrow[j] = w + (long long)co * x.c;
            acc[j] = bias ? bias[co] : 0.0f;
        }
        for (int ci = 0; ci < x.c; ci++) {
            const float v = relu_if(load(src + ci * x.cstride), x.relu);
#pragma unroll
            for (int j = 0; j < kTile; j++)
                acc[j] += wrow[j][ci] * v;
        }
#pragma unroll
        for (int j = 0; j < kTile; j++)
            if (co0 + j < y.c)
                put(at<T>(y, b, co0 + j, oh, ow), acc[j], accumulate);
    }
}

/* ---- pools and elementwise ---------------------------------------------------------------- */

template <typename T>
__global__ void pool_kernel(int n, evk_view x, evk_view y, int k, int stride, int pad, int is_max,
                            int accumulate)
{
    const long long total = (long long)n * y.c * y.h * y.w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % y.w);
        long long t = i / y.w;
        const int oh = (int)(t % y.h);
        t /= y.h;
        const int c = (int)(t % y.c);
        const long long b = t / y.c;
        int h0 = oh * stride - pad, w0 = ow * stride - pad;
        int h1 = min(h0 + k, x.h), w1 = min(w0 + k, x.w);
        h0 = max(h0, 0);
        w0 = max(w0, 0);
        const T *plane = at<T>(x, b, c, 0, 0);
        float result;
        if (is_max) {
            /* first maximum in scan order; padding is never a candidate; a NaN wins */
            bool found = false, nan = false;
            float best = -INFINITY;
            for (int ih = h0; ih < h1 && !nan; ih++)
                for (int iw = w0; iw < w1; iw++) {
                    const float v = relu_if(load(plane + ih * x.hstride + iw), x.relu);
                    if (!found || v > best || isnan(v)) {
                        best = v;
                        found = true;
                        if (isnan(v)) {
                            nan = true;
                            break;
                        }
                    }
                }
            result = best;
        } else {
            float sum = 0.0f;
            for (int ih = h0; ih < h1; ih++)
                for (int iw = w0; iw < w1; iw++)
                    sum += relu_if(load(plane + ih * x.hstride + iw), x.relu);
            const int cells = (h1 - h0) * (w1 - w0); /* count_include_pad = False */
            result = cells > 0 ? sum / (float)cells : 0.0f;
        }
        put(at<T>(y, b, c, oh, ow), result, accumulate);
    }
}

template <typename T>
__global__ void add_kernel(int n, evk_view x, evk_view y, int accumulate, int zero)
{
    const long long total = (long long)n * y.c * y.h * y.w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % y.w);
        long long t = i / y.w;
        const int oh = (int)(t % y.h);
        t /= y.h;
        const int c = (int)(t % y.c);
        const long long b = t / y.c;
        float v = zero ? 0.0f : relu_if(load(at<T>(x, b, c, oh, ow)), x.relu);
        put(at<T>(y, b, c, oh, ow), v, accumulate);
    }
}

template <typename T>
__global__ void bias_add_kernel(int n, evk_view y, const float *__restrict__ bias)
{
    const long long total = (long long)n * y.c * y.h * y.w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % y.w);
        long long t = i / y.w;
        const int oh = (int)(t % y.h);
        t /= y.h;
        const int c = (int)(t % y.c);
        const long long b = t / y.c;
        put(at<T>(y, b, c, oh, ow), bias[c], 1);
    }
}

template <typename T> __global__ void gather_kernel(int n, evk_view x, float *out)
{
    const long long total = (long long)n * x.c * x.h * x.w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int ow = (int)(i % x.w);
        long long t = i / x.w;
        const int oh = (int)(t % x.h);
        t /= x.h;
        const int c = (int)(t % x.c);
        const long long b = t / x.c;
        out[i] = relu_if(load(at<T>(x, b, c, oh, ow)), x.relu);
    }
}

/* One warp per (sample, channel) plane. */
template <typename T> __global__ void gap_kernel(int n, evk_view x, float *gap)
{
    const int lane = threadIdx.x & 31;
    const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
    const int plane = x.h * x.w;
    for (long long nc = warp; nc < (long long)n * x.c; nc += warps) {
        const long long b = nc / x.c;
        const int c = (int)(nc % x.c);
        float sum = 0.0f;
        for (int p = lane; p < plane; p += 32)
            sum += relu_if(load(at<T>(x, b, c, p / x.w, p % x.w)), x.relu);
        for (int off = 16; off > 0; off >>= 1)
            sum += __shfl_down_sync(0xffffffffu, sum, off);
        if (lane == 0)
            gap[nc] = sum / (float)plane;
    }
}

__global__ void linear_kernel(int n, int in, const float *__restrict__ x,
                              const float *__restrict__ w, const float *__restrict__ bias,
                              int classes, float *y)
{
    const long long total = (long long)n * classes;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const int k = (int)(i % classes);
        const long long b = i / classes;
        float sum = bias ? bias[k] : 0.0f;
        for (int c = 0; c < in; c++)
            sum += w[(long long)k * in + c] * x[b * in + c];
        y[i] = sum;
    }
}

__global__ void float_to_half_kernel(const float *in, __half *out, long long count)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
         i += (long long)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(in[i]);
}

long long numel(int n, const evk_view &v) { return (long long)n * v.c * v.h * v.w; }

} // namespace

extern "C" {

int evk_conv_direct(cudaStream_t s, int half, int n, evk_view x, evk_view y, const float *weight,
                    const float *bias, int k, int stride, int pad, int dilation, int groups,
                    int accumulate)
{
    const unsigned grid = grid_for(numel(n, y));
    if (half)
        conv_direct_kernel<__half><<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, k, stride, pad,
                                                             dilation, groups, accumulate);
    else
        conv_direct_kernel<float><<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, k, stride, pad,
                                                            dilation, groups, accumulate);
    return launched();
}

int evk_depthwise(cudaStream_t s, int half, int n, evk_view x, evk_view y, const float *weight,
                  const float *bias, int k, int stride, int pad, int dilation, int accumulate)
{
    const unsigned grid = grid_for(numel(n, y));
    if (k == 3 && half)
        depthwise_kernel<__half, 3>
            <<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, stride, pad, dilation, accumulate);
    else if (k == 3)
        depthwise_kernel<float, 3>
            <<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, stride, pad, dilation, accumulate);
    else if (k == 5 && half)
        depthwise_kernel<__half, 5>
            <<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, stride, pad, dilation, accumulate);
    else if (k == 5)
        depthwise_kernel<float, 5>
            <<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, stride, pad, dilation, accumulate);
    else
        return evk_conv_direct(s, half, n, x, y, weight, bias, k, stride, pad, dilation, y.c,
                               accumulate);
    return launched();
}

int evk_pointwise(cudaStream_t s, int half, int n, evk_view x, evk_view y, const float *weight,
                  const float *bias, int stride, int accumulate)
{
    const long long total = (long long)n * ((y.c + kTile - 1) / kTile) * y.h * y.w;
    const unsigned grid = grid_for(total);
    if (half)
        pointwise_kernel<__half>
            <<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, stride, accumulate);
    else
        pointwise_kernel<float>
            <<<grid, kThreads, 0, s>>>(n, x, y, weight, bias, stride, accumulate);
    return launched();
}

int evk_pool(cudaStream_t s, int half, int n, evk_view x, evk_view y, int k, int stride, int pad,
             int is_max, int accumulate)
{
    const unsigned grid = grid_for(numel(n, y));
    if (half)
        pool_kernel<__half><<<grid, kThreads, 0, s>>>(n, x, y, k, stride, pad, is_max, accumulate);
    else
        pool_kernel<float><<<grid, kThreads, 0, s>>>(n, x, y, k, stride, pad, is_max, accumulate);
    return launched();
}

int evk_add(cudaStream_t s, int half, int n, evk_view x, evk_view y, int accumulate)
{
    const unsigned grid = grid_for(numel(n, y));
    if (half)
        add_kernel<__half><<<grid, kThreads, 0, s>>>(n, x, y, accumulate, 0);
    else
        add_kernel<float><<<grid, kThreads, 0, s>>>(n, x, y, accumulate, 0);
    return launched();
}

int evk_fill_zero(cudaStream_t s, int half, int n, evk_view y)
{
    const unsigned grid = grid_for(numel(n, y));
    if (half)
        add_kernel<__half><<<grid, kThreads, 0, s>>>(n, y, y, 0, 1);
    else
        add_kernel<float><<<grid, kThreads, 0, s>>>(n, y, y, 0, 1);
    return launched();
}

int evk_bias_add(cudaStream_t s, int half, int n, evk_view y, const float *bias)
{
    const unsigned grid = grid_for(numel(n, y));
    if (half)
        bias_add_kernel<__half><<<grid, kThreads, 0, s>>>(n, y, bias);
    else
        bias_add_kernel<float><<<grid, kThreads, 0, s>>>(n, y, bias);
    return launched();
}

int evk_gap_linear(cudaStream_t s, int half, int n, evk_view x, float *gap, const float *weight,
                   const float *bias, int classes, float *logits)
{
    const unsigned grid = grid_for((long long)n * x.c * 32);
    if (half)
        gap_kernel<__half><<<grid, kThreads, 0, s>>>(n, x, gap);
    else
        gap_kernel<float><<<grid, kThreads, 0, s>>>(n, x, gap);
    int rc = launched();
    if (rc)
        return rc;
    linear_kernel<<<grid_for((long long)n * classes), kThreads, 0, s>>>(n, x.c, gap, weight, bias,
                                                                        classes, logits);
    return launched();
}

int evk_float_to_half(cudaStream_t s, const float *in, void *out, long long count)
{
    float_to_half_kernel<<<grid_for(count), kThreads, 0, s>>>(in, static_cast<__half *>(out),
                                                              count);
    return launched();
}

int evk_gather(cudaStream_t s, int half, int n, evk_view x, float *out)
{
    const unsigned grid = grid_for(numel(n, x));
    if (half)
        gather_kernel<__half><<<grid, kThreads, 0, s>>>(n, x, out);
    else
        gather_kernel<float><<<grid, kThreads, 0, s>>>(n, x, out);
    return launched();
}

} // extern "C"
