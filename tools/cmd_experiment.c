/* cmd_experiment.c: `echoview experiment`: the paper's studies on any dataset (the phantom or
 * real frames in the same formats): test accuracy vs input size, vs the share of training
 * patients, vs the number of views (14/7/5) and vs image-quality grade. Each point trains a
 * 1-cell and a 2-cell network from scratch (search_train) and evaluates its best-validation
 * bundle on the test split. Writes OUT/results.md (tables), OUT/results.json and a PNG line plot
 * per study, drawn with the search module's own rasteriser. */
#include "ev_search.h"
#include "tools.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *usage =
    "usage: echoview experiment --data DIR|manifest.csv --out DIR [--study "
    "all|size|fraction|views|quality]\n"
    "       [--sizes 32,64,96,128] [--size PX (64; fraction/views/quality studies)]\n"
    "       [--fractions 0.08,0.25,0.5,1] [--networks 1cell,2cell] [--genotype NAME|FILE]\n"
    "       [--init-channels C (16)] [--epochs N (30)] [--steps-per-epoch N] [--patience N (6)]\n"
    "       [--lr X (1e-3)] [--batch N (64)] [--val-frames N] [--threads T] [--seed S]\n"
    "  Views study subsets: 14 = all; 7 = A2CH, A3CH, A4CH-LV, PLAX-full, PSAX-AV, PSAX-LV,\n"
    "  Subcostal; 5 = A2CH, A4CH-LV, PLAX-full, PSAX-LV, Subcostal. The quality study evaluates\n"
    "  the --size networks per grade of the manifest's quality column (1 very poor .. 5 "
    "excellent).\n";

/* the view subsets of the number-of-views study (ids into ev_echo_views) */
static const int views7[7] = {0, 1, 2, 7, 9, 10, 12};
static const int views5[5] = {0, 2, 7, 10, 12};

typedef struct experiment {
    const char *data, *out;
    search_train_options base;
    int threads;
    bool nets[2]; /* 1-cell, 2-cell */
    json_t *results;
    FILE *md;
} experiment;

static int parse_list(const char *s, double *out, int max)
{
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t && n < max; t = strtok(NULL, ","))
        out[n++] = strtod(t, NULL);
    return n;
}

static search_dataset *load(experiment *x, int size, ev_error *err)
{
    search_dataset_options o = {.width = size,
                                .height = size,
                                .channels = 1,
                                .seed = x->base.seed,
                                .max_bad_fraction = -1,
                                .threads = x->threads,
                                .only_split = -1,
                                .quiet = true};
    search_dataset *ds = NULL;
    return search_dataset_load(x->data, &o, &ds, err) ? NULL : ds;
}

/* Epochs a run folder's training ran: its train.jsonl has one line per epoch (a resumed run
 * appends), so a point trained by an earlier experiment still reports them. */
static int epochs_logged(const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/train.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        n += c == '\n';
        last = c;
    }
    fclose(f);
    return n + (last != '\n');
}

/* Why a study cannot run, to stderr and results.md. */
static void cannot_run(experiment *x, const char *why)
{
    fprintf(stderr, "echoview experiment: %s\n", why);
    fprintf(x->md, "\nNot run: %s.\n", why);
}

/* The views of a subset (ids, count; NULL: all 14) without frames in ds, ", "-separated. */
static void views_without_frames(const search_dataset *ds, const int *ids, int count, char *out,
                                 size_t size)
{
    int64_t per[EV_MAX_CLASSES] = {0};
    for (int i = 0; i < ds->count; i++)
        per[ds->labels[i]]++;
    out[0] = 0;
    size_t used = 0;
    for (int j = 0; j < count; j++) {
        int c = ids ? ids[j] : j;
        if (c < ds->num_classes && per[c] == 0 && used < size) {
            int w = snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                             ds->class_names[c]);
            used += w > 0 ? (size_t)w : 0;
        }
    }
}

