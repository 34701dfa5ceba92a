/* predictions.c: what an evaluation says per frame and per clip. The predictions CSV has one
 * row per evaluated frame (file, frame, patient, clip, split, truth, prediction, confidence,
 * then p_CLASS for every class), for whoever wants to look at single frames or compute their
 * own statistics. Clip accuracy scores a loop as a scanner would show it: the mean of its
 * frames' probabilities, argmax, against the clip's label (frames of one clip with different
 * labels count as one clip per label). */
#include "ev_search.h"

#include <errno.h>
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
