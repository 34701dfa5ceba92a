/* test_network.c: network assembly: parameter and multiply-add counts equal the reference
 * implementation's (tests/fixtures/param_counts.json, made with PyTorch), the layout rule,
 * odd input sizes rejected with a message that names a size that works, the auxiliary head. */
#include "ev_graph.h"
#include "ev_safetensors.h"
#include "test_util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *root;

static int load_genotype(const char *name, ev_genotype *g)
{
    char path[2048];
    ev_error err = {0};
    snprintf(path, sizeof path, "%s/models/genotypes/%s.yaml", root, name);
    int rc = ev_genotype_load_file(path, g, &err);
    if (rc)
        printf("  %s\n", err.message);
    return rc;
}

static void check_param_counts(void)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/tests/fixtures/param_counts.json", root);
    json_error_t jerr;
    json_t *list = json_load_file(path, 0, &jerr);
    CHECK(json_is_array(list), "param_counts.json loads (%s)", jerr.text);
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        ev_net_config cfg = {0};
        const char *gname = json_string_value(json_object_get(row, "genotype"));
        if (load_genotype(gname, &cfg.genotype)) {
            CHECK(0, "genotype %s", gname);
            continue;
        }
        cfg.init_channels = (int)json_integer_value(json_object_get(row, "init_channels"));
        json_t *layers = json_object_get(row, "layers"), *layout = json_object_get(row, "layout");
        char desc[64];
        if (layers) {
            cfg.num_cells = (int)json_integer_value(layers);
            ev_layout_from_layers(cfg.num_cells, cfg.reduction);
            snprintf(desc, sizeof desc, "layers %d", cfg.num_cells);
        } else {
            size_t j;
            json_t *c;
            desc[0] = 0;
            json_array_foreach(layout, j, c)
            {
                cfg.reduction[j] = !strcmp(json_string_value(c), "reduce");
                strcat(desc, cfg.reduction[j] ? "R" : "N");
            }
            cfg.num_cells = (int)json_array_size(layout);
        }
        cfg.in_channels = (int)json_integer_value(json_object_get(row, "in_channels"));
        cfg.num_classes = (int)json_integer_value(json_object_get(row, "classes"));
        cfg.input_height = cfg.input_width = (int)json_integer_value(json_object_get(row, "input"));
        ev_net *net = NULL;
        ev_error err = {0};
        int rc = ev_net_create(&cfg, 1, false, &net, &err);
        int64_t want_p = json_integer_value(json_object_get(row, "params"));
        int64_t want_m = json_integer_value(json_object_get(row, "macs"));
        int64_t got_p = rc ? -1 : ev_net_count_params(net);
        int64_t got_m = rc ? -1 : ev_net_count_macs(net);
        CHECK(got_p == want_p && got_m == want_m,
              "%s C=%d %s in=%d classes=%d at %d px: params %lld (reference %lld), macs %lld "
              "(reference %lld)%s%s",
              gname, cfg.init_channels, desc, cfg.in_channels, cfg.num_classes, cfg.input_width,
              (long long)got_p, (long long)want_p, (long long)got_m, (long long)want_m,
              rc ? " " : "", rc ? err.message : "");
        ev_net_free(net);
    }
    json_decref(list);
}

static void base_config(ev_net_config *cfg, int size)
{
    memset(cfg, 0, sizeof *cfg);
    load_genotype("DARTS_V2", &cfg->genotype);
    cfg->init_channels = 8;
    cfg->num_cells = 4;
    cfg->reduction[1] = cfg->reduction[3] = true;
    cfg->in_channels = 1;
    cfg->num_classes = 14;
    cfg->input_width = cfg->input_height = size;
}

