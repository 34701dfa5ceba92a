/* report.c: evaluation metrics (accuracy, macro precision/recall/F1, weighted F1, per view), the
 * evaluation report (JSON, markdown, a confusion-matrix heat map and a sheet of misclassified
 * frames as PNG) and small line plots, drawn with a tiny raster canvas and a 3x5 pixel font into
 * PNGs written by media (no plotting dependency). */
#include "ev_glyph.h"
#include "ev_search.h"
#include "media.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void search_metrics_compute(const int64_t *cm, int k, search_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->num_classes = k;
    int64_t col[EV_MAX_CLASSES] = {0};
    for (int t = 0; t < k; t++)
        for (int p = 0; p < k; p++) {
            m->support[t] += cm[(size_t)t * k + p];
            col[p] += cm[(size_t)t * k + p];
            m->total += cm[(size_t)t * k + p];
        }
    for (int c = 0; c < k; c++) {
        const int64_t tp = cm[(size_t)c * k + c];
        m->correct += tp;
        m->precision[c] = col[c] ? (double)tp / col[c] : 0.0;
        m->recall[c] = m->support[c] ? (double)tp / m->support[c] : 0.0;
        const double s = m->precision[c] + m->recall[c];
        m->f1[c] = s > 0 ? 2.0 * m->precision[c] * m->recall[c] / s : 0.0;
        m->classes_present += m->support[c] > 0;
        if (m->support[c] > 0 || col[c] > 0) {
            m->classes_scored++;
            m->macro_precision += m->precision[c];
            m->macro_recall += m->recall[c];
            m->macro_f1 += m->f1[c];
            m->weighted_f1 += m->f1[c] * m->support[c];
        }
    }
    m->accuracy = m->total ? (double)m->correct / m->total : 0.0;
    if (m->classes_scored) {
        m->macro_precision /= m->classes_scored;
        m->macro_recall /= m->classes_scored;
        m->macro_f1 /= m->classes_scored;
    }
    m->weighted_f1 = m->total ? m->weighted_f1 / m->total : 0.0;
}

void *search_eval_json(const ev_model *model, const search_eval_result *r)
{
    const search_metrics *m = &r->metrics;
    const int k = r->k;
    json_t *per = json_object(), *conf = json_array(), *names = json_array();
    for (int c = 0; c < k; c++) {
        const char *name = ev_model_class_name(model, c);
        json_array_append_new(names, json_string(name));
        json_object_set_new(per, name,
                            json_pack("{s:f, s:f, s:f, s:I}", "precision", m->precision[c],
                                      "recall", m->recall[c], "f1", m->f1[c], "support",
                                      (json_int_t)m->support[c]));
        json_t *row = json_array();
        for (int p = 0; p < k; p++)
            json_array_append_new(row, json_integer(r->confusion[(size_t)c * k + p]));
        json_array_append_new(conf, row);
    }
    json_t *bins = json_array();
    for (int b = 0; b < SEARCH_ECE_BINS; b++)
        json_array_append_new(bins, json_pack("{s:f, s:f, s:f, s:I}", "upper",
                                              (b + 1.0) / SEARCH_ECE_BINS, "confidence",
                                              r->bin_confidence[b], "accuracy", r->bin_accuracy[b],
                                              "frames", (json_int_t)r->bin_count[b]));
    json_t *cal = json_pack("{s:f, s:f, s:f, s:f, s:f, s:o}", "temperature",
                            (double)ev_model_temperature(model), "confidence_threshold",
                            (double)ev_model_confidence_threshold(model), "ece", r->ece,
                            "unknown_fraction", r->unknown_fraction, "accepted_accuracy",
                            r->accepted_accuracy, "reliability", bins);
    json_t *j = json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:o, s:o, s:o, s:o}", "model",
                          ev_model_name(model), "frames", (json_int_t)m->total, "accuracy",
                          m->accuracy,
                          "macro_precision", m->macro_precision, "macro_recall", m->macro_recall,
                          "macro_f1", m->macro_f1, "weighted_f1", m->weighted_f1, "classes", names,
                          "per_class", per, "confusion", conf, "calibration", cal);
    const search_bootstrap *bs = &r->bootstrap;
    if (bs->resamples > 0)
        json_object_set_new(
            j, "bootstrap",
            json_pack("{s:s, s:i, s:i, s:I, s:[f,f], s:[f,f]}", "method", "patients",
                      "resamples", bs->resamples, "patients", bs->patients, "seed",
                      (json_int_t)bs->seed, "accuracy_95", bs->accuracy[0], bs->accuracy[1],
                      "macro_f1_95", bs->macro_f1[0], bs->macro_f1[1]));
    else if (bs->patients > 0)
        json_object_set_new(j, "bootstrap",
                            json_pack("{s:s, s:i, s:i, s:s}", "method", "patients", "resamples", 0,
                                      "patients", bs->patients, "note",
                                      "no interval: fewer than 2 patients evaluated"));
    json_object_set_new(j, "clips", json_integer(r->clips));
    json_object_set_new(j, "clip_accuracy",
                        json_real(r->clips ? (double)r->clips_correct / r->clips : 0.0));
    return j;
}

