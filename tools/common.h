/* common.h: what the echoview subcommands share (common.c): exit codes, the one option table
 * parser every command's options go through, genotype and layout arguments, model loading with
 * a message, JSON printing. */
#ifndef ECHOVIEW_TOOLS_COMMON_H
#define ECHOVIEW_TOOLS_COMMON_H

#include "ev_graph.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes: 0 ok, 1 the work failed (bad input file, ...), 2 usage error; TOOL_CONTINUE: not
 * an exit code, the option parser's "go on". */
enum { TOOL_OK = 0, TOOL_FAILED = 1, TOOL_USAGE = 2, TOOL_CONTINUE = -1 };

/* Parses a number option value in lo..hi; prints the error and returns false when invalid. */
bool tool_parse_float(const char *cmd, const char *option, const char *value, double lo, double hi,
                      float *out);

/* A command's options as a table: flags set (or clear) a bool, numbers are range checked,
 * strings are kept as given, choices must be one of a list, seeds are non-negative 64-bit
 * integers, and a custom row runs its own parser. */
typedef enum tool_option_kind {
    TOOL_OPT_FLAG,     /* no value; *(bool *)target = true */
    TOOL_OPT_FLAG_OFF, /* no value; *(bool *)target = false */
    TOOL_OPT_INT,      /* int *target, min..max */
    TOOL_OPT_FLOAT,    /* float *target, min..max */
    TOOL_OPT_STRING,   /* const char **target */
    TOOL_OPT_CHOICE,   /* const char **target, one of choices */
    TOOL_OPT_SEED,     /* uint64_t *target, 0..UINT64_MAX in decimal */
    TOOL_OPT_CUSTOM,   /* parse(cmd, row, value) */
} tool_option_kind;

typedef struct tool_option tool_option;
/* A custom row's parser: stores the value through row->target (reading min/max if it needs
 * them); prints "echoview CMD: ..." and returns -1 when the value is bad, else 0. */
typedef int (*tool_option_parser)(const char *cmd, const tool_option *row, const char *value);

struct tool_option {
    const char *name;
    tool_option_kind kind;
    void *target;
    double min, max;
    bool *seen;                 /* optional: set when the option is given */
    const char *const *choices; /* TOOL_OPT_CHOICE: NULL-terminated */
    tool_option_parser parse;   /* TOOL_OPT_CUSTOM */
};

/* Table rows; the compound literals check the target's type. */
#define TOOL_FLAG(n, t)                                                \
    {                                                                  \
        .name = (n), .kind = TOOL_OPT_FLAG, .target = (bool *) { (t) } \
    }
#define TOOL_FLAG_OFF(n, t)                                                \
    {                                                                      \
        .name = (n), .kind = TOOL_OPT_FLAG_OFF, .target = (bool *) { (t) } \
    }
#define TOOL_INT(n, t, lo, hi)                                                              \
    {                                                                                       \
        .name = (n), .kind = TOOL_OPT_INT, .target = (int *){(t)}, .min = (lo), .max = (hi) \
    }
#define TOOL_FLOAT(n, t, lo, hi, s)                                                              \
    {                                                                                            \
        .name = (n), .kind = TOOL_OPT_FLOAT, .target = (float *){(t)}, .min = (lo), .max = (hi), \
        .seen = (s)                                                                              \
    }
#define TOOL_STRING(n, t)                                                       \
    {                                                                           \
        .name = (n), .kind = TOOL_OPT_STRING, .target = (const char **) { (t) } \
    }
/* TOOL_CHOICE("--split", &split, "test", "val"): "--split test or val, got 'x'" otherwise. */
#define TOOL_CHOICE(n, t, ...)                                                \
    {                                                                         \
        .name = (n), .kind = TOOL_OPT_CHOICE, .target = (const char **){(t)}, \
        .choices = (const char *const[])                                      \
        {                                                                     \
            __VA_ARGS__, NULL                                                 \
        }                                                                     \
    }
