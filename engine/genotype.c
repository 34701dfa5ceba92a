/* genotype.c: DARTS genotypes: the 8 primitives, the published one-line `Genotype(...)` form,
 * the YAML form, validation with errors that say what and where, and writers for both forms. */
#include "yaml_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const primitive_names[EV_NUM_PRIMITIVES] = {
    "none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
};

const char *ev_primitive_name(ev_primitive p)
{
    return (unsigned)p < EV_NUM_PRIMITIVES ? primitive_names[p] : "?";
}

int ev_primitive_parse(const char *name)
{
    for (int i = 0; i < EV_NUM_PRIMITIVES; i++)
        if (strcmp(name, primitive_names[i]) == 0)
            return i;
    return -1;
}

static int fail_unknown_op(ev_error *err, const char *where, const char *name)
{
    return ev_fail(err, EV_ERR_INVALID,
                   "%sunknown op '%s' (known: none, max_pool_3x3, avg_pool_3x3, skip_connect, "
                   "sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5)",
                   where, name);
}

static int validate_cell(const ev_cell_genotype *c, const char *which, ev_error *err)
{
    if (c->num_nodes < 1 || c->num_nodes > EV_GENOTYPE_MAX_NODES)
        return ev_fail(
            err, EV_ERR_INVALID,
            "genotype: %s cell has %d nodes (%d edges); need 1..%d nodes, two edges each", which,
            c->num_nodes, 2 * c->num_nodes, EV_GENOTYPE_MAX_NODES);
    for (int e = 0; e < 2 * c->num_nodes; e++) {
        int node = e / 2;
        if ((unsigned)c->edges[e].op >= EV_NUM_PRIMITIVES)
            return ev_fail(err, EV_ERR_INVALID, "genotype: %s edge %d: invalid op", which, e);
        if (c->edges[e].input < 0 || c->edges[e].input > node + 1)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: %s edge %d (node %d): input index %d out of range 0..%d "
                           "(0 = cell k-2, 1 = cell k-1, 2.. = earlier nodes)",
                           which, e, node + 2, c->edges[e].input, node + 1);
    }
    if (c->num_concat < 1)
        return ev_fail(err, EV_ERR_INVALID, "genotype: %s_concat is empty", which);
    for (int i = 0; i < c->num_concat; i++) {
        if (c->concat[i] < 0 || c->concat[i] >= c->num_nodes + 2)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: %s_concat entry %d is %d, out of range 0..%d", which, i,
                           c->concat[i], c->num_nodes + 1);
        for (int j = 0; j < i; j++)
            if (c->concat[j] == c->concat[i])
                return ev_fail(err, EV_ERR_INVALID, "genotype: %s_concat repeats %d", which,
                               c->concat[i]);
    }
    return EV_OK;
}

int ev_genotype_validate(const ev_genotype *g, ev_error *err)
{
    int rc = validate_cell(&g->normal, "normal", err);
    return rc ? rc : validate_cell(&g->reduce, "reduce", err);
}

bool ev_genotype_equal(const ev_genotype *a, const ev_genotype *b)
{
    const ev_cell_genotype *ca[2] = {&a->normal, &a->reduce}, *cb[2] = {&b->normal, &b->reduce};
    for (int k = 0; k < 2; k++) {
        if (ca[k]->num_nodes != cb[k]->num_nodes || ca[k]->num_concat != cb[k]->num_concat)
            return false;
        for (int e = 0; e < 2 * ca[k]->num_nodes; e++)
            if (ca[k]->edges[e].op != cb[k]->edges[e].op ||
                ca[k]->edges[e].input != cb[k]->edges[e].input)
                return false;
        for (int i = 0; i < ca[k]->num_concat; i++)
            if (ca[k]->concat[i] != cb[k]->concat[i])
                return false;
    }
    return true;
}

/* ---- the published one-line form ------------------------------------------------------------ */

typedef enum { TOK_END, TOK_IDENT, TOK_STRING, TOK_INT, TOK_PUNCT } tok_kind;

