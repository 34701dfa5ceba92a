/* ops_ref.h: the double-precision reference ops (ev_ref64_*), the same functions as the float
 * ev_ref_* ops of ev_internal.h with double data. Gradient tests run on these, and optimised
 * kernels can be compared against them. The scalar hyper-parameters that are data-typed in the
 * float versions (batch norm momentum and eps, the cross-entropy scale and its result) are double
 * here too; shapes and integer parameters are unchanged.
 */
#ifndef EV_OPS_REF_H
#define EV_OPS_REF_H

#include "ev_internal.h"

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
