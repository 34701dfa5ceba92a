/* dataset.c: training and evaluation datasets. Reads CSV manifests and image folders, assigns
 * patient-level splits when the data has none, decodes every frame (PNG, JPEG, PGM/PPM; 8/16-bit;
 * gray or colour) with media and runs it through ev_preprocess (crop, area resize to the model
 * input, luma) once, keeping the result in memory as uint8 so that epochs never touch the disk.
 *
 * Clips: a DICOM file (single- or multi-frame, media/dicom.h) is a clip; its frames are drawn
 * from it (all, every k-th, or N evenly spaced), each keeping the clip's ID (SOP Instance UID,
 * else the path) and its frame index. Its patient is the manifest's patient column, else the
 * --patient-regex match, else the PatientID tag, else the Study Instance UID; a DICOM without
 * an explicit ROI is cropped to its ultrasound region. A video file (MP4, AVI, MKV, ... through
 * GStreamer, media/video.h) is a clip too, sampled at video_fps before that selection; its
 * patient comes from the manifest or --patient-regex. Still images are clips of one frame
 * unless a manifest's clip (or sequence) column groups them.
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

#ifdef ECHOVIEW_HAVE_DICOM
#include "dicom.h"
#endif
#include "video.h" /* media_video_read only with ECHOVIEW_HAVE_VIDEO */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <regex.h>
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

/* A class name is written into model.yaml, the predictions CSV header (p_NAME), JSON and
 * element messages: valid UTF-8 without control characters, commas (the --classes separator)
 * or double quotes, at most SEARCH_CLASS_NAME_MAX bytes. Spaces and non-ASCII letters are
 * names like any other. */
static const char *class_name_problem(const char *s)
{
    size_t n = strlen(s);
    if (!n)
        return "is empty";
    if (n > SEARCH_CLASS_NAME_MAX)
        return "is longer than 64 bytes";
    if (s[0] == ' ' || s[n - 1] == ' ')
        return "begins or ends with a space";
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        if (*p < 0x20 || *p == 0x7f)
            return "has a control character";
        if (*p == ',' || *p == '"')
            return "has a comma or a double quote";
        int extra = *p < 0x80             ? 0
                    : (*p & 0xe0) == 0xc0 ? 1
                    : (*p & 0xf0) == 0xe0 ? 2
                    : (*p & 0xf8) == 0xf0 ? 3
                                          : -1;
        if (extra < 0 || (extra == 1 && *p < 0xc2))
            return "is not valid UTF-8";
        p++;
        for (int i = 0; i < extra; i++, p++)
            if ((*p & 0xc0) != 0x80)
                return "is not valid UTF-8";
    }
    return NULL;
}

int search_class_names_parse(const char *list, char ***names, int *count, ev_error *err)
{
    *names = NULL;
    *count = 0;
    if (!list)
        return ev_fail(err, EV_ERR_INVALID, "--classes: no list");
    char **out = calloc(EV_MAX_CLASSES + 1, sizeof *out);
    if (!out)
        return ev_fail(err, EV_ERR_NOMEM, "--classes: out of memory");
    int k = 0, rc = EV_OK;
    for (const char *p = list;; k++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') /* "A, B" is A and B */
            p++, len--;
        while (len && p[len - 1] == ' ')
            len--;
        if (k == EV_MAX_CLASSES) {
            rc = ev_fail(err, EV_ERR_INVALID, "--classes: more than %d classes", EV_MAX_CLASSES);
            break;
        }
        if (!(out[k] = strndup(p, len))) {
            rc = ev_fail(err, EV_ERR_NOMEM, "--classes: out of memory");
            break;
        }
        const char *why = class_name_problem(out[k]);
        if (why) {
            rc = ev_fail(err, EV_ERR_INVALID, "--classes: class %d '%s' %s", k + 1, out[k], why);
            k++;
            break;
        }
        /* folder and manifest labels match names loosely (search_class_lookup): two names
         * equal that way could not be told apart in the data */
        int same = search_class_lookup(out, k, out[k]);
        if (same >= 0) {
            rc = ev_fail(err, EV_ERR_INVALID,
                         "--classes: '%s' and '%s' name the same class (labels match ignoring "
                         "case, and '/', '-', '_' and ' ' are equal)",
                         out[same], out[k]);
            k++;
            break;
        }
        if (!end) {
            k++;
            break;
        }
        p = end + 1;
    }
    if (!rc && k < 2)
        rc = ev_fail(err, EV_ERR_INVALID, "--classes: %d class; a classifier needs 2 or more", k);
    if (rc) {
        for (int i = 0; i < k; i++)
            free(out[i]);
        free(out);
        return rc;
    }
    *names = out;
    *count = k;
    return EV_OK;
}

void search_class_names_free(char **names, int count)
{
    for (int i = 0; names && i < count; i++)
        free(names[i]);
    free(names);
}

