/* predictions.c: what an evaluation says per frame and per clip. The predictions CSV has one
 * row per evaluated frame (file, frame, patient, clip, split, truth, prediction, confidence,
 * then p_CLASS for every class), for whoever wants to look at single frames or compute their
 * own statistics. Clip accuracy scores a loop as a scanner would show it: the mean of its
 * frames' probabilities, argmax, against the clip's label (frames of one clip with different
 * labels count as one clip per label). Bootstrap intervals resample patients, not frames:
 * frames of one patient (often of one loop) are not independent, and resampling them one by one
 * would give intervals as narrow as if every frame were a new patient. */
#include "ev_search.h"
#include "search_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct clip_key {
    int32_t clip, label;
    int index;
} clip_key;

static int cmp_clip_key(const void *a, const void *b)
{
    const clip_key *x = a, *y = b;
    if (x->clip != y->clip)
        return x->clip < y->clip ? -1 : 1;
    if (x->label != y->label)
        return x->label < y->label ? -1 : 1;
    return x->index - y->index;
}

int search_clip_accuracy(const search_dataset *ds, const search_eval_result *r, int64_t *clips,
                         int64_t *correct, ev_error *err)
{
    *clips = *correct = 0;
    if (!r->probabilities || !ds->clip)
        return EV_OK;
    clip_key *keys = malloc((size_t)(ds->count ? ds->count : 1) * sizeof *keys);
    if (!keys)
        return ev_fail(err, EV_ERR_NOMEM, "clip accuracy: out of memory");
    int n = 0;
    for (int i = 0; i < ds->count; i++)
        if (r->predicted[i] >= 0)
            keys[n++] = (clip_key){ds->clip[i], ds->labels[i], i};
    qsort(keys, (size_t)n, sizeof *keys, cmp_clip_key);
    const int k = r->k;
    for (int a = 0; a < n;) {
        int b = a;
        double mean[EV_MAX_CLASSES] = {0};
        while (b < n && keys[b].clip == keys[a].clip && keys[b].label == keys[a].label) {
            const float *p = r->probabilities + (size_t)keys[b].index * k;
            for (int c = 0; c < k; c++)
                mean[c] += p[c];
            b++;
        }
        int best = 0;
        for (int c = 1; c < k; c++)
            if (mean[c] > mean[best])
                best = c;
        (*clips)++;
        *correct += best == keys[a].label;
        a = b;
    }
    free(keys);
    return EV_OK;
}

/* RFC 4180: quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int search_write_predictions(const char *path, const ev_model *model, const search_dataset *ds,
                             const search_eval_result *r, ev_error *err)
{
    if (!r->probabilities)
        return ev_fail(err, EV_ERR_INVALID, "%s: the evaluation kept no probabilities", path);
    FILE *f = fopen(path, "w");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    const int k = r->k;
    fputs("file,frame,patient,clip,split,truth,prediction,confidence", f);
    for (int c = 0; c < k; c++) {
        char name[128];
        snprintf(name, sizeof name, "p_%s", ev_model_class_name(model, c));
        fputc(',', f);
        csv_field(f, name);
    }
    fputc('\n', f);
    for (int i = 0; i < ds->count; i++) {
        if (r->predicted[i] < 0)
            continue;
        csv_field(f, ds->paths[i] ? ds->paths[i] : "");
        if (ds->frame && ds->frame[i] >= 0)
            fprintf(f, ",%d,", ds->frame[i]);
        else
            fputs(",,", f);
        csv_field(f, ds->patient_names ? ds->patient_names[ds->patient[i]] : "");
        fputc(',', f);
        csv_field(f, ds->clip_names && ds->clip ? ds->clip_names[ds->clip[i]] : "");
        fprintf(f, ",%s,", search_split_name(ds->split[i]));
        csv_field(f, ev_model_class_name(model, ds->labels[i]));
        fputc(',', f);
        csv_field(f, ev_model_class_name(model, r->predicted[i]));
        fprintf(f, ",%.6f", r->confidence[i]);
        const float *p = r->probabilities + (size_t)i * k;
        for (int c = 0; c < k; c++)
            fprintf(f, ",%.6f", p[c]);
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: write failed", path);
    return EV_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy's default percentile: linear interpolation between the closest ranks */
