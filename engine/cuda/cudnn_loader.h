/* cudnn_loader.h: cuDNN, loaded at run time (engine-private).
 *
 * The cuda backend does not link libcudnn: a binary built here runs on a GPU machine that has
 * only the driver (every convolution on our own kernels), and uses cuDNN wherever a
 * libcudnn.so.9 can be found: EV_CUDNN_LIBRARY (a file), then the dynamic loader's search
 * (LD_LIBRARY_PATH, the system), then the lib folders of the NVIDIA Python wheels next to the
 * interpreter (nvidia/cudnn/lib, nvidia/cu13/lib), which is where PyTorch's cuDNN lives.
 * cudnn.h is still needed at build time, for the types.
 */
#ifndef EV_CUDNN_LOADER_H
#define EV_CUDNN_LOADER_H

#include <cudnn.h>

/* X(return type, name, parameter list): every cuDNN entry point the backend calls */
#define EV_CUDNN_FUNCTIONS(X)                                                                    \
    X(cudnnStatus_t, cudnnCreate, (cudnnHandle_t *))                                             \
    X(cudnnStatus_t, cudnnDestroy, (cudnnHandle_t))                                              \
    X(cudnnStatus_t, cudnnSetStream, (cudnnHandle_t, cudaStream_t))                              \
    X(const char *, cudnnGetErrorString, (cudnnStatus_t))                                        \
    X(size_t, cudnnGetVersion, (void))                                                           \
    X(cudnnStatus_t, cudnnCreateTensorDescriptor, (cudnnTensorDescriptor_t *))                   \
    X(cudnnStatus_t, cudnnDestroyTensorDescriptor, (cudnnTensorDescriptor_t))                    \
    X(cudnnStatus_t, cudnnSetTensor4dDescriptorEx,                                               \
      (cudnnTensorDescriptor_t, cudnnDataType_t, int, int, int, int, int, int, int, int))        \
    X(cudnnStatus_t, cudnnCreateFilterDescriptor, (cudnnFilterDescriptor_t *))                   \
    X(cudnnStatus_t, cudnnDestroyFilterDescriptor, (cudnnFilterDescriptor_t))                    \
    X(cudnnStatus_t, cudnnSetFilter4dDescriptor,                                                 \
      (cudnnFilterDescriptor_t, cudnnDataType_t, cudnnTensorFormat_t, int, int, int, int))       \
    X(cudnnStatus_t, cudnnCreateConvolutionDescriptor, (cudnnConvolutionDescriptor_t *))         \
    X(cudnnStatus_t, cudnnDestroyConvolutionDescriptor, (cudnnConvolutionDescriptor_t))          \
    X(cudnnStatus_t, cudnnSetConvolution2dDescriptor,                                            \
      (cudnnConvolutionDescriptor_t, int, int, int, int, int, int, cudnnConvolutionMode_t,       \
       cudnnDataType_t))                                                                         \
    X(cudnnStatus_t, cudnnSetConvolutionMathType, (cudnnConvolutionDescriptor_t, cudnnMathType_t)) \
    X(cudnnStatus_t, cudnnGetConvolution2dForwardOutputDim,                                      \
      (const cudnnConvolutionDescriptor_t, const cudnnTensorDescriptor_t,                        \
       const cudnnFilterDescriptor_t, int *, int *, int *, int *))                               \
    X(cudnnStatus_t, cudnnGetConvolutionForwardAlgorithm_v7,                                     \
      (cudnnHandle_t, const cudnnTensorDescriptor_t, const cudnnFilterDescriptor_t,              \
       const cudnnConvolutionDescriptor_t, const cudnnTensorDescriptor_t, const int, int *,      \
       cudnnConvolutionFwdAlgoPerf_t *))                                                         \
    X(cudnnStatus_t, cudnnGetConvolutionForwardWorkspaceSize,                                    \
      (cudnnHandle_t, const cudnnTensorDescriptor_t, const cudnnFilterDescriptor_t,              \
       const cudnnConvolutionDescriptor_t, const cudnnTensorDescriptor_t,                        \
       cudnnConvolutionFwdAlgo_t, size_t *))                                                     \
    X(cudnnStatus_t, cudnnConvolutionForward,                                                    \
      (cudnnHandle_t, const void *, const cudnnTensorDescriptor_t, const void *,                 \
       const cudnnFilterDescriptor_t, const void *, const cudnnConvolutionDescriptor_t,          \
       cudnnConvolutionFwdAlgo_t, void *, size_t, const void *, const cudnnTensorDescriptor_t,   \
       void *))

typedef struct ev_cudnn_api {
#define EV_CUDNN_MEMBER(ret, name, params) ret(*name) params;
    EV_CUDNN_FUNCTIONS(EV_CUDNN_MEMBER)
#undef EV_CUDNN_MEMBER
    char path[512]; /* the library that was loaded */
} ev_cudnn_api;

/* The loaded API, or NULL when no usable libcudnn.so.9 was found (then ev_cudnn_status() says
 * why). Loads once per process; safe from any thread. */
const ev_cudnn_api *ev_cudnn_get(void);

/* One line: "cuDNN 9.x.y from PATH" or why cuDNN is not used. */
const char *ev_cudnn_status(void);

#endif