typedef struct entry {
    char *path;
    int label, split, quality;
    char *patient; /* the path itself when nothing names one (patient_named false) */
    bool patient_named;
    bool has_roi;
    ev_rect roi;
    char *clip;  /* NULL: the path (a DICOM's SOP Instance UID once probed) */
    int frame;   /* index in a multi-frame file; -1 for a still image */
    int line;    /* manifest line (0 for folders), for messages */
    bool dicom;  /* decoded through media/dicom.h */
    bool video;  /* decoded through media/video.h */
    char *error; /* set when the file could not even be listed (a bad DICOM): a bad frame */
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

static void entry_free(entry *e)
{
    free(e->path);
    free(e->patient);
    free(e->clip);
    free(e->error);
}

static void list_free(entry_list *l)
{
    for (int i = 0; i < l->count; i++)
        entry_free(&l->items[i]);
    free(l->items);
}

/* The labels a dataset names when no class list is given (search_dataset_labels): each new
 * one (by the loose label match) is added. */
typedef struct label_set {
    char **names;
    int count;
    char *empty; /* the first class folder without frame files, NULL: none */
} label_set;

static int label_set_index(label_set *s, const char *label)
{
    int i = search_class_lookup(s->names, s->count, label);
    if (i >= 0)
        return i;
    if (s->count >= EV_MAX_CLASSES)
        return -2;
    char **p = realloc(s->names, (size_t)(s->count + 1) * sizeof *p);
    if (!p)
        return -1;
    s->names = p;
    if (!(p[s->count] = strdup(label)))
        return -1;
    return s->count++;
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
    COL_CLIP,
    NUM_COLS
};
static const char *const col_names[NUM_COLS] = {"path",  "label", "split", "patient", "quality",
                                                "roi_x", "roi_y", "roi_w", "roi_h",   "clip"};

/* Reads manifest lines from f; path names it in messages, and listed paths are relative to dir.
 * (Separate from the file handling so that tests/fuzz/fuzz_manifest.c can feed it memory.) */
static int read_manifest_stream(FILE *f, const char *path, const char *dir, char *const *classes,
                                int k, label_set *collect, entry_list *list, ev_error *err)
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
        char *t = line;
        if (lineno == 1 && !memcmp(t, "\xef\xbb\xbf", 3)) /* a UTF-8 byte-order mark (Excel's) */
            t += 3;
        t = trim(t);
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
                if (!strcasecmp(name, "sequence") && col[COL_CLIP] < 0) /* phantom --sequence */
                    col[COL_CLIP] = i;
            }
            if (col[COL_PATH] < 0 || col[COL_LABEL] < 0) {
                rc = ev_fail(err, EV_ERR_FORMAT,
                             "%s:%d: the header needs columns path and label (optional: split, "
                             "patient, quality, roi_x, roi_y, roi_w, roi_h, clip)",
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
        e.label = collect ? label_set_index(collect, label) : search_class_lookup(classes, k, label);
        if (e.label == -1 && collect) {
            rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        if (e.label == -2) {
            rc = ev_fail(err, EV_ERR_FORMAT, "%s:%d: label '%s': more than %d labels", path,
                         lineno, label, EV_MAX_CLASSES);
            break;
        }
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
        const char *clip =
            col[COL_CLIP] >= 0 && col[COL_CLIP] < nf ? trim(fields[col[COL_CLIP]]) : "";
        e.frame = -1;
        e.line = lineno;
        e.path = join_path(dir, trim(fields[col[COL_PATH]]));
        e.patient = strdup(*pat ? pat : e.path ? e.path : "");
        e.patient_named = *pat != 0;
        e.clip = *clip ? strdup(clip) : NULL;
        if (!e.path || !e.patient || (*clip && !e.clip) || list_add(list, &e)) {
            entry_free(&e);
            rc = ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
    }
    free(line);
    if (!rc && !header)
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: empty manifest (no header line)", path);
    return rc;
}

static int read_manifest(const char *path, char *const *classes, int k, label_set *collect,
                         entry_list *list, ev_error *err)
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
    int rc = read_manifest_stream(f, path, dir, classes, k, collect, list, err);
    fclose(f);
    return rc;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Frames by name: images, DICOM files (.dcm, .dicom) and, as DICOM exports often have no
 * extension, files without one (they are sniffed for the DICM magic when probed). */
static bool is_frame_file_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return true;
    static const char *const known[] = {".png",   ".pgm", ".ppm", ".pnm", ".jpg", ".jpeg", ".dcm",
                                        ".dicom", ".mp4", ".m4v", ".mov", ".avi", ".mkv",  ".webm"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcasecmp(dot, known[i]))
            return true;
    return false;
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

static bool has_dicom_magic(const char *path);

/* A file that is a frame, by its extension (or, without one, by the DICOM magic): one outside
 * any class folder is an error, not silently left out. */
static bool is_frame_file(const char *path, const char *name)
{
    if (!is_frame_file_name(name))
        return false;
    return strrchr(name, '.') || has_dicom_magic(path);
}

/* DIR/<class>/<image>; split given or -1. collect: take the folder names as labels (into it)
 * instead of looking them up in classes. */
static int read_class_folders(const char *dir, int split, char *const *classes, int k,
                              label_set *collect, entry_list *list, bool quiet, ev_error *err)
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
            if (is_frame_file(cdir, sub[i]))
                rc = ev_fail(err, EV_ERR_FORMAT,
                             "%s: a frame file outside any class folder (this folder holds one "
                             "folder per class: move it into %s/<class>/, or out)",
                             cdir, dir);
            free(cdir);
            continue;
        }
        int label = collect ? label_set_index(collect, sub[i]) : search_class_lookup(classes, k, sub[i]);
        if (label == -1 && collect) {
            rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            free(cdir);
            break;
        }
        if (label == -2) {
            rc = ev_fail(err, EV_ERR_FORMAT, "%s: more than %d class folders", dir,
                         EV_MAX_CLASSES);
            free(cdir);
            break;
        }
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
            if (!is_frame_file_name(files[j]))
                continue;
            entry e = {.label = label, .split = split, .frame = -1};
            e.path = join_path(cdir, files[j]);
            if (e.path && is_dir(e.path)) {
                free(e.path);
                continue;
            }
            e.patient = e.path ? strdup(e.path) : NULL;
            if (!e.path || !e.patient || list_add(list, &e)) {
                entry_free(&e);
                rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            }
            added++;
        }
        if (!rc && !added && collect && !collect->empty)
            collect->empty = strdup(cdir);
        else if (!rc && !added && !quiet && !collect)
            fprintf(stderr, "warning: %s: class folder has no PNG, JPEG, PGM or DICOM files\n",
                    cdir);
        free_names(files, nfiles);
        free(cdir);
    }
    free_names(sub, nsub);
    return rc;
}

