/* ev_shard.c: rendezvous hashing of stream ids over shards, and shard specs (ev_shard.h). */
#include "ev_shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MurmurHash3's 64-bit finaliser: every input bit reaches every output bit. */
static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= UINT64_C(0xff51afd7ed558ccd);
    k ^= k >> 33;
    k *= UINT64_C(0xc4ceb9fe1a85ec53);
    k ^= k >> 33;
    return k;
}

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        h ^= *c;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

uint64_t ev_shard_weight(const char *stream_id, unsigned index)
{
    return fmix64(fnv1a64(stream_id) ^ fmix64((uint64_t)index + 1));
}

unsigned ev_shard_owner(const char *stream_id, unsigned n)
{
    unsigned best = 0;
    uint64_t best_w = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t w = ev_shard_weight(stream_id, i);
        if (i == 0 || w > best_w) {
            best = i;
            best_w = w;
        }
    }
    return best;
}

/* A decimal number of at most 9 digits from *s, advancing it; -1 when there is none. */
static long take_number(const char **s)
{
    long v = 0;
    int digits = 0;
    while (**s >= '0' && **s <= '9' && digits < 10) {
        v = v * 10 + (**s - '0');
        (*s)++;
        digits++;
    }
    return digits == 0 || digits > 9 ? -1 : v;
}

int ev_shard_parse(const char *spec, unsigned *index, unsigned *count, char *err, size_t err_len)
{
    const char *s = spec;
    long i, n;

    if (!spec || !*spec) {
        snprintf(err, err_len, "empty shard spec (expected I/N, 0 <= I < N)");
        return -1;
    }
    i = take_number(&s);
    if (i < 0 || *s != '/') {
        snprintf(err, err_len, "shard spec '%s' is not I/N (two decimal numbers, 0 <= I < N)",
                 spec);
        return -1;
    }
    s++;
    n = take_number(&s);
    if (n < 0 || *s != '\0') {
        snprintf(err, err_len, "shard spec '%s' is not I/N (two decimal numbers, 0 <= I < N)",
                 spec);
        return -1;
    }
    if (n < 1 || n > EV_SHARD_MAX) {
        snprintf(err, err_len, "shard spec '%s': N must be 1..%d", spec, EV_SHARD_MAX);
        return -1;
    }
    if (i >= n) {
        snprintf(err, err_len, "shard spec '%s': index %ld is not below the shard count %ld "
                 "(indices are 0..%ld)", spec, i, n, n - 1);
        return -1;
    }
    *index = (unsigned)i;
    *count = (unsigned)n;
    return 0;
}

int ev_shard_ordinal(const char *hostname, unsigned *ordinal, char *err, size_t err_len)
{
    const char *dash = hostname ? strrchr(hostname, '-') : NULL;
    const char *s;
    long v;

    if (!dash) {
        snprintf(err, err_len, "host name '%s' has no StatefulSet ordinal (NAME-<digits>)",
                 hostname ? hostname : "");
        return -1;
    }
    s = dash + 1;
    v = take_number(&s);
    if (v < 0 || *s != '\0') {
        snprintf(err, err_len, "host name '%s' has no StatefulSet ordinal (NAME-<digits>)",
                 hostname);
        return -1;
    }
    *ordinal = (unsigned)v;
    return 0;
}
