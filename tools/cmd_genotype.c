/* cmd_genotype.c: `echoview genotype`: parse and validate a genotype (the published one-line
 * form or YAML) and print it in either form. */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: echoview genotype (FILE | --string 'Genotype(...)' | --random SEED) [--yaml | --line]\n"
    "                         [--name NAME]\n"
    "  Validates the genotype (op names, input indices, node count, concat) and prints it as\n"
    "  YAML (default) or as the one-line published Genotype(...) form.\n"
    "  --random SEED: a random genotype of the DARTS shape (the random-search baseline of the\n"
    "  DARTS paper): 4 nodes per cell, each with 2 distinct predecessors and a uniformly drawn\n"
    "  operation other than none on each edge, all nodes concatenated; deterministic per seed.\n";

/* The random baseline: the same space DARTS derives from (none never chosen, two distinct
 * predecessors per node), drawn uniformly. */
static void random_cell(ev_cell_genotype *c, uint64_t *rng)
{
    memset(c, 0, sizeof *c);
    c->num_nodes = 4;
    for (int node = 0; node < 4; node++) {
        int preds = node + 2;
        int a = (int)(ev_rng_uniform(rng) * preds);
        int b = (int)(ev_rng_uniform(rng) * (preds - 1));
        if (b >= a)
            b++;
        int ins[2] = {a < b ? a : b, a < b ? b : a};
        for (int e = 0; e < 2; e++) {
            c->edges[2 * node + e].input = ins[e];
            c->edges[2 * node + e].op = (ev_primitive)(1 + (int)(ev_rng_uniform(rng) * 7));
        }
    }
    c->num_concat = 4;
    for (int k = 0; k < 4; k++)
        c->concat[k] = k + 2;
}

int cmd_genotype(int argc, char **argv)
{
    const char *file = NULL, *text = NULL, *name = NULL, *random_seed = NULL;
    bool line = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return TOOL_OK;
        } else if (!strcmp(argv[i], "--string") && i + 1 < argc) {
            text = argv[++i];
        } else if (!strcmp(argv[i], "--random") && i + 1 < argc) {
            random_seed = argv[++i];
        } else if (!strcmp(argv[i], "--name") && i + 1 < argc) {
            name = argv[++i];
        } else if (!strcmp(argv[i], "--yaml")) {
            line = false;
        } else if (!strcmp(argv[i], "--line")) {
            line = true;
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            fprintf(stderr, "echoview genotype: unknown argument '%s'\n%s", argv[i], usage);
            return TOOL_USAGE;
        }
    }
    if (!!file + !!text + !!random_seed != 1) {
        fprintf(stderr, "echoview genotype: give one of FILE, --string or --random\n%s", usage);
        return TOOL_USAGE;
    }
    ev_genotype g;
    ev_error err = {0};
    int rc;
    if (random_seed) {
        char *end;
        unsigned long long seed = strtoull(random_seed, &end, 10);
        if (!*random_seed || *end || random_seed[0] == '-') {
            fprintf(stderr,
                    "echoview genotype: --random wants a non-negative integer seed, not '%s'\n",
                    random_seed);
            return TOOL_USAGE;
        }
        uint64_t rng = (uint64_t)seed ^ 0x9e3779b97f4a7c15ull;
        random_cell(&g.normal, &rng);
        random_cell(&g.reduce, &rng);
        rc = ev_genotype_validate(&g, &err);
    } else {
        rc = file ? ev_genotype_load_file(file, &g, &err) : ev_genotype_parse(text, &g, &err);
    }
    if (rc) {
        fprintf(stderr, "echoview genotype: %s\n", err.message);
        return TOOL_FAILED;
    }
    char *out = line ? ev_genotype_to_string(&g) : ev_genotype_to_yaml(&g, name);
    if (!out) {
        fprintf(stderr, "echoview genotype: out of memory\n");
        return TOOL_FAILED;
    }
    fputs(out, stdout);
    if (line)
        putchar('\n');
    free(out);
    return TOOL_OK;
}
