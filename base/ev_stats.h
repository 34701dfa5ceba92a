/* ev_stats.h: the one definition of the latency statistics echoview reports, used by the
 * echoviewclassify element (its latency-p99 and process-p99 properties) and by echoviewd (the
 * latency_ms block of /api/v1/streams), so that the same samples give the same numbers.
 *
 * A window keeps the latest EV_STATS_WINDOW samples (a ring) and a running sum of all of them.
 * Percentiles are by nearest rank over the window: the p-th percentile of n samples is the
 * ceil(p * n / 100)-th smallest, an observed sample such that at least p % of the window is at
 * or below it (with fewer than 100 samples the p99 is the largest). No interpolation: the value
 * is one that really happened, and it needs no rule for ties or tiny windows.
 * Units are the caller's (the element keeps microseconds, the daemon milliseconds). Not
 * thread-safe: callers hold their own lock around add and copy. */
#ifndef EV_STATS_H
#define EV_STATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EV_STATS_WINDOW 1024

typedef struct ev_stats_window {
    double samples[EV_STATS_WINDOW]; /* sample i lives at i % EV_STATS_WINDOW */
    uint64_t count;                  /* samples ever added */
    double sum;                      /* of every sample ever added */
} ev_stats_window;

typedef struct ev_stats_summary {
    size_t n; /* samples in the window; 0: the fields below are 0 */
    double mean, p50, p99;
} ev_stats_summary;

void ev_stats_window_add(ev_stats_window *window, double value);
/* Samples in the window: min(count, EV_STATS_WINDOW). */
size_t ev_stats_window_size(const ev_stats_window *window);
/* Mean of every sample ever added (0 before the first). */
double ev_stats_window_mean_all(const ev_stats_window *window);
/* The p-th percentile (0 < p <= 100) of the window by nearest rank (0 when empty). */
double ev_stats_window_percentile(const ev_stats_window *window, unsigned p);
/* Mean, p50 and p99 of the window (one sort). */
void ev_stats_window_summarize(const ev_stats_window *window, ev_stats_summary *out);

/* The p-th percentile by nearest rank of n values; sorts values in place. 0 when n is 0. */
double ev_stats_percentile(double *values, size_t n, unsigned p);

#ifdef __cplusplus
}
#endif
#endif