typedef struct lexer {
    const char *text, *p;
    tok_kind kind;
    char value[64];
    long number;
    int column; /* 1-based column of the current token */
} lexer;

static int lex_next(lexer *lx, ev_error *err)
{
    while (*lx->p && isspace((unsigned char)*lx->p))
        lx->p++;
    lx->column = (int)(lx->p - lx->text) + 1;
    const char *s = lx->p;
    if (!*s) {
        lx->kind = TOK_END;
        strcpy(lx->value, "end of text");
        return EV_OK;
    }
    if (isalpha((unsigned char)*s) || *s == '_') {
        size_t n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_')
            n++;
        if (n >= sizeof lx->value)
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: name too long", lx->column);
        memcpy(lx->value, s, n);
        lx->value[n] = 0;
        lx->p = s + n;
        lx->kind = TOK_IDENT;
        return EV_OK;
    }
    if (*s == '\'' || *s == '"') {
        char q = *s;
        size_t n = 1;
        while (s[n] && s[n] != q)
            n++;
        if (!s[n])
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: unterminated string",
                           lx->column);
        if (n - 1 >= sizeof lx->value)
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: string too long", lx->column);
        memcpy(lx->value, s + 1, n - 1);
        lx->value[n - 1] = 0;
        lx->p = s + n + 1;
        lx->kind = TOK_STRING;
        return EV_OK;
    }
    if (isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || v < -1000000 || v > 1000000)
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: number out of range",
                           lx->column);
        lx->number = v;
        snprintf(lx->value, sizeof lx->value, "%ld", v);
        lx->p = end;
        lx->kind = TOK_INT;
        return EV_OK;
    }
    if (strchr("()[],=", *s)) {
        lx->value[0] = *s;
        lx->value[1] = 0;
        lx->p = s + 1;
        lx->kind = TOK_PUNCT;
        return EV_OK;
    }
    return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: unexpected character '%c'",
                   lx->column, *s);
}

static bool lex_is(const lexer *lx, char punct)
{
    return lx->kind == TOK_PUNCT && lx->value[0] == punct;
}

static int lex_expect(lexer *lx, char punct, const char *context, ev_error *err)
{
    if (!lex_is(lx, punct))
        return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: expected '%c' %s, found '%s'",
                       lx->column, punct, context, lx->value);
    return lex_next(lx, err);
}

/* [('op', idx), ...] */
static int parse_edge_list(lexer *lx, ev_cell_genotype *cell, const char *which, ev_error *err)
{
    int rc = lex_expect(lx, '[', "to open the edge list", err);
    int count = 0;
    while (!rc && !lex_is(lx, ']')) {
        if (count > 0 && (rc = lex_expect(lx, ',', "between edges", err)))
            break;
        if (lex_is(lx, ']'))
            break; /* trailing comma */
        if (count >= EV_GENOTYPE_MAX_EDGES)
            return ev_fail(err, EV_ERR_INVALID, "genotype: %s has more than %d edges", which,
                           EV_GENOTYPE_MAX_EDGES);
        if ((rc = lex_expect(lx, '(', "to open an edge ('op', input)", err)))
            break;
        if (lx->kind != TOK_STRING && lx->kind != TOK_IDENT)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: column %d: %s edge %d: expected an op name, found '%s'",
                           lx->column, which, count, lx->value);
        int op = ev_primitive_parse(lx->value);
        if (op < 0) {
            char where[96];
            snprintf(where, sizeof where, "genotype: column %d: %s edge %d: ", lx->column, which,
                     count);
            return fail_unknown_op(err, where, lx->value);
        }
        if ((rc = lex_next(lx, err)) || (rc = lex_expect(lx, ',', "after the op name", err)))
            break;
        if (lx->kind != TOK_INT)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: column %d: %s edge %d: expected an input index, found '%s'",
                           lx->column, which, count, lx->value);
        cell->edges[count].op = (ev_primitive)op;
        cell->edges[count].input = (int)lx->number;
        if ((rc = lex_next(lx, err)) || (rc = lex_expect(lx, ')', "to close the edge", err)))
            break;
        count++;
    }
    if (rc)
        return rc;
    if (count % 2)
        return ev_fail(err, EV_ERR_INVALID,
                       "genotype: %s has %d edges; each node needs exactly two", which, count);
    cell->num_nodes = count / 2;
    return lex_next(lx, err); /* past ']' */
}