/* ---- raster canvas ------------------------------------------------------------------------ */

typedef struct canvas {
    media_image img; /* RGB 8-bit */
} canvas;

static int canvas_init(canvas *c, int w, int h, ev_error *err)
{
    int rc = media_image_alloc(&c->img, w, h, 3, 8, err);
    if (!rc)
        memset(c->img.data, 255, c->img.stride * (size_t)h);
    return rc;
}

static void put(canvas *c, int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= c->img.width || y >= c->img.height)
        return;
    uint8_t *p = c->img.data + (size_t)y * c->img.stride + (size_t)x * 3;
    p[0] = rgb >> 16, p[1] = rgb >> 8, p[2] = rgb;
}

static void fill_rect(canvas *c, int x, int y, int w, int h, uint32_t rgb)
{
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++)
            put(c, i, j, rgb);
}

static void line(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb, int thick)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        fill_rect(c, x0 - thick / 2, y0 - thick / 2, thick, thick, rgb);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * e;
        if (e2 >= dy)
            e += dy, x0 += sx;
        if (e2 <= dx)
            e += dx, y0 += sy;
    }
}

static int text(canvas *c, int x, int y, const char *s, uint32_t rgb, int scale)
{
    for (; *s; s++, x += 4 * scale) {
        unsigned g = ev_glyph_3x5((unsigned char)*s);
        for (int r = 0; r < EV_GLYPH_HEIGHT; r++)
            for (int b = 0; b < EV_GLYPH_WIDTH; b++)
                if (ev_glyph_pixel(g, b, r))
                    fill_rect(c, x + b * scale, y + r * scale, scale, scale, rgb);
    }
    return x;
}

static int text_width(const char *s, int scale) { return (int)strlen(s) * 4 * scale; }

/* white -> dark blue */
static uint32_t heat(double v)
{
    if (v < 0)
        v = 0;
    if (v > 1)
        v = 1;
    int r = (int)(255 - v * (255 - 8)), g = (int)(255 - v * (255 - 48)),
        b = (int)(255 - v * (255 - 107));
    return (uint32_t)r << 16 | (uint32_t)g << 8 | (uint32_t)b;
}

/* ---- SVG beside each PNG: vector text, so class names keep their accents and spaces ---- */

static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* path with its .png ending replaced by .svg */
static void svg_path(const char *png, char *out, size_t size)
{
    size_t n = strlen(png);
    if (n > 4 && !strcmp(png + n - 4, ".png"))
        n -= 4;
    snprintf(out, size, "%.*s.svg", (int)n, png);
}

static int svg_open(const char *png, int w, int h, char *path, size_t size, FILE **out,
                    ev_error *err)
{
    svg_path(png, path, size);
    FILE *f = *out = fopen(path, "w");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n",
            w, h, w, h);
    return EV_OK;
}

