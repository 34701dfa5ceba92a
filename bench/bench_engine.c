/* bench_engine.c: a small driver for bench/run_bench.sh until `echoview bench` exists.
 *
 *   bench_engine make DIR GENOTYPE_FILE|ARCH INIT_CHANNELS SIZE IN_CHANNELS [SEED]
 *       writes a random-weight bundle (layout [normal, reduce, normal, reduce], random BN
 *       statistics) to DIR; ARCH (resnet18, densenet201) builds that baseline instead
 *   bench_engine run DIR BACKEND THREADS BATCH ITERATIONS [INPUT.f32 LOGITS.f32]
 *       times ev_plan_run and prints JSON: params, macs, backend, kernels, threads, batch,
 *       latency_ms {mean, p50, p99, min}, fps, gflops, arena_bytes, peak_rss_kb; with INPUT.f32
 *       (raw float32 NCHW) it also writes the logits of that input to LOGITS.f32
 *   bench_engine streams DIR STREAMS FRAMES REPEATS
 *       what batching frames of several streams into one plan run would gain on the cpu
 *       backend (1 thread): STREAMS batch-1 plans of one model run round-robin, one frame of
 *       each stream in turn (what STREAMS echoviewclassify elements sharing a
 *       model-instance-id do today), against one plan of batch STREAMS run on all of them at
 *       once; FRAMES frames per stream, the two alternated REPEATS times. Prints JSON lines of
 *       frames per CPU-second (thread CPU time of the timed runs only: no load, no plan
 *       creation, and a loaded machine's waiting not counted)
 *   bench_engine onnx DIR OUT.onnx     (when built with the ONNX exporter)
 */
