/* ev_base.h: the engine's basic helpers for every module that builds on it (media/, search/,
 * tools/): error messages into ev_error, overflow-checked sizes, 64-byte aligned memory, the
 * bump arena that planned memory comes from, and the deterministic random numbers. Not
 * installed: applications use echoview.h. */
#ifndef EV_BASE_H
#define EV_BASE_H

#include "echoview.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors --------------------------------------------------------------------------------- */

#if defined(__GNUC__)
#define EV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EV_PRINTF(a, b)
#endif

/* Sets err (if non-NULL) and returns code, so callers can `return ev_fail(err, ...)`. */
int ev_fail(ev_error *err, int code, const char *fmt, ...) EV_PRINTF(3, 4);
/* Prefixes an existing message with context ("cells.1: " + message). */
int ev_fail_prefix(ev_error *err, const char *fmt, ...) EV_PRINTF(2, 3);

/* Overflow-checked size arithmetic: return false on overflow. */
bool ev_mul_size(size_t a, size_t b, size_t *out);
bool ev_add_size(size_t a, size_t b, size_t *out);

/* ---- memory: aligned blocks and the bump arena for planned memory ----------------------------- */

void *ev_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; free with ev_aligned_free */
void ev_aligned_free(void *p);

typedef struct ev_arena {
    unsigned char *base;
    size_t size, used;
} ev_arena;

int ev_arena_init(ev_arena *arena, size_t size);
/* 64-byte aligned, zeroed; NULL when the arena is exhausted. */
void *ev_arena_alloc(ev_arena *arena, size_t bytes);
void ev_arena_free(ev_arena *arena);

/* ---- random numbers: deterministic per seed ------------------------------------------------- */

uint64_t ev_rng_next(uint64_t *state); /* splitmix64 */
float ev_rng_uniform(uint64_t *state); /* [0, 1) */
float ev_rng_normal(uint64_t *state);  /* N(0, 1) */

#endif
