/* cmd_train.c: `echoview train`: retrains a DARTS network from scratch on a dataset and writes
 * the best-validation model bundle (search_train does the work). */
#include "build_commit.h"
#include "ev_bundle.h"
#include "ev_search.h"
#include "tools.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: echoview train --data DIR|manifest.csv --out MODEL_DIR [options]\n"
    "  network:   --genotype NAME|FILE (SEARCH96 at 64 px and up, DARTS_V2 below)\n"
    "             --layout normal,reduce,normal,reduce | --layers N\n"
    "             --init-channels C (16)  --size PX (96)\n"
    "             --arch resnet18|densenet201 (a baseline at torchvision's definition instead\n"
    "             of a DARTS network; no genotype, layout or initial channels)\n"
    "  schedule:  --epochs N (800, at most 800)  --batch N (64)  --patience N (20; 0 = off)\n"
    "             --optimizer adam|sgd (adam)  --lr X (adam 1e-4, sgd 0.025)  --weight-decay X "
    "(0;\n"
    "             sgd 3e-4)  --momentum X (0.9)  --cosine  --grad-clip X (0 = off; sgd 5)\n"
    "             --auxiliary W (0 = no head)  --drop-path P (0)\n"
    "  data:      --no-augment  --auto-roi  --max-bad-fraction F (0.05)  --train-fraction F (1)\n"
    "             --patient-regex RE (patient ID from each file's path: its first group)\n"
    "             --frames-per-clip N | --clip-frame-step K (of DICOM loops; default all)\n"
    "             --augment basic|transfer (basic; transfer: the recipe for real scanners,\n"
    "             docs/SEARCH.md)  --normalize none|sector (none; sector: histogram-equalise the\n"
    "             sector, written to model.yaml so every caller does it)  --other (a 15th class\n"
    "             'other' for non-2D screens; the data then labels them 'other')\n"
    "             --classes A,B,C (a class list of one's own instead of the 14 views; names\n"
    "             of UTF-8 with spaces allowed, no commas or quotes; labels match loosely;\n"
    "             `views`: the 14 views). Without it: the class folder names or manifest\n"
    "             labels in byte order, unless all are views (then the 14 views) or all are\n"
    "             classes of --init-from's bundle (then its list)\n"
    "             --video-fps R (sample video files at R frames/s; default every frame)\n"
    "  run:       --threads T (all cores)  --seed S (1)  --resume  --force (overwrite a model)\n"
    "             --log FILE "
    "(MODEL_DIR/train.jsonl)\n"
    "             --init-from MODEL (fine-tune: the bundle's network, input size, normalisation\n"
    "             and classes unless given; a new head when --classes differ)\n"
    "             --freeze stem,cells:0-1,head (with --init-from: these get no updates)\n"
    "             --freeze-epochs N (--freeze only for the first N epochs, then thawed)\n"
    "             --lr-backbone X (with --init-from: the rate of the bundle's tensors, all but\n"
    "             a new head; e.g. a tenth of --lr; the cosine schedule scales it too)\n"
    "             --quiet  --stop-after N (stop after N epochs of this run, as if interrupted)\n"
    "             --steps-per-epoch N (cap; default: training frames / batch)\n"
    "             --val-frames N (validate on N evenly spaced validation frames; default all)\n"
    "             --benchmark N: time N training steps on random frames (no --data needed)\n"
    "  Balanced online batches (equal frames per view, small views oversampled); early stopping\n"
    "  on the validation loss; a checkpoint every epoch (MODEL_DIR/checkpoint.safetensors) that\n"
    "  --resume continues exactly; Ctrl-C (SIGINT or SIGTERM) finishes the step under way, writes\n"
    "  the checkpoint (mid-epoch too), says how to continue and exits 130. Writes\n"
    "  MODEL_DIR/model.yaml + weights.safetensors (the best validation epoch), ready for\n"
    "  `echoview classify` and `echoview eval`. Each epoch's line ends with the run's ETA.\n";

/* SIGINT or SIGTERM: the training loop finishes its step, writes the checkpoint and returns; a
 * second one stops at once (the default action is back). */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    static const char msg[] = "\ninterrupt: finishing the current step and writing a checkpoint "
                              "(interrupt again to stop at once)\n";
    interrupted = 1;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigaction(sig, &sa, NULL);
}

