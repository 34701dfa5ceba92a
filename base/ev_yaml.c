/* ev_yaml.c: loading with limits, alias-refusing walks and typed scalars over libyaml's document
 * API (the rules are listed in ev_yaml.h). */
#include "ev_yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

struct ev_yaml_doc {
    yaml_document_t doc;
    char *source;
    size_t n_nodes;
    /* How often each node is referenced (the root once by the document), capped at 2: a node
     * referenced twice is the target of an alias. */
    unsigned char *refs;
    ev_yaml_error error;
};

static void set_error(ev_yaml_error *err, ev_yaml_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(ev_yaml_error *err, ev_yaml_status code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* ---- files ------------------------------------------------------------------------------- */

ev_yaml_status ev_yaml_read_file(const char *path, size_t max, char **out, size_t *len,
                                 ev_yaml_error *err)
{
    ev_yaml_status rc = EV_YAML_OK;
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    *out = NULL;
    *len = 0;
    if (fd < 0) {
        set_error(err, EV_YAML_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return EV_YAML_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_error(err, EV_YAML_ERR_IO, "%s: not a regular file", path);
        rc = EV_YAML_ERR_IO;
        goto out;
    }
    if (!(buf = malloc(max + 2))) {
        set_error(err, EV_YAML_ERR_NOMEM, "%s: out of memory", path);
        rc = EV_YAML_ERR_NOMEM;
        goto out;
    }
    /* one byte past max tells "exactly max" from "larger" */
    while (n <= max) {
        ssize_t got = read(fd, buf + n, max + 1 - n);
        if (got == 0)
            break;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            set_error(err, EV_YAML_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            rc = EV_YAML_ERR_IO;
            goto out;
        }
        n += (size_t)got;
    }
    if (n > max) {
        set_error(err, EV_YAML_ERR_TOO_LARGE, "%s: larger than %zu bytes", path, max);
        rc = EV_YAML_ERR_TOO_LARGE;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

ev_yaml_status ev_yaml_load_file(const char *path, ev_yaml_doc **out, ev_yaml_error *err)
{
    char *text;
    size_t len;
    ev_yaml_status rc = ev_yaml_read_file(path, EV_YAML_MAX_BYTES, &text, &len, err);

    *out = NULL;
    if (rc != EV_YAML_OK)
        return rc;
    rc = ev_yaml_load_text(text, len, path, out, err);
    free(text);
    return rc;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* libyaml's reader reports a byte offset, not a mark: count lines and characters up to it. */
static void offset_position(const char *text, size_t len, size_t offset, size_t *line,
                            size_t *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*column)++; /* continuation bytes belong to the character before them */
        }
    }
}

static void parser_error(const yaml_parser_t *parser, const char *text, size_t len,
                         const char *source, ev_yaml_error *err)
{
    size_t line = parser->problem_mark.line + 1, column = parser->problem_mark.column + 1;
    const char *problem = parser->problem ? parser->problem : "malformed document";

    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        set_error(err, EV_YAML_ERR_NOMEM, "%s: out of memory", source);
        return;
    case YAML_READER_ERROR:
        offset_position(text, len, parser->problem_offset, &line, &column);
        if (parser->problem_value >= 0)
            set_error(err, EV_YAML_ERR_SYNTAX, "%s:%zu:%zu: %s (0x%02X; the file must be UTF-8)",
                      source, line, column, problem, (unsigned)parser->problem_value);
        else
            set_error(err, EV_YAML_ERR_SYNTAX, "%s:%zu:%zu: %s (the file must be UTF-8)", source,
                      line, column, problem);
        return;
    case YAML_COMPOSER_ERROR:
        /* the composer's problem ("second occurrence") needs its context to be read */
        if (parser->context) {
            set_error(err, EV_YAML_ERR_SYNTAX, "%s:%zu:%zu: %s (%s at %zu:%zu)", source, line,
                      column, problem, parser->context, parser->context_mark.line + 1,
                      parser->context_mark.column + 1);
            return;
        }
        break;
    default:
        break;
    }
    set_error(err, EV_YAML_ERR_SYNTAX, "%s:%zu:%zu: %s", source, line, column, problem);
}

static yaml_node_t *node_at(const ev_yaml_doc *doc, int index)
{
    return index >= 1 && (size_t)index <= doc->n_nodes ? doc->doc.nodes.start + index - 1 : NULL;
}

static void count_ref(ev_yaml_doc *doc, int index)
{
    if (index >= 1 && (size_t)index <= doc->n_nodes && doc->refs[index - 1] < 2)
        doc->refs[index - 1]++;
}

/* Depth of every node reachable from the root, by an explicit stack (libyaml builds any depth
 * the input nests; this check must not recurse into it). Each node is entered once, so aliases
 * and cycles end the search instead of looping. */
static ev_yaml_status check_depth(ev_yaml_doc *doc, ev_yaml_error *err)
{
    struct entry {
        int index, depth;
    } *stack = malloc(sizeof *stack * (doc->n_nodes + 1));
    unsigned char *seen = calloc(doc->n_nodes + 1, 1);
    size_t top = 0;
    ev_yaml_status rc = EV_YAML_OK;

    if (!stack || !seen) {
        set_error(err, EV_YAML_ERR_NOMEM, "%s: out of memory", doc->source);
        rc = EV_YAML_ERR_NOMEM;
        goto out;
    }
    stack[top++] = (struct entry){1, 1};
    seen[1] = 1;
    while (top > 0) {
        struct entry e = stack[--top];
        yaml_node_t *node = node_at(doc, e.index);
        int children[2];

        if (e.depth > EV_YAML_MAX_DEPTH) {
            set_error(err, EV_YAML_ERR_LIMIT, "%s:%zu:%zu: nested deeper than %d levels",
                      doc->source, node->start_mark.line + 1, node->start_mark.column + 1,
                      EV_YAML_MAX_DEPTH);
            rc = EV_YAML_ERR_LIMIT;
            goto out;
        }
        if (node->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = node->data.sequence.items.start;
                 it < node->data.sequence.items.top; it++)
                if (node_at(doc, *it) && !seen[*it]) {
                    seen[*it] = 1;
                    stack[top++] = (struct entry){*it, e.depth + 1};
                }
        } else if (node->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
                 p < node->data.mapping.pairs.top; p++) {
                children[0] = p->key;
                children[1] = p->value;
                for (int c = 0; c < 2; c++)
                    if (node_at(doc, children[c]) && !seen[children[c]]) {
                        seen[children[c]] = 1;
                        stack[top++] = (struct entry){children[c], e.depth + 1};
                    }
            }
        }
    }
out:
    free(stack);
    free(seen);
    return rc;
}

