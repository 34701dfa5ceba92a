/* yaml_util.h: the engine's side of the YAML reader (base/ev_yaml.h, which owns the rules and
 * the messages): its errors as ev_error, and a genotype read from a node (model.yaml's
 * `network.genotype` and genotype files share it). */
#ifndef EV_YAML_UTIL_H
#define EV_YAML_UTIL_H

#include "ev_genotype.h"
#include "ev_yaml.h"

/* Copies a YAML error into err with the engine's code (EV_ERR_IO, EV_ERR_FORMAT for a file over
 * the size limit, EV_ERR_NOMEM, else EV_ERR_INVALID) and returns that code. */
int ev_fail_yaml(ev_error *err, const ev_yaml_error *yaml_err);
/* The same for the first failure of a walk over doc. */
int ev_fail_yaml_doc(ev_error *err, const ev_yaml_doc *doc);
/* Genotype from a YAML mapping node (normal, normal_concat, reduce, reduce_concat) or a scalar
 * holding the one-line published form. */
int ev_genotype_from_yaml_node(ev_yaml_doc *doc, const ev_yaml_node *node, ev_genotype *out,
                               ev_error *err);

#endif
