/* ops_ref.h: the reference ops (ops_ref.c, bodies in ops_ref_impl.h): every op of the graph
 * forward and backward as plain NCHW loops, compiled twice. The float ev_ref_* ops are what the
 * reference executor runs and what every optimised kernel (cpu, cuda, the training kernels of
 * search/) is tested against; search/'s training executor also calls the ones it has no faster
 * kernel for. The double ev_ref64_* ops are the same functions with double data, for the
 * finite-difference gradient checks: the scalar hyper-parameters that are data-typed in the float
 * versions (batch norm momentum and eps, the cross-entropy scale and its result) are double
 * there too; shapes and integer parameters are unchanged.
 */
#ifndef EV_OPS_REF_H
#define EV_OPS_REF_H

#include "ev_graph.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- float: the reference of every executor ----------------------------------------------- */
/* Shapes in ev_shape; gradient outputs are accumulated (+=) into dx/dw so that fan-out works. */

typedef struct ev_conv_desc {
    int kernel_h, kernel_w, stride, pad, dilation, groups;
} ev_conv_desc;

int ev_conv2d_out_size(int in, int kernel, int stride, int pad, int dilation);
void ev_ref_conv2d_forward(const float *x, ev_shape xs, const float *w, int cout,
                           const ev_conv_desc *d, float *y, ev_shape ys);
void ev_ref_conv2d_backward(const float *x, ev_shape xs, const float *w, int cout,
                            const ev_conv_desc *d, const float *dy, ev_shape ys, float *dx,
                            float *dw);

/* saved: 2*C floats (batch mean, inverse std) written in training mode.
 * gamma/beta may be NULL (affine off). */
void ev_ref_batchnorm_forward(const float *x, ev_shape s, const float *gamma, const float *beta,
                              float *running_mean, float *running_var, bool training,
                              float momentum, float eps, float *saved, float *y);
void ev_ref_batchnorm_backward(const float *x, ev_shape s, const float *gamma, const float *saved,
                               bool training, const float *running_var, float eps, const float *dy,
                               float *dx, float *dgamma, float *dbeta);

void ev_ref_relu_forward(const float *x, size_t n, float *y);
void ev_ref_relu_backward(const float *x, size_t n, const float *dy, float *dx);

void ev_ref_maxpool_forward(const float *x, ev_shape xs, int k, int stride, int pad, float *y,
                            ev_shape ys);
void ev_ref_maxpool_backward(const float *x, ev_shape xs, int k, int stride, int pad,
                             const float *dy, ev_shape ys, float *dx);
void ev_ref_avgpool_forward(const float *x, ev_shape xs, int k, int stride, int pad, float *y,
                            ev_shape ys);
void ev_ref_avgpool_backward(ev_shape xs, int k, int stride, int pad, const float *dy, ev_shape ys,
                             float *dx);

/* channel concat of inputs (each n x c_i x h x w) into y; backward splits dy */
void ev_ref_concat_forward(const float *const *xs, const int *channels, int count, ev_shape ys,
                           float *y);
void ev_ref_concat_backward(const float *dy, ev_shape ys, const int *channels, int count,
                            float *const *dxs);

void ev_ref_crop_forward(const float *x, ev_shape xs, int crop, float *y);
void ev_ref_crop_backward(ev_shape xs, int crop, const float *dy, float *dx);

void ev_ref_gap_forward(const float *x, ev_shape xs, float *y);
void ev_ref_gap_backward(ev_shape xs, const float *dy, float *dx);

/* PyTorch's AdaptiveAvgPool2d from xs to ys's height and width (windows may overlap) */
void ev_ref_adaptive_avgpool_forward(const float *x, ev_shape xs, float *y, ev_shape ys);
void ev_ref_adaptive_avgpool_backward(ev_shape xs, const float *dy, ev_shape ys, float *dx);
/* y[n, c, :, :] += b[c]; db[c] += sum of dy[:, c, :, :] */
void ev_ref_bias_forward(float *y, ev_shape s, const float *b);
void ev_ref_bias_backward(const float *dy, ev_shape s, float *db);

/* y[n, out] = x[n, in] . w[out, in] + b[out] */
void ev_ref_linear_forward(const float *x, int n, int in, const float *w, const float *b, int out,
                           float *y);
