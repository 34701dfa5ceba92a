/* ev_safetensors.h: safetensors files (safetensors.c): the validating reader (header length
 * cap, JSON, dtypes, shapes vs byte spans, offsets inside the data and not overlapping), the
 * writer, the header's metadata, and the mapping onto a network's parameters by name. Used by
 * the bundle loader and writer, and by search/ for training and search checkpoints. */
#ifndef EV_SAFETENSORS_H
#define EV_SAFETENSORS_H

#include "ev_graph.h"

#include <stddef.h>
#include <stdint.h>

#define EV_SAFETENSORS_MAX_HEADER (64u << 20)

typedef enum ev_dtype { EV_DTYPE_F32 = 0, EV_DTYPE_I64, EV_DTYPE_I32, EV_DTYPE_OTHER } ev_dtype;

typedef struct ev_st_tensor {
    char *name;
    ev_dtype dtype;
    char dtype_name[16];
    int ndim;
    int64_t shape[8];
    size_t begin, end; /* byte offsets into the data section */
} ev_st_tensor;

typedef struct ev_safetensors {
    ev_st_tensor *tensors;
    int count;
    unsigned char *data; /* data section (owned) */
    size_t data_size;
} ev_safetensors;

/* Reads and validates: header length cap, JSON, dtypes, shapes vs byte sizes, offsets inside
 * the file and not overlapping. */
int ev_safetensors_read(const char *path, ev_safetensors *out, ev_error *err);
int ev_safetensors_parse(const unsigned char *bytes, size_t size, ev_safetensors *out,
                         ev_error *err);
void ev_safetensors_free(ev_safetensors *st);
const ev_st_tensor *ev_safetensors_find(const ev_safetensors *st, const char *name);
/* The header's __metadata__ object (a jansson json_t, caller decrefs; ev_safetensors_read does
 * not keep it), reading only the header: NULL when the file is unreadable or has none. */
struct json_t *ev_safetensors_read_metadata(const char *path);

/* Writes float32 tensors (names, shapes, data) plus optional string metadata pairs. */
typedef struct ev_st_entry {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} ev_st_entry;
int ev_safetensors_write(const char *path, const ev_st_entry *entries, int count,
                         const char *const *metadata_kv, int metadata_pairs, ev_error *err);

/* Loads a network's parameters from safetensors: every parameter must be present with the
 * right shape and dtype; unknown tensors are errors except `*.num_batches_tracked` (int64) and
 * auxiliary-head tensors when the network has no auxiliary head. */
int ev_net_load_weights(ev_net *net, const ev_safetensors *st, ev_error *err);
int ev_net_save_weights(const ev_net *net, const char *path, ev_error *err);

#endif
