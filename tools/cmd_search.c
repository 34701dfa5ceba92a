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
    "  supernet:  --size PX (32)  --layout normal,reduce,... | --layers N (8)  --init-channels C (16)\n"
    "  schedule:  --epochs N (50)  --batch N (64)  --order 1|2 (1; 2 = unrolled second order)\n"
    "             --lr X (0.025, cosine to --lr-min 0.001)  --momentum X (0.9)\n"
    "             --weight-decay X (3e-4)  --grad-clip X (5)  --arch-lr X (3e-4)\n"
    "             --arch-weight-decay X (1e-3)\n"
    "  beyond the paper:\n"
    "             --edge-norm (PC-DARTS edge normalisation: node = sum softmax(beta) x edge)\n"
    "             --partial-channels K (PC-DARTS: mixed ops see 1/K of the channels, the rest\n"
    "             pass by, channel shuffle; K = 4 in the paper; use with --edge-norm)\n"
    "             --warmup-epochs N (0: weight steps only for N epochs, PC-DARTS uses 15)\n"
    "             --max-skips N (2: at most N skip_connect in the derived normal cell; -1 = no cap)\n"
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
    "  val and test splits are never read. Each step: one architecture step on a search-val batch,\n"
    "  then one weight step on a search-train batch. Every epoch writes DIR/genotype.yaml (for\n"
    "  `echoview train --genotype DIR/genotype.yaml`), DIR/genotype.txt (the one-line form),\n"
    "  DIR/alpha_history.jsonl, DIR/alpha_{normal,reduce}.png, DIR/cell_{normal,reduce}.{dot,png}\n"
    "  and DIR/search_checkpoint.safetensors, which --resume continues exactly.\n";

static bool parse_float(const char *opt, const char *v, double lo, double hi, float *out)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || end == v || !(d >= lo && d <= hi)) {
        fprintf(stderr, "echoview search: %s needs a number in %g..%g, got '%s'\n", opt, lo, hi,
                v ? v : "(nothing)");
        return false;
    }
    *out = (float)d;
    return true;
}

