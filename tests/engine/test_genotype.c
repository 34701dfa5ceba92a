/* test_genotype.c: the one-line published form and the YAML form parse to the same genotype,
 * round-trip through both writers, and every malformed input gets an error saying what and
 * where. */
#include "ev_genotype.h"
#include "test_util.h"

#include <stdlib.h>

static const char *darts_v2 =
    "DARTS_V2 = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";

static const char *darts_v2_yaml =
    "normal:\n"
    "  - [sep_conv_3x3, 0]\n  - [sep_conv_3x3, 1]\n  - {op: sep_conv_3x3, input: 0}\n"
    "  - [sep_conv_3x3, 1]\n  - [sep_conv_3x3, 1]\n  - [skip_connect, 0]\n"
    "  - [skip_connect, 0]\n  - [dil_conv_3x3, 2]\n"
    "normal_concat: [2, 3, 4, 5]\n"
    "reduce:\n"
    "  - [max_pool_3x3, 0]\n  - [max_pool_3x3, 1]\n  - [skip_connect, 2]\n  - [max_pool_3x3, 1]\n"
    "  - [max_pool_3x3, 0]\n  - [skip_connect, 2]\n  - [skip_connect, 2]\n  - [max_pool_3x3, 1]\n"
    "reduce_concat: range(2, 6)\n";

static void check_forms(void)
{
    ev_genotype a, b, c;
    ev_error err = {0};
    int rc = ev_genotype_parse(darts_v2, &a, &err);
    CHECK(rc == 0 && a.normal.num_nodes == 4 && a.reduce.edges[7].op == EV_PRIM_MAX_POOL_3X3 &&
              a.reduce.edges[7].input == 1 && a.normal.num_concat == 4 && a.normal.concat[3] == 5,
          "one-line form with NAME = prefix and range(2, 6) (%s)", rc ? err.message : "ok");
    rc = ev_genotype_parse(darts_v2_yaml, &b, &err);
    CHECK(rc == 0 && ev_genotype_equal(&a, &b), "YAML form gives the same genotype (%s)",
          rc ? err.message : "ok");
    char *line = ev_genotype_to_string(&a);
    rc = ev_genotype_parse(line, &c, &err);
    CHECK(rc == 0 && ev_genotype_equal(&a, &c), "one-line writer round-trips");
    free(line);
    char *yaml = ev_genotype_to_yaml(&a, "DARTS_V2");
    rc = ev_genotype_parse(yaml, &c, &err);
    CHECK(rc == 0 && ev_genotype_equal(&a, &c), "YAML writer round-trips (%s)",
          rc ? err.message : "ok");
    free(yaml);
    rc = ev_genotype_parse("Genotype(reduce_concat=[2], reduce=[(\"max_pool_3x3\", 0), "
                           "(\"none\", 1),], normal_concat=[2], normal=[('skip_connect', 1), "
                           "('avg_pool_3x3', 0)])",
                           &c, &err);
    CHECK(rc == 0 && c.normal.num_nodes == 1 && c.reduce.edges[1].op == EV_PRIM_NONE &&
              c.reduce.num_concat == 1,
          "fields in any order, double quotes, trailing comma, one-node cells (%s)",
          rc ? err.message : "ok");
}

static void check_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"", "empty document"},
        {"  Genotype", "expected '(' after Genotype, found 'end of text'"},
        {"Genotype(normal=[('sep_conv_7x7', 0), ('skip_connect', 1)], normal_concat=[2], "
         "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
         "normal edge 0: unknown op 'sep_conv_7x7'"},
        {"Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2], "
         "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
         "normal edge 1 (node 2): input index 2 out of range 0..1"},
        {"Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[('max_pool_3x3', 0), "
         "('max_pool_3x3', 1)], reduce_concat=[2])",
         "normal has 1 edges; each node needs exactly two"},
        {"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2, 3], "
         "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
         "normal_concat entry 1 is 3, out of range 0..2"},
        {"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2, 2], "
         "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])",
         "normal_concat repeats 2"},
        {"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2])",
         "field 'reduce' is missing"},
        {"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal=[], "
         "normal_concat=[2])",
         "field 'normal' given twice"},
        {"Genotype(normal=[('sep_conv_3x3', 0) ('sep_conv_3x3', 1)])",
         "expected ',' between edges"},
        {"Genotype(normal=[('sep_conv_3x3, 0)])", "unterminated string"},
        {"Genotype(normal=[('sep_conv_3x3', x)])", "expected an input index, found 'x'"},
        {"Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[]) trailing",
         "unexpected 'trailing' after the closing ')'"},
        {"Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[])",
         "normal cell has 0 nodes"},
        {"Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=range(3, 3), "
         "reduce=[], reduce_concat=[])",
         "range(3, 3) is empty"},
        {"Genotype(colour=[])", "unknown field 'colour'"},
        {"Genotype(normal=[('sep_conv_3x3', 99999999999)])", "number out of range"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3, 1]]\nnormal_concat: [2]\nreduce: "
         "[[max_pool_3x3, 0], [bogus_op, 1]]\nreduce_concat: [2]\n",
         "genotype:3:30:"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3, 1]]\nnormal_concat: [2]\nreduce: "
         "[[max_pool_3x3, 0], [bogus_op, 1]]\nreduce_concat: [2]\n",
         "unknown op 'bogus_op'"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3, 5]]\nnormal_concat: [2]\nreduce: []\n"
         "reduce_concat: [2]\n",
         "genotype:1:44: 'normal edge 1 input' must be between 0 and 1, not 5"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3, 1]]\nnormal_concat: [2]\nreduce: "
         "[[max_pool_3x3, 0], [max_pool_3x3, 1]]\n",
         "key 'reduce_concat' is missing"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3, 1]]\nnormal_concat: [2]\ncolour: red\n",
         "unknown key 'colour'"},
        {"normal: [[sep_conv_3x3, 0]\n", "genotype:2:1: did not find expected ',' or ']'"},
        {"normal: &e [[sep_conv_3x3, 0], [sep_conv_3x3, 1]]\nnormal_concat: [2]\nreduce: *e\n"
         "reduce_concat: [2]\n",
         "genotype:1:9: aliases are not supported"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3, 1]]\nnormal_concat: [2]\n---\nreduce: []\n",
         "genotype:3:1: a second YAML document starts here"},
        {"name: \xff\nnormal: []\n", "genotype:1:7: invalid leading UTF-8 octet"},
        {"normal: [[sep_conv_3x3, 0], [sep_conv_3x3]]\nnormal_concat: [2]\nreduce: []\n"
         "reduce_concat: [2]\n",
         "normal edge 1 must be [op, input]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ev_genotype g;
        ev_error err = {0};
        char label[64];
        snprintf(label, sizeof label, "malformed genotype %zu", i);
        CHECK_ERR(ev_genotype_parse(cases[i].text, &g, &err), err, cases[i].want, label);
    }
    ev_genotype g;
    ev_error err = {0};
    CHECK_ERR(ev_genotype_load_file("/nonexistent/genotype.yaml", &g, &err), err,
              "/nonexistent/genotype.yaml: cannot open", "missing genotype file");
}

int main(void)
{
    check_forms();
    check_errors();
    return test_finish();
}
