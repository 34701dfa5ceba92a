/* common.c: what the echoview subcommands share: the option table parser, genotype and layout
 * arguments, model loading and JSON printing (common.h). */
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool parse_int(const char *cmd, const char *option, const char *value, long min, long max,
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

static bool parse_seed(const char *cmd, const char *option, const char *value, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (!*value || *end || errno || value[0] == '-') {
        fprintf(stderr, "echoview %s: %s wants a non-negative integer seed, not '%s'\n", cmd,
                option, value);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static bool parse_choice(const char *cmd, const tool_option *o, const char *value)
{
    int n = 0;
    for (; o->choices[n]; n++)
        if (!strcmp(value, o->choices[n])) {
            *(const char **)o->target = o->choices[n];
            return true;
        }
    fprintf(stderr, "echoview %s: %s ", cmd, o->name); /* "--split test, val or all, got 'x'" */
    for (int k = 0; k < n; k++)
        fprintf(stderr, "%s%s", o->choices[k], k + 2 < n ? ", " : k + 1 < n ? " or " : "");
    fprintf(stderr, ", got '%s'\n", value);
    return false;
}

/* Stores the value of row o; false when it is bad (the message is printed). */
static bool parse_value(const char *cmd, const tool_option *o, const char *value)
{
    long v;
    switch (o->kind) {
    case TOOL_OPT_INT:
        if (!parse_int(cmd, o->name, value, (long)o->min, (long)o->max, &v))
            return false;
        *(int *)o->target = (int)v;
        return true;
    case TOOL_OPT_FLOAT:
        return tool_parse_float(cmd, o->name, value, o->min, o->max, (float *)o->target);
    case TOOL_OPT_STRING:
        *(const char **)o->target = value;
        return true;
    case TOOL_OPT_CHOICE:
        return parse_choice(cmd, o, value);
    case TOOL_OPT_SEED:
        return parse_seed(cmd, o->name, value, (uint64_t *)o->target);
    case TOOL_OPT_CUSTOM:
        return o->parse(cmd, o, value) == 0;
    default:
        return false;
    }
}

/* The parser's required rows: TOOL_CONTINUE when all are given, else the message and
 * TOOL_USAGE. */
static int check_required(const tool_parser *p)
{
    int n = 0, missing = 0;
    for (; p->required && p->required[n]; n++) {
        const tool_option *o = NULL;
        for (int k = 0; k < p->count && !o; k++)
            if (!strcmp(p->required[n], p->options[k].name))
                o = &p->options[k];
        if (!o || (o->kind != TOOL_OPT_STRING && o->kind != TOOL_OPT_CHOICE)) {
            fprintf(stderr, "echoview %s: internal error: required option %s is not a string "
                    "option of this command\n", p->cmd, p->required[n]);
            return TOOL_FAILED;
        }
        missing += *(const char **)o->target == NULL;
    }
    if (!missing)
        return TOOL_CONTINUE;
    fprintf(stderr, "echoview %s: ", p->cmd); /* "--model, --data and --out are required" */
    for (int k = 0; k < n; k++)
        fprintf(stderr, "%s%s", p->required[k], k + 2 < n ? ", " : k + 1 < n ? " and " : "");
    fprintf(stderr, " %s required\n%s", n > 1 ? "are" : "is", p->usage);
    return TOOL_USAGE;
}

int tool_parse_args(const tool_parser *p, int argc, char **argv)
{
    bool options_done = false;
    if (p->first_operand)
        *p->first_operand = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool operand = options_done || a[0] != '-' || !a[1];
        if (!operand && !strcmp(a, "--")) {
            options_done = true;
            if (p->first_operand) {
                *p->first_operand = i + 1;
                return check_required(p);
            }
            continue;
        }
        if (operand) {
            if (p->first_operand) {
                *p->first_operand = i;
                return check_required(p);
            }
            if (!p->operand) {
                fprintf(stderr, "echoview %s: unexpected argument '%s'\n%s", p->cmd, a, p->usage);
                return TOOL_USAGE;
            }
            int rc = p->operand(p->ctx, a);
            if (rc != TOOL_CONTINUE)
                return rc;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(p->usage, stdout);
            return TOOL_OK;
        }
        const tool_option *o = NULL;
        for (int k = 0; k < p->count && !o; k++)
            if (!strcmp(a, p->options[k].name))
                o = &p->options[k];
        if (!o) {
            fprintf(stderr, "echoview %s: unknown option '%s'\n%s", p->cmd, a, p->usage);
            return TOOL_USAGE;
        }
        if (o->kind == TOOL_OPT_FLAG || o->kind == TOOL_OPT_FLAG_OFF) {
            *(bool *)o->target = o->kind == TOOL_OPT_FLAG;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "echoview %s: %s needs a value\n%s", p->cmd, a, p->usage);
            return TOOL_USAGE;
        } else if (!parse_value(p->cmd, o, argv[++i])) {
            return TOOL_USAGE;
        }
        if (o->seen)
            *o->seen = true;
    }
    return check_required(p);
}

int tool_parse_backend(const char *cmd, const tool_option *row, const char *value)
{
    if (ev_backend_parse(value, (ev_backend_kind *)row->target)) {
        fprintf(stderr, "echoview %s: unknown backend '%s' (auto, cpu, reference, cuda)\n", cmd,
                value);
        return -1;
    }
    return 0;
}

static int parse_layout(const char *cmd, const char *s, int *num_cells, bool *reduction)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
        if (n >= EV_MAX_CELLS) {
            fprintf(stderr, "echoview %s: more than %d cells\n", cmd, EV_MAX_CELLS);
            return -1;
        }
        if (!strcmp(tok, "normal") || !strcmp(tok, "N") || !strcmp(tok, "n"))
            reduction[n++] = false;
        else if (!strcmp(tok, "reduce") || !strcmp(tok, "R") || !strcmp(tok, "r"))
            reduction[n++] = true;
        else {
            fprintf(stderr, "echoview %s: layout entry '%s' is not normal or reduce\n", cmd, tok);
            return -1;
        }
    }
    if (!n) {
        fprintf(stderr, "echoview %s: empty layout\n", cmd);
        return -1;
    }
    *num_cells = n;
    return 0;
}

