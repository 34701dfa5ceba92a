/* adapt.c: label-free adaptation (AdaBN, Li et al. 2016): a model's BatchNorm running
 * statistics re-estimated on a site's own unlabelled frames, every other tensor kept. A scanner
 * whose gain, speckle and sector differ from the training data's shifts each layer's activation
 * statistics; re-estimating them is the one change that needs no labels. */
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "ev_search.h"
#include "ev_yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Appends the source's `training:` section to `to` (without an old `adapted:` entry) and the
 * new `adapted:` entry: one training section, whatever was adapted before. */
static int write_training_section(const char *from, const char *to, const char *model_path,
                                  uint64_t weights_hash, const char *data,
                                  const search_adapt_result *r, ev_error *err)
{
    FILE *in = fopen(from, "r");
    if (!in)
        return ev_fail(err, EV_ERR_IO, "%s: %s", from, strerror(errno));
    FILE *out = fopen(to, "a");
    if (!out) {
        fclose(in);
        return ev_fail(err, EV_ERR_IO, "%s: %s", to, strerror(errno));
    }
    char line[8192];
    bool in_training = false, in_adapted = false;
    fputs("training:\n", out);
    while (fgets(line, sizeof line, in)) {
        const bool indented = line[0] == ' ' || line[0] == '\t';
        if (!indented) {
            in_training = !strncmp(line, "training:", 9);
            continue; /* the section's own header is written above */
        }
        if (!in_training)
            continue;
        if (!strncmp(line, "  ", 2) && line[2] != ' ')
            in_adapted = !strncmp(line + 2, "adapted:", 8);
        if (!in_adapted)
            fputs(line, out);
    }
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    fputs("  adapted:\n    method: adabn\n    source_model: ", out);
    ev_yaml_write_quoted(out, model_path);
    fprintf(out, "\n    source_weights_hash: \"fnv1a64:%016" PRIx64 "\"\n    data: ", weights_hash);
    ev_yaml_write_quoted(out, data);
    fprintf(out, "\n    frames: %d\n    batches: %d\n    bn_layers: %d\n    date: \"%s\"\n",
            r->frames, r->batches, r->bn_layers, date);
    const bool bad = ferror(in);
    fclose(in);
    if (fclose(out) != 0 || bad)
        return ev_fail(err, EV_ERR_IO, "%s: write failed", to);
    return EV_OK;
}

int search_adapt_bn(const char *model_path, const search_dataset *ds, int batch, int threads,
                    const char *data_label, const char *out_dir, search_adapt_result *result,
                    ev_error *err)
{
    memset(result, 0, sizeof *result);
    if (batch < 2 || batch > 4096)
        return ev_fail(err, EV_ERR_INVALID, "adapt: batch %d outside 2..4096", batch);
    ev_model *model = NULL;
    int rc = ev_model_load(model_path, &model, err);
    if (rc)
        return rc;
    ev_preprocess_params pre;
    ev_model_preprocess_params(model, &pre);
    const ev_net *mnet = ev_model_network(model);
    ev_net *net = NULL;
    search_exec *ex = NULL;
    float *input = NULL;
    char src_yaml[PATH_MAX], src_weights[PATH_MAX], dst_yaml[PATH_MAX];
    uint64_t weights_hash = 0;
    if (ds->width != pre.width || ds->height != pre.height || ds->channels != pre.channels) {
        rc = ev_fail(err, EV_ERR_INVALID, "adapt: frames are %dx%dx%d, the model's input %dx%dx%d",
                     ds->width, ds->height, ds->channels, pre.width, pre.height, pre.channels);
        goto out;
    }
    /* one batch of all frames when there are few, else full batches only */
    const int B = ds->count < batch ? ds->count : batch;
    if (B < 2) {
        rc = ev_fail(err, EV_ERR_INVALID,
                     "adapt: %d frame; batch statistics need 2 or more (hundreds to be useful)",
                     ds->count);
        goto out;
    }
    const int batches = ds->count / B;
    if ((rc = ev_bundle_path(model_path, NULL, src_yaml, sizeof src_yaml, err)) ||
        (rc = ev_bundle_path(model_path, "weights.safetensors", src_weights, sizeof src_weights,
                             err)) ||
        (rc = search_file_hash(src_weights, &weights_hash, err)))
        goto out;
    if ((rc = ev_net_create(&mnet->cfg, B, false, &net, err)) ||
        (rc = ev_net_copy_params(net, mnet, err)) ||
        (rc = search_exec_create(net, threads, &ex, err)))
        goto out;
    net->graph.drop_path_prob = 0.0f;
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;
    if (!(input = malloc((size_t)B * fsz * sizeof *input))) {
        rc = ev_fail(err, EV_ERR_NOMEM, "adapt: out of memory");
        goto out;
    }
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < B; i++) {
            const int f = b * B + i;
            search_frame_to_input(ds->pixels + (size_t)f * fsz, ds->width, ds->height, ds->channels,
                                  NULL, NULL, pre.normalize, pre.scale, pre.mean, pre.std,
                                  input + (size_t)i * fsz);
        }
        search_exec_set_bn_momentum(ex, 1.0 / (b + 1)); /* the running average over batches */
        if ((rc = search_exec_forward(ex, input, true, err)))
            goto out;
    }
    result->frames = batches * B;
    result->batches = batches;
    for (int i = 0; i < net->graph.num_nodes; i++)
        result->bn_layers +=
            net->graph.nodes[i].op == EV_OP_BATCHNORM && !net->graph.nodes[i].auxiliary;
    char *names[EV_MAX_CLASSES];
    for (int i = 0; i < ev_model_num_classes(model); i++)
        names[i] = (char *)ev_model_class_name(model, i);
    const char *name = strrchr(out_dir, '/');
    name = name && name[1] ? name + 1 : out_dir;
    /* no calibration: the temperature and threshold were fitted to the old statistics */
    ev_model_info info = {
        .name = name, .class_names = names, .scale = pre.scale, .normalize = pre.normalize};
    for (int c = 0; c < 3; c++) {
        info.mean[c] = c < pre.channels ? pre.mean[c] : 0.0f;
        info.std[c] = c < pre.channels ? pre.std[c] : 1.0f;
    }
    if ((rc = ev_model_write_bundle(out_dir, net, &info, err)))
        goto out;
    snprintf(dst_yaml, sizeof dst_yaml, "%s/model.yaml", out_dir);
    rc = write_training_section(src_yaml, dst_yaml, model_path, weights_hash,
                                data_label ? data_label : "", result, err);
out:
    free(input);
    search_exec_free(ex);
    ev_net_free(net);
    ev_model_free(model);
    return rc;
}
