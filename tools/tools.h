/* tools.h: the subcommands of the `echoview` command line (one file each); what they share is in
 * common.h. */
#ifndef ECHOVIEW_TOOLS_H
#define ECHOVIEW_TOOLS_H

#include "common.h"

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
int cmd_adapt(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_dicom2rtp(int argc, char **argv); /* with ECHOVIEW_HAVE_BRIDGE */
int cmd_fleet(int argc, char **argv);     /* with ECHOVIEW_HAVE_FLEET */

#endif