/* Trains one network on ds and evaluates it on the test split; returns accuracy or -1. */
static double run_point(experiment *x, search_dataset *ds, int net, int size, double fraction,
                        const char *tag, search_eval_result *keep)
{
    /* runs are named by their configuration, so studies that share a point (the full-data,
     * 14-view network at --size) train it once */
    char dir[PATH_MAX], done[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/runs/%dpx-%gtrain-%dviews-%dcell", x->out, size, fraction,
             ds->num_classes, net + 1);
    snprintf(done, sizeof done, "%s/done", dir);
    struct stat st;
    bool trained = stat(done, &st) == 0;
    search_train_options o = x->base;
    o.dataset = ds;
    o.out_dir = dir;
    o.size = size;
    o.train_fraction = fraction;
    o.num_classes = ds->num_classes;
    o.class_names = ds->class_names;
    memset(o.reduction, 0, sizeof o.reduction);
    o.num_cells = net == 0 ? 2 : 4;
    o.reduction[1] = true;
    if (net == 1)
        o.reduction[3] = true;
    ev_error err = {0};
    search_train_result tr = {0};
    fprintf(stderr, "experiment: %s, %d-cell%s\n", tag, net + 1,
            trained ? " (trained before)" : " ...");
    if (!trained) {
        if (search_train(&o, &tr, &err)) {
            fprintf(stderr, "echoview experiment: %s: %s\n", tag, err.message);
            return -1;
        }
        FILE *f = fopen(done, "w");
        if (f)
            fclose(f);
    }
    ev_model *m = NULL;
    search_eval_result r = {0};
    double acc = -1;
    if (ev_model_load(dir, &m, &err) == 0 &&
        search_evaluate(m, ds, SEARCH_SPLIT_TEST, x->threads, &r, &err) == 0) {
        acc = r.metrics.accuracy;
        json_array_append_new(x->results,
                              json_pack("{s:s, s:i, s:i, s:f, s:i, s:f, s:f, s:i}", "point", tag,
                                        "cells", net + 1, "size", size, "train_fraction", fraction,
                                        "views", ds->num_classes, "accuracy", acc, "macro_f1",
                                        r.metrics.macro_f1, "epochs",
                                        trained ? epochs_logged(dir) : tr.epochs_run));
        if (trained)
            json_object_set_new(json_array_get(x->results, json_array_size(x->results) - 1),
                                "trained_before", json_true());
        if (keep)
            *keep = r;
        else
            search_eval_result_free(&r);
    } else {
        fprintf(stderr, "echoview experiment: %s: %s\n", tag, err.message);
    }
    ev_model_free(m);
    return acc;
}