static int svg_close(FILE *f, const char *path, ev_error *err)
{
    fputs("</svg>\n", f);
    if (fclose(f) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: write failed", path);
    return EV_OK;
}

/* The confusion matrix as SVG: full class names on both axes (columns rotated), counts in the
 * cells, colour by the row-normalised share. */
static int write_confusion_svg(const char *png, const ev_model *model, const search_eval_result *r,
                               ev_error *err)
{
    const int k = r->k, cell = 36;
    size_t longest = 4;
    for (int c = 0; c < k; c++)
        if (strlen(ev_model_class_name(model, c)) > longest)
            longest = strlen(ev_model_class_name(model, c));
    const int label = 12 + (int)longest * 8, left = label + 40, top = 60 + label;
    const int w = left + k * cell + 20, h = top + k * cell + 20;
    char path[PATH_MAX];
    FILE *f;
    int rc = svg_open(png, w, h, path, sizeof path, &f, err);
    if (rc)
        return rc;
    fprintf(f, "<text x=\"8\" y=\"22\" font-size=\"16\">Confusion (rows: true class, columns: "
               "predicted; colour: share of the row)</text>\n");
    fprintf(f, "<text x=\"%d\" y=\"44\" font-size=\"13\" text-anchor=\"middle\">predicted</text>\n",
            left + k * cell / 2);
    fprintf(f, "<text transform=\"translate(16 %d) rotate(-90)\" font-size=\"13\" "
               "text-anchor=\"middle\">true</text>\n",
            top + k * cell / 2);
    for (int c = 0; c < k; c++) {
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 6,
                top + c * cell + cell / 2 + 4);
        svg_text(f, ev_model_class_name(model, c));
        fprintf(f, "</text>\n<text transform=\"translate(%d %d) rotate(-60)\" font-size=\"12\">",
                left + c * cell + cell / 2 + 4, top - 6);
        svg_text(f, ev_model_class_name(model, c));
        fputs("</text>\n", f);
    }
    for (int t = 0; t < k; t++) {
        int64_t row = r->metrics.support[t];
        for (int p = 0; p < k; p++) {
            int64_t n = r->confusion[(size_t)t * k + p];
            double v = row ? (double)n / row : 0.0;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%06x\" "
                    "stroke=\"#cccccc\"><title>%lld of %lld (%.1f %%)</title></rect>\n",
                    left + p * cell, top + t * cell, cell, cell, heat(v), (long long)n,
                    (long long)row, 100 * v);
            if (n)
                fprintf(f,
                        "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
                        "fill=\"%s\">%lld</text>\n",
                        left + p * cell + cell / 2, top + t * cell + cell / 2 + 4,
                        v > 0.5 ? "#ffffff" : "#202020", (long long)n);
        }
    }
    return svg_close(f, path, err);
}

static int write_confusion_png(const char *path, const ev_model *model, const search_eval_result *r,
                               ev_error *err)
{
    const int k = r->k, cell = 30, scale = 2;
    int label_w = 0;
    for (int c = 0; c < k; c++) {
        int w = text_width(ev_model_class_name(model, c), scale);
        if (w > label_w)
            label_w = w;
    }
    const char *title = "CONFUSION (ROWS TRUE, COLUMNS PREDICTED, ROW-NORMALISED)";
    const int left = label_w + 16, top = 40, title_w = 8 + text_width(title, 2) + 8;
    const int w = left + k * cell + 20 > title_w ? left + k * cell + 20 : title_w,
              h = top + k * cell + 24 + 12;
    canvas cv;
    int rc = canvas_init(&cv, w, h, err);
    if (rc)
        return rc;
    text(&cv, 8, 8, title, 0x202020, 2);
    for (int t = 0; t < k; t++) {
        int64_t row = r->metrics.support[t];
        text(&cv, 6, top + t * cell + cell / 2 - 5, ev_model_class_name(model, t), 0x202020, scale);
        char num[8];
        snprintf(num, sizeof num, "%d", t);
        text(&cv, left + t * cell + cell / 2 - text_width(num, 1) / 2, top + k * cell + 6, num,
             0x202020, 2);
        for (int p = 0; p < k; p++) {
            int64_t n = r->confusion[(size_t)t * k + p];
            double v = row ? (double)n / row : 0.0;
            fill_rect(&cv, left + p * cell, top + t * cell, cell - 1, cell - 1, heat(v));
            if (n) {
                char s[24];
                snprintf(s, sizeof s, "%lld", (long long)n);
                int sc = text_width(s, 1) * 1 + 4 < cell - 2 ? 1 : 1;
                text(&cv, left + p * cell + (cell - text_width(s, sc)) / 2,
                     top + t * cell + cell / 2 - 3, s, v > 0.5 ? 0xffffff : 0x202020, sc);
            }
        }
    }
    rc = media_image_write_png(path, &cv.img, err);
    media_image_free(&cv.img);
    return rc;
}

