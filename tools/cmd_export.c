/* cmd_export.c: `echoview export`: a model bundle in another runtime's format (ONNX through the
 * engine's exporter, ev_onnx.h). */
#include "tools.h"
#ifdef EV_HAVE_ONNX_EXPORT
#include "ev_onnx.h"
#endif

#include <stdio.h>
#include <string.h>

static const char *usage =
    "usage: echoview export --model MODEL --format onnx --out FILE [--softmax]\n"
    "  onnx: opset 13, standard ops, BN folded into the convolutions; input \"input\"\n"
    "  (N x C x H x W, N symbolic), output \"logits\" (N x classes, no softmax); metadata\n"
    "  (JSON values): classes, input {width, height, channels}, preprocess {scale, mean, std,\n"
    "  normalize} and temperature. --softmax: a second output \"probabilities\" (N x classes),\n"
    "  softmax(logits / temperature), the calibrated probabilities classify reports. Built only\n"
    "  when protobuf-c is installed.\n";

int cmd_export(int argc, char **argv)
{
    const char *model = NULL, *format = NULL, *out = NULL;
    bool softmax = false;
    const tool_option options[] = {
        TOOL_FLAG("--softmax", &softmax),
        TOOL_STRING("--model", &model),
        TOOL_CHOICE("--format", &format, "onnx"),
        TOOL_STRING("--out", &out),
    };
    const tool_parser parser = {.cmd = "export",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .required = TOOL_REQUIRED("--model", "--format", "--out")};
    int rc = tool_parse_args(&parser, argc, argv);
    if (rc != TOOL_CONTINUE)
        return rc;
#ifdef EV_HAVE_ONNX_EXPORT
    ev_model *m = tool_load_model("export", model);
    if (!m)
        return TOOL_FAILED;
    ev_error err = {0};
    const ev_onnx_options opt = {.probabilities = softmax};
    rc = ev_model_export_onnx_with(m, out, &opt, &err);
    ev_model_free(m);
    if (rc) {
        fprintf(stderr, "echoview export: %s\n", err.message);
        return TOOL_FAILED;
    }
    printf("{\"model\":\"%s\",\"format\":\"%s\",\"out\":\"%s\"}\n", model, format, out);
    return TOOL_OK;
#else
    (void)softmax;
    fprintf(stderr, "echoview export: this build has no ONNX export (protobuf-c was not found)\n");
    return TOOL_FAILED;
#endif
}
