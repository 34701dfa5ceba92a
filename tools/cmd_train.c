/* cmd_train.c: `echoview train`: retrains a DARTS network from scratch on a dataset and writes
 * the best-validation model bundle (search_train does the work). */
#include "ev_search.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "usage: echoview train --data DIR|manifest.csv --out MODEL_DIR [options]\n"
    "  network:   --genotype NAME|FILE (DARTS_V2)  --layout normal,reduce,normal,reduce | --layers N\n"
    "             --init-channels C (16)  --size PX (96)\n"
    "  schedule:  --epochs N (800, at most 800)  --batch N (64)  --patience N (20; 0 = off)\n"
    "             --optimizer adam|sgd (adam)  --lr X (adam 1e-4, sgd 0.025)  --weight-decay X (0;\n"
    "             sgd 3e-4)  --momentum X (0.9)  --cosine  --grad-clip X (0 = off; sgd 5)\n"
    "             --auxiliary W (0 = no head)  --drop-path P (0)\n"
    "  data:      --no-augment  --auto-roi  --max-bad-fraction F (0.05)  --train-fraction F (1)\n"
    "  run:       --threads T (all cores)  --seed S (1)  --resume  --log FILE (MODEL_DIR/train.jsonl)\n"
    "             --init-from MODEL (start from a bundle's weights, e.g. trained at a smaller size)\n"
    "             --quiet  --stop-after N (stop after N epochs of this run, as if interrupted)\n"
    "             --steps-per-epoch N (cap; default: training frames / batch)\n"
    "             --val-frames N (validate on N evenly spaced validation frames; default all)\n"
    "             --benchmark N: time N training steps on random frames (no --data needed)\n"
    "  Balanced online batches (equal frames per view, small views oversampled); early stopping\n"
    "  on the validation loss; a checkpoint every epoch (MODEL_DIR/checkpoint.safetensors) that\n"
    "  --resume continues exactly. Writes MODEL_DIR/model.yaml + weights.safetensors (the best\n"
    "  validation epoch), ready for `echoview classify` and `echoview eval`.\n";

int tool_load_genotype(const char *cmd, const char *spec, ev_genotype *out, char *name,
                       size_t name_size)
{
    ev_error err = {0};
    struct stat st;
    char path[4096];
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    snprintf(name, name_size, "%s", base);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = 0;
    if (stat(spec, &st) == 0)
        return ev_genotype_load_file(spec, out, &err) ? (fprintf(stderr, "echoview %s: %s\n", cmd, err.message), -1) : 0;
    const char *dirs[] = {"models/genotypes", EV_MODELS_DIR "/genotypes"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.yaml", dirs[i], spec);
        if (stat(path, &st) == 0) {
            if (ev_genotype_load_file(path, out, &err)) {
                fprintf(stderr, "echoview %s: %s\n", cmd, err.message);
                return -1;
            }
            return 0;
        }
    }
    if (ev_genotype_parse(spec, out, &err) == 0) { /* the one-line form on the command line */
        snprintf(name, name_size, "custom");
        return 0;
    }
    fprintf(stderr, "echoview %s: genotype '%s' is neither a file nor a published name in %s\n",
            cmd, spec, EV_MODELS_DIR "/genotypes");
    return -1;
}

int tool_parse_layout(const char *cmd, const char *s, int *num_cells, bool *reduction)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
        if (n >= EV_MAX_CELLS) {
            fprintf(stderr, "echoview %s: more than %d cells\n", cmd, EV_MAX_CELLS);
            return -1;
        }
        if (!strcmp(tok, "normal") || !strcmp(tok, "N") || !strcmp(tok, "n"))
            reduction[n++] = false;
        else if (!strcmp(tok, "reduce") || !strcmp(tok, "R") || !strcmp(tok, "r"))
            reduction[n++] = true;
        else {
            fprintf(stderr, "echoview %s: layout entry '%s' is not normal or reduce\n", cmd, tok);
            return -1;
        }
    }
    if (!n) {
        fprintf(stderr, "echoview %s: empty layout\n", cmd);
        return -1;
    }
    *num_cells = n;
    return 0;
}

