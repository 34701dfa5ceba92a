/* pool.h: the search module's thread pool (pool.c). */
#ifndef SEARCH_POOL_H
#define SEARCH_POOL_H

#include <stdbool.h>

typedef struct search_pool search_pool;
/* threads - 1 workers; the caller of search_pool_run is the last thread. NULL on failure. */
search_pool *search_pool_create(int threads);
/* Runs fn(ctx, task) for task in [0, tasks): task t on thread t % threads. Returns when done. */
void search_pool_run(search_pool *p, int tasks, void (*fn)(void *ctx, int task), void *ctx);
int search_pool_threads(const search_pool *p);
void search_pool_free(search_pool *p);

#endif