int cmd_search(int argc, char **argv)
{
    search_darts_options o;
    search_darts_defaults(&o);
    const char *latency_file = NULL, *latency_table = NULL;
    int bench_steps = 0;
    long v;
    float f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return TOOL_OK;
        }
        if (!strcmp(a, "--resume")) {
            o.resume = true;
            continue;
        }
        if (!strcmp(a, "--edge-norm")) {
            o.edge_norm = true;
            continue;
        }
        if (!strcmp(a, "--no-augment")) {
            o.augment = false;
            continue;
        }
        if (!strcmp(a, "--auto-roi")) {
            o.auto_roi = true;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (!val) {
            fprintf(stderr, "echoview search: %s needs a value (or is unknown; see --help)\n", a);
            return TOOL_USAGE;
        }
        i++;
        if (!strcmp(a, "--data")) {
            o.data = val;
        } else if (!strcmp(a, "--out")) {
            o.out_dir = val;
        } else if (!strcmp(a, "--latency")) {
            latency_file = val;
        } else if (!strcmp(a, "--latency-table")) {
            latency_table = val;
        } else if (!strcmp(a, "--layout")) {
            if (tool_parse_layout("search", val, &o.num_cells, o.reduction))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--layers")) {
            if (!tool_parse_int("search", a, val, 1, EV_MAX_CELLS, &v))
                return TOOL_USAGE;
            o.num_cells = (int)v;
            memset(o.reduction, 0, sizeof o.reduction);
            ev_layout_from_layers(o.num_cells, o.reduction);
        } else if (!strcmp(a, "--size")) {
            if (!tool_parse_int("search", a, val, 8, 1024, &v))
                return TOOL_USAGE;
            o.size = (int)v;
        } else if (!strcmp(a, "--init-channels")) {
            if (!tool_parse_int("search", a, val, 2, 256, &v))
                return TOOL_USAGE;
            o.init_channels = (int)v;
        } else if (!strcmp(a, "--epochs")) {
            if (!tool_parse_int("search", a, val, 1, 1000, &v))
                return TOOL_USAGE;
            o.epochs = (int)v;
        } else if (!strcmp(a, "--batch")) {
            if (!tool_parse_int("search", a, val, 2, 4096, &v))
                return TOOL_USAGE;
            o.batch = (int)v;
        } else if (!strcmp(a, "--order")) {
            if (!tool_parse_int("search", a, val, 1, 2, &v))
                return TOOL_USAGE;
            o.arch.order = (int)v;
        } else if (!strcmp(a, "--threads")) {
            if (!tool_parse_int("search", a, val, 1, 256, &v))
                return TOOL_USAGE;
            o.threads = (int)v;
        } else if (!strcmp(a, "--seed")) {
            if (!tool_parse_int("search", a, val, 0, 0x7fffffffL, &v))
                return TOOL_USAGE;
            o.seed = (uint64_t)v;
        } else if (!strcmp(a, "--max-skips")) {
            if (!tool_parse_int("search", a, val, -1, 8, &v))
                return TOOL_USAGE;
            o.max_skips = (int)v;
        } else if (!strcmp(a, "--partial-channels")) {
            if (!tool_parse_int("search", a, val, 1, 64, &v))
                return TOOL_USAGE;
            o.partial_channels = (int)v;
        } else if (!strcmp(a, "--warmup-epochs")) {
            if (!tool_parse_int("search", a, val, 0, 1000, &v))
                return TOOL_USAGE;
            o.arch_warmup = (int)v;
        } else if (!strcmp(a, "--stop-after")) {
            if (!tool_parse_int("search", a, val, 1, 1000, &v))
                return TOOL_USAGE;
            o.stop_after = (int)v;
        } else if (!strcmp(a, "--steps-per-epoch")) {
            if (!tool_parse_int("search", a, val, 1, 1000000, &v))
                return TOOL_USAGE;
            o.max_steps = (int)v;
        } else if (!strcmp(a, "--val-frames")) {
            if (!tool_parse_int("search", a, val, 1, 100000000, &v))
                return TOOL_USAGE;
            o.max_val_frames = (int)v;
        } else if (!strcmp(a, "--benchmark")) {
            if (!tool_parse_int("search", a, val, 1, 100000, &v))
                return TOOL_USAGE;
            bench_steps = (int)v;
        } else if (!strcmp(a, "--lr")) {
            if (!parse_float(a, val, 1e-6, 10, &o.lr))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--lr-min")) {
            if (!parse_float(a, val, 0, 10, &o.lr_min))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--momentum")) {
            if (!parse_float(a, val, 0, 0.999, &o.momentum))
                return TOOL_USAGE;
            o.arch.momentum = o.momentum;
        } else if (!strcmp(a, "--weight-decay")) {
            if (!parse_float(a, val, 0, 1, &o.weight_decay))
                return TOOL_USAGE;
            o.arch.weight_decay = o.weight_decay;
        } else if (!strcmp(a, "--grad-clip")) {
            if (!parse_float(a, val, 0, 1e6, &o.grad_clip))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--arch-lr")) {
            if (!parse_float(a, val, 0, 1, &o.arch.arch_lr))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--arch-weight-decay")) {
            if (!parse_float(a, val, 0, 1, &o.arch.arch_weight_decay))
                return TOOL_USAGE;
        } else if (!strcmp(a, "--latency-weight")) {
            if (!parse_float(a, val, 0, 1e6, &f))
                return TOOL_USAGE;
            o.arch.latency_weight = f;
        } else {
            fprintf(stderr, "echoview search: unknown option %s (see --help)\n", a);
            return TOOL_USAGE;
        }
    }
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
        printf("{\"size\":%d,\"init_channels\":%d,\"cells\":%d,\"batch\":%d,\"order\":%d,"
               "\"partial_channels\":%d,\"threads\":%d,\"kernels\":\"%s\",\"seconds_per_step\":%.6f,"
               "\"images_per_second\":%.3f}\n",
               o.size, o.init_channels, o.num_cells, o.batch, o.arch.order, o.partial_channels,
               o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN),
               search_kernels_name(), sps, ips);
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
        fprintf(stderr, "searched %d epochs (%.1f s per epoch, %.1f images/s); genotype in %s/"
                        "genotype.yaml\n",
                r.epochs_run, r.seconds_per_epoch, r.images_per_second, o.out_dir);
    printf("%s\n", line ? line : "");
    free(line);
    return TOOL_OK;
}
