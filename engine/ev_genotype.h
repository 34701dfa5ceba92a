/* ev_genotype.h: DARTS genotypes (genotype.c): the 8 primitives, the cells' edges and concat
 * lists, the parsers of the published one-line form and the YAML form, validation and the two
 * writers. Used by the network builder, the architecture search and `echoview genotype`. */
#ifndef EV_GENOTYPE_H
#define EV_GENOTYPE_H

#include "ev_base.h"

typedef enum ev_primitive {
    EV_PRIM_NONE = 0,
    EV_PRIM_MAX_POOL_3X3,
    EV_PRIM_AVG_POOL_3X3,
    EV_PRIM_SKIP_CONNECT,
    EV_PRIM_SEP_CONV_3X3,
    EV_PRIM_SEP_CONV_5X5,
    EV_PRIM_DIL_CONV_3X3,
    EV_PRIM_DIL_CONV_5X5,
    EV_NUM_PRIMITIVES
} ev_primitive;

const char *ev_primitive_name(ev_primitive p);

#define EV_GENOTYPE_MAX_NODES 8
#define EV_GENOTYPE_MAX_EDGES (2 * EV_GENOTYPE_MAX_NODES)

typedef struct ev_genotype_edge {
    ev_primitive op;
    int input; /* 0 = cell k-2, 1 = cell k-1, 2.. = intermediate nodes */
} ev_genotype_edge;

typedef struct ev_cell_genotype {
    int num_nodes; /* intermediate nodes; each has two incoming edges */
    ev_genotype_edge edges[EV_GENOTYPE_MAX_EDGES];
    int num_concat;
    int concat[EV_GENOTYPE_MAX_NODES + 2];
} ev_cell_genotype;

typedef struct ev_genotype {
    ev_cell_genotype normal, reduce;
} ev_genotype;

/* Parses either the published one-line `Genotype(normal=[...], normal_concat=..., ...)` form or
 * the YAML form (a mapping with normal/normal_concat/reduce/reduce_concat). Validates. */
int ev_genotype_parse(const char *text, ev_genotype *out, ev_error *err);
int ev_genotype_load_file(const char *path, ev_genotype *out, ev_error *err);
int ev_genotype_validate(const ev_genotype *g, ev_error *err);
/* YAML text (malloc'ed) and the one-line published form (malloc'ed). */
char *ev_genotype_to_yaml(const ev_genotype *g, const char *name);
char *ev_genotype_to_string(const ev_genotype *g);
bool ev_genotype_equal(const ev_genotype *a, const ev_genotype *b);

#endif
