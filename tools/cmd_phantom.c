/* cmd_phantom.c: `echoview phantom`: renders a synthetic image-folder dataset with the phantom
 * scanner: DIR/<view>/pNNNN_fFF.png plus DIR/manifest.csv (path,label,split,patient,quality),
 * split by patient 60/20/20 (deterministic per seed), one acquisition per patient and view.
 * Threads render (patient, view) jobs, each with its own ep_renderer. With --format dicom each
 * job is one cine loop: DIR/<view>/pNNNN.dcm, a multi-frame US DICOM file (media/dicom.h) at
 * 30 frames/s whose ultrasound region is the sector box (the whole frame without --full-frame). */
#include "echophantom.h"
#include "media.h"
#ifdef ECHOVIEW_HAVE_DICOM
#include "dicom.h"
#endif
#include "tools.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *usage =
    "usage: echoview phantom --out DIR [--size PX] [--patients N] [--frames-per-patient N]\n"
    "                        [--views LIST] [--seed N] [--full-frame WxH] [--quality-range A-B]\n"
    "                        [--format png|pgm|dicom] [--sequence] [--threads N]\n"
    "                        [--phantom-version 1|2] [--color-share F] [--other-share F]\n"
    "  Renders a synthetic echo dataset: DIR/<view>/pNNNN_fFF.png and DIR/manifest.csv with\n"
    "  columns path,label,split,patient,quality (plus roi_x,roi_y,roi_w,roi_h for full frames and\n"
    "  sequence,frame with --sequence). Patients are split 60/20/20 into train/val/test.\n"
    "  --size PX             frames cropped to the sector and resized to PX x PX (default 128)\n"
    "  --patients N          number of patients (default 50)\n"
    "  --frames-per-patient N frames per patient and view (default 4), random cardiac phases\n"
    "  --views LIST          comma-separated view names or ids (default: all 14)\n"
    "  --full-frame WxH      scanner-size frames with overlays instead (e.g. 800x600); the\n"
    "                        manifest gives each frame's sector box, which training crops to\n"
    "  --quality-range A-B   image-quality grades to draw from (1 very poor .. 5 excellent)\n"
    "  --sequence            cine loops: N consecutive frames at 30 frames/s per patient/view\n"
    "  --format dicom        one multi-frame US DICOM cine loop per patient and view\n"
    "                        (DIR/<view>/pNNNN.dcm, N frames at 30 frames/s, Frame Time and\n"
    "                        the ultrasound region set; the manifest has one row per loop)\n"
    "  --seed N              everything is deterministic per seed (default 1)\n"
    "  --phantom-version V   1: the original renderer (default; shipped models and fixtures);\n"
    "                        2: real-scanner look, vendor-like screens, steered/zoomed fans\n"
    "  --color-share F       (version 2) share 0..1 of 2D loops with a colour-Doppler box\n"
    "                        (colour PNGs; pgm and dicom get the luma); label stays the view\n"
    "  --other-share F       (version 2) share 0..1 of loops that are M-mode, PW, CW or TDI\n"
    "                        screens, label `other` (DIR/other/pNNNN_vVV_fFF.png, VV the view\n"
    "                        slot, 14 for `other` in --views); `other` in\n"
    "                        --views asks for such screens explicitly\n";

/* The pseudo-view id of `other` screens in --views. */
#define VIEW_OTHER EP_VIEW_COUNT

typedef struct job_ctx {
    const char *out;
    int size, width, height, full;
    int patients, frames, nviews, views[EP_VIEW_COUNT + 1];
    int version;
    double color_share, other_share;
    uint64_t seed;
    int qlo, qhi;
    bool pgm, sequence, dicom;
    const int *split_of;
    atomic_int next;
    atomic_long written;
    atomic_int failed;
    char **rows; /* per job: manifest lines */
    char err[4800];
    pthread_mutex_t lock;
} job_ctx;

