/* test_util.h: tiny assertion helpers shared by the C tests. Each CHECK prints one line; the
 * program's exit status is 0 when every check passed, 1 otherwise (77 = skipped). A test that
 * checks in long loops or on worker threads defines TEST_QUIET before including this: then
 * only failures print, and the counts are atomic. */
#ifndef EV_TEST_UTIL_H
#define EV_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int test_failures = 0, test_checks = 0;

#ifdef TEST_QUIET
#define TEST_COUNT_(n) __atomic_fetch_add(&(n), 1, __ATOMIC_RELAXED)
#define TEST_PASS_(...) ((void)0)
#else
#define TEST_COUNT_(n) ((n)++)
#define TEST_PASS_(...) (printf("ok   "), printf(__VA_ARGS__), printf("\n"))
#endif

#define CHECK(cond, ...)                                \
    do {                                                \
        TEST_COUNT_(test_checks);                       \
        if (cond) {                                     \
            TEST_PASS_(__VA_ARGS__);                    \
        } else {                                        \
            TEST_COUNT_(test_failures);                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

/* error message must contain needle */
#define CHECK_ERR(rc, err, needle, ...)                                                   \
    do {                                                                                  \
        int rc_ = (rc);                                                                   \
        CHECK(rc_ != 0 && strstr((err).message, (needle)) != NULL,                        \
              "%s -> rc %d, error \"%s\" (want \"%s\")", __VA_ARGS__, rc_, (err).message, \
              (needle));                                                                  \
    } while (0)

static inline int test_finish(void)
{
    printf("%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}

/* max |a-b| / max |b| */
static inline double rel_error(const float *a, const float *b, size_t n)
{
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > diff || d != d)
            diff = d;
        if (fabs((double)b[i]) > scale)
            scale = fabs((double)b[i]);
    }
    return scale > 0 ? diff / scale : diff;
}

#endif
