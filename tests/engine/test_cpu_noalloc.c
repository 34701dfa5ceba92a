/* test_cpu_noalloc.c: ev_plan_run on the cpu backend allocates nothing. This binary interposes
 * malloc, calloc, realloc, free, posix_memalign, aligned_alloc and memalign with counting
 * wrappers around glibc's own entry points, then runs plans (batch 1 and 2, threads 1 and 2)
 * many times and requires zero calls while they run. It also checks that liveness planning
 * pays off: the cpu arena is smaller than the reference backend's one-buffer-per-node memory.
 * Skipped (77) under AddressSanitizer, which owns malloc itself, and off glibc.
 */
#include "cpu/cpu_internal.h"
#include "test_util.h"

#include <stdatomic.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define NOALLOC_SKIP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOALLOC_SKIP 1
#endif
#endif
#if !defined(__GLIBC__)
#define NOALLOC_SKIP 1
#endif

#ifndef NOALLOC_SKIP
#include <malloc.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int counting;
static atomic_long calls;

static inline void count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add(&calls, 1);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    count();
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}
void free(void *p)
{
    if (p)
        count();
    __libc_free(p);
}
void *memalign(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}
int posix_memalign(void **out, size_t align, size_t n)
{
    count();
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static void check_model(const char *dir)
{
    ev_error err = {0};
    ev_model *model = NULL;
    int rc = ev_model_load(dir, &model, &err);
    CHECK(rc == 0, "%s: load (%s)", dir, rc ? err.message : "ok");
    if (rc)
        return;
    int w, h, c;
    ev_model_input_shape(model, &w, &h, &c);
    for (int batch = 1; batch <= 2; batch++)
        for (int threads = 1; threads <= 2; threads++) {
            ev_plan_options opt = {.backend = EV_BACKEND_CPU, .batch = batch, .threads = threads};
            ev_plan *plan = NULL;
            rc = ev_plan_create(model, &opt, &plan, &err);
            CHECK(rc == 0, "%s: plan (%s)", dir, rc ? err.message : "ok");
            if (rc)
                continue;
            size_t n = (size_t)batch * c * h * w;
            float *input = __libc_malloc(n * sizeof *input);
            float *logits = __libc_malloc((size_t)batch * EV_MAX_CLASSES * sizeof *logits);
            for (size_t i = 0; i < n; i++)
                input[i] = (float)(i % 17) / 17.0f;
            rc = ev_plan_run(plan, input, logits, &err); /* first run outside the count */
            atomic_store(&calls, 0);
            atomic_store(&counting, 1);
            for (int i = 0; i < 300 && !rc; i++)
                rc = ev_plan_run(plan, input, logits, &err);
            atomic_store(&counting, 0);
            long seen = atomic_load(&calls);
            CHECK(rc == 0 && seen == 0,
                  "%s: 300 runs at batch %d, threads %d: %ld allocator calls (want 0)", dir, batch,
                  threads, seen);
            /* the same counters do see allocations (the wrappers are live) */
            atomic_store(&counting, 1);
            void *probe = malloc(16);
            free(probe);
            atomic_store(&counting, 0);
            CHECK(atomic_load(&calls) == 2, "%s: the counting allocator sees malloc/free", dir);
            ev_net *ref = NULL;
            /* the reference executor allocates one buffer per node on its first forward */
            if (ev_net_create(&ev_model_network(model)->cfg, batch, false, &ref, &err) == 0 &&
                ev_net_forward(ref, input, false, &err) == 0) {
                size_t arena = ev_cpu_plan_arena_bytes(plan);
                CHECK(arena < ref->activations.size,
                      "%s: batch %d: planned arena %zu bytes < %zu bytes of per-node buffers", dir,
                      batch, arena, ref->activations.size);
            }
            ev_net_free(ref);
            __libc_free(input);
            __libc_free(logits);
            ev_plan_free(plan);
        }
    ev_model_free(model);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "tests/fixtures";
    static const char *const names[] = {"darts_v2_nrnr_rgb", "paper128_nrnr_g1", "darts_v2_l8_rgb"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/golden/%s", root, names[i]);
        check_model(dir);
    }
    return test_finish();
}
#else
int main(void)
{
    printf("skip: the allocator cannot be interposed here (sanitizer or non-glibc)\n");
    return 77;
}
#endif
