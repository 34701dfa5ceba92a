/* test_sampler_metrics.c: balanced batches have exact per-view counts; metrics match confusion
 * matrices computed by hand; the transfer augmentation is deterministic and keeps left left;
 * expected calibration error on hand-made predictions; bootstrap intervals resample patients. */
#include "ev_search.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void sampler_tests(void)
{
    /* 14 classes with very different sizes (class c has 3 + 20c frames), batch 64 */
    int32_t labels[2000];
    int idx[2000], n = 0;
    for (int c = 0; c < 14; c++)
        for (int i = 0; i < 3 + 20 * c; i++) {
            labels[n] = c;
            idx[n] = n;
            n++;
        }
    search_sampler *s = NULL;
    ev_error err = {0};
    CHECK(search_sampler_create(idx, n, labels, 14, 64, &s, &err) == 0, "sampler created");
    search_sampler_reset(s, 42);
    int batch[64], total[14] = {0}, ok = 1, in_range = 1;
    for (int b = 0; b < 7; b++) { /* 7 batches x 8 extra = 56 = 4 x 14 */
        int per[14] = {0};
        search_sampler_next(s, batch);
        for (int i = 0; i < 64; i++) {
            in_range &= batch[i] >= 0 && batch[i] < n;
            per[labels[batch[i]]]++;
        }
        for (int c = 0; c < 14; c++) {
            ok &= per[c] == 4 || per[c] == 5;
            total[c] += per[c];
        }
    }
    CHECK(ok && in_range, "every batch of 64 has 4 or 5 frames of each of the 14 views");
    int equal = 1;
    for (int c = 0; c < 14; c++)
        equal &= total[c] == 32; /* 7 x 4 + 4 */
    CHECK(equal,
          "over 7 consecutive batches each view gets exactly 32 frames (small ones oversampled)");
    /* class 0 has 3 frames: within one pass of its list no frame repeats */
    search_sampler_reset(s, 42);
    int first[64], again[64];
    search_sampler_next(s, first);
    search_sampler_reset(s, 42);
    search_sampler_next(s, again);
    CHECK(memcmp(first, again, sizeof first) == 0, "the same seed gives the same batch");
    search_sampler_free(s);

    /* batch divisible: 5 classes, batch 10 -> exactly 2 each */
    int32_t l2[50];
    int i2[50];
    for (int i = 0; i < 50; i++)
        l2[i] = i % 5 == 4 ? 4 : i % 4, i2[i] = i;
    CHECK(search_sampler_create(i2, 50, l2, 6, 10, &s, &err) == 0, "sampler with an empty class");
    CHECK(search_sampler_classes_present(s) == 5, "5 of 6 classes present");
    int b2[10], per2[6] = {0};
    search_sampler_next(s, b2);
    for (int i = 0; i < 10; i++)
        per2[l2[b2[i]]]++;
    CHECK(per2[0] == 2 && per2[1] == 2 && per2[2] == 2 && per2[3] == 2 && per2[4] == 2 &&
              per2[5] == 0,
          "batch 10 over 5 present classes: exactly 2 each, none of the empty class");
    search_sampler_free(s);
}