static void catch_interrupts(bool on)
{
    struct sigaction sa = {.sa_handler = on ? on_interrupt : SIG_DFL};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The fractions are doubles in the training options, read at float precision as they always
 * were (a fraction's rounding decides which frames are used). */
static int parse_fraction(const char *cmd, const tool_option *row, const char *value)
{
    float f;
    if (!tool_parse_float(cmd, row->name, value, row->min, row->max, &f))
        return -1;
    *(double *)row->target = f;
    return 0;
}

/* Fine-tuning takes the network from the bundle: genotype, layout, initial channels, and
 * unless given the input size, normalisation and classes. An option that names a different
 * network is refused by name (the weights would not fit it). */
static int take_bundle_network(const ev_model *m, search_train_options *o, const char *genotype,
                               bool layout_seen, bool channels_seen, bool size_seen,
                               bool normalize_seen)
{
    const ev_net_config *cfg = &ev_model_network(m)->cfg;
    const char *path = o->init_from;
    if (genotype) {
        ev_genotype g;
        char name[64];
        if (tool_load_genotype("train", genotype, &g, name, sizeof name))
            return TOOL_USAGE;
        if (memcmp(&g, &cfg->genotype, sizeof g)) {
            fprintf(stderr,
                    "echoview train: --genotype %s is not the genotype of --init-from %s; leave "
                    "--genotype out to take the bundle's\n",
                    genotype, path);
            return TOOL_USAGE;
        }
    }
    if (layout_seen && (o->num_cells != cfg->num_cells ||
                        memcmp(o->reduction, cfg->reduction, sizeof o->reduction))) {
        fprintf(stderr,
                "echoview train: --layout/--layers gives %d cells, --init-from %s has a layout "
                "of %d; leave it out to take the bundle's\n",
                o->num_cells, path, cfg->num_cells);
        return TOOL_USAGE;
    }
    if (channels_seen && o->init_channels != cfg->init_channels) {
        fprintf(stderr,
                "echoview train: --init-channels %d, but --init-from %s has %d; leave it out to "
                "take the bundle's\n",
                o->init_channels, path, cfg->init_channels);
        return TOOL_USAGE;
    }
    o->genotype = cfg->genotype;
    snprintf(o->genotype_name, sizeof o->genotype_name, "%s", ev_model_name(m));
    o->num_cells = cfg->num_cells;
    memcpy(o->reduction, cfg->reduction, sizeof o->reduction);
    o->init_channels = cfg->init_channels;
    if (!size_seen)
        o->size = cfg->input_width;
    ev_preprocess_params pre;
    ev_model_preprocess_params(m, &pre);
    if (!normalize_seen)
        o->normalize = pre.normalize;
    if (!o->class_names && !o->other_class) { /* fine-tuning on the same classes */
        static char *names[EV_MAX_CLASSES];
        o->num_classes = ev_model_num_classes(m);
        for (int i = 0; i < o->num_classes; i++)
            names[i] = (char *)ev_model_class_name(m, i);
        o->class_names = names;
    }
    return TOOL_CONTINUE;
}

int cmd_train(int argc, char **argv)
{
    search_train_options o;
    search_train_defaults(&o);
    /* 0: not given (the defaults, or the --init-from bundle's, are filled in after parsing) */
    o.size = o.init_channels = o.num_cells = 0;
    memset(o.reduction, 0, sizeof o.reduction);
    const char *genotype = NULL; /* default chosen by input size below */
    const char *arch = NULL;
    bool lr_set = false, wd_set = false, clip_set = false, force = false;
    const char *optimizer = "adam", *normalize = NULL, *classes = NULL;
    bool layout_seen = false, channels_seen = false, size_seen = false;
    int bench_steps = 0;
    tool_layout layout = {&o.num_cells, o.reduction};
    const tool_option options[] = {
        TOOL_FLAG("--cosine", &o.cosine),
        TOOL_FLAG("--resume", &o.resume),
        TOOL_FLAG("--force", &force),
        TOOL_FLAG_OFF("--no-augment", &o.augment),
        TOOL_FLAG("--auto-roi", &o.auto_roi),
        TOOL_FLAG("--other", &o.other_class),
        TOOL_FLAG("--quiet", &o.quiet),
        TOOL_STRING("--data", &o.data),
        TOOL_STRING("--out", &o.out_dir),
        TOOL_STRING("--name", &o.name),
        TOOL_STRING("--init-from", &o.init_from),
        TOOL_STRING("--genotype", &genotype),
        TOOL_STRING("--arch", &arch),
        TOOL_STRING("--log", &o.log_path),
        TOOL_STRING("--patient-regex", &o.patient_regex),
        TOOL_INT("--frames-per-clip", &o.frames_per_clip, 1, 100000),
        TOOL_INT("--clip-frame-step", &o.clip_frame_step, 1, 100000),
        TOOL_FLOAT("--video-fps", &o.video_fps, 0.01, 1000, NULL),
        TOOL_STRING("--freeze", &o.freeze),
        TOOL_STRING("--classes", &classes),
        {.name = "--init-channels",
         .kind = TOOL_OPT_INT,
         .target = &o.init_channels,
         .min = 2,
         .max = 1024,
         .seen = &channels_seen},
        {.name = "--size",
         .kind = TOOL_OPT_INT,
         .target = &o.size,
         .min = 8,
         .max = 1024,
         .seen = &size_seen},
        TOOL_INT("--epochs", &o.epochs, 1, 800),
        TOOL_INT("--batch", &o.batch, 2, 4096),
        TOOL_INT("--patience", &o.patience, 0, 800),
        TOOL_INT("--threads", &o.threads, 1, 256),
        TOOL_INT("--stop-after", &o.stop_after, 1, 800),
        TOOL_INT("--benchmark", &bench_steps, 1, 100000),
        TOOL_INT("--val-frames", &o.max_val_frames, 1, 100000000),
        TOOL_INT("--steps-per-epoch", &o.max_steps, 1, 1000000),
        TOOL_FLOAT("--lr", &o.lr, 1e-8, 10, &lr_set),
        TOOL_FLOAT("--lr-backbone", &o.lr_backbone, 1e-8, 10, NULL),
        TOOL_INT("--freeze-epochs", &o.freeze_epochs, 1, 800),
        TOOL_FLOAT("--weight-decay", &o.weight_decay, 0, 1, &wd_set),
        TOOL_FLOAT("--momentum", &o.momentum, 0, 0.9999, NULL),
        TOOL_FLOAT("--grad-clip", &o.grad_clip, 0, 1e6, &clip_set),
        TOOL_FLOAT("--auxiliary", &o.auxiliary_weight, 0, 10, NULL),
        TOOL_FLOAT("--drop-path", &o.drop_path, 0, 0.9, NULL),
        {.name = "--layout",
         .kind = TOOL_OPT_CUSTOM,
         .target = &layout,
         .parse = tool_parse_layout_row,
         .seen = &layout_seen},
        {.name = "--layers",
         .kind = TOOL_OPT_CUSTOM,
         .target = &layout,
         .parse = tool_parse_layout_row,
         .seen = &layout_seen},
        TOOL_CHOICE("--optimizer", &optimizer, "adam", "sgd"),
        TOOL_CHOICE("--augment", &o.augment_recipe, "basic", "transfer"),
        TOOL_CHOICE("--normalize", &normalize, "none", "sector"),
        TOOL_SEED("--seed", &o.seed),
        {.name = "--max-bad-fraction",
         .kind = TOOL_OPT_CUSTOM,
         .target = &o.max_bad_fraction,
         .min = 0,
         .max = 1,
         .parse = parse_fraction},
        {.name = "--train-fraction",
         .kind = TOOL_OPT_CUSTOM,
         .target = &o.train_fraction,
         .min = 0.001,
         .max = 1,
         .parse = parse_fraction},
    };
    const tool_parser parser = {
        .cmd = "train", .usage = usage, .options = options, .count = TOOL_COUNT(options)};
    int rc = tool_parse_args(&parser, argc, argv);
    if (rc != TOOL_CONTINUE)
        return rc;
    if (arch && (!ev_arch_from_name(arch, &o.arch))) {
        fprintf(stderr,
                "echoview train: --arch '%s' is not darts, resnet18, densenet201, vgg16 or "
                "vgg16_bn\n",
                arch);
        return TOOL_USAGE;
    }
    if (o.arch == EV_ARCH_VGG16 || o.arch == EV_ARCH_VGG16_BN) {
        fprintf(stderr,
                "echoview train: --arch %s cannot be trained yet: the training executor has no "
                "kernels for VGG's convolution biases, adaptive pool and dropout\n",
                arch);
        return TOOL_USAGE;
    }
    if (o.arch != EV_ARCH_DARTS) {
        const char *darts_only = genotype        ? "--genotype"
                                 : layout_seen   ? "--layout/--layers"
                                 : channels_seen ? "--init-channels"
                                 : o.init_from   ? "--init-from"
                                                 : NULL;
        if (darts_only) {
            fprintf(stderr,
                    "echoview train: %s is not for --arch %s (a baseline has no genotype, "
                    "cells or initial channels; fine-tuning one is not supported yet)\n",
                    darts_only, arch);
            return TOOL_USAGE;
        }
        snprintf(o.genotype_name, sizeof o.genotype_name, "%s", arch);
    }
    if (!strcmp(optimizer, "sgd"))
        o.optimizer = SEARCH_OPT_SGD;
    if (normalize && !strcmp(normalize, "sector"))
        o.normalize = EV_NORMALIZE_SECTOR;
    char **class_list = NULL;
    int class_count = 0;
    ev_model *init = NULL;
    if (classes && !strcmp(classes, "views")) { /* the 14 views, e.g. fine-tuning back to them */
        o.class_names = (char **)ev_echo_views;
        o.num_classes = 14;
    } else if (classes) {
        ev_error cerr = {0};
        if (search_class_names_parse(classes, &class_list, &class_count, &cerr)) {
            fprintf(stderr, "echoview train: %s\n", cerr.message);
            return TOOL_USAGE;
        }
        o.class_names = class_list;
        o.num_classes = class_count;
    }
    if (classes && o.other_class) {
        fprintf(stderr, "echoview train: give --classes or --other, not both (put 'other' in "
                        "your list)\n");
        search_class_names_free(class_list, class_count);
        return TOOL_USAGE;
    }
    if (o.init_from) { /* fine-tuning: the network is the bundle's */
        if (!(init = tool_load_model("train", o.init_from)))
            rc = TOOL_FAILED;
        else
            rc = take_bundle_network(init, &o, genotype, layout_seen, channels_seen, size_seen,
                                     normalize != NULL);
        if (rc != TOOL_CONTINUE) {
            ev_model_free(init);
            search_class_names_free(class_list, class_count);
            return rc;
        }
        genotype = NULL; /* the bundle's class names stay in o.class_names: init lives on */
    } else if (o.freeze || o.lr_backbone > 0) {
        fprintf(stderr, o.freeze ? "echoview train: --freeze needs --init-from (frozen random "
                                   "weights would stay random)\n"
                                 : "echoview train: --lr-backbone needs --init-from (it is the "
                                   "rate of the tensors taken from the bundle)\n");
        search_class_names_free(class_list, class_count);
        return TOOL_USAGE;
    }
    if (o.freeze_epochs && !o.freeze) {
        fprintf(stderr, "echoview train: --freeze-epochs needs --freeze (the layers to thaw)\n");
        search_class_names_free(class_list, class_count);
        return TOOL_USAGE;
    }
    /* No --classes: the data's class folder names or manifest labels are the class list, unless
     * they are all among the 14 views (or the --init-from bundle's classes), which then stay */
    if (!classes && !o.other_class && o.data && !bench_steps) {
        char **found = NULL, *empty = NULL;
        int nfound = 0;
        ev_error cerr = {0};
        if (search_dataset_labels(o.data, &found, &nfound, &empty, &cerr)) {
            fprintf(stderr, "echoview train: %s\n", cerr.message);
            ev_model_free(init);
            return TOOL_FAILED;
        }
        char *const *base = o.class_names ? o.class_names : (char *const *)ev_echo_views;
        const int nbase = o.class_names ? o.num_classes : 14;
        bool within = true;
        for (int i = 0; i < nfound && within; i++)
            within = search_class_lookup(base, nbase, found[i]) >= 0;
        if (within) {
            search_class_names_free(found, nfound);
        } else if (!empty && search_dataset_labels_check(o.data, found, nfound, &cerr)) {
            fprintf(stderr, "echoview train: %s\n", cerr.message);
            search_class_names_free(found, nfound);
            ev_model_free(init);
            return TOOL_FAILED;
        } else if (empty) {
            fprintf(stderr,
                    "echoview train: %s: class folder without PNG, JPEG, PGM, DICOM or video "
                    "files; its class would have no frames (add frames, remove it, or give "
                    "--classes)\n",
                    empty);
            search_class_names_free(found, nfound);
            free(empty);
            ev_model_free(init);
            return TOOL_FAILED;
        } else {
            class_list = found;
            class_count = nfound;
            o.class_names = found;
            o.num_classes = nfound;
            if (!o.quiet) {
                fprintf(stderr, "classes from %s, in byte order (--classes for another): ",
                        o.data);
                for (int i = 0; i < nfound; i++)
                    fprintf(stderr, "%s%s", i ? ", " : "", found[i]);
                fputc('\n', stderr);
            }
        }
        free(empty);
    }
    /* Our 96 px search's cell beat DARTS_V2 and a random cell at 96 px on equal budgets
     * (docs/ACCURACY.md); DARTS_V2's 2-cell receptive field is 33 px, a third of a 96 px frame. */
    if (!o.size)
        o.size = 96;
    if (!o.init_channels)
        o.init_channels = 16;
    if (!o.num_cells) {
        o.num_cells = 4;
        o.reduction[1] = o.reduction[3] = true;
    }
    if (!genotype && !init && o.arch == EV_ARCH_DARTS)
        genotype = o.size >= 64 ? "SEARCH96" : "DARTS_V2";
    if (bench_steps) { /* training throughput on random frames, no data needed */
        if (genotype && tool_load_genotype("train", genotype, &o.genotype, o.genotype_name,
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
    if (o.frames_per_clip && o.clip_frame_step) {
        fprintf(stderr, "echoview train: give --frames-per-clip or --clip-frame-step, not both\n");
        return TOOL_USAGE;
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
    if (genotype &&
        tool_load_genotype("train", genotype, &o.genotype, o.genotype_name, sizeof o.genotype_name))
        return TOOL_USAGE;
    /* a finished or half-finished run is hours of work: overwrite it only when asked */
    if (!o.resume && !force) {
        static const char *const kept[] = {"model.yaml", "weights.safetensors",
                                           "checkpoint.safetensors"};
        for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", o.out_dir, kept[i]);
            if (access(path, F_OK) == 0) {
                fprintf(stderr,
                        "echoview train: %s already holds a model (%s): give --force to overwrite "
                        "it, or --resume to continue its run\n",
                        o.out_dir, kept[i]);
                return TOOL_FAILED;
            }
        }
    }
    char *command = tool_command_line("echoview", argc, argv);
    o.command_line = command;
    o.source_commit = ECHOVIEW_SOURCE_COMMIT;
    ev_error err = {0};
    search_train_result r;
    o.interrupt = &interrupted;
    catch_interrupts(true);
    rc = search_train(&o, &r, &err);
    catch_interrupts(false);
    if (!rc && r.interrupted) {
        fprintf(stderr,
                "echoview train: interrupted after step %d of %d in epoch %d of %d; the "
                "checkpoint %s/checkpoint.safetensors holds the run up to there\n",
                r.stopped_step, r.steps_per_epoch, r.stopped_epoch, o.epochs, o.out_dir);
        if (r.best_epoch > 0)
            fprintf(stderr, "  best model so far: %s (epoch %d, val loss %.4f)\n", o.out_dir,
                    r.best_epoch, r.best_val_loss);
        fprintf(stderr, "  continue with: %s%s\n", command, o.resume ? "" : " --resume");
        free(command);
        search_class_names_free(class_list, class_count);
        ev_model_free(init);
        return 130; /* 128 + SIGINT, as a shell reports an interrupted command */
    }
    free(command);
    search_class_names_free(class_list, class_count);
    ev_model_free(init);
    if (rc) {
        fprintf(stderr, "echoview train: %s\n", err.message);
        return TOOL_FAILED;
    }
    printf("{\"model\":\"%s\",\"epochs\":%d,\"best_epoch\":%d,\"best_val_loss\":%.6f,"
           "\"best_val_accuracy\":%.6f,\"early_stopped\":%s,\"train_frames_per_second\":%.1f}\n",
           o.out_dir, r.epochs_run, r.best_epoch, r.best_val_loss, r.best_val_accuracy,
           r.early_stopped ? "true" : "false", r.frames_per_second);
    return TOOL_OK;
}