static int last_cell_rf(const char *genotype_text, int cells, int size)
{
    ev_net_config cfg;
    base_config(&cfg, size);
    ev_error err = {0};
    if (genotype_text && ev_genotype_parse(genotype_text, &cfg.genotype, &err) != EV_OK)
        return -2;
    cfg.num_cells = cells;
    memset(cfg.reduction, 0, sizeof cfg.reduction);
    for (int c = 0; c < cells; c++)
        cfg.reduction[c] = c % 2 == 1;
    ev_net *net = NULL;
    if (ev_net_create(&cfg, 1, false, &net, &err) != EV_OK)
        return -3;
    int rf = -4;
    for (int i = 0; i < net->graph.num_nodes; i++)
        if (net->graph.nodes[i].op == EV_OP_GAP)
            rf = ev_graph_receptive_field(&net->graph, net->graph.nodes[i].inputs[0]);
    ev_net_free(net);
    return rf;
}

/* Receptive fields worked out by hand (extent r, step j between neighbouring units):
 * - skip-only normal cell after the 3x3 stem: r = 3.
 * - dil_conv_5x5 chain (node 2 = dil5(s1), node k+1 = dil5(node k)): each op adds
 *   (5-1) * dilation 2 = 8 at j = 1, so nodes 2..5 reach 11, 19, 27, 35: r = 35.
 * - DARTS_V2 [normal, reduce, normal, reduce]: cell 0 ends at 11 (two sep 3x3 = +4, then a
 *   dil 3x3 = +4), the reduce cell's stride-2 3x3 max pool gives 13 at j = 2, cell 2 adds
 *   sep 3x3 (+8 at j = 2) and dil 3x3 (+8): 29, the last reduce cell's pool: 33. */
static void check_receptive_field(void)
{
    const char *skips =
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
        "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
        "('skip_connect', 1)], normal_concat=[2, 3, 4, 5], reduce=[('skip_connect', 0), "
        "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
        "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2, 3, 4, "
        "5])";
    const char *chain =
        "Genotype(normal=[('dil_conv_5x5', 1), ('skip_connect', 0), ('dil_conv_5x5', 2), "
        "('skip_connect', 0), ('dil_conv_5x5', 3), ('skip_connect', 0), ('dil_conv_5x5', 4), "
        "('skip_connect', 0)], normal_concat=[2, 3, 4, 5], reduce=[('skip_connect', 0), "
        "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
        "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2, 3, 4, "
        "5])";
    int rf = last_cell_rf(skips, 1, 32);
    CHECK(rf == 3, "skip-only normal cell: receptive field %d, want 3", rf);
    rf = last_cell_rf(chain, 1, 32);
    CHECK(rf == 35, "dil_conv_5x5 chain: receptive field %d, want 35", rf);
    rf = last_cell_rf(NULL, 4, 96);
    CHECK(rf == 33, "DARTS_V2 NRNR: receptive field %d, want 33", rf);
}

static void check_layout_rule(void)
{
    static const struct {
        int layers;
        const char *want;
    } cases[] = {{2, "RR"}, {3, "NRR"}, {4, "NRRN"}, {8, "NNRNNRNN"}, {20, "NNNNNNRNNNNNNRNNNNNN"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool red[EV_MAX_CELLS] = {0};
        char got[EV_MAX_CELLS + 1] = {0};
        ev_layout_from_layers(cases[i].layers, red);
        for (int c = 0; c < cases[i].layers; c++)
            got[c] = red[c] ? 'R' : 'N';
        CHECK(!strcmp(got, cases[i].want), "layers %d -> %s (want %s)", cases[i].layers, got,
              cases[i].want);
    }
}

static void check_odd_sizes(void)
{
    ev_net_config cfg;
    ev_net *net = NULL;
    ev_error err = {0};
    base_config(&cfg, 34); /* 34 -> 17 at the second reduction */
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err,
              "use sizes that are multiples of 4 (e.g. 36x36)", "input 34x34 with two reductions");
    base_config(&cfg, 33);
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "reduction cell 1 sees 33x33",
              "input 33x33");
    base_config(&cfg, 36);
    cfg.input_width = 40;
    int rc = ev_net_create(&cfg, 1, false, &net, &err);
    CHECK(rc == 0 && net->graph.nodes[net->graph.logits].shape.c == 14,
          "non-square 40x36 input builds (%s)", rc ? err.message : "ok");
    ev_net_free(net);
    net = NULL;
    base_config(&cfg, 0);
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "out of range", "input 0x0");
    base_config(&cfg, 32);
    cfg.init_channels = 0;
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "init_channels 0", "C = 0");
    base_config(&cfg, 32);
    cfg.genotype.normal.edges[3].input = 3;
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "input index 3 out of range 0..2",
              "edge reading a later node");
}

