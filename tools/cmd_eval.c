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
    "                     [--patient-regex RE] [--frames-per-clip N | --clip-frame-step K]\n"
    "                     [--video-fps R] [--bootstrap N]\n"
    "  Evaluates the model on the frames of a split (default test; 'all' for every frame). Data\n"
    "  without splits takes the split recorded in the model's model.yaml when all its patients\n"
    "  are in it, is all test data when none trained the model, and is refused otherwise;\n"
    "  data with splits is refused when a val/test patient trained the model. Bundles without\n"
    "  a record split by patient with --seed like training does. Prints a summary and\n"
    "  the per-view table, or with --json one object: accuracy, macro_precision, macro_recall,\n"
    "  macro_f1, weighted_f1 (macro averages over the classes that are true or predicted),\n"
    "  clips and clip_accuracy (mean probabilities over each clip's frames), per_class,\n"
    "  confusion, and bootstrap: 95 % intervals of accuracy and macro F1 from N (1000; 0: none)\n"
    "  resamples of the patients (a patient's frames are not independent), seeded by --seed.\n"
    "  --out writes report.json, report.md, predictions.csv (one row per frame:\n"
    "  file, frame, patient, clip, split, truth, prediction, confidence, p_CLASS...),\n"
    "  confusion.png, misclassified.png and reliability.png (calibration: confidence vs accuracy;\n"
    "  the summary gives the expected calibration error, ECE, over 15 bins), and confusion.svg\n"
    "  and reliability.svg beside them (class names in full).\n"
    "  --calibrate [--reject F]  fits temperature scaling on the split (it must be val: never\n"
    "  the frames one reports on) and the confidence threshold below which F (0.05) of the right\n"
    "  answers fall, and writes both to the model's model.yaml (`calibration:`): classify, the\n"
    "  element and the daemon then answer 'unknown' below it.\n";

int cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *out = NULL, *split_name = "test";
    bool json = false, auto_roi = false, calibrate = false;
    float reject = 0.05f;
    int threads = 0, frames_per_clip = 0, clip_frame_step = 0, bootstrap = 1000;
    const char *patient_regex = NULL;
    float video_fps = 0;
    uint64_t seed = 1;
    const tool_option options[] = {
        TOOL_FLAG("--json", &json),
        TOOL_FLAG("--auto-roi", &auto_roi),
        TOOL_FLAG("--calibrate", &calibrate),
        TOOL_FLOAT("--reject", &reject, 0, 0.5, NULL),
        TOOL_STRING("--model", &model_path),
        TOOL_STRING("--data", &data),
        TOOL_STRING("--out", &out),
        TOOL_STRING("--patient-regex", &patient_regex),
        TOOL_INT("--frames-per-clip", &frames_per_clip, 1, 100000),
        TOOL_INT("--clip-frame-step", &clip_frame_step, 1, 100000),
        TOOL_FLOAT("--video-fps", &video_fps, 0.01, 1000, NULL),
        TOOL_CHOICE("--split", &split_name, "test", "val", "train", "all"),
        TOOL_SEED("--seed", &seed),
        TOOL_INT("--threads", &threads, 1, 256),
        TOOL_INT("--bootstrap", &bootstrap, 0, 100000),
    };
    const tool_parser parser = {.cmd = "eval",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .required = TOOL_REQUIRED("--model", "--data")};
    int status = tool_parse_args(&parser, argc, argv);
    if (status != TOOL_CONTINUE)
        return status;
    if (frames_per_clip && clip_frame_step) {
        fprintf(stderr, "echoview eval: give --frames-per-clip or --clip-frame-step, not both\n");
        return TOOL_USAGE;
    }
    int split = strcmp(split_name, "all") ? search_split_parse(split_name) : -1;
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
    search_split_record record = {0};
    bool has_record = false;
    if (search_split_record_load(model_path, &record, &has_record, &err)) {
        fprintf(stderr, "echoview eval: %s\n", err.message);
        ev_model_free(m);
        return TOOL_FAILED;
    }
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
                                .threads = threads,
                                .only_split = split,
                                .quiet = json,
                                .patient_regex = patient_regex,
                                .frames_per_clip = frames_per_clip,
                                .clip_frame_step = clip_frame_step,
                                .video_fps = video_fps,
                                .model_split = has_record ? &record : NULL};
    if (calibrate) {
        search_calibration cal;
        if (search_dataset_load(data, &o, &ds, &err) ||
            search_calibrate(m, ds, split, threads, reject, &cal, &err) ||
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
        search_evaluate(m, ds, split, threads, &r, &err) ||
        (bootstrap > 0 && search_bootstrap_intervals(ds, &r, bootstrap, seed, &err)) ||
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
        if (r.bootstrap.resamples > 0)
            printf("95%% intervals (bootstrap over %d patients, %d resamples, seed %llu): "
                   "accuracy %.2f-%.2f%%, macro F1 %.2f-%.2f%%\n",
                   r.bootstrap.patients, r.bootstrap.resamples,
                   (unsigned long long)r.bootstrap.seed, 100 * r.bootstrap.accuracy[0],
                   100 * r.bootstrap.accuracy[1], 100 * r.bootstrap.macro_f1[0],
                   100 * r.bootstrap.macro_f1[1]);
        else if (bootstrap > 0)
            printf("95%% intervals: none (%d patient evaluated; bootstrapping needs 2 or more)\n",
                   r.bootstrap.patients);
        printf("clip accuracy %.2f%% of %lld clips (mean probabilities over a clip's frames)\n",
               r.clips ? 100.0 * r.clips_correct / r.clips : 0.0, (long long)r.clips);
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
            printf("report: %s/report.json, report.md, predictions.csv, confusion.png, "
                   "misclassified.png\n",
                   out);
    }
    rc = TOOL_OK;
done:
    search_split_record_free(&record);
    search_eval_result_free(&r);
    search_dataset_free(ds);
    ev_model_free(m);
    return rc;
}