/* Every frame file under dir, at any depth (a hospital export's patient/study/series tree),
 * label 0: frames for label-free work (echoview adapt). */
static int read_unlabelled_tree(const char *dir, int depth, entry_list *list, ev_error *err)
{
    if (depth > 16)
        return ev_fail(err, EV_ERR_FORMAT, "%s: folders nested deeper than 16 levels", dir);
    char **names;
    int n, rc = list_dir(dir, &names, &n, err);
    for (int i = 0; i < n && !rc; i++) {
        char *p = join_path(dir, names[i]);
        if (!p) {
            rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            break;
        }
        if (is_dir(p)) {
            rc = read_unlabelled_tree(p, depth + 1, list, err);
            free(p);
            continue;
        }
        if (!is_frame_file_name(names[i]) || !strcmp(names[i], "manifest.csv")) {
            free(p);
            continue;
        }
        entry e = {.label = 0, .split = -1, .frame = -1, .path = p};
        e.patient = strdup(p);
        if (!e.patient || list_add(list, &e)) {
            entry_free(&e);
            rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
        }
    }
    free_names(names, n);
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

/* Runs job over chunks on the engine's pool with `threads` threads, or on this thread when
 * there is one thread or no pool could start (thread ids stay below `threads` either way). */
static void run_chunks(int threads, ev_pool_job job, void *arg, int chunks)
{
    ev_pool *pool = NULL;
    if (threads > 1 && ev_pool_create(threads, EV_POOL_SLEEP, &pool))
        pool = NULL; /* no workers: run here */
    if (pool)
        ev_pool_run(pool, job, arg, chunks);
    else
        for (int c = 0; c < chunks; c++)
            job(arg, c, chunks, 0);
    ev_pool_free(pool);
}

/* ---- clips: DICOM files probed for their frames and tags ------------------------------------ */

static bool has_dicom_name(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (!strcasecmp(dot, ".dcm") || !strcasecmp(dot, ".dicom"));
}

/* Part 10 files carry "DICM" after a 128-byte preamble. */
static bool has_dicom_magic(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t head[132];
    bool yes = fread(head, 1, sizeof head, f) == sizeof head && !memcmp(head + 128, "DICM", 4);
    fclose(f);
    return yes;
}

#ifdef ECHOVIEW_HAVE_VIDEO
static bool count_frame(void *user, int index, const uint8_t *pixels, int width, int height,
                        int stride, int channels)
{
    (void)user, (void)index, (void)pixels, (void)width, (void)height, (void)stride;
    (void)channels;
    return true;
}
#endif

typedef struct clip_probe {
    bool dicom, video;
    unsigned frames;
    bool has_region;
    ev_rect region;
    char patient[65], study[65], instance[65];
    char error[EV_ERROR_MESSAGE_SIZE]; /* empty when the file opened */
} clip_probe;

static void probe_file(const char *path, const search_dataset_options *o, clip_probe *p)
{
    if (media_video_is_name(path)) {
        p->video = true;
#ifdef ECHOVIEW_HAVE_VIDEO
        ev_error e = {0};
        int n = 0;
        if (media_video_read(path, o->video_fps, o->channels == 3 ? 3 : 1, count_frame, NULL, &n,
                             &e))
            snprintf(p->error, sizeof p->error, "%s", e.message);
        p->frames = (unsigned)n;
#else
        (void)o;
        snprintf(p->error, sizeof p->error,
                 "%s: a video file, but this build has no GStreamer (install "
                 "libgstreamer-plugins-base1.0-dev and rebuild)",
                 path);
#endif
        return;
    }
    p->dicom = has_dicom_name(path) || has_dicom_magic(path);
    if (!p->dicom)
        return;
#ifdef ECHOVIEW_HAVE_DICOM
    media_dicom *d = NULL;
    ev_error e = {0};
    if (media_dicom_open(path, &d, &e)) {
        snprintf(p->error, sizeof p->error, "%s", e.message);
        return;
    }
    const media_dicom_info *in = media_dicom_get_info(d);
    p->frames = in->frames;
    p->has_region = in->has_region && in->region_width > 0 && in->region_height > 0;
    p->region = (ev_rect){in->region_x, in->region_y, in->region_width, in->region_height};
    snprintf(p->patient, sizeof p->patient, "%s", in->patient_id);
    snprintf(p->study, sizeof p->study, "%s", in->study_instance_uid);
    snprintf(p->instance, sizeof p->instance, "%s", in->sop_instance_uid);
    media_dicom_close(d);
#else
    snprintf(p->error, sizeof p->error,
             "%s: a DICOM file, but this build has no DICOM support (install DCMTK and rebuild)",
             path);
#endif
}

/* How many frames of a clip of `frames` are used, and which: every frame by default, every
 * k-th (clip_frame_step), or N evenly spaced ones (frames_per_clip: the centre of each of N
 * equal stretches, so a 60-frame loop at N = 3 gives frames 10, 30 and 50). */
static unsigned clip_frames_used(unsigned frames, const search_dataset_options *o)
{
    if (o->frames_per_clip > 0)
        return (unsigned)o->frames_per_clip < frames ? (unsigned)o->frames_per_clip : frames;
    unsigned step = o->clip_frame_step > 1 ? (unsigned)o->clip_frame_step : 1;
    return (frames + step - 1) / step;
}

static unsigned clip_frame_index(unsigned frames, unsigned i, const search_dataset_options *o)
{
    if (o->frames_per_clip > 0 && (unsigned)o->frames_per_clip < frames)
        return (unsigned)(((uint64_t)2 * i + 1) * frames / (2 * (uint64_t)o->frames_per_clip));
    if (o->frames_per_clip > 0)
        return i;
    return i * (o->clip_frame_step > 1 ? (unsigned)o->clip_frame_step : 1);
}

typedef struct probe_job {
    const entry_list *list;
    clip_probe *probes;
    const search_dataset_options *o;
} probe_job;

static void probe_chunk(void *arg, int chunk, int chunks, int thread)
{
    const probe_job *j = arg;
    (void)thread;
    int lo = (int)((int64_t)chunk * j->list->count / chunks);
    int hi = (int)((int64_t)(chunk + 1) * j->list->count / chunks);
    for (int i = lo; i < hi; i++)
        probe_file(j->list->items[i].path, j->o, &j->probes[i]);
}

/* Replaces each DICOM entry of l by one entry per frame used, with the patient and clip from
 * its tags where nothing else named them and its ultrasound region as ROI. A file that cannot
 * be opened stays one entry carrying its error (a bad frame, like an unreadable PNG). */
static int expand_clips(entry_list *l, const search_dataset_options *o, int threads, ev_error *err)
{
    clip_probe *probes = calloc((size_t)l->count, sizeof *probes);
    if (!probes)
        return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    probe_job job = {l, probes, o};
    int chunks = (l->count + 3) / 4;
    run_chunks(threads, probe_chunk, &job, chunks > 65536 ? 65536 : chunks);
    entry_list out = {0};
    int rc = EV_OK;
    for (int i = 0; i < l->count && !rc; i++) {
        entry *e = &l->items[i];
        clip_probe *p = &probes[i];
        if ((!p->dicom && !p->video) || p->error[0]) {
            e->dicom = p->dicom;
            e->video = p->video;
            if (p->error[0] && !(e->error = strdup(p->error)))
                rc = EV_ERR_NOMEM;
            if (!rc && (rc = list_add(&out, e)) == 0)
                memset(e, 0, sizeof *e);
            continue;
        }
        const char *tag_patient = p->patient[0] ? p->patient : p->study;
        const char *clip = e->clip ? e->clip : p->instance[0] ? p->instance : e->path;
        unsigned used = clip_frames_used(p->frames, o);
        for (unsigned j = 0; j < used && !rc; j++) {
            entry f = *e;
            f.dicom = p->dicom;
            f.video = p->video;
            f.frame = (int)clip_frame_index(p->frames, j, o);
            f.path = strdup(e->path);
            if (!e->patient_named && tag_patient[0]) {
                f.patient = strdup(tag_patient);
                f.patient_named = true;
            } else {
                f.patient = strdup(e->patient);
            }
            f.clip = strdup(clip);
            if (!e->has_roi && p->has_region) {
                f.has_roi = true;
                f.roi = p->region;
            }
            f.error = NULL;
            if (!f.path || !f.patient || !f.clip || list_add(&out, &f)) {
                entry_free(&f);
                rc = EV_ERR_NOMEM;
            }
        }
        entry_free(e);
        memset(e, 0, sizeof *e);
    }
    free(probes);
    list_free(l);
    *l = out;
    return rc ? ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory") : EV_OK;
}

/* Decodes one frame into out (channels x h x w uint8 at the model size); roi_hint is the
 * entry's ROI (explicit, or a DICOM's ultrasound region). */
static int preprocess_frame(const ev_frame *frame, const entry *e, const search_dataset_options *o,
                            float *tmp, uint8_t *out, ev_error *err)
{
    ev_rect roi, *use = NULL;
    if (e->has_roi) {
        roi = e->roi;
        use = &roi;
    } else if (o->auto_roi && ev_detect_roi(frame, &roi) == EV_OK) {
        use = &roi;
    }
    ev_preprocess_params pp = {.width = o->width,
                               .height = o->height,
                               .channels = o->channels,
                               .scale = 1.0f,
                               .mean = {0, 0, 0},
                               .std = {1, 1, 1}};
    int rc = ev_preprocess(&pp, frame, use, tmp, err);
    if (!rc) {
        size_t n = (size_t)o->width * o->height * o->channels;
        for (size_t i = 0; i < n; i++) {
            float v = tmp[i] + 0.5f;
            out[i] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    }
    return rc;
}

static int load_image(const entry *e, const search_dataset_options *o, float *tmp, uint8_t *out,
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
    if (!rc)
        rc = preprocess_frame(&frame, e, o, tmp, out, err);
    media_image_free(&gray);
    media_image_free(&img);
    return rc;
}

/* Decodes the frames items[first..first+count) of one DICOM file, opening it once; bad[] and
 * msgs[] get each frame's failure. */
static void load_dicom_frames(const entry *items, int count, const search_dataset_options *o,
                              float *tmp, uint8_t *pixels, size_t frame_bytes, bool *bad,
                              char (*msgs)[EV_ERROR_MESSAGE_SIZE])
{
    ev_error e = {0};
    int rc = EV_OK;
    if (items[0].error) {
        rc = ev_fail(&e, EV_ERR_FORMAT, "%s", items[0].error);
    } else {
#ifdef ECHOVIEW_HAVE_DICOM
        media_dicom *d = NULL;
        uint8_t *buffer = NULL;
        if (!(rc = media_dicom_open(items[0].path, &d, &e))) {
            const media_dicom_info *in = media_dicom_get_info(d);
            size_t stride = (size_t)in->width * (size_t)in->channels;
            if (!(buffer = malloc(stride * (size_t)in->height)))
                rc = ev_fail(&e, EV_ERR_NOMEM, "%s: out of memory", items[0].path);
            for (int i = 0; i < count && !rc; i++) {
                ev_error fe = {0};
                ev_frame frame = {.data = buffer,
                                  .width = in->width,
                                  .height = in->height,
                                  .stride = (int)stride,
                                  .format = in->channels == 3 ? EV_PIXEL_RGB : EV_PIXEL_GRAY8};
                if (media_dicom_read_frame(d, (unsigned)items[i].frame, buffer, stride, &fe) ||
                    preprocess_frame(&frame, &items[i], o, tmp, pixels + (size_t)i * frame_bytes,
                                     &fe)) {
                    bad[i] = true;
                    snprintf(msgs[i], EV_ERROR_MESSAGE_SIZE, "frame %d: %.400s", items[i].frame,
                             fe.message);
                }
            }
        }
        free(buffer);
        media_dicom_close(d);
#else
        rc = ev_fail(&e, EV_ERR_UNSUPPORTED, "%s: no DICOM support in this build", items[0].path);
#endif
    }
    if (rc)
        for (int i = 0; i < count; i++) {
            bad[i] = true;
            snprintf(msgs[i], EV_ERROR_MESSAGE_SIZE, "%s", e.message);
        }
}

/* Decodes the frames items[0..count) of one video (their indices ascending), reading it once. */
typedef struct video_slots {
    const entry *items;
    int count, next;
    const search_dataset_options *o;
    float *tmp;
    uint8_t *pixels;
    size_t frame_bytes;
    bool *bad;
    char (*msgs)[EV_ERROR_MESSAGE_SIZE];
} video_slots;

#ifdef ECHOVIEW_HAVE_VIDEO
static bool video_frame(void *user, int index, const uint8_t *pixels, int width, int height,
                        int stride, int channels)
{
    video_slots *v = user;
    while (v->next < v->count && v->items[v->next].frame < index)
        v->next++; /* cannot happen for ascending indices; kept safe */
    if (v->next < v->count && v->items[v->next].frame == index) {
        ev_frame frame = {.data = pixels,
                          .width = width,
                          .height = height,
                          .stride = stride,
                          .format = channels == 3 ? EV_PIXEL_RGB : EV_PIXEL_GRAY8};
        ev_error e = {0};
        if (preprocess_frame(&frame, &v->items[v->next], v->o, v->tmp,
                             v->pixels + (size_t)v->next * v->frame_bytes, &e)) {
            v->bad[v->next] = true;
            snprintf(v->msgs[v->next], EV_ERROR_MESSAGE_SIZE, "frame %d: %.400s", index, e.message);
        }
        v->next++;
    }
    return v->next < v->count;
}
#endif

static void load_video_frames(const entry *items, int count, const search_dataset_options *o,
                              float *tmp, uint8_t *pixels, size_t frame_bytes, bool *bad,
                              char (*msgs)[EV_ERROR_MESSAGE_SIZE])
{
    ev_error e = {0};
    int rc = EV_OK;
    video_slots v = {items, count, 0, o, tmp, pixels, frame_bytes, bad, msgs};
    if (items[0].error) {
        rc = ev_fail(&e, EV_ERR_FORMAT, "%s", items[0].error);
    } else {
#ifdef ECHOVIEW_HAVE_VIDEO
        rc = media_video_read(items[0].path, o->video_fps, o->channels == 3 ? 3 : 1, video_frame,
                              &v, NULL, &e);
        if (!rc && v.next < count)
            rc = ev_fail(&e, EV_ERR_FORMAT, "%s: %d frames fewer on the second reading",
                         items[0].path, count - v.next);
#else
        rc = ev_fail(&e, EV_ERR_UNSUPPORTED, "%s: no video support in this build", items[0].path);
#endif
    }
    if (rc)
        for (int i = v.next; i < count; i++) {
            bad[i] = true;
            snprintf(msgs[i], EV_ERROR_MESSAGE_SIZE, "%s", e.message);
        }
}

/* Path of a file relative to the data root, for --patient-regex. */
static const char *relative_path(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (n && !strncmp(path, root, n) && path[n] == '/')
        return path + n + 1;
    return path;
}

/* Patients from --patient-regex for entries nothing else named: the first capture group, or
 * the whole match when the pattern has none. A file it does not match is an error: silently
 * falling back to one patient per frame is the leak the option exists to prevent. */
static int apply_patient_regex(entry_list *l, const char *pattern, const char *root, ev_error *err)
{
    regex_t re;
    int code = regcomp(&re, pattern, REG_EXTENDED);
    if (code) {
        char why[128];
        regerror(code, &re, why, sizeof why);
        return ev_fail(err, EV_ERR_INVALID, "--patient-regex '%s': %s", pattern, why);
    }
    int rc = EV_OK;
    for (int i = 0; i < l->count && !rc; i++) {
        entry *e = &l->items[i];
        if (e->patient_named)
            continue;
        const char *rel = relative_path(e->path, root);
        regmatch_t m[2];
        if (regexec(&re, rel, 2, m, 0) != 0) {
            rc = ev_fail(err, EV_ERR_FORMAT, "%s: --patient-regex '%s' does not match '%s'",
                         e->path, pattern, rel);
            break;
        }
        int g = re.re_nsub >= 1 && m[1].rm_so >= 0 ? 1 : 0;
        int len = (int)(m[g].rm_eo - m[g].rm_so);
        if (len == 0) {
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "%s: --patient-regex '%s' matches '%s' with an empty patient ID", e->path,
                         pattern, rel);
            break;
        }
        char *p = malloc((size_t)len + 1);
        if (!p) {
            rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
            break;
        }
        memcpy(p, rel + m[g].rm_so, (size_t)len);
        p[len] = 0;
        free(e->patient);
        e->patient = p;
        e->patient_named = true;
    }
    regfree(&re);
    return rc;
}

/* A patient in two splits leaks its near-duplicate frames from training into evaluation. */
static int check_patient_splits(const entry_list *l, const char *source, ev_error *err)
{
    patient_ref *refs = malloc((size_t)(l->count ? l->count : 1) * sizeof *refs);
    if (!refs)
        return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    int n = 0;
    for (int i = 0; i < l->count; i++)
        if (l->items[i].split >= 0)
            refs[n++] = (patient_ref){l->items[i].patient, 0, i};
    qsort(refs, (size_t)n, sizeof *refs, cmp_patient_name);
    int rc = EV_OK;
    for (int i = 1; i < n && !rc; i++) {
        if (strcmp(refs[i].name, refs[i - 1].name))
            continue;
        /* within one patient the order is not stable: find any frame of another split */
        int j = i - 1;
        while (j > 0 && !strcmp(refs[j - 1].name, refs[i].name))
            j--;
        const entry *a = &l->items[refs[j].index], *b = &l->items[refs[i].index];
        if (a->split == b->split)
            continue;
        if (a->line > b->line || (a->line == b->line && strcmp(a->path, b->path) > 0)) {
            const entry *t = a;
            a = b;
            b = t;
        }
        if (a->line)
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "%s:%d: patient '%s' is in split '%s' here and in split '%s' on line %d; "
                         "a patient's frames must all be in one split",
                         source, b->line, b->patient, search_split_name(b->split),
                         search_split_name(a->split), a->line);
        else
            rc = ev_fail(err, EV_ERR_FORMAT,
                         "%s: patient '%s' is in split '%s' (%s) and in split '%s' (%s); a "
                         "patient's frames must all be in one split",
                         source, b->patient, search_split_name(b->split), b->path,
                         search_split_name(a->split), a->path);
    }
    free(refs);
    return rc;
}

