/* ev_yaml.h: the one YAML reader of the tree. Every YAML file echoview reads goes through it:
 * model.yaml and genotype files (engine/), echoviewd's configuration (daemon/) and the DICOM
 * bridge's (bridge/); and the one quoted-scalar writer (ev_yaml_write_quoted). Plain C on
 * libyaml's document API; no GLib, nothing of ours below it.
 *
 * What it owns, so that no reader has rules of its own:
 * - limits: at most EV_YAML_MAX_BYTES of text, EV_YAML_MAX_NODES nodes, EV_YAML_MAX_DEPTH
 *   levels of nesting; one document per file (a second `---` document is refused, not ignored);
 * - text: UTF-8 only (libyaml's reader checks every byte; the error names line and column);
 *   strings with a NUL byte (from a "\0" escape) or control characters are refused;
 * - aliases: refused where the walk reaches a node that is referenced twice (the "billion
 *   laughs" amplifier, and no schema of ours needs shared nodes);
 * - scalar types: integers are unquoted decimal, numbers are read in the C locale, booleans are
 *   `true` or `false`, null is empty, `~` or `null` (YAML 1.2 core schema, no yes/no/on/off);
 * - mappings: keys are strings, each appears once, and a key outside the caller's list is
 *   refused with that list;
 * - messages: "SOURCE:LINE:COLUMN: message" (1-based), the same wording in every reader.
 *
 * The caller owns its schema: which keys exist, defaults, ranges and cross-field rules. A walk
 * stops at the first failure; the document keeps that error (ev_yaml_doc_error) and every
 * accessor below returns false or NULL once it is set. */
#ifndef EV_YAML_H
#define EV_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EV_YAML_MAX_BYTES (1024 * 1024)
#define EV_YAML_MAX_NODES 100000
#define EV_YAML_MAX_DEPTH 32
#define EV_YAML_ERROR_SIZE 512

typedef enum ev_yaml_status {
    EV_YAML_OK = 0,
    EV_YAML_ERR_IO,        /* cannot open or read the file, or it is not a regular file */
    EV_YAML_ERR_TOO_LARGE, /* more than EV_YAML_MAX_BYTES */
    EV_YAML_ERR_SYNTAX,    /* not YAML: libyaml's error, bad UTF-8, a second document */
    EV_YAML_ERR_LIMIT,     /* more than EV_YAML_MAX_NODES nodes or EV_YAML_MAX_DEPTH levels */
    EV_YAML_ERR_SCHEMA,    /* valid YAML that does not fit the schema (also: an empty file) */
    EV_YAML_ERR_NOMEM,
} ev_yaml_status;

typedef struct ev_yaml_error {
    ev_yaml_status code;
    char message[EV_YAML_ERROR_SIZE];
} ev_yaml_error;

typedef struct ev_yaml_doc ev_yaml_doc;
/* A node of a loaded document (libyaml's node, opaque here); valid until ev_yaml_free. */
typedef struct yaml_node_s ev_yaml_node;

typedef enum ev_yaml_kind {
    EV_YAML_SCALAR,
    EV_YAML_SEQUENCE,
    EV_YAML_MAPPING,
} ev_yaml_kind;

/* ---- loading ------------------------------------------------------------------------------ */

/* Reads path (a regular file, opened without blocking so that a FIFO or a device named by
 * mistake can neither hang nor flood the caller) and loads it. On failure *out is NULL and err
 * (optional) holds the code and "PATH: ..." or "PATH:LINE:COLUMN: ...". */
ev_yaml_status ev_yaml_load_file(const char *path, ev_yaml_doc **out, ev_yaml_error *err);
/* Loads len bytes of text; source names it in messages (a path, or a word like "genotype"). */
ev_yaml_status ev_yaml_load_text(const char *text, size_t len, const char *source,
                                 ev_yaml_doc **out, ev_yaml_error *err);
void ev_yaml_free(ev_yaml_doc *doc);

/* The bounded regular-file reader ev_yaml_load_file uses, for other small files a
 * configuration names (a token file): at most max bytes, NUL-terminated; free() the result. */
ev_yaml_status ev_yaml_read_file(const char *path, size_t max, char **out, size_t *len,
                                 ev_yaml_error *err);