#include "cpu/cpu_internal.h"
#include "ev_bundle.h"
#include "ev_stats.h"
#ifdef EV_HAVE_ONNX_EXPORT
#include "ev_onnx.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int make(int argc, char **argv)
{
    if (argc < 7)
        return 2;
    ev_error err = {0};
    ev_net_config cfg = {0};
    /* a baseline by name (resnet18, densenet201, ...): INIT_CHANNELS is ignored */
    if (!ev_arch_from_name(argv[3], &cfg.arch) || cfg.arch == EV_ARCH_DARTS) {
        cfg.arch = EV_ARCH_DARTS;
        if (ev_genotype_load_file(argv[3], &cfg.genotype, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    cfg.input_height = cfg.input_width = atoi(argv[5]);
    cfg.in_channels = atoi(argv[6]);
    cfg.num_classes = 14;
    if (cfg.arch == EV_ARCH_DARTS) {
        cfg.init_channels = atoi(argv[4]);
        cfg.num_cells = 4;
        cfg.reduction[1] = cfg.reduction[3] = true;
    }
    uint64_t seed = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
    ev_net *net = NULL;
    if (ev_net_create(&cfg, 1, false, &net, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ev_net_init_weights(net, seed);
    uint64_t rng = seed + 99;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        for (size_t j = 0; j < p->numel; j++) {
            float u = ev_rng_uniform(&rng);
            if (p->kind == EV_PARAM_BN_WEIGHT || p->kind == EV_PARAM_RUNNING_VAR)
                p->data[j] = 0.5f + u;
            else if (p->kind == EV_PARAM_BN_BIAS || p->kind == EV_PARAM_RUNNING_MEAN)
                p->data[j] = 0.4f * (u - 0.5f);
        }
    }
    const float mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    int rc = ev_model_save_bundle(argv[2], "bench", net, NULL, 1.0f, mean, std, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.message);
    ev_net_free(net);
    return rc ? 1 : 0;
}

static int run(int argc, char **argv)
{
    if (argc < 7)
        return 2;
    ev_error err = {0};
    ev_model *model = NULL;
    if (ev_model_load(argv[2], &model, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ev_plan_options opt = {.threads = atoi(argv[4]), .batch = atoi(argv[5])};
    if (ev_backend_parse(argv[3], &opt.backend)) {
        fprintf(stderr, "unknown backend %s\n", argv[3]);
        return 1;
    }
    int iters = atoi(argv[6]);
    if (iters < 1)
        iters = 1;
    ev_plan *plan = NULL;
    if (ev_plan_create(model, &opt, &plan, &err)) {
        fprintf(stderr, "%s\n", err.message);
        ev_model_free(model);
        return 1;
    }
    int w, h, c;
    ev_model_input_shape(model, &w, &h, &c);
    const int batch = ev_plan_batch(plan), k = ev_model_num_classes(model);
    const size_t n_in = (size_t)batch * c * h * w;
    float *input = malloc(n_in * sizeof *input);
    float *logits = malloc((size_t)batch * k * sizeof *logits);
    double *times = malloc((size_t)iters * sizeof *times);
    uint64_t rng = 7;
    for (size_t i = 0; i < n_in; i++)
        input[i] = ev_rng_uniform(&rng);
    if (argc > 8) {
        FILE *f = fopen(argv[7], "rb");
        size_t got = f ? fread(input, sizeof *input, n_in, f) : 0;
        if (f)
            fclose(f);
        if (got != n_in) {
            fprintf(stderr, "%s: need %zu floats\n", argv[7], n_in);
            return 1;
        }
        ev_plan_run(plan, input, logits, &err);
        f = fopen(argv[8], "wb");
        if (!f || fwrite(logits, sizeof *logits, (size_t)batch * k, f) != (size_t)batch * k) {
            fprintf(stderr, "%s: cannot write\n", argv[8]);
            return 1;
        }
        fclose(f);
    }
    /* warm up for ~0.3 s (caches, frequency), then time */
    double t0 = now_ms();
    while (now_ms() - t0 < 300.0)
        ev_plan_run(plan, input, logits, &err);
    double sum = 0;
    for (int i = 0; i < iters; i++) {
        double a = now_ms();
        ev_plan_run(plan, input, logits, &err);
        times[i] = now_ms() - a;
        sum += times[i];
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* nearest rank (ev_stats.h), as echoview bench, the element and the daemon; sorts times */
    const double mean = sum / iters, p50 = ev_stats_percentile(times, (size_t)iters, 50);
    const double p99 = ev_stats_percentile(times, (size_t)iters, 99);
    const int64_t macs = ev_model_num_macs(model);
    printf("{\"model\": \"%s\", \"params\": %lld, \"macs\": %lld, \"backend\": \"%s\", "
           "\"kernels\": \"%s\", \"threads\": %d, \"batch\": %d, \"input\": %d, "
           "\"latency_ms\": {\"mean\": %.4f, \"p50\": %.4f, \"p99\": %.4f, \"min\": %.4f}, "
           "\"fps\": %.1f, \"gflops\": %.2f, \"arena_bytes\": %zu, \"peak_rss_kb\": %ld}\n",
           argv[2], (long long)ev_model_num_params(model), (long long)macs,
           ev_backend_name(ev_plan_backend(plan)),
           ev_plan_backend(plan) == EV_BACKEND_CPU ? ev_cpu_plan_kernels(plan) : "-",
           opt.threads ? opt.threads : 1, batch, w, mean, p50, p99, times[0], 1000.0 * batch / p50,
           2.0 * (double)macs * batch / (p50 * 1e6),
           ev_plan_backend(plan) == EV_BACKEND_CPU ? ev_cpu_plan_arena_bytes(plan) : 0,
           ru.ru_maxrss);
    free(times);
    free(input);
    free(logits);
    ev_plan_free(plan);
    ev_model_free(model);
    return 0;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int streams(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    const int n = atoi(argv[3]), frames = atoi(argv[4]), repeats = atoi(argv[5]);
    if (n < 1 || n > 256 || frames < 1 || repeats < 1)
        return 2;
    ev_error err = {0};
    ev_model *model = NULL;
    if (ev_model_load(argv[2], &model, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int w, h, c, rc = 1;
    ev_model_input_shape(model, &w, &h, &c);
    const size_t per_frame = (size_t)w * h * c;
    const int k = ev_model_num_classes(model);
    ev_plan **single = calloc((size_t)n, sizeof *single), *batched = NULL;
    float *input = malloc((size_t)n * per_frame * sizeof *input);
    float *logits = malloc((size_t)n * k * sizeof *logits);
    uint64_t rng = 7;
    ev_plan_options one = {.backend = EV_BACKEND_CPU, .threads = 1, .batch = 1};
    ev_plan_options all = {.backend = EV_BACKEND_CPU, .threads = 1, .batch = n};

    if (!single || !input || !logits)
        goto out;
    for (size_t i = 0; i < (size_t)n * per_frame; i++)
        input[i] = ev_rng_uniform(&rng); /* every stream its own frame */
    for (int s = 0; s < n; s++)
        if (ev_plan_create(model, &one, &single[s], &err))
            goto fail;
    if (ev_plan_create(model, &all, &batched, &err))
        goto fail;
    for (int s = 0; s < n; s++) /* warm-up: every plan's arena touched once */
        ev_plan_run(single[s], input + (size_t)s * per_frame, logits, &err);
    ev_plan_run(batched, input, logits, &err);
    for (int r = 0; r < repeats; r++) {
        double t0 = thread_cpu_s();
        for (int f = 0; f < frames; f++)
            for (int s = 0; s < n; s++)
                if (ev_plan_run(single[s], input + (size_t)s * per_frame, logits + (size_t)s * k,
                                &err))
                    goto fail;
        const double unbatched = thread_cpu_s() - t0;
        t0 = thread_cpu_s();
        for (int f = 0; f < frames; f++)
            if (ev_plan_run(batched, input, logits, &err))
                goto fail;
        const double batched_s = thread_cpu_s() - t0;
        printf("{\"model\": \"%s\", \"streams\": %d, \"repeat\": %d, \"frames\": %d, "
               "\"unbatched_frames_per_cpu_s\": %.1f, \"batched_frames_per_cpu_s\": %.1f, "
               "\"arena_bytes_unbatched_each\": %zu, \"arena_bytes_batched\": %zu}\n",
               argv[2], n, r, frames * n, frames * n / unbatched, frames * n / batched_s,
               ev_cpu_plan_arena_bytes(single[0]), ev_cpu_plan_arena_bytes(batched));
        fflush(stdout);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "%s\n", err.message);
out:
    for (int s = 0; single && s < n; s++)
        ev_plan_free(single[s]);
    free(single);
    ev_plan_free(batched);
    free(input);
    free(logits);
    ev_model_free(model);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 2;
    if (argc > 1 && strcmp(argv[1], "make") == 0)
        rc = make(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "run") == 0)
        rc = run(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "streams") == 0)
        rc = streams(argc, argv);
#ifdef EV_HAVE_ONNX_EXPORT
    else if (argc > 3 && strcmp(argv[1], "onnx") == 0) {
        ev_error err = {0};
        ev_model *model = NULL;
        rc = ev_model_load(argv[2], &model, &err);
        if (!rc)
            rc = ev_model_export_onnx(model, argv[3], &err);
        if (rc)
            fprintf(stderr, "%s\n", err.message);
        ev_model_free(model);
        rc = rc ? 1 : 0;
    }
#endif
    if (rc == 2)
        fprintf(stderr, "usage: see the comment at the top of bench/bench_engine.c\n");
    return rc;
}
