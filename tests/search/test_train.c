/* test_train.c: training on a tiny phantom set: the loss decreases, the same seed gives the same
 * weight bytes, and an interrupted run resumed from its checkpoint ends with exactly the bytes
 * of an uninterrupted one (on a different thread count, too). */
#include "echophantom.h"
#include "ev_bundle.h"
#include "ev_search.h"
#include "media.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

static char root[256];

static int make_phantom(int patients, int frames, int size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/data", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/data/manifest.csv", root);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "path,label,split,patient,quality\n");
    ep_renderer *r = ep_renderer_create(size, size);
    media_image img;
    ev_error err = {0};
    media_image_alloc(&img, size, size, 1, 8, &err);
    for (int p = 0; p < patients; p++) {
        ep_patient pat;
        ep_patient_init(&pat, 100 + p);
        const char *split = p < patients * 6 / 10   ? "train"
                            : p < patients * 8 / 10 ? "val"
                                                    : "test";
        for (int v = 0; v < EP_VIEW_COUNT; v++) {
            ep_scan scan;
            ep_scan_init(&scan, v, 1000 * p + v);
            scan.framing = EP_FRAMING_SECTOR;
            for (int k = 0; k < frames; k++) {
                scan.noise_seed = k;
                ep_render(r, &pat, &scan, 0.3 * k, img.data, img.stride);
                char rel[64];
                snprintf(rel, sizeof rel, "p%d_v%d_%d.png", p, v, k);
                snprintf(path, sizeof path, "%s/data/%s", root, rel);
                if (media_image_write_png(path, &img, &err))
                    return -1;
                fprintf(f, "%s,%s,%s,p%d,%d\n", rel, ep_view_name(v), split, p, scan.quality);
            }
        }
    }
    media_image_free(&img);
    ep_renderer_free(r);
    return fclose(f);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

static bool same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* The epochs' train_loss values in DIR/train.jsonl: the count, the first and the last. */
static int train_losses(const char *dir, double *first, double *last)
{
    char path[600], line[1024];
    int lines = 0;
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    FILE *f = fopen(path, "r");
    *first = *last = 0;
    while (f && fgets(line, sizeof line, f)) {
        const char *t = strstr(line, "\"train_loss\":");
        if (t) {
            *last = atof(t + 13);
            if (!lines++)
                *first = *last;
        }
    }
    if (f)
        fclose(f);
    return lines;
}