/* [2, 3, 4, 5] or range(2, 6) */
static int parse_concat(lexer *lx, ev_cell_genotype *cell, const char *which, ev_error *err)
{
    int rc;
    cell->num_concat = 0;
    if (lx->kind == TOK_IDENT && strcmp(lx->value, "range") == 0) {
        long a, b;
        if ((rc = lex_next(lx, err)) || (rc = lex_expect(lx, '(', "after range", err)))
            return rc;
        if (lx->kind != TOK_INT)
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: range() needs integers",
                           lx->column);
        a = lx->number;
        if ((rc = lex_next(lx, err)) || (rc = lex_expect(lx, ',', "in range(a, b)", err)))
            return rc;
        if (lx->kind != TOK_INT)
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: range() needs integers",
                           lx->column);
        b = lx->number;
        if ((rc = lex_next(lx, err)) || (rc = lex_expect(lx, ')', "to close range", err)))
            return rc;
        if (b - a < 1 || b - a > EV_GENOTYPE_MAX_NODES + 2)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: %s_concat range(%ld, %ld) is empty or too long", which, a, b);
        for (long v = a; v < b; v++)
            cell->concat[cell->num_concat++] = (int)v;
        return EV_OK;
    }
    if ((rc = lex_expect(lx, '[', "to open the concat list", err)))
        return rc;
    while (!lex_is(lx, ']')) {
        if (cell->num_concat > 0 && (rc = lex_expect(lx, ',', "between concat entries", err)))
            return rc;
        if (lex_is(lx, ']'))
            break;
        if (lx->kind != TOK_INT)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: column %d: %s_concat: expected an integer, found '%s'",
                           lx->column, which, lx->value);
        if (cell->num_concat >= EV_GENOTYPE_MAX_NODES + 2)
            return ev_fail(err, EV_ERR_INVALID, "genotype: %s_concat is too long", which);
        cell->concat[cell->num_concat++] = (int)lx->number;
        if ((rc = lex_next(lx, err)))
            return rc;
    }
    return lex_next(lx, err);
}

static int parse_published(const char *text, ev_genotype *g, ev_error *err)
{
    lexer lx = {.text = text, .p = text};
    int rc = lex_next(&lx, err);
    if (rc)
        return rc;
    /* optional "NAME =" prefix, as in the reference genotypes.py */
    if (lx.kind == TOK_IDENT && strcmp(lx.value, "Genotype") != 0) {
        if ((rc = lex_next(&lx, err)) ||
            (rc = lex_expect(&lx, '=', "after the genotype's name", err)))
            return rc;
    }
    if (lx.kind != TOK_IDENT || strcmp(lx.value, "Genotype") != 0)
        return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: expected 'Genotype(', found '%s'",
                       lx.column, lx.value);
    if ((rc = lex_next(&lx, err)) || (rc = lex_expect(&lx, '(', "after Genotype", err)))
        return rc;
    bool seen[4] = {false, false, false, false};
    static const char *const keys[4] = {"normal", "normal_concat", "reduce", "reduce_concat"};
    int fields = 0;
    while (!lex_is(&lx, ')')) {
        if (fields > 0 && (rc = lex_expect(&lx, ',', "between fields", err)))
            return rc;
        if (lex_is(&lx, ')'))
            break;
        if (lx.kind != TOK_IDENT)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: column %d: expected a field name, found '%s'", lx.column,
                           lx.value);
        int key = -1;
        for (int k = 0; k < 4; k++)
            if (strcmp(lx.value, keys[k]) == 0)
                key = k;
        if (key < 0)
            return ev_fail(err, EV_ERR_INVALID,
                           "genotype: column %d: unknown field '%s' (expected normal, "
                           "normal_concat, reduce, reduce_concat)",
                           lx.column, lx.value);
        if (seen[key])
            return ev_fail(err, EV_ERR_INVALID, "genotype: column %d: field '%s' given twice",
                           lx.column, keys[key]);
        seen[key] = true;
        if ((rc = lex_next(&lx, err)) || (rc = lex_expect(&lx, '=', "after the field name", err)))
            return rc;
        ev_cell_genotype *cell = key < 2 ? &g->normal : &g->reduce;
        const char *which = key < 2 ? "normal" : "reduce";
        rc = (key % 2 == 0) ? parse_edge_list(&lx, cell, which, err)
                            : parse_concat(&lx, cell, which, err);
        if (rc)
            return rc;
        fields++;
    }
    if ((rc = lex_next(&lx, err)))
        return rc;
    if (lx.kind != TOK_END)
        return ev_fail(err, EV_ERR_INVALID,
                       "genotype: column %d: unexpected '%s' after the closing ')'", lx.column,
                       lx.value);
    for (int k = 0; k < 4; k++)
        if (!seen[k])
            return ev_fail(err, EV_ERR_INVALID, "genotype: field '%s' is missing", keys[k]);
    return EV_OK;
}

