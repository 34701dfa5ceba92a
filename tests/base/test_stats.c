/* test_stats.c: the one percentile definition (base/ev_stats.h): nearest rank over a window of
 * the latest 1024 samples, with the exact sample it must pick for small, even, tied and wrapped
 * windows, and the numbers the two definitions it replaces gave for the same samples. */
#include "ev_stats.h"
#include "test_util.h"

#include <stdlib.h>

static void check_percentile(void)
{
    double v[1000];

    CHECK(ev_stats_percentile(v, 0, 99) == 0.0, "no samples: 0");
    v[0] = 7;
    CHECK(ev_stats_percentile(v, 1, 50) == 7 && ev_stats_percentile(v, 1, 99) == 7,
          "one sample is every percentile");
    /* 1..100 shuffled: p99 is the 99th smallest, p50 the 50th */
    for (int i = 0; i < 100; i++)
        v[i] = (double)((i * 37) % 100 + 1);
    CHECK(ev_stats_percentile(v, 100, 99) == 99, "p99 of 1..100 is 99");
    CHECK(ev_stats_percentile(v, 100, 50) == 50, "p50 of 1..100 is 50 (the lower middle)");
    CHECK(ev_stats_percentile(v, 100, 100) == 100 && ev_stats_percentile(v, 100, 1) == 1,
          "p100 is the largest, p1 the smallest");
    /* fewer than 100 samples: the p99 is the largest */
    for (int i = 0; i < 50; i++)
        v[i] = 50 - i;
    CHECK(ev_stats_percentile(v, 50, 99) == 50, "p99 of 50 samples is their maximum");
    /* 1..1000: rank ceil(990) = 990 exactly, no floating-point rounding one rank off */
    for (int i = 0; i < 1000; i++)
        v[i] = 1000 - i;
    CHECK(ev_stats_percentile(v, 1000, 99) == 990, "p99 of 1..1000 is 990");
    for (int i = 0; i < 300; i++)
        v[i] = i + 1;
    CHECK(ev_stats_percentile(v, 300, 99) == 297, "p99 of 1..300 is 297 (99 * 300 / 100)");
    /* ties */
    for (int i = 0; i < 10; i++)
        v[i] = i < 9 ? 1.0 : 5.0;
    CHECK(ev_stats_percentile(v, 10, 90) == 1.0 && ev_stats_percentile(v, 10, 99) == 5.0,
          "ties: p90 of nine 1s and one 5 is 1, p99 is 5");
}

static void check_window(void)
{
    static ev_stats_window w; /* 8 KiB: not on the stack of a test */
    ev_stats_summary s;

    memset(&w, 0, sizeof w);
    ev_stats_window_summarize(&w, &s);
    CHECK(s.n == 0 && s.mean == 0 && s.p99 == 0 && ev_stats_window_mean_all(&w) == 0,
          "an empty window summarises to zeros");
    for (int i = 1; i <= 10; i++)
        ev_stats_window_add(&w, i);
    ev_stats_window_summarize(&w, &s);
    CHECK(s.n == 10 && s.mean == 5.5 && s.p50 == 5 && s.p99 == 10,
          "1..10: mean 5.5, p50 5, p99 10 (got %g %g %g)", s.mean, s.p50, s.p99);
    /* 2000 samples: the window holds the latest 1024 (977..2000), the running mean all of them */
    memset(&w, 0, sizeof w);
    for (int i = 1; i <= 2000; i++)
        ev_stats_window_add(&w, i);
    ev_stats_window_summarize(&w, &s);
    CHECK(ev_stats_window_size(&w) == EV_STATS_WINDOW && s.n == EV_STATS_WINDOW,
          "the window keeps %d samples", EV_STATS_WINDOW);
    CHECK(s.p99 == 977 + 1014 - 1 && s.p50 == 977 + 512 - 1 && s.mean == (977 + 2000) / 2.0,
          "window of 977..2000: p99 %g (rank 1014), p50 %g (rank 512), mean %g", s.p99, s.p50,
          s.mean);
    CHECK(ev_stats_window_mean_all(&w) == 1000.5, "the running mean covers all 2000 samples");
    CHECK(ev_stats_window_percentile(&w, 99) == s.p99, "one percentile and the summary agree");
}

/* The two definitions this one replaces, on the same 1024 samples (1..1024 ms): the element's
 * nearest rank gave 1014, the daemon's linear interpolation 1013.77; both now report 1014. */
static void check_replaced_definitions(void)
{
    double v[1024];
    for (int i = 0; i < 1024; i++)
        v[i] = i + 1;
    double pos = 0.99 * (1024 - 1), interpolated = v[1012] + (pos - 1012) * (v[1013] - v[1012]);
    CHECK(ev_stats_percentile(v, 1024, 99) == 1014 && fabs(interpolated - 1013.77) < 1e-9,
          "1..1024: nearest rank %g, the old interpolation %.2f", ev_stats_percentile(v, 1024, 99),
          interpolated);
}

int main(void)
{
    check_percentile();
    check_window();
    check_replaced_definitions();
    return test_finish();
}
