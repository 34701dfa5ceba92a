/* search_util.h: the small helpers the training loop (train.c) and the architecture search
 * (darts.c) share: seed mixing for deterministic per-epoch/per-step streams, and a monotonic
 * clock for progress and throughput. */
#ifndef SEARCH_UTIL_H
#define SEARCH_UTIL_H

#include "ev_internal.h"

#include <stdint.h>
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

#endif
