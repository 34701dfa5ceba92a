/* cmd_inspect.c: `echoview inspect`: the network summary of a model bundle: layout, channels
 * feature-map size and receptive field per cell, trainable parameters and multiply-adds at the
 * model's input. */
#include "ev_bundle.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: echoview inspect --model DIR|model.yaml [--json]\n"
    "  Prints the layout, the channels, feature-map size and receptive field (input pixels one\n"
    "  output position sees) of every cell, the trainable parameter count (auxiliary head\n"
    "  excluded, as the reference counts) and the multiply-adds for one frame at the model's\n"
    "  input size. A last cell whose receptive field is much smaller than the input only sees\n"
    "  local texture before the global average pool. Then the bundle's `training:` record as\n"
    "  model.yaml holds it (command line, data, source commit, date, frames per split, the\n"
    "  bundle fine-tuned from, adaptation), its patient lists as counts; --json gives it as\n"
    "  the text \"training\".\n";

/* The top-level `training:` block of the bundle's model.yaml as text, each split's patient
 * list shortened to its count (a real split lists hundreds); NULL when it has none. */
static char *training_record(const char *model_path)
{
    char path[4096];
    ev_error err = {0};
    FILE *f = ev_bundle_path(model_path, NULL, path, sizeof path, &err) ? NULL : fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out) {
        fclose(f);
        return NULL;
    }
    char line[8192];
    bool in = false, found = false;
    while (fgets(line, sizeof line, f)) {
        if (line[0] != ' ' && line[0] != '\t') {
            in = !strncmp(line, "training:", 9);
            found |= in;
            continue;
        }
        if (!in)
            continue;
        char *list = strstr(line, ": [");
        if (!strncmp(line, "      ", 6) && list && line[6] != ' ') {
            int count = 0; /* patients: names are quoted, count the opening quotes / 2 */
            for (char *c = list + 3; *c; c++)
                count += *c == '"' && (c[-1] != '\\');
            fprintf(out, "%.*s: %d patients\n", (int)(list - line), line, count / 2);
        } else {
            fputs(line, out);
        }
    }
    fclose(f);
    fclose(out);
    if (!found) {
        free(text);
        return NULL;
    }
    return text;
}

int cmd_inspect(int argc, char **argv)
{
    const char *model_path = NULL;
    bool as_json = false;
    const tool_option options[] = {
        TOOL_STRING("--model", &model_path),
        TOOL_FLAG("--json", &as_json),
    };
    const tool_parser parser = {.cmd = "inspect",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .required = TOOL_REQUIRED("--model")};
    int status;
    ev_model *m = tool_parse_model_args(&parser, argc, argv, &status);
    if (!m)
        return status;
    const ev_net *net = ev_model_network(m);
    const ev_net_config *cfg = &net->cfg;
    const ev_graph *g = &net->graph;
    const int num_classes = ev_model_num_classes(m);
    const long long params = ev_model_num_params(m), macs = ev_model_num_macs(m);
    int width, height, channels;
    ev_model_input_shape(m, &width, &height, &channels);
    const bool darts = cfg->arch == EV_ARCH_DARTS;
    char *genotype = darts ? ev_genotype_to_string(&cfg->genotype) : NULL;
    json_t *cells = json_array();
    for (int i = 0; i < g->num_nodes; i++) {
        const ev_node *n = &g->nodes[i];
        int cell;
        char rest;
        if (n->op != EV_OP_CONCAT || sscanf(n->tag, "cells.%d%c", &cell, &rest) != 1)
            continue;
        /* C of the cell: its output concatenates num_concat states of C channels each */
        const ev_cell_genotype *cg =
            cfg->reduction[cell] ? &cfg->genotype.reduce : &cfg->genotype.normal;
        json_array_append_new(cells,
                              json_pack("{s:i, s:s, s:i, s:i, s:i, s:i, s:i}", "index", cell,
                                        "type", cfg->reduction[cell] ? "reduce" : "normal",
                                        "channels", n->shape.c / cg->num_concat, "out_channels",
                                        n->shape.c, "height", n->shape.h, "width", n->shape.w,
                                        "receptive_field", ev_graph_receptive_field(g, i)));
    }
    size_t idx;
    json_t *c;
    json_t *classes = json_array();
    for (int i = 0; i < num_classes; i++)
        json_array_append_new(classes, json_string(ev_model_class_name(m, i)));
    json_t *out = json_pack("{s:s, s:{s:i, s:i, s:i}, s:i, s:o, s:s, s:i, s:i, s:o, s:I, s:I}",
                            "name", ev_model_name(m), "input", "width", width, "height", height,
                            "channels", channels, "num_classes", num_classes, "classes", classes,
                            "genotype", genotype ? genotype : "", "init_channels",
                            cfg->init_channels, "stem_channels", 3 * cfg->init_channels, "cells",
                            cells, "params", (json_int_t)params, "macs", (json_int_t)macs);
    json_object_set_new(out, "arch", json_string(ev_arch_name(cfg->arch)));
    char *training = training_record(model_path);
    if (training)
        json_object_set_new(out, "training", json_string(training));
    if (as_json) {
        tool_print_json(out, true);
    } else {
        printf("model        %s\n", ev_model_name(m));
        printf("input        %dx%d, %d channel%s\n", width, height, channels,
               channels > 1 ? "s" : "");
        printf("classes      %d\n", num_classes);
        if (!darts) {
            printf("arch         %s (torchvision definition)\n", ev_arch_name(cfg->arch));
        } else {
            printf("genotype     %s\n", genotype ? genotype : "?");
            printf("stem         conv3x3 -> %d channels, %dx%d\n", 3 * cfg->init_channels, width,
                   height);
        }
        json_array_foreach(cells, idx, c) printf(
            "cell %-7d %-6s C=%-4lld out %lld channels, %lldx%lld, receptive field %lld px\n",
            (int)json_integer_value(json_object_get(c, "index")),
            json_string_value(json_object_get(c, "type")),
            (long long)json_integer_value(json_object_get(c, "channels")),
            (long long)json_integer_value(json_object_get(c, "out_channels")),
            (long long)json_integer_value(json_object_get(c, "width")),
            (long long)json_integer_value(json_object_get(c, "height")),
            (long long)json_integer_value(json_object_get(c, "receptive_field")));
        printf("head         global average pool -> linear %d\n", num_classes);
        printf("params       %lld\n", params);
        printf("macs         %lld\n", macs);
        if (training)
            printf("training\n%s", training);
        json_decref(out);
    }
    free(training);
    free(genotype);
    ev_model_free(m);
    return TOOL_OK;
}