/* ---- the YAML form -------------------------------------------------------------------------- */

static int yaml_edges(yaml_document_t *doc, yaml_node_t *seq, const char *source,
                      ev_cell_genotype *cell, const char *which, ev_error *err)
{
    if (seq->type != YAML_SEQUENCE_NODE)
        return ev_yaml_fail(err, source, seq, "genotype: '%s' must be a list of [op, input] pairs",
                            which);
    int count = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, count++) {
        yaml_node_t *edge = yaml_document_get_node(doc, *it);
        if (count >= EV_GENOTYPE_MAX_EDGES)
            return ev_yaml_fail(err, source, edge, "genotype: %s has more than %d edges", which,
                                EV_GENOTYPE_MAX_EDGES);
        yaml_node_t *opn = NULL, *inn = NULL;
        if (edge->type == YAML_SEQUENCE_NODE &&
            edge->data.sequence.items.top - edge->data.sequence.items.start == 2) {
            opn = yaml_document_get_node(doc, edge->data.sequence.items.start[0]);
            inn = yaml_document_get_node(doc, edge->data.sequence.items.start[1]);
        } else if (edge->type == YAML_MAPPING_NODE) {
            opn = ev_yaml_map_get(doc, edge, "op");
            inn = ev_yaml_map_get(doc, edge, "input");
        }
        if (!opn || !inn || !ev_yaml_scalar(opn))
            return ev_yaml_fail(err, source, edge,
                                "genotype: %s edge %d must be [op, input] or {op: ..., input: ...}",
                                which, count);
        int op = ev_primitive_parse(ev_yaml_scalar(opn));
        if (op < 0) {
            char where[160];
            snprintf(where, sizeof where, "%s:%zu:%zu: genotype: %s edge %d: ", source,
                     opn->start_mark.line + 1, opn->start_mark.column + 1, which, count);
            return fail_unknown_op(err, where, ev_yaml_scalar(opn));
        }
        long input;
        char what[64];
        snprintf(what, sizeof what, "genotype: %s edge %d input", which, count);
        int rc = ev_yaml_int(inn, what, source, 0, 2 + count / 2 - 1, &input, err);
        if (rc)
            return rc;
        cell->edges[count].op = (ev_primitive)op;
        cell->edges[count].input = (int)input;
    }
    if (count % 2)
        return ev_yaml_fail(err, source, seq,
                            "genotype: %s has %d edges; each node needs exactly two", which, count);
    cell->num_nodes = count / 2;
    return EV_OK;
}

