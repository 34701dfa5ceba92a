/* genotype.c: DARTS genotypes: the 8 primitives, the published one-line `Genotype(...)` form,
 * the YAML form, validation with errors that say what and where, and writers for both forms. */
#include "yaml_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

static int ev_primitive_parse(const char *name)
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

/* "SOURCE:LINE:COLUMN: " for messages the engine's own parsers write. */
static void node_where(const ev_yaml_doc *doc, const ev_yaml_node *node, char *out, size_t size)
{
    snprintf(out, size, "%s:%d:%d: ", ev_yaml_source(doc), ev_yaml_node_line(node),
             ev_yaml_node_column(node));
}

static int yaml_edges(ev_yaml_doc *doc, const ev_yaml_node *seq, ev_cell_genotype *cell,
                      const char *which, ev_error *err)
{
    if (ev_yaml_node_kind(seq) != EV_YAML_SEQUENCE) {
        ev_yaml_fail(doc, seq, "genotype: '%s' must be a list of [op, input] pairs", which);
        return ev_fail_yaml_doc(err, doc);
    }
    int count = (int)ev_yaml_length(seq);
    for (int e = 0; e < count; e++) {
        const ev_yaml_node *edge = ev_yaml_item(doc, seq, (size_t)e), *opn = NULL, *inn = NULL;
        if (!edge)
            return ev_fail_yaml_doc(err, doc);
        if (e >= EV_GENOTYPE_MAX_EDGES) {
            ev_yaml_fail(doc, edge, "genotype: %s has more than %d edges", which,
                         EV_GENOTYPE_MAX_EDGES);
            return ev_fail_yaml_doc(err, doc);
        }
        static const char *const edge_keys[] = {"op", "input", NULL};
        if (ev_yaml_node_kind(edge) == EV_YAML_SEQUENCE && ev_yaml_length(edge) == 2) {
            if (!(opn = ev_yaml_item(doc, edge, 0)) || !(inn = ev_yaml_item(doc, edge, 1)))
                return ev_fail_yaml_doc(err, doc);
        } else if (ev_yaml_node_kind(edge) == EV_YAML_MAPPING) {
            if (!ev_yaml_walk_mapping(doc, edge, "a genotype edge", edge_keys, NULL, NULL))
                return ev_fail_yaml_doc(err, doc);
            opn = ev_yaml_lookup(doc, edge, "op");
            inn = ev_yaml_lookup(doc, edge, "input");
        }
        if (!opn || !inn || !ev_yaml_scalar(opn)) {
            ev_yaml_fail(doc, edge,
                         "genotype: %s edge %d must be [op, input] or {op: ..., input: ...}", which,
                         e);
            return ev_fail_yaml_doc(err, doc);
        }
        int op = ev_primitive_parse(ev_yaml_scalar(opn));
        if (op < 0) {
            char where[160], what[48];
            node_where(doc, opn, where, sizeof where);
            snprintf(what, sizeof what, "genotype: %s edge %d: ", which, e);
            strncat(where, what, sizeof where - strlen(where) - 1);
            return fail_unknown_op(err, where, ev_yaml_scalar(opn));
        }
        long input;
        char what[64];
        snprintf(what, sizeof what, "%s edge %d input", which, e);
        if (!ev_yaml_get_int(doc, inn, what, 0, 2 + e / 2 - 1, &input))
            return ev_fail_yaml_doc(err, doc);
        cell->edges[e].op = (ev_primitive)op;
        cell->edges[e].input = (int)input;
    }
    if (count % 2) {
        ev_yaml_fail(doc, seq, "genotype: %s has %d edges; each node needs exactly two", which,
                     count);
        return ev_fail_yaml_doc(err, doc);
    }
    cell->num_nodes = count / 2;
    return EV_OK;
}

static int yaml_concat(ev_yaml_doc *doc, const ev_yaml_node *node, ev_cell_genotype *cell,
                       const char *which, ev_error *err)
{
    cell->num_concat = 0;
    if (ev_yaml_node_kind(node) == EV_YAML_SCALAR) { /* "range(2, 6)" */
        ev_genotype tmp;
        memset(&tmp, 0, sizeof tmp);
        lexer lx = {.text = ev_yaml_scalar(node), .p = ev_yaml_scalar(node)};
        int rc = lex_next(&lx, err);
        if (!rc)
            rc = parse_concat(&lx, &tmp.normal, which, err);
        if (rc) {
            char where[160];
            node_where(doc, node, where, sizeof where);
            return ev_fail_prefix(err, "%s", where);
        }
        cell->num_concat = tmp.normal.num_concat;
        memcpy(cell->concat, tmp.normal.concat, sizeof cell->concat);
        return EV_OK;
    }
    if (ev_yaml_node_kind(node) != EV_YAML_SEQUENCE) {
        ev_yaml_fail(doc, node, "genotype: %s_concat must be a list of node indices", which);
        return ev_fail_yaml_doc(err, doc);
    }
    for (size_t i = 0; i < ev_yaml_length(node); i++) {
        const ev_yaml_node *item = ev_yaml_item(doc, node, i);
        long v;
        char what[64];
        if (!item)
            return ev_fail_yaml_doc(err, doc);
        if (cell->num_concat >= EV_GENOTYPE_MAX_NODES + 2) {
            ev_yaml_fail(doc, node, "genotype: %s_concat is too long", which);
            return ev_fail_yaml_doc(err, doc);
        }
        snprintf(what, sizeof what, "%s_concat entry", which);
        if (!ev_yaml_get_int(doc, item, what, 0, EV_GENOTYPE_MAX_NODES + 1, &v))
            return ev_fail_yaml_doc(err, doc);
        cell->concat[cell->num_concat++] = (int)v;
    }
    return EV_OK;
}

