/* ev_pool.h: the one thread pool (cpu/cpu_pool.c), for the cpu backend's plans, search/'s
 * training executor and dataset loading. A job is cut into chunks that the caller and the
 * workers claim from one atomic ticket, so the caller never waits for a sleeping worker;
 * idle workers sleep on a condition variable (after a short spin, if asked), so an idle pool
 * costs no CPU on a shared machine. Which thread runs a chunk is not fixed: a job that must
 * give the same bytes on any thread count keeps its state per chunk, not per thread. */
#ifndef EV_POOL_H
#define EV_POOL_H

typedef struct ev_pool ev_pool;
/* One chunk of a job: chunk < chunks; thread in 0..threads-1 (0 is the caller) for per-thread
 * scratch. */
typedef void (*ev_pool_job)(void *arg, int chunk, int chunks, int thread);

/* How idle threads wait for the next job: EV_POOL_SPIN spins a few microseconds first (an
 * inference plan's steps follow each other closely), EV_POOL_SLEEP sleeps at once (training's
 * steps are long: on a loaded 2-core machine spinning cost about a quarter more CPU time per
 * `echoview train --benchmark` step). */
typedef enum ev_pool_wait { EV_POOL_SPIN, EV_POOL_SLEEP } ev_pool_wait;

/* threads - 1 workers (the caller is the last thread); EV_OK or EV_ERR_NOMEM. */
int ev_pool_create(int threads, ev_pool_wait wait, ev_pool **out);
#define EV_POOL_MAX_CHUNKS 1047551 /* 2^20 - 1 - 1024: the ticket's chunk fields */

/* Runs job(arg, i, chunks, thread) once for every i < chunks (chunks <= EV_POOL_MAX_CHUNKS:
 * cut larger work into fewer, bigger chunks) and returns when all are done. */
void ev_pool_run(ev_pool *pool, ev_pool_job job, void *arg, int chunks);
void ev_pool_free(ev_pool *pool);

#endif