static int yaml_concat(yaml_document_t *doc, yaml_node_t *node, const char *source,
                       ev_cell_genotype *cell, const char *which, ev_error *err)
{
    cell->num_concat = 0;
    if (node->type == YAML_SCALAR_NODE) { /* "range(2, 6)" */
        ev_genotype tmp;
        memset(&tmp, 0, sizeof tmp);
        lexer lx = {.text = ev_yaml_scalar(node), .p = ev_yaml_scalar(node)};
        int rc = lex_next(&lx, err);
        if (!rc)
            rc = parse_concat(&lx, &tmp.normal, which, err);
        if (rc)
            return ev_fail_prefix(err, "%s:%zu:%zu: ", source, node->start_mark.line + 1,
                                  node->start_mark.column + 1);
        cell->num_concat = tmp.normal.num_concat;
        memcpy(cell->concat, tmp.normal.concat, sizeof cell->concat);
        return EV_OK;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return ev_yaml_fail(err, source, node, "genotype: %s_concat must be a list of node indices",
                            which);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top;
         it++) {
        if (cell->num_concat >= EV_GENOTYPE_MAX_NODES + 2)
            return ev_yaml_fail(err, source, node, "genotype: %s_concat is too long", which);
        long v;
        char what[64];
        snprintf(what, sizeof what, "genotype: %s_concat entry", which);
        int rc = ev_yaml_int(yaml_document_get_node(doc, *it), what, source, 0,
                             EV_GENOTYPE_MAX_NODES + 1, &v, err);
        if (rc)
            return rc;
        cell->concat[cell->num_concat++] = (int)v;
    }
    return EV_OK;
}

int ev_genotype_from_yaml_node(yaml_document_t *doc, yaml_node_t *node, const char *source,
                               ev_genotype *out, ev_error *err)
{
    ev_genotype g;
    memset(&g, 0, sizeof g);
    int rc;
    if (node->type == YAML_SCALAR_NODE) {
        rc = parse_published(ev_yaml_scalar(node), &g, err);
        if (rc)
            return ev_fail_prefix(err, "%s:%zu:%zu: ", source, node->start_mark.line + 1,
                                  node->start_mark.column + 1);
    } else if (node->type == YAML_MAPPING_NODE) {
        yaml_node_t *genotype = ev_yaml_map_get(doc, node, "genotype");
        if (genotype) /* a genotype file may wrap the mapping: {name: ..., genotype: {...}} */
            return ev_genotype_from_yaml_node(doc, genotype, source, out, err);
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
             p++) {
            const char *key = ev_yaml_scalar(yaml_document_get_node(doc, p->key));
            if (!key ||
                (strcmp(key, "normal") && strcmp(key, "normal_concat") && strcmp(key, "reduce") &&
                 strcmp(key, "reduce_concat") && strcmp(key, "name") && strcmp(key, "source")))
                return ev_yaml_fail(err, source, yaml_document_get_node(doc, p->key),
                                    "genotype: unknown key '%s' (expected normal, normal_concat, "
                                    "reduce, reduce_concat, name, source)",
                                    key ? key : "?");
        }
        static const char *const keys[4] = {"normal", "normal_concat", "reduce", "reduce_concat"};
        for (int k = 0; k < 4; k++) {
            yaml_node_t *v = ev_yaml_map_get(doc, node, keys[k]);
            if (!v)
                return ev_yaml_fail(err, source, node, "genotype: key '%s' is missing", keys[k]);
            ev_cell_genotype *cell = k < 2 ? &g.normal : &g.reduce;
            const char *which = k < 2 ? "normal" : "reduce";
            rc = (k % 2 == 0) ? yaml_edges(doc, v, source, cell, which, err)
                              : yaml_concat(doc, v, source, cell, which, err);
            if (rc)
                return rc;
        }
    } else {
        return ev_yaml_fail(err, source, node,
                            "genotype: expected a Genotype(...) string or a mapping");
    }
    if ((rc = ev_genotype_validate(&g, err)))
        return ev_fail_prefix(err, "%s: ", source);
    *out = g;
    return EV_OK;
}

