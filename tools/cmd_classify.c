/* cmd_classify.c: `echoview classify`: frames from image files through the one preprocessing
 * path (crop, area resize, luma, normalisation) into the network; one JSON object per file. */
#include "media.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: echoview classify --model DIR|model.yaml [--backend auto|cpu|reference|cuda]\n"
    "                         [--threads N] [--roi X,Y,W,H | --auto-roi [--no-screen-check]]\n"
    "                         FILE...\n"
    "  Classifies PNG or PGM/PPM images (8- or 16-bit, gray or colour). An image of exactly the\n"
    "  model's input size is used as is; others are area-resized (after the optional crop to the\n"
    "  ultrasound region). Prints one JSON object per file:\n"
    "    {\"file\", \"label\", \"label_id\", \"confidence\", \"probabilities\"}\n"
    "  Probabilities are calibrated when the model is (model.yaml `calibration:`); below its\n"
    "  confidence threshold the label is \"unknown\" (label_id -1, \"best_guess\" the top class).\n"
    "  A file that cannot be read gives {\"file\", \"error\"}; the others are still classified\n"
    "  and the exit status is 1.\n"
    "  With --auto-roi the frame's screen type is checked first (ev_detect_screen): a screen\n"
    "  without a 2D fan (M-mode, PW/CW/tissue Doppler) is labelled \"other\" at probability 1\n"
    "  when the bundle has that class, else \"unknown\" with every probability 0, \"best_guess\"\n"
    "  the network's top class; the object carries \"screen\": {type, reason, apex_width,\n"
    "  break_rows, fill, area}. --no-screen-check leaves the network's answer as it is.\n";

static int parse_roi(const char *cmd, const tool_option *row, const char *s)
{
    ev_rect *roi = row->target;
    char extra;
    if (sscanf(s, "%d,%d,%d,%d%c", &roi->x, &roi->y, &roi->width, &roi->height, &extra) == 4 &&
        roi->width > 0 && roi->height > 0 && roi->x >= 0 && roi->y >= 0)
        return 0;
    fprintf(stderr, "echoview %s: --roi needs X,Y,W,H with W,H > 0, got '%s'\n", cmd, s);
    return -1;
}

static const char *screen_type_name(ev_screen_type t)
{
    return t == EV_SCREEN_2D ? "2d" : t == EV_SCREEN_NOT_2D ? "not-2d" : "undecided";
}

static int class_index(const ev_model *m, const char *name)
{
    for (int i = 0; i < ev_model_num_classes(m); i++)
        if (!strcmp(ev_model_class_name(m, i), name))
            return i;
    return -1;
}

static json_t *classify_file(const ev_model *m, ev_plan *plan, const char *file, const ev_rect *roi,
                             bool auto_roi, bool screen_check, float *input, float *logits,
                             ev_error *err)
{
    media_image img = {0}, gray = {0};
    json_t *out = NULL;
    ev_frame frame;
    ev_rect found, *use = (ev_rect *)roi;
    ev_screen_info screen = {0};
    bool have_screen = false;
    if (media_image_read(file, &img, err))
        goto out;
    if (img.channels == 2) { /* gray + alpha: drop alpha */
        if (media_image_to_gray8(&img, &gray, err))
            goto out;
        if (media_image_as_frame(&gray, &frame, err))
            goto out;
    } else if (media_image_as_frame(&img, &frame, err)) {
        goto out;
    }
    if (auto_roi && screen_check) {
        int rc = ev_detect_screen(&frame, &screen);
        if (rc != EV_OK) {
            ev_fail(err, rc, "%s: the screen check failed (error %d)", file, rc);
            goto out;
        }
        have_screen = true;
        use = screen.region_found ? &screen.roi : NULL;
    } else if (auto_roi) {
        use = ev_detect_roi(&frame, &found) == EV_OK ? &found : NULL;
    }
    if (ev_preprocess_frame(m, &frame, use, input, err) || ev_plan_run(plan, input, logits, err)) {
        ev_fail_prefix(err, "%s: ", file);
        goto out;
    }
    int k = ev_model_num_classes(m), best = 0;
    float prob[EV_MAX_CLASSES];
    ev_softmax(logits, prob, k);
    for (int i = 1; i < k; i++)
        if (prob[i] > prob[best])
            best = i;
    /* no 2D fan: the bundle's `other` class at probability 1, or unknown with every
     * probability 0 for a bundle without one (as echoviewclassify answers) */
    const bool not_2d = have_screen && screen.type == EV_SCREEN_NOT_2D;
    const int other = class_index(m, EV_OTHER_LABEL), network_best = best;
    if (not_2d) {
        for (int i = 0; i < k; i++)
            prob[i] = i == other ? 1.0f : 0.0f;
        best = other >= 0 ? other : 0;
    }
    json_t *probs = json_object();
    for (int i = 0; i < k; i++)
        json_object_set_new(probs, ev_model_class_name(m, i), json_real(prob[i]));
    /* below the calibrated threshold the answer is unknown; the best guess is still told */
    const bool unknown =
        not_2d ? other < 0 : prob[best] < ev_model_confidence_threshold(m);
    out = json_pack("{s:s, s:s, s:i, s:f, s:o}", "file", file, "label",
                    unknown ? EV_UNKNOWN_LABEL : ev_model_class_name(m, best), "label_id",
                    unknown ? -1 : best, "confidence", (double)prob[best], "probabilities", probs);
    if (out && (unknown || not_2d))
        json_object_set_new(out, "best_guess", json_string(ev_model_class_name(m, network_best)));
    if (out && have_screen)
        json_object_set_new(
            out, "screen",
            json_pack("{s:s, s:s, s:f, s:f, s:f, s:f}", "type", screen_type_name(screen.type),
                      "reason", screen.reason, "apex_width", (double)screen.apex_width,
                      "break_rows", (double)screen.break_rows, "fill", (double)screen.fill,
                      "area", (double)screen.area));
out:
    media_image_free(&gray);
    media_image_free(&img);
    return out;
}

