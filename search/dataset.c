/* dataset.c: training and evaluation datasets. Reads CSV manifests and image folders, assigns
 * patient-level splits when the data has none, decodes every frame (PNG, PGM/PPM; 8/16-bit; gray
 * or colour) with media and runs it through ev_preprocess (crop, area resize to the model input,
 * luma) once, keeping the result in memory as uint8 so that epochs never touch the disk.
 *
 * Bad input: an unknown label or a malformed manifest line is an error naming the file and line
 * (a label typo would silently train a wrong model). An unreadable or corrupt image is skipped
 * with a warning naming the file; loading fails when more than max_bad_fraction of the listed
 * frames are bad (default 5%). A class without frames is reported and left out of the balanced
 * batches.
 */
#include "ev_bundle.h"
#include "ev_pool.h"
#include "ev_search.h"
#include "media.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const split_names[SEARCH_SPLIT_COUNT] = {"train", "val", "test"};

const char *search_split_name(int split)
{
    return split >= 0 && split < SEARCH_SPLIT_COUNT ? split_names[split] : "none";
}

int search_split_parse(const char *name)
{
    if (!name)
        return -1;
    if (!strcasecmp(name, "train") || !strcasecmp(name, "training"))
        return SEARCH_SPLIT_TRAIN;
    if (!strcasecmp(name, "val") || !strcasecmp(name, "valid") || !strcasecmp(name, "validation"))
        return SEARCH_SPLIT_VAL;
    if (!strcasecmp(name, "test") || !strcasecmp(name, "testing"))
        return SEARCH_SPLIT_TEST;
    return -1;
}

static int fold(int c)
{
    if (c == '/' || c == '_' || c == ' ')
        return '-';
    return tolower((unsigned char)c);
}

int search_class_lookup(char *const *names, int count, const char *label)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], label))
            return i;
    for (int i = 0; i < count; i++) {
        const char *a = names[i], *b = label;
        while (*a && *b && fold(*a) == fold(*b))
            a++, b++;
        if (!*a && !*b)
            return i;
    }
    return -1;
}

/* ---- entry list ------------------------------------------------------------------------------ */

typedef struct entry {
    char *path;
    int label, split, quality;
    char *patient;
    bool has_roi;
    ev_rect roi;
} entry;

typedef struct entry_list {
    entry *items;
    int count, cap;
} entry_list;

