/* ev_stats.c: sample windows and nearest-rank percentiles (definitions in ev_stats.h). */
#include "ev_stats.h"

#include <stdlib.h>
#include <string.h>

void ev_stats_window_add(ev_stats_window *window, double value)
{
    window->samples[window->count % EV_STATS_WINDOW] = value;
    window->sum += value;
    window->count++;
}

size_t ev_stats_window_size(const ev_stats_window *window)
{
    return window->count < EV_STATS_WINDOW ? (size_t)window->count : EV_STATS_WINDOW;
}

double ev_stats_window_mean_all(const ev_stats_window *window)
{
    return window->count ? window->sum / (double)window->count : 0.0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rank in integers: ceil(p * n / 100) with no floating-point rounding to land one off. */
static size_t nearest_rank(size_t n, unsigned p)
{
    size_t rank = ((size_t)p * n + 99) / 100;
    return rank < 1 ? 1 : rank > n ? n : rank;
}

double ev_stats_percentile(double *values, size_t n, unsigned p)
{
    if (n == 0)
        return 0.0;
    qsort(values, n, sizeof *values, compare_double);
    return values[nearest_rank(n, p) - 1];
}

double ev_stats_window_percentile(const ev_stats_window *window, unsigned p)
{
    double sorted[EV_STATS_WINDOW];
    size_t n = ev_stats_window_size(window);

    memcpy(sorted, window->samples, n * sizeof *sorted);
    return ev_stats_percentile(sorted, n, p);
}

void ev_stats_window_summarize(const ev_stats_window *window, ev_stats_summary *out)
{
    double sorted[EV_STATS_WINDOW], sum = 0.0;
    size_t n = ev_stats_window_size(window);

    memset(out, 0, sizeof *out);
    if (n == 0)
        return;
    memcpy(sorted, window->samples, n * sizeof *sorted);
    for (size_t i = 0; i < n; i++)
        sum += sorted[i];
    qsort(sorted, n, sizeof *sorted, compare_double);
    out->n = n;
    out->mean = sum / (double)n;
    out->p50 = sorted[nearest_rank(n, 50) - 1];
    out->p99 = sorted[nearest_rank(n, 99) - 1];
}
