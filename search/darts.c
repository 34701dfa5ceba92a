/* darts.c: the architecture search loop behind `echoview search` (train_search.py of the
 * reference): the training split divided into search-train and search-val halves by patient,
 * one architecture step on a search-val batch then one weight step on a search-train batch per
 * step, cosine learning rate, a checkpoint per epoch with exact resume, the derived genotype
 * (YAML + the one-line published form), a JSONL history of alpha per epoch, PNG plots of the
 * op weights over epochs and Graphviz cell diagrams. Also the per-op latency table and the
 * search-step benchmark.
 */
#define _POSIX_C_SOURCE 200809L
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "search_util.h"
#include "supernet.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void search_darts_defaults(search_darts_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = 32;
    o->init_channels = 16;
    o->num_cells = 8;
    ev_layout_from_layers(8, o->reduction);
    o->epochs = 50;
    o->batch = 64;
    o->seed = 2;
    o->lr = 0.025f;
    o->lr_min = 0.001f;
    o->momentum = 0.9f;
    o->weight_decay = 3e-4f;
    o->grad_clip = 5.0f;
    search_arch_defaults(&o->arch);
    o->max_skips = 2;
    o->augment = true;
}

static int threads_or_all(int t)
{
    if (t > 0)
        return t;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static float cosine_lr(const search_darts_options *o, int epoch)
{
    return (float)(o->lr_min + (o->lr - o->lr_min) * 0.5 * (1.0 + cos(M_PI * epoch / o->epochs)));
}

/* ---- checkpoints: weights, SGD momentum, alphas and their Adam state, per epoch ------------ */

static char *fingerprint(const search_darts_options *o)
{
    char *s = malloc(512);
    if (!s)
        return NULL;
    int n = snprintf(s, 512, "size %d C %d batch %d order %d edge_norm %d K %d seed %llu layout ",
                     o->size, o->init_channels, o->batch, o->arch.order, (int)o->edge_norm,
                     o->partial_channels, (unsigned long long)o->seed);
    for (int i = 0; i < o->num_cells && n < 500; i++)
        n += snprintf(s + n, 512 - n, "%c", o->reduction[i] ? 'R' : 'N');
    return s;
}

static int save_checkpoint(const char *dir, search_supernet *s, int epoch, const char *fp,
                           ev_error *err)
{
    ev_net *net = search_supernet_net(s);
    const int n = net->num_params + 5;
    ev_st_entry *e = calloc((size_t)n, sizeof *e);
    int64_t(*shapes)[4] = calloc((size_t)n, sizeof *shapes);
    char(*names)[EV_PARAM_NAME_MAX + 8] = calloc((size_t)n, sizeof *names);
    float *adam_v;
    int64_t *adam_step;
    float *adam_m = search_supernet_arch_adam(s, &adam_v, &adam_step);
    size_t mom_count;
    bool *has_mom;
    float *mom = search_supernet_momentum(s, &mom_count, &has_mom);
    float state[3] = {(float)epoch, (float)*adam_step, *has_mom ? 1.0f : 0.0f};
    int rc = EV_OK;
    if (!e || !shapes || !names) {
        rc = ev_fail(err, EV_ERR_NOMEM, "checkpoint: out of memory");
        goto out;
    }
    int c = 0;
    for (int i = 0; i < net->num_params; i++, c++) {
        const ev_param *p = &net->params[i];
        snprintf(names[c], sizeof names[c], "param.%s", p->name);
        for (int d = 0; d < p->ndim; d++)
            shapes[c][d] = p->shape[d];
        e[c] = (ev_st_entry){names[c], p->ndim, shapes[c], p->data};
    }
    const char *extra[5] = {"momentum", "arch", "arch_adam_m", "arch_adam_v", "state"};
    const float *data[5] = {mom, search_supernet_arch(s), adam_m, adam_v, state};
    const int64_t sizes[5] = {(int64_t)mom_count, SEARCH_ARCH_SIZE, SEARCH_ARCH_SIZE,
                              SEARCH_ARCH_SIZE, 3};
    for (int i = 0; i < 5; i++, c++) {
        shapes[c][0] = sizes[i];
        e[c] = (ev_st_entry){extra[i], 1, shapes[c], data[i]};
    }
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/search_checkpoint.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const char *meta[] = {"config", fp};
    if ((rc = ev_safetensors_write(tmp, e, c, meta, 1, err)))
        goto out;
    if (rename(tmp, path) != 0)
        rc = ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
out:
    free(e);
    free(shapes);
    free(names);
    return rc;
}

static const float *tensor(const ev_safetensors *st, const char *name, size_t numel)
{
    const ev_st_tensor *t = ev_safetensors_find(st, name);
    if (!t || t->dtype != EV_DTYPE_F32 || t->end - t->begin != numel * sizeof(float))
        return NULL;
    return (const float *)(st->data + t->begin);
}

/* Reads the config fingerprint from the safetensors header's metadata. */
static char *read_fingerprint(const char *path)
{
    json_t *meta = ev_safetensors_read_metadata(path);
    const char *s = json_string_value(json_object_get(meta, "config"));
    char *out = s ? strdup(s) : NULL;
    json_decref(meta);
    return out;
}

static int load_checkpoint(const char *dir, search_supernet *s, const char *fp, int *epoch,
                           ev_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/search_checkpoint.safetensors", dir);
    char *have = read_fingerprint(path);
    if (!have)
        return ev_fail(err, EV_ERR_IO, "%s: no readable checkpoint to resume from", path);
    if (strcmp(have, fp)) {
        int rc = ev_fail(err, EV_ERR_INVALID,
                         "%s: the checkpoint was made with other options (%s; now %s); resume "
                         "with the same --size/--init-channels/--batch/--order/--layout/--seed",
                         path, have, fp);
        free(have);
        return rc;
    }
    free(have);
    ev_safetensors st = {0};
    int rc = ev_safetensors_read(path, &st, err);
    if (rc)
        return rc;
    ev_net *net = search_supernet_net(s);
    float *adam_v;
    int64_t *adam_step;
    float *adam_m = search_supernet_arch_adam(s, &adam_v, &adam_step);
    size_t mom_count;
    bool *has_mom;
    float *mom = search_supernet_momentum(s, &mom_count, &has_mom);
    for (int i = 0; i < net->num_params && !rc; i++) {
        ev_param *p = &net->params[i];
        char name[EV_PARAM_NAME_MAX + 8];
        snprintf(name, sizeof name, "param.%s", p->name);
        const float *src = tensor(&st, name, p->numel);
        if (!src)
            rc = ev_fail(err, EV_ERR_FORMAT, "%s: tensor %s missing or mis-sized", path, name);
        else
            memcpy(p->data, src, p->numel * sizeof(float));
    }
    const float *m = tensor(&st, "momentum", mom_count), *a = tensor(&st, "arch", SEARCH_ARCH_SIZE);
    const float *am = tensor(&st, "arch_adam_m", SEARCH_ARCH_SIZE);
    const float *av = tensor(&st, "arch_adam_v", SEARCH_ARCH_SIZE);
    const float *state = tensor(&st, "state", 3);
    if (!rc && (!m || !a || !am || !av || !state))
        rc = ev_fail(err, EV_ERR_FORMAT, "%s: optimiser state missing or mis-sized", path);
    if (!rc) {
        memcpy(mom, m, mom_count * sizeof(float));
        memcpy(search_supernet_arch(s), a, SEARCH_ARCH_SIZE * sizeof(float));
        memcpy(adam_m, am, SEARCH_ARCH_SIZE * sizeof(float));
        memcpy(adam_v, av, SEARCH_ARCH_SIZE * sizeof(float));
        *epoch = (int)state[0];
        *adam_step = (int64_t)state[1];
        *has_mom = state[2] != 0.0f;
    }
    ev_safetensors_free(&st);
    return rc;
}

/* ---- outputs ------------------------------------------------------------------------------- */

static json_t *float_rows(const float *x, int rows, int cols)
{
    json_t *a = json_array();
    for (int r = 0; r < rows; r++) {
        json_t *row = json_array();
        for (int c = 0; c < cols; c++)
            json_array_append_new(row, json_real(x[r * cols + c]));
        json_array_append_new(a, row);
    }
    return a;
}

/* Keeps the history lines of epochs <= epoch (a resumed run rewrites what follows). */
static int trim_history(const char *path, int epoch, ev_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return EV_OK;
    char *kept = NULL;
    size_t kept_size = 0;
    FILE *mem = open_memstream(&kept, &kept_size);
    char *line = NULL;
    size_t cap = 0;
    while (mem && getline(&line, &cap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && json_integer_value(json_object_get(j, "epoch")) <= epoch)
            fputs(line, mem);
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (!mem)
        return ev_fail(err, EV_ERR_NOMEM, "history: out of memory");
    fclose(mem);
    f = fopen(path, "w");
    int rc = EV_OK;
    if (!f || fwrite(kept, 1, kept_size, f) != kept_size)
        rc = ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    if (f)
        fclose(f);
    free(kept);
    return rc;
}

/* alpha_normal.png / alpha_reduce.png: the mean softmax weight of each primitive over the 14
 * edges, per epoch, from the history file. */
static int plot_history(const char *dir, ev_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/alpha_history.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    int n = 0, cap = 0, rc = EV_OK;
    double *x = NULL, *y[2][SEARCH_OPS] = {{0}};
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            x = realloc(x, (size_t)cap * sizeof *x);
            for (int t = 0; t < 2; t++)
                for (int p = 0; p < SEARCH_OPS; p++)
                    y[t][p] = realloc(y[t][p], (size_t)cap * sizeof(double));
        }
        x[n] = (double)json_integer_value(json_object_get(j, "epoch"));
        for (int t = 0; t < 2; t++) {
            json_t *w = json_object_get(j, t ? "weights_reduce" : "weights_normal");
            for (int p = 0; p < SEARCH_OPS; p++) {
                double sum = 0.0;
                for (int e = 0; e < SEARCH_EDGES; e++)
                    sum += json_real_value(json_array_get(json_array_get(w, e), p));
                y[t][p][n] = sum / SEARCH_EDGES;
            }
        }
        json_decref(j);
        n++;
    }
    free(line);
    fclose(f);
    for (int t = 0; t < 2 && !rc && n > 0; t++) {
        search_plot_series series[SEARCH_OPS];
        for (int p = 0; p < SEARCH_OPS; p++)
            series[p] = (search_plot_series){ev_primitive_name(p), n, x, y[t][p]};
        snprintf(path, sizeof path, "%s/alpha_%s.png", dir, t ? "reduce" : "normal");
        rc = search_plot_lines(path,
                               t ? "reduce cell: mean softmax(alpha) per op"
                                 : "normal cell: mean softmax(alpha) per op",
                               "epoch", "weight", series, SEARCH_OPS, err);
    }
    free(x);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < SEARCH_OPS; p++)
            free(y[t][p]);
    return rc;
}

