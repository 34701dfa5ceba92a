/* tools.h: the subcommands of the `echoview` command line and the small helpers they share
 * (option parsing, model loading with a message, JSON printing). */
#ifndef ECHOVIEW_TOOLS_H
#define ECHOVIEW_TOOLS_H

#include "ev_graph.h"

#include <jansson.h>
#include <stdbool.h>

typedef struct tool_command {
    const char *name;
    const char *help;
    int (*run)(int argc, char **argv);
} tool_command;

int cmd_inspect(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_genotype(int argc, char **argv);
int cmd_phantom(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_dicom2rtp(int argc, char **argv); /* with ECHOVIEW_HAVE_BRIDGE */
/* Genotype from a file, a published name (models/genotypes/NAME.yaml) or the one-line form;
 * layouts like "normal,reduce,normal,reduce". Print the error and return -1 on failure. */
int tool_load_genotype(const char *cmd, const char *spec, ev_genotype *out, char *name,
                       size_t name_size);
int tool_parse_layout(const char *cmd, const char *s, int *num_cells, bool *reduction);

/* Exit codes: 0 ok, 1 the work failed (bad input file, ...), 2 usage error; TOOL_CONTINUE: not
 * an exit code, the option parser's "go on". */
enum { TOOL_OK = 0, TOOL_FAILED = 1, TOOL_USAGE = 2, TOOL_CONTINUE = -1 };

/* Parses an integer option value in min..max; prints the error and returns false when invalid. */
bool tool_parse_int(const char *cmd, const char *option, const char *value, long min, long max,
                    long *out);
/* Parses a number option value in lo..hi; prints the error and returns false when invalid. */
bool tool_parse_float(const char *cmd, const char *option, const char *value, double lo, double hi,
                      float *out);

/* A command's options as a table: flags set (or clear) a bool, numbers are range checked, strings
 * are kept as given. */
typedef enum tool_option_kind {
    TOOL_OPT_FLAG,     /* no value; *(bool *)target = true */
    TOOL_OPT_FLAG_OFF, /* no value; *(bool *)target = false */
    TOOL_OPT_INT,      /* int *target, min..max */
    TOOL_OPT_FLOAT,    /* float *target, min..max */
    TOOL_OPT_STRING,   /* const char **target */
} tool_option_kind;

typedef struct tool_option {
    const char *name;
    tool_option_kind kind;
    void *target;
    double min, max;
    bool *seen; /* optional: set when the option is given */
} tool_option;

/* Table rows; the compound literals check the target's type. */
#define TOOL_FLAG(name, target)                               \
    {                                                         \
        (name), TOOL_OPT_FLAG, (bool *){(target)}, 0, 0, NULL \
    }
#define TOOL_FLAG_OFF(name, target)                               \
    {                                                             \
        (name), TOOL_OPT_FLAG_OFF, (bool *){(target)}, 0, 0, NULL \
    }
#define TOOL_INT(name, target, lo, hi)                            \
    {                                                             \
        (name), TOOL_OPT_INT, (int *){(target)}, (lo), (hi), NULL \
    }
#define TOOL_FLOAT(name, target, lo, hi, seen)                          \
    {                                                                   \
        (name), TOOL_OPT_FLOAT, (float *){(target)}, (lo), (hi), (seen) \
    }
#define TOOL_STRING(name, target)                                      \
    {                                                                  \
        (name), TOOL_OPT_STRING, (const char **){(target)}, 0, 0, NULL \
    }

/* Parses argv[1..]: --help/-h prints usage; the table's options are consumed; any other option
 * goes to other(ctx, option, value) (value NULL at the end of argv), which takes the value and
 * returns 0, or prints why it cannot (unknown, no value, bad value) and returns -1. Returns
 * TOOL_CONTINUE, or the status the command exits with at once (TOOL_OK after --help,
 * TOOL_USAGE after a bad option). */
int tool_parse_args(const char *cmd, const char *usage, const tool_option *options, int count,
                    int argc, char **argv,
                    int (*other)(void *ctx, const char *option, const char *value), void *ctx);
/* --layout normal,reduce,... or --layers N (the reference rule) into num_cells and reduction:
 * 1 consumed, 0 neither option, -1 bad value (the message is printed). */
int tool_parse_layout_option(const char *cmd, const char *option, const char *value, int *num_cells,
                             bool *reduction);
/* Consumes --model PATH, --backend B or --threads N at argv[*i] into model_path and opt (the
 * options of a command that runs a model): 1 consumed, 0 none of them, -1 bad value (the
 * message is printed). */
int tool_parse_plan_option(const char *cmd, int argc, char **argv, int *i, const char **model_path,
                           ev_plan_options *opt);
/* Loads a model or prints "echoview CMD: <message>" and returns NULL. */
ev_model *tool_load_model(const char *cmd, const char *path);
/* Prints a JSON value on one line (or indented) followed by a newline, and releases it. */
void tool_print_json(json_t *value, bool pretty);

#endif
