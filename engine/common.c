/* common.c: errors, overflow-checked sizes, arenas, aligned memory and the deterministic RNG
 * (ev_base.h), and the public softmax. */
#include "ev_base.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ev_fail(ev_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ev_fail_prefix(ev_error *err, const char *fmt, ...)
{
    if (!err)
        return EV_ERR_INVALID;
    char prefix[EV_ERROR_MESSAGE_SIZE], old[EV_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(err->message, prefix, n);
    size_t room = sizeof err->message - 1 - n, m = strnlen(old, room);
    memcpy(err->message + n, old, m);
    err->message[n + m] = 0;
    return err->code ? err->code : EV_ERR_INVALID;
}

bool ev_mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

bool ev_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return false;
    *out = a + b;
    return true;
}

void *ev_aligned_alloc(size_t bytes)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes)
        return NULL;
    if (rounded == 0)
        rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void ev_aligned_free(void *p) { free(p); }

int ev_arena_init(ev_arena *arena, size_t size)
{
    arena->used = 0;
    arena->size = size;
    arena->base = size ? ev_aligned_alloc(size) : NULL;
    return (size && !arena->base) ? EV_ERR_NOMEM : EV_OK;
}

void *ev_arena_alloc(ev_arena *arena, size_t bytes)
{
    size_t start = (arena->used + 63) & ~(size_t)63;
    size_t end;
    if (start < arena->used || !ev_add_size(start, bytes, &end) || end > arena->size)
        return NULL;
    arena->used = end;
    return arena->base + start;
}

void ev_arena_free(ev_arena *arena)
{
    ev_aligned_free(arena->base);
    arena->base = NULL;
    arena->size = arena->used = 0;
}

uint64_t ev_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float ev_rng_uniform(uint64_t *state)
{
    return (float)(ev_rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

float ev_rng_normal(uint64_t *state)
{
    /* Box-Muller; u1 kept away from 0 */
    float u1 = ((float)(ev_rng_next(state) >> 40) + 1.0f) * (1.0f / 16777217.0f);
    float u2 = ev_rng_uniform(state);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}

void ev_softmax(const float *logits, float *probabilities, int n)
{
    if (n <= 0)
        return;
    float max = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        probabilities[i] = expf(logits[i] - max);
        sum += probabilities[i];
    }
    for (int i = 0; i < n; i++)
        probabilities[i] = (float)(probabilities[i] / sum);
}