int search_cell_dot(const ev_cell_genotype *cell, const char *title, const char *dot_path,
                    const char *png_path, ev_error *err)
{
    FILE *f = fopen(dot_path, "w");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", dot_path, strerror(errno));
    /* the reference visualize.py's drawing: inputs and the output green, nodes blue */
    fprintf(f,
            "digraph cell {\n  rankdir=LR;\n  label=\"%s\";\n  labelloc=t;\n"
            "  node [style=\"rounded,filled\", shape=rect, fontname=helvetica, "
            "fontsize=20, height=0.5, width=0.5, penwidth=2];\n"
            "  edge [fontname=times, fontsize=18];\n"
            "  \"c_{k-2}\" [fillcolor=darkseagreen2];\n  \"c_{k-1}\" [fillcolor=darkseagreen2];\n",
            title);
    for (int i = 0; i < cell->num_nodes; i++)
        fprintf(f, "  \"%d\" [fillcolor=lightblue];\n", i);
    for (int m = 0; m < 2 * cell->num_nodes; m++) {
        const ev_genotype_edge *e = &cell->edges[m];
        char from[16];
        if (e->input == 0)
            snprintf(from, sizeof from, "c_{k-2}");
        else if (e->input == 1)
            snprintf(from, sizeof from, "c_{k-1}");
        else
            snprintf(from, sizeof from, "%d", e->input - 2);
        fprintf(f, "  \"%s\" -> \"%d\" [label=\"%s\", fillcolor=gray];\n", from, m / 2,
                ev_primitive_name(e->op));
    }
    fprintf(f, "  \"c_{k}\" [fillcolor=palegoldenrod];\n");
    for (int i = 0; i < cell->num_concat; i++)
        fprintf(f, "  \"%d\" -> \"c_{k}\" [fillcolor=gray];\n", cell->concat[i] - 2);
    fprintf(f, "}\n");
    if (fclose(f) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: write failed", dot_path);
    if (!png_path)
        return EV_OK;
    pid_t pid = fork();
    if (pid < 0)
        return ev_fail(err, EV_ERR_IO, "dot: fork: %s", strerror(errno));
    if (pid == 0) {
        execlp("dot", "dot", "-Tpng", "-o", png_path, dot_path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return ev_fail(err, EV_ERR_IO,
                       "%s: Graphviz `dot` failed or is missing (apt-get install graphviz); the "
                       "diagram source is in %s",
                       png_path, dot_path);
    return EV_OK;
}

static int write_genotype(const char *dir, const ev_genotype *g, const char *name, bool diagrams,
                          bool quiet, ev_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    char *yaml = ev_genotype_to_yaml(g, name), *line = ev_genotype_to_string(g);
    int rc = EV_OK;
    if (!yaml || !line) {
        rc = ev_fail(err, EV_ERR_NOMEM, "genotype: out of memory");
        goto out;
    }
    const char *files[2] = {"genotype.yaml", "genotype.txt"};
    for (int i = 0; i < 2 && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (!f ||
            fprintf(f, "%s%s", i ? line : "# genotype found by echoview search, DARTS\n",
                    i ? "\n" : yaml) < 0 ||
            fclose(f) != 0 || rename(tmp, path) != 0)
            rc = ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    }
    for (int t = 0; t < 2 && !rc && diagrams; t++) {
        char dot[PATH_MAX], png[PATH_MAX];
        snprintf(dot, sizeof dot, "%s/cell_%s.dot", dir, t ? "reduce" : "normal");
        snprintf(png, sizeof png, "%s/cell_%s.png", dir, t ? "reduce" : "normal");
        ev_error derr = {0};
        if (search_cell_dot(t ? &g->reduce : &g->normal, t ? "reduce cell" : "normal cell", dot,
                            png, &derr) &&
            !quiet)
            fprintf(stderr, "warning: %s\n", derr.message);
    }
out:
    free(yaml);
    free(line);
    return rc;
}

/* ---- data ---------------------------------------------------------------------------------- */

typedef struct search_data {
    int *train, *val; /* frame indices of the two halves of the training split */
    int ntrain, nval;
} search_data;

/* The training split's patients ordered by a seeded hash, the first half search-train, the rest
 * search-val, so no patient is on both sides; a single patient falls back to alternate frames. */
static int split_halves(const search_dataset *ds, uint64_t seed, search_data *d, ev_error *err)
{
    d->train = malloc((size_t)ds->count * sizeof(int));
    d->val = malloc((size_t)ds->count * sizeof(int));
    int np = ds->num_patients > 0 ? ds->num_patients : 1;
    uint64_t *key = calloc((size_t)np, sizeof *key);
    unsigned char *seen = calloc((size_t)np, 1);
    if (!d->train || !d->val || !key || !seen) {
        free(key);
        free(seen);
        return ev_fail(err, EV_ERR_NOMEM, "search: out of memory");
    }
    int patients = 0;
    for (int i = 0; i < ds->count; i++)
        if (ds->split[i] == SEARCH_SPLIT_TRAIN && ds->patient[i] >= 0 && ds->patient[i] < np &&
            !seen[ds->patient[i]]) {
            seen[ds->patient[i]] = 1;
            patients++;
        }
    /* patients ordered by a seeded hash (ties by id): the first half go to search-train */
    int half = (patients + 1) / 2;
    int *order = malloc((size_t)np * sizeof *order);
    if (!order) {
        free(key);
        free(seen);
        return ev_fail(err, EV_ERR_NOMEM, "search: out of memory");
    }
    int listed = 0;
    for (int p = 0; p < np; p++) {
        key[p] = search_seed_mix(seed ^ 0x5ea2c4ull, (uint64_t)p);
        if (seen[p])
            order[listed++] = p;
    }
    for (int a = 1; a < listed; a++) /* insertion sort by (key, id) */
        for (int c = a; c > 0 && (key[order[c]] < key[order[c - 1]] ||
                                  (key[order[c]] == key[order[c - 1]] && order[c] < order[c - 1]));
             c--) {
            int t = order[c];
            order[c] = order[c - 1];
            order[c - 1] = t;
        }
    for (int r = 0; r < listed; r++)
        seen[order[r]] = r < half ? 1 : 2; /* 1: search-train, 2: search-val */
    free(order);
    for (int i = 0, alt = 0; i < ds->count; i++) {
        if (ds->split[i] != SEARCH_SPLIT_TRAIN)
            continue; /* val and test splits are never touched by the search */
        bool to_train;
        int p = ds->patient[i];
        if (patients < 2 || p < 0 || p >= np)
            to_train = (alt++ % 2) == 0;
        else
            to_train = seen[p] == 1;
        if (to_train)
            d->train[d->ntrain++] = i;
        else
            d->val[d->nval++] = i;
    }
    free(key);
    free(seen);
    if (!d->ntrain || !d->nval)
        return ev_fail(err, EV_ERR_INVALID,
                       "search: the training split has %d frames; both search halves need some",
                       d->ntrain + d->nval);
    return EV_OK;
}

static void fill_batch(const search_dataset *ds, const int *idx, int n, const search_augment *aug,
                       uint64_t seed, float *x, int32_t *y)
{
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;
    const float mean[3] = {0, 0, 0}, stdv[3] = {1, 1, 1};
    for (int i = 0; i < n; i++) {
        uint64_t rng = search_seed_mix(seed, (uint64_t)i);
        search_frame_to_input(ds->pixels + (size_t)idx[i] * fsz, ds->width, ds->height,
                              ds->channels, aug, &rng, EV_NORMALIZE_NONE, 1.0f / 255.0f, mean, stdv,
                              x + i * fsz);
        y[i] = ds->labels[idx[i]];
    }
}

/* eval-mode loss and accuracy over (up to max) frames of the search-val half */
static int evaluate(search_supernet *s, const search_dataset *ds, const int *idx, int count,
                    int batch, float *x, int32_t *y, double *loss, double *acc, ev_error *err)
{
    const int k = ds->num_classes;
    double sum = 0.0;
    int correct = 0, seen = 0;
    int *bi = malloc((size_t)batch * sizeof *bi);
    if (!bi)
        return ev_fail(err, EV_ERR_NOMEM, "search: out of memory");
    int rc = EV_OK;
    for (int b0 = 0; b0 < count && !rc; b0 += batch) {
        int nb = count - b0 < batch ? count - b0 : batch;
        for (int i = 0; i < batch; i++) /* a short last batch is padded with its first frame */
            bi[i] = idx[b0 + (i < nb ? i : 0)];
        fill_batch(ds, bi, batch, NULL, 0, x, y);
        const float *logits;
        if ((rc = search_supernet_infer(s, x, &logits, err)))
            break;
        for (int i = 0; i < nb; i++) {
            const float *row = logits + (size_t)i * k;
            int best = 0;
            double m = row[0], z = 0.0;
            for (int j = 1; j < k; j++) {
                if (row[j] > row[best])
                    best = j;
                m = row[j] > m ? row[j] : m;
            }
            for (int j = 0; j < k; j++)
                z += exp(row[j] - m);
            sum += -(row[y[i]] - m - log(z));
            correct += best == y[i];
            seen++;
        }
    }
    free(bi);
    *loss = seen ? sum / seen : 0.0;
    *acc = seen ? (double)correct / seen : 0.0;
    return rc;
}

/* ---- the loop ------------------------------------------------------------------------------- */

static int check_options(const search_darts_options *o, ev_error *err)
{
    if (o->epochs < 1 || o->epochs > 1000)
        return ev_fail(err, EV_ERR_INVALID, "search: epochs %d outside 1..1000", o->epochs);
    if (o->arch.order != 1 && o->arch.order != 2)
        return ev_fail(err, EV_ERR_INVALID, "search: order %d (1 or 2)", o->arch.order);
    if (!(o->lr > 0.0f) || !(o->lr_min >= 0.0f) || o->lr_min > o->lr)
        return ev_fail(err, EV_ERR_INVALID, "search: learning rate %g to %g", (double)o->lr,
                       (double)o->lr_min);
    return EV_OK;
}

static void supernet_config(const search_darts_options *o, int classes, int channels,
                            search_supernet_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->init_channels = o->init_channels;
    cfg->num_cells = o->num_cells;
    memcpy(cfg->reduction, o->reduction, sizeof cfg->reduction);
    cfg->in_channels = channels;
    cfg->num_classes = classes;
    cfg->size = o->size;
    cfg->edge_norm = o->edge_norm;
    cfg->partial_channels = o->partial_channels;
}

int search_darts_run(const search_darts_options *o, search_darts_result *result, ev_error *err)
{
    search_darts_result local;
    search_darts_result *res = result ? result : &local;
    memset(res, 0, sizeof *res);
    int rc = check_options(o, err);
    if (rc)
        return rc;
    if (!o->out_dir)
        return ev_fail(err, EV_ERR_INVALID, "search: no output folder");
    if (mkdir(o->out_dir, 0755) != 0 && errno != EEXIST)
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", o->out_dir, strerror(errno));
    const int threads = threads_or_all(o->threads);
    const int k = o->num_classes > 0 ? o->num_classes : 14;
    char *const *classes = o->class_names ? o->class_names : (char *const *)ev_echo_views;
    search_dataset *ds = o->dataset;
    search_supernet *s = NULL;
    search_sampler *st = NULL, *sv = NULL;
    search_data d = {0};
    float *xt = NULL, *xv = NULL;
    int32_t *yt = NULL, *yv = NULL;
    int *bt = NULL, *bv = NULL;
    char *fp = NULL;
    FILE *hist = NULL;
    if (!ds) {
        search_dataset_options dso = {.width = o->size,
                                      .height = o->size,
                                      .channels = 1,
                                      .num_classes = k,
                                      .class_names = (const char *const *)classes,
                                      .seed = o->seed,
                                      .max_bad_fraction = -1,
                                      .auto_roi = o->auto_roi,
                                      .threads = threads,
                                      .only_split = SEARCH_SPLIT_TRAIN,
                                      .quiet = o->quiet};
        if ((rc = search_dataset_load(o->data, &dso, &ds, err)))
            return rc;
    } else if (ds->width != o->size || ds->height != o->size) {
        return ev_fail(err, EV_ERR_INVALID, "search: dataset frames %dx%d, supernet input %d",
                       ds->width, ds->height, o->size);
    }
    if ((rc = split_halves(ds, o->seed, &d, err)))
        goto out;
    const int B = o->batch;
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;
    if ((rc = search_sampler_create(d.train, d.ntrain, ds->labels, ds->num_classes, B, &st, err)) ||
        (rc = search_sampler_create(d.val, d.nval, ds->labels, ds->num_classes, B, &sv, err)))
        goto out;
    search_supernet_config cfg;
    supernet_config(o, ds->num_classes, ds->channels, &cfg);
    if ((rc = search_supernet_create(&cfg, B, threads, o->seed, &s, err)))
        goto out;
    xt = ev_aligned_alloc((size_t)B * fsz * sizeof(float));
    xv = ev_aligned_alloc((size_t)B * fsz * sizeof(float));
    yt = malloc((size_t)B * sizeof *yt);
    yv = malloc((size_t)B * sizeof *yv);
    bt = malloc((size_t)B * sizeof *bt);
    bv = malloc((size_t)B * sizeof *bv);
    fp = fingerprint(o);
    if (!xt || !xv || !yt || !yv || !bt || !bv || !fp) {
        rc = ev_fail(err, EV_ERR_NOMEM, "search: out of memory");
        goto out;
    }
    int first_epoch = 0;
    if (o->resume) {
        if ((rc = load_checkpoint(o->out_dir, s, fp, &first_epoch, err)))
            goto out;
        if (!o->quiet)
            fprintf(stderr, "resuming the search in %s after epoch %d\n", o->out_dir, first_epoch);
    }
    char hist_path[PATH_MAX];
    snprintf(hist_path, sizeof hist_path, "%s/alpha_history.jsonl", o->out_dir);
    if (o->resume && (rc = trim_history(hist_path, first_epoch, err)))
        goto out;
    if (!(hist = fopen(hist_path, o->resume ? "a" : "w"))) {
        rc = ev_fail(err, EV_ERR_IO, "%s: %s", hist_path, strerror(errno));
        goto out;
    }
    const int steps = o->max_steps > 0 ? o->max_steps : (d.ntrain + B - 1) / B;
    const int nval_eval =
        o->max_val_frames > 0 && o->max_val_frames < d.nval ? o->max_val_frames : d.nval;
    int *val_eval = malloc((size_t)nval_eval * sizeof *val_eval);
    if (!val_eval) {
        rc = ev_fail(err, EV_ERR_NOMEM, "search: out of memory");
        goto out;
    }
    for (int i = 0; i < nval_eval; i++) /* evenly spaced, deterministic */
        val_eval[i] = d.val[(int)((int64_t)i * d.nval / nval_eval)];
    search_augment aug;
    search_augment_defaults(&aug);
    aug.enabled = o->augment;
    const bool tty = !o->quiet && isatty(2);
    if (!o->quiet)
        fprintf(stderr,
                "searching: %lld supernet weights, %d search-train / %d search-val frames "
                "(training split halves by patient), %d classes, %d steps of %d per epoch, "
                "order %d, %d threads, %s kernels\n",
                (long long)ev_net_count_params(search_supernet_net(s)), d.ntrain, d.nval,
                ds->num_classes, steps, B, o->arch.order, threads, search_kernels_name());
    double search_time = 0.0, epoch_time = 0.0; /* steps only; whole epochs */
    int64_t images = 0;
    int this_run = 0;
    ev_genotype g;
    for (int epoch = first_epoch; epoch < o->epochs; epoch++) {
        const double t0 = search_now_s();
        const float lr = cosine_lr(o, epoch);
        search_sampler_reset(st, search_seed_mix(o->seed, 0x7a1700000ull + (uint64_t)epoch));
        search_sampler_reset(sv, search_seed_mix(o->seed, 0x7a1900000ull + (uint64_t)epoch));
        double loss_sum = 0.0, acc_sum = 0.0, vloss_sum = 0.0;
        for (int step = 0; step < steps; step++) {
            const uint64_t bs =
                search_seed_mix(search_seed_mix(o->seed, (uint64_t)epoch), (uint64_t)step);
            search_sampler_next(st, bt);
            search_sampler_next(sv, bv);
            fill_batch(ds, bt, B, &aug, bs ^ 0x11, xt, yt);
            fill_batch(ds, bv, B, &aug, bs ^ 0x22, xv, yv);
            float vloss = 0.0f, loss = 0.0f, acc = 0.0f;
            if ((epoch >= o->arch_warmup &&
                 (rc = search_supernet_arch_step(s, &o->arch, lr, xt, yt, xv, yv, &vloss, err))) ||
                (rc = search_supernet_weight_step(s, lr, o->momentum, o->weight_decay, o->grad_clip,
                                                  xt, yt, &loss, &acc, err)))
                goto out_eval;
            if (!isfinite(loss) || !isfinite(vloss)) {
                rc = ev_fail(err, EV_ERR_INVALID,
                             "search: the loss became %g at epoch %d step %d; lower --lr", loss,
                             epoch + 1, step + 1);
                goto out_eval;
            }
            loss_sum += loss;
            acc_sum += acc;
            vloss_sum += vloss;
            if (tty) {
                double el = search_now_s() - t0;
                search_progress("search ", epoch + 1, o->epochs, step + 1, steps,
                                loss_sum / (step + 1), acc_sum / (step + 1),
                                (step + 1) * (double)B / el, 1, "img/s",
                                el / (step + 1) * ((double)steps * (o->epochs - epoch) - step - 1));
            }
        }
        const double t_search = search_now_s() - t0;
        search_time += t_search;
        images += (int64_t)steps * B;
        double val_loss = 0.0, val_acc = 0.0;
        if ((rc = evaluate(s, ds, val_eval, nval_eval, B, xv, yv, &val_loss, &val_acc, err)))
            goto out_eval;
        const float *arch = search_supernet_arch(s);
        search_derive_genotype(arch, o->edge_norm, o->max_skips, &g);
        if ((rc = save_checkpoint(o->out_dir, s, epoch + 1, fp, err)))
            goto out_eval;
        float w[2][SEARCH_EDGES][SEARCH_OPS], bw[2][SEARCH_EDGES];
        for (int t = 0; t < 2; t++)
            search_arch_weights(arch, t, o->edge_norm, w[t], bw[t]);
        char *line = ev_genotype_to_string(&g);
        const double secs = search_now_s() - t0;
        json_t *j = json_pack(
            "{s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:o, s:o, s:o, s:o}", "epoch",
            epoch + 1, "lr", (double)lr, "train_loss", loss_sum / steps, "train_accuracy",
            acc_sum / steps, "search_val_loss", vloss_sum / steps, "val_loss", val_loss,
            "val_accuracy", val_acc, "seconds", secs, "images_per_second",
            steps * (double)B / t_search, "genotype", line ? line : "", "alpha_normal",
            float_rows(arch, SEARCH_EDGES, SEARCH_OPS), "alpha_reduce",
            float_rows(arch + SEARCH_EDGES * SEARCH_OPS, SEARCH_EDGES, SEARCH_OPS),
            "weights_normal", float_rows(&w[0][0][0], SEARCH_EDGES, SEARCH_OPS), "weights_reduce",
            float_rows(&w[1][0][0], SEARCH_EDGES, SEARCH_OPS));
        if (j && o->edge_norm) {
            json_object_set_new(j, "beta_normal", float_rows(bw[0], 1, SEARCH_EDGES));
            json_object_set_new(j, "beta_reduce", float_rows(bw[1], 1, SEARCH_EDGES));
        }
        char *text =
            j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
        if (text) {
            fprintf(hist, "%s\n", text);
            fflush(hist);
        }
        free(text);
        json_decref(j);
        if ((rc = write_genotype(o->out_dir, &g, "searched", true, o->quiet, err)))
            goto out_line;
        ev_error perr = {0};
        if (plot_history(o->out_dir, &perr) && !o->quiet)
            fprintf(stderr, "warning: alpha plots: %s\n", perr.message);
        if (tty)
            fprintf(stderr, "\r\033[K");
        if (!o->quiet)
            fprintf(stderr,
                    "epoch %d/%d: lr %.5f, train loss %.4f acc %.1f%%, search-val loss %.4f acc "
                    "%.1f%%, %.1f img/s, %.1f s\n  %s\n",
                    epoch + 1, o->epochs, (double)lr, loss_sum / steps, 100.0 * acc_sum / steps,
                    val_loss, 100.0 * val_acc, steps * (double)B / t_search, secs,
                    line ? line : "");
    out_line:
        free(line);
        if (rc)
            goto out_eval;
        res->epochs_run = epoch + 1;
        res->genotype = g;
        this_run++;
        epoch_time += search_now_s() - t0; /* validation, checkpoint and plots too */
        if (o->stop_after > 0 && this_run >= o->stop_after)
            break;
    }
    if (!this_run) { /* resumed a finished search: outputs from the checkpoint */
        search_derive_genotype(search_supernet_arch(s), o->edge_norm, o->max_skips, &g);
        res->genotype = g;
        res->epochs_run = first_epoch;
        rc = write_genotype(o->out_dir, &g, "searched", true, o->quiet, err);
    }
    res->images_per_second = search_time > 0 ? images / search_time : 0.0;
    res->seconds_per_epoch = this_run ? epoch_time / this_run : 0.0;
out_eval:
    free(val_eval);
out:
    if (hist)
        fclose(hist);
    free(fp);
    free(bt);
    free(bv);
    free(yt);
    free(yv);
    ev_aligned_free(xt);
    ev_aligned_free(xv);
    search_supernet_free(s);
    search_sampler_free(st);
    search_sampler_free(sv);
    free(d.train);
    free(d.val);
    if (ds != o->dataset)
        search_dataset_free(ds);
    return rc;
}

/* ---- benchmark -------------------------------------------------------------------------------- */

int search_darts_benchmark(const search_darts_options *o, int warmup, int steps,
                           double *seconds_per_step, double *images_per_second, ev_error *err)
{
    int rc = check_options(o, err);
    if (rc)
        return rc;
    const int k = o->num_classes > 0 ? o->num_classes : 14, B = o->batch;
    search_supernet_config cfg;
    supernet_config(o, k, 1, &cfg);
    search_supernet *s = NULL;
    if ((rc = search_supernet_create(&cfg, B, threads_or_all(o->threads), o->seed, &s, err)))
        return rc;
    const size_t n = (size_t)B * o->size * o->size;
    float *xt = ev_aligned_alloc(n * sizeof(float)), *xv = ev_aligned_alloc(n * sizeof(float));
    int32_t *yt = malloc((size_t)B * sizeof *yt), *yv = malloc((size_t)B * sizeof *yv);
    if (!xt || !xv || !yt || !yv) {
        rc = ev_fail(err, EV_ERR_NOMEM, "search benchmark: out of memory");
        goto out;
    }
    uint64_t rng = o->seed;
    for (size_t i = 0; i < n; i++) {
        xt[i] = ev_rng_uniform(&rng);
        xv[i] = ev_rng_uniform(&rng);
    }
    for (int i = 0; i < B; i++) {
        yt[i] = i % k;
        yv[i] = (i + 1) % k;
    }
    double t0 = 0.0;
    for (int i = 0; i < warmup + steps && !rc; i++) {
        if (i == warmup)
            t0 = search_now_s();
        float l;
        rc = search_supernet_arch_step(s, &o->arch, o->lr, xt, yt, xv, yv, &l, err);
        if (!rc)
            rc = search_supernet_weight_step(s, o->lr, o->momentum, o->weight_decay, o->grad_clip,
                                             xt, yt, &l, NULL, err);
    }
    if (!rc) {
        double t = (search_now_s() - t0) / (steps > 0 ? steps : 1);
        *seconds_per_step = t;
        *images_per_second = B / t;
    }
out:
    ev_aligned_free(xt);
    ev_aligned_free(xv);
    free(yt);
    free(yv);
    search_supernet_free(s);
    return rc;
}

/* ---- latency table -------------------------------------------------------------------------- */

/* Each primitive p: a network of o's layout and channels whose every edge is p (nodes take
 * inputs 0 and 1), timed with the cpu backend at batch 1. The per-edge cost of p is its network
 * latency minus the cheapest one, over the edge count; `none` costs 0. Only differences between
 * primitives move the softmax gradient, so the common part (stem, preprocessing, head) cancels. */
int search_latency_measure(const search_darts_options *o, int threads, int iterations,
                           float latency[SEARCH_OPS], const char *path, ev_error *err)
{
    double ms[SEARCH_OPS] = {0};
    const int k = o->num_classes > 0 ? o->num_classes : 14;
    float *x = malloc((size_t)o->size * o->size * sizeof(float)), logits[EV_MAX_CLASSES];
    if (!x)
        return ev_fail(err, EV_ERR_NOMEM, "latency: out of memory");
    for (int i = 0; i < o->size * o->size; i++)
        x[i] = (float)(i % 255) / 255.0f;
    int rc = EV_OK;
    iterations = iterations > 0 ? iterations : 50;
    for (int p = 1; p < SEARCH_OPS && !rc; p++) {
        ev_net_config cfg = {0};
        for (int t = 0; t < 2; t++) {
            ev_cell_genotype *c = t ? &cfg.genotype.reduce : &cfg.genotype.normal;
            c->num_nodes = SEARCH_STEPS;
            for (int m = 0; m < 2 * SEARCH_STEPS; m++)
                c->edges[m] = (ev_genotype_edge){(ev_primitive)p, m % 2};
            c->num_concat = SEARCH_STEPS;
            for (int i = 0; i < SEARCH_STEPS; i++)
                c->concat[i] = i + 2;
        }
        cfg.init_channels = o->init_channels;
        cfg.num_cells = o->num_cells;
        memcpy(cfg.reduction, o->reduction, sizeof cfg.reduction);
        cfg.in_channels = 1;
        cfg.num_classes = k;
        cfg.input_height = cfg.input_width = o->size;
        char name[64];
        snprintf(name, sizeof name, "latency-%s", ev_primitive_name(p));
        const ev_model_info info = {.name = name};
        ev_model *m = NULL;
        ev_net *net = NULL;
        ev_plan *plan = NULL;
        ev_plan_options po = {.backend = EV_BACKEND_CPU, .batch = 1, .threads = threads};
        if (!(rc = ev_net_create(&cfg, 1, false, &net, err))) {
            ev_net_init_weights(net, 1);
            if (!(rc = ev_model_from_net(net, &info, &m, err)))
                rc = ev_plan_create(m, &po, &plan, err);
        }
        for (int i = 0; i < 5 && !rc; i++) /* warm-up */
            rc = ev_plan_run(plan, x, logits, err);
        double best = INFINITY;
        for (int rep = 0; rep < 3 && !rc; rep++) { /* the best of three means */
            double t0 = search_now_s();
            for (int i = 0; i < iterations && !rc; i++)
                rc = ev_plan_run(plan, x, logits, err);
            best = fmin(best, (search_now_s() - t0) * 1e3 / iterations);
        }
        ms[p] = best;
        ev_plan_free(plan);
        ev_model_free(m);
    }
    free(x);
    if (rc)
        return rc;
    double lo = INFINITY;
    for (int p = 1; p < SEARCH_OPS; p++)
        lo = fmin(lo, ms[p]);
    const int edges = 2 * SEARCH_STEPS * o->num_cells;
    latency[0] = 0.0f;
    for (int p = 1; p < SEARCH_OPS; p++)
        latency[p] = (float)((ms[p] - lo) / edges);
    if (!path)
        return EV_OK;
    json_t *j = json_object(), *lat = json_object(), *net = json_object();
    for (int p = 0; p < SEARCH_OPS; p++) {
        json_object_set_new(lat, ev_primitive_name(p), json_real(latency[p]));
        if (p)
            json_object_set_new(net, ev_primitive_name(p), json_real(ms[p]));
    }
    json_object_set_new(j, "backend", json_string("cpu"));
    json_object_set_new(j, "threads", json_integer(threads));
    json_object_set_new(j, "size", json_integer(o->size));
    json_object_set_new(j, "init_channels", json_integer(o->init_channels));
    json_object_set_new(j, "cells", json_integer(o->num_cells));
    json_object_set_new(j, "unit", json_string("ms per edge, relative to the cheapest op"));
    json_object_set_new(j, "latency_ms", lat);
    json_object_set_new(j, "network_ms", net);
    if (json_dump_file(j, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)))
        rc = ev_fail(err, EV_ERR_IO, "%s: cannot write", path);
    json_decref(j);
    return rc;
}

int search_latency_load(const char *path, float latency[SEARCH_OPS], ev_error *err)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return ev_fail(err, EV_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    json_t *lat = json_object_get(j, "latency_ms");
    int rc = EV_OK;
    for (int p = 0; p < SEARCH_OPS && !rc; p++) {
        json_t *v = json_object_get(lat, ev_primitive_name(p));
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || d < 0.0 || d > 1e6)
            rc = ev_fail(err, EV_ERR_FORMAT, "%s: latency_ms.%s missing or not a latency", path,
                         ev_primitive_name(p));
        else
            latency[p] = (float)d;
    }
    json_decref(j);
    return rc;
}