ev_yaml_status ev_yaml_load_text(const char *text, size_t len, const char *source,
                                 ev_yaml_doc **out, ev_yaml_error *err)
{
    yaml_parser_t parser;
    yaml_document_t next;
    ev_yaml_doc *doc = NULL;
    ev_yaml_status rc = EV_YAML_OK;
    bool parser_ok = false, loaded = false;

    *out = NULL;
    if (len > EV_YAML_MAX_BYTES) {
        set_error(err, EV_YAML_ERR_TOO_LARGE, "%s: larger than %d bytes", source,
                  EV_YAML_MAX_BYTES);
        return EV_YAML_ERR_TOO_LARGE;
    }
    if (!(doc = calloc(1, sizeof *doc)) || !(doc->source = strdup(source)) ||
        !yaml_parser_initialize(&parser)) {
        set_error(err, EV_YAML_ERR_NOMEM, "%s: out of memory", source);
        rc = EV_YAML_ERR_NOMEM;
        goto out;
    }
    parser_ok = true;
    /* UTF-8 only: without this libyaml would also take UTF-16 after a byte-order mark */
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc->doc)) {
        parser_error(&parser, text, len, source, err);
        rc = err ? err->code : EV_YAML_ERR_SYNTAX;
        goto out;
    }
    loaded = true;
    doc->n_nodes = (size_t)(doc->doc.nodes.top - doc->doc.nodes.start);
    if (doc->n_nodes == 0) {
        set_error(err, EV_YAML_ERR_SCHEMA, "%s:1:1: the file is empty", source);
        rc = EV_YAML_ERR_SCHEMA;
        goto out;
    }
    if (doc->n_nodes > EV_YAML_MAX_NODES) {
        yaml_node_t *first_over = doc->doc.nodes.start + EV_YAML_MAX_NODES;
        set_error(err, EV_YAML_ERR_LIMIT, "%s:%zu:%zu: more than %d YAML nodes", source,
                  first_over->start_mark.line + 1, first_over->start_mark.column + 1,
                  EV_YAML_MAX_NODES);
        rc = EV_YAML_ERR_LIMIT;
        goto out;
    }
    /* One document per file: yaml_parser_load would quietly leave a second one unread. */
    if (!yaml_parser_load(&parser, &next)) {
        parser_error(&parser, text, len, source, err);
        rc = err ? err->code : EV_YAML_ERR_SYNTAX;
        goto out;
    }
    if (yaml_document_get_root_node(&next)) {
        set_error(err, EV_YAML_ERR_SYNTAX,
                  "%s:%zu:%zu: a second YAML document starts here; give one document per file",
                  source, next.start_mark.line + 1, next.start_mark.column + 1);
        yaml_document_delete(&next);
        rc = EV_YAML_ERR_SYNTAX;
        goto out;
    }
    yaml_document_delete(&next);

    if (!(doc->refs = calloc(doc->n_nodes, 1))) {
        set_error(err, EV_YAML_ERR_NOMEM, "%s: out of memory", source);
        rc = EV_YAML_ERR_NOMEM;
        goto out;
    }
    count_ref(doc, 1);
    for (yaml_node_t *node = doc->doc.nodes.start; node < doc->doc.nodes.top; node++) {
        if (node->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = node->data.sequence.items.start;
                 it < node->data.sequence.items.top; it++)
                count_ref(doc, *it);
        } else if (node->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
                 p < node->data.mapping.pairs.top; p++) {
                count_ref(doc, p->key);
                count_ref(doc, p->value);
            }
        }
    }
    if ((rc = check_depth(doc, err)) != EV_YAML_OK)
        goto out;
    *out = doc;
    doc = NULL;