static uint64_t mix64(uint64_t a, uint64_t b)
{
    uint64_t z = a * 0x9e3779b97f4a7c15ull ^ (b + 0x7f4a7c159e3779b9ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void safe_name(const char *label, char *out, size_t n)
{
    snprintf(out, n, "%s", label);
    for (char *p = out; *p; p++)
        if (*p == '/')
            *p = '-';
}

/* One PNG/PGM frame, or (DICOM) the whole loop once its last frame is rendered. */
static int write_frame(const job_ctx *c, const char *path, const media_image *img,
                       const uint8_t *loop, int view, int patient, const ep_rect *roi, ev_error *e)
{
    if (img->channels == 3)
        return media_image_write_png(path, img, e);
    if (!c->dicom)
        return c->pgm ? media_image_write_pgm(path, img, e) : media_image_write_png(path, img, e);
#ifdef ECHOVIEW_HAVE_DICOM
    char patient_id[32];
    snprintf(patient_id, sizeof patient_id, "PHANTOM-%04d", patient);
    media_dicom_cine cine = {.width = c->width,
                             .height = c->height,
                             .frames = (unsigned)c->frames,
                             .pixels = loop,
                             .frame_time_ms = 1000.0 / 30.0,
                             .region_x = roi->x,
                             .region_y = roi->y,
                             .region_width = roi->width,
                             .region_height = roi->height,
                             .patient_id = patient_id,
                             .series_description = ep_view_name(view)};
    return media_dicom_write_cine(path, &cine, e);
#else
    (void)loop, (void)view, (void)patient, (void)roi;
    snprintf(e->message, sizeof e->message, "built without DICOM support (DCMTK)");
    return EV_ERR_UNSUPPORTED;
#endif
}

static void *worker(void *arg)
{
    job_ctx *c = arg;
    ep_renderer *r = ep_renderer_create(c->width, c->height);
    /* DICOM loops keep every frame of the job: they are written as one file at the end. */
    uint8_t *loop = c->dicom ? malloc((size_t)c->width * c->height * c->frames) : NULL;
    uint8_t *pix = malloc((size_t)c->width * c->height * 3);
    media_image img = {.width = c->width,
                       .height = c->height,
                       .channels = 1,
                       .bit_depth = 8,
                       .stride = (size_t)c->width,
                       .data = pix};
    if (!r || !pix || (c->dicom && !loop)) {
        atomic_store(&c->failed, 1);
        goto out;
    }
    const int jobs = c->patients * c->nviews;
    for (;;) {
        int j = atomic_fetch_add(&c->next, 1);
        if (j >= jobs || atomic_load(&c->failed))
            break;
        int p = j / c->nviews, view = c->views[j % c->nviews];
        const int slot = view; /* the --views entry (VIEW_OTHER for `other`): file names */
        /* version 2: this loop is an `other` screen (exact share, spread over the jobs) or a
         * 2D view, with or without a colour box */
        int screen = EP_SCREEN_BMODE;
        if (c->version == 2) {
            uint64_t h = mix64(c->seed ^ 0x07E5, (uint64_t)j);
            int other =
                view == VIEW_OTHER || floor((j + 1) * c->other_share) > floor(j * c->other_share);
            if (other) {
                screen = EP_SCREEN_MMODE + (int)(h % 4u);
                if (view == VIEW_OTHER) { /* the anatomy these screens are taken from */
                    static const int from[4] = {EP_VIEW_PLAX_FULL, EP_VIEW_A4CH_LV, EP_VIEW_A5CH,
                                                EP_VIEW_A4CH_LV};
                    view = from[screen - EP_SCREEN_MMODE];
                }
            } else if ((double)(h >> 11) * 0x1.0p-53 < c->color_share) {
                screen = EP_SCREEN_COLOR;
            }
        }
        ep_patient pat;
        ep_scan scan;
        ep_patient_init(&pat, mix64(c->seed, 1000003u + (uint64_t)p));
        ep_scan_init(&scan, view, mix64(c->seed, ((uint64_t)p << 8 | (uint64_t)view) + 77));
        if (c->qlo > 0) {
            uint64_t h = mix64(c->seed ^ 0x51, (uint64_t)j);
            scan.quality = c->qlo + (int)(h % (uint64_t)(c->qhi - c->qlo + 1));
        }
        scan.framing = c->full ? EP_FRAMING_SCANNER : EP_FRAMING_SECTOR;
        scan.overlays = c->full ? EP_OVERLAY_ALL : 0;
        if (c->version == 2) {
            /* one scanner per patient: its style; the geometry per acquisition */
            ep_scan_style(&scan, mix64(c->seed ^ 0x5CA7, (uint64_t)p),
                          mix64(c->seed ^ 0xA9, (uint64_t)j));
            scan.screen = screen;
        }
        int colour = screen == EP_SCREEN_COLOR && !c->pgm && !c->dicom;
        img.channels = colour ? 3 : 1;
        img.stride = (size_t)c->width * (size_t)img.channels;
        ep_rect roi = {0, 0, c->width, c->height};
        if (c->full)
            ep_sector_roi(&scan, c->width, c->height, &roi);
        char label[64], dir[PATH_MAX];
        int is_other = screen >= EP_SCREEN_MMODE;
        safe_name(is_other ? "other" : ep_view_name(view), label, sizeof label);
        snprintf(dir, sizeof dir, "%s/%s", c->out, label);
        size_t cap = (size_t)c->frames * 200 + 1;
        char *rows = malloc(cap);
        size_t used = 0;
        if (!rows) {
            atomic_store(&c->failed, 1);
            break;
        }
        rows[0] = 0;
        double phase0 = (double)(mix64(c->seed, (uint64_t)j * 31 + 5) >> 11) * 0x1.0p-53;
        for (int f = 0; f < c->frames; f++) {
            scan.noise_seed = mix64(c->seed, (uint64_t)j * 4096 + (uint64_t)f);
            int rc;
            if (c->dicom) {
                size_t size = (size_t)c->width * c->height;
                rc = ep_render_time(r, &pat, &scan, phase0 + f / 30.0, loop + size * f,
                                    (size_t)c->width);
                if (rc == EP_OK && f + 1 < c->frames)
                    continue;
            } else {
                /* a loop plays at 30 frames/s (as ep_render_time), else random phases */
                double phase =
                    c->sequence ? (phase0 + f / 30.0) * (double)pat.heart_rate_bpm / 60.0
                                : (double)(mix64(c->seed ^ 0xabc, (uint64_t)j * 4096 + f) >> 11) *
                                      0x1.0p-53;
                phase -= floor(phase);
                rc = colour ? ep_render_rgb(r, &pat, &scan, phase, pix, img.stride)
                            : ep_render(r, &pat, &scan, phase, pix, (size_t)c->width);
            }
            char rel[PATH_MAX], path[PATH_MAX + 8];
            if (c->dicom && is_other)
                snprintf(rel, sizeof rel, "%s/p%04d_v%02d.dcm", label, p, slot);
            else if (c->dicom)
                snprintf(rel, sizeof rel, "%s/p%04d.dcm", label, p);
            else if (is_other)
                snprintf(rel, sizeof rel, "%s/p%04d_v%02d_f%02d.%s", label, p, slot, f,
                         c->pgm ? "pgm" : "png");
            else
                snprintf(rel, sizeof rel, "%s/p%04d_f%02d.%s", label, p, f, c->pgm ? "pgm" : "png");
            snprintf(path, sizeof path, "%s/%s", c->out, rel);
            ev_error e = {0};
            if (rc != EP_OK || write_frame(c, path, &img, loop, view, p, &roi, &e)) {
                pthread_mutex_lock(&c->lock);
                snprintf(c->err, sizeof c->err, "%s: %s", path,
                         rc != EP_OK ? ep_strerror(rc) : e.message);
                pthread_mutex_unlock(&c->lock);
                atomic_store(&c->failed, 1);
                break;
            }
            const char *split = c->split_of[p] == 0   ? "train"
                                : c->split_of[p] == 1 ? "val"
                                                      : "test";
            used +=
                (size_t)snprintf(rows + used, cap - used, "%s,%s,%s,p%04d,%d", rel,
                                 is_other ? "other" : ep_view_name(view), split, p, scan.quality);
            if (c->full)
                used += (size_t)snprintf(rows + used, cap - used, ",%d,%d,%d,%d", roi.x, roi.y,
                                         roi.width, roi.height);
            if (c->sequence)
                used += (size_t)snprintf(rows + used, cap - used, ",p%04d_v%02d,%d", p, view,
                                         c->dicom ? 0 : f);
            used += (size_t)snprintf(rows + used, cap - used, "\n");
            atomic_fetch_add(&c->written, c->dicom ? c->frames : 1);
        }
        c->rows[j] = rows;
    }
out:
    free(loop);
    free(pix);
    ep_renderer_free(r);
    return NULL;
}

static int parse_views(const char *cmd, const tool_option *row, const char *s)
{
    job_ctx *c = row->target;
    int n = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *end;
        long id = strtol(tok, &end, 10);
        int v = *end == 0 && end != tok ? (int)id : ep_view_parse(tok);
        if (!strcmp(tok, "other"))
            v = VIEW_OTHER;
        if (v < 0 || v > VIEW_OTHER || n > EP_VIEW_COUNT || (v == VIEW_OTHER && *end == 0)) {
            fprintf(stderr, "echoview %s: unknown view '%s'\n", cmd, tok);
            return -1;
        }
        c->views[n++] = v;
    }
    if (!n) {
        fprintf(stderr, "echoview %s: --views needs at least one view\n", cmd);
        return -1;
    }
    c->nviews = n;
    return 0;
}

static int parse_full_frame(const char *cmd, const tool_option *row, const char *val)
{
    job_ctx *c = row->target;
    char x;
    if (sscanf(val, "%dx%d%c", &c->width, &c->height, &x) != 2 || c->width < 8 || c->height < 8 ||
        c->width > 4096 || c->height > 4096) {
        fprintf(stderr, "echoview %s: --full-frame needs WxH (8..4096), got '%s'\n", cmd, val);
        return -1;
    }
    c->full = 1;
    return 0;
}

static int parse_quality_range(const char *cmd, const tool_option *row, const char *val)
{
    job_ctx *c = row->target;
    char x;
    if (sscanf(val, "%d-%d%c", &c->qlo, &c->qhi, &x) != 2 || c->qlo < 1 || c->qhi > 5 ||
        c->qlo > c->qhi) {
        fprintf(stderr, "echoview %s: --quality-range needs A-B within 1-5, got '%s'\n", cmd, val);
        return -1;
    }
    return 0;
}

int cmd_phantom(int argc, char **argv)
{
    job_ctx c = {.size = 128,
                 .patients = 50,
                 .frames = 4,
                 .seed = 1,
                 .nviews = EP_VIEW_COUNT,
                 .version = 1};
    const char *format = "png";
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 0; i < EP_VIEW_COUNT; i++)
        c.views[i] = i;
    const char *version = "1";
    float color_share = 0.0f, other_share = 0.0f;
    bool color_given = false, other_given = false;
    const tool_option options[] = {
        TOOL_FLAG("--sequence", &c.sequence),
        TOOL_STRING("--out", &c.out),
        TOOL_INT("--size", &c.size, 8, 4096),
        TOOL_INT("--patients", &c.patients, 1, 1000000),
        TOOL_INT("--frames-per-patient", &c.frames, 1, 4096),
        TOOL_CUSTOM("--views", parse_views, &c),
        TOOL_SEED("--seed", &c.seed),
        TOOL_INT("--threads", &threads, 1, 256),
        TOOL_CUSTOM("--full-frame", parse_full_frame, &c),
        TOOL_CUSTOM("--quality-range", parse_quality_range, &c),
        TOOL_CHOICE("--format", &format, "png", "pgm", "dicom"),
        TOOL_CHOICE("--phantom-version", &version, "1", "2"),
        TOOL_FLOAT("--color-share", &color_share, 0.0, 1.0, &color_given),
        TOOL_FLOAT("--other-share", &other_share, 0.0, 1.0, &other_given),
    };
    const tool_parser parser = {
        .cmd = "phantom", .usage = usage, .options = options, .count = TOOL_COUNT(options)};
    int status = tool_parse_args(&parser, argc, argv);
    if (status != TOOL_CONTINUE)
        return status;
    c.version = version[0] - '0';
    c.color_share = color_share;
    c.other_share = other_share;
    const bool shares_given = color_given || other_given;
#ifndef ECHOVIEW_HAVE_DICOM
    if (!strcmp(format, "dicom")) {
        fprintf(stderr, "echoview phantom: this build has no DICOM support (DCMTK)\n");
        return TOOL_USAGE;
    }
#endif
    if (!c.out) {
        fprintf(stderr, "echoview phantom: --out DIR is required\n%s", usage);
        return TOOL_USAGE;
    }
    bool want_other = false;
    for (int i = 0; i < c.nviews; i++)
        want_other |= c.views[i] == VIEW_OTHER;
    if (c.version == 1 && (shares_given || want_other)) {
        fprintf(stderr, "echoview phantom: --color-share, --other-share and the view `other` "
                        "need --phantom-version 2\n");
        return TOOL_USAGE;
    }
    c.pgm = !strcmp(format, "pgm");
    c.dicom = !strcmp(format, "dicom");
    if (!c.full)
        c.width = c.height = c.size;
    if (mkdir(c.out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "echoview phantom: %s: %s\n", c.out, strerror(errno));
        return TOOL_FAILED;
    }
    for (int i = 0; i <= c.nviews; i++) {
        if (i == c.nviews && !want_other && c.other_share <= 0.0)
            break;
        char label[64], dir[PATH_MAX];
        safe_name(i == c.nviews || c.views[i] == VIEW_OTHER ? "other" : ep_view_name(c.views[i]),
                  label, sizeof label);
        snprintf(dir, sizeof dir, "%s/%s", c.out, label);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "echoview phantom: %s: %s\n", dir, strerror(errno));
            return TOOL_FAILED;
        }
    }
    /* patient split: a seeded shuffle, first 60% train, next 20% val, rest test */
    int *order = malloc((size_t)c.patients * sizeof *order);
    int *split_of = malloc((size_t)c.patients * sizeof *split_of);
    c.rows = calloc((size_t)c.patients * c.nviews, sizeof *c.rows);
    if (!order || !split_of || !c.rows) {
        fprintf(stderr, "echoview phantom: out of memory\n");
        return TOOL_FAILED;
    }
    for (int i = 0; i < c.patients; i++)
        order[i] = i;
    uint64_t s = c.seed ^ 0x5e11;
    for (int i = c.patients - 1; i > 0; i--) {
        s = mix64(s, (uint64_t)i);
        int j = (int)(s % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int n_train = (int)(c.patients * 0.6 + 0.5), n_val = (int)(c.patients * 0.2 + 0.5);
    for (int r = 0; r < c.patients; r++)
        split_of[order[r]] = r < n_train ? 0 : r < n_train + n_val ? 1 : 2;
    c.split_of = split_of;
    pthread_mutex_init(&c.lock, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t tids[256];
    int started = 0;
    for (int t = 0; t < threads; t++)
        if (pthread_create(&tids[t], NULL, worker, &c) == 0)
            started++;
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    int rc = TOOL_OK;
    if (atomic_load(&c.failed) || !started) {
        fprintf(stderr, "echoview phantom: %s\n", c.err[0] ? c.err : "out of memory");
        rc = TOOL_FAILED;
    } else {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/manifest.csv", c.out);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "echoview phantom: %s: %s\n", path, strerror(errno));
            rc = TOOL_FAILED;
        } else {
            fprintf(f, "path,label,split,patient,quality%s%s\n",
                    c.full ? ",roi_x,roi_y,roi_w,roi_h" : "", c.sequence ? ",sequence,frame" : "");
            for (int j = 0; j < c.patients * c.nviews; j++)
                if (c.rows[j])
                    fputs(c.rows[j], f);
            if (fclose(f) != 0) {
                fprintf(stderr, "echoview phantom: %s: write failed\n", path);
                rc = TOOL_FAILED;
            }
        }
        long n = atomic_load(&c.written);
        printf("phantom: %ld frames (%d patients x %d views x %d) of %dx%d in %.2f s: %.1f "
               "frames/s on %d threads -> %s/manifest.csv\n",
               n, c.patients, c.nviews, c.frames, c.width, c.height, secs,
               secs > 0 ? n / secs : 0.0, started, c.out);
    }
    for (int j = 0; j < c.patients * c.nviews; j++)
        free(c.rows[j]);
    free(c.rows);
    free(order);
    free(split_of);
    pthread_mutex_destroy(&c.lock);
    return rc;
}
