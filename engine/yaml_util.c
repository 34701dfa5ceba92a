/* yaml_util.c: libyaml document helpers with file:line:column errors. */
#include "yaml_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int ev_yaml_load(yaml_document_t *doc, const char *text, size_t len, const char *source,
                 ev_error *err)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return ev_fail(err, EV_ERR_NOMEM, "%s: cannot initialise the YAML parser", source);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = EV_OK;
    if (!yaml_parser_load(&parser, doc)) {
        rc = ev_fail(err, EV_ERR_INVALID, "%s:%zu:%zu: YAML error: %s%s%s", source,
                     parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "malformed document",
                     parser.context ? " " : "", parser.context ? parser.context : "");
    }
    yaml_parser_delete(&parser);
    return rc;
}

yaml_node_t *ev_yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = ev_yaml_scalar(yaml_document_get_node(doc, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

const char *ev_yaml_scalar(yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

int ev_yaml_fail(ev_error *err, const char *source, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[EV_ERROR_MESSAGE_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (node)
        return ev_fail(err, EV_ERR_INVALID, "%s:%zu:%zu: %s", source, node->start_mark.line + 1,
                       node->start_mark.column + 1, msg);
    return ev_fail(err, EV_ERR_INVALID, "%s: %s", source, msg);
}

int ev_yaml_int(yaml_node_t *node, const char *what, const char *source, long min, long max,
                long *out, ev_error *err)
{
    const char *s = ev_yaml_scalar(node);
    if (!s || !*s)
        return ev_yaml_fail(err, source, node, "%s: expected an integer", what);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end)
        return ev_yaml_fail(err, source, node, "%s: '%s' is not an integer", what, s);
    if (v < min || v > max)
        return ev_yaml_fail(err, source, node, "%s: %ld out of range %ld..%ld", what, v, min, max);
    *out = v;
    return EV_OK;
}

int ev_yaml_float(yaml_node_t *node, const char *what, const char *source, double *out,
                  ev_error *err)
{
    const char *s = ev_yaml_scalar(node);
    if (!s || !*s)
        return ev_yaml_fail(err, source, node, "%s: expected a number", what);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return ev_yaml_fail(err, source, node, "%s: '%s' is not a finite number", what, s);
    *out = v;
    return EV_OK;
}
