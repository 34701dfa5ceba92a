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

int tool_parse_plan_option(const char *cmd, int argc, char **argv, int *i, ev_plan_options *opt)
{
    long v;
    if (*i + 1 >= argc)
        return 0;
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