static int write_misclassified_png(const char *path, const ev_model *model,
                                   const search_dataset *ds, const search_eval_result *r, int split,
                                   ev_error *err)
{
    enum { MAX_TILES = 48, COLS = 8 };
    int idx[MAX_TILES], n = 0, total = 0;
    for (int i = 0; i < ds->count; i++)
        if ((split < 0 || ds->split[i] == split) && r->predicted[i] >= 0 &&
            r->predicted[i] != ds->labels[i]) {
            if (n < MAX_TILES)
                idx[n++] = i;
            total++;
        }
    const int tw = ds->width < 64 ? 64 : ds->width, th = ds->height < 64 ? 64 : ds->height;
    const int zoom = ds->width < 64 ? (64 + ds->width - 1) / ds->width : 1;
    const int cols = n < COLS ? (n ? n : 1) : COLS, rows = (n + COLS - 1) / COLS;
    const int cw = tw + 60 > 120 ? tw + 60 : 120, ch = th + 26;
    canvas cv;
    int rc = canvas_init(&cv, cols * cw + 8, 24 + (rows ? rows : 1) * ch, err);
    if (rc)
        return rc;
    char title[96];
    snprintf(title, sizeof title, "MISCLASSIFIED: %d (FIRST %d SHOWN)", total, n);
    text(&cv, 6, 6, title, 0x202020, 2);
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;
    for (int t = 0; t < n; t++) {
        int x0 = 4 + (t % COLS) * cw, y0 = 24 + (t / COLS) * ch;
        const uint8_t *px = ds->pixels + (size_t)idx[t] * fsz;
        for (int y = 0; y < ds->height * zoom && y < th; y++)
            for (int x = 0; x < ds->width * zoom && x < tw; x++) {
                uint8_t v = px[(size_t)(y / zoom) * ds->width + x / zoom];
                put(&cv, x0 + x, y0 + y, (uint32_t)v << 16 | (uint32_t)v << 8 | v);
            }
        char s[128];
        snprintf(s, sizeof s, "%s", ev_model_class_name(model, ds->labels[idx[t]]));
        text(&cv, x0, y0 + th + 2, s, 0x107010, 1);
        snprintf(s, sizeof s, "> %s", ev_model_class_name(model, r->predicted[idx[t]]));
        text(&cv, x0, y0 + th + 10, s, 0xb01010, 1);
    }
    rc = media_image_write_png(path, &cv.img, err);
    media_image_free(&cv.img);
    return rc;
}