int ev_genotype_from_yaml_node(ev_yaml_doc *doc, const ev_yaml_node *node, ev_genotype *out,
                               ev_error *err)
{
    static const char *const keys[] = {"normal", "normal_concat", "reduce",   "reduce_concat",
                                       "name",   "source",        "genotype", NULL};
    ev_genotype g;
    memset(&g, 0, sizeof g);
    int rc;
    if (ev_yaml_node_kind(node) == EV_YAML_SCALAR) {
        rc = parse_published(ev_yaml_scalar(node), &g, err);
        if (rc) {
            char where[160];
            node_where(doc, node, where, sizeof where);
            return ev_fail_prefix(err, "%s", where);
        }
    } else if (ev_yaml_node_kind(node) == EV_YAML_MAPPING) {
        if (!ev_yaml_walk_mapping(doc, node, "genotype", keys, NULL, NULL))
            return ev_fail_yaml_doc(err, doc);
        const ev_yaml_node *name = ev_yaml_lookup(doc, node, "name"),
                           *source = ev_yaml_lookup(doc, node, "source"),
                           *genotype = ev_yaml_lookup(doc, node, "genotype");
        if ((name && !ev_yaml_get_string(doc, name, "name")) ||
            (source && !ev_yaml_get_string(doc, source, "source")))
            return ev_fail_yaml_doc(err, doc);
        if (genotype) { /* a genotype file may wrap the mapping: {name: ..., genotype: {...}} */
            for (int k = 0; k < 4; k++)
                if (ev_yaml_lookup(doc, node, keys[k])) {
                    ev_yaml_fail(doc, genotype,
                                 "genotype: give the cells either under 'genotype' or beside it");
                    return ev_fail_yaml_doc(err, doc);
                }
            return ev_genotype_from_yaml_node(doc, genotype, out, err);
        }
        for (int k = 0; k < 4; k++) {
            const ev_yaml_node *v = ev_yaml_lookup(doc, node, keys[k]);
            if (!v) {
                ev_yaml_fail(doc, node, "genotype: key '%s' is missing", keys[k]);
                return ev_fail_yaml_doc(err, doc);
            }
            ev_cell_genotype *cell = k < 2 ? &g.normal : &g.reduce;
            const char *which = k < 2 ? "normal" : "reduce";
            rc = (k % 2 == 0) ? yaml_edges(doc, v, cell, which, err)
                              : yaml_concat(doc, v, cell, which, err);
            if (rc)
                return rc;
        }
    } else {
        ev_yaml_fail(doc, node, "genotype: expected a Genotype(...) string or a mapping");
        return ev_fail_yaml_doc(err, doc);
    }
    if ((rc = ev_genotype_validate(&g, err)))
        return ev_fail_prefix(err, "%s: ", ev_yaml_source(doc));
    *out = g;
    return EV_OK;
}

/* The one-line form starts with Genotype( or NAME = Genotype(; anything else is YAML. */
static bool is_published_form(const char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    const char *paren = strchr(text, '('), *colon = strchr(text, ':');
    return paren && (!colon || paren < colon);
}

static int genotype_from_yaml_text(const char *text, size_t len, const char *source,
                                   ev_genotype *out, ev_error *err)
{
    ev_yaml_doc *doc = NULL;
    ev_yaml_error yerr = {0};
    if (ev_yaml_load_text(text, len, source, &doc, &yerr) != EV_YAML_OK)
        return ev_fail_yaml(err, &yerr);
    int rc = ev_genotype_from_yaml_node(doc, ev_yaml_root(doc), out, err);
    ev_yaml_free(doc);
    return rc;
}

int ev_genotype_parse(const char *text, ev_genotype *out, ev_error *err)
{
    if (!text)
        return ev_fail(err, EV_ERR_INVALID, "genotype: no text");
    if (!text[strspn(text, " \t\r\n")])
        return ev_fail(err, EV_ERR_INVALID, "genotype: empty document");
    if (is_published_form(text)) {
        ev_genotype g;
        memset(&g, 0, sizeof g);
        const char *s = text;
        while (isspace((unsigned char)*s))
            s++;
        int rc = parse_published(s, &g, err);
        if (!rc)
            rc = ev_genotype_validate(&g, err);
        if (!rc)
            *out = g;
        return rc;
    }
    return genotype_from_yaml_text(text, strlen(text), "genotype", out, err);
}

int ev_genotype_load_file(const char *path, ev_genotype *out, ev_error *err)
{
    char *buf;
    size_t n;
    ev_yaml_error yerr = {0};
    if (ev_yaml_read_file(path, EV_YAML_MAX_BYTES, &buf, &n, &yerr) != EV_YAML_OK)
        return ev_fail_yaml(err, &yerr);
    int rc;
    if (is_published_form(buf)) {
        rc = ev_genotype_parse(buf, out, err);
        if (rc)
            ev_fail_prefix(err, "%s: ", path);
    } else {
        rc = genotype_from_yaml_text(buf, n, path, out, err);
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
