/* search_util.h: the small helpers the training loop (train.c) and the architecture search
 * (darts.c) share: seed mixing for deterministic per-epoch/per-step streams, a monotonic
 * clock for progress and throughput, and the terminal progress line. */
#ifndef SEARCH_UTIL_H
#define SEARCH_UTIL_H

#include "ev_base.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* A well-mixed 64-bit value from two inputs (splitmix64 of a combined state): the streams of
 * different epochs, steps and frames never overlap. */
static inline uint64_t search_seed_mix(uint64_t a, uint64_t b)
{
    uint64_t s = a * 0x9e3779b97f4a7c15ull + b + 0x632be59bd9b4e019ull;
    return ev_rng_next(&s);
}

static inline double search_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One progress line on stderr, rewritten in place: "<what>epoch E/N [bar] S/T loss acc rate
 * unit ETA h:mm:ss". rate is printed with decimals digits. */
static inline void search_progress(const char *what, int epoch, int epochs, int step, int steps,
                                   double loss, double acc, double rate, int decimals,
                                   const char *unit, double eta)
{
    char bar[21];
    int filled = steps ? step * 20 / steps : 0;
    for (int i = 0; i < 20; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[20] = 0;
    int e = (int)(eta + 0.5);
    fprintf(stderr, "\r%sepoch %d/%d [%s] %d/%d loss %.4f acc %5.1f%% %.*f %s ETA %d:%02d:%02d ",
            what, epoch, epochs, bar, step, steps, loss, 100.0 * acc, decimals, rate, unit,
            e / 3600, e / 60 % 60, e % 60);
    fflush(stderr);
}

#endif