static int apply_model_split(entry_list *l, const search_dataset_options *o, const char *path,
                             uint64_t data_hash, ev_error *err)
{
    const char **patients = malloc((size_t)(l->count ? l->count : 1) * sizeof *patients);
    int *splits = malloc((size_t)(l->count ? l->count : 1) * sizeof *splits);
    bool given = false;
    int rc = EV_OK;
    if (!patients || !splits) {
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    } else {
        for (int i = 0; i < l->count; i++) {
            patients[i] = l->items[i].patient;
            splits[i] = l->items[i].split;
            given |= splits[i] >= 0;
        }
        rc = search_split_record_apply(o->model_split, patients, splits, l->count, given, data_hash,
                                       o->only_split, path, o->quiet, err);
        for (int i = 0; !rc && i < l->count; i++)
            l->items[i].split = splits[i];
    }
    free(patients);
    free(splits);
    return rc;
}

/* Dense ids of keys[0..n) in name order, and the names (owned by the caller). */
static int dense_ids(const char *const *keys, int n, int32_t *ids, char ***names, int *count)
{
    patient_ref *refs = malloc((size_t)(n ? n : 1) * sizeof *refs);
    if (!refs)
        return -1;
    for (int i = 0; i < n; i++)
        refs[i] = (patient_ref){keys[i], 0, i};
    qsort(refs, (size_t)n, sizeof *refs, cmp_patient_name);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(refs[i].name, refs[i - 1].name))
            k++;
        ids[refs[i].index] = k - 1;
    }
    *names = calloc((size_t)(k ? k : 1), sizeof **names);
    int rc = *names ? 0 : -1;
    for (int i = 0, w = 0; i < n && !rc; i++)
        if (i == 0 || strcmp(refs[i].name, refs[i - 1].name))
            if (!((*names)[w++] = strdup(refs[i].name)))
                rc = -1;
    *count = k;
    free(refs);
    return rc;
}

