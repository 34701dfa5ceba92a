/* safetensors.c: reading and writing safetensors files (8-byte header length, JSON header,
 * raw little-endian data) and mapping them onto a network's parameters by the reference
 * PyTorch DARTS names. The file is untrusted: the header length is capped, every offset and
 * shape is checked against the data, and tensors must not overlap. */
#include "ev_safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void ev_safetensors_free(ev_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->count; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    free(st->data);
    memset(st, 0, sizeof *st);
}

const ev_st_tensor *ev_safetensors_find(const ev_safetensors *st, const char *name)
{
    for (int i = 0; i < st->count; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

static int dtype_size(const char *name, ev_dtype *dtype)
{
    static const struct {
        const char *name;
        int size;
        ev_dtype dtype;
    } table[] = {
        {"F32", 4, EV_DTYPE_F32},    {"I64", 8, EV_DTYPE_I64},   {"I32", 4, EV_DTYPE_I32},
        {"F64", 8, EV_DTYPE_OTHER},  {"F16", 2, EV_DTYPE_OTHER}, {"BF16", 2, EV_DTYPE_OTHER},
        {"I16", 2, EV_DTYPE_OTHER},  {"I8", 1, EV_DTYPE_OTHER},  {"U8", 1, EV_DTYPE_OTHER},
        {"BOOL", 1, EV_DTYPE_OTHER}, {"U16", 2, EV_DTYPE_OTHER}, {"U32", 4, EV_DTYPE_OTHER},
        {"U64", 8, EV_DTYPE_OTHER},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(name, table[i].name) == 0) {
            *dtype = table[i].dtype;
            return table[i].size;
        }
    return 0;
}

/* By begin, then end: an empty tensor sorts before a tensor starting at the same byte. */
static int compare_span(const void *a, const void *b)
{
    const ev_st_tensor *x = *(const ev_st_tensor *const *)a, *y = *(const ev_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

int ev_safetensors_parse(const unsigned char *bytes, size_t size, ev_safetensors *out,
                         ev_error *err)
{
    memset(out, 0, sizeof *out);
    if (size < 8)
        return ev_fail(err, EV_ERR_FORMAT,
                       "truncated: %zu bytes, the 8-byte header length is missing", size);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--)
        header_len = (header_len << 8) | bytes[i];
    if (header_len > EV_SAFETENSORS_MAX_HEADER)
        return ev_fail(err, EV_ERR_FORMAT, "header length %llu exceeds the %u-byte limit",
                       (unsigned long long)header_len, EV_SAFETENSORS_MAX_HEADER);
    if (header_len < 2 || header_len > size - 8)
        return ev_fail(err, EV_ERR_FORMAT,
                       "truncated: header length %llu but only %zu bytes follow",
                       (unsigned long long)header_len, size - 8);
    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)bytes + 8, (size_t)header_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ev_fail(err, EV_ERR_FORMAT, "header is not valid JSON: %s (at byte %d)", jerr.text,
                       jerr.position);
    int rc = EV_OK;
    const ev_st_tensor **sorted = NULL;
    if (!json_is_object(root)) {
        rc = ev_fail(err, EV_ERR_FORMAT, "header is not a JSON object");
        goto out;
    }
    size_t data_size = size - 8 - (size_t)header_len;
    size_t n = json_object_size(root);
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    if (!out->tensors) {
        rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        ev_st_tensor *t = &out->tensors[out->count];
        if (!(t->name = strdup(key))) {
            rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            goto out;
        }
        out->count++;
        json_t *dtype = json_object_get(value, "dtype");
        json_t *shape = json_object_get(value, "shape");
        json_t *offsets = json_object_get(value, "data_offsets");
        if (!json_is_object(value) || !json_is_string(dtype) || !json_is_array(shape) ||
            !json_is_array(offsets) || json_array_size(offsets) != 2) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "tensor '%s': needs dtype (string), shape (array) and data_offsets "
                         "([begin, end])",
                         key);
            goto out;
        }
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", json_string_value(dtype));
        int elem = dtype_size(t->dtype_name, &t->dtype);
        if (!elem) {
            rc = ev_fail(err, EV_ERR_FORMAT, "tensor '%s': unknown dtype '%s'", key, t->dtype_name);
            goto out;
        }
        if (json_array_size(shape) > 8) {
            rc = ev_fail(err, EV_ERR_FORMAT, "tensor '%s': %zu dimensions (at most 8)", key,
                         json_array_size(shape));
            goto out;
        }
        t->ndim = (int)json_array_size(shape);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            json_t *dim = json_array_get(shape, (size_t)d);
            if (!json_is_integer(dim) || json_integer_value(dim) < 0) {
                rc = ev_fail(err, EV_ERR_FORMAT,
                             "tensor '%s': shape entry %d is not a non-negative integer", key, d);
                goto out;
            }
            t->shape[d] = json_integer_value(dim);
            if ((uint64_t)t->shape[d] > SIZE_MAX ||
                !ev_mul_size(numel, (size_t)t->shape[d], &numel)) {
                rc = ev_fail(err, EV_ERR_FORMAT, "tensor '%s': shape overflows", key);
                goto out;
            }
        }
        json_t *b = json_array_get(offsets, 0), *e = json_array_get(offsets, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
                         key);
            goto out;
        }
        t->begin = (size_t)json_integer_value(b);
        t->end = (size_t)json_integer_value(e);
        if (t->end > data_size) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "tensor '%s': data_offsets [%zu, %zu] point past the end of the data "
                         "(%zu bytes; file truncated or offsets lie)",
                         key, t->begin, t->end, data_size);
            goto out;
        }
        size_t bytes_needed;
        if (!ev_mul_size(numel, (size_t)elem, &bytes_needed) || bytes_needed != t->end - t->begin) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "tensor '%s': %s shape needs %zu bytes but data_offsets span %zu", key,
                         t->dtype_name, numel * (size_t)elem, t->end - t->begin);
            goto out;
        }
    }
    /* No two tensors may share bytes, and an empty tensor may not sit inside another's span
     * (a writer never puts one there; a reader trusting the order would misplace it). In span
     * order every tensor starts at or after the furthest end so far; comparing with the
     * predecessor alone misses A=[0,100], B=[10,10], C=[50,60]. */
    sorted = malloc((out->count ? out->count : 1) * sizeof *sorted);
    if (!sorted) {
        rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < out->count; i++)
        sorted[i] = &out->tensors[i];
    qsort(sorted, (size_t)out->count, sizeof *sorted, compare_span);
    const ev_st_tensor *furthest = NULL; /* of the tensors so far, the one ending last */
    for (int i = 0; i < out->count; i++) {
        const ev_st_tensor *t = sorted[i];
        if (furthest && t->begin < furthest->end) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap in the data section",
                         furthest->name, furthest->begin, furthest->end, t->name, t->begin, t->end);
            goto out;
        }
        if (!furthest || t->end > furthest->end)
            furthest = t;
    }
    out->data = malloc(data_size ? data_size : 1);
    if (!out->data) {
        rc = ev_fail(err, EV_ERR_NOMEM, "out of memory for %zu bytes of tensor data", data_size);
        goto out;
    }
    memcpy(out->data, bytes + 8 + header_len, data_size);
    out->data_size = data_size;
