/* stable_label.h: echoviewclassify's stable label, as a plain C unit (no GStreamer) with its own
 * tests. The rule, exactly (docs/GSTREAMER.md): on every new inference, average the
 * probabilities of the last `smoothing` inferences; the candidate is the top class of that mean,
 * or unknown (-1) when its mean probability is below `threshold`. The stable label starts
 * unknown and becomes the candidate once the same candidate has led for `hysteresis`
 * consecutive inferences; a candidate equal to the stable label clears the count. */
#ifndef STABLE_LABEL_H
#define STABLE_LABEL_H

#include <stdbool.h>

#define STABLE_LABEL_MAX_SMOOTHING 256

typedef struct StableLabel {
    int n_classes;
    float *history; /* STABLE_LABEL_MAX_SMOOTHING x n_classes probabilities, a ring */
    float *sum;     /* n_classes: the smoothing sum, planned at init (nothing allocated later) */
    unsigned history_count, history_pos;
    int stable;    /* class index, -1: unknown */
    int candidate; /* class index, -1: unknown */
    unsigned candidate_count;
} StableLabel;

/* Allocates the history for n_classes (>= 1); returns false when out of memory. */
bool stable_label_init(StableLabel *s, int n_classes);
/* Frees the history; s can be initialised again. */
void stable_label_clear(StableLabel *s);
/* Forgets every result: the stable label is unknown again. */
void stable_label_reset(StableLabel *s);
/* Feeds one result (n_classes probabilities); smoothing is clamped to 1..MAX_SMOOTHING and
 * hysteresis to >= 1. Returns true when the stable label changed. */
bool stable_label_update(StableLabel *s, const float *probabilities, unsigned smoothing,
                         unsigned hysteresis, double threshold);
/* The index of the largest of n values (the first on ties). */
int stable_label_top(const float *values, int n);

#endif
