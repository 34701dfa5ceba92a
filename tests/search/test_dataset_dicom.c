/* test_dataset_dicom.c: DICOM cine loops as dataset clips (search/dataset.c through
 * media/dicom.h): a folder of multi-frame US files trains as is, with the patient from the
 * PatientID tag, the clip from the SOP Instance UID and the frame index kept; frames drawn all,
 * every k-th or N evenly spaced; each frame's pixels are its own; a manifest row naming a loop;
 * the patient column overriding the tag; a corrupt .dcm and a file with DICOM magic but no
 * dataset are bad frames with their messages. */
#include "dicom.h"
#include "ev_search.h"
#include "test_util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[256];

static const char *at(const char *rel)
{
    static char paths[4][512];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 512, "%s/%s", root, rel);
    return p;
}

/* frames x 16 x 12 loop, frame f all (20 + 10 f) */
static void write_loop(const char *rel, const char *patient, unsigned frames)
{
    uint8_t *pixels = malloc((size_t)frames * 16 * 12);
    for (unsigned f = 0; f < frames; f++)
        memset(pixels + (size_t)f * 16 * 12, 20 + 10 * (int)f, 16 * 12);
    media_dicom_cine cine = {.width = 16,
                             .height = 12,
                             .frames = frames,
                             .pixels = pixels,
                             .frame_time_ms = 40,
                             .region_x = 0,
                             .region_y = 0,
                             .region_width = 16,
                             .region_height = 12,
                             .patient_id = patient,
                             .series_description = "A4CH-LV"};
    ev_error err = {0};
    if (media_dicom_write_cine(at(rel), &cine, &err))
        printf("setup: %s\n", err.message);
    free(pixels);
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

static void write_text(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/echoview-test-dataset-dicom-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    mkdir(at("d"), 0755);
    mkdir(at("d/A4CH-LV"), 0755);
    mkdir(at("d/PLAX-full"), 0755);
    write_loop("d/A4CH-LV/a.dcm", "PAT-1", 6);
    write_loop("d/PLAX-full/b.dcm", "PAT-2", 6);
    write_loop("d/PLAX-full/c", "PAT-1", 1); /* no extension: found by its DICM magic */

    search_dataset *ds = NULL;
    ev_error err = {0};
    search_dataset_options o = opts();
    int rc = search_dataset_load(at("d"), &o, &ds, &err);
    CHECK(rc == 0 && ds->count == 13 && ds->num_patients == 2 && ds->num_clips == 3 &&
              ds->num_unidentified == 0,
          "DICOM folder: 13 frames of 3 clips, 2 patients from PatientID (%s)",
          rc ? err.message : "ok");
    if (!rc) {
        int ok = 1, frames_a = 0;
        for (int i = 0; i < ds->count; i++) {
            const char *pat = ds->patient_names[ds->patient[i]];
            bool in_a = strstr(ds->paths[i], "/a.dcm") != NULL;
            bool in_b = strstr(ds->paths[i], "/b.dcm") != NULL;
            ok &= !strcmp(pat, in_b ? "PAT-2" : "PAT-1");
            ok &= ds->labels[i] == (in_a ? 2 : 7); /* A4CH-LV, PLAX-full */
            ok &= ds->frame[i] >= 0 && ds->pixels[(size_t)i * 64] == 20 + 10 * ds->frame[i];
            frames_a += in_a;
            ok &= !strncmp(ds->clip_names[ds->clip[i]], "1.2.", 4); /* the SOP Instance UID */
        }
        CHECK(ok && frames_a == 6,
              "labels from the folders, patients PAT-1/PAT-2 from the tags, "
              "clip = SOP Instance UID, each frame's pixels = 20 + 10 x frame");
        int split_a = -1, one_split = 1;
        for (int i = 0; i < ds->count; i++)
            if (!strcmp(ds->patient_names[ds->patient[i]], "PAT-1")) {
                split_a = split_a < 0 ? ds->split[i] : split_a;
                one_split &= ds->split[i] == split_a;
            }
        CHECK(one_split, "the two clips of PAT-1 land in one split");
        search_dataset_free(ds);
    }

    o.frames_per_clip = 3;
    rc = search_dataset_load(at("d"), &o, &ds, &err);
    if (!rc) {
        int got[8], n = 0;
        for (int i = 0; i < ds->count; i++)
            if (strstr(ds->paths[i], "/a.dcm") && n < 8)
                got[n++] = ds->frame[i];
        CHECK(ds->count == 7 && n == 3 && got[0] == 1 && got[1] == 3 && got[2] == 5,
              "--frames-per-clip 3 on 6 frames: frames 1, 3, 5 (a 1-frame loop keeps its one): %d "
              "frames",
              ds->count);
        search_dataset_free(ds);
    } else {
        CHECK(0, "--frames-per-clip 3: %s", err.message);
    }
    o.frames_per_clip = 0;
    o.clip_frame_step = 4;
    rc = search_dataset_load(at("d"), &o, &ds, &err);
    if (!rc) {
        int got[8], n = 0;
        for (int i = 0; i < ds->count; i++)
            if (strstr(ds->paths[i], "/b.dcm") && n < 8)
                got[n++] = ds->frame[i];
        CHECK(ds->count == 5 && n == 2 && got[0] == 0 && got[1] == 4,
              "--clip-frame-step 4 on 6 frames: frames 0 and 4 (%d frames)", ds->count);
        search_dataset_free(ds);
    } else {
        CHECK(0, "--clip-frame-step 4: %s", err.message);
    }
    o.clip_frame_step = 0;

    /* a manifest naming loops; the patient column wins over the tag */
    write_text("d/m.csv", "path,label,split,patient\n"
                          "A4CH-LV/a.dcm,A4CH-LV,train,\n"
                          "PLAX-full/b.dcm,PLAX-full,test,P9\n");
    rc = search_dataset_load(at("d/m.csv"), &o, &ds, &err);
    CHECK(rc == 0 && ds->count == 12 && ds->num_patients == 2 &&
              !strcmp(ds->patient_names[0], "P9") && !strcmp(ds->patient_names[1], "PAT-1") &&
              ds->split_given,
          "manifest rows naming loops: 12 frames, patients P9 (column) and PAT-1 (tag) (%s)",
          rc ? err.message : "ok");
    search_dataset_free(ds);
    write_text("d/leak.csv", "path,label,split\n"
                             "A4CH-LV/a.dcm,A4CH-LV,train\n"
                             "PLAX-full/c,PLAX-full,test\n");
    rc = search_dataset_load(at("d/leak.csv"), &o, &ds, &err);
    CHECK_ERR(rc, err, "patient 'PAT-1' is in split 'test' here and in split 'train' on line 2",
              "two loops of one patient (from the tags) in train and test");

    /* bad files: truncated loop, DICM magic with nothing after it */
    FILE *f = fopen(at("d/A4CH-LV/a.dcm"), "rb");
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(at("d/A4CH-LV/cut.dcm"), "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    uint8_t magic[132] = {0};
    memcpy(magic + 128, "DICM", 4);
    f = fopen(at("d/A4CH-LV/empty"), "wb");
    fwrite(magic, 1, sizeof magic, f);
    fclose(f);
    o.max_bad_fraction = 0;
    rc = search_dataset_load(at("d"), &o, &ds, &err);
    CHECK_ERR(rc, err, "2 of 15 frames could not be read (more than the allowed 0.0%)",
              "a truncated loop and an empty DICOM file are bad frames");
    o.max_bad_fraction = 0.5;
    rc = search_dataset_load(at("d"), &o, &ds, &err);
    CHECK(rc == 0 && ds->count == 13 && ds->num_bad == 2,
          "with a higher --max-bad-fraction they are skipped (%s)", rc ? err.message : "ok");
    search_dataset_free(ds);

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        printf("could not remove %s\n", root);
    return test_finish();
}
