/* cmd_genotype.c: `echoview genotype`: parse and validate a genotype (the published one-line
 * form or YAML) and print it in either form. */
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: echoview genotype (FILE | --string 'Genotype(...)') [--yaml | --line] [--name NAME]\n"
    "  Validates the genotype (op names, input indices, node count, concat) and prints it as\n"
    "  YAML (default) or as the one-line published Genotype(...) form.\n";

int cmd_genotype(int argc, char **argv)
{
    const char *file = NULL, *text = NULL, *name = NULL;
    bool line = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return TOOL_OK;
        } else if (!strcmp(argv[i], "--string") && i + 1 < argc) {
            text = argv[++i];
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
    if (!!file == !!text) {
        fprintf(stderr, "echoview genotype: give a FILE or --string\n%s", usage);
        return TOOL_USAGE;
    }
    ev_genotype g;
    ev_error err = {0};
    int rc = file ? ev_genotype_load_file(file, &g, &err) : ev_genotype_parse(text, &g, &err);
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