out:
    free(sorted);
    json_decref(root);
    if (rc)
        ev_safetensors_free(out);
    return rc;
}

int ev_safetensors_read(const char *path, ev_safetensors *out, ev_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = EV_OK;
    unsigned char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        rc = ev_fail(err, EV_ERR_IO, "%s: cannot determine the file size", path);
        goto out;
    }
    if ((unsigned long)size > (1ul << 34)) {
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: %ld bytes is larger than any model we accept", path,
                     size);
        goto out;
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
        goto out;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = ev_fail(err, EV_ERR_IO, "%s: read error", path);
        goto out;
    }
    rc = ev_safetensors_parse(buf, (size_t)size, out, err);
    if (rc)
        ev_fail_prefix(err, "%s: ", path);
out:
    free(buf);
    fclose(f);
    return rc;
}

struct json_t *ev_safetensors_read_metadata(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char len8[8];
    json_t *meta = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | len8[i];
        if (n > 0 && n < EV_SAFETENSORS_MAX_HEADER) {
            char *h = malloc(n + 1);
            if (h && fread(h, 1, n, f) == n) {
                h[n] = 0;
                json_t *root = json_loads(h, 0, NULL);
                if (root) {
                    meta = json_incref(json_object_get(root, "__metadata__"));
                    json_decref(root);
                }
            }
            free(h);
        }
    }
    fclose(f);
    return meta;
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