int cmd_classify(int argc, char **argv)
{
    const char *model_path = NULL;
    ev_plan_options opt = {.backend = EV_BACKEND_AUTO, .batch = 1, .threads = 1};
    ev_rect roi;
    bool have_roi = false, auto_roi = false, no_screen_check = false;
    int first_file = argc;
    const tool_option options[] = {
        TOOL_STRING("--model", &model_path),
        TOOL_CUSTOM("--backend", tool_parse_backend, &opt.backend),
        TOOL_INT("--threads", &opt.threads, 1, 256),
        {.name = "--roi",
         .kind = TOOL_OPT_CUSTOM,
         .target = &roi,
         .seen = &have_roi,
         .parse = parse_roi},
        TOOL_FLAG("--auto-roi", &auto_roi),
        TOOL_FLAG("--no-screen-check", &no_screen_check),
    };
    const tool_parser parser = {.cmd = "classify",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .first_operand = &first_file,
                                .required = TOOL_REQUIRED("--model")};
    int status = tool_parse_args(&parser, argc, argv);
    if (status != TOOL_CONTINUE)
        return status;
    if (first_file >= argc) {
        fprintf(stderr, "echoview classify: no input files\n%s", usage);
        return TOOL_USAGE;
    }
    if (have_roi && auto_roi) {
        fprintf(stderr, "echoview classify: give --roi or --auto-roi, not both\n");
        return TOOL_USAGE;
    }
    if (no_screen_check && !auto_roi) {
        fprintf(stderr, "echoview classify: --no-screen-check goes with --auto-roi\n");
        return TOOL_USAGE;
    }
    ev_model *m = tool_load_model("classify", model_path);
    if (!m)
        return TOOL_FAILED;
    ev_error err = {0};
    ev_plan *plan = NULL;
    if (ev_plan_create(m, &opt, &plan, &err)) {
        fprintf(stderr, "echoview classify: %s\n", err.message);
        ev_model_free(m);
        return TOOL_FAILED;
    }
    int w, h, c;
    ev_model_input_shape(m, &w, &h, &c);
    float *input = malloc((size_t)w * h * c * sizeof(float));
    float logits[EV_MAX_CLASSES];
    int failures = 0;
    for (int i = first_file; input && i < argc; i++) {
        json_t *result =
            classify_file(m, plan, argv[i], have_roi ? &roi : NULL, auto_roi,
                                       !no_screen_check, input, logits, &err);
        if (!result) {
            failures++;
            fprintf(stderr, "echoview classify: %s\n", err.message);
            result = json_pack("{s:s, s:s}", "file", argv[i], "error", err.message);
        }
        tool_print_json(result, false);
    }
    if (!input) {
        fprintf(stderr, "echoview classify: out of memory\n");
        failures++;
    }
    free(input);
    ev_plan_free(plan);
    ev_model_free(m);
    return failures ? TOOL_FAILED : TOOL_OK;
}