static int list_add(entry_list *l, entry *e)
{
    if (l->count == l->cap) {
        int cap = l->cap ? l->cap * 2 : 1024;
        entry *p = realloc(l->items, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->count++] = *e;
    return 0;
}

static void list_free(entry_list *l)
{
    for (int i = 0; i < l->count; i++) {
        free(l->items[i].path);
        free(l->items[i].patient);
    }
    free(l->items);
}

/* Splits one CSV line in place (RFC 4180 quotes). Returns the field count or -1. */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        if (*p == '"') {
            char *w = ++p;
            fields[n++] = w;
            for (;;) {
                if (!*p)
                    return -1; /* unterminated quote */
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            *w = 0;
            if (*p == ',') {
                p++;
                continue;
            }
            if (!*p)
                return n;
            return -1;
        }
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            return n;
        *c = 0;
        p = c + 1;
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* atoi without its undefined behaviour: a value outside int is clamped (and so rejected by any
 * range check), text after the number is ignored as atoi does. */
static int field_int(const char *s)
{
    long v = strtol(s, NULL, 10);
    if (v > INT_MAX)
        return INT_MAX;
    if (v < INT_MIN)
        return INT_MIN;
    return (int)v;
}

static char *join_path(const char *dir, const char *name)
{
    if (name[0] == '/' || !dir || !*dir)
        return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

enum {
    COL_PATH,
    COL_LABEL,
    COL_SPLIT,
    COL_PATIENT,
    COL_QUALITY,
    COL_RX,
    COL_RY,
    COL_RW,
    COL_RH,
    NUM_COLS
};
static const char *const col_names[NUM_COLS] = {"path",  "label", "split", "patient", "quality",
                                                "roi_x", "roi_y", "roi_w", "roi_h"};

/* Reads manifest lines from f; path names it in messages, and listed paths are relative to dir.
 * (Separate from the file handling so that tests/fuzz/fuzz_manifest.c can feed it memory.) */
static int read_manifest_stream(FILE *f, const char *path, const char *dir, char *const *classes,
                                int k, entry_list *list, ev_error *err)
{
    int col[NUM_COLS];
    for (int i = 0; i < NUM_COLS; i++)
        col[i] = -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = EV_OK;
    bool header = false;
    char *fields[64];
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 65536) {
            rc = ev_fail(err, EV_ERR_FORMAT, "%s:%d: line too long", path, lineno);
            break;
        }
        char *t = trim(line);
        if (!*t || *t == '#')
            continue;
        int nf = csv_split(t, fields, 64);
        if (nf < 0) {
            rc = ev_fail(err, EV_ERR_FORMAT, "%s:%d: malformed CSV line", path, lineno);
            break;
        }
        if (!header) {
            for (int i = 0; i < nf; i++) {
                char *name = trim(fields[i]);
                for (int c = 0; c < NUM_COLS; c++)
                    if (!strcasecmp(name, col_names[c]))
                        col[c] = i;
            }
            if (col[COL_PATH] < 0 || col[COL_LABEL] < 0) {
                rc = ev_fail(err, EV_ERR_FORMAT,
                             "%s:%d: the header needs columns path and label (optional: split, "
                             "patient, quality, roi_x, roi_y, roi_w, roi_h)",
                             path, lineno);
                break;
            }
            header = true;
            continue;
        }
        if (nf <= col[COL_PATH] || nf <= col[COL_LABEL]) {
            rc = ev_fail(err, EV_ERR_FORMAT, "%s:%d: %d fields, fewer than the header names", path,
                         lineno, nf);
            break;
        }
        entry e = {0};
        const char *label = trim(fields[col[COL_LABEL]]);
        e.label = search_class_lookup(classes, k, label);
        if (e.label < 0) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "%s:%d: unknown label '%s' (the model's classes: %s, %s, ...)", path,
                         lineno, label, classes[0], k > 1 ? classes[1] : "");
            break;
        }
        e.split = -1;
        if (col[COL_SPLIT] >= 0 && col[COL_SPLIT] < nf) {
            const char *s = trim(fields[col[COL_SPLIT]]);
            if (*s && (e.split = search_split_parse(s)) < 0) {
                rc = ev_fail(err, EV_ERR_FORMAT, "%s:%d: unknown split '%s' (train, val, test)",
                             path, lineno, s);
                break;
            }
        }
        if (col[COL_QUALITY] >= 0 && col[COL_QUALITY] < nf) {
            const char *q = trim(fields[col[COL_QUALITY]]);
            e.quality = *q ? field_int(q) : 0;
            if (e.quality < 0 || e.quality > 5) {
                rc = ev_fail(err, EV_ERR_FORMAT, "%s:%d: quality '%s' outside 1..5", path, lineno,
                             q);
                break;
            }
        }
        /* all four ROI columns must be on this line: fields[] past nf hold stale pointers into
         * an earlier line (found by tests/fuzz/fuzz_manifest.c) */
        bool roi_cols = true;
        for (int c = COL_RX; c <= COL_RH; c++)
            roi_cols &= col[c] >= 0 && col[c] < nf;
        if (roi_cols && *trim(fields[col[COL_RX]])) {
            e.roi.x = field_int(fields[col[COL_RX]]);
            e.roi.y = field_int(fields[col[COL_RY]]);
            e.roi.width = field_int(fields[col[COL_RW]]);
            e.roi.height = field_int(fields[col[COL_RH]]);
            e.has_roi = e.roi.width > 0 && e.roi.height > 0;
        }
        const char *pat =
            col[COL_PATIENT] >= 0 && col[COL_PATIENT] < nf ? trim(fields[col[COL_PATIENT]]) : "";
        e.path = join_path(dir, trim(fields[col[COL_PATH]]));
        e.patient = strdup(*pat ? pat : e.path ? e.path : "");
        if (!e.path || !e.patient || list_add(list, &e)) {
            free(e.path);
            free(e.patient);
            rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
    }
    free(line);
    if (!rc && !header)
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: empty manifest (no header line)", path);
    return rc;
}