static void metrics_tests(void)
{
    /* 3 classes, rows true, columns predicted:
     *   [5 1 0]   class 0: tp 5, support 6, predicted 7 -> P 5/7, R 5/6
     *   [2 3 1]   class 1: tp 3, support 6, predicted 4 -> P 3/4, R 3/6
     *   [0 0 4]   class 2: tp 4, support 4, predicted 5 -> P 4/5, R 1 */
    int64_t cm[9] = {5, 1, 0, 2, 3, 1, 0, 0, 4};
    search_metrics m;
    search_metrics_compute(cm, 3, &m);
    double p[3] = {5.0 / 7, 3.0 / 4, 4.0 / 5}, r[3] = {5.0 / 6, 0.5, 1.0}, f[3];
    for (int c = 0; c < 3; c++)
        f[c] = 2 * p[c] * r[c] / (p[c] + r[c]);
    CHECK(fabs(m.accuracy - 12.0 / 16) < 1e-12, "accuracy %.6f = 12/16", m.accuracy);
    CHECK(fabs(m.macro_precision - (p[0] + p[1] + p[2]) / 3) < 1e-12, "macro precision %.6f",
          m.macro_precision);
    CHECK(fabs(m.macro_recall - (r[0] + r[1] + r[2]) / 3) < 1e-12, "macro recall %.6f",
          m.macro_recall);
    CHECK(fabs(m.macro_f1 - (f[0] + f[1] + f[2]) / 3) < 1e-12,
          "macro F1 %.6f (mean of per-class F1)", m.macro_f1);
    CHECK(fabs(m.weighted_f1 - (6 * f[0] + 6 * f[1] + 4 * f[2]) / 16) < 1e-12, "weighted F1 %.6f",
          m.weighted_f1);
    /* a class absent from the ground truth and never predicted does not enter macro averages;
     * a class never predicted has precision 0 */
    int64_t cm2[9] = {4, 0, 0, 2, 0, 0, 0, 0, 0};
    search_metrics_compute(cm2, 3, &m);
    CHECK(m.classes_present == 2 && fabs(m.precision[1]) < 1e-12 &&
              fabs(m.macro_recall - (1.0 + 0.0) / 2) < 1e-12,
          "absent class excluded (present %d), never-predicted precision 0, macro recall %.3f",
          m.classes_present, m.macro_recall);
    /* a class predicted but absent from the ground truth counts in the macro averages with
     * precision 0 (sklearn's union of y_true and y_pred): 18 of 20 right, the 2 wrong ones
     * predicted as class 2, which no frame has; counting only the true classes reported 100%
     * macro precision here */
    int64_t cm3[9] = {8, 0, 2, 0, 10, 0, 0, 0, 0};
    search_metrics_compute(cm3, 3, &m);
    CHECK(m.classes_present == 2 && m.classes_scored == 3 && fabs(m.accuracy - 0.9) < 1e-12 &&
              fabs(m.macro_precision - 2.0 / 3) < 1e-12 && fabs(m.macro_recall - 1.8 / 3) < 1e-12 &&
              fabs(m.macro_f1 - (2 * 0.8 / 1.8 + 1.0) / 3) < 1e-12,
          "predicted-but-absent class scored: macro precision %.4f (2/3), recall %.4f (0.6), F1 "
          "%.4f over %d classes",
          m.macro_precision, m.macro_recall, m.macro_f1, m.classes_scored);
}