const char *ev_yaml_source(const ev_yaml_doc *doc);
/* The root node: never NULL in a loaded document (an empty file is refused). */
const ev_yaml_node *ev_yaml_root(const ev_yaml_doc *doc);
/* The first failure of the walk (code EV_YAML_OK while there is none). */
const ev_yaml_error *ev_yaml_doc_error(const ev_yaml_doc *doc);

/* ---- nodes -------------------------------------------------------------------------------- */

ev_yaml_kind ev_yaml_node_kind(const ev_yaml_node *node);
int ev_yaml_node_line(const ev_yaml_node *node);   /* 1-based */
int ev_yaml_node_column(const ev_yaml_node *node); /* 1-based */
/* The text of a scalar as written (no checks), NULL for other kinds. */
const char *ev_yaml_scalar(const ev_yaml_node *node);
/* An unquoted empty, `~` or `null` scalar. */
bool ev_yaml_is_null(const ev_yaml_node *node);
/* Items of a sequence, pairs of a mapping, 0 for a scalar. */
size_t ev_yaml_length(const ev_yaml_node *node);

/* Records "SOURCE:LINE:COLUMN: message" (node NULL: "SOURCE: message") as the document's error,
 * unless one is recorded already, and returns false. */
bool ev_yaml_fail(ev_yaml_doc *doc, const ev_yaml_node *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- walking (every child is reached through these, which refuse aliases) ------------------ */

/* Item i of a sequence; NULL (error recorded) when it is an alias, or when seq is no sequence
 * or i is out of range. */
const ev_yaml_node *ev_yaml_item(ev_yaml_doc *doc, const ev_yaml_node *seq, size_t i);

/* Called for each pair of a mapping, in document order. Return false to stop (after
 * recording an error with ev_yaml_fail). */
typedef bool (*ev_yaml_pair_fn)(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                                const ev_yaml_node *value, void *data);

/* Walks a mapping: fails with "WHAT must be a mapping", "keys of WHAT must be strings",
 * "duplicate key 'K' in WHAT", or, when keys (NULL-terminated) is given and K is not in it,
 * "unknown key 'K' in WHAT (expected one of: A, B, C)"; the key is checked before its value is
 * reached, and a value that is an alias is refused. fn may be NULL (only check). */
bool ev_yaml_walk_mapping(ev_yaml_doc *doc, const ev_yaml_node *map, const char *what,
                          const char *const *keys, ev_yaml_pair_fn fn, void *data);
/* The value of key in a mapping checked with ev_yaml_walk_mapping, or NULL when absent (or,
 * error recorded, when it is an alias). */
const ev_yaml_node *ev_yaml_lookup(ev_yaml_doc *doc, const ev_yaml_node *map, const char *key);
/* Reaches every node under node without a schema (free-form sections such as a bundle's
 * `training` notes), so that an alias there is refused too. */
bool ev_yaml_accept_any(ev_yaml_doc *doc, const ev_yaml_node *node);

/* ---- typed scalars (name is the key, for messages) ----------------------------------------- */

/* A scalar of any style as a string (borrowed; valid until ev_yaml_free): no NUL byte, no
 * control character. NULL with the error recorded otherwise. */
const char *ev_yaml_get_string(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name);
/* The same, and not empty. */
const char *ev_yaml_get_nonempty_string(ev_yaml_doc *doc, const ev_yaml_node *node,
                                        const char *name);
/* An unquoted decimal integer in min..max. */
bool ev_yaml_get_int(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name, long min,
                     long max, long *out);
/* An unquoted finite number in min..max, read in the C locale whatever the process's. */
bool ev_yaml_get_double(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name, double min,
                        double max, double *out);
/* Unquoted true or false. */
bool ev_yaml_get_bool(ev_yaml_doc *doc, const ev_yaml_node *node, const char *name, bool *out);

/* ---- writing ------------------------------------------------------------------------------ */

/* Writes s as a YAML double-quoted scalar: '"' and '\\' escaped with a backslash, control
 * characters as \xHH, every other byte (UTF-8 included) as it is; a YAML reader reads s back (this one
 * refuses control characters in strings). For the few values echoview writes into YAML files
 * (model.yaml's training and split records). */
void ev_yaml_write_quoted(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif
