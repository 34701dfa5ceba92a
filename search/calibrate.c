/* calibrate.c: confidence calibration: expected calibration error and reliability bins of an
 * evaluation, temperature scaling fitted on a validation split, and the confidence below which
 * the engine answers `unknown`.
 *
 * Only validation frames of the training data are used here (the phantom's): a threshold or a
 * temperature fitted on the frames one reports on would make the report a fit. */
#include "ev_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void search_calibration_stats(search_eval_result *r, const search_dataset *ds, int split,
                              float threshold)
{
    double conf_sum[SEARCH_ECE_BINS] = {0}, right[SEARCH_ECE_BINS] = {0};
    int64_t count[SEARCH_ECE_BINS] = {0}, n = 0, unknown = 0, accepted_right = 0;
    for (int i = 0; i < ds->count; i++) {
        if ((split >= 0 && ds->split[i] != split) || r->predicted[i] < 0)
            continue;
        const double c = r->confidence[i];
        const bool ok = r->predicted[i] == ds->labels[i];
        int b = (int)(c * SEARCH_ECE_BINS);
        b = b < 0 ? 0 : b >= SEARCH_ECE_BINS ? SEARCH_ECE_BINS - 1 : b;
        conf_sum[b] += c;
        right[b] += ok;
        count[b]++;
        n++;
        if (c < threshold)
            unknown++;
        else
            accepted_right += ok;
    }
    r->ece = 0.0;
    for (int b = 0; b < SEARCH_ECE_BINS; b++) {
        r->bin_count[b] = count[b];
        r->bin_confidence[b] = count[b] ? conf_sum[b] / count[b] : 0.0;
        r->bin_accuracy[b] = count[b] ? right[b] / count[b] : 0.0;
        if (n)
            r->ece += fabs(r->bin_accuracy[b] - r->bin_confidence[b]) * count[b] / (double)n;
    }
    r->unknown_fraction = n ? (double)unknown / n : 0.0;
    r->accepted_accuracy = n - unknown ? (double)accepted_right / (n - unknown) : 0.0;
}

/* Mean negative log-likelihood of softmax(z / s) over the listed frames. */
static double mean_nll(const float *logits, const int32_t *labels, const int *idx, int count,
                       int k, double s)
{
    double total = 0.0;
    for (int j = 0; j < count; j++) {
        const float *z = logits + (size_t)idx[j] * k;
        double top = z[0];
        for (int c = 1; c < k; c++)
            top = z[c] > top ? z[c] : top;
        double sum = 0.0;
        for (int c = 0; c < k; c++)
            sum += exp((z[c] - top) / s);
        total += log(sum) - (z[labels[idx[j]]] - top) / s;
    }
    return count ? total / count : 0.0;
}

static int compare_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int search_calibrate(const ev_model *model, const search_dataset *ds, int split, int threads,
                     double reject_fraction, search_calibration *out, ev_error *err)
{
    memset(out, 0, sizeof *out);
    if (!(reject_fraction >= 0.0 && reject_fraction <= 0.5))
        return ev_fail(err, EV_ERR_INVALID, "calibrate: reject fraction %g outside 0..0.5",
                       reject_fraction);
    search_eval_result r;
    int rc = search_evaluate(model, ds, split, threads, &r, err);
    if (rc)
        return rc;
    const int k = r.k;
    int *idx = malloc((size_t)ds->count * sizeof *idx);
    float *right_conf = malloc((size_t)ds->count * sizeof *right_conf);
    if (!idx || !right_conf) {
        free(idx);
        free(right_conf);
        search_eval_result_free(&r);
        return ev_fail(err, EV_ERR_NOMEM, "calibrate: out of memory");
    }
    int count = 0;
    for (int i = 0; i < ds->count; i++)
        if ((split < 0 || ds->split[i] == split) && ds->labels[i] >= 0 && ds->labels[i] < k)
            idx[count++] = i;
    out->frames = count;
    out->ece_before = r.ece;
    out->nll_before = mean_nll(r.logits, ds->labels, idx, count, k, 1.0);
    /* golden-section search on log s: the NLL of temperature scaling is convex in 1/s */
    const double g = 0.5 * (sqrt(5.0) - 1.0);
    double lo = log(1.0 / 20.0), hi = log(20.0);
    double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
    double fa = mean_nll(r.logits, ds->labels, idx, count, k, exp(a));
    double fb = mean_nll(r.logits, ds->labels, idx, count, k, exp(b));
    for (int it = 0; it < 80; it++) {
        if (fa < fb) {
            hi = b, b = a, fb = fa;
            a = hi - g * (hi - lo);
            fa = mean_nll(r.logits, ds->labels, idx, count, k, exp(a));
        } else {
            lo = a, a = b, fa = fb;
            b = lo + g * (hi - lo);
            fb = mean_nll(r.logits, ds->labels, idx, count, k, exp(b));
        }
    }
    const double s = exp(0.5 * (lo + hi));
    out->nll_after = mean_nll(r.logits, ds->labels, idx, count, k, s);
    out->temperature = (float)(ev_model_temperature(model) * s);
    /* the calibrated confidences: ECE after, and the right answers' for the threshold */
    int nright = 0;
    for (int j = 0; j < count; j++) {
        const int i = idx[j];
        float z[EV_MAX_CLASSES], p[EV_MAX_CLASSES];
        for (int c = 0; c < k; c++)
            z[c] = (float)(r.logits[(size_t)i * k + c] / s);
        ev_softmax(z, p, k);
        r.confidence[i] = p[r.predicted[i]];
        if (r.predicted[i] == ds->labels[i])
            right_conf[nright++] = p[r.predicted[i]];
    }
    float threshold = 0.0f;
    if (nright > 0 && reject_fraction > 0.0) {
        qsort(right_conf, (size_t)nright, sizeof *right_conf, compare_float);
        /* halfway between the right answers on either side of the quantile, so that no
         * validation frame sits on the threshold (a last-bit difference would flip it) */
        const int q = (int)(reject_fraction * (nright - 1));
        threshold = q > 0 ? 0.5f * (right_conf[q - 1] + right_conf[q]) : 0.5f * right_conf[0];
        if (threshold > 0.99f)
            threshold = 0.99f;
    }
    out->confidence_threshold = threshold;
    search_calibration_stats(&r, ds, split, threshold);
    out->ece_after = r.ece;
    out->unknown_fraction = r.unknown_fraction;
    free(idx);
    free(right_conf);
    search_eval_result_free(&r);
    return EV_OK;
}