out:
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (doc) {
        if (loaded)
            yaml_document_delete(&doc->doc);
        free(doc->refs);
        free(doc->source);
        free(doc);
    }
    return rc;
}

void ev_yaml_free(ev_yaml_doc *doc)
{
    if (!doc)
        return;
    yaml_document_delete(&doc->doc);
    free(doc->refs);
    free(doc->source);
    free(doc);
}

const char *ev_yaml_source(const ev_yaml_doc *doc) { return doc->source; }

const ev_yaml_node *ev_yaml_root(const ev_yaml_doc *doc) { return node_at(doc, 1); }

const ev_yaml_error *ev_yaml_doc_error(const ev_yaml_doc *doc) { return &doc->error; }

/* ---- nodes ------------------------------------------------------------------------------- */

ev_yaml_kind ev_yaml_node_kind(const ev_yaml_node *node)
{
    switch (node->type) {
    case YAML_SEQUENCE_NODE:
        return EV_YAML_SEQUENCE;
    case YAML_MAPPING_NODE:
        return EV_YAML_MAPPING;
    default:
        return EV_YAML_SCALAR;
    }
}

int ev_yaml_node_line(const ev_yaml_node *node) { return (int)node->start_mark.line + 1; }

int ev_yaml_node_column(const ev_yaml_node *node) { return (int)node->start_mark.column + 1; }

const char *ev_yaml_scalar(const ev_yaml_node *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static bool is_plain(const ev_yaml_node *node)
{
    return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool ev_yaml_is_null(const ev_yaml_node *node)
{
    const char *s = ev_yaml_scalar(node);

    return s && is_plain(node) && (s[0] == '\0' || !strcmp(s, "~") || !strcmp(s, "null"));
}

size_t ev_yaml_length(const ev_yaml_node *node)
{
    if (node->type == YAML_SEQUENCE_NODE)
        return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (node->type == YAML_MAPPING_NODE)
        return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    return 0;
}

bool ev_yaml_fail(ev_yaml_doc *doc, const ev_yaml_node *node, const char *fmt, ...)
{
    char msg[EV_YAML_ERROR_SIZE];
    va_list ap;

    if (doc->error.code != EV_YAML_OK)
        return false; /* the first failure is the one to report */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (node)
        set_error(&doc->error, EV_YAML_ERR_SCHEMA, "%s:%d:%d: %s", doc->source,
                  ev_yaml_node_line(node), ev_yaml_node_column(node), msg);
    else
        set_error(&doc->error, EV_YAML_ERR_SCHEMA, "%s: %s", doc->source, msg);
    return false;
}

/* ---- walking ----------------------------------------------------------------------------- */

static const ev_yaml_node *child(ev_yaml_doc *doc, const ev_yaml_node *parent, int index)
{
    const ev_yaml_node *node = node_at(doc, index);

    if (doc->error.code != EV_YAML_OK)
        return NULL;
    if (!node) {
        ev_yaml_fail(doc, parent, "malformed document");
        return NULL;
    }
    if (doc->refs[index - 1] > 1) {
        ev_yaml_fail(doc, node, "aliases are not supported");
        return NULL;
    }
    return node;
}

const ev_yaml_node *ev_yaml_item(ev_yaml_doc *doc, const ev_yaml_node *seq, size_t i)
{
    if (seq->type != YAML_SEQUENCE_NODE || i >= ev_yaml_length(seq)) {
        ev_yaml_fail(doc, seq, "no item %zu here", i);
        return NULL;
    }
    return child(doc, seq, seq->data.sequence.items.start[i]);
}

struct key_ref {
    const char *text;
    size_t pair;
};

static int compare_keys(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->text, y->text);
    return c ? c : (x->pair > y->pair) - (x->pair < y->pair);
}

/* Marks the pairs whose key repeats an earlier one: sorting keeps a mapping with many keys
 * linear-logarithmic (a hostile file may hold tens of thousands). */
static bool find_duplicates(ev_yaml_doc *doc, const ev_yaml_node *map, unsigned char *dup)
{
    struct key_ref *refs;
    size_t n = ev_yaml_length(map), m = 0;

    if (!(refs = malloc(sizeof *refs * (n ? n : 1))))
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k = ev_yaml_scalar(node_at(doc, map->data.mapping.pairs.start[i].key));
        if (k)
            refs[m++] = (struct key_ref){k, i};
    }
    qsort(refs, m, sizeof *refs, compare_keys);
    for (size_t i = 1; i < m; i++)
        if (!strcmp(refs[i].text, refs[i - 1].text))
            dup[refs[i].pair] = 1;
    free(refs);
    return true;
}

