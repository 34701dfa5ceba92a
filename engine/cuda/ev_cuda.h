/* ev_cuda.h: controls and inspection hooks of the cuda backend beyond the generic plan API, for
 * benchmarks, device checks and tests. They exist only in builds with the backend (meson defines
 * EV_HAVE_CUDA_BACKEND in cuda_c_args) and answer EV_ERR_UNSUPPORTED (or NULL) for a plan that is
 * not a cuda plan. */
#ifndef EV_CUDA_H
#define EV_CUDA_H

#ifndef EV_ENGINE_PRIVATE
#error "ev_cuda.h is private to the engine, its tests and benchmarks (docs/ARCHITECTURE.md)"
#endif

#include "echoview.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Replay the forward captured as a CUDA graph (the default, 1) or launch its kernels one by one
 * on every run (0). Results are identical; only the launch overhead differs. */
int ev_cuda_plan_set_graphs(ev_plan *plan, int enabled);

/* Use cuDNN for dense convolutions without ReLU-on-load (stem, pointwise after depthwise) (1, the
 * default when cuDNN works on this machine) or the backend's own kernels everywhere (0).
 * Re-captures the graph. EV_ERR_UNSUPPORTED when enabling and cuDNN is not usable. */
int ev_cuda_plan_set_cudnn(ev_plan *plan, int enabled);

/* One line: which libcudnn the backend loaded at run time ("cuDNN 9.x.y from FILE") or why it
 * uses its own kernels only. */
const char *ev_cuda_cudnn_status(void);

/* One line: device, precision, batch, step counts, cuDNN and graph state. Owned by the plan. */
const char *ev_cuda_plan_describe(const ev_plan *plan);

/* For tests: the kernel that produced graph node `node` of the model's network, when the plan
 * keeps that node's value after a run ("depthwise", "depthwise_dilated", "pointwise_bn",
 * "factorized_reduce", "node_sum", "concat", "stem", ...); NULL when the node is fused away (a
 * ReLU applied on load, a conv folded into its BN, an edge accumulated into its node sum). */
const char *ev_cuda_plan_node_kernel(const ev_plan *plan, int node);
/* Copies the value of such a node after the last run to out (batch x C x H x W floats,
 * count = that many). Allocates; not for the hot path. */
int ev_cuda_plan_node_output(ev_plan *plan, int node, float *out, size_t count, ev_error *err);

#ifdef __cplusplus
}
#endif
#endif