static void plot(experiment *x, const char *name, const char *title, const char *xl,
                 const double *xs, double acc[2][16], int n)
{
    search_plot_series s[2];
    int ns = 0;
    static const char *names[2] = {"1-CELL", "2-CELL"};
    double ys[2][16], px[2][16];
    for (int net = 0; net < 2; net++) {
        if (!x->nets[net])
            continue;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (acc[net][i] >= 0) { /* failed points are left out */
                px[net][m] = xs[i];
                ys[net][m++] = 100.0 * acc[net][i];
            }
        s[ns++] = (search_plot_series){names[net], m, px[net], ys[net]};
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s.png", x->out, name);
    ev_error err = {0};
    if (search_plot_lines(path, title, xl, "TEST ACCURACY %", s, ns, &err))
        fprintf(stderr, "echoview experiment: %s\n", err.message);
}

static void table(experiment *x, const char *head, const char *unit, const double *xs,
                  double acc[2][16], int n)
{
    fprintf(x->md, "\n| %s |", head);
    for (int net = 0; net < 2; net++)
        if (x->nets[net])
            fprintf(x->md, " %d-cell DARTS |", net + 1);
    fprintf(x->md, "\n|---|%s%s\n", x->nets[0] ? "---|" : "", x->nets[1] ? "---|" : "");
    for (int i = 0; i < n; i++) {
        fprintf(x->md, "| %g%s |", xs[i], unit);
        for (int net = 0; net < 2; net++)
            if (x->nets[net])
                fprintf(x->md, acc[net][i] >= 0 ? " %.1f |" : " failed |", 100.0 * acc[net][i]);
        fprintf(x->md, "\n");
    }
    fflush(x->md);
}

int cmd_experiment(int argc, char **argv)
{
    experiment x = {.nets = {true, true}};
    search_train_defaults(&x.base);
    x.base.epochs = 30;
    x.base.patience = 6;
    x.base.lr = 1e-3f;
    x.base.cosine = true;
    x.base.quiet = true;
    const char *study = "all", *genotype = "DARTS_V2";
    double sizes[16] = {32, 64, 96, 128}, fractions[16] = {0.08, 0.25, 0.5, 1.0};
    int nsizes = 4, nfractions = 4, size = 64;
    const char *size_list = NULL, *fraction_list = NULL, *networks = NULL;
    int threads = 0;
    const tool_option options[] = {
        TOOL_STRING("--data", &x.data),
        TOOL_STRING("--out", &x.out),
        TOOL_STRING("--study", &study),
        TOOL_STRING("--genotype", &genotype),
        TOOL_STRING("--sizes", &size_list),
        TOOL_STRING("--fractions", &fraction_list),
        TOOL_STRING("--networks", &networks),
        TOOL_INT("--size", &size, 8, 1024),
        TOOL_INT("--init-channels", &x.base.init_channels, 2, 512),
        TOOL_INT("--epochs", &x.base.epochs, 1, 800),
        TOOL_INT("--steps-per-epoch", &x.base.max_steps, 1, 1000000),
        TOOL_INT("--val-frames", &x.base.max_val_frames, 1, 100000000),
        TOOL_INT("--patience", &x.base.patience, 0, 800),
        TOOL_INT("--batch", &x.base.batch, 2, 4096),
        TOOL_INT("--threads", &threads, 1, 256),
        TOOL_SEED("--seed", &x.base.seed),
        TOOL_FLOAT("--lr", &x.base.lr, 1e-8, 10, NULL),
    };
    const tool_parser parser = {
        .cmd = "experiment", .usage = usage, .options = options, .count = TOOL_COUNT(options)};
    int status = tool_parse_args(&parser, argc, argv);
    if (status != TOOL_CONTINUE)
        return status;
    if (size_list)
        nsizes = parse_list(size_list, sizes, 16);
    if (fraction_list)
        nfractions = parse_list(fraction_list, fractions, 16);
    if (networks) {
        x.nets[0] = strstr(networks, "1cell") != NULL;
        x.nets[1] = strstr(networks, "2cell") != NULL;
    }
    if (threads)
        x.threads = x.base.threads = threads;
    if (!x.data || !x.out || (!x.nets[0] && !x.nets[1])) {
        fprintf(stderr, "echoview experiment: --data, --out and a network are required\n%s", usage);
        return TOOL_USAGE;
    }
    if (tool_load_genotype("experiment", genotype, &x.base.genotype, x.base.genotype_name,
                           sizeof x.base.genotype_name))
        return TOOL_USAGE;
    char path[PATH_MAX];
    mkdir(x.out, 0755);
    snprintf(path, sizeof path, "%s/runs", x.out);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/results.md", x.out);
    if (!(x.md = fopen(path, "w"))) {
        fprintf(stderr, "echoview experiment: %s: %s\n", path, strerror(errno));
        return TOOL_FAILED;
    }
    x.results = json_array();
    fprintf(x.md,
            "# Experiments on %s\n\nGenotype %s, C = %d, at most %d epochs (patience %d), "
            "batch %d, Adam lr %g cosine, seed %llu. Test accuracy (%%) of the best-validation "
            "epoch.\n",
            x.data, x.base.genotype_name, x.base.init_channels, x.base.epochs, x.base.patience,
            x.base.batch, (double)x.base.lr, (unsigned long long)x.base.seed);
    bool all = !strcmp(study, "all");
    ev_error err = {0};
    int rc = TOOL_OK;
    double acc[2][16] = {{0}};
    if (all || !strcmp(study, "size")) {
        fprintf(x.md, "\n## Accuracy vs input size\n");
        for (int i = 0; i < nsizes; i++) {
            search_dataset *ds = load(&x, (int)sizes[i], &err);
            char tag[64];
            snprintf(tag, sizeof tag, "size%d", (int)sizes[i]);
            for (int net = 0; net < 2; net++)
                acc[net][i] =
                    ds && x.nets[net] ? run_point(&x, ds, net, (int)sizes[i], 1.0, tag, NULL) : -1;
            if (!ds)
                fprintf(stderr, "echoview experiment: %s\n", err.message);
            search_dataset_free(ds);
        }
        table(&x, "input px", "", sizes, acc, nsizes);
        plot(&x, "accuracy_vs_size", "ACCURACY VS INPUT SIZE", "INPUT SIZE PX", sizes, acc, nsizes);
    }
    search_dataset *ds = NULL;
    if (!all && strcmp(study, "size") && strcmp(study, "fraction") && strcmp(study, "views") &&
        strcmp(study, "quality")) {
        fprintf(stderr, "echoview experiment: unknown study '%s'\n", study);
        rc = TOOL_USAGE;
        goto done;
    }
    if (!all && !strcmp(study, "size"))
        goto done;
    if (!(ds = load(&x, size, &err))) {
        fprintf(stderr, "echoview experiment: %s\n", err.message);
        rc = TOOL_FAILED;
        goto done;
    }
    if (all || !strcmp(study, "fraction")) {
        fprintf(x.md, "\n## Accuracy vs share of the training patients (%d px)\n", size);
        double pct[16] = {0};
        for (int i = 0; i < nfractions; i++) {
            char tag[64];
            snprintf(tag, sizeof tag, "fraction%g", fractions[i]);
            pct[i] = 100.0 * fractions[i];
            for (int net = 0; net < 2; net++)
                acc[net][i] =
                    x.nets[net] ? run_point(&x, ds, net, size, fractions[i], tag, NULL) : -1;
        }
        table(&x, "training patients", "%", pct, acc, nfractions);
        plot(&x, "accuracy_vs_fraction", "ACCURACY VS TRAINING DATA", "TRAINING PATIENTS %", pct,
             acc, nfractions);
    }
    if (all || !strcmp(study, "views")) {
        fprintf(x.md,
                "\n## Accuracy vs number of views (%d px)\n\n7 views: A2CH, A3CH, A4CH-LV, "
                "PLAX-full, PSAX-AV, PSAX-LV, Subcostal. 5 views: A2CH, A4CH-LV, PLAX-full, "
                "PSAX-LV, Subcostal.\n",
                size);
        double counts[3] = {14, 7, 5};
        const int *subsets[3] = {NULL, views7, views5};
        for (int i = 0; i < 3; i++) {
            char missing[1024], why[1400];
            views_without_frames(ds, subsets[i], (int)counts[i], missing, sizeof missing);
            if (missing[0]) { /* a study of fewer views than it names would mislead */
                snprintf(why, sizeof why,
                         "the %d-view point needs frames of each of its views; %s has none of "
                         "%s",
                         (int)counts[i], x.data, missing);
                cannot_run(&x, why);
                acc[0][i] = acc[1][i] = -1;
                if (!all)
                    rc = TOOL_FAILED;
                continue;
            }
            search_dataset *sub = ds;
            if (subsets[i] &&
                search_dataset_select_classes(ds, subsets[i], (int)counts[i], &sub, &err)) {
                fprintf(stderr, "echoview experiment: %s\n", err.message);
                acc[0][i] = acc[1][i] = -1;
                continue;
            }
            char tag[64];
            snprintf(tag, sizeof tag, "views%d", (int)counts[i]);
            for (int net = 0; net < 2; net++)
                acc[net][i] = x.nets[net] ? run_point(&x, sub, net, size, 1.0, tag, NULL) : -1;
            if (sub != ds)
                search_dataset_free(sub);
        }
        table(&x, "views", "", counts, acc, 3);
        plot(&x, "accuracy_vs_views", "ACCURACY VS NUMBER OF VIEWS", "VIEWS", counts, acc, 3);
    }
    if (all || !strcmp(study, "quality")) {
        fprintf(x.md, "\n## Accuracy vs image-quality grade (%d px, test frames per grade)\n",
                size);
        double grades[5] = {1, 2, 3, 4, 5};
        int64_t graded = 0;
        for (int i = 0; i < ds->count; i++)
            graded += ds->split[i] == SEARCH_SPLIT_TEST && ds->quality[i] >= 1;
        if (!graded) {
            char why[PATH_MAX + 200];
            snprintf(why, sizeof why,
                     "the quality study needs a manifest with a quality column (grades 1..5); %s "
                     "has no graded test frame",
                     x.data);
            cannot_run(&x, why);
            if (!all)
                rc = TOOL_FAILED;
        }
        for (int net = 0; net < 2 && graded; net++) {
            for (int g = 0; g < 5; g++)
                acc[net][g] = -1;
            if (!x.nets[net])
                continue;
            search_eval_result r = {0};
            if (run_point(&x, ds, net, size, 1.0, "quality", &r) < 0)
                continue;
            for (int g = 0; g < 5; g++) {
                int64_t n = 0, ok = 0;
                for (int i = 0; i < ds->count; i++)
                    if (ds->split[i] == SEARCH_SPLIT_TEST && ds->quality[i] == g + 1) {
                        n++;
                        ok += r.predicted[i] == ds->labels[i];
                    }
                acc[net][g] = n ? (double)ok / n : -1;
                fprintf(stderr, "quality %d: %lld test frames\n", g + 1, (long long)n);
            }
            search_eval_result_free(&r);
        }
        table(&x, "quality grade", "", grades, acc, 5);
        plot(&x, "accuracy_vs_quality", "ACCURACY VS IMAGE QUALITY", "QUALITY GRADE", grades, acc,
             5);
    }
done:
    search_dataset_free(ds);
    fclose(x.md);
    snprintf(path, sizeof path, "%s/results.json", x.out);
    json_dump_file(x.results, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(x.results);
    if (rc == TOOL_OK)
        printf("experiment: %s/results.md, results.json and accuracy_vs_*.png\n", x.out);
    return rc;
}
