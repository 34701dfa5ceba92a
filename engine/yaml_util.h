/* yaml_util.h: small helpers over libyaml's document API shared by the genotype and model.yaml
 * readers: typed scalar access with errors that name the file, line and column. */
#ifndef EV_YAML_UTIL_H
#define EV_YAML_UTIL_H

#include "ev_genotype.h"

#include <yaml.h>

/* Loads a whole YAML document from memory; returns EV_OK or a message with line and column. */
int ev_yaml_load(yaml_document_t *doc, const char *text, size_t len, const char *source,
                 ev_error *err);
/* Looks up key in a mapping node; NULL if absent. */
yaml_node_t *ev_yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key);
const char *ev_yaml_scalar(yaml_node_t *node); /* NULL unless a scalar */
int ev_yaml_int(yaml_node_t *node, const char *what, const char *source, long min, long max,
                long *out, ev_error *err);
int ev_yaml_float(yaml_node_t *node, const char *what, const char *source, double *out,
                  ev_error *err);
/* Fails with "source:line:col: what" for a node. */
int ev_yaml_fail(ev_error *err, const char *source, const yaml_node_t *node, const char *fmt, ...)
    EV_PRINTF(4, 5);
/* Genotype from a YAML mapping node (normal, normal_concat, reduce, reduce_concat) or a scalar
 * holding the one-line published form. */
int ev_genotype_from_yaml_node(yaml_document_t *doc, yaml_node_t *node, const char *source,
                               ev_genotype *out, ev_error *err);

#endif
