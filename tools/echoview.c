/* echoview.c: the `echoview` command line: one binary, git-style subcommands, thin over the
 * libraries. Each subcommand lives in its own file and prints its own --help. */
#include "tools.h"

#include <stdio.h>
#include <string.h>

static const tool_command commands[] = {
    {"inspect", "print a model's network summary, parameter count and multiply-adds", cmd_inspect},
    {"classify", "classify image files (PNG/PGM) with a model; one JSON object per file",
     cmd_classify},
    {"bench", "time inference on a backend (the paper's method: 100 frames after warm-up)",
     cmd_bench},
    {"genotype", "parse, validate and convert a genotype (one-line form or YAML)", cmd_genotype},
    {"phantom", "render a synthetic echo dataset (frames + manifest.csv) with the phantom scanner",
     cmd_phantom},
    {"train", "train a DARTS network from scratch on a dataset; writes a model bundle", cmd_train},
    {"search", "DARTS architecture search: the supernet's cells for a dataset and input size",
     cmd_search},
    {"eval", "evaluate a model on a dataset: metrics, per-view table, confusion matrix", cmd_eval},
    {"adapt", "re-estimate a model's BatchNorm statistics on unlabelled frames (AdaBN)", cmd_adapt},
    {"export", "export a model to ONNX", cmd_export},
    {"experiment", "the paper's studies: accuracy vs input size, data fraction, views, quality",
     cmd_experiment},
#ifdef ECHOVIEW_HAVE_FLEET
    {"fleet", "map the streams of a shared echoviewd config to the shards of a fleet", cmd_fleet},
#endif
#ifdef ECHOVIEW_HAVE_BRIDGE
    {"dicom2rtp", "play DICOM cine loops in real time as RTP (raw/h264/jpeg) and write the SDP",
     cmd_dicom2rtp},
#endif
};

static void usage(FILE *f)
{
    fprintf(f, "usage: echoview <command> [options]   (echoview <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\necho view classification with DARTS cells, version %s\n", EV_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("echoview %s\n", EV_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "echoview: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
