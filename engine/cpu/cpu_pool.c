/* cpu_pool.c: the engine's one thread pool (ev_pool.h): the cpu backend's plans, and search/'s
 * training executor and dataset loading, run on it. A job is split into chunks that every thread,
 * the caller included, claims from one atomic ticket, so the caller never waits for a worker to
 * wake up: if the other core is busy the caller simply runs the chunks itself and waits only for
 * chunks already claimed. Idle workers spin a few microseconds (steps of a frame follow each
 * other closely) and then sleep on a condition variable, so an idle plan costs no CPU. */
#include "ev_base.h"
#include "ev_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define POOL_SPIN 4000 /* EV_POOL_SPIN: pause iterations before sleeping, tens of microseconds */

/* ticket = generation (24 bits) | chunk count (20 bits) | next chunk (20 bits): a worker that
 * wakes late reads the count and its chunk from one atomic, never a stale count; the generation
 * bits keep tickets of consecutive jobs distinct */
#define IDX_BITS 20
#define IDX_MASK ((1ull << IDX_BITS) - 1)
_Static_assert(EV_POOL_MAX_CHUNKS == (int)IDX_MASK - 1024, "ev_pool.h's chunk limit");

typedef struct worker_arg {
    struct ev_pool *pool;
    int index;
} worker_arg;

struct ev_pool {
    int threads;
    int spin; /* pause iterations before sleeping (0: sleep at once) */
    pthread_t *tids;
    worker_arg *args; /* owned by the pool: a worker frees nothing, even when it starts late */
    int started;
    pthread_mutex_t mutex;
    pthread_cond_t wake, done;
    atomic_uint generation; /* bumped per job; sleeping workers wait for a change */
    atomic_ullong ticket;
    atomic_int finished; /* chunks of the current job completed */
    atomic_int stop;
    ev_pool_job job;
    void *arg;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* claims and runs chunks of the current job until none are left. A chunk claimed is always
 * run, even by a worker that woke for an earlier job: the job cannot finish (and its job/arg
 * cannot change) while one of its chunks is outstanding. */
static void run_chunks(ev_pool *pool, int thread)
{
    for (;;) {
        unsigned long long t = atomic_fetch_add(&pool->ticket, 1);
        int count = (int)((t >> IDX_BITS) & IDX_MASK), idx = (int)(t & IDX_MASK);
        if (idx >= count)
            return;
        pool->job(pool->arg, idx, count, thread);
        if (atomic_fetch_add(&pool->finished, 1) + 1 == count) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    ev_pool *pool = wa->pool;
    unsigned seen = 0;
    for (;;) {
        for (int i = 0;
             i < pool->spin && atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop);
             i++)
            cpu_relax();
        if (atomic_load(&pool->generation) == seen) {
            pthread_mutex_lock(&pool->mutex);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->mutex);
            pthread_mutex_unlock(&pool->mutex);
        }
        if (atomic_load(&pool->stop))
            break;
        seen = atomic_load(&pool->generation);
        run_chunks(pool, wa->index);
    }
    return NULL;
}

int ev_pool_create(int threads, ev_pool_wait wait, ev_pool **out)
{
    *out = NULL;
    ev_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return EV_ERR_NOMEM;
    pool->threads = threads;
    pool->spin = wait == EV_POOL_SPIN ? POOL_SPIN : 0;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    if (threads > 1 && (!(pool->tids = calloc((size_t)threads, sizeof *pool->tids)) ||
                        !(pool->args = calloc((size_t)threads, sizeof *pool->args)))) {
        ev_pool_free(pool);
        return EV_ERR_NOMEM;
    }
    for (int t = 1; t < threads; t++) {
        worker_arg *wa = &pool->args[t];
        wa->pool = pool;
        wa->index = t;
        if (pthread_create(&pool->tids[t], NULL, worker_main, wa)) {
            ev_pool_free(pool);
            return EV_ERR_NOMEM;
        }
        pool->started = t;
    }
    *out = pool;
    return EV_OK;
}

void ev_pool_run(ev_pool *pool, ev_pool_job job, void *arg, int chunks)
{
    if (chunks > EV_POOL_MAX_CHUNKS)
        chunks = EV_POOL_MAX_CHUNKS;
    if (pool->threads <= 1 || chunks <= 1) {
        for (int i = 0; i < chunks; i++)
            job(arg, i, chunks, 0);
        return;
    }
    pool->job = job;
    pool->arg = arg;
    atomic_store(&pool->finished, 0);
    unsigned gen = atomic_load(&pool->generation) + 1;
    atomic_store(&pool->ticket, ((unsigned long long)(gen & 0xffffffu) << (2 * IDX_BITS)) |
                                    ((unsigned long long)chunks << IDX_BITS));
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->generation, gen);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    run_chunks(pool, 0);
    for (int i = 0; i < pool->spin && atomic_load(&pool->finished) < chunks; i++)
        cpu_relax();
    if (atomic_load(&pool->finished) < chunks) {
        pthread_mutex_lock(&pool->mutex);
        while (atomic_load(&pool->finished) < chunks)
            pthread_cond_wait(&pool->done, &pool->mutex);
        pthread_mutex_unlock(&pool->mutex);
    }
}

void ev_pool_free(ev_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int t = 1; t <= pool->started; t++)
        pthread_join(pool->tids[t], NULL);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    free(pool->tids);
    free(pool->args);
    free(pool);
}
