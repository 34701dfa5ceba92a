/* tools.h: the subcommands of the `echoview` command line and the small helpers they share
 * (option parsing, model loading with a message, JSON printing). */
#ifndef ECHOVIEW_TOOLS_H
#define ECHOVIEW_TOOLS_H

#include "ev_internal.h"

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


/* Exit codes: 0 ok, 1 the work failed (bad input file, ...), 2 usage error. */
enum { TOOL_OK = 0, TOOL_FAILED = 1, TOOL_USAGE = 2 };

/* Parses a positive integer option value; prints the error and returns false when invalid. */
bool tool_parse_int(const char *cmd, const char *option, const char *value, long min, long max,
                    long *out);
/* Consumes --backend B or --threads N at argv[*i] into opt: 1 consumed, 0 not a plan option,
 * -1 bad value (the message is printed). */
int tool_parse_plan_option(const char *cmd, int argc, char **argv, int *i, ev_plan_options *opt);
/* Loads a model or prints "echoview CMD: <message>" and returns NULL. */
ev_model *tool_load_model(const char *cmd, const char *path);
/* Prints a JSON value on one line (or indented) followed by a newline, and releases it. */
void tool_print_json(json_t *value, bool pretty);

#endif