static void check_auxiliary(void)
{
    ev_net_config cfg;
    base_config(&cfg, 32);
    cfg.num_cells = 8;
    memset(cfg.reduction, 0, sizeof cfg.reduction);
    ev_layout_from_layers(8, cfg.reduction);
    ev_net *plain = NULL, *aux = NULL;
    ev_error err = {0};
    int rc = ev_net_create(&cfg, 1, false, &plain, &err);
    cfg.auxiliary = true;
    cfg.drop_path_prob = 0.2f;
    rc |= ev_net_create(&cfg, 2, true, &aux, &err);
    CHECK(rc == 0, "networks with and without the auxiliary head build (%s)",
          rc ? err.message : "ok");
    if (rc)
        goto out;
    CHECK(ev_net_count_params(plain) == ev_net_count_params(aux),
          "the auxiliary head is excluded from the parameter count (%lld)",
          (long long)ev_net_count_params(aux));
    CHECK(ev_net_find_param(aux, "auxiliary_head.features.5.weight") != NULL &&
              ev_net_find_param(aux, "auxiliary_head.classifier.weight")->shape[1] == 768,
          "auxiliary head tensors carry the reference names");
    /* training step with the head and drop-path: loss includes 0.4 * auxiliary loss */
    ev_net_init_weights(aux, 7);
    float input[2 * 32 * 32];
    uint64_t rng = 3;
    for (int i = 0; i < 2 * 32 * 32; i++)
        input[i] = ev_rng_normal(&rng);
    int32_t labels[2] = {3, 11};
    float loss_aux = 0, loss_plain = 0;
    ev_net_zero_grad(aux);
    rc = ev_net_forward(aux, input, true, &err);
    rc |= ev_net_backward(aux, labels, 0.4f, &loss_aux, &err);
    ev_param *head = ev_net_find_param(aux, "auxiliary_head.classifier.bias");
    double head_grad = 0;
    for (size_t i = 0; i < head->numel; i++)
        head_grad += fabs(head->grad[i]);
    CHECK(rc == 0 && head_grad > 0, "auxiliary head gets gradients in training (%g)", head_grad);
    rc = ev_net_backward(aux, labels, 0.0f, &loss_plain, &err);
    CHECK(rc == 0 && loss_aux > loss_plain, "loss with the auxiliary term %.4f > without %.4f",
          loss_aux, loss_plain);
    /* a checkpoint with the head loads into an inference network without it */
    char path[] = "/tmp/ev_test_aux_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    rc = ev_net_save_weights(aux, path, &err);
    ev_safetensors st = {0};
    rc |= ev_safetensors_read(path, &st, &err);
    rc |= ev_net_load_weights(plain, &st, &err);
    CHECK(rc == 0, "weights with an auxiliary head load into a network without one (%s)",
          rc ? err.message : "ok");
    ev_safetensors_free(&st);
    remove(path);
out:
    ev_net_free(plain);
    ev_net_free(aux);
}

static void check_small_aux_rejected(void)
{
    ev_net_config cfg;
    base_config(&cfg, 8); /* the head sits after cell 2 and would see 4x4 */
    cfg.auxiliary = true;
    ev_net *net = NULL;
    ev_error err = {0};
    CHECK_ERR(ev_net_create(&cfg, 1, false, &net, &err), err, "needs at least 8x8",
              "auxiliary head on a 4x4 map");
}

int main(int argc, char **argv)
{
    root = argc > 1 ? argv[1] : ".";
    check_param_counts();
    check_layout_rule();
    check_odd_sizes();
    check_auxiliary();
    check_small_aux_rejected();
    check_receptive_field();
    return test_finish();
}