static void free_name_array(char **names, int count)
{
    if (names)
        for (int i = 0; i < count; i++)
            free(names[i]);
    free(names);
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
    free(ds->clip);
    free(ds->frame);
    if (ds->paths)
        for (int i = 0; i < ds->count; i++)
            free(ds->paths[i]);
    free(ds->paths);
    free_name_array(ds->class_names, ds->num_classes);
    free_name_array(ds->patient_names, ds->num_patients);
    free_name_array(ds->clip_names, ds->num_clips);
    free(ds);
}

/* Groups [chunk * ngroups / chunks, ...) of frames into their slots: a group is one still
 * image, or the frames of one DICOM file (opened once). */
typedef struct decode_job {
    const entry_list *list;
    const search_dataset_options *o;
    uint8_t *pixels;
    size_t fsz;
    const int *group; /* ngroups + 1 starts */
    int ngroups;
    bool *bad;
    char (*msgs)[EV_ERROR_MESSAGE_SIZE];
    float *tmp; /* fsz floats per thread */
} decode_job;

static void decode_chunk(void *arg, int chunk, int chunks, int thread)
{
    const decode_job *j = arg;
    float *tmp = j->tmp + (size_t)thread * j->fsz;
    int lo = (int)((int64_t)chunk * j->ngroups / chunks);
    int hi = (int)((int64_t)(chunk + 1) * j->ngroups / chunks);
    for (int g = lo; g < hi; g++) {
        int first = j->group[g], count = j->group[g + 1] - first;
        const entry *e = &j->list->items[first];
        if (e->video) {
            load_video_frames(e, count, j->o, tmp, j->pixels + (size_t)first * j->fsz, j->fsz,
                              j->bad + first, j->msgs + first);
        } else if (e->dicom) {
            load_dicom_frames(e, count, j->o, tmp, j->pixels + (size_t)first * j->fsz, j->fsz,
                              j->bad + first, j->msgs + first);
        } else {
            ev_error fe = {0};
            if (load_image(e, j->o, tmp, j->pixels + (size_t)first * j->fsz, &fe)) {
                j->bad[first] = true;
                snprintf(j->msgs[first], EV_ERROR_MESSAGE_SIZE, "%s", fe.message);
            }
        }
    }
}

