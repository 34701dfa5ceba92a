/* pool.c: a small fixed thread pool for the training executor. Workers sleep on a condition
 * variable between jobs (no spinning: the training machines are shared, and a spinning OpenMP
 * runtime made a 2-thread run 4x slower than 1 thread under load). The caller works too. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

struct search_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t lock;
    pthread_cond_t start, finished;
    unsigned long generation;
    int pending; /* workers still running the current job */
    bool stop;
    void (*fn)(void *ctx, int task);
    void *ctx;
    int tasks;
};

typedef struct worker_arg {
    search_pool *pool;
    int index;
} worker_arg;

static void run_share(search_pool *p, int index)
{
    for (int t = index; t < p->tasks; t += p->threads)
        p->fn(p->ctx, t);
}

static void *worker_main(void *arg)
{
    worker_arg *w = arg;
    search_pool *p = w->pool;
    int index = w->index;
    free(w);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->start, &p->lock);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        run_share(p, index);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0)
            pthread_cond_signal(&p->finished);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

search_pool *search_pool_create(int threads)
{
    search_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->finished, NULL);
    p->tids = calloc((size_t)p->threads, sizeof *p->tids);
    if (!p->tids) {
        search_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < p->threads; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (!w || pthread_create(&p->tids[i], NULL, worker_main,
                                 w ? (w->pool = p, w->index = i, w) : NULL)) {
            free(w);
            p->threads = i; /* run with the workers that started */
            break;
        }
    }
    return p;
}

void search_pool_run(search_pool *p, int tasks, void (*fn)(void *ctx, int task), void *ctx)
{
    if (p->threads == 1 || tasks == 1) {
        for (int t = 0; t < tasks; t++)
            fn(ctx, t);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->tasks = tasks;
    p->pending = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    run_share(p, 0);
    pthread_mutex_lock(&p->lock);
    while (p->pending > 0)
        pthread_cond_wait(&p->finished, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

int search_pool_threads(const search_pool *p) { return p->threads; }

void search_pool_free(search_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->threads; i++)
        if (p->tids && p->tids[i])
            pthread_join(p->tids[i], NULL);
    free(p->tids);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->finished);
    free(p);
}