int ev_safetensors_write(const char *path, const ev_st_entry *entries, int count,
                         const char *const *metadata_kv, int metadata_pairs, ev_error *err)
{
    json_t *root = json_object();
    if (!root)
        return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    int rc = EV_OK;
    char *header = NULL;
    FILE *f = NULL;
    char tmp[4200];
    if (metadata_pairs > 0) {
        json_t *meta = json_object();
        for (int i = 0; i < metadata_pairs; i++)
            json_object_set_new(meta, metadata_kv[2 * i], json_string(metadata_kv[2 * i + 1]));
        json_object_set_new(root, "__metadata__", meta);
    }
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < entries[i].ndim; d++) {
            numel *= (size_t)entries[i].shape[d];
            json_array_append_new(shape, json_integer(entries[i].shape[d]));
        }
        json_t *t = json_object();
        json_object_set_new(t, "dtype", json_string("F32"));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(
            t, "data_offsets",
            json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + 4 * numel)));
        json_object_set_new(root, entries[i].name, t);
        offset += 4 * numel;
    }
    header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!header) {
        rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
        goto out;
    }
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) & ~(size_t)7; /* data section 8-byte aligned, spaces as padding */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (!f) {
        rc = ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int bad = write_all(f, len8, 8) || write_all(f, header, hlen);
    for (size_t i = hlen; i < padded && !bad; i++)
        bad = fputc(' ', f) == EOF;
    for (int i = 0; i < count && !bad; i++) {
        size_t numel = 1;
        for (int d = 0; d < entries[i].ndim; d++)
            numel *= (size_t)entries[i].shape[d];
        bad = write_all(f, entries[i].data, numel * sizeof(float)); /* little-endian host */
    }
    if (fclose(f) != 0)
        bad = 1;
    f = NULL;
    if (bad || rename(tmp, path) != 0) {
        rc = ev_fail(err, EV_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
    }
out:
    if (f)
        fclose(f);
    free(header);
    json_decref(root);
    return rc;
}

/* ---- networks <-> safetensors --------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int ev_net_load_weights(ev_net *net, const ev_safetensors *st, ev_error *err)
{
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        const ev_st_tensor *t = ev_safetensors_find(st, p->name);
        if (!t) {
            if (p->auxiliary)
                continue; /* a checkpoint without the training-only head */
            return ev_fail(err, EV_ERR_FORMAT, "tensor '%s' is missing", p->name);
        }
        if (t->dtype != EV_DTYPE_F32)
            return ev_fail(err, EV_ERR_FORMAT, "tensor '%s': dtype %s, expected F32", p->name,
                           t->dtype_name);
        bool same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++)
            same = t->shape[d] == p->shape[d];
        if (!same) {
            char want[64] = "", got[96] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? ", " : "",
                         p->shape[d]);
            for (int d = 0; d < t->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                         (long long)t->shape[d]);
            return ev_fail(err, EV_ERR_FORMAT, "tensor '%s': shape (%s), the network needs (%s)",
                           p->name, got, want);
        }
        memcpy(p->data, st->data + t->begin, p->numel * sizeof(float));
        for (size_t j = 0; j < p->numel; j++)
            if (!isfinite(p->data[j]))
                return ev_fail(err, EV_ERR_FORMAT, "tensor '%s': element %zu is not finite",
                               p->name, j);
    }
    for (int i = 0; i < st->count; i++) {
        const ev_st_tensor *t = &st->tensors[i];
        if (ends_with(t->name, ".num_batches_tracked") && t->dtype == EV_DTYPE_I64)
            continue;
        if (strncmp(t->name, "auxiliary_head.", 15) == 0 && net->cfg.auxiliary == false)
            continue;
        if (!ev_net_find_param(net, t->name))
            return ev_fail(err, EV_ERR_FORMAT,
                           "unexpected tensor '%s' (not part of this network: check the genotype, "
                           "layout and init_channels in model.yaml)",
                           t->name);
    }
    return EV_OK;
}

int ev_net_save_weights(const ev_net *net, const char *path, ev_error *err)
{
    ev_st_entry *entries = calloc((size_t)net->num_params, sizeof *entries);
    int64_t(*shapes)[4] = calloc((size_t)net->num_params, sizeof *shapes);
    if (!entries || !shapes) {
        free(entries);
        free(shapes);
        return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < net->num_params; i++) {
        for (int d = 0; d < net->params[i].ndim; d++)
            shapes[i][d] = net->params[i].shape[d];
        entries[i] =
            (ev_st_entry){net->params[i].name, net->params[i].ndim, shapes[i], net->params[i].data};
    }
    const char *meta[] = {"format", "pt", "producer", "echoview " EV_VERSION};
    int rc = ev_safetensors_write(path, entries, net->num_params, meta, 2, err);
    free(entries);
    free(shapes);
    return rc;
}