int search_dataset_labels_check(const char *path, char *const *names, int count, ev_error *err)
{
    for (int i = 0; i < count; i++) {
        const char *why = class_name_problem(names[i]);
        if (why)
            return ev_fail(err, EV_ERR_FORMAT, "%s: the label '%s' cannot be a class name: it %s",
                           path, names[i], why);
    }
    if (count < 2)
        return ev_fail(err, EV_ERR_FORMAT,
                       "%s: %d class label%s (%s); a classifier needs 2 or more (or give "
                       "--classes)",
                       path, count, count == 1 ? "" : "s", count ? names[0] : "none");
    return EV_OK;
}

int search_dataset_labels(const char *path, char ***names, int *count, char **empty_folder,
                          ev_error *err)
{
    *names = NULL;
    *count = 0;
    if (empty_folder)
        *empty_folder = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    label_set set = {0};
    entry_list list = {0};
    int rc = EV_OK;
    char *manifest = S_ISDIR(st.st_mode) ? join_path(path, "manifest.csv") : NULL;
    struct stat ms;
    if (!S_ISDIR(st.st_mode)) {
        rc = read_manifest(path, NULL, 0, &set, &list, err);
    } else if (manifest && stat(manifest, &ms) == 0) {
        rc = read_manifest(manifest, NULL, 0, &set, &list, err);
    } else {
        bool split_level = false;
        for (int s = 0; s < SEARCH_SPLIT_COUNT && !rc; s++) {
            char *sd = join_path(path, split_names[s]);
            if (sd && is_dir(sd)) {
                split_level = true;
                rc = read_class_folders(sd, s, NULL, 0, &set, &list, true, err);
            }
            free(sd);
        }
        if (!split_level && !rc)
            rc = read_class_folders(path, -1, NULL, 0, &set, &list, true, err);
    }
    free(manifest);
    list_free(&list);
    if (rc) {
        free_name_array(set.names, set.count);
        free(set.empty);
        return rc;
    }
    qsort(set.names, (size_t)set.count, sizeof *set.names, cmp_str);
    *names = set.names;
    *count = set.count;
    if (empty_folder)
        *empty_folder = set.empty;
    else
        free(set.empty);
    return EV_OK;
}