#define TOOL_SEED(n, t)                                                    \
    {                                                                      \
        .name = (n), .kind = TOOL_OPT_SEED, .target = (uint64_t *) { (t) } \
    }
#define TOOL_CUSTOM(n, fn, t)                                              \
    {                                                                      \
        .name = (n), .kind = TOOL_OPT_CUSTOM, .target = (t), .parse = (fn) \
    }
#define TOOL_COUNT(table) ((int)(sizeof(table) / sizeof *(table)))

/* How a command reads argv: its table, and what it does with operands (arguments that are not
 * options: not starting with '-', or "-" itself, or anything after "--"). */
typedef struct tool_parser {
    const char *cmd;   /* "train": messages say "echoview train: ..." */
    const char *usage; /* printed on stdout for --help/-h, after the message on a usage error */
    const tool_option *options;
    int count;
    /* Operands one at a time: returns TOOL_CONTINUE, or the status to exit with (after printing
     * why). NULL (and no first_operand): an operand is a usage error. */
    int (*operand)(void *ctx, const char *arg);
    void *ctx;
    /* When set, options end at the first operand (or after "--"); its index is stored here
     * (argc when there is none) and everything from it on is left to the command. */
    int *first_operand;
    /* Options the command cannot go without (TOOL_REQUIRED): string or choice rows whose
     * target is still NULL after parsing. When one is missing, "echoview CMD: --a, --b and --c
     * are required" (all of them, in this order) and the usage go to stderr: TOOL_USAGE. */
    const char *const *required;
} tool_parser;

/* .required = TOOL_REQUIRED("--model", "--data") */
#define TOOL_REQUIRED(...)   \
    (const char *const[])    \
    {                        \
        __VA_ARGS__, NULL    \
    }

/* Parses argv[1..]: --help/-h prints the usage and returns TOOL_OK; a table option is consumed
 * with its value; an unknown option ("unknown option 'X'"), a missing value ("X needs a value"),
 * a bad value (the row's message) or a missing required option print the message and the usage
 * on stderr and return TOOL_USAGE. Returns TOOL_CONTINUE when the command should go on. */
int tool_parse_args(const tool_parser *p, int argc, char **argv);

/* Custom rows shared by several commands. */
/* --backend auto|cpu|reference|cuda into *(ev_backend_kind *)row->target. */
int tool_parse_backend(const char *cmd, const tool_option *row, const char *value);
/* --layout normal,reduce,... (also N/R, n/r) or --layers N (the reference rule) into a
 * tool_layout. */
typedef struct tool_layout {
    int *num_cells;
    bool *reduction; /* EV_MAX_CELLS entries */
} tool_layout;
int tool_parse_layout_row(const char *cmd, const tool_option *row, const char *value);

/* Genotype from a file, a published name (models/genotypes/NAME.yaml) or the one-line form.
 * Prints the error and returns -1 on failure. */
int tool_load_genotype(const char *cmd, const char *spec, ev_genotype *out, char *name,
                       size_t name_size);
/* Loads the model at path (a bundle folder or its model.yaml; a command makes --model required
 * in its parser) or prints "echoview CMD: <message>" and returns NULL. */
ev_model *tool_load_model(const char *cmd, const char *path);
/* A command whose work starts from its model: tool_parse_args, then the model the parser's
 * --model row (a required string option) names, loaded. Returns the model, or NULL with
 * *status the exit status (TOOL_OK after --help, TOOL_USAGE, TOOL_FAILED: it did not load). */
ev_model *tool_parse_model_args(const tool_parser *p, int argc, char **argv, int *status);
/* "PROGRAM ARGV[0] ARGV[1] ...", each argument that is not plain (letters, digits, _-./:=,+@%)
 * in single quotes as a POSIX shell reads them back: what model.yaml records. Caller frees. */
char *tool_command_line(const char *program, int argc, char **argv);
/* Prints a JSON value on one line (or indented) followed by a newline, and releases it. */
void tool_print_json(json_t *value, bool pretty);

#endif