static void augment_tests(void)
{
    enum { S = 32 };
    uint8_t src[S * S];
    float a[S * S], b[S * S], c[S * S];
    const float mean[3] = {0, 0, 0}, sd[3] = {1, 1, 1};
    /* a sector-like frame: speckle everywhere, a bright blob in the left third */
    uint64_t r0 = 9;
    for (int i = 0; i < S * S; i++) {
        const int x = i % S, y = i / S;
        const bool blob = (x - 7) * (x - 7) + (y - 16) * (y - 16) < 25;
        src[i] = blob ? 250 : (uint8_t)(40 + ev_rng_next(&r0) % 40);
    }
    search_augment aug;
    CHECK(search_augment_parse("transfer", &aug) == 0 && aug.fan_prob > 0 &&
              search_augment_parse("basic", &aug) == 0 && aug.fan_prob == 0 &&
              search_augment_parse("mixup", &aug) == -1,
          "augmentation recipes: transfer, basic; an unknown name is refused");
    search_augment_transfer(&aug);
    uint64_t r1 = 1234, r2 = 1234, r3 = 1235;
    search_frame_to_input(src, S, S, 1, &aug, &r1, EV_NORMALIZE_SECTOR, 1.0f / 255, mean, sd, a);
    search_frame_to_input(src, S, S, 1, &aug, &r2, EV_NORMALIZE_SECTOR, 1.0f / 255, mean, sd, b);
    search_frame_to_input(src, S, S, 1, &aug, &r3, EV_NORMALIZE_SECTOR, 1.0f / 255, mean, sd, c);
    CHECK(memcmp(a, b, sizeof a) == 0 && r1 == r2 && memcmp(a, c, sizeof a) != 0,
          "transfer augmentation: the same rng state gives the same frame, another a different one");
    /* label preservation: views are not mirror images, so the blob never crosses to the right
     * (the intensity changes and overlay boxes off: they move nothing, and a box may sit anywhere;
     * the geometry, outline, shadows and blur stay on) */
    aug.text_prob = 0.0f;
    aug.speckle = 0.0f;
    aug.gain_field = 0.0f;
    aug.haze = 0.0f;
    aug.gain = 0.0f;
    int left = 0, bright_frames = 0;
    for (int t = 0; t < 200; t++) {
        uint64_t r = 5000 + (uint64_t)t;
        search_frame_to_input(src, S, S, 1, &aug, &r, EV_NORMALIZE_NONE, 1.0f, mean, sd, a);
        double sx = 0, sw = 0;
        for (int i = 0; i < S * S; i++) /* the top 3% of the frame: the blob, where visible */
            if (a[i] > 220.0f) {
                sx += i % S;
                sw += 1;
            }
        if (sw > 0) {
            bright_frames++;
            left += sx / sw < S / 2.0;
        }
    }
    CHECK(bright_frames > 100 && left == bright_frames,
          "200 transfer draws: the left blob stays left in all %d frames where it shows (%d)",
          bright_frames, left);
    /* no augmentation + sector normalisation: exactly the engine's ev_normalize_sector */
    for (int i = 0; i < S * S; i++)
        b[i] = src[i];
    ev_normalize_sector(b, S, S);
    search_frame_to_input(src, S, S, 1, NULL, NULL, EV_NORMALIZE_SECTOR, 1.0f / 255, mean, sd, a);
    double worst = 0;
    for (int i = 0; i < S * S; i++)
        worst = fmax(worst, fabs(a[i] - b[i] / 255.0));
    CHECK(worst < 1e-6, "evaluation input with sector normalisation is the engine's (diff %.2g)",
          worst);
}

static void calibration_tests(void)
{
    /* 4 frames: confidences 0.93 (right), 0.91 (wrong), 0.55 (right), 0.5 (wrong). Bins of 1/15:
     * 0.93 and 0.91 share bin 13 (conf 0.92, acc 0.5), 0.55 is bin 8, 0.5 bin 7.
     * ECE = (2 |0.5 - 0.92| + |1 - 0.55| + |0 - 0.5|) / 4 = 0.4475 */
    search_dataset ds = {0};
    int32_t labels[4] = {0, 1, 2, 0}, pred[4] = {0, 0, 2, 1};
    int8_t split[4] = {SEARCH_SPLIT_VAL, SEARCH_SPLIT_VAL, SEARCH_SPLIT_VAL, SEARCH_SPLIT_VAL};
    float conf[4] = {0.93f, 0.91f, 0.55f, 0.5f};
    ds.count = 4;
    ds.labels = labels;
    ds.split = split;
    search_eval_result r = {.predicted = pred, .confidence = conf, .k = 3};
    search_calibration_stats(&r, &ds, SEARCH_SPLIT_VAL, 0.6f);
    CHECK(fabs(r.ece - 0.4475) < 1e-6 && r.bin_count[13] == 2 && fabs(r.bin_accuracy[13] - 0.5) < 1e-9,
          "ECE of the hand-made predictions: %.6f (0.4475)", r.ece);
    CHECK(fabs(r.unknown_fraction - 0.5) < 1e-9 && fabs(r.accepted_accuracy - 0.5) < 1e-9,
          "threshold 0.6: half the frames unknown, accuracy over the rest 0.5 (%.3f, %.3f)",
          r.unknown_fraction, r.accepted_accuracy);
}

/* n patients of f frames each; patient p's frames are all right when right[p], all wrong
 * otherwise (predicted class 1 for truth 0). */
static void bootstrap_case(int n, int f, const bool *right, int resamples, uint64_t seed,
                           search_bootstrap *out)
{
    search_dataset ds = {0};
    int32_t labels[400], pred[400], patient[400];
    for (int p = 0; p < n; p++)
        for (int j = 0; j < f; j++) {
            labels[p * f + j] = 0;
            pred[p * f + j] = right[p] ? 0 : 1;
            patient[p * f + j] = p;
        }
    ds.count = n * f;
    ds.labels = labels;
    ds.patient = patient;
    ds.num_patients = n;
    search_eval_result r = {.predicted = pred, .k = 2};
    ev_error err = {0};
    CHECK(search_bootstrap_intervals(&ds, &r, resamples, seed, &err) == EV_OK, "bootstrap: %s",
          err.message);
    *out = r.bootstrap;
}