int search_write_report(const char *dir, const ev_model *model, const search_dataset *ds,
                        const search_eval_result *r, int split, ev_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    char path[PATH_MAX];
    json_t *j = search_eval_json(model, r);
    json_object_set_new(j, "split", json_string(split < 0 ? "all" : search_split_name(split)));
    snprintf(path, sizeof path, "%s/report.json", dir);
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))) {
        json_decref(j);
        return ev_fail(err, EV_ERR_IO, "%s: cannot write", path);
    }
    json_decref(j);
    snprintf(path, sizeof path, "%s/report.md", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    const search_metrics *m = &r->metrics;
    fprintf(f, "# Evaluation of %s (%s split, %lld frames)\n\n", ev_model_name(model),
            split < 0 ? "all" : search_split_name(split), (long long)m->total);
    fprintf(f,
            "| accuracy | macro precision | macro recall | macro F1 | weighted F1 |\n"
            "|---|---|---|---|---|\n| %.2f | %.2f | %.2f | %.2f | %.2f |\n\n",
            100 * m->accuracy, 100 * m->macro_precision, 100 * m->macro_recall, 100 * m->macro_f1,
            100 * m->weighted_f1);
    if (r->bootstrap.resamples > 0)
        fprintf(f,
                "95%% intervals (bootstrap over %d patients, %d resamples, seed %llu): accuracy "
                "%.2f-%.2f, macro F1 %.2f-%.2f.\n\n",
                r->bootstrap.patients, r->bootstrap.resamples,
                (unsigned long long)r->bootstrap.seed, 100 * r->bootstrap.accuracy[0],
                100 * r->bootstrap.accuracy[1], 100 * r->bootstrap.macro_f1[0],
                100 * r->bootstrap.macro_f1[1]);
    fprintf(f, "Clip accuracy (mean probabilities over a clip's frames): %.2f%% of %lld clips.\n\n",
            r->clips ? 100.0 * r->clips_correct / r->clips : 0.0, (long long)r->clips);
    fprintf(f,
            "Calibration: ECE %.2f%% over %d bins (temperature %g); confidence threshold %.3f: "
            "%.1f%% of frames `unknown`, accuracy over the rest %.2f%% (reliability.png).\n\n",
            100 * r->ece, SEARCH_ECE_BINS, (double)ev_model_temperature(model),
            (double)ev_model_confidence_threshold(model), 100 * r->unknown_fraction,
            100 * r->accepted_accuracy);
    fprintf(f, "| view | precision | recall | F1 | frames |\n|---|---|---|---|---|\n");
    for (int c = 0; c < r->k; c++)
        fprintf(f, "| %s | %.1f | %.1f | %.1f | %lld |\n", ev_model_class_name(model, c),
                100 * m->precision[c], 100 * m->recall[c], 100 * m->f1[c],
                (long long)m->support[c]);
    fprintf(f, "\nConfusion (rows true, columns predicted, columns in the same order):\n\n```\n");
    for (int t = 0; t < r->k; t++) {
        fprintf(f, "%-14s", ev_model_class_name(model, t));
        for (int p = 0; p < r->k; p++)
            fprintf(f, " %5lld", (long long)r->confusion[(size_t)t * r->k + p]);
        fprintf(f, "\n");
    }
    fprintf(f, "```\n");
    fclose(f);
    snprintf(path, sizeof path, "%s/predictions.csv", dir);
    int rc = search_write_predictions(path, model, ds, r, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/confusion.png", dir);
    rc = write_confusion_png(path, model, r, err);
    if (!rc)
        rc = write_confusion_svg(path, model, r, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/misclassified.png", dir);
    if ((rc = write_misclassified_png(path, model, ds, r, split, err)))
        return rc;
    /* reliability diagram: accuracy against mean confidence per non-empty bin, and the diagonal */
    double bx[SEARCH_ECE_BINS], by[SEARCH_ECE_BINS];
    const double diag[2] = {0.0, 1.0};
    int nb = 0;
    for (int b = 0; b < SEARCH_ECE_BINS; b++)
        if (r->bin_count[b]) {
            bx[nb] = r->bin_confidence[b];
            by[nb++] = r->bin_accuracy[b];
        }
    const search_plot_series series[2] = {{"per bin", nb, bx, by},
                                          {"ideal", 2, diag, diag}};
    snprintf(path, sizeof path, "%s/reliability.png", dir);
    return search_plot_lines(path, "reliability", "confidence", "accuracy", series, 2, err);
}

/* ---- line plots ------------------------------------------------------------------------------ */

static const uint32_t palette[] = {0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e,
                                   0x9467bd, 0x8c564b, 0xe377c2, 0x17becf};

static double nice_step(double range)
{
    double e = pow(10, floor(log10(range / 5)));
    double f = range / 5 / e;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
}

int search_plot_lines(const char *path, const char *title, const char *x_label, const char *y_label,
                      const search_plot_series *series, int num_series, ev_error *err)
{
    const int W = 720, H = 460, L = 80, R = 190, T = 40, B = 60;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < num_series; s++)
        for (int i = 0; i < series[s].count; i++) {
            x0 = fmin(x0, series[s].x[i]), x1 = fmax(x1, series[s].x[i]);
            y0 = fmin(y0, series[s].y[i]), y1 = fmax(y1, series[s].y[i]);
        }
    if (!isfinite(x0)) {
        x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    }
    if (x1 - x0 < 1e-9)
        x0 -= 1, x1 += 1;
    if (y1 - y0 < 1e-9)
        y0 -= 1, y1 += 1;
    double ys = nice_step(y1 - y0);
    y0 = floor(y0 / ys) * ys, y1 = ceil(y1 / ys) * ys;
    canvas cv;
    int rc = canvas_init(&cv, W, H, err);
    if (rc)
        return rc;
    const int pw = W - L - R, ph = H - T - B;
#define PX(v) (L + (int)lround(((v)-x0) / (x1 - x0) * pw))
#define PY(v) (T + ph - (int)lround(((v)-y0) / (y1 - y0) * ph))
    text(&cv, L, 12, title, 0x101010, 2);
    for (double v = y0; v <= y1 + ys * 0.01; v += ys) {
        line(&cv, L, PY(v), L + pw, PY(v), 0xdddddd, 1);
        char s[32];
        snprintf(s, sizeof s, "%g", fabs(v) < ys * 1e-6 ? 0.0 : v);
        text(&cv, L - 8 - text_width(s, 2), PY(v) - 5, s, 0x303030, 2);
    }
    double xs = nice_step(x1 - x0);
    for (double v = ceil(x0 / xs) * xs; v <= x1 + xs * 0.01; v += xs) {
        line(&cv, PX(v), T + ph, PX(v), T + ph + 4, 0x303030, 1);
        char s[32];
        snprintf(s, sizeof s, "%g", v);
        text(&cv, PX(v) - text_width(s, 2) / 2, T + ph + 10, s, 0x303030, 2);
    }
    line(&cv, L, T, L, T + ph, 0x303030, 1);
    line(&cv, L, T + ph, L + pw, T + ph, 0x303030, 1);
    text(&cv, L + pw / 2 - text_width(x_label, 2) / 2, H - 22, x_label, 0x101010, 2);
    text(&cv, 6, T - 14, y_label, 0x101010, 2);
    for (int s = 0; s < num_series; s++) {
        uint32_t col = palette[s % (int)(sizeof palette / sizeof palette[0])];
        for (int i = 0; i < series[s].count; i++) {
            int px = PX(series[s].x[i]), py = PY(series[s].y[i]);
            if (i)
                line(&cv, PX(series[s].x[i - 1]), PY(series[s].y[i - 1]), px, py, col, 3);
            fill_rect(&cv, px - 4, py - 4, 9, 9, col);
        }
        fill_rect(&cv, L + pw + 16, T + 10 + s * 20, 14, 10, col);
        text(&cv, L + pw + 36, T + 10 + s * 20, series[s].name ? series[s].name : "", 0x101010, 2);
    }
    rc = media_image_write_png(path, &cv.img, err);
    media_image_free(&cv.img);
    /* the same plot as SVG beside it */
    char svg[PATH_MAX];
    FILE *f;
    if (rc || (rc = svg_open(path, W, H, svg, sizeof svg, &f, err)))
        return rc;
    fputs("<text x=\"80\" y=\"26\" font-size=\"18\">", f);
    svg_text(f, title);
    fputs("</text>\n", f);
    for (double v = y0; v <= y1 + ys * 0.01; v += ys)
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n"
                "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"end\">%g</text>\n",
                L, PY(v), L + pw, PY(v), L - 8, PY(v) + 4, fabs(v) < ys * 1e-6 ? 0.0 : v);
    for (double v = ceil(x0 / xs) * xs; v <= x1 + xs * 0.01; v += xs)
        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#303030\"/>\n"
                "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">%g</text>\n",
                PX(v), T + ph, PX(v), T + ph + 4, PX(v), T + ph + 20, v);
    fprintf(f,
            "<polyline points=\"%d,%d %d,%d %d,%d\" fill=\"none\" stroke=\"#303030\"/>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\">",
            L, T, L, T + ph, L + pw, T + ph, L + pw / 2, H - 14);
    svg_text(f, x_label);
    fprintf(f, "</text>\n<text transform=\"translate(20 %d) rotate(-90)\" font-size=\"14\" "
               "text-anchor=\"middle\">",
            T + ph / 2);
    svg_text(f, y_label);
    fputs("</text>\n", f);
    for (int si = 0; si < num_series; si++) {
        uint32_t col = palette[si % (int)(sizeof palette / sizeof palette[0])];
        fprintf(f, "<polyline fill=\"none\" stroke=\"#%06x\" stroke-width=\"2.5\" points=\"", col);
        for (int i = 0; i < series[si].count; i++)
            fprintf(f, "%s%d,%d", i ? " " : "", PX(series[si].x[i]), PY(series[si].y[i]));
        fputs("\"/>\n", f);
        for (int i = 0; i < series[si].count; i++)
            fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"#%06x\"><title>%g, %g</title>"
                       "</circle>\n",
                    PX(series[si].x[i]), PY(series[si].y[i]), col, series[si].x[i],
                    series[si].y[i]);
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"10\" fill=\"#%06x\"/>\n"
                "<text x=\"%d\" y=\"%d\" font-size=\"13\">",
                L + pw + 16, T + 10 + si * 20, col, L + pw + 36, T + 19 + si * 20);
        svg_text(f, series[si].name ? series[si].name : "");
        fputs("</text>\n", f);
    }
#undef PX
#undef PY
    return svg_close(f, svg, err);
}