int ev_genotype_parse(const char *text, ev_genotype *out, ev_error *err)
{
    if (!text)
        return ev_fail(err, EV_ERR_INVALID, "genotype: no text");
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    /* The one-line form starts with Genotype( or NAME = Genotype(; anything else is YAML. */
    const char *paren = strchr(s, '(');
    const char *colon = strchr(s, ':');
    if (paren && (!colon || paren < colon)) {
        ev_genotype g;
        memset(&g, 0, sizeof g);
        int rc = parse_published(s, &g, err);
        if (!rc)
            rc = ev_genotype_validate(&g, err);
        if (!rc)
            *out = g;
        return rc;
    }
    yaml_document_t doc;
    int rc = ev_yaml_load(&doc, text, strlen(text), "genotype", err);
    if (rc)
        return rc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        rc = ev_fail(err, EV_ERR_INVALID, "genotype: empty document");
    else
        rc = ev_genotype_from_yaml_node(&doc, root, "genotype", out, err);
    yaml_document_delete(&doc);
    return rc;
}

int ev_genotype_load_file(const char *path, ev_genotype *out, ev_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    bool too_big = buf && n == (1 << 20) - 1 && fgetc(f) != EOF;
    fclose(f);
    if (!buf)
        return ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
    if (too_big) {
        free(buf);
        return ev_fail(err, EV_ERR_FORMAT, "%s: genotype file larger than 1 MiB", path);
    }
    buf[n] = 0;
    int rc;
    const char *s = buf;
    while (isspace((unsigned char)*s))
        s++;
    const char *paren = strchr(s, '('), *colon = strchr(s, ':');
    if (paren && (!colon || paren < colon)) {
        rc = ev_genotype_parse(s, out, err);
        if (rc)
            ev_fail_prefix(err, "%s: ", path);
    } else {
        yaml_document_t doc;
        rc = ev_yaml_load(&doc, buf, n, path, err);
        if (!rc) {
            yaml_node_t *root = yaml_document_get_root_node(&doc);
            rc = root ? ev_genotype_from_yaml_node(&doc, root, path, out, err)
                      : ev_fail(err, EV_ERR_INVALID, "%s: empty document", path);
            yaml_document_delete(&doc);
        }
    }
    free(buf);
    return rc;
}

/* ---- writers ----------------------------------------------------------------------------------- */

typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) EV_PRINTF(2, 3);
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)(n > 0 ? n : 0);
        char *s = realloc(b->s, cap);
        if (!s || n < 0) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static char *sb_finish(strbuf *b)
{
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

char *ev_genotype_to_string(const ev_genotype *g)
{
    strbuf b = {0};
    sb_printf(&b, "Genotype(");
    const ev_cell_genotype *cells[2] = {&g->normal, &g->reduce};
    const char *names[2] = {"normal", "reduce"};
    for (int k = 0; k < 2; k++) {
        sb_printf(&b, "%s%s=[", k ? ", " : "", names[k]);
        for (int e = 0; e < 2 * cells[k]->num_nodes; e++)
            sb_printf(&b, "%s('%s', %d)", e ? ", " : "", ev_primitive_name(cells[k]->edges[e].op),
                      cells[k]->edges[e].input);
        sb_printf(&b, "], %s_concat=[", names[k]);
        for (int i = 0; i < cells[k]->num_concat; i++)
            sb_printf(&b, "%s%d", i ? ", " : "", cells[k]->concat[i]);
        sb_printf(&b, "]");
    }
    sb_printf(&b, ")");
    return sb_finish(&b);
}

char *ev_genotype_to_yaml(const ev_genotype *g, const char *name)
{
    strbuf b = {0};
    if (name)
        sb_printf(&b, "name: %s\n", name);
    const ev_cell_genotype *cells[2] = {&g->normal, &g->reduce};
    const char *names[2] = {"normal", "reduce"};
    for (int k = 0; k < 2; k++) {
        sb_printf(&b, "%s:\n", names[k]);
        for (int e = 0; e < 2 * cells[k]->num_nodes; e++)
            sb_printf(&b, "  - [%s, %d]\n", ev_primitive_name(cells[k]->edges[e].op),
                      cells[k]->edges[e].input);
        sb_printf(&b, "%s_concat: [", names[k]);
        for (int i = 0; i < cells[k]->num_concat; i++)
            sb_printf(&b, "%s%d", i ? ", " : "", cells[k]->concat[i]);
        sb_printf(&b, "]\n");
    }
    return sb_finish(&b);
}
