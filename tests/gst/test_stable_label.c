/* test_stable_label.c: the stable-label rule of echoviewclassify (plugins/stable_label.h) on
 * hand-made probability sequences, each with the label and change flag it must give: raw
 * labels with smoothing=1 hysteresis=1, hysteresis holding a single odd frame back, the
 * smoothing mean outvoting the newest result, the threshold's unknown, the window wrapping past
 * its 256 entries, resets, and ties. Plain C: no GStreamer needed. */
#include "stable_label.h"
#include "test_util.h"

#include <stdlib.h>

#define K 3

/* One result leaning to class c with probability p (the rest shared evenly). */
static const float *leaning(int c, float p)
{
    static float v[K];
    for (int i = 0; i < K; i++)
        v[i] = i == c ? p : (1.0f - p) / (K - 1);
    return v;
}

/* Feeds n results leaning to c; returns how many of them changed the stable label. */
static int feed(StableLabel *s, int n, int c, float p, unsigned smoothing, unsigned hysteresis,
                double threshold)
{
    int changes = 0;
    for (int i = 0; i < n; i++)
        changes += stable_label_update(s, leaning(c, p), smoothing, hysteresis, threshold);
    return changes;
}

static void check_raw(void)
{
    StableLabel s;
    bool ok = stable_label_init(&s, K), flips = true;

    CHECK(ok && s.stable == -1, "a new stable label is unknown");
    /* smoothing 1, hysteresis 1: the stable label is every result's top class */
    int labels[] = {0, 0, 2, 1, 1, 0};
    for (int i = 0; i < 6; i++) {
        bool changed = stable_label_update(&s, leaning(labels[i], 0.8f), 1, 1, 0.0);
        flips &= s.stable == labels[i] && changed == (i == 0 || labels[i] != labels[i - 1]);
    }
    CHECK(flips, "smoothing=1 hysteresis=1 gives the raw label, changing exactly on change");
    stable_label_clear(&s);
}

static void check_hysteresis(void)
{
    StableLabel s;
    stable_label_init(&s, K);

    /* defaults (smoothing 5, hysteresis 3): class 1 needs three leading results to be stable */
    CHECK(feed(&s, 2, 1, 0.9f, 5, 3, 0.0) == 0 && s.stable == -1 && s.candidate == 1 &&
              s.candidate_count == 2,
          "two results of class 1: still unknown, candidate 1 counted twice");
    CHECK(stable_label_update(&s, leaning(1, 0.9f), 5, 3, 0.0) && s.stable == 1,
          "the third makes class 1 stable, and says so");
    /* one odd frame of class 2 does not move the smoothed top (mean of the last 5) */
    CHECK(feed(&s, 1, 2, 0.9f, 5, 3, 0.0) == 0 && s.stable == 1 && s.candidate_count == 0,
          "a single odd frame never flips it");
    /* a real change: class 2 must first win the mean, then lead three times */
    int changes = 0, at = -1;
    for (int i = 0; i < 10 && at < 0; i++) {
        if (stable_label_update(&s, leaning(2, 0.9f), 5, 3, 0.0)) {
            changes++;
            at = i;
        }
    }
    /* after the odd frame: 4 of the last 5 are class 2 from the 2nd new result on, so it leads
     * at results 2, 3, 4 (index 1..3) and is stable at the 3rd leading one (index 3) */
    CHECK(changes == 1 && at == 3 && s.stable == 2,
          "a view change shows at the 4th result (index %d), once", at);
    stable_label_clear(&s);
}

static void check_smoothing(void)
{
    StableLabel s;
    stable_label_init(&s, K);

    /* class 0 at 0.9 twice, then class 1 at 0.4: the mean of three still favours class 0 */
    feed(&s, 2, 0, 0.9f, 3, 1, 0.0);
    CHECK(!stable_label_update(&s, leaning(1, 0.4f), 3, 1, 0.0) && s.stable == 0,
          "the mean of the last 3 outvotes the newest result");
    /* with smoothing 1 the same newest result wins at once */
    CHECK(stable_label_update(&s, leaning(1, 0.4f), 1, 1, 0.0) && s.stable == 1,
          "smoothing 1 follows the newest result");
    /* a window of 256: 300 results of class 2 (0.9), then class 0 at 0.8: after j of them the
     * sums over the 256 kept are 0.8 j + 0.05 (256 - j) and 0.9 (256 - j) + 0.1 j, so class 0
     * leads from j = 141 on (1.55 j > 217.6): only if older results have left the window */
    stable_label_reset(&s);
    feed(&s, 300, 2, 0.9f, 256, 1, 0.0);
    CHECK(s.stable == 2 && s.history_count == STABLE_LABEL_MAX_SMOOTHING,
          "the window keeps at most 256 results");
    int first = -1;
    for (int i = 0; i < 256 && first < 0; i++)
        if (stable_label_update(&s, leaning(0, 0.8f), 256, 1, 0.0))
            first = i;
    CHECK(first == 140, "after the wrap, class 0 takes the mean of 256 at its 141st result (%d)",
          first + 1);
    stable_label_clear(&s);
}

static void check_threshold_reset_ties(void)
{
    StableLabel s;
    stable_label_init(&s, K);

    feed(&s, 3, 1, 0.9f, 1, 1, 0.5);
    CHECK(s.stable == 1, "0.9 passes threshold 0.5");
    CHECK(stable_label_update(&s, leaning(1, 0.45f), 1, 1, 0.5) && s.stable == -1,
          "0.45 below threshold 0.5: the stable label becomes unknown");
    CHECK(!stable_label_update(&s, leaning(2, 0.3f), 1, 1, 0.5) && s.stable == -1,
          "unknown stays unknown while below the threshold");
    stable_label_reset(&s);
    CHECK(s.stable == -1 && s.candidate == -1 && s.history_count == 0,
          "reset forgets every result");
    float tie[K] = {0.4f, 0.4f, 0.2f};
    CHECK(stable_label_update(&s, tie, 1, 1, 0.0) && s.stable == 0 && stable_label_top(tie, K) == 0,
          "ties go to the first class");
    stable_label_clear(&s);
}

int main(void)
{
    check_raw();
    check_hysteresis();
    check_smoothing();
    check_threshold_reset_ties();
    return test_finish();
}
