/* test_dataset.c: image folders and CSV manifests, every bad-input path: unknown labels and
 * folders (error naming file and line), missing and corrupt files (skipped with a warning count;
 * loading stops above the bad-fraction threshold), empty classes, 8/16-bit PGM, colour PNG. */
#include "ev_bundle.h"
#include "ev_search.h"
#include "media.h"
#include "test_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static void write_gray(const char *rel, int w, int h, int value, int depth, int channels, bool pgm)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    media_image img;
    ev_error err = {0};
    media_image_alloc(&img, w, h, channels, depth, &err);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * channels; x++) {
            if (depth == 16)
                ((uint16_t *)(img.data + y * img.stride))[x] = (uint16_t)value;
            else
                img.data[y * img.stride + x] = (uint8_t)value;
        }
    int rc =
        pgm ? media_image_write_pgm(path, &img, &err) : media_image_write_png(path, &img, &err);
    if (rc)
        printf("setup: %s\n", err.message);
    media_image_free(&img);
}

static void write_text(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void mk(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    mkdir(path, 0755);
}

static search_dataset_options opts(void)
{
    return (search_dataset_options){.width = 8,
                                    .height = 8,
                                    .channels = 1,
                                    .seed = 3,
                                    .max_bad_fraction = -1,
                                    .threads = 2,
                                    .only_split = -1,
                                    .quiet = true};
}

static void folders(void)
{
    mk("f");
    mk("f/train");
    mk("f/val");
    mk("f/test");
    mk("f/train/A2CH");
    mk("f/val/A3CH");
    mk("f/test/Apical-LA_MV");
    mk("f/train/PSAX-LV"); /* empty class */
    write_gray("f/train/A2CH/a.png", 16, 12, 100, 8, 1, false);
    write_gray("f/val/A3CH/b.pgm", 10, 10, 25700, 16, 1, true);      /* 16-bit: 25700/257 = 100 */
    write_gray("f/test/Apical-LA_MV/c.png", 9, 9, 100, 8, 3, false); /* RGB gray -> luma 100 */
    char path[512];
    snprintf(path, sizeof path, "%s/f", root);
    search_dataset *ds = NULL;
    ev_error err = {0};
    search_dataset_options o = opts();
    int rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0, "split/class folders load (%s)", rc ? err.message : "ok");
    if (rc)
        return;
    CHECK(ds->count == 3, "3 frames (got %d)", ds->count);
    int ok = 1;
    for (int i = 0; i < ds->count; i++) {
        for (int p = 0; p < 64; p++)
            ok &= ds->pixels[i * 64 + p] == 100;
        if (ds->labels[i] == 0)
            ok &= ds->split[i] == SEARCH_SPLIT_TRAIN;
        else if (ds->labels[i] == 1)
            ok &= ds->split[i] == SEARCH_SPLIT_VAL;
        else
            ok &= ds->labels[i] == 5 && ds->split[i] == SEARCH_SPLIT_TEST;
    }
    CHECK(ok, "8-bit PNG, 16-bit PGM and RGB PNG all give 100 at 8x8; labels (Apical-LA_MV = "
              "Apical-LA/MV) and splits from the folders");
    search_dataset_free(ds);

    mk("g");
    mk("g/NotAView");
    write_gray("g/NotAView/x.png", 8, 8, 1, 8, 1, false);
    snprintf(path, sizeof path, "%s/g", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "g/NotAView: folder name 'NotAView' is not a class", "unknown class folder");
}

