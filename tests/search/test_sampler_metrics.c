/* test_sampler_metrics.c: balanced batches have exact per-view counts; metrics match confusion
 * matrices computed by hand. */
#include "ev_search.h"
#include "test_util.h"

#include <stdlib.h>

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

int main(void)
{
    sampler_tests();
    metrics_tests();
    return test_finish();
}
