/* dataset_split.c: the split a model was trained on, kept in its bundle so that evaluation
 * cannot score on training frames. `echoview train` writes it into model.yaml under
 * `training: split:` (how it was made, the seed, the data's hash and the patients of each
 * split); `echoview eval` reads it back and the dataset loader applies it:
 *
 * - data that names its splits is used as it is, but a patient of the evaluated split (val or
 *   test) whom the model was trained on is an error naming the patient;
 * - data without splits takes the recorded split when every one of its patients is in the
 *   record (the training data itself, whatever --seed eval is given); when none of its
 *   patients was in training or validation, all of it is test data (unless it lists the very
 *   files of the training data, named with other patient IDs); anything in between is
 *   refused, naming a training patient: it cannot be split without scoring training frames.
 */
#include "ev_bundle.h"
#include "ev_search.h"
#include "ev_yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void search_split_record_free(search_split_record *r)
{
    if (!r)
        return;
    for (int s = 0; s < SEARCH_SPLIT_COUNT; s++) {
        for (int i = 0; i < r->count[s]; i++)
            free(r->patients[s][i]);
        free(r->patients[s]);
    }
    memset(r, 0, sizeof *r);
}

int search_split_record_from_dataset(const search_dataset *ds, uint64_t seed,
                                     search_split_record *out, ev_error *err)
{
    memset(out, 0, sizeof *out);
    out->seed = seed;
    out->data_hash = ds->data_hash;
    out->drawn = !ds->split_given;
    int8_t *split_of = malloc((size_t)(ds->num_patients ? ds->num_patients : 1));
    if (!split_of)
        return ev_fail(err, EV_ERR_NOMEM, "split: out of memory");
    memset(split_of, -1, (size_t)(ds->num_patients ? ds->num_patients : 1));
    for (int i = 0; i < ds->count; i++)
        if (ds->patient[i] >= 0 && ds->patient[i] < ds->num_patients)
            split_of[ds->patient[i]] = ds->split[i];
    int rc = EV_OK;
    for (int s = 0; s < SEARCH_SPLIT_COUNT && !rc; s++) {
        out->patients[s] =
            calloc((size_t)(ds->num_patients ? ds->num_patients : 1), sizeof(char *));
        if (!out->patients[s]) {
            rc = ev_fail(err, EV_ERR_NOMEM, "split: out of memory");
            break;
        }
        for (int p = 0; p < ds->num_patients && !rc; p++)
            if (split_of[p] == s) {
                if (!(out->patients[s][out->count[s]] = strdup(ds->patient_names[p])))
                    rc = ev_fail(err, EV_ERR_NOMEM, "split: out of memory");
                else
                    out->count[s]++;
            }
    }
    free(split_of);
    if (rc)
        search_split_record_free(out);
    return rc;
}

int search_split_record_append_yaml(const char *model_yaml, const search_split_record *r,
                                    ev_error *err)
{
    return search_training_record_append_yaml(model_yaml, NULL, r, err);
}