static search_train_options base(search_dataset *ds, const char *out)
{
    search_train_options o;
    search_train_defaults(&o);
    ev_error err = {0};
    ev_genotype_load_file(EV_MODELS_DIR "/genotypes/DARTS_V2.yaml", &o.genotype, &err);
    o.dataset = ds;
    o.out_dir = out;
    o.num_cells = 2;
    memset(o.reduction, 0, sizeof o.reduction);
    o.reduction[1] = true;
    o.init_channels = 4;
    o.size = 16;
    o.batch = 28;
    o.epochs = 4;
    o.max_steps = 6;
    o.lr = 3e-3f;
    o.patience = 0;
    o.threads = 2;
    o.quiet = true;
    return o;
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/echoview-test-train-XXXXXX");
    if (!mkdtemp(root) || make_phantom(10, 2, 32)) {
        printf("setup failed\n");
        return 1;
    }
    char data[512], a[512], b[512], c[512], pa[600], pb[600];
    snprintf(data, sizeof data, "%s/data", root);
    search_dataset_options dso = {.width = 16,
                                  .height = 16,
                                  .channels = 1,
                                  .seed = 1,
                                  .max_bad_fraction = -1,
                                  .threads = 2,
                                  .only_split = -1,
                                  .quiet = true};
    search_dataset *ds = NULL;
    ev_error err = {0};
    int rc = search_dataset_load(data, &dso, &ds, &err);
    CHECK(rc == 0, "tiny phantom set loads (%s)", rc ? err.message : "ok");
    if (rc)
        return test_finish();
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(c, sizeof c, "%s/c", root);

    search_train_options o = base(ds, a);
    search_train_result r;
    rc = search_train(&o, &r, &err);
    CHECK(rc == 0 && r.epochs_run == 4, "run A: 4 epochs (%s)", rc ? err.message : "ok");
    /* loss curve from the JSONL log */
    double first = 0, last = 0;
    int lines = train_losses(a, &first, &last);
    CHECK(lines == 4 && last < 0.8 * first, "training loss decreases: %.3f -> %.3f over %d epochs",
          first, last, lines);

    o = base(ds, b);
    o.threads = 1;
    rc = search_train(&o, &r, &err);
    snprintf(pa, sizeof pa, "%s/weights.safetensors", a);
    snprintf(pb, sizeof pb, "%s/weights.safetensors", b);
    CHECK(rc == 0 && same_file(pa, pb),
          "same seed, 2 vs 1 threads: identical weights.safetensors bytes");
    snprintf(pa, sizeof pa, "%s/checkpoint.safetensors", a);
    snprintf(pb, sizeof pb, "%s/checkpoint.safetensors", b);
    CHECK(same_file(pa, pb), "and identical checkpoints (weights, optimiser state, counters)");

    o = base(ds, c);
    o.stop_after = 2; /* interrupted after 2 epochs */
    rc = search_train(&o, &r, &err);
    CHECK(rc == 0 && r.epochs_run == 2, "run C stops after 2 epochs (%s)", rc ? err.message : "ok");
    o = base(ds, c);
    o.resume = true;
    o.threads = 3;
    rc = search_train(&o, &r, &err);
    CHECK(rc == 0 && r.epochs_run == 4, "run C resumes to epoch 4 (%s)", rc ? err.message : "ok");
    snprintf(pb, sizeof pb, "%s/checkpoint.safetensors", c);
    CHECK(same_file(pa, pb), "resumed checkpoint is bit-identical to the uninterrupted run's");
    snprintf(pa, sizeof pa, "%s/weights.safetensors", a);
    snprintf(pb, sizeof pb, "%s/weights.safetensors", c);
    CHECK(same_file(pa, pb), "and so is the best-validation bundle");

    o = base(ds, c);
    o.resume = true;
    o.init_channels = 6;
    rc = search_train(&o, &r, &err);
    CHECK_ERR(rc, err, "the checkpoint was made with another network", "resume with other options");

    /* the transfer recipe: sector normalisation in the bundle, deterministic across threads,
     * and temperature scaling fitted on the validation split */
    char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s/d1", root);
    snprintf(d2, sizeof d2, "%s/d2", root);
    o = base(ds, d1);
    o.augment_recipe = "transfer";
    o.normalize = EV_NORMALIZE_SECTOR;
    rc = search_train(&o, &r, &err);
    o = base(ds, d2);
    o.augment_recipe = "transfer";
    o.normalize = EV_NORMALIZE_SECTOR;
    o.threads = 1;
    rc |= search_train(&o, &r, &err);
    snprintf(pa, sizeof pa, "%s/weights.safetensors", d1);
    snprintf(pb, sizeof pb, "%s/weights.safetensors", d2);
    CHECK(rc == 0 && same_file(pa, pb),
          "transfer augmentation + sector normalisation: identical weights on 2 and 1 threads");
    ev_model *m = NULL;
    rc = ev_model_load(d1, &m, &err);
    ev_preprocess_params pre = {0};
    if (!rc)
        ev_model_preprocess_params(m, &pre);
    CHECK(rc == 0 && pre.normalize == EV_NORMALIZE_SECTOR, "the bundle says normalize: sector (%s)",
          rc ? err.message : "ok");
    search_calibration cal;
    if (!rc)
        rc = search_calibrate(m, ds, SEARCH_SPLIT_VAL, 2, 0.05, &cal, &err);
    CHECK(rc == 0 && cal.frames > 0 && cal.temperature >= 0.05f && cal.temperature <= 20.0f &&
              cal.nll_after <= cal.nll_before + 1e-9 && cal.confidence_threshold >= 0.0f &&
              cal.confidence_threshold < 1.0f,
          "calibration on val: temperature %.3f, NLL %.4f -> %.4f, ECE %.4f -> %.4f, threshold "
          "%.3f (%s)",
          cal.temperature, cal.nll_before, cal.nll_after, cal.ece_before, cal.ece_after,
          cal.confidence_threshold, rc ? err.message : "ok");
    ev_model_free(m);
    m = NULL;
    if (!rc)
        rc = ev_model_write_calibration(d1, cal.temperature, cal.confidence_threshold, &err);
    if (!rc)
        rc = ev_model_load(d1, &m, &err);
    search_eval_result er = {0};
    if (!rc)
        rc = search_evaluate(m, ds, SEARCH_SPLIT_VAL, 2, &er, &err);
    CHECK(rc == 0 && fabs(er.ece - cal.ece_after) < 1e-5 &&
              fabs(er.unknown_fraction - cal.unknown_fraction) < 1e-9,
          "the calibrated bundle evaluates to the fitted ECE %.4f and unknown share %.3f (%s)",
          er.ece, er.unknown_fraction, rc ? err.message : "ok");
    search_eval_result_free(&er);
    ev_model_free(m);
    rc = search_calibrate(NULL, ds, SEARCH_SPLIT_VAL, 2, 0.7, &cal, &err);
    CHECK_ERR(rc, err, "reject fraction 0.7 outside 0..0.5", "calibrate: a bad reject fraction");

    /* an `other` class: the Suprasternal frames relabelled other stand in for non-2D screens */
    char other_csv[600], e[512], line2[512];
    snprintf(other_csv, sizeof other_csv, "%s/data/other.csv", root);
    snprintf(pa, sizeof pa, "%s/data/manifest.csv", root);
    FILE *in = fopen(pa, "r"), *out = fopen(other_csv, "w");
    int others = 0;
    while (in && out && fgets(line2, sizeof line2, in)) {
        char *lab = strstr(line2, ",Suprasternal,");
        if (lab) {
            fprintf(out, "%.*s,other,%s", (int)(lab - line2), line2, lab + strlen(",Suprasternal,"));
            others++;
        } else {
            fputs(line2, out);
        }
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    snprintf(e, sizeof e, "%s/e", root);
    o = base(NULL, e);
    o.data = other_csv;
    o.other_class = true;
    o.epochs = 1;
    rc = search_train(&o, &r, &err);
    m = NULL;
    if (!rc)
        rc = ev_model_load(e, &m, &err);
    CHECK(rc == 0 && others == 20 && ev_model_num_classes(m) == 15 &&
              !strcmp(ev_model_class_name(m, 14), "other"),
          "--other: 15 classes, the last 'other', trained from %d frames labelled other (%s)",
          others, rc ? err.message : "ok");
    ev_model_free(m);
    o = base(ds, e);
    o.other_class = true;
    o.num_classes = 3;
    rc = search_train(&o, &r, &err);
    CHECK_ERR(rc, err, "an 'other' class goes after the 14 views", "--other with a class list");

    search_dataset_free(ds);

    /* a baseline (ResNet18 at 32 px) through the same trainer: a few steps decrease the loss */
    dso.width = dso.height = 32;
    rc = search_dataset_load(data, &dso, &ds, &err);
    char rdir[512];
    snprintf(rdir, sizeof rdir, "%s/resnet18", root);
    o = base(ds, rdir);
    o.arch = EV_ARCH_RESNET18;
    o.size = 32;
    o.batch = 4;
    o.epochs = 3;
    o.max_steps = 4;
    o.lr = 1e-3f;
    if (!rc)
        rc = search_train(&o, &r, &err);
    lines = train_losses(rdir, &first, &last);
    snprintf(pa, sizeof pa, "%s/model.yaml", rdir);
    m = NULL;
    if (!rc)
        rc = ev_model_load(pa, &m, &err);
    CHECK(rc == 0 && lines == 3 && last < first && m &&
              ev_model_network(m)->cfg.arch == EV_ARCH_RESNET18,
          "resnet18 at 32 px trains: loss %.3f -> %.3f over %d epochs, bundle says arch resnet18 "
          "(%s)",
          first, last, lines, rc ? err.message : "ok");
    ev_model_free(m);
    search_dataset_free(ds);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("could not remove %s\n", root);
    return test_finish();
}
