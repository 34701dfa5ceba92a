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

/* The one FILE operand. */
static int take_file(void *ctx, const char *arg)
{
    const char **file = ctx;
    if (*file) {
        fprintf(stderr, "echoview genotype: unexpected argument '%s' (one FILE)\n%s", arg, usage);
        return TOOL_USAGE;
    }
    *file = arg;
    return TOOL_CONTINUE;
}

int cmd_genotype(int argc, char **argv)
{
    const char *file = NULL, *text = NULL, *name = NULL;
    bool line = false, random = false;
    uint64_t seed = 0;
    const tool_option options[] = {
        TOOL_STRING("--string", &text),
        {.name = "--random", .kind = TOOL_OPT_SEED, .target = &seed, .seen = &random},
        TOOL_STRING("--name", &name),
        TOOL_FLAG_OFF("--yaml", &line),
        TOOL_FLAG("--line", &line),
    };
    const tool_parser parser = {.cmd = "genotype",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .operand = take_file,
                                .ctx = &file};
    int status = tool_parse_args(&parser, argc, argv);
    if (status != TOOL_CONTINUE)
        return status;
    if (!!file + !!text + random != 1) {
        fprintf(stderr, "echoview genotype: give one of FILE, --string or --random\n%s", usage);
        return TOOL_USAGE;
    }
    ev_genotype g;
    ev_error err = {0};
    int rc;
    if (random) {
        uint64_t rng = seed ^ 0x9e3779b97f4a7c15ull;
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
