/* cmd_eval.c: `echoview eval`: a model on a dataset (folder or CSV manifest, the same formats as
 * training): accuracy, macro precision/recall/F1, weighted F1, per-view table, confusion matrix
 * (text and PNG heat map) and a sheet of misclassified frames. */
#include "ev_bundle.h"
#include "ev_search.h"
#include "tools.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: echoview eval --model DIR|model.yaml --data DIR|manifest.csv [--split "
    "test|val|train|all]\n"
    "                     [--json] [--out REPORT_DIR] [--threads N] [--auto-roi] [--seed S]\n"
    "  Evaluates the model on the frames of a split (default test; 'all' for every frame; data\n"
    "  without splits is split by patient with --seed like training does). Prints a summary and\n"
    "  the per-view table, or with --json one object: accuracy, macro_precision, macro_recall,\n"
    "  macro_f1, weighted_f1, per_class, confusion. --out writes report.json, report.md,\n"
    "  confusion.png, misclassified.png and reliability.png (calibration: confidence vs accuracy;\n"
    "  the summary gives the expected calibration error, ECE, over 15 bins).\n"
    "  --calibrate [--reject F]  fits temperature scaling on the split (it must be val: never\n"
    "  the frames one reports on) and the confidence threshold below which F (0.05) of the right\n"
    "  answers fall, and writes both to the model's model.yaml (`calibration:`): classify, the\n"
    "  element and the daemon then answer 'unknown' below it.\n";

int cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *out = NULL, *split_name = "test";
    bool json = false, auto_roi = false, calibrate = false;
    float reject = 0.05f;
    long threads = 0, v;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return TOOL_OK;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--auto-roi")) {
            auto_roi = true;
        } else if (!strcmp(a, "--calibrate")) {
            calibrate = true;
        } else if (val && !strcmp(a, "--reject")) {
            if (!tool_parse_float("eval", a, argv[++i], 0, 0.5, &reject))
                return TOOL_USAGE;
        } else if (val && !strcmp(a, "--model")) {
            model_path = argv[++i];
        } else if (val && !strcmp(a, "--data")) {
            data = argv[++i];
        } else if (val && !strcmp(a, "--out")) {
            out = argv[++i];
        } else if (val && !strcmp(a, "--split")) {
            split_name = argv[++i];
        } else if (val && !strcmp(a, "--seed")) {
            seed = strtoull(argv[++i], NULL, 10);
        } else if (val && !strcmp(a, "--threads")) {
            if (!tool_parse_int("eval", a, argv[++i], 1, 256, &v))
                return TOOL_USAGE;
            threads = v;
        } else {
            fprintf(stderr, "echoview eval: unknown option or missing value '%s'\n%s", a, usage);
            return TOOL_USAGE;
        }
    }
    if (!model_path || !data) {
        fprintf(stderr, "echoview eval: --model and --data are required\n%s", usage);
        return TOOL_USAGE;
    }
    int split = strcmp(split_name, "all") ? search_split_parse(split_name) : -1;
    if (split < 0 && strcmp(split_name, "all")) {
        fprintf(stderr, "echoview eval: --split test, val, train or all, got '%s'\n", split_name);
        return TOOL_USAGE;
    }
    if (calibrate && split != SEARCH_SPLIT_VAL) {
        fprintf(stderr, "echoview eval: --calibrate fits on the validation split (--split val), "
                        "not on '%s'\n",
                split_name);
        return TOOL_USAGE;
    }
    ev_model *m = tool_load_model("eval", model_path);
    if (!m)
        return TOOL_FAILED;
    ev_error err = {0};
    search_dataset *ds = NULL;
    search_eval_result r = {0};
    int rc = TOOL_FAILED;
    const char *class_names[EV_MAX_CLASSES];
    const int num_classes = ev_model_num_classes(m);
    for (int i = 0; i < num_classes; i++)
        class_names[i] = ev_model_class_name(m, i);
    ev_preprocess_params pre;
    ev_model_preprocess_params(m, &pre);
    search_dataset_options o = {.width = pre.width,
                                .height = pre.height,
                                .channels = pre.channels,
                                .num_classes = num_classes,
                                .class_names = class_names,
                                .seed = seed,
                                .max_bad_fraction = -1,
                                .auto_roi = auto_roi,
                                .threads = (int)threads,
                                .only_split = split,
                                .quiet = json};
    if (calibrate) {
        search_calibration cal;
        if (search_dataset_load(data, &o, &ds, &err) ||
            search_calibrate(m, ds, split, (int)threads, reject, &cal, &err) ||
            ev_model_write_calibration(model_path, cal.temperature, cal.confidence_threshold,
                                       &err)) {
            fprintf(stderr, "echoview eval: %s\n", err.message);
            goto done;
        }
        printf("{\"model\":\"%s\",\"split\":\"%s\",\"frames\":%d,\"temperature\":%.6g,"
               "\"confidence_threshold\":%.6g,\"reject_fraction\":%g,\"nll_before\":%.6f,"
               "\"nll_after\":%.6f,\"ece_before\":%.6f,\"ece_after\":%.6f,"
               "\"unknown_fraction\":%.6f}\n",
               model_path, split_name, cal.frames, (double)cal.temperature,
               (double)cal.confidence_threshold, (double)reject, cal.nll_before, cal.nll_after,
               cal.ece_before, cal.ece_after, cal.unknown_fraction);
        rc = TOOL_OK;
        goto done;
    }
    if (search_dataset_load(data, &o, &ds, &err) ||
        search_evaluate(m, ds, split, (int)threads, &r, &err) ||
        (out && search_write_report(out, m, ds, &r, split, &err))) {
        fprintf(stderr, "echoview eval: %s\n", err.message);
        goto done;
    }
    if (json) {
        json_t *j = search_eval_json(m, &r);
        json_object_set_new(j, "split", json_string(split_name));
        tool_print_json(j, false);
    } else {
        const search_metrics *mt = &r.metrics;
        printf("%s on %s (%s, %lld frames): accuracy %.2f%%, macro precision %.2f%%, macro "
               "recall %.2f%%, macro F1 %.2f%%, weighted F1 %.2f%%\n",
               ev_model_name(m), data, split_name, (long long)mt->total, 100 * mt->accuracy,
               100 * mt->macro_precision, 100 * mt->macro_recall, 100 * mt->macro_f1,
               100 * mt->weighted_f1);
        printf("calibration: ECE %.2f%% (temperature %g); below the confidence threshold %.3f: "
               "%.1f%% of frames 'unknown', accuracy over the rest %.2f%%\n",
               100 * r.ece, (double)ev_model_temperature(m),
               (double)ev_model_confidence_threshold(m), 100 * r.unknown_fraction,
               100 * r.accepted_accuracy);
        printf("%-14s %9s %7s %6s %7s\n", "view", "precision", "recall", "F1", "frames");
        for (int c = 0; c < r.k; c++)
            printf("%-14s %9.1f %7.1f %6.1f %7lld\n", ev_model_class_name(m, c),
                   100 * mt->precision[c], 100 * mt->recall[c], 100 * mt->f1[c],
                   (long long)mt->support[c]);
        if (out)
            printf("report: %s/report.json, report.md, confusion.png, misclassified.png\n", out);
    }
    rc = TOOL_OK;
done:
    search_eval_result_free(&r);
    search_dataset_free(ds);
    ev_model_free(m);
    return rc;
}
