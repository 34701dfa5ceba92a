/* cmd_search.c: `echoview search`: DARTS architecture search on a dataset (search_darts_run does
 * the work); also the per-op latency table and the search-step benchmark. */
#include "supernet.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage =
    "usage: echoview search --data DIR|manifest.csv --out DIR [options]\n"
    "  supernet:  --size PX (32)  --layout normal,reduce,... | --layers N (8)  --init-channels C "
    "(16)\n"
    "  schedule:  --epochs N (50)  --batch N (64)  --order 1|2 (1; 2 = unrolled second order)\n"
    "             --lr X (0.025, cosine to --lr-min 0.001)  --momentum X (0.9)\n"
    "             --weight-decay X (3e-4)  --grad-clip X (5)  --arch-lr X (3e-4)\n"
    "             --arch-weight-decay X (1e-3)\n"
    "  beyond the paper:\n"
    "             --edge-norm (PC-DARTS edge normalisation: node = sum softmax(beta) x edge)\n"
    "             --partial-channels K (PC-DARTS: mixed ops see 1/K of the channels, the rest\n"
    "             pass by, channel shuffle; K = 4 in the paper; use with --edge-norm)\n"
    "             --warmup-epochs N (0: weight steps only for N epochs, PC-DARTS uses 15)\n"
    "             --max-skips N (2: at most N skip_connect in the derived normal cell; -1 = no "
    "cap)\n"
    "             --latency FILE --latency-weight L (alpha loss += L x expected latency in ms)\n"
    "             --latency-table FILE: measure the per-op latency table with the cpu backend at\n"
    "             --size/--layout/--init-channels (batch 1, --threads) and exit\n"
    "  data:      --no-augment  --auto-roi\n"
    "  run:       --threads T (all cores)  --seed S (2)  --resume  --quiet\n"
    "             --stop-after N (stop after N epochs of this run, as if interrupted)\n"
    "             --steps-per-epoch N (cap; default: search-train frames / batch)\n"
    "             --val-frames N (end-of-epoch evaluation on N search-val frames; default all)\n"
    "             --benchmark N: time N search steps on random frames (no --data needed), JSON\n"
    "  The training split is divided by patient into search-train and search-val halves; the\n"
    "  val and test splits are never read. Each step: one architecture step on a search-val "
    "batch,\n"
    "  then one weight step on a search-train batch. Every epoch writes DIR/genotype.yaml (for\n"
    "  `echoview train --genotype DIR/genotype.yaml`), DIR/genotype.txt (the one-line form),\n"
    "  DIR/alpha_history.jsonl, DIR/alpha_{normal,reduce}.png, DIR/cell_{normal,reduce}.{dot,png}\n"
    "  and DIR/search_checkpoint.safetensors, which --resume continues exactly.\n";

/* --momentum and --weight-decay set the weight and the architecture optimiser's alike. */
static int parse_shared_float(const char *cmd, const tool_option *row, const char *value)
{
    search_darts_options *o = row->target;
    bool momentum = !strcmp(row->name, "--momentum");
    float *f = momentum ? &o->momentum : &o->weight_decay;
    if (!tool_parse_float(cmd, row->name, value, 0, momentum ? 0.999 : 1, f))
        return -1;
    if (momentum)
        o->arch.momentum = *f;
    else
        o->arch.weight_decay = *f;
    return 0;
}