static void manifests(void)
{
    mk("m");
    char rel[64];
    for (int i = 0; i < 20; i++) {
        snprintf(rel, sizeof rel, "m/%d.png", i);
        write_gray(rel, 12, 12, 10 * i, 8, 1, false);
    }
    write_text("m/corrupt.png", "\x89PNG\r\n\x1a\nthis is not a png at all");
    /* no split column: patient-level split; patient i/2 -> 10 patients */
    char csv[4096] = "path,label,patient,quality\n";
    for (int i = 0; i < 20; i++) {
        char line[128];
        snprintf(line, sizeof line, "%d.png,%s,pat%d,%d\n", i, ev_echo_views[i % 14], i / 2,
                 1 + i % 5);
        strcat(csv, line);
    }
    write_text("m/good.csv", csv);
    char path[512];
    snprintf(path, sizeof path, "%s/m/good.csv", root);
    search_dataset *ds = NULL;
    ev_error err = {0};
    search_dataset_options o = opts();
    int rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0 && ds && ds->count == 20 && ds->num_patients == 10,
          "manifest: 20 frames, 10 patients (%s)", rc ? err.message : "ok");
    if (!rc) {
        int per[3] = {0}, same = 1;
        for (int i = 0; i < 20; i++) {
            per[ds->split[i]]++;
            if (i % 2)
                same &= ds->split[i] == ds->split[i - 1];
        }
        CHECK(same && per[0] == 12 && per[1] == 4 && per[2] == 4,
              "patient-level 60/20/20 split: %d/%d/%d frames, both frames of a patient together",
              per[0], per[1], per[2]);
        CHECK(ds->quality[3] == 4, "quality column read");
        search_dataset_free(ds);
    }

    /* a manifest with roi columns where a later line is shorter than the header (the fuzzer's
     * use-after-free: the roi fields of the short line pointed into the previous line): the
     * short line has no box and is read whole, the other is cropped */
    write_text("m/roi.csv", "path,label,split,patient,quality,roi_x,roi_y,roi_w,roi_h\n"
                            "3.png,A2CH,train,p1,3,2,2,8,8\n"
                            "5.png,A3CH,train,p2,3\n");
    snprintf(path, sizeof path, "%s/m/roi.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0 && ds && ds->count == 2,
          "manifest with roi columns and a short line: 2 frames (%s)", rc ? err.message : "ok");
    if (!rc) {
        CHECK(ds->pixels[0] == 30 && ds->pixels[64] == 50,
              "roi manifest: frame values %d and %d (want 30 and 50)", ds->pixels[0],
              ds->pixels[64]);
        search_dataset_free(ds);
    }

    write_text("m/unknown.csv", "path,label,split\n0.png,A2CH,train\n1.png,A7CH,train\n");
    snprintf(path, sizeof path, "%s/m/unknown.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "unknown.csv:3: unknown label 'A7CH'", "unknown label");

    write_text("m/header.csv", "file,view\n0.png,A2CH\n");
    snprintf(path, sizeof path, "%s/m/header.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "header.csv:1: the header needs columns path and label", "bad header");

    write_text("m/split.csv", "path,label,split\n0.png,A2CH,holdout\n");
    snprintf(path, sizeof path, "%s/m/split.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "split.csv:2: unknown split 'holdout'", "unknown split");

    /* 2 bad of 20 listed (10%): above the default 5% -> stop; with 20% allowed -> skip them */
    char bad[4096] = "path,label,split\n";
    for (int i = 0; i < 18; i++) {
        char line[96];
        snprintf(line, sizeof line, "%d.png,A2CH,train\n", i);
        strcat(bad, line);
    }
    strcat(bad, "missing.png,A3CH,train\ncorrupt.png,A3CH,val\n");
    write_text("m/bad.csv", bad);
    snprintf(path, sizeof path, "%s/m/bad.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "2 of 20 frames could not be read (more than the allowed 5.0%)",
              "10% bad files with the default threshold");
    o.max_bad_fraction = 0.2;
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0 && ds->count == 18 && ds->num_bad == 2,
          "with --max-bad-fraction 0.2 the 2 bad files are skipped (%s)", rc ? err.message : "ok");
    search_dataset_free(ds);

    /* the per-file message names the file */
    write_text("m/one.csv", "path,label\ncorrupt.png,A2CH\n");
    snprintf(path, sizeof path, "%s/m/one.csv", root);
    o.max_bad_fraction = -1;
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "1 of 1 frames could not be read", "only a corrupt file");
}