int tool_parse_layout_row(const char *cmd, const tool_option *row, const char *value)
{
    const tool_layout *l = row->target;
    long v;
    if (!strcmp(row->name, "--layout"))
        return parse_layout(cmd, value, l->num_cells, l->reduction);
    if (!parse_int(cmd, row->name, value, 1, EV_MAX_CELLS, &v))
        return -1;
    *l->num_cells = (int)v;
    memset(l->reduction, 0, EV_MAX_CELLS * sizeof *l->reduction);
    ev_layout_from_layers(*l->num_cells, l->reduction);
    return 0;
}

int tool_load_genotype(const char *cmd, const char *spec, ev_genotype *out, char *name,
                       size_t name_size)
{
    ev_error err = {0};
    struct stat st;
    char path[4096];
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    snprintf(name, name_size, "%s", base);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = 0;
    if (stat(spec, &st) == 0)
        return ev_genotype_load_file(spec, out, &err)
                   ? (fprintf(stderr, "echoview %s: %s\n", cmd, err.message), -1)
                   : 0;
    const char *dirs[] = {"models/genotypes", EV_MODELS_DIR "/genotypes"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.yaml", dirs[i], spec);
        if (stat(path, &st) == 0) {
            if (ev_genotype_load_file(path, out, &err)) {
                fprintf(stderr, "echoview %s: %s\n", cmd, err.message);
                return -1;
            }
            return 0;
        }
    }
    if (ev_genotype_parse(spec, out, &err) == 0) { /* the one-line form on the command line */
        snprintf(name, name_size, "custom");
        return 0;
    }
    fprintf(stderr, "echoview %s: genotype '%s' is neither a file nor a published name in %s\n",
            cmd, spec, EV_MODELS_DIR "/genotypes");
    return -1;
}

ev_model *tool_load_model(const char *cmd, const char *path)
{
    ev_model *m = NULL;
    ev_error err = {0};
    if (ev_model_load(path, &m, &err) != EV_OK) {
        fprintf(stderr, "echoview %s: %s\n", cmd, err.message);
        return NULL;
    }
    return m;
}

ev_model *tool_parse_model_args(const tool_parser *p, int argc, char **argv, int *status)
{
    *status = tool_parse_args(p, argc, argv);
    if (*status != TOOL_CONTINUE)
        return NULL;
    const char *path = NULL;
    for (int k = 0; k < p->count; k++)
        if (!strcmp(p->options[k].name, "--model") && p->options[k].kind == TOOL_OPT_STRING)
            path = *(const char **)p->options[k].target;
    ev_model *m = tool_load_model(p->cmd, path); /* NULL path: "no model path given" */
    *status = m ? TOOL_CONTINUE : TOOL_FAILED;
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

char *tool_command_line(const char *program, int argc, char **argv)
{
    size_t size = strlen(program) + 1;
    for (int i = 0; i < argc; i++)
        size += 4 * strlen(argv[i]) + 3; /* each ' becomes '\'' */
    char *out = malloc(size), *p = out;
    if (!out)
        return NULL;
    p += sprintf(p, "%s", program);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool plain = *a != 0;
        for (const char *c = a; *c && plain; c++)
            plain = isalnum((unsigned char)*c) || strchr("_-./:=,+@%", *c);
        *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
            continue;
        }
        *p++ = '\'';
        for (const char *c = a; *c; c++)
            if (*c == '\'')
                p += sprintf(p, "'\\''");
            else
                *p++ = *c;
        *p++ = '\'';
        *p = 0;
    }
    return out;
}