int cmd_search(int argc, char **argv)
{
    search_darts_options o;
    search_darts_defaults(&o);
    const char *latency_file = NULL, *latency_table = NULL;
    int bench_steps = 0;
    tool_layout layout = {&o.num_cells, o.reduction};
    const tool_option options[] = {
        TOOL_FLAG("--resume", &o.resume),
        TOOL_FLAG("--edge-norm", &o.edge_norm),
        TOOL_FLAG_OFF("--no-augment", &o.augment),
        TOOL_FLAG("--auto-roi", &o.auto_roi),
        TOOL_FLAG("--quiet", &o.quiet),
        TOOL_STRING("--data", &o.data),
        TOOL_STRING("--out", &o.out_dir),
        TOOL_STRING("--latency", &latency_file),
        TOOL_STRING("--latency-table", &latency_table),
        TOOL_INT("--size", &o.size, 8, 1024),
        TOOL_INT("--init-channels", &o.init_channels, 2, 256),
        TOOL_INT("--epochs", &o.epochs, 1, 1000),
        TOOL_INT("--batch", &o.batch, 2, 4096),
        TOOL_INT("--order", &o.arch.order, 1, 2),
        TOOL_INT("--threads", &o.threads, 1, 256),
        TOOL_INT("--max-skips", &o.max_skips, -1, 8),
        TOOL_INT("--partial-channels", &o.partial_channels, 1, 64),
        TOOL_INT("--warmup-epochs", &o.arch_warmup, 0, 1000),
        TOOL_INT("--stop-after", &o.stop_after, 1, 1000),
        TOOL_INT("--steps-per-epoch", &o.max_steps, 1, 1000000),
        TOOL_INT("--val-frames", &o.max_val_frames, 1, 100000000),
        TOOL_INT("--benchmark", &bench_steps, 1, 100000),
        TOOL_FLOAT("--lr", &o.lr, 1e-6, 10, NULL),
        TOOL_FLOAT("--lr-min", &o.lr_min, 0, 10, NULL),
        TOOL_FLOAT("--grad-clip", &o.grad_clip, 0, 1e6, NULL),
        TOOL_FLOAT("--arch-lr", &o.arch.arch_lr, 0, 1, NULL),
        TOOL_FLOAT("--arch-weight-decay", &o.arch.arch_weight_decay, 0, 1, NULL),
        TOOL_FLOAT("--latency-weight", &o.arch.latency_weight, 0, 1e6, NULL),
        TOOL_CUSTOM("--layout", tool_parse_layout_row, &layout),
        TOOL_CUSTOM("--layers", tool_parse_layout_row, &layout),
        TOOL_CUSTOM("--momentum", parse_shared_float, &o),
        TOOL_CUSTOM("--weight-decay", parse_shared_float, &o),
        TOOL_SEED("--seed", &o.seed),
    };
    const tool_parser parser = {
        .cmd = "search", .usage = usage, .options = options, .count = TOOL_COUNT(options)};
    int rc = tool_parse_args(&parser, argc, argv);
    if (rc != TOOL_CONTINUE)
        return rc;
    ev_error err = {0};
    if (latency_table) {
        float lat[SEARCH_OPS];
        if (search_latency_measure(&o, o.threads > 0 ? o.threads : 1, 50, lat, latency_table,
                                   &err)) {
            fprintf(stderr, "echoview search: %s\n", err.message);
            return TOOL_FAILED;
        }
        for (int p = 0; p < SEARCH_OPS; p++)
            printf("%-13s %.4f ms per edge\n", ev_primitive_name(p), (double)lat[p]);
        return TOOL_OK;
    }
    if (o.arch.latency_weight > 0.0f && !latency_file) {
        fprintf(stderr, "echoview search: --latency-weight needs --latency FILE (make one with "
                        "--latency-table FILE)\n");
        return TOOL_USAGE;
    }
    if (latency_file && search_latency_load(latency_file, o.arch.latency, &err)) {
        fprintf(stderr, "echoview search: %s\n", err.message);
        return TOOL_FAILED;
    }
    if (bench_steps) {
        double sps, ips;
        if (search_darts_benchmark(&o, 2, bench_steps, &sps, &ips, &err)) {
            fprintf(stderr, "echoview search: %s\n", err.message);
            return TOOL_FAILED;
        }
        printf(
            "{\"size\":%d,\"init_channels\":%d,\"cells\":%d,\"batch\":%d,\"order\":%d,"
            "\"partial_channels\":%d,\"threads\":%d,\"kernels\":\"%s\",\"seconds_per_step\":%.6f,"
            "\"images_per_second\":%.3f}\n",
            o.size, o.init_channels, o.num_cells, o.batch, o.arch.order, o.partial_channels,
            o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN), search_kernels_name(),
            sps, ips);
        return TOOL_OK;
    }
    if (!o.data || !o.out_dir) {
        fprintf(stderr, "echoview search: --data and --out are required\n%s", usage);
        return TOOL_USAGE;
    }
    search_darts_result r;
    if (search_darts_run(&o, &r, &err)) {
        fprintf(stderr, "echoview search: %s\n", err.message);
        return TOOL_FAILED;
    }
    char *line = ev_genotype_to_string(&r.genotype);
    if (!o.quiet)
        fprintf(stderr,
                "searched %d epochs (%.1f s per epoch, %.1f images/s); genotype in %s/"
                "genotype.yaml\n",
                r.epochs_run, r.seconds_per_epoch, r.images_per_second, o.out_dir);
    printf("%s\n", line ? line : "");
    free(line);
    return TOOL_OK;
}