/* Patients from --patient-regex, a patient in two splits, clips named by a manifest column. */
static void patients_and_clips(void)
{
    mk("r");
    mk("r/A2CH");
    mk("r/A3CH");
    write_gray("r/A2CH/p01_f0.png", 8, 8, 10, 8, 1, false);
    write_gray("r/A2CH/p01_f1.png", 8, 8, 20, 8, 1, false);
    write_gray("r/A3CH/p01_f2.png", 8, 8, 30, 8, 1, false);
    write_gray("r/A3CH/p02_f0.png", 8, 8, 40, 8, 1, false);
    write_gray("r/A2CH/p03_f0.png", 8, 8, 50, 8, 1, false);
    char path[512];
    snprintf(path, sizeof path, "%s/r", root);
    search_dataset *ds = NULL;
    ev_error err = {0};
    search_dataset_options o = opts();
    int rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0 && ds->num_patients == 5 && ds->num_unidentified == 5 && !ds->split_given,
          "image folder without --patient-regex: one patient per frame, 5 unidentified (%s)",
          rc ? err.message : "ok");
    search_dataset_free(ds);
    o.patient_regex = "/(p[0-9]+)_";
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0 && ds->num_patients == 3 && ds->num_unidentified == 0,
          "--patient-regex '/(p[0-9]+)_': 3 patients, none unidentified (%s)",
          rc ? err.message : "ok");
    if (!rc) {
        int same = 1, p01 = -1;
        for (int i = 0; i < ds->count; i++)
            if (strstr(ds->paths[i], "/p01_")) {
                if (p01 < 0)
                    p01 = ds->patient[i];
                same &= ds->patient[i] == p01 && !strcmp(ds->patient_names[ds->patient[i]], "p01");
            }
        int split01 = -1, together = 1;
        for (int i = 0; i < ds->count; i++)
            if (ds->patient[i] == p01) {
                if (split01 < 0)
                    split01 = ds->split[i];
                together &= ds->split[i] == split01;
            }
        CHECK(same && together, "the three p01 frames (two classes) are one patient 'p01' in one "
                                "split");
        search_dataset_free(ds);
    }
    o.patient_regex = "^p[0-9]+";
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err,
              "r/A2CH/p01_f0.png: --patient-regex '^p[0-9]+' does not match 'A2CH/p01_f0.png'",
              "a regex that misses a file");
    o.patient_regex = "p([0-9]+";
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "--patient-regex 'p([0-9]+': ", "a bad regex");
    o.patient_regex = "x*";
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "--patient-regex 'x*' matches 'A2CH/p01_f0.png' with an empty patient ID",
              "a regex matching the empty string");
    o.patient_regex = NULL;

    /* a patient in two splits of a manifest */
    write_text("r/leak.csv", "path,label,split,patient\n"
                             "A2CH/p01_f0.png,A2CH,train,p01\n"
                             "A3CH/p02_f0.png,A3CH,val,p02\n"
                             "A2CH/p01_f1.png,A2CH,test,p01\n");
    snprintf(path, sizeof path, "%s/r/leak.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err,
              "leak.csv:4: patient 'p01' is in split 'test' here and in split 'train' on line 2; "
              "a patient's frames must all be in one split",
              "a patient in train and test");
    /* same for split folders with --patient-regex */
    mk("s");
    mk("s/train");
    mk("s/test");
    mk("s/train/A2CH");
    mk("s/test/A2CH");
    write_gray("s/train/A2CH/p07_a.png", 8, 8, 10, 8, 1, false);
    write_gray("s/test/A2CH/p07_b.png", 8, 8, 10, 8, 1, false);
    snprintf(path, sizeof path, "%s/s", root);
    o.patient_regex = "(p[0-9]+)_";
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "s: patient 'p07' is in split 'train' (", "split folders sharing a patient");
    o.patient_regex = NULL;

    /* clips from a manifest column (phantom --sequence writes it as 'sequence') */
    write_text("r/clips.csv", "path,label,patient,sequence\n"
                              "A2CH/p01_f0.png,A2CH,p01,loopA\n"
                              "A2CH/p01_f1.png,A2CH,p01,loopA\n"
                              "A3CH/p01_f2.png,A3CH,p01,loopB\n"
                              "A2CH/p03_f0.png,A2CH,p03,\n");
    snprintf(path, sizeof path, "%s/r/clips.csv", root);
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK(rc == 0 && ds->num_clips == 3 && ds->clip[0] == ds->clip[1] &&
              ds->clip[1] != ds->clip[2] && !strcmp(ds->clip_names[ds->clip[0]], "loopA") &&
              ds->frame[0] == -1,
          "manifest clip column: 3 clips (loopA twice, loopB, the unnamed row its path; %s)",
          rc ? err.message : "ok");
    search_dataset_free(ds);
    o.frames_per_clip = 2;
    o.clip_frame_step = 3;
    rc = search_dataset_load(path, &o, &ds, &err);
    CHECK_ERR(rc, err, "frames per clip 2 and clip frame step 3: give one of them",
              "both clip frame selections");
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/echoview-test-dataset-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    folders();
    manifests();
    patients_and_clips();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("could not remove %s\n", root);
    return test_finish();
}