static void format_keys(char *out, size_t size, const char *const *keys)
{
    size_t used = 0;

    out[0] = '\0';
    for (int i = 0; keys[i] && used < size; i++) {
        int w = snprintf(out + used, size - used, "%s%s", i ? ", " : "", keys[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

bool ev_yaml_walk_mapping(ev_yaml_doc *doc, const ev_yaml_node *map, const char *what,
                          const char *const *keys, ev_yaml_pair_fn fn, void *data)
{
    size_t n;
    unsigned char *dup;
    bool ok = true;

    if (doc->error.code != EV_YAML_OK)
        return false;
    if (map->type != YAML_MAPPING_NODE)
        return ev_yaml_fail(doc, map, "%s must be a mapping", what);
    n = ev_yaml_length(map);
    if (!(dup = calloc(n ? n : 1, 1)) || !find_duplicates(doc, map, dup)) {
        free(dup);
        set_error(&doc->error, EV_YAML_ERR_NOMEM, "%s: out of memory", doc->source);
        return false;
    }
    for (size_t i = 0; ok && i < n; i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const ev_yaml_node *k = child(doc, map, pair->key), *v;
        const char *key;
        bool known = !keys;

        if (!k) {
            ok = false;
            break;
        }
        if (k->type != YAML_SCALAR_NODE) {
            ok = ev_yaml_fail(doc, k, "keys of %s must be strings", what);
            break;
        }
        key = (const char *)k->data.scalar.value;
        if (dup[i]) {
            ok = ev_yaml_fail(doc, k, "duplicate key '%s' in %s", key, what);
            break;
        }
        for (int j = 0; !known && keys[j]; j++)
            known = strcmp(keys[j], key) == 0;
        if (!known) {
            char list[EV_YAML_ERROR_SIZE / 2];
            format_keys(list, sizeof list, keys);
            ok = ev_yaml_fail(doc, k, "unknown key '%s' in %s (expected one of: %s)", key, what,
                              list);
            break;
        }
        /* the key is checked before its value is reached: an unknown key is the error to
         * report even when its value is shared */
        if (!(v = child(doc, map, pair->value))) {
            ok = false;
            break;
        }
        if (fn && !(ok = fn(doc, key, k, v, data)) && doc->error.code == EV_YAML_OK)
            ev_yaml_fail(doc, v, "bad value for '%s' in %s", key, what);
    }
    free(dup);
    return ok && doc->error.code == EV_YAML_OK;
}

const ev_yaml_node *ev_yaml_lookup(ev_yaml_doc *doc, const ev_yaml_node *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = ev_yaml_scalar(node_at(doc, p->key));
        if (k && strcmp(k, key) == 0)
            return child(doc, map, p->value);
    }
    return NULL;
}

bool ev_yaml_accept_any(ev_yaml_doc *doc, const ev_yaml_node *node)
{
    /* recursion is bounded: the load refused anything deeper than EV_YAML_MAX_DEPTH, and an
     * alias (the only way back up) is refused before it is followed */
    if (node->type == YAML_SEQUENCE_NODE) {
        for (size_t i = 0; i < ev_yaml_length(node); i++) {
            const ev_yaml_node *item = ev_yaml_item(doc, node, i);
            if (!item || !ev_yaml_accept_any(doc, item))
                return false;
        }
    } else if (node->type == YAML_MAPPING_NODE) {
        for (const yaml_node_pair_t *p = node->data.mapping.pairs.start;
             p < node->data.mapping.pairs.top; p++) {
            const ev_yaml_node *k = child(doc, node, p->key), *v;
            if (!k || !ev_yaml_accept_any(doc, k) || !(v = child(doc, node, p->value)) ||
                !ev_yaml_accept_any(doc, v))
                return false;
        }
    }
    return doc->error.code == EV_YAML_OK;
}

/* ---- typed scalars ----------------------------------------------------------------------- */

const char *ev_yaml_get_string(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name)
{
    const char *s = ev_yaml_scalar(node);

    if (!s) {
        ev_yaml_fail(doc, node, "'%s' must be a string", name);
        return NULL;
    }
    if (node->data.scalar.length != strlen(s)) {
        ev_yaml_fail(doc, node, "'%s' contains a NUL byte", name);
        return NULL;
    }
    for (const char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            ev_yaml_fail(doc, node, "'%s' contains a control character", name);
            return NULL;
        }
    return s;
}

const char *ev_yaml_get_nonempty_string(ev_yaml_doc *doc, const ev_yaml_node *node,
                                        const char *name)
{
    const char *s = ev_yaml_get_string(doc, node, name);

    if (s && !*s) {
        ev_yaml_fail(doc, node, "'%s' must not be empty", name);
        return NULL;
    }
    return s;
}

bool ev_yaml_get_int(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name, long min,
                     long max, long *out)
{
    const char *s = ev_yaml_scalar(node), *digits;
    char *end;
    long v;

    if (!s || !is_plain(node))
        return ev_yaml_fail(doc, node, "'%s' must be an integer", name);
    digits = s[0] == '-' ? s + 1 : s;
    if (*digits < '0' || *digits > '9')
        return ev_yaml_fail(doc, node, "'%s' must be an integer, not '%s'", name, s);
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end)
        return ev_yaml_fail(doc, node, "'%s' must be an integer, not '%s'", name, s);
    if (errno == ERANGE || v < min || v > max)
        return ev_yaml_fail(doc, node, "'%s' must be between %ld and %ld, not %s", name, min, max,
                            s);
    *out = v;
    return true;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

bool ev_yaml_get_double(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name, double min,
                        double max, double *out)
{
    const char *s = ev_yaml_scalar(node);
    char *end;
    double v;

    if (!s || !is_plain(node))
        return ev_yaml_fail(doc, node, "'%s' must be a number", name);
    /* a decimal point in the file is a point whatever LC_NUMERIC the process runs under */
    pthread_once(&c_locale_once, c_locale_init);
    if (!c_locale) {
        set_error(&doc->error, EV_YAML_ERR_NOMEM, "%s: out of memory", doc->source);
        return false;
    }
    /* one syntax, decimal: strtod alone would also take 0x10 (16), 0x1p4 and "infinity" */
    if (s[strspn(s, "0123456789+-.eE")] != '\0')
        return ev_yaml_fail(doc, node, "'%s' must be a decimal number, not '%s'", name, s);
    errno = 0;
    v = strtod_l(s, &end, c_locale);
    if (s[0] == '\0' || errno || *end || !isfinite(v))
        return ev_yaml_fail(doc, node, "'%s' must be a number, not '%s'", name, s);
    if (v < min || v > max)
        return ev_yaml_fail(doc, node, "'%s' must be between %g and %g, not %s", name, min, max, s);
    *out = v;
    return true;
}

bool ev_yaml_get_bool(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name, bool *out)
{
    const char *s = ev_yaml_scalar(node);

    if (!s || !is_plain(node))
        return ev_yaml_fail(doc, node, "'%s' must be true or false", name);
    if (!strcmp(s, "true"))
        *out = true;
    else if (!strcmp(s, "false"))
        *out = false;
    else
        return ev_yaml_fail(doc, node, "'%s' must be true or false, not '%s'", name, s);
    return true;
}

void ev_yaml_write_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}