static void bootstrap_tests(void)
{
    search_bootstrap b, b2;
    /* two patients of 10 frames, one all right, one all wrong: each resample draws 2 patients,
     * so its accuracy is 0, 0.5 or 1 (p 1/4, 1/2, 1/4) and the 95 % interval is [0, 1]; a
     * bootstrap over the 20 frames one by one would give about [0.3, 0.7] */
    bool two[2] = {true, false};
    bootstrap_case(2, 10, two, 1000, 1, &b);
    CHECK(b.resamples == 1000 && b.patients == 2 && b.accuracy[0] == 0.0 &&
              b.accuracy[1] == 1.0,
          "2 patients, one right and one wrong: accuracy interval [%.3f, %.3f] = [0, 1] "
          "(patients resampled, not frames)",
          b.accuracy[0], b.accuracy[1]);
    /* every frame right: no spread */
    bool all[8] = {true, true, true, true, true, true, true, true};
    bootstrap_case(8, 5, all, 500, 7, &b);
    CHECK(b.accuracy[0] == 1.0 && b.accuracy[1] == 1.0 && b.macro_f1[0] == 1.0 &&
              b.macro_f1[1] == 1.0,
          "all right: intervals [1, 1] (%.3f-%.3f, F1 %.3f-%.3f)", b.accuracy[0], b.accuracy[1],
          b.macro_f1[0], b.macro_f1[1]);
    /* 40 patients, 20 right: accuracy 0.5 with a binomial standard error of
     * sqrt(0.25 / 40) = 0.079, so a 95 % interval near 0.5 -/+ 0.155 = [0.345, 0.655] */
    bool half[40];
    for (int p = 0; p < 40; p++)
        half[p] = p % 2 == 0;
    bootstrap_case(40, 3, half, 4000, 3, &b);
    CHECK(fabs(b.accuracy[0] - 0.345) < 0.04 && fabs(b.accuracy[1] - 0.655) < 0.04 &&
              b.macro_f1[0] < b.macro_f1[1],
          "40 patients, half right: accuracy interval [%.3f, %.3f] near the normal "
          "approximation's [0.345, 0.655]; macro F1 [%.3f, %.3f]",
          b.accuracy[0], b.accuracy[1], b.macro_f1[0], b.macro_f1[1]);
    bootstrap_case(40, 3, half, 4000, 3, &b2);
    CHECK(!memcmp(&b, &b2, sizeof b), "the same seed gives the same intervals");
    /* few resamples, so that the percentiles interpolate between draws that differ by seed */
    bootstrap_case(40, 3, half, 37, 3, &b);
    bootstrap_case(40, 3, half, 37, 4, &b2);
    CHECK(b.accuracy[0] != b2.accuracy[0] || b.accuracy[1] != b2.accuracy[1] ||
              b.macro_f1[0] != b2.macro_f1[0] || b.macro_f1[1] != b2.macro_f1[1],
          "another seed draws other resamples ([%.4f, %.4f] against [%.4f, %.4f])",
          b.accuracy[0], b.accuracy[1], b2.accuracy[0], b2.accuracy[1]);
    /* one patient: nothing to resample */
    bootstrap_case(1, 10, two, 1000, 1, &b);
    CHECK(b.resamples == 0 && b.patients == 1, "one patient: no interval (%d resamples)",
          b.resamples);
    search_dataset ds = {0};
    search_eval_result r = {.k = 2};
    ev_error err = {0};
    CHECK(search_bootstrap_intervals(&ds, &r, 0, 1, &err) == EV_ERR_INVALID &&
              strstr(err.message, "0 resamples outside 1..100000"),
          "0 resamples refused: %s", err.message);
}

int main(void)
{
    bootstrap_tests();
    sampler_tests();
    metrics_tests();
    augment_tests();
    calibration_tests();
    return test_finish();
}