static int read_manifest(const char *path, char *const *classes, int k, entry_list *list,
                         ev_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int rc = read_manifest_stream(f, path, dir, classes, k, list, err);
    fclose(f);
    return rc;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".pgm") ||
                   !strcasecmp(dot, ".ppm") || !strcasecmp(dot, ".pnm"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory's entries (no dot files). */
static int list_dir(const char *dir, char ***names, int *count, ev_error *err)
{
    DIR *d = opendir(dir);
    *names = NULL;
    *count = 0;
    if (!d)
        return ev_fail(err, EV_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(*names, (size_t)cap * sizeof *p);
            if (!p)
                break;
            *names = p;
        }
        if (!((*names)[*count] = strdup(de->d_name)))
            break;
        (*count)++;
    }
    closedir(d);
    if (*count)
        qsort(*names, (size_t)*count, sizeof **names, cmp_str);
    return EV_OK;
}

static void free_names(char **names, int count)
{
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* DIR/<class>/<image>; split given or -1. */
static int read_class_folders(const char *dir, int split, char *const *classes, int k,
                              entry_list *list, bool quiet, ev_error *err)
{
    char **sub;
    int nsub, rc = list_dir(dir, &sub, &nsub, err);
    if (rc)
        return rc;
    for (int i = 0; i < nsub && !rc; i++) {
        char *cdir = join_path(dir, sub[i]);
        if (!cdir) {
            rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            break;
        }
        if (!is_dir(cdir)) {
            free(cdir);
            continue;
        }
        int label = search_class_lookup(classes, k, sub[i]);
        if (label < 0) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "%s: folder name '%s' is not a class (the model's classes: %s, %s, ...; "
                         "'/' may be written '-' or '_')",
                         cdir, sub[i], classes[0], k > 1 ? classes[1] : "");
            free(cdir);
            break;
        }
        char **files;
        int nfiles;
        rc = list_dir(cdir, &files, &nfiles, err);
        int added = 0;
        for (int j = 0; j < nfiles && !rc; j++) {
            if (!is_image_name(files[j]))
                continue;
            entry e = {.label = label, .split = split};
            e.path = join_path(cdir, files[j]);
            e.patient = e.path ? strdup(e.path) : NULL;
            if (!e.path || !e.patient || list_add(list, &e)) {
                free(e.path);
                free(e.patient);
                rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            }
            added++;
        }
        if (!rc && !added && !quiet)
            fprintf(stderr, "warning: %s: class folder has no PNG/PGM images\n", cdir);
        free_names(files, nfiles);
        free(cdir);
    }
    free_names(sub, nsub);
    return rc;
}

