/* cmd_adapt.c: `echoview adapt`: AdaBN, a model's BatchNorm statistics re-estimated on a site's
 * unlabelled frames (search_adapt_bn does the work), written as a new bundle. */
#include "ev_search.h"
#include "tools.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: echoview adapt --model MODEL --data DIR --out MODEL_DIR [options]\n"
    "  Label-free adaptation (AdaBN): runs the site's own frames through the model and replaces\n"
    "  every BatchNorm's running mean and variance by the average of their batch statistics;\n"
    "  all other weights are copied unchanged. DIR is a folder whose frame files (PNG, JPEG,\n"
    "  PGM, DICOM loops, video) at any depth are read, labels and manifests ignored. The new\n"
    "  bundle's model.yaml keeps the model's training section and adds `adapted:` (source\n"
    "  model and its weights' hash, data, frames); its calibration is dropped (fitted to the\n"
    "  old statistics: recalibrate with `echoview eval --calibrate` on labelled frames).\n"
    "  --batch N (64; all frames when fewer; frames past the last full batch are left out)\n"
    "  --auto-roi  --frames-per-clip N | --clip-frame-step K  --video-fps R (as in train)\n"
    "  --threads T (all cores)  --force (overwrite a model in MODEL_DIR)\n";

int cmd_adapt(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *out = NULL;
    int batch = 64, threads = 0;
    bool force = false;
    search_dataset_options dso = {.channels = 1, .only_split = -1, .unlabelled = true, .seed = 1};
    const tool_option options[] = {
        TOOL_STRING("--model", &model),
        TOOL_STRING("--data", &data),
        TOOL_STRING("--out", &out),
        TOOL_INT("--batch", &batch, 2, 4096),
        TOOL_INT("--threads", &threads, 1, 256),
        TOOL_INT("--frames-per-clip", &dso.frames_per_clip, 1, 100000),
        TOOL_INT("--clip-frame-step", &dso.clip_frame_step, 1, 100000),
        TOOL_FLOAT("--video-fps", &dso.video_fps, 0.01, 1000, NULL),
        TOOL_FLAG("--auto-roi", &dso.auto_roi),
        TOOL_FLAG("--force", &force),
    };
    const tool_parser parser = {.cmd = "adapt",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .required = TOOL_REQUIRED("--model", "--data", "--out")};
    int rc = tool_parse_args(&parser, argc, argv);
    if (rc != TOOL_CONTINUE)
        return rc;
    if (dso.frames_per_clip && dso.clip_frame_step) {
        fprintf(stderr, "echoview adapt: give --frames-per-clip or --clip-frame-step, not both\n");
        return TOOL_USAGE;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/model.yaml", out);
    if (!force && access(path, F_OK) == 0) {
        fprintf(stderr, "echoview adapt: %s already holds a model: give --force to overwrite it\n",
                out);
        return TOOL_FAILED;
    }
    ev_model *m = tool_load_model("adapt", model);
    if (!m)
        return TOOL_FAILED;
    int width, height, channels;
    ev_model_input_shape(m, &width, &height, &channels);
    ev_model_free(m);
    dso.width = width;
    dso.height = height;
    dso.channels = channels;
    dso.threads = threads;
    search_dataset *ds = NULL;
    ev_error err = {0};
    search_adapt_result r;
    if (search_dataset_load(data, &dso, &ds, &err) ||
        search_adapt_bn(model, ds, batch, threads, data, out, &r, &err)) {
        fprintf(stderr, "echoview adapt: %s\n", err.message);
        search_dataset_free(ds);
        return TOOL_FAILED;
    }
    printf("{\"model\":\"%s\",\"frames\":%d,\"frames_left_out\":%d,\"batches\":%d,"
           "\"bn_layers\":%d}\n",
           out, r.frames, ds->count - r.frames, r.batches, r.bn_layers);
    search_dataset_free(ds);
    return TOOL_OK;
}