static bool parse_float(const char *opt, const char *v, double lo, double hi, float *out)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v || !(d >= lo && d <= hi)) {
        fprintf(stderr, "echoview train: %s needs a number in %g..%g, got '%s'\n", opt, lo, hi,
                v ? v : "(nothing)");
        return false;
    }
    *out = (float)d;
    return true;
}

int cmd_train(int argc, char **argv)
{
    search_train_options o;
    search_train_defaults(&o);
    const char *genotype = "DARTS_V2";
    bool lr_set = false, wd_set = false, clip_set = false;
    long v;
    float f;
    int bench_steps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return TOOL_OK;
        }
        if (!strcmp(a, "--cosine")) {
            o.cosine = true;
            continue;
        }
        if (!strcmp(a, "--resume")) {
            o.resume = true;
            continue;
        }
        if (!strcmp(a, "--no-augment")) {
            o.augment = false;
            continue;
        }
        if (!strcmp(a, "--auto-roi")) {
            o.auto_roi = true;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (!val) {
            fprintf(stderr, "echoview train: unknown option or missing value '%s'\n%s", a, usage);
            return TOOL_USAGE;
        }
        i++;
        if (!strcmp(a, "--data"))
            o.data = val;
        else if (!strcmp(a, "--out"))
            o.out_dir = val;
        else if (!strcmp(a, "--name"))
            o.name = val;
        else if (!strcmp(a, "--init-from"))
            o.init_from = val;
        else if (!strcmp(a, "--genotype"))
            genotype = val;
        else if (!strcmp(a, "--layout")) {
            if (tool_parse_layout("train", val, &o.num_cells, o.reduction))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--layers")) {
            if (!tool_parse_int("train", a, val, 1, EV_MAX_CELLS, &v))
                return TOOL_USAGE;
            o.num_cells = (int)v;
            memset(o.reduction, 0, sizeof o.reduction);
            ev_layout_from_layers(o.num_cells, o.reduction);
        } else if (!strcmp(a, "--init-channels")) {
            if (!tool_parse_int("train", a, val, 2, 1024, &v))
                return TOOL_USAGE;
            o.init_channels = (int)v;
        } else if (!strcmp(a, "--size")) {
            if (!tool_parse_int("train", a, val, 8, 1024, &v))
                return TOOL_USAGE;
            o.size = (int)v;
        } else if (!strcmp(a, "--epochs")) {
            if (!tool_parse_int("train", a, val, 1, 800, &v))
                return TOOL_USAGE;
            o.epochs = (int)v;
        } else if (!strcmp(a, "--batch")) {
            if (!tool_parse_int("train", a, val, 2, 4096, &v))
                return TOOL_USAGE;
            o.batch = (int)v;
        } else if (!strcmp(a, "--patience")) {
            if (!tool_parse_int("train", a, val, 0, 800, &v))
                return TOOL_USAGE;
            o.patience = (int)v;
        } else if (!strcmp(a, "--optimizer")) {
            if (!strcmp(val, "adam"))
                o.optimizer = SEARCH_OPT_ADAM;
            else if (!strcmp(val, "sgd"))
                o.optimizer = SEARCH_OPT_SGD;
            else {
                fprintf(stderr, "echoview train: --optimizer adam or sgd, got '%s'\n", val);
                return TOOL_USAGE;
            }
        } else if (!strcmp(a, "--lr")) {
            if (!parse_float(a, val, 1e-8, 10, &o.lr))
                return TOOL_USAGE;
            lr_set = true;
        } else if (!strcmp(a, "--weight-decay")) {
            if (!parse_float(a, val, 0, 1, &o.weight_decay))
                return TOOL_USAGE;
            wd_set = true;
        } else if (!strcmp(a, "--momentum")) {
            if (!parse_float(a, val, 0, 0.9999, &o.momentum))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--grad-clip")) {
            if (!parse_float(a, val, 0, 1e6, &o.grad_clip))
                return TOOL_USAGE;
            clip_set = true;
        } else if (!strcmp(a, "--auxiliary")) {
            if (!parse_float(a, val, 0, 10, &o.auxiliary_weight))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--drop-path")) {
            if (!parse_float(a, val, 0, 0.9, &o.drop_path))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--threads")) {
            if (!tool_parse_int("train", a, val, 1, 256, &v))
                return TOOL_USAGE;
            o.threads = (int)v;
        } else if (!strcmp(a, "--seed")) {
            o.seed = strtoull(val, NULL, 10);
        } else if (!strcmp(a, "--log")) {
            o.log_path = val;
        } else if (!strcmp(a, "--max-bad-fraction")) {
            if (!parse_float(a, val, 0, 1, &f))
                return TOOL_USAGE;
            o.max_bad_fraction = f;
        } else if (!strcmp(a, "--train-fraction")) {
            if (!parse_float(a, val, 0.001, 1, &f))
                return TOOL_USAGE;
            o.train_fraction = f;
        } else if (!strcmp(a, "--stop-after")) {
            if (!tool_parse_int("train", a, val, 1, 800, &v))
                return TOOL_USAGE;
            o.stop_after = (int)v;
        } else if (!strcmp(a, "--benchmark")) {
            if (!tool_parse_int("train", a, val, 1, 100000, &v))
                return TOOL_USAGE;
            bench_steps = (int)v;
        } else if (!strcmp(a, "--val-frames")) {
            if (!tool_parse_int("train", a, val, 1, 100000000, &v))
                return TOOL_USAGE;
            o.max_val_frames = (int)v;
        } else if (!strcmp(a, "--steps-per-epoch")) {
            if (!tool_parse_int("train", a, val, 1, 1000000, &v))
                return TOOL_USAGE;
            o.max_steps = (int)v;
        } else {
            fprintf(stderr, "echoview train: unknown option '%s'\n%s", a, usage);
            return TOOL_USAGE;
        }
    }
    if (bench_steps) { /* training throughput on random frames, no data needed */
        if (tool_load_genotype("train", genotype, &o.genotype, o.genotype_name,
                               sizeof o.genotype_name))
            return TOOL_USAGE;
        ev_error err = {0};
        double sps, fps;
        if (search_train_benchmark(&o, 2, bench_steps, &sps, &fps, &err)) {
            fprintf(stderr, "echoview train: %s\n", err.message);
            return TOOL_FAILED;
        }
        printf("{\"engine\":\"echoview\",\"kernels\":\"%s\",\"size\":%d,\"init_channels\":%d,"
               "\"cells\":%d,\"batch\":%d,\"threads\":%d,\"steps\":%d,\"seconds_per_step\":%.4f,"
               "\"frames_per_second\":%.1f}\n",
               search_kernels_name(), o.size, o.init_channels, o.num_cells, o.batch, o.threads,
               bench_steps, sps, fps);
        return TOOL_OK;
    }
    if (!o.data || !o.out_dir) {
        fprintf(stderr, "echoview train: --data and --out are required\n%s", usage);
        return TOOL_USAGE;
    }
    if (o.optimizer == SEARCH_OPT_SGD) { /* the DARTS retraining defaults */
        if (!lr_set)
            o.lr = 0.025f;
        if (!wd_set)
            o.weight_decay = 3e-4f;
        if (!clip_set)
            o.grad_clip = 5.0f;
    }
    if (tool_load_genotype("train", genotype, &o.genotype, o.genotype_name,
                           sizeof o.genotype_name))
        return TOOL_USAGE;
    ev_error err = {0};
    search_train_result r;
    if (search_train(&o, &r, &err)) {
        fprintf(stderr, "echoview train: %s\n", err.message);
        return TOOL_FAILED;
    }
    printf("{\"model\":\"%s\",\"epochs\":%d,\"best_epoch\":%d,\"best_val_loss\":%.6f,"
           "\"best_val_accuracy\":%.6f,\"early_stopped\":%s,\"train_frames_per_second\":%.1f}\n",
           o.out_dir, r.epochs_run, r.best_epoch, r.best_val_loss, r.best_val_accuracy,
           r.early_stopped ? "true" : "false", r.frames_per_second);
    return TOOL_OK;
}
