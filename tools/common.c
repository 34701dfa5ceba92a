/* common.c: helpers shared by the echoview subcommands. */
#include "tools.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool tool_parse_int(const char *cmd, const char *option, const char *value, long min, long max,
                    long *out)
{
    char *end;
    errno = 0;
    long v = value ? strtol(value, &end, 10) : 0;
    if (!value || errno || *end || end == value || v < min || v > max) {
        fprintf(stderr, "echoview %s: %s needs an integer in %ld..%ld, got '%s'\n", cmd, option,
                min, max, value ? value : "(nothing)");
        return false;
    }
    *out = v;
    return true;
}

bool tool_parse_float(const char *cmd, const char *option, const char *value, double lo, double hi,
                      float *out)
{
    char *end;
    double d = value ? strtod(value, &end) : 0;
    if (!value || *end || end == value || !(d >= lo && d <= hi)) {
        fprintf(stderr, "echoview %s: %s needs a number in %g..%g, got '%s'\n", cmd, option, lo, hi,
                value ? value : "(nothing)");
        return false;
    }
    *out = (float)d;
    return true;
}

/* Consumes argv[*i] (and its value, advancing *i) when the table has it: 1 consumed, 0 not in the
 * table or a value option at the end of argv, -1 bad value (the message is printed). */
static int parse_table_option(const char *cmd, const tool_option *options, int count, int argc,
                              char **argv, int *i)
{
    const char *a = argv[*i], *value = *i + 1 < argc ? argv[*i + 1] : NULL;
    for (int k = 0; k < count; k++) {
        const tool_option *o = &options[k];
        if (strcmp(a, o->name))
            continue;
        if (o->kind == TOOL_OPT_FLAG || o->kind == TOOL_OPT_FLAG_OFF) {
            *(bool *)o->target = o->kind == TOOL_OPT_FLAG;
        } else {
            if (!value)
                return 0;
            ++*i;
            long v;
            if (o->kind == TOOL_OPT_STRING)
                *(const char **)o->target = value;
            else if (o->kind == TOOL_OPT_FLOAT) {
                if (!tool_parse_float(cmd, a, value, o->min, o->max, (float *)o->target))
                    return -1;
            } else if (!tool_parse_int(cmd, a, value, (long)o->min, (long)o->max, &v))
                return -1;
            else
                *(int *)o->target = (int)v;
        }
        if (o->seen)
            *o->seen = true;
        return 1;
    }
    return 0;
}

int tool_parse_args(const char *cmd, const char *usage, const tool_option *options, int count,
                    int argc, char **argv,
                    int (*other)(void *ctx, const char *option, const char *value), void *ctx)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return TOOL_OK;
        }
        int consumed = parse_table_option(cmd, options, count, argc, argv, &i);
        if (consumed < 0)
            return TOOL_USAGE;
        if (consumed)
            continue;
        if (other(ctx, a, value))
            return TOOL_USAGE;
        i++;
    }
    return TOOL_CONTINUE;
}

int tool_parse_layout_option(const char *cmd, const char *option, const char *value, int *num_cells,
                             bool *reduction)
{
    long v;
    if (!strcmp(option, "--layout"))
        return tool_parse_layout(cmd, value, num_cells, reduction) ? -1 : 1;
    if (strcmp(option, "--layers"))
        return 0;
    if (!tool_parse_int(cmd, option, value, 1, EV_MAX_CELLS, &v))
        return -1;
    *num_cells = (int)v;
    memset(reduction, 0, EV_MAX_CELLS * sizeof *reduction);
    ev_layout_from_layers(*num_cells, reduction);
    return 1;
}

ev_model *tool_load_model(const char *cmd, const char *path)
{
    if (!path) {
        fprintf(stderr, "echoview %s: --model DIR|model.yaml is required\n", cmd);
        return NULL;
    }
    ev_model *m = NULL;
    ev_error err = {0};
    if (ev_model_load(path, &m, &err) != EV_OK) {
        fprintf(stderr, "echoview %s: %s\n", cmd, err.message);
        return NULL;
    }
    return m;
}

void tool_print_json(json_t *value, bool pretty)
{
    char *s = json_dumps(value, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER |
                                    JSON_REAL_PRECISION(7));
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(value);
    fflush(stdout);
}

int tool_parse_plan_option(const char *cmd, int argc, char **argv, int *i, const char **model_path,
                           ev_plan_options *opt)
{
    long v;
    if (*i + 1 >= argc)
        return 0;
    if (!strcmp(argv[*i], "--model")) {
        *model_path = argv[++*i];
        return 1;
    }
    if (!strcmp(argv[*i], "--backend")) {
        if (ev_backend_parse(argv[++*i], &opt->backend)) {
            fprintf(stderr, "echoview %s: unknown backend '%s' (auto, cpu, reference, cuda)\n", cmd,
                    argv[*i]);
            return -1;
        }
        return 1;
    }
    if (!strcmp(argv[*i], "--threads")) {
        if (!tool_parse_int(cmd, "--threads", argv[++*i], 1, 256, &v))
            return -1;
        opt->threads = (int)v;
        return 1;
    }
    return 0;
}