void ev_ref_linear_backward(const float *x, int n, int in, const float *w, int out, const float *dy,
                            float *dx, float *dw, float *db);

/* mean over the batch of -log softmax(logits)[label]; dlogits = (softmax - onehot)/n * scale */
float ev_ref_cross_entropy_forward(const float *logits, int n, int k, const int32_t *labels);
void ev_ref_cross_entropy_backward(const float *logits, int n, int k, const int32_t *labels,
                                   float scale, float *dlogits);

/* mask: n floats, each 0 or 1/keep */
void ev_ref_drop_path_forward(const float *x, ev_shape s, const float *mask, float *y);
void ev_ref_drop_path_backward(ev_shape s, const float *mask, const float *dy, float *dx);

/* ---- double: the same ops for the gradient checks ----------------------------------------- */

void ev_ref64_conv2d_forward(const double *x, ev_shape xs, const double *w, int cout,
                             const ev_conv_desc *d, double *y, ev_shape ys);
void ev_ref64_conv2d_backward(const double *x, ev_shape xs, const double *w, int cout,
                              const ev_conv_desc *d, const double *dy, ev_shape ys, double *dx,
                              double *dw);

void ev_ref64_batchnorm_forward(const double *x, ev_shape s, const double *gamma,
                                const double *beta, double *running_mean, double *running_var,
                                bool training, double momentum, double eps, double *saved,
                                double *y);
void ev_ref64_batchnorm_backward(const double *x, ev_shape s, const double *gamma,
                                 const double *saved, bool training, const double *running_var,
                                 double eps, const double *dy, double *dx, double *dgamma,
                                 double *dbeta);

void ev_ref64_relu_forward(const double *x, size_t n, double *y);
void ev_ref64_relu_backward(const double *x, size_t n, const double *dy, double *dx);

void ev_ref64_maxpool_forward(const double *x, ev_shape xs, int k, int stride, int pad, double *y,
                              ev_shape ys);
void ev_ref64_maxpool_backward(const double *x, ev_shape xs, int k, int stride, int pad,
                               const double *dy, ev_shape ys, double *dx);
void ev_ref64_avgpool_forward(const double *x, ev_shape xs, int k, int stride, int pad, double *y,
                              ev_shape ys);
void ev_ref64_avgpool_backward(ev_shape xs, int k, int stride, int pad, const double *dy,
                               ev_shape ys, double *dx);

void ev_ref64_concat_forward(const double *const *xs, const int *channels, int count, ev_shape ys,
                             double *y);
void ev_ref64_concat_backward(const double *dy, ev_shape ys, const int *channels, int count,
                              double *const *dxs);

void ev_ref64_crop_forward(const double *x, ev_shape xs, int crop, double *y);
void ev_ref64_crop_backward(ev_shape xs, int crop, const double *dy, double *dx);

void ev_ref64_gap_forward(const double *x, ev_shape xs, double *y);
void ev_ref64_gap_backward(ev_shape xs, const double *dy, double *dx);

void ev_ref64_adaptive_avgpool_forward(const double *x, ev_shape xs, double *y, ev_shape ys);
void ev_ref64_adaptive_avgpool_backward(ev_shape xs, const double *dy, ev_shape ys, double *dx);
void ev_ref64_bias_forward(double *y, ev_shape s, const double *b);
void ev_ref64_bias_backward(const double *dy, ev_shape s, double *db);

void ev_ref64_linear_forward(const double *x, int n, int in, const double *w, const double *b,
                             int out, double *y);
void ev_ref64_linear_backward(const double *x, int n, int in, const double *w, int out,
                              const double *dy, double *dx, double *dw, double *db);

double ev_ref64_cross_entropy_forward(const double *logits, int n, int k, const int32_t *labels);
void ev_ref64_cross_entropy_backward(const double *logits, int n, int k, const int32_t *labels,
                                     double scale, double *dlogits);

void ev_ref64_drop_path_forward(const double *x, ev_shape s, const double *mask, double *y);
void ev_ref64_drop_path_backward(ev_shape s, const double *mask, const double *dy, double *dx);

#endif
