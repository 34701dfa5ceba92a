/* cuda_bench.c: speed of the cuda backend on the echo networks.
 *
 * For DARTS_V2 and the echo paper's 128 px cell, layout [normal, reduce, normal, reduce], init
 * channels 16, 1 input channel, 14 classes, random weights (timing does not depend on them), at
 * each input size and precision:
 *   - batch-1 latency of ev_plan_run (host input to host logits), median and p99 over --runs runs
 *     (default 2000), with CUDA graph replay and with kernel-by-kernel launches;
 *   - throughput (frames/s) at batch 64 and 256 (graph replay), and at batch 256 with the
 *     backend's own kernels only (cuDNN off), to show what cuDNN buys.
 * Prints a table and, with --csv FILE, the same rows as CSV.
 *
 *   cuda_bench [--runs N] [--sizes 32,64,96,128] [--csv FILE]
 */
#include "ev_bundle.h"
#include "ev_cuda.h"
#include "ev_private.h" /* ev_cuda_device_count */
#include "ev_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const genotypes[][2] = {
    {"darts_v2",
     "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
     "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
     "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
     "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
     "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"},
    {"paper128",
     "Genotype(normal=[('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('dil_conv_5x5', 1), "
     "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 2), ('max_pool_3x3', 1), "
     "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 1), "
     "('dil_conv_5x5', 0), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('dil_conv_5x5', 2), "
     "('dil_conv_5x5', 3), ('dil_conv_5x5', 4), ('dil_conv_5x5', 3)], reduce_concat=[2, 3, 4, 5])"},
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static ev_model *make_model(const char *genotype, int size, ev_error *err)
{
    ev_net_config cfg = {0};
    if (ev_genotype_parse(genotype, &cfg.genotype, err))
        return NULL;
    cfg.init_channels = 16;
    cfg.num_cells = 4;
    cfg.reduction[1] = cfg.reduction[3] = true;
    cfg.in_channels = 1;
    cfg.num_classes = 14;
    cfg.input_width = cfg.input_height = size;
    ev_net *net = NULL;
    ev_model *m = NULL;
    if (ev_net_create(&cfg, 1, false, &net, err))
        return NULL;
    ev_net_init_weights(net, 7);
    return ev_model_from_net(net, NULL, &m, err) ? NULL : m;
}

static ev_plan *make_plan(const ev_model *m, int batch, int fp16, ev_error *err)
{
    ev_plan_options opt = {.backend = EV_BACKEND_CUDA, .batch = batch, .fp16 = fp16};
    ev_plan *plan = NULL;
    if (ev_plan_create(m, &opt, &plan, err))
        return NULL;
    return plan;
}

/* batch-1 latency: median and p99 in ms */
static int latency(ev_plan *plan, const float *in, float *out, int runs, double *median,
                   double *p99)
{
    ev_error err;
    double *t = malloc((size_t)runs * sizeof *t);
    if (!t)
        return -1;
    for (int i = 0; i < 50; i++)
        if (ev_plan_run(plan, in, out, &err)) {
            fprintf(stderr, "run: %s\n", err.message);
            free(t);
            return -1;
        }
    for (int i = 0; i < runs; i++) {
        double t0 = now_ms();
        ev_plan_run(plan, in, out, &err);
        t[i] = now_ms() - t0;
    }
    /* nearest rank (ev_stats.h), as echoview bench, the element and the daemon */
    *median = ev_stats_percentile(t, (size_t)runs, 50);
    *p99 = ev_stats_percentile(t, (size_t)runs, 99);
    free(t);
    return 0;
}

/* frames per second over at least ~1 s of runs */
static double throughput(ev_plan *plan, int batch, const float *in, float *out)
{
    ev_error err;
    for (int i = 0; i < 5; i++)
        if (ev_plan_run(plan, in, out, &err)) {
            fprintf(stderr, "run: %s\n", err.message);
            return 0;
        }
    int runs = 0;
    double t0 = now_ms(), t;
    do {
        ev_plan_run(plan, in, out, &err);
        runs++;
        t = now_ms() - t0;
    } while (t < 1000.0 && runs < 10000);
    return (double)runs * batch / (t * 1e-3);
}

