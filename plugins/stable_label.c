/* stable_label.c: smoothing, threshold and hysteresis of the stable label (rule in
 * stable_label.h). */
#include "stable_label.h"

#include <stdlib.h>
#include <string.h>

bool stable_label_init(StableLabel *s, int n_classes)
{
    memset(s, 0, sizeof *s);
    s->n_classes = n_classes;
    s->history = calloc((size_t)STABLE_LABEL_MAX_SMOOTHING * (size_t)n_classes, sizeof(float));
    s->sum = calloc((size_t)n_classes, sizeof(float));
    stable_label_reset(s);
    if (!s->history || !s->sum) {
        stable_label_clear(s);
        return false;
    }
    return true;
}

void stable_label_clear(StableLabel *s)
{
    free(s->history);
    free(s->sum);
    s->history = s->sum = NULL;
    s->n_classes = 0;
}

void stable_label_reset(StableLabel *s)
{
    s->history_count = s->history_pos = 0;
    s->stable = s->candidate = -1;
    s->candidate_count = 0;
}

int stable_label_top(const float *values, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (values[i] > values[best])
            best = i;
    return best;
}

bool stable_label_update(StableLabel *s, const float *probabilities, unsigned smoothing,
                         unsigned hysteresis, double threshold)
{
    const int k = s->n_classes;
    float *sum = s->sum;
    unsigned n;
    int cand;

    memset(sum, 0, (size_t)k * sizeof *sum);
    if (smoothing < 1)
        smoothing = 1;
    if (smoothing > STABLE_LABEL_MAX_SMOOTHING)
        smoothing = STABLE_LABEL_MAX_SMOOTHING;
    if (hysteresis < 1)
        hysteresis = 1;
    memcpy(s->history + (size_t)s->history_pos * k, probabilities, (size_t)k * sizeof(float));
    s->history_pos = (s->history_pos + 1) % STABLE_LABEL_MAX_SMOOTHING;
    if (s->history_count < STABLE_LABEL_MAX_SMOOTHING)
        s->history_count++;
    n = smoothing < s->history_count ? smoothing : s->history_count;
    /* newest first: the order the sums were always taken in, so results stay bit-identical */
    for (unsigned i = 0; i < n; i++) {
        const float *p =
            s->history + (size_t)((s->history_pos + STABLE_LABEL_MAX_SMOOTHING - 1 - i) %
                                  STABLE_LABEL_MAX_SMOOTHING) *
                             k;
        for (int c = 0; c < k; c++)
            sum[c] += p[c];
    }
    cand = stable_label_top(sum, k);
    if (sum[cand] / n < threshold)
        cand = -1;
    if (cand == s->stable) {
        s->candidate_count = 0;
        return false;
    }
    if (cand == s->candidate) {
        s->candidate_count++;
    } else {
        s->candidate = cand;
        s->candidate_count = 1;
    }
    if (s->candidate_count < hysteresis)
        return false;
    s->stable = cand;
    s->candidate_count = 0;
    return true;
}
