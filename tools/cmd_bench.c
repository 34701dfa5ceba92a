/* cmd_bench.c: `echoview bench`: inference latency the paper's way (mean over a loop of frames
 * after warm-up) plus p50/p99, frames per second and peak memory, as JSON. */
#include "ev_stats.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static const char *usage =
    "usage: echoview bench --model DIR|model.yaml [--backend auto|cpu|reference|cuda]\n"
    "                      [--threads N] [--batch N] [--iterations 100] [--warmup 10]\n"
    "  Times ev_plan_run on a fixed pseudo-random input: --warmup runs, then --iterations timed\n"
    "  runs. Prints JSON: params, macs, backend, threads, batch, iterations,\n"
    "  latency_ms {mean, p50, p99, min} per run, fps (frames per second = batch / mean),\n"
    "  gmacs_per_s and peak_rss_kb.\n";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int cmd_bench(int argc, char **argv)
{
    const char *model_path = NULL;
    ev_plan_options opt = {.backend = EV_BACKEND_AUTO, .batch = 1, .threads = 1};
    int iterations = 100, warmup = 10;
    const tool_option options[] = {
        TOOL_STRING("--model", &model_path),
        TOOL_CUSTOM("--backend", tool_parse_backend, &opt.backend),
        TOOL_INT("--threads", &opt.threads, 1, 256),
        TOOL_INT("--batch", &opt.batch, 1, 4096),
        TOOL_INT("--iterations", &iterations, 1, 10000000),
        TOOL_INT("--warmup", &warmup, 0, 1000000),
    };
    const tool_parser parser = {.cmd = "bench",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .required = TOOL_REQUIRED("--model")};
    int status;
    ev_model *m = tool_parse_model_args(&parser, argc, argv, &status);
    if (!m)
        return status;
    ev_error err = {0};
    ev_plan *plan = NULL;
    int rc = TOOL_FAILED;
    float *input = NULL, *logits = NULL;
    double *times = NULL;
    if (ev_plan_create(m, &opt, &plan, &err)) {
        fprintf(stderr, "echoview bench: %s\n", err.message);
        goto out;
    }
    int w, h, c;
    ev_model_input_shape(m, &w, &h, &c);
    size_t n_in = (size_t)opt.batch * w * h * c;
    input = malloc(n_in * sizeof(float));
    logits = malloc((size_t)opt.batch * ev_model_num_classes(m) * sizeof(float));
    times = malloc((size_t)iterations * sizeof(double));
    if (!input || !logits || !times) {
        fprintf(stderr, "echoview bench: out of memory\n");
        goto out;
    }
    uint64_t rng = 42;
    for (size_t i = 0; i < n_in; i++)
        input[i] = ev_rng_uniform(&rng);
    for (long i = 0; i < warmup; i++)
        if (ev_plan_run(plan, input, logits, &err))
            goto run_failed;
    double sum = 0;
    for (long i = 0; i < iterations; i++) {
        double t0 = now_ms();
        if (ev_plan_run(plan, input, logits, &err))
            goto run_failed;
        times[i] = now_ms() - t0;
        sum += times[i];
    }
    double mean = sum / iterations;
    /* nearest rank, as the element and the daemon report them (ev_stats.h); sorts times */
    const double p50 = ev_stats_percentile(times, (size_t)iterations, 50);
    const double p99 = ev_stats_percentile(times, (size_t)iterations, 99);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_t *out = json_pack(
        "{s:s, s:I, s:I, s:s, s:i, s:i, s:{s:i, s:i, s:i}, s:i, s:{s:f, s:f, s:f, s:f}, s:f, s:f, "
        "s:I}",
        "model", ev_model_name(m), "params", (json_int_t)ev_model_num_params(m), "macs",
        (json_int_t)ev_model_num_macs(m), "backend", ev_backend_name(ev_plan_backend(plan)),
        "threads", opt.threads, "batch", opt.batch, "input", "width", w, "height", h, "channels", c,
        "iterations", (int)iterations, "latency_ms", "mean", mean, "p50", p50, "p99", p99, "min",
        times[0], "fps", opt.batch * 1000.0 / mean, "gmacs_per_s",
        (double)ev_model_num_macs(m) * opt.batch / (mean * 1e6), "peak_rss_kb",
        (json_int_t)ru.ru_maxrss);
    tool_print_json(out, true);
    rc = TOOL_OK;
    goto out;
run_failed:
    fprintf(stderr, "echoview bench: %s\n", err.message);
out:
    free(times);
    free(input);
    free(logits);
    ev_plan_free(plan);
    ev_model_free(m);
    return rc;
}