int main(int argc, char **argv)
{
    int runs = 2000;
    int sizes[8] = {32, 64, 96, 128}, num_sizes = 4;
    const char *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            num_sizes = 0;
            for (char *s = strtok(argv[++i], ","); s && num_sizes < 8; s = strtok(NULL, ","))
                sizes[num_sizes++] = atoi(s);
        } else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv_path = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--runs N] [--sizes 32,64,96,128] [--csv FILE]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 100)
        runs = 100;
    if (ev_cuda_device_count() <= 0) {
        fprintf(stderr, "cuda_bench: no CUDA device visible\n");
        return 77;
    }
    printf("%s\n", ev_cuda_cudnn_status());
    FILE *csv = csv_path ? fopen(csv_path, "w") : NULL;
    if (csv)
        fprintf(csv, "network,size,precision,params,macs,lat_graph_p50_ms,lat_graph_p99_ms,"
                     "lat_nograph_p50_ms,lat_nograph_p99_ms,fps_b64,fps_b256,fps_b256_own\n");
    printf("%-9s %4s %4s %8s %9s | %-15s %-15s | %9s %9s %9s\n", "network", "px", "prec", "params",
           "MMACs", "b1 graph ms", "b1 no-graph ms", "fps b64", "fps b256", "b256 own");
    printf("%-9s %4s %4s %8s %9s | %-15s %-15s | %9s %9s %9s\n", "", "", "", "", "", "p50 / p99",
           "p50 / p99", "", "", "");
    int status = 0;
    for (int g = 0; g < 2; g++)
        for (int s = 0; s < num_sizes; s++)
            for (int fp16 = 0; fp16 <= 1; fp16++) {
                ev_error err = {0};
                ev_model *m = make_model(genotypes[g][1], sizes[s], &err);
                if (!m) {
                    fprintf(stderr, "%s %d: %s\n", genotypes[g][0], sizes[s], err.message);
                    status = 1;
                    continue;
                }
                const size_t frame = (size_t)sizes[s] * sizes[s];
                float *in = malloc(256 * frame * sizeof(float));
                float *out = malloc(256 * 14 * sizeof(float));
                for (size_t i = 0; in && i < 256 * frame; i++)
                    in[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;
                double g50 = 0, g99 = 0, n50 = 0, n99 = 0, fps64 = 0, fps256 = 0, own256 = 0;
                ev_plan *plan = make_plan(m, 1, fp16, &err);
                if (plan) {
                    if (s == 0 && g == 0 && fp16 == 0)
                        printf("# %s\n", ev_cuda_plan_describe(plan));
                    latency(plan, in, out, runs, &g50, &g99);
                    ev_cuda_plan_set_graphs(plan, 0);
                    latency(plan, in, out, runs, &n50, &n99);
                    ev_plan_free(plan);
                } else {
                    fprintf(stderr, "plan: %s\n", err.message);
                    status = 1;
                }
                if ((plan = make_plan(m, 64, fp16, &err))) {
                    fps64 = throughput(plan, 64, in, out);
                    ev_plan_free(plan);
                }
                if ((plan = make_plan(m, 256, fp16, &err))) {
                    fps256 = throughput(plan, 256, in, out);
                    if (ev_cuda_plan_set_cudnn(plan, 0) == 0)
                        own256 = throughput(plan, 256, in, out);
                    else
                        own256 = fps256; /* no cuDNN in use: the same thing */
                    ev_plan_free(plan);
                } else {
                    fprintf(stderr, "plan b256: %s\n", err.message);
                }
                printf("%-9s %4d %4s %8lld %9.1f | %6.3f / %6.3f %6.3f / %6.3f | %9.0f %9.0f "
                       "%9.0f\n",
                       genotypes[g][0], sizes[s], fp16 ? "fp16" : "fp32",
                       (long long)ev_model_num_params(m), (double)ev_model_num_macs(m) / 1e6, g50,
                       g99, n50, n99, fps64, fps256, own256);
                fflush(stdout);
                if (csv)
                    fprintf(csv, "%s,%d,%s,%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.1f,%.1f,%.1f\n",
                            genotypes[g][0], sizes[s], fp16 ? "fp16" : "fp32",
                            (long long)ev_model_num_params(m), (long long)ev_model_num_macs(m), g50,
                            g99, n50, n99, fps64, fps256, own256);
                free(in);
                free(out);
                ev_model_free(m);
            }
    if (csv)
        fclose(csv);
    return status;
}
