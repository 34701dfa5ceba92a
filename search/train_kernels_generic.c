/* train_kernels_generic.c: the portable training kernels (any CPU). */
#include "train_kernels.h"

#define KERNEL_FN(name) generic_##name
#include "train_kernels_impl.h"

static const search_kernels generic_kernels = {
    .name = "generic",
    .gemm_nn = generic_gemm_nn_portable,
    .gemm_nt = generic_gemm_nt_portable,
    .conv_plane_forward = generic_conv_plane_forward,
    .conv_plane_backward_data = generic_conv_plane_backward_data,
    .conv_plane_backward_weight = generic_conv_plane_backward_weight,
};

const search_kernels *search_kernels_generic(void) { return &generic_kernels; }
