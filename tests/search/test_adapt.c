/* test_adapt.c: echoview adapt's AdaBN against statistics recomputed here: after adapting on
 * two batches of frames, every BatchNorm's running mean and variance are the average over the
 * batches of the mean and unbiased variance of that BN's input, taken from the reference
 * executor's training-mode forward (ops_ref) in double; every other tensor is byte-identical;
 * model.yaml keeps the training section with `adapted:`; bad inputs get their messages. */
#include "ev_bundle.h"
#include "ev_search.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SIZE = 16, FRAMES = 10, BATCH = 5 };

int main(void)
{
    ev_error err = {0};
    char root[] = "/tmp/ev_adapt_XXXXXX";
    if (!mkdtemp(root))
        return 1;
    ev_net_config cfg = {0};
    ev_genotype_parse("Genotype(normal=[('sep_conv_3x3', 0), ('max_pool_3x3', 1), "
                      "('dil_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3], "
                      "reduce=[('avg_pool_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 2), "
                      "('max_pool_3x3', 0)], reduce_concat=[2, 3])",
                      &cfg.genotype, &err);
    cfg.init_channels = 4;
    cfg.num_cells = 2;
    ev_layout_from_layers(2, cfg.reduction);
    cfg.in_channels = 1;
    cfg.num_classes = 3;
    cfg.input_height = cfg.input_width = SIZE;
    ev_net *src = NULL, *ref = NULL;
    int rc = ev_net_create(&cfg, 1, false, &src, &err);
    CHECK(rc == 0, "network (%s)", rc ? err.message : "ok");
    if (rc)
        return test_finish();
    ev_net_init_weights(src, 7);
    char *names[] = {"Vue 4 cavités", "PLAX", "other"};
    char model_dir[512], out_dir[512], path[600];
    snprintf(model_dir, sizeof model_dir, "%s/source", root);
    snprintf(out_dir, sizeof out_dir, "%s/adapted", root);
    const ev_model_info info = {
        .name = "source", .class_names = names, .temperature = 1.5f, .confidence_threshold = 0.4f};
    rc = ev_model_write_bundle(model_dir, src, &info, &err);
    CHECK(rc == 0, "source bundle (%s)", rc ? err.message : "ok");
    snprintf(path, sizeof path, "%s/model.yaml", model_dir);
    FILE *f = fopen(path, "a");
    fputs("training:\n  command: \"echoview train x\"\n  adapted:\n    data: \"old\"\n", f);
    fclose(f);

    /* frames: brighter and more contrasted than anything the random init saw */
    static uint8_t pixels[FRAMES * SIZE * SIZE];
    uint64_t rng = 99;
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(120 + 130 * ev_rng_uniform(&rng) * ((i / SIZE) % 3 != 0));
    int32_t labels[FRAMES] = {0};
    search_dataset ds = {.count = FRAMES,
                         .width = SIZE,
                         .height = SIZE,
                         .channels = 1,
                         .pixels = pixels,
                         .labels = labels};
    search_adapt_result res;
    rc = search_adapt_bn(model_dir, &ds, BATCH, 2, "site-frames", out_dir, &res, &err);
    CHECK(rc == 0 && res.frames == FRAMES && res.batches == 2, "adapt: %d frames, %d batches (%s)",
          res.frames, res.batches, rc ? err.message : "ok");
    ev_model *adapted = NULL;
    if (!rc)
        rc = ev_model_load(out_dir, &adapted, &err);
    CHECK(rc == 0, "adapted bundle loads (%s)", rc ? err.message : "ok");
    if (rc)
        return test_finish();
    CHECK(ev_model_num_classes(adapted) == 3 &&
              !strcmp(ev_model_class_name(adapted, 0), "Vue 4 cavités"),
          "the class list is kept");
    CHECK(ev_model_temperature(adapted) == 1.0f, "calibration dropped (temperature %g)",
          (double)ev_model_temperature(adapted));

    /* the reference: batch b's statistics of each BN input in training mode, averaged */
    rc = ev_net_create(&cfg, BATCH, false, &ref, &err);
    if (!rc)
        rc = ev_net_copy_params(ref, src, &err);
    CHECK(rc == 0, "reference network (%s)", rc ? err.message : "ok");
    const ev_net *an = ev_model_network(adapted);
    int nodes = ref->graph.num_nodes;
    double *want_mean = calloc((size_t)ref->num_params * 256, sizeof(double));
    double *want_var = calloc((size_t)ref->num_params * 256, sizeof(double));
    float *input = malloc(sizeof(float) * BATCH * SIZE * SIZE);
    for (int b = 0; b < FRAMES / BATCH && !rc; b++) {
        for (int i = 0; i < BATCH * SIZE * SIZE; i++)
            input[i] = pixels[b * BATCH * SIZE * SIZE + i] / 255.0f;
        rc = ev_net_forward(ref, input, true, &err);
        CHECK(rc == 0, "reference forward (%s)", rc ? err.message : "ok");
        for (int n = 0; n < nodes && !rc; n++) {
            const ev_node *node = &ref->graph.nodes[n];
            if (node->op != EV_OP_BATCHNORM)
                continue;
            const ev_node *x = &ref->graph.nodes[node->inputs[0]];
            const int C = x->shape.c, P = x->shape.h * x->shape.w, N = x->shape.n;
            const int pi = node->param_index[2], pv = node->param_index[3];
            for (int c = 0; c < C; c++) {
                double s = 0, sq = 0;
                for (int k = 0; k < N; k++)
                    for (int p = 0; p < P; p++)
                        s += x->out[((size_t)k * C + c) * P + p];
                const double m = s / ((double)N * P);
                for (int k = 0; k < N; k++)
                    for (int p = 0; p < P; p++) {
                        double d = x->out[((size_t)k * C + c) * P + p] - m;
                        sq += d * d;
                    }
                want_mean[(size_t)pi * 256 + c] += m / (FRAMES / BATCH);
                want_var[(size_t)pv * 256 + c] += sq / ((double)N * P - 1) / (FRAMES / BATCH);
            }
        }
    }
    int bn = 0, bad = 0, changed = 0, others = 0, others_same = 0;
    double worst = 0;
    for (int i = 0; i < src->num_params; i++) {
        const ev_param *s = &src->params[i], *a = &an->params[i];
        if (s->kind == EV_PARAM_RUNNING_MEAN || s->kind == EV_PARAM_RUNNING_VAR) {
            const double *want =
                (s->kind == EV_PARAM_RUNNING_MEAN ? want_mean : want_var) + (size_t)i * 256;
            bn += s->kind == EV_PARAM_RUNNING_MEAN;
            for (size_t j = 0; j < s->numel; j++) {
                double e = fabs(a->data[j] - want[j]) / fmax(1e-3, fabs(want[j]));
                worst = fmax(worst, e);
                if (e > 1e-4 && bad++ < 6)
                    fprintf(stderr, "  %s[%zu]: adapted %.6g, recomputed %.6g, source %.6g\n",
                            s->name, j, (double)a->data[j], want[j], (double)s->data[j]);
                changed += a->data[j] != s->data[j];
            }
        } else {
            others++;
            others_same += !memcmp(a->data, s->data, s->numel * sizeof(float));
        }
    }
    CHECK(bn == res.bn_layers && bn > 4, "%d BN layers (adapt counted %d)", bn, res.bn_layers);
    CHECK(bad == 0,
          "running mean and variance = the batches' average statistics (worst relative "
          "error %.2g, 1e-4 allowed)",
          worst);
    CHECK(changed > 0, "the statistics moved (%d values)", changed);
    CHECK(others > 0 && others_same == others, "%d of %d other tensors byte-identical", others_same,
          others);
    snprintf(path, sizeof path, "%s/model.yaml", out_dir);
    f = fopen(path, "r");
    char text[8192] = {0};
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = 0;
    const char *t = strstr(text, "\ntraining:\n");
    CHECK(t && strstr(t, "  command: \"echoview train x\"\n  adapted:\n    method: adabn\n") &&
              strstr(t, "    data: \"site-frames\"\n    frames: 10\n    batches: 2\n") &&
              !strstr(text, "\"old\"") && !strstr(t + 1, "\ntraining:") &&
              strstr(t, "    source_weights_hash: \"fnv1a64:"),
          "model.yaml: one training section, its old `adapted:` replaced by the new one");
    /* bad inputs */
    ds.count = 1;
    rc = search_adapt_bn(model_dir, &ds, BATCH, 2, "x", out_dir, &res, &err);
    CHECK_ERR(rc, err, "1 frame; batch statistics need 2 or more", "one frame");
    ds.count = FRAMES;
    ds.width = 8;
    rc = search_adapt_bn(model_dir, &ds, BATCH, 2, "x", out_dir, &res, &err);
    CHECK_ERR(rc, err, "frames are 8x16x1, the model's input 16x16x1", "wrong frame size");
    ds.width = SIZE;
    rc = search_adapt_bn("/nonexistent/model", &ds, BATCH, 2, "x", out_dir, &res, &err);
    CHECK(rc != 0, "a missing model fails (%s)", err.message);
    free(want_mean);
    free(want_var);
    free(input);
    ev_model_free(adapted);
    ev_net_free(ref);
    ev_net_free(src);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        return 1;
    return test_finish();
}