int search_training_record_append_yaml(const char *model_yaml, const search_provenance *p,
                                       const search_split_record *r, ev_error *err)
{
    FILE *f = fopen(model_yaml, "a");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", model_yaml, strerror(errno));
    fputs("training:\n", f);
    if (p) {
        char date[32];
        time_t now = time(NULL);
        struct tm tm;
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        fputs("  command: ", f);
        ev_yaml_write_quoted(f, p->command ? p->command : "");
        fputs("\n  data: ", f);
        ev_yaml_write_quoted(f, p->data ? p->data : "");
        fputs("\n  source_commit: ", f);
        ev_yaml_write_quoted(f, p->source_commit ? p->source_commit : "unknown");
        fprintf(f, "\n  date: \"%s\"\n  best_epoch: %d\n", date, p->best_epoch);
        if (p->epochs > 0)
            fprintf(f, "  epochs: %d\n", p->epochs);
        /* auto: the sector found in each frame; data: the manifest's ROI columns, a DICOM's
         * ultrasound region, else the whole frame */
        fprintf(f, "  roi: %s\n", p->auto_roi ? "auto" : "data");
        fprintf(f, "  frames: {train: %d, val: %d, test: %d}\n", p->frames[0], p->frames[1],
                p->frames[2]);
        if (p->init_from) {
            fputs("  init_from:\n    model: ", f);
            ev_yaml_write_quoted(f, p->init_from);
            fprintf(f, "\n    weights_hash: \"fnv1a64:%016" PRIx64 "\"\n", p->init_from_hash);
            fputs("    reinitialised: ", f);
            ev_yaml_write_quoted(f, p->reinitialised && *p->reinitialised ? p->reinitialised : "none");
            fputs("\n", f);
        }
        if (p->freeze) {
            fputs("  freeze: ", f);
            ev_yaml_write_quoted(f, p->freeze);
            fputs("\n", f);
            if (p->freeze_epochs > 0)
                fprintf(f, "  freeze_epochs: %d\n", p->freeze_epochs);
        }
        if (p->lr > 0)
            fprintf(f, "  lr: %.7g\n", (double)p->lr);
        if (p->lr_backbone > 0)
            fprintf(f, "  lr_backbone: %.7g\n", (double)p->lr_backbone);
    }
    fprintf(f,
            "  split:\n    source: %s\n    seed: \"%" PRIu64 "\"\n"
            "    manifest_hash: \"fnv1a64:%016" PRIx64 "\"\n    patients:\n",
            r->drawn ? "drawn" : "given", r->seed, r->data_hash);
    for (int s = 0; s < SEARCH_SPLIT_COUNT; s++) {
        fprintf(f, "      %s: [", search_split_name(s));
        for (int i = 0; i < r->count[s]; i++) {
            fputs(i ? ", " : "", f);
            ev_yaml_write_quoted(f, r->patients[s][i]);
        }
        fputs("]\n", f);
    }
    if (fclose(f) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: write failed", model_yaml);
    return EV_OK;
}

static int yaml_error(ev_yaml_doc *doc, ev_error *err)
{
    const ev_yaml_error *e = ev_yaml_doc_error(doc);
    return ev_fail(err, EV_ERR_FORMAT, "%s", e && e->message[0] ? e->message : "bad model.yaml");
}

int search_split_record_load(const char *model_path, search_split_record *out, bool *found,
                             ev_error *err)
{
    memset(out, 0, sizeof *out);
    *found = false;
    char path[4096];
    int rc = ev_bundle_path(model_path, NULL, path, sizeof path, err);
    if (rc)
        return rc;
    ev_yaml_doc *doc = NULL;
    ev_yaml_error ye = {0};
    if (ev_yaml_load_file(path, &doc, &ye) != EV_YAML_OK)
        return ev_fail(err, EV_ERR_FORMAT, "%s", ye.message);
    const ev_yaml_node *root = ev_yaml_root(doc), *training, *split, *n2;
    if (!ev_yaml_walk_mapping(doc, root, "model.yaml", NULL, NULL, NULL)) {
        rc = yaml_error(doc, err);
        goto out;
    }
    if (!(training = ev_yaml_lookup(doc, root, "training")) ||
        ev_yaml_node_kind(training) != EV_YAML_MAPPING ||
        !ev_yaml_walk_mapping(doc, training, "training", NULL, NULL, NULL) ||
        !(split = ev_yaml_lookup(doc, training, "split")))
        goto out; /* an older bundle: no record */
    static const char *const keys[] = {"source", "seed", "manifest_hash", "patients", NULL};
    static const char *const split_keys[] = {"train", "val", "test", NULL};
    if (!ev_yaml_walk_mapping(doc, split, "training: split", keys, NULL, NULL)) {
        rc = yaml_error(doc, err);
        goto out;
    }
    const char *source =
        (n2 = ev_yaml_lookup(doc, split, "source")) ? ev_yaml_get_string(doc, n2, "source") : NULL;
    const char *seed =
        (n2 = ev_yaml_lookup(doc, split, "seed")) ? ev_yaml_get_string(doc, n2, "seed") : NULL;
    const char *hash = (n2 = ev_yaml_lookup(doc, split, "manifest_hash"))
                           ? ev_yaml_get_string(doc, n2, "manifest_hash")
                           : NULL;
    const ev_yaml_node *patients = ev_yaml_lookup(doc, split, "patients");
    char *end = NULL;
    if (!source || (strcmp(source, "drawn") && strcmp(source, "given")) || !seed || !hash ||
        strncmp(hash, "fnv1a64:", 8) || !patients ||
        !ev_yaml_walk_mapping(doc, patients, "training: split: patients", split_keys, NULL, NULL)) {
        if (!ev_yaml_doc_error(doc) || !ev_yaml_doc_error(doc)->message[0])
            ev_yaml_fail(doc, split,
                         "training: split needs source (drawn or given), seed, manifest_hash "
                         "(fnv1a64:HEX) and patients");
        rc = yaml_error(doc, err);
        goto out;
    }
    out->drawn = !strcmp(source, "drawn");
    errno = 0;
    out->seed = strtoull(seed, &end, 10);
    if (errno || !*seed || *end) {
        ev_yaml_fail(doc, split, "training: split: seed '%s' is not a number", seed);
        rc = yaml_error(doc, err);
        goto out;
    }
    out->data_hash = strtoull(hash + 8, &end, 16);
    for (int s = 0; s < SEARCH_SPLIT_COUNT && !rc; s++) {
        const ev_yaml_node *list = ev_yaml_lookup(doc, patients, split_keys[s]);
        size_t len = list ? ev_yaml_length(list) : 0;
        if (list && ev_yaml_node_kind(list) != EV_YAML_SEQUENCE) {
            ev_yaml_fail(doc, list, "training: split: patients: %s must be a list", split_keys[s]);
            rc = yaml_error(doc, err);
            break;
        }
        out->patients[s] = calloc(len ? len : 1, sizeof(char *));
        if (!out->patients[s]) {
            rc = ev_fail(err, EV_ERR_NOMEM, "split: out of memory");
            break;
        }
        for (size_t i = 0; i < len && !rc; i++) {
            const ev_yaml_node *item = ev_yaml_item(doc, list, i);
            const char *name = item ? ev_yaml_get_nonempty_string(doc, item, "patient") : NULL;
            if (!name)
                rc = yaml_error(doc, err);
            else if (!(out->patients[s][out->count[s]++] = strdup(name)))
                rc = ev_fail(err, EV_ERR_NOMEM, "split: out of memory");
        }
        if (!rc)
            qsort(out->patients[s], (size_t)out->count[s], sizeof(char *), cmp_name);
    }
    if (!rc)
        *found = true;
out:
    if (rc)
        search_split_record_free(out);
    ev_yaml_free(doc);
    return rc;
}

int search_split_record_lookup(const search_split_record *r, const char *patient)
{
    for (int s = 0; s < SEARCH_SPLIT_COUNT; s++)
        if (r->count[s] &&
            bsearch(&patient, r->patients[s], (size_t)r->count[s], sizeof(char *), cmp_name))
            return s;
    return -1;
}

int search_split_record_apply(const search_split_record *r, const char *const *patients,
                              int *splits, int count, bool split_given, uint64_t data_hash,
                              int only_split, const char *data, bool quiet, ev_error *err)
{
    if (split_given) {
        if (only_split == SEARCH_SPLIT_TRAIN)
            return EV_OK;
        for (int i = 0; i < count; i++) {
            if (splits[i] < 0 || splits[i] == SEARCH_SPLIT_TRAIN ||
                (only_split >= 0 && splits[i] != only_split))
                continue;
            if (search_split_record_lookup(r, patients[i]) == SEARCH_SPLIT_TRAIN)
                return ev_fail(err, EV_ERR_INVALID,
                               "%s: patient '%s' is in split '%s' here, but the model was "
                               "trained on that patient (the training split in its model.yaml)",
                               data, patients[i], search_split_name(splits[i]));
        }
        return EV_OK;
    }
    int known = 0, seen_in_training = -1;
    for (int i = 0; i < count; i++) {
        int s = search_split_record_lookup(r, patients[i]);
        known += s >= 0;
        if (seen_in_training < 0 && (s == SEARCH_SPLIT_TRAIN || s == SEARCH_SPLIT_VAL))
            seen_in_training = i;
    }
    if (known == count) { /* the model's own data: its recorded split */
        for (int i = 0; i < count; i++)
            splits[i] = search_split_record_lookup(r, patients[i]);
        return EV_OK;
    }
    if (known == 0 && data_hash == r->data_hash) /* the same files, other patient IDs */
        return ev_fail(err, EV_ERR_INVALID,
                       "%s lists the files the model was trained on (same manifest hash) but "
                       "none of its patients is in the model's split: give the patient IDs "
                       "training had (the same --patient-regex)",
                       data);
    if (seen_in_training < 0) { /* unseen patients only: all of it is test data */
        for (int i = 0; i < count; i++)
            splits[i] = SEARCH_SPLIT_TEST;
        if (!quiet)
            fprintf(stderr,
                    "note: %s has no split and none of its patients trained or validated the "
                    "model: all %d frames are test frames\n",
                    data, count);
        return EV_OK;
    }
    const char *p = patients[seen_in_training];
    return ev_fail(err, EV_ERR_INVALID,
                   "%s has no split of its own and patient '%s' was in the model's %s split "
                   "(its model.yaml): scoring it would count training frames; give the data a "
                   "split column or leave out the model's training patients",
                   data, p, search_split_name(search_split_record_lookup(r, p)));
}