static uint64_t hash_str(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

typedef struct patient_ref {
    const char *name;
    uint64_t key;
    int index;
} patient_ref;

static int cmp_patient_name(const void *a, const void *b)
{
    return strcmp(((const patient_ref *)a)->name, ((const patient_ref *)b)->name);
}

static int cmp_patient_key(const void *a, const void *b)
{
    const patient_ref *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Dense patient ids (sorted by name) and, when no entry has a split, a 60/20/20 patient split
 * deterministic in the seed. */
static int assign_patients(entry_list *l, uint64_t seed, int32_t *patient_ids, int *num_patients)
{
    patient_ref *refs = malloc((size_t)(l->count ? l->count : 1) * sizeof *refs);
    if (!refs)
        return -1;
    for (int i = 0; i < l->count; i++)
        refs[i] = (patient_ref){l->items[i].patient, 0, i};
    qsort(refs, (size_t)l->count, sizeof *refs, cmp_patient_name);
    int np = 0;
    for (int i = 0; i < l->count; i++) {
        if (i == 0 || strcmp(refs[i].name, refs[i - 1].name))
            np++;
        patient_ids[refs[i].index] = np - 1;
    }
    *num_patients = np;
    bool any_split = false;
    for (int i = 0; i < l->count; i++)
        any_split |= l->items[i].split >= 0;
    if (!any_split && np > 0) {
        patient_ref *u = malloc((size_t)np * sizeof *u);
        int *split_of = malloc((size_t)np * sizeof *split_of);
        if (!u || !split_of) {
            free(u);
            free(split_of);
            free(refs);
            return -1;
        }
        for (int i = 0; i < l->count; i++) {
            int p = patient_ids[i];
            u[p] = (patient_ref){l->items[i].patient, hash_str(l->items[i].patient, seed), p};
        }
        qsort(u, (size_t)np, sizeof *u, cmp_patient_key);
        int n_train = (int)(np * 0.6 + 0.5), n_val = (int)(np * 0.2 + 0.5);
        if (np >= 3 && n_val < 1)
            n_val = 1;
        if (n_train + n_val >= np && np >= 3)
            n_train = np - n_val - 1;
        for (int r = 0; r < np; r++)
            split_of[u[r].index] = r < n_train           ? SEARCH_SPLIT_TRAIN
                                   : r < n_train + n_val ? SEARCH_SPLIT_VAL
                                                         : SEARCH_SPLIT_TEST;
        for (int i = 0; i < l->count; i++)
            l->items[i].split = split_of[patient_ids[i]];
        free(u);
        free(split_of);
    }
    free(refs);
    return 0;
}

/* Decodes one file into out (channels x h x w uint8 at the model size). */
static int load_frame(const entry *e, const search_dataset_options *o, float *tmp, uint8_t *out,
                      ev_error *err)
{
    media_image img = {0}, gray = {0};
    ev_frame frame;
    int rc = media_image_read(e->path, &img, err);
    if (rc)
        return rc;
    if (img.channels == 2 || (img.channels >= 3 && img.bit_depth == 16)) {
        rc = media_image_to_gray8(&img, &gray, err);
        if (!rc)
            rc = media_image_as_frame(&gray, &frame, err);
    } else {
        rc = media_image_as_frame(&img, &frame, err);
    }
    ev_rect roi, *use = NULL;
    if (!rc) {
        if (e->has_roi) {
            roi = e->roi;
            use = &roi;
        } else if (o->auto_roi && ev_detect_roi(&frame, &roi) == EV_OK) {
            use = &roi;
        }
        ev_preprocess_params pp = {.width = o->width,
                                   .height = o->height,
                                   .channels = o->channels,
                                   .scale = 1.0f,
                                   .mean = {0, 0, 0},
                                   .std = {1, 1, 1}};
        rc = ev_preprocess(&pp, &frame, use, tmp, err);
    }
    if (!rc) {
        size_t n = (size_t)o->width * o->height * o->channels;
        for (size_t i = 0; i < n; i++) {
            float v = tmp[i] + 0.5f;
            out[i] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    }
    media_image_free(&gray);
    media_image_free(&img);
    return rc;
}

void search_dataset_free(search_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    free(ds->split);
    free(ds->patient);
    free(ds->quality);
    if (ds->paths)
        for (int i = 0; i < ds->count; i++)
            free(ds->paths[i]);
    free(ds->paths);
    if (ds->class_names)
        for (int i = 0; i < ds->num_classes; i++)
            free(ds->class_names[i]);
    free(ds->class_names);
    free(ds);
}

/* Frames [chunk * keep / chunks, (chunk + 1) * keep / chunks) of the list into their slots. */
typedef struct decode_job {
    const entry_list *list;
    const search_dataset_options *o;
    uint8_t *pixels;
    size_t fsz;
    int keep;
    bool *bad;
    char (*msgs)[EV_ERROR_MESSAGE_SIZE];
    float *tmp; /* fsz floats per thread */
} decode_job;

static void decode_chunk(void *arg, int chunk, int chunks, int thread)
{
    const decode_job *j = arg;
    float *tmp = j->tmp + (size_t)thread * j->fsz;
    int lo = (int)((int64_t)chunk * j->keep / chunks);
    int hi = (int)((int64_t)(chunk + 1) * j->keep / chunks);
    for (int i = lo; i < hi; i++) {
        ev_error e = {0};
        if (load_frame(&j->list->items[i], j->o, tmp, j->pixels + (size_t)i * j->fsz, &e)) {
            j->bad[i] = true;
            snprintf(j->msgs[i], EV_ERROR_MESSAGE_SIZE, "%s", e.message);
        }
    }
}

int search_dataset_load(const char *path, const search_dataset_options *o, search_dataset **out,
                        ev_error *err)
{
    *out = NULL;
    if (o->width < 1 || o->height < 1 || o->width > 4096 || o->height > 4096 || o->channels < 1 ||
        o->channels > 3)
        return ev_fail(err, EV_ERR_INVALID, "dataset: bad input geometry %dx%dx%d", o->width,
                       o->height, o->channels);
    int k = o->num_classes > 0 ? o->num_classes : 14;
    const char *const *cn = o->class_names ? o->class_names : (const char *const *)ev_echo_views;
    search_dataset *ds = calloc(1, sizeof *ds);
    entry_list list = {0};
    int rc = EV_OK;
    if (!ds)
        return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    ds->num_classes = k;
    ds->class_names = calloc((size_t)k, sizeof(char *));
    if (!ds->class_names) {
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    for (int i = 0; i < k; i++)
        if (!(ds->class_names[i] = strdup(cn[i]))) {
            rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
            goto fail;
        }
    struct stat st;
    if (stat(path, &st) != 0) {
        rc = ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        char *manifest = join_path(path, "manifest.csv");
        struct stat ms;
        if (manifest && stat(manifest, &ms) == 0) {
            rc = read_manifest(manifest, ds->class_names, k, &list, err);
        } else {
            bool split_level = false;
            for (int s = 0; s < SEARCH_SPLIT_COUNT; s++) {
                char *sd = join_path(path, split_names[s]);
                if (sd && is_dir(sd)) {
                    split_level = true;
                    if (!rc)
                        rc = read_class_folders(sd, s, ds->class_names, k, &list, o->quiet, err);
                }
                free(sd);
            }
            if (!split_level)
                rc = read_class_folders(path, -1, ds->class_names, k, &list, o->quiet, err);
        }
        free(manifest);
    } else {
        rc = read_manifest(path, ds->class_names, k, &list, err);
    }
    if (rc)
        goto fail;
    if (list.count == 0) {
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: no frames listed", path);
        goto fail;
    }
    int32_t *pids = malloc((size_t)list.count * sizeof *pids);
    if (!pids || assign_patients(&list, o->seed, pids, &ds->num_patients)) {
        free(pids);
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    /* keep the wanted split */
    int keep = 0;
    for (int i = 0; i < list.count; i++) {
        if (o->only_split >= 0 && list.items[i].split != o->only_split) {
            free(list.items[i].path);
            free(list.items[i].patient);
            continue;
        }
        pids[keep] = pids[i];
        list.items[keep++] = list.items[i];
    }
    list.count = keep;
    if (keep == 0) {
        free(pids);
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: no frames in split '%s'", path,
                     search_split_name(o->only_split));
        goto fail;
    }
    const size_t fsz = (size_t)o->width * o->height * o->channels;
    size_t bytes;
    if (!ev_mul_size(fsz, (size_t)keep, &bytes) || !(ds->pixels = malloc(bytes)) ||
        !(ds->labels = malloc((size_t)keep * sizeof *ds->labels)) ||
        !(ds->split = malloc((size_t)keep)) || !(ds->quality = malloc((size_t)keep)) ||
        !(ds->patient = malloc((size_t)keep * sizeof *ds->patient)) ||
        !(ds->paths = calloc((size_t)keep, sizeof *ds->paths))) {
        free(pids);
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory for %d frames", keep);
        goto fail;
    }
    bool *bad = calloc((size_t)keep, 1);
    char(*msgs)[EV_ERROR_MESSAGE_SIZE] = calloc((size_t)keep, EV_ERROR_MESSAGE_SIZE);
    if (!bad || !msgs) {
        free(bad);
        free(msgs);
        free(pids);
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0)
        threads = 1;
    /* frames are decoded in chunks of about 16 on the engine's pool, one decode buffer per
     * thread; each frame lands in its own slot, so the thread count never changes the bytes */
    decode_job job = {.list = &list,
                      .o = o,
                      .pixels = ds->pixels,
                      .fsz = fsz,
                      .keep = keep,
                      .bad = bad,
                      .msgs = msgs};
    int chunks = (keep + 15) / 16;
    if (chunks > 65536)
        chunks = 65536;
    ev_pool *pool = NULL;
    if (threads > 1 && ev_pool_create(threads, EV_POOL_SLEEP, &pool))
        pool = NULL; /* no workers: decode on this thread */
    int tmp_threads = pool ? threads : 1;
    job.tmp = malloc((size_t)tmp_threads * fsz * sizeof(float));
    if (!job.tmp) {
        ev_pool_free(pool);
        free(bad);
        free(msgs);
        free(pids);
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    if (pool)
        ev_pool_run(pool, decode_chunk, &job, chunks);
    else
        for (int c = 0; c < chunks; c++)
            decode_chunk(&job, c, chunks, 0);
    ev_pool_free(pool);
    free(job.tmp);
    int n = 0;
    ds->num_listed = keep;
    for (int i = 0; i < keep; i++) {
        if (bad[i]) {
            ds->num_bad++;
            if (!o->quiet)
                fprintf(stderr, "warning: skipping %s: %s\n", list.items[i].path, msgs[i]);
            continue;
        }
        if (n != i)
            memmove(ds->pixels + (size_t)n * fsz, ds->pixels + (size_t)i * fsz, fsz);
        ds->labels[n] = list.items[i].label;
        ds->split[n] = (int8_t)list.items[i].split;
        ds->quality[n] = (int8_t)list.items[i].quality;
        ds->patient[n] = pids[i];
        ds->paths[n] = list.items[i].path;
        list.items[i].path = NULL;
        n++;
    }
    ds->count = n;
    ds->width = o->width;
    ds->height = o->height;
    ds->channels = o->channels;
    free(bad);
    free(msgs);
    free(pids);
    double limit = o->max_bad_fraction >= 0 ? o->max_bad_fraction : SEARCH_DEFAULT_MAX_BAD_FRACTION;
    if (ds->num_bad > 0 && !o->quiet)
        fprintf(stderr, "warning: %d of %d frames could not be read and were skipped\n",
                ds->num_bad, keep);
    if ((double)ds->num_bad > limit * keep || n == 0) {
        rc = ev_fail(err, EV_ERR_FORMAT,
                     "%s: %d of %d frames could not be read (more than the allowed %.1f%%); "
                     "fix the dataset or raise --max-bad-fraction",
                     path, ds->num_bad, keep, 100.0 * limit);
        goto fail;
    }
    if (!o->quiet) {
        int64_t per[EV_MAX_CLASSES] = {0};
        for (int i = 0; i < n; i++)
            per[ds->labels[i]]++;
        for (int c = 0; c < k; c++)
            if (!per[c])
                fprintf(stderr, "warning: %s: class '%s' has no frames\n", path, cn[c]);
    }
    list_free(&list);
    *out = ds;
    return EV_OK;
fail:
    list_free(&list);
    search_dataset_free(ds);
    return rc;
}

int search_dataset_select_classes(const search_dataset *ds, const int *classes, int count,
                                  search_dataset **out, ev_error *err)
{
    *out = NULL;
    if (count < 1 || count > ds->num_classes)
        return ev_fail(err, EV_ERR_INVALID, "dataset: %d classes selected of %d", count,
                       ds->num_classes);
    int map[EV_MAX_CLASSES];
    for (int c = 0; c < ds->num_classes; c++)
        map[c] = -1;
    for (int i = 0; i < count; i++) {
        if (classes[i] < 0 || classes[i] >= ds->num_classes || map[classes[i]] >= 0)
            return ev_fail(err, EV_ERR_INVALID, "dataset: bad or repeated class %d", classes[i]);
        map[classes[i]] = i;
    }
    search_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    *d = *ds;
    d->pixels = NULL, d->labels = NULL, d->split = NULL, d->patient = NULL, d->quality = NULL;
    d->paths = NULL, d->class_names = NULL, d->count = 0, d->num_classes = count;
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;
    int n = 0;
    for (int i = 0; i < ds->count; i++)
        n += map[ds->labels[i]] >= 0;
    d->class_names = calloc((size_t)count, sizeof(char *));
    d->paths = calloc((size_t)(n ? n : 1), sizeof(char *));
    d->pixels = malloc(fsz * (size_t)(n ? n : 1));
    d->labels = malloc((size_t)(n ? n : 1) * sizeof *d->labels);
    d->split = malloc((size_t)(n ? n : 1));
    d->quality = malloc((size_t)(n ? n : 1));
    d->patient = malloc((size_t)(n ? n : 1) * sizeof *d->patient);
    if (!d->class_names || !d->paths || !d->pixels || !d->labels || !d->split || !d->quality ||
        !d->patient) {
        search_dataset_free(d);
        return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    }
    d->num_classes = 0;
    for (int i = 0; i < count; i++, d->num_classes++)
        if (!(d->class_names[i] = strdup(ds->class_names[classes[i]]))) {
            search_dataset_free(d);
            return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        }
    for (int i = 0; i < ds->count; i++) {
        int l = map[ds->labels[i]];
        if (l < 0)
            continue;
        memcpy(d->pixels + (size_t)d->count * fsz, ds->pixels + (size_t)i * fsz, fsz);
        d->labels[d->count] = l;
        d->split[d->count] = ds->split[i];
        d->quality[d->count] = ds->quality[i];
        d->patient[d->count] = ds->patient[i];
        d->paths[d->count] = strdup(ds->paths[i] ? ds->paths[i] : "");
        d->count++;
    }
    *out = d;
    return EV_OK;
}