int search_dataset_load(const char *path, const search_dataset_options *o, search_dataset **out,
                        ev_error *err)
{
    *out = NULL;
    if (o->width < 1 || o->height < 1 || o->width > 4096 || o->height > 4096 || o->channels < 1 ||
        o->channels > 3)
        return ev_fail(err, EV_ERR_INVALID, "dataset: bad input geometry %dx%dx%d", o->width,
                       o->height, o->channels);
    if (o->frames_per_clip < 0 || o->clip_frame_step < 0 ||
        (o->frames_per_clip > 0 && o->clip_frame_step > 1))
        return ev_fail(err, EV_ERR_INVALID,
                       "dataset: frames per clip %d and clip frame step %d: give one of them",
                       o->frames_per_clip, o->clip_frame_step);
    int k = o->num_classes > 0 ? o->num_classes : 14;
    const char *const *cn = o->class_names ? o->class_names : (const char *const *)ev_echo_views;
    search_dataset *ds = calloc(1, sizeof *ds);
    entry_list list = {0};
    int32_t *pids = NULL, *cids = NULL;
    const char **keys = NULL;
    bool *bad = NULL;
    char(*msgs)[EV_ERROR_MESSAGE_SIZE] = NULL;
    char root[PATH_MAX];
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
    const char *source = path; /* what split-conflict messages name */
    char *manifest = NULL;
    snprintf(root, sizeof root, "%s", path);
    if (o->unlabelled) {
        if (!S_ISDIR(st.st_mode))
            rc = ev_fail(err, EV_ERR_INVALID,
                         "%s: unlabelled frames come from a folder (its files at any depth)", path);
        else
            rc = read_unlabelled_tree(path, 0, &list, err);
    } else if (S_ISDIR(st.st_mode)) {
        manifest = join_path(path, "manifest.csv");
        struct stat ms;
        if (manifest && stat(manifest, &ms) == 0) {
            rc = read_manifest(manifest, ds->class_names, k, NULL, &list, err);
            source = manifest;
        } else {
            bool split_level = false;
            for (int s = 0; s < SEARCH_SPLIT_COUNT; s++) {
                char *sd = join_path(path, split_names[s]);
                if (sd && is_dir(sd)) {
                    split_level = true;
                    if (!rc)
                        rc = read_class_folders(sd, s, ds->class_names, k, NULL, &list, o->quiet,
                                                err);
                }
                free(sd);
            }
            if (!split_level)
                rc = read_class_folders(path, -1, ds->class_names, k, NULL, &list, o->quiet, err);
        }
    } else {
        rc = read_manifest(path, ds->class_names, k, NULL, &list, err);
        char *slash = strrchr(root, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(root, sizeof root, ".");
    }
    if (!rc && list.count == 0)
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: no frames listed", path);
    /* what the split record's manifest_hash identifies: the listed files, relative to the
     * data root (so a moved copy hashes the same), with what the data says about each */
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; !rc && i < list.count; i++) {
        const entry *e = &list.items[i];
        char extra[64];
        snprintf(extra, sizeof extra, "|%d|%d|", e->label, e->split);
        h = hash_str(relative_path(e->path, root), h);
        h = hash_str(extra, h);
        h = hash_str(e->patient_named ? e->patient : "", h);
        h = hash_str("\n", h);
    }
    ds->data_hash = h;
    int threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0)
        threads = 1;
    if (!rc && o->patient_regex)
        rc = apply_patient_regex(&list, o->patient_regex, root, err);
    if (!rc)
        rc = expand_clips(&list, o, threads, err);
    if (!rc)
        rc = check_patient_splits(&list, source, err);
    bool given_split = false;
    for (int i = 0; !rc && i < list.count; i++)
        given_split |= list.items[i].split >= 0;
    if (!rc && o->model_split)
        rc = apply_model_split(&list, o, path, ds->data_hash, err);
    if (rc) {
        free(manifest);
        goto fail;
    }
    for (int i = 0; i < list.count; i++)
        ds->num_unidentified += !list.items[i].patient_named;
    ds->split_given = given_split;
    /* (unlabelled frames are not split into training and test: no leak to warn of) */
    if (!given_split && ds->num_unidentified > 0 && !o->quiet && !o->model_split && !o->unlabelled)
        fprintf(stderr,
                "warning: %s: %d of %d frames have no patient ID (no patient column, DICOM "
                "PatientID or --patient-regex), so they are split one by one: frames of one loop "
                "can land in both training and test; give --patient-regex\n",
                path, ds->num_unidentified, list.count);
    free(manifest);
    pids = malloc((size_t)list.count * sizeof *pids);
    cids = malloc((size_t)list.count * sizeof *cids);
    keys = malloc((size_t)list.count * sizeof *keys);
    if (!pids || !cids || !keys || assign_patients(&list, o->seed, pids, &ds->num_patients)) {
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    for (int i = 0; i < list.count; i++)
        keys[i] = list.items[i].patient;
    if (dense_ids(keys, list.count, pids, &ds->patient_names, &ds->num_patients)) {
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    /* keep the wanted split */
    int keep = 0;
    for (int i = 0; i < list.count; i++) {
        if (o->only_split >= 0 && list.items[i].split != o->only_split) {
            entry_free(&list.items[i]);
            continue;
        }
        pids[keep] = pids[i];
        list.items[keep++] = list.items[i];
    }
    list.count = keep;
    if (keep == 0) {
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
        !(ds->clip = malloc((size_t)keep * sizeof *ds->clip)) ||
        !(ds->frame = malloc((size_t)keep * sizeof *ds->frame)) ||
        !(ds->paths = calloc((size_t)keep, sizeof *ds->paths))) {
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory for %d frames", keep);
        goto fail;
    }
    bad = calloc((size_t)keep, 1);
    msgs = calloc((size_t)keep, EV_ERROR_MESSAGE_SIZE);
    int *group = malloc((size_t)(keep + 1) * sizeof *group); /* runs of one DICOM file */
    if (!bad || !msgs || !group) {
        free(group);
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    int ngroups = 0;
    for (int i = 0; i < keep; i++)
        if (i == 0 || !(list.items[i].dicom || list.items[i].video) ||
            list.items[i].dicom != list.items[i - 1].dicom ||
            list.items[i].video != list.items[i - 1].video ||
            strcmp(list.items[i].path, list.items[i - 1].path))
            group[ngroups++] = i;
    group[ngroups] = keep;
    /* groups are decoded in chunks of about 4 on the engine's pool, one decode buffer per
     * thread; each frame lands in its own slot, so the thread count never changes the bytes */
    decode_job job = {.list = &list,
                      .o = o,
                      .pixels = ds->pixels,
                      .fsz = fsz,
                      .group = group,
                      .ngroups = ngroups,
                      .bad = bad,
                      .msgs = msgs};
    int chunks = (ngroups + 3) / 4;
    if (chunks > 65536)
        chunks = 65536;
    if (!(job.tmp = malloc((size_t)threads * fsz * sizeof(float)))) {
        free(group);
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
    run_chunks(threads, decode_chunk, &job, chunks);
    free(job.tmp);
    free(group);
    for (int i = 0; i < keep; i++)
        keys[i] = list.items[i].clip ? list.items[i].clip : list.items[i].path;
    if (dense_ids(keys, keep, cids, &ds->clip_names, &ds->num_clips)) {
        rc = ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
        goto fail;
    }
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
        ds->clip[n] = cids[i];
        ds->frame[n] = list.items[i].frame;
        ds->paths[n] = list.items[i].path;
        list.items[i].path = NULL;
        n++;
    }
    ds->count = n;
    ds->width = o->width;
    ds->height = o->height;
    ds->channels = o->channels;
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
    if (!o->quiet && !o->unlabelled) {
        int64_t per[EV_MAX_CLASSES] = {0};
        for (int i = 0; i < n; i++)
            per[ds->labels[i]]++;
        for (int c = 0; c < k; c++)
            if (!per[c])
                fprintf(stderr, "warning: %s: class '%s' has no frames\n", path, cn[c]);
    }
    free(bad);
    free(msgs);
    free(pids);
    free(cids);
    free(keys);
    list_free(&list);
    *out = ds;
    return EV_OK;
fail:
    free(bad);
    free(msgs);
    free(pids);
    free(cids);
    free(keys);
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
    d->clip = NULL, d->frame = NULL, d->patient_names = NULL, d->clip_names = NULL;
    d->num_patients = 0, d->num_clips = 0;
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
    d->clip = malloc((size_t)(n ? n : 1) * sizeof *d->clip);
    d->frame = malloc((size_t)(n ? n : 1) * sizeof *d->frame);
    /* ids keep their meaning: the name tables are copied whole */
    d->patient_names = calloc((size_t)(ds->num_patients ? ds->num_patients : 1), sizeof(char *));
    d->clip_names = calloc((size_t)(ds->num_clips ? ds->num_clips : 1), sizeof(char *));
    bool names_ok = d->patient_names && d->clip_names;
    for (int i = 0; names_ok && i < ds->num_patients && ds->patient_names; i++, d->num_patients++)
        names_ok = (d->patient_names[i] = strdup(ds->patient_names[i])) != NULL;
    for (int i = 0; names_ok && i < ds->num_clips && ds->clip_names; i++, d->num_clips++)
        names_ok = (d->clip_names[i] = strdup(ds->clip_names[i])) != NULL;
    if (!d->class_names || !d->paths || !d->pixels || !d->labels || !d->split || !d->quality ||
        !d->patient || !d->clip || !d->frame || !names_ok) {
        search_dataset_free(d);
        return ev_fail(err, EV_ERR_NOMEM, "dataset: out of memory");
    }
    d->num_patients = ds->num_patients, d->num_clips = ds->num_clips;
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
        d->clip[d->count] = ds->clip ? ds->clip[i] : 0;
        d->frame[d->count] = ds->frame ? ds->frame[i] : -1;
        d->paths[d->count] = strdup(ds->paths[i] ? ds->paths[i] : "");
        d->count++;
    }
    *out = d;
    return EV_OK;
}