static double percentile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

int search_bootstrap_intervals(const search_dataset *ds, search_eval_result *r, int resamples,
                               uint64_t seed, ev_error *err)
{
    memset(&r->bootstrap, 0, sizeof r->bootstrap);
    r->bootstrap.seed = seed;
    if (resamples < 1 || resamples > 100000)
        return ev_fail(err, EV_ERR_INVALID, "bootstrap: %d resamples outside 1..100000",
                       resamples);
    const int k = r->k, np = ds->num_patients > 0 ? ds->num_patients : 1;
    /* the evaluated frames grouped by patient: start[p]..start[p+1] in frames[] */
    int *start = calloc((size_t)np + 1, sizeof *start), *frames = NULL, *fill = NULL;
    int *present = NULL;
    double *acc = NULL, *f1 = NULL;
    int64_t *cm = NULL;
    int rc = EV_OK, n = 0, patients = 0;
    if (!start)
        return ev_fail(err, EV_ERR_NOMEM, "bootstrap: out of memory");
    for (int i = 0; i < ds->count; i++)
        if (r->predicted[i] >= 0 && ds->labels[i] < k && ds->patient[i] >= 0 &&
            ds->patient[i] < np) {
            start[ds->patient[i] + 1]++;
            n++;
        }
    for (int p = 0; p < np; p++) {
        patients += start[p + 1] > 0;
        start[p + 1] += start[p];
    }
    r->bootstrap.patients = patients;
    if (patients < 2)
        goto out;
    frames = malloc((size_t)n * sizeof *frames);
    fill = malloc((size_t)np * sizeof *fill);
    present = malloc((size_t)patients * sizeof *present);
    acc = malloc((size_t)resamples * sizeof *acc);
    f1 = malloc((size_t)resamples * sizeof *f1);
    cm = malloc((size_t)k * k * sizeof *cm);
    if (!frames || !fill || !present || !acc || !f1 || !cm) {
        rc = ev_fail(err, EV_ERR_NOMEM, "bootstrap: out of memory");
        goto out;
    }
    memcpy(fill, start, (size_t)np * sizeof *fill);
    for (int i = 0; i < ds->count; i++)
        if (r->predicted[i] >= 0 && ds->labels[i] < k && ds->patient[i] >= 0 &&
            ds->patient[i] < np)
            frames[fill[ds->patient[i]]++] = i;
    for (int p = 0, j = 0; p < np; p++)
        if (start[p + 1] > start[p])
            present[j++] = p;
    search_metrics m;
    for (int b = 0; b < resamples; b++) {
        memset(cm, 0, (size_t)k * k * sizeof *cm);
        for (int j = 0; j < patients; j++) {
            uint64_t h = search_seed_mix(search_seed_mix(seed, (uint64_t)b), (uint64_t)j);
            int p = present[(int)((double)(h >> 11) * 0x1.0p-53 * patients)];
            for (int f = start[p]; f < start[p + 1]; f++) {
                int i = frames[f];
                cm[(size_t)ds->labels[i] * k + r->predicted[i]]++;
            }
        }
        search_metrics_compute(cm, k, &m);
        acc[b] = m.accuracy;
        f1[b] = m.macro_f1;
    }
    qsort(acc, (size_t)resamples, sizeof *acc, cmp_double);
    qsort(f1, (size_t)resamples, sizeof *f1, cmp_double);
    r->bootstrap.resamples = resamples;
    r->bootstrap.accuracy[0] = percentile(acc, resamples, 0.025);
    r->bootstrap.accuracy[1] = percentile(acc, resamples, 0.975);
    r->bootstrap.macro_f1[0] = percentile(f1, resamples, 0.025);
    r->bootstrap.macro_f1[1] = percentile(f1, resamples, 0.975);
out:
    free(start);
    free(frames);
    free(fill);
    free(present);
    free(acc);
    free(f1);
    free(cm);
    return rc;
}
