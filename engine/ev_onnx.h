/* ev_onnx.h: export a model to ONNX (opset 13), so other runtimes (ONNX Runtime, TensorRT)
 * can run the same network: standard ops only, BN folded into the convolutions (a BN of a
 * shared tensor, DenseNet's, as Mul and Add), input "input" (N x C x H x W, N symbolic), output
 * "logits" (N x classes); metadata_props "classes" (JSON array of the class names), "input",
 * "preprocess" and "temperature" (JSON values), what a runtime needs to feed and read the graph;
 * optionally a second output "probabilities" (the softmax of logits / temperature).
 * Built only when protobuf-c is. */
#ifndef EV_ONNX_H
#define EV_ONNX_H

#include "echoview.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

int ev_model_export_onnx(const ev_model *m, const char *path, ev_error *err);

typedef struct ev_onnx_options {
    /* a second output "probabilities" (N x classes) = Softmax(logits / temperature, axis 1),
     * the model's calibrated probabilities, beside "logits" */
    bool probabilities;
} ev_onnx_options;
/* ev_model_export_onnx with options (NULL: the defaults, logits only). */
int ev_model_export_onnx_with(const ev_model *m, const char *path, const ev_onnx_options *o,
                              ev_error *err);

#ifdef __cplusplus
}
#endif
#endif
