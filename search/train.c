/* train.c: retraining a DARTS network from scratch (the paper's recipe): balanced online batch
 * selection, Adam (lr 1e-4) or SGD with momentum and a cosine schedule, weight decay, gradient
 * clipping, optional auxiliary head and drop-path, early stopping on a validation-loss plateau,
 * a checkpoint every epoch and an exact resume.
 *
 * Exact resume: everything random in an epoch (sampler order, augmentation, drop-path masks) is
 * drawn from generators seeded by (seed, epoch[, step, frame]); the checkpoint holds the
 * parameters (BN running statistics included), the optimiser state and the epoch counters, so an
 * interrupted run that resumes produces the same bytes as one that never stopped (with the same
 * thread-count-independent executor).
 */
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "ev_search.h"
#include "ops_ref.h"
#include "search_util.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void search_train_defaults(search_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->num_cells = 4;
    o->reduction[1] = o->reduction[3] = true;
    o->init_channels = 16;
    o->size = 96;
    o->epochs = 800;
    o->batch = 64;
    o->optimizer = SEARCH_OPT_ADAM;
    o->lr = 1e-4f;
    o->momentum = 0.9f;
    o->patience = 20;
    o->seed = 1;
    o->augment = true;
    o->max_bad_fraction = -1;
    o->train_fraction = 1.0;
}

/* ---- optimiser --------------------------------------------------------------------------------- */

typedef struct optimiser {
    search_optimizer kind;
    const bool *frozen; /* per parameter (--freeze), NULL: none */
    const float *lr_scale; /* per parameter (--lr-backbone / --lr), NULL: 1 for all */
    float *m, *v; /* per trainable parameter element (adam: first/second moment; sgd: m only) */
    size_t total;
    int64_t step; /* adam's t */
} optimiser;

static bool updatable(const ev_param *p, bool aux)
{
    return ev_param_trainable(p) && p->grad && (!p->auxiliary || aux);
}

static size_t trainable_total(const ev_net *net)
{
    size_t t = 0;
    for (int i = 0; i < net->num_params; i++)
        if (ev_param_trainable(&net->params[i]))
            t += net->params[i].numel;
    return t;
}

static void clip_gradients(ev_net *net, const bool *frozen, float max_norm, bool aux)
{
    double sq = 0.0;
    for (int i = 0; i < net->num_params; i++) {
        const ev_param *p = &net->params[i];
        if (!updatable(p, aux) || (frozen && frozen[i]))
            continue;
        for (size_t j = 0; j < p->numel; j++)
            sq += (double)p->grad[j] * p->grad[j];
    }
    double norm = sqrt(sq);
    if (norm > max_norm) { /* PyTorch clip_grad_norm_: scale by max / (norm + 1e-6) */
        float f = (float)(max_norm / (norm + 1e-6));
        for (int i = 0; i < net->num_params; i++) {
            ev_param *p = &net->params[i];
            if (updatable(p, aux) && !(frozen && frozen[i]))
                for (size_t j = 0; j < p->numel; j++)
                    p->grad[j] *= f;
        }
    }
}

/* PyTorch semantics: weight decay adds wd * p to the gradient (L2, not AdamW); Adam betas
 * (0.9, 0.999), eps 1e-8; SGD: buf = momentum * buf + g, p -= lr * buf. */
static void optimiser_step(optimiser *opt, ev_net *net, float lr, float wd, float momentum,
                           bool aux)
{
    opt->step++;
    const double b1 = 0.9, b2 = 0.999;
    const double bc1 = 1.0 - pow(b1, (double)opt->step), bc2 = 1.0 - pow(b2, (double)opt->step);
    size_t off = 0;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        if (!ev_param_trainable(p))
            continue;
        if (updatable(p, aux) && !(opt->frozen && opt->frozen[i])) {
            float *m = opt->m + off, *v = opt->v + off;
            const float lr_p = opt->lr_scale ? lr * opt->lr_scale[i] : lr;
            for (size_t j = 0; j < p->numel; j++) {
                float g = p->grad[j] + wd * p->data[j];
                if (opt->kind == SEARCH_OPT_ADAM) {
                    m[j] = (float)(b1 * m[j] + (1.0 - b1) * g);
                    v[j] = (float)(b2 * v[j] + (1.0 - b2) * (double)g * g);
                    double denom = sqrt(v[j] / bc2) + 1e-8;
                    p->data[j] -= (float)(lr_p * (m[j] / bc1) / denom);
                } else {
                    m[j] = opt->step == 1 ? g : momentum * m[j] + g;
                    p->data[j] -= lr_p * m[j];
                }
            }
        }
        off += p->numel;
    }
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

typedef struct train_state {
    int epoch; /* epochs completed */
    double best_val_loss, best_val_acc;
    int best_epoch, bad_epochs;
    /* an interrupted epoch (SIGINT): steps of epoch `epoch` done, their sums, and the
     * drop-path generator's state after them; step 0: the epoch starts afresh */
    int step;
    double loss_sum;
    int64_t correct, seen;
    uint64_t rng_state;
} train_state;

/* The network part of a run's configuration: the DARTS genotype, layout and initial channels,
 * or a baseline architecture (ResNet18, DenseNet201) that has none of them. */
static void train_net_config(const search_train_options *o, ev_net_config *cfg)
{
    cfg->arch = o->arch;
    if (o->arch != EV_ARCH_DARTS)
        return;
    cfg->genotype = o->genotype;
    cfg->init_channels = o->init_channels;
    cfg->num_cells = o->num_cells;
    memcpy(cfg->reduction, o->reduction, sizeof cfg->reduction);
}

static char *config_fingerprint(const search_train_options *o, const ev_net *net)
{
    char *g = ev_genotype_to_string(&net->cfg.genotype);
    char *out = malloc(8192);
    if (out) {
        int n = snprintf(out, 8192, "%s|C%d|S%d|B%d|K%d|opt%d|aux%g|", g ? g : "",
                         net->cfg.init_channels, o->size, o->batch, net->cfg.num_classes,
                         (int)o->optimizer, (double)o->auxiliary_weight);
        if (o->normalize != EV_NORMALIZE_NONE || o->augment_recipe) /* old fingerprints stay */
            n += snprintf(out + n, 8192 - n, "norm%d|aug%s|", (int)o->normalize,
                          o->augment_recipe ? o->augment_recipe : "basic");
        if (net->cfg.arch != EV_ARCH_DARTS)
            n += snprintf(out + n, 8192 - n, "arch%s|", ev_arch_name(net->cfg.arch));
        for (int i = 0; i < net->cfg.num_cells && n < 8000; i++)
            n += snprintf(out + n, 8192 - n, "%c", net->cfg.reduction[i] ? 'R' : 'N');
    }
    free(g);
    return out;
}

/* The options that decide what the remaining epochs do, by their command-line names: a resume
 * with another value would silently continue a different run (the checkpoint's run is exact
 * only with its own). --epochs belongs to the cosine schedule only; without it, it is a limit. */
static char *schedule_fingerprint(const search_train_options *o, uint64_t init_hash)
{
    char *out = malloc(1024);
    if (!out)
        return NULL;
    int n = snprintf(out, 1024,
                     "--lr=%.7g;--seed=%llu;--weight-decay=%.7g;--momentum=%.7g;--grad-clip=%.7g;"
                     "--drop-path=%.7g;--cosine=%s;--steps-per-epoch=%d;--train-fraction=%.7g;"
                     "--no-augment=%s;",
                     (double)o->lr, (unsigned long long)o->seed, (double)o->weight_decay,
                     (double)o->momentum, (double)o->grad_clip, (double)o->drop_path,
                     o->cosine ? "on" : "off", o->max_steps, o->train_fraction,
                     o->augment ? "off" : "on");
    if (o->cosine)
        n += snprintf(out + n, 1024 - (size_t)n, "--epochs=%d;", o->epochs);
    /* fine-tuning: another starting bundle or other frozen layers is another run */
    if (o->init_from)
        n += snprintf(out + n, 1024 - (size_t)n, "--init-from=fnv1a64:%016llx;",
                      (unsigned long long)init_hash);
    if (o->freeze && n < 850)
        n += snprintf(out + n, 1024 - (size_t)n, "--freeze=%.100s;", o->freeze);
    if (o->freeze_epochs > 0 && n < 950)
        n += snprintf(out + n, 1024 - (size_t)n, "--freeze-epochs=%d;", o->freeze_epochs);
    if (o->lr_backbone > 0 && n < 950)
        snprintf(out + n, 1024 - (size_t)n, "--lr-backbone=%.7g;", (double)o->lr_backbone);
    return out;
}

/* The first option whose value differs between two schedule fingerprints, as an error. */
static int compare_schedules(const char *path, const char *saved, const char *now, ev_error *err)
{
    for (const char *p = now; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ';');
        if (!eq || !end || eq > end)
            break;
        char name[64], value[128];
        snprintf(name, sizeof name, "%.*s", (int)(eq - p), p);
        snprintf(value, sizeof value, "%.*s", (int)(end - eq - 1), eq + 1);
        char key[80];
        snprintf(key, sizeof key, "%s=", name);
        const char *at = strstr(saved, key);
        if (at && (at == saved || at[-1] == ';')) {
            const char *v = at + strlen(key), *ve = strchr(v, ';');
            int len = ve ? (int)(ve - v) : (int)strlen(v);
            if ((int)strlen(value) != len || strncmp(value, v, (size_t)len))
                return ev_fail(err, EV_ERR_INVALID,
                               "%s: %s is %s, but the checkpoint's run used %.*s; resume with "
                               "its %s (a resumed run continues the checkpoint's run exactly), "
                               "or train into another folder",
                               path, name, value, len, v, name);
        }
        p = end + 1;
    }
    /* a fine-tuning run resumed without its --init-from or --freeze would record another run */
    static const char *const fine_tuning[] = {"--init-from=", "--freeze=", "--freeze-epochs=",
                                              "--lr-backbone="};
    for (int i = 0; i < 4; i++) {
        const char *at = strstr(saved, fine_tuning[i]);
        if (at && (at == saved || at[-1] == ';') && !strstr(now, fine_tuning[i])) {
            const char *v = at + strlen(fine_tuning[i]), *ve = strchr(v, ';');
            return ev_fail(err, EV_ERR_INVALID,
                           "%s: the checkpoint's run used %.*s %.*s; resume with it, or train "
                           "into another folder",
                           path, (int)strlen(fine_tuning[i]) - 1, fine_tuning[i],
                           ve ? (int)(ve - v) : (int)strlen(v), v);
        }
    }
    return EV_OK;
}

static int save_checkpoint(const char *dir, const ev_net *net, const optimiser *opt,
                           const train_state *st, const char *fingerprint, const char *schedule,
                           ev_error *err)
{
    int n = net->num_params, count = 0;
    ev_st_entry *entries = calloc((size_t)3 * n, sizeof *entries);
    char(*names)[EV_PARAM_NAME_MAX + 16] = calloc((size_t)3 * n, sizeof *names);
    int64_t(*shapes)[4] = calloc((size_t)3 * n, sizeof *shapes);
    if (!entries || !names || !shapes) {
        free(entries);
        free(names);
        free(shapes);
        return ev_fail(err, EV_ERR_NOMEM, "checkpoint: out of memory");
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const ev_param *p = &net->params[i];
        for (int kind = 0; kind < 3; kind++) {
            if (kind > 0 && !ev_param_trainable(p))
                break;
            snprintf(names[count], sizeof names[count], "%s.%s",
                     kind == 0   ? "param"
                     : kind == 1 ? "opt_m"
                                 : "opt_v",
                     p->name);
            for (int d = 0; d < p->ndim; d++)
                shapes[count][d] = p->shape[d];
            entries[count] = (ev_st_entry){names[count], p->ndim, shapes[count],
                                           kind == 0   ? p->data
                                           : kind == 1 ? opt->m + off
                                                       : opt->v + off};
            count++;
        }
        if (ev_param_trainable(p))
            off += p->numel;
    }
    char epoch[32], step[32], best[64], acc[64], best_epoch[32], bad[32];
    char estep[32], esum[64], ecorrect[32], eseen[32], erng[32];
    snprintf(estep, sizeof estep, "%d", st->step);
    snprintf(esum, sizeof esum, "%a", st->loss_sum);
    snprintf(ecorrect, sizeof ecorrect, "%lld", (long long)st->correct);
    snprintf(eseen, sizeof eseen, "%lld", (long long)st->seen);
    snprintf(erng, sizeof erng, "%llu", (unsigned long long)st->rng_state);
    snprintf(epoch, sizeof epoch, "%d", st->epoch);
    snprintf(step, sizeof step, "%lld", (long long)opt->step);
    snprintf(best, sizeof best, "%a", st->best_val_loss);
    snprintf(acc, sizeof acc, "%a", st->best_val_acc);
    snprintf(best_epoch, sizeof best_epoch, "%d", st->best_epoch);
    snprintf(bad, sizeof bad, "%d", st->bad_epochs);
    const char *meta[] = {"epoch",         epoch,       "optimizer_step",    step,
                          "best_val_loss", best,        "best_val_accuracy", acc,
                          "best_epoch",    best_epoch,  "bad_epochs",        bad,
                          "config",        fingerprint, "schedule",          schedule,
                          "epoch_step",    estep,       "epoch_loss_sum",    esum,
                          "epoch_correct", ecorrect,    "epoch_seen",        eseen,
                          "epoch_rng",     erng};
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = ev_safetensors_write(tmp, entries, count, meta, 13, err);
    if (!rc && rename(tmp, path) != 0)
        rc = ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    free(entries);
    free(names);
    free(shapes);
    return rc;
}

static const char *meta_str(json_t *meta, const char *key)
{
    const char *s = json_string_value(json_object_get(meta, key));
    return s ? s : "";
}

static int load_checkpoint(const char *dir, ev_net *net, optimiser *opt, train_state *st,
                           const char *fingerprint, const char *schedule, ev_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    json_t *meta = ev_safetensors_read_metadata(path);
    if (!meta)
        return ev_fail(err, EV_ERR_IO, "%s: no readable checkpoint to resume from", path);
    int rc = EV_OK;
    if (strcmp(meta_str(meta, "config"), fingerprint)) {
        rc = ev_fail(err, EV_ERR_INVALID,
                     "%s: the checkpoint was made with another network or options (%s); resume "
                     "with the same --genotype/--layout/--init-channels/--size/--batch/"
                     "--optimizer/--auxiliary",
                     path, meta_str(meta, "config"));
        json_decref(meta);
        return rc;
    }
    /* checkpoints from before the schedule was recorded have none to compare */
    if (*meta_str(meta, "schedule") &&
        (rc = compare_schedules(path, meta_str(meta, "schedule"), schedule, err))) {
        json_decref(meta);
        return rc;
    }
    st->epoch = atoi(meta_str(meta, "epoch"));
    opt->step = atoll(meta_str(meta, "optimizer_step"));
    st->best_val_loss = strtod(meta_str(meta, "best_val_loss"), NULL);
    st->best_val_acc = strtod(meta_str(meta, "best_val_accuracy"), NULL);
    st->best_epoch = atoi(meta_str(meta, "best_epoch"));
    st->bad_epochs = atoi(meta_str(meta, "bad_epochs"));
    /* absent in checkpoints from before interrupted epochs were saved: 0, a whole epoch */
    st->step = atoi(meta_str(meta, "epoch_step"));
    st->loss_sum = strtod(meta_str(meta, "epoch_loss_sum"), NULL);
    st->correct = atoll(meta_str(meta, "epoch_correct"));
    st->seen = atoll(meta_str(meta, "epoch_seen"));
    st->rng_state = strtoull(meta_str(meta, "epoch_rng"), NULL, 10);
    json_decref(meta);
    ev_safetensors sf = {0};
    if ((rc = ev_safetensors_read(path, &sf, err)))
        return rc;
    size_t off = 0;
    for (int i = 0; i < net->num_params && !rc; i++) {
        ev_param *p = &net->params[i];
        for (int kind = 0; kind < 3 && !rc; kind++) {
            if (kind > 0 && !ev_param_trainable(p))
                break;
            char name[EV_PARAM_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s.%s",
                     kind == 0   ? "param"
                     : kind == 1 ? "opt_m"
                                 : "opt_v",
                     p->name);
            const ev_st_tensor *t = ev_safetensors_find(&sf, name);
            if (!t || t->dtype != EV_DTYPE_F32 || t->end - t->begin != p->numel * 4) {
                rc = ev_fail(err, EV_ERR_FORMAT, "%s: tensor %s missing or mis-sized", path, name);
                break;
            }
            float *dst = kind == 0 ? p->data : kind == 1 ? opt->m + off : opt->v + off;
            memcpy(dst, sf.data + t->begin, p->numel * 4);
        }
        if (ev_param_trainable(p))
            off += p->numel;
    }
    ev_safetensors_free(&sf);
    return rc;
}

/* ---- evaluation over a frame list (eval mode) ---------------------------------------------------- */

/* temperature divides the logits (a calibrated model's); loss and confidence use the result */
static int run_eval(search_exec *ex, ev_net *net, const search_dataset *ds, const int *idx,
                    int count, ev_normalize normalize, float temperature, float scale,
                    const float *mean, const float *std, float *input, int threads,
                    double *loss_out, double *acc_out, int32_t *pred, float *conf, float *probs,
                    float *logits_out, ev_error *err)
{
    const int B = net->batch, k = net->cfg.num_classes;
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;
    double loss = 0.0;
    int64_t correct = 0;
    for (int b0 = 0; b0 < count; b0 += B) {
        int nb = count - b0 < B ? count - b0 : B;
        for (int i = 0; i < B; i++) {
            int f = idx[b0 + (i < nb ? i : nb - 1)];
            search_frame_to_input(ds->pixels + (size_t)f * fsz, ds->width, ds->height, ds->channels,
                                  NULL, NULL, normalize, scale, mean, std, input + (size_t)i * fsz);
        }
        int rc = search_exec_forward(ex, input, false, err);
        if (rc)
            return rc;
        const float *logits = search_exec_logits(ex);
        for (int i = 0; i < nb; i++) {
            int32_t label = ds->labels[idx[b0 + i]];
            float scaled[EV_MAX_CLASSES];
            const float *row = logits + (size_t)i * k;
            if (temperature != 1.0f) {
                for (int j = 0; j < k; j++)
                    scaled[j] = row[j] / temperature;
                row = scaled;
            }
            if (label >= 0 && label < k)
                loss += ev_ref_cross_entropy_forward(row, 1, k, &label);
            int best = 0;
            for (int j = 1; j < k; j++)
                if (row[j] > row[best])
                    best = j;
            correct += best == label;
            if (pred)
                pred[idx[b0 + i]] = best;
            if (logits_out)
                memcpy(logits_out + (size_t)idx[b0 + i] * k, row, (size_t)k * sizeof *row);
            if (conf || probs) {
                float p[EV_MAX_CLASSES];
                ev_softmax(row, p, k);
                if (conf)
                    conf[idx[b0 + i]] = p[best];
                if (probs)
                    memcpy(probs + (size_t)idx[b0 + i] * k, p, (size_t)k * sizeof *p);
            }
        }
    }
    if (loss_out)
        *loss_out = count ? loss / count : 0.0;
    if (acc_out)
        *acc_out = count ? (double)correct / count : 0.0;
    return EV_OK;
}

/* One line for whoever sizes the machine: training memory is mostly the executor's, every
 * node's activation and a gradient per live node for the whole batch, so it grows with
 * batch x size^2 and not with the number of frames. */
static void print_memory(const search_exec *ex, const ev_net *net, const search_dataset *ds,
                         const optimiser *opt, int batch, size_t fsz)
{
    search_exec_memory m;
    search_exec_memory_use(ex, &m);
    const double mib = 1.0 / (1024.0 * 1024.0);
    const double frames = ((double)ds->count * fsz + (double)batch * fsz * sizeof(float)) * mib;
    const double params =
        ((double)ev_net_count_params(net) + 3.0 * opt->total) * sizeof(float) * mib;
    const double total = (m.activations + m.gradients + m.other) * mib + frames + params;
    struct rusage ru;
    double peak = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;
    fprintf(stderr,
            "memory: about %.0f MiB: activations %.0f + gradients %.0f MiB (batch %d at %dx%d), "
            "frames %.0f, parameters and optimiser %.0f, other %.0f MiB; peak so far %.0f MiB\n",
            total, m.activations * mib, m.gradients * mib, batch, ds->width, ds->height, frames,
            params, m.other * mib, peak);
}

static int default_threads(int t)
{
    if (t > 0)
        return t;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int search_evaluate(const ev_model *model, const search_dataset *ds, int split, int threads,
                    search_eval_result *out, ev_error *err)
{
    memset(out, 0, sizeof *out);
    const int k = ev_model_num_classes(model);
    const ev_net *mnet = ev_model_network(model);
    ev_preprocess_params pre;
    ev_model_preprocess_params(model, &pre);
    if (ds->width != pre.width || ds->height != pre.height || ds->channels != pre.channels)
        return ev_fail(err, EV_ERR_INVALID,
                       "evaluate: dataset frames are %dx%dx%d, model input %dx%dx%d", ds->width,
                       ds->height, ds->channels, pre.width, pre.height, pre.channels);
    int *idx = malloc((size_t)(ds->count ? ds->count : 1) * sizeof *idx);
    int count = 0;
    if (!idx)
        return ev_fail(err, EV_ERR_NOMEM, "evaluate: out of memory");
    for (int i = 0; i < ds->count; i++)
        if (split < 0 || ds->split[i] == split)
            idx[count++] = i;
    if (!count) {
        free(idx);
        return ev_fail(err, EV_ERR_INVALID, "evaluate: no frames in split '%s'",
                       search_split_name(split));
    }
    threads = default_threads(threads);
    int B = count < 32 ? count : 32;
    ev_net *net = NULL;
    search_exec *ex = NULL;
    float *input = NULL;
    int rc = ev_net_create(&mnet->cfg, B, false, &net, err);
    if (!rc)
        rc = ev_net_copy_params(net, mnet, err);
    if (!rc)
        rc = search_exec_create(net, threads, &ex, err);
    out->k = k;
    out->confusion = calloc((size_t)k * k, sizeof *out->confusion);
    out->predicted = malloc((size_t)ds->count * sizeof *out->predicted);
    out->confidence = calloc((size_t)ds->count, sizeof *out->confidence);
    out->probabilities = calloc((size_t)ds->count * k, sizeof *out->probabilities);
    out->logits = calloc((size_t)ds->count * k, sizeof *out->logits);
    input = malloc((size_t)B * ds->width * ds->height * ds->channels * sizeof(float));
    if (!rc && (!out->confusion || !out->predicted || !out->confidence || !out->probabilities ||
                !out->logits || !input))
        rc = ev_fail(err, EV_ERR_NOMEM, "evaluate: out of memory");
    if (!rc) {
        for (int i = 0; i < ds->count; i++)
            out->predicted[i] = -1;
        rc = run_eval(ex, net, ds, idx, count, pre.normalize, ev_model_temperature(model),
                      pre.scale, pre.mean, pre.std, input, threads, NULL, NULL, out->predicted,
                      out->confidence, out->probabilities, out->logits, err);
    }
    if (!rc) {
        for (int j = 0; j < count; j++) {
            int i = idx[j];
            if (ds->labels[i] < k)
                out->confusion[(size_t)ds->labels[i] * k + out->predicted[i]]++;
        }
        search_metrics_compute(out->confusion, k, &out->metrics);
        search_calibration_stats(out, ds, split, ev_model_confidence_threshold(model));
        rc = search_clip_accuracy(ds, out, &out->clips, &out->clips_correct, err);
    }
    free(input);
    free(idx);
    search_exec_free(ex);
    ev_net_free(net);
    if (rc)
        search_eval_result_free(out);
    return rc;
}

void search_eval_result_free(search_eval_result *r)
{
    free(r->confusion);
    free(r->predicted);
    free(r->confidence);
    free(r->probabilities);
    free(r->logits);
    memset(r, 0, sizeof *r);
}

/* ---- fine-tuning --------------------------------------------------------------------------- */

int search_file_hash(const char *path, uint64_t *hash, ev_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    uint64_t h = 1469598103934665603ull;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return ev_fail(err, EV_ERR_IO, "%s: read error", path);
    *hash = h;
    return EV_OK;
}

static bool is_head_param(const char *name)
{
    return !strncmp(name, "classifier.", 11) || !strncmp(name, "auxiliary_head.", 15);
}

int search_freeze_parse(const char *spec, const ev_net *net, bool *frozen, ev_error *err)
{
    memset(frozen, 0, (size_t)net->num_params * sizeof *frozen);
    for (const char *p = spec;;) {
        const char *end = strchr(p, ',');
        char item[64];
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= sizeof item)
            return ev_fail(err, EV_ERR_INVALID, "--freeze: item '%.*s...' is too long", 20, p);
        memcpy(item, p, len);
        item[len] = 0;
        int first = -1, last = -1;
        char rest;
        const char *prefix = NULL;
        if (!strcmp(item, "stem"))
            prefix = "stem.";
        else if (!strcmp(item, "head"))
            prefix = "";
        else if (sscanf(item, "cells:%d-%d%c", &first, &last, &rest) == 2 ||
                 (sscanf(item, "cells:%d%c", &first, &rest) == 1 && (last = first) >= 0)) {
            if (first < 0 || last < first || last >= net->cfg.num_cells)
                return ev_fail(err, EV_ERR_INVALID, "--freeze: '%s': the network has cells 0..%d",
                               item, net->cfg.num_cells - 1);
        } else {
            return ev_fail(err, EV_ERR_INVALID,
                           "--freeze: '%s' is not stem, head, cells:K or cells:A-B", item);
        }
        for (int i = 0; i < net->num_params; i++) {
            const char *name = net->params[i].name;
            int cell;
            if (prefix && *prefix)
                frozen[i] |= !strncmp(name, prefix, strlen(prefix));
            else if (prefix)
                frozen[i] |= is_head_param(name);
            else if (sscanf(name, "cells.%d.", &cell) == 1 && cell >= first && cell <= last)
                frozen[i] = true;
        }
        if (!end)
            break;
        p = end + 1;
    }
    bool any_left = false;
    for (int i = 0; i < net->num_params; i++)
        any_left |= ev_param_trainable(&net->params[i]) && !net->params[i].auxiliary && !frozen[i];
    if (!any_left)
        return ev_fail(err, EV_ERR_INVALID, "--freeze %s: leaves nothing to train", spec);
    return EV_OK;
}

static bool same_classes(const ev_model *m, char *const *classes, int k)
{
    if (ev_model_num_classes(m) != k)
        return false;
    for (int i = 0; i < k; i++)
        if (strcmp(ev_model_class_name(m, i), classes[i]))
            return false;
    return true;
}

static void format_shape(const ev_param *p, char *buf, size_t size)
{
    int n = snprintf(buf, size, "[");
    for (int d = 0; d < p->ndim && n < (int)size; d++)
        n += snprintf(buf + n, size - (size_t)n, "%s%d", d ? ", " : "", p->shape[d]);
    if (n < (int)size)
        snprintf(buf + n, size - (size_t)n, "]");
}

/* Copies init's tensors into net by name; a head whose classes differ stays as initialised
 * and is listed in reinit (", "-separated). A tensor missing from the bundle (the auxiliary
 * head of a bundle trained without one) is listed too; one of another shape is an error that
 * names both shapes. taken[i]: net's tensor i came from the bundle. */
static int copy_init_params(ev_net *net, const ev_model *init, char *const *classes, int k,
                            char *reinit, size_t reinit_size, bool *taken, ev_error *err)
{
    const ev_net *src = ev_model_network(init);
    const ev_net_config *a = &src->cfg, *b = &net->cfg;
    if (a->arch != b->arch)
        return ev_fail(err, EV_ERR_INVALID, "its network is %s, this run's is %s",
                       ev_arch_name(a->arch), ev_arch_name(b->arch));
    if (a->num_cells != b->num_cells || a->init_channels != b->init_channels ||
        a->in_channels != b->in_channels ||
        memcmp(a->reduction, b->reduction, sizeof a->reduction) ||
        memcmp(&a->genotype, &b->genotype, sizeof a->genotype))
        return ev_fail(err, EV_ERR_INVALID,
                       "its network (%d cells, %d initial channels, %d input channels) is not "
                       "this run's (%d, %d, %d, or another genotype/layout): leave --genotype, "
                       "--layout and --init-channels out to take the bundle's",
                       a->num_cells, a->init_channels, a->in_channels, b->num_cells,
                       b->init_channels, b->in_channels);
    const bool new_head = !same_classes(init, classes, k);
    reinit[0] = 0;
    size_t used = 0;
    for (int i = 0; i < net->num_params; i++) {
        ev_param *d = &net->params[i];
        const ev_param *s = NULL;
        for (int j = 0; j < src->num_params && !s; j++)
            if (!strcmp(src->params[j].name, d->name))
                s = &src->params[j];
        if (!s || (new_head && is_head_param(d->name))) {
            int w = snprintf(reinit + used, reinit_size - used, "%s%s", used ? ", " : "", d->name);
            if (w > 0 && used + (size_t)w < reinit_size)
                used += (size_t)w;
            continue;
        }
        if (s->numel != d->numel || s->ndim != d->ndim ||
            memcmp(s->shape, d->shape, sizeof s->shape)) {
            char sa[64], sb[64];
            format_shape(s, sa, sizeof sa);
            format_shape(d, sb, sizeof sb);
            return ev_fail(err, EV_ERR_INVALID, "tensor %s is %s in the bundle, %s here", d->name,
                           sa, sb);
        }
        memcpy(d->data, s->data, d->numel * sizeof(float));
        taken[i] = true;
    }
    return EV_OK;
}

/* ---- the training loop ---------------------------------------------------------------------- */

int search_train(const search_train_options *o, search_train_result *result, ev_error *err)
{
    search_train_result res_local;
    search_train_result *res = result ? result : &res_local;
    memset(res, 0, sizeof *res);
    if (o->epochs < 1 || o->epochs > 800)
        return ev_fail(err, EV_ERR_INVALID, "train: epochs %d outside 1..800", o->epochs);
    if (o->batch < 2 || o->batch > 4096)
        return ev_fail(err, EV_ERR_INVALID, "train: batch %d outside 2..4096", o->batch);
    if (!o->out_dir)
        return ev_fail(err, EV_ERR_INVALID, "train: no output folder");
    const int threads = default_threads(o->threads);
    search_augment aug;
    if (search_augment_parse(o->augment_recipe ? o->augment_recipe : "basic", &aug))
        return ev_fail(err, EV_ERR_INVALID, "train: augmentation '%s' is not basic or transfer",
                       o->augment_recipe);
    aug.enabled = o->augment;
    if (o->other_class && (o->num_classes > 0 || o->class_names))
        return ev_fail(err, EV_ERR_INVALID,
                       "train: an 'other' class goes after the 14 views, "
                       "not after a class list of one's own");
    char *views_and_other[15];
    for (int i = 0; i < 14; i++)
        views_and_other[i] = (char *)ev_echo_views[i];
    views_and_other[14] = (char *)"other";
    const int k = o->other_class ? 15 : o->num_classes > 0 ? o->num_classes : 14;
    char *const *classes = o->other_class   ? views_and_other
                           : o->class_names ? o->class_names
                                            : (char *const *)ev_echo_views;
    search_dataset *ds = o->dataset;
    ev_net *net = NULL;
    search_exec *ex = NULL;
    search_sampler *sampler = NULL;
    optimiser opt = {.kind = o->optimizer};
    int *train_idx = NULL, *val_idx = NULL, *batch_idx = NULL;
    int32_t *labels = NULL;
    float *input = NULL;
    char *fingerprint = NULL, *schedule = NULL;
    FILE *log = NULL;
    search_split_record split_record = {0};
    bool *frozen = NULL, *taken = NULL;
    float *lr_scale = NULL;
    uint64_t init_hash = 0;
    char reinit[1024] = "";
    int rc = EV_OK;

    if (mkdir(o->out_dir, 0755) != 0 && errno != EEXIST)
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", o->out_dir, strerror(errno));
    if (!ds) {
        search_dataset_options dso = {.width = o->size,
                                      .height = o->size,
                                      .channels = 1,
                                      .num_classes = k,
                                      .class_names = (const char *const *)classes,
                                      .seed = o->seed,
                                      .max_bad_fraction = o->max_bad_fraction,
                                      .auto_roi = o->auto_roi,
                                      .threads = threads,
                                      .only_split = -1,
                                      .quiet = o->quiet,
                                      .patient_regex = o->patient_regex,
                                      .frames_per_clip = o->frames_per_clip,
                                      .clip_frame_step = o->clip_frame_step,
                                      .video_fps = o->video_fps};
        if ((rc = search_dataset_load(o->data, &dso, &ds, err)))
            return rc;
    } else if (ds->width != o->size || ds->height != o->size) {
        return ev_fail(err, EV_ERR_INVALID, "train: dataset frames %dx%d, network input %d",
                       ds->width, ds->height, o->size);
    }
    const size_t fsz = (size_t)ds->width * ds->height * ds->channels;

    /* frames of each split; a share of the training patients when asked */
    train_idx = malloc((size_t)ds->count * sizeof *train_idx);
    val_idx = malloc((size_t)ds->count * sizeof *val_idx);
    if (!train_idx || !val_idx) {
        rc = ev_fail(err, EV_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    int ntrain = 0, nval = 0;
    for (int i = 0; i < ds->count; i++) {
        if (ds->split[i] == SEARCH_SPLIT_TRAIN) {
            if (o->train_fraction < 1.0) {
                uint64_t h = search_seed_mix(o->seed ^ 0xf7ac, (uint64_t)ds->patient[i]);
                if ((double)(h >> 11) * 0x1.0p-53 >= o->train_fraction)
                    continue;
            }
            train_idx[ntrain++] = i;
        } else if (ds->split[i] == SEARCH_SPLIT_VAL) {
            val_idx[nval++] = i;
        }
    }
    if (!ntrain || !nval) {
        rc = ev_fail(err, EV_ERR_INVALID,
                     "%s: %d training and %d validation frames; both splits are needed (early "
                     "stopping watches the validation loss)",
                     o->data ? o->data : "dataset", ntrain, nval);
        goto out;
    }
    if (o->max_val_frames > 0 && nval > o->max_val_frames) { /* evenly spaced, deterministic */
        for (int i = 0; i < o->max_val_frames; i++)
            val_idx[i] = val_idx[(int)((int64_t)i * nval / o->max_val_frames)];
        nval = o->max_val_frames;
    }
    if ((rc = search_sampler_create(train_idx, ntrain, ds->labels, k, o->batch, &sampler, err)))
        goto out;
    if (!o->quiet && search_sampler_classes_present(sampler) < k)
        fprintf(stderr,
                "warning: %d of %d classes have training frames; batches balance over "
                "those\n",
                search_sampler_classes_present(sampler), k);

    ev_net_config cfg = {0};
    train_net_config(o, &cfg);
    cfg.in_channels = ds->channels;
    cfg.num_classes = k;
    cfg.input_height = cfg.input_width = o->size;
    cfg.auxiliary = o->auxiliary_weight > 0.0f;
    cfg.drop_path_prob = o->drop_path;
    if ((rc = ev_net_create(&cfg, o->batch, true, &net, err)))
        goto out;
    ev_net_init_weights(net, o->seed);
    if (o->freeze && !o->init_from) {
        rc = ev_fail(err, EV_ERR_INVALID,
                     "--freeze needs --init-from: frozen random weights would stay random");
        goto out;
    }
    if (o->init_from) { /* e.g. a model trained at a smaller input size: the same tensors */
        ev_model *init = NULL;
        char weights[PATH_MAX];
        struct stat ist = {0};
        snprintf(weights, sizeof weights,
                 stat(o->init_from, &ist) == 0 && S_ISDIR(ist.st_mode) ? "%s/weights.safetensors"
                                                                       : "%s",
                 o->init_from);
        if (!S_ISDIR(ist.st_mode)) { /* a model.yaml: its folder's weights */
            char *slash = strrchr(weights, '/');
            snprintf(slash ? slash + 1 : weights,
                     sizeof weights - (size_t)(slash ? slash + 1 - weights : 0),
                     "weights.safetensors");
        }
        if ((rc = ev_model_load(o->init_from, &init, err)) ||
            (rc = search_file_hash(weights, &init_hash, err))) {
            ev_model_free(init);
            ev_fail_prefix(err, "--init-from %s: ", o->init_from);
            goto out;
        }
        if (!(taken = calloc((size_t)net->num_params, sizeof *taken))) {
            ev_model_free(init);
            rc = ev_fail(err, EV_ERR_NOMEM, "train: out of memory");
            goto out;
        }
        rc = copy_init_params(net, init, classes, k, reinit, sizeof reinit, taken, err);
        ev_model_free(init);
        if (rc) {
            ev_fail_prefix(err, "--init-from %s: ", o->init_from);
            goto out;
        }
        if (!o->quiet && !o->resume)
            fprintf(stderr, "init from %s: re-initialised: %s\n", o->init_from,
                    reinit[0] ? reinit : "none (same classes, every tensor taken)");
    }
    if (o->freeze) {
        if (!(frozen = calloc((size_t)net->num_params, sizeof *frozen))) {
            rc = ev_fail(err, EV_ERR_NOMEM, "train: out of memory");
            goto out;
        }
        if ((rc = search_freeze_parse(o->freeze, net, frozen, err)))
            goto out;
        opt.frozen = frozen;
    }
    if (o->freeze_epochs > 0 && !o->freeze) {
        rc = ev_fail(err, EV_ERR_INVALID, "--freeze-epochs needs --freeze (the layers to thaw)");
        goto out;
    }
    if (o->lr_backbone > 0) { /* discriminative fine-tuning: the bundle's tensors learn slower */
        if (!o->init_from) {
            rc = ev_fail(err, EV_ERR_INVALID,
                         "--lr-backbone needs --init-from (it is the rate of the tensors taken "
                         "from the bundle)");
            goto out;
        }
        if (!(lr_scale = malloc((size_t)net->num_params * sizeof *lr_scale))) {
            rc = ev_fail(err, EV_ERR_NOMEM, "train: out of memory");
            goto out;
        }
        for (int i = 0; i < net->num_params; i++)
            lr_scale[i] = taken[i] ? o->lr_backbone / o->lr : 1.0f;
        opt.lr_scale = lr_scale;
    }
    if ((rc = search_exec_create(net, threads, &ex, err)))
        goto out;
    opt.total = trainable_total(net);
    opt.m = calloc(opt.total ? opt.total : 1, sizeof(float));
    opt.v = calloc(opt.total ? opt.total : 1, sizeof(float));
    batch_idx = malloc((size_t)o->batch * sizeof *batch_idx);
    labels = malloc((size_t)o->batch * sizeof *labels);
    input = ev_aligned_alloc((size_t)o->batch * fsz * sizeof(float));
    fingerprint = config_fingerprint(o, net);
    schedule = schedule_fingerprint(o, init_hash);
    if (!opt.m || !opt.v || !batch_idx || !labels || !input || !fingerprint || !schedule) {
        rc = ev_fail(err, EV_ERR_NOMEM, "train: out of memory");
        goto out;
    }
    train_state st = {.best_val_loss = INFINITY, .best_epoch = -1};
    if (o->resume) {
        if ((rc = load_checkpoint(o->out_dir, net, &opt, &st, fingerprint, schedule, err)))
            goto out;
        if (!o->quiet)
            fprintf(stderr, "resuming %s after epoch %d (best val loss %.4f at epoch %d)\n",
                    o->out_dir, st.epoch, st.best_val_loss, st.best_epoch + 1);
    }
    char log_path[PATH_MAX];
    snprintf(log_path, sizeof log_path, "%s", o->log_path ? o->log_path : "");
    if (!o->log_path)
        snprintf(log_path, sizeof log_path, "%s/train.jsonl", o->out_dir);
    if (!(log = fopen(log_path, o->resume ? "a" : "w"))) {
        rc = ev_fail(err, EV_ERR_IO, "%s: %s", log_path, strerror(errno));
        goto out;
    }
    const char *name = o->name;
    if (!name) {
        name = strrchr(o->out_dir, '/');
        name = name && name[1] ? name + 1 : o->out_dir;
    }
    const bool tty = !o->quiet && isatty(2);
    const int steps = o->max_steps > 0 ? o->max_steps : (ntrain + o->batch - 1) / o->batch;
    const float scale = 1.0f / 255.0f, mean[3] = {0, 0, 0}, stdv[3] = {1, 1, 1};
    const ev_model_info bundle = {.name = name,
                                  .class_names = classes,
                                  .scale = scale,
                                  .mean = {0, 0, 0},
                                  .std = {1, 1, 1},
                                  .normalize = o->normalize};
    const bool use_aux = o->auxiliary_weight > 0.0f;
    if (!o->quiet)
        fprintf(stderr,
                "training %s: %lld parameters, %d train / %d val frames, %d classes, %d steps of "
                "%d per epoch, %d threads, %s kernels\n",
                name, (long long)ev_net_count_params(net), ntrain, nval, k, steps, o->batch,
                threads, search_kernels_name());
    if (!o->quiet)
        print_memory(ex, net, ds, &opt, o->batch, fsz);
    double train_time = 0.0, run_seconds = 0.0;
    int64_t train_frames = 0;
    int epochs_this_run = 0;
    for (int epoch = st.epoch; epoch < o->epochs; epoch++) {
        const double t0 = search_now_s();
        float lr = o->lr;
        if (o->cosine)
            lr = (float)(0.5 * o->lr * (1.0 + cos(M_PI * epoch / o->epochs)));
        /* --freeze-epochs: the frozen layers thaw after that many epochs */
        opt.frozen = frozen && (o->freeze_epochs <= 0 || epoch < o->freeze_epochs) ? frozen : NULL;
        net->graph.drop_path_prob = o->drop_path * epoch / o->epochs;
        net->graph.rng_state = search_seed_mix(o->seed, 0xd20900000ull + (uint64_t)epoch);
        search_sampler_reset(sampler, search_seed_mix(o->seed, 0x5a3900000ull + (uint64_t)epoch));
        double loss_sum = 0.0;
        int64_t correct = 0, seen = 0;
        int first_step = 0;
        if (epoch == st.epoch && st.step > 0 && st.step < steps) { /* an interrupted epoch */
            for (int i = 0; i < st.step; i++)
                search_sampler_next(sampler, batch_idx);
            first_step = st.step;
            loss_sum = st.loss_sum;
            correct = st.correct;
            seen = st.seen;
            net->graph.rng_state = st.rng_state;
            if (!o->quiet)
                fprintf(stderr, "continuing epoch %d at step %d of %d\n", epoch + 1,
                        first_step + 1, steps);
        }
        st.step = 0, st.loss_sum = 0, st.correct = st.seen = 0, st.rng_state = 0;
        for (int step = first_step; step < steps; step++) {
            search_sampler_next(sampler, batch_idx);
            for (int i = 0; i < o->batch; i++) {
                uint64_t rng = search_seed_mix(search_seed_mix(o->seed, (uint64_t)epoch),
                                               (uint64_t)step * 65536u + i);
                int f = batch_idx[i];
                search_frame_to_input(ds->pixels + (size_t)f * fsz, ds->width, ds->height,
                                      ds->channels, &aug, &rng, o->normalize, scale, mean, stdv,
                                      input + (size_t)i * fsz);
            }
            for (int i = 0; i < o->batch; i++)
                labels[i] = ds->labels[batch_idx[i]];
            float loss = 0.0f;
            if ((rc = search_exec_forward(ex, input, true, err)) ||
                (rc = search_exec_backward(ex, labels, o->auxiliary_weight, &loss, err)))
                goto out;
            if (!isfinite(loss)) {
                rc = ev_fail(err, EV_ERR_INVALID,
                             "train: the loss became %g at epoch %d step %d; lower --lr", loss,
                             epoch + 1, step + 1);
                goto out;
            }
            if (o->grad_clip > 0.0f)
                clip_gradients(net, opt.frozen, o->grad_clip, use_aux);
            optimiser_step(&opt, net, lr, o->weight_decay, o->momentum, use_aux);
            const float *logits = search_exec_logits(ex);
            for (int i = 0; i < o->batch; i++) {
                const float *row = logits + (size_t)i * k;
                int best = 0;
                for (int j = 1; j < k; j++)
                    if (row[j] > row[best])
                        best = j;
                correct += best == labels[i];
            }
            seen += o->batch;
            loss_sum += loss;
            double el = search_now_s() - t0, per_step = el / (step + 1 - first_step);
            if (tty)
                search_progress("", epoch + 1, o->epochs, step + 1, steps, loss_sum / (step + 1),
                                (double)correct / seen, o->batch / per_step, 0, "frames/s",
                                per_step * (steps - step - 1) +
                                    per_step * steps * (o->epochs - epoch - 1));
            if (o->interrupt && *o->interrupt && step + 1 < steps) {
                /* stop between steps: the checkpoint holds the epoch so far */
                st.step = step + 1;
                st.loss_sum = loss_sum;
                st.correct = correct;
                st.seen = seen;
                st.rng_state = net->graph.rng_state;
                if ((rc = save_checkpoint(o->out_dir, net, &opt, &st, fingerprint, schedule, err)))
                    goto out;
                if (tty)
                    fprintf(stderr, "\r\033[K");
                res->interrupted = true;
                res->stopped_epoch = epoch + 1;
                res->stopped_step = step + 1;
                goto stopped;
            }
        }
        const double t_train = search_now_s() - t0;
        train_time += t_train;
        const int64_t seen_now = seen - (int64_t)first_step * o->batch; /* frames of this run */
        train_frames += seen_now;
        double val_loss = 0, val_acc = 0;
        if ((rc = run_eval(ex, net, ds, val_idx, nval, o->normalize, 1.0f, scale, mean, stdv, input,
                           threads, &val_loss, &val_acc, NULL, NULL, NULL, NULL, err)))
            goto out;
        bool improved = val_loss < st.best_val_loss;
        st.epoch = epoch + 1;
        if (improved) {
            st.best_val_loss = val_loss;
            st.best_val_acc = val_acc;
            st.best_epoch = epoch;
            st.bad_epochs = 0;
            if ((rc = ev_model_write_bundle(o->out_dir, net, &bundle, err)))
                goto out;
            /* the split goes with the weights, so that eval can keep to it */
            char yaml_path[PATH_MAX];
            snprintf(yaml_path, sizeof yaml_path, "%s/model.yaml", o->out_dir);
            search_provenance prov = {.command = o->command_line,
                                      .data = o->data ? o->data : "(a dataset in memory)",
                                      .source_commit = o->source_commit,
                                      .init_from = o->init_from,
                                      .init_from_hash = init_hash,
                                      .reinitialised = reinit,
                                      .freeze = o->freeze,
                                      .freeze_epochs = o->freeze_epochs,
                                      .lr = o->lr,
                                      .lr_backbone = o->lr_backbone,
                                      .auto_roi = o->auto_roi,
                                      .epochs = o->epochs,
                                      .best_epoch = epoch + 1,
                                      .seed = o->seed};
            for (int i = 0; i < ds->count; i++)
                if (ds->split[i] >= 0 && ds->split[i] < SEARCH_SPLIT_COUNT)
                    prov.frames[ds->split[i]]++;
            if ((rc = search_split_record_from_dataset(ds, o->seed, &split_record, err)) ||
                (rc = search_training_record_append_yaml(yaml_path, &prov, &split_record, err)))
                goto out;
            search_split_record_free(&split_record);
        } else {
            st.bad_epochs++;
        }
        if ((rc = save_checkpoint(o->out_dir, net, &opt, &st, fingerprint, schedule, err)))
            goto out;
        const double secs = search_now_s() - t0;
        run_seconds += secs;
        json_t *line =
            json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:b, s:f, s:f}", "epoch", epoch + 1, "lr",
                      (double)lr, "train_loss", loss_sum / steps, "train_accuracy",
                      (double)correct / seen, "val_loss", val_loss, "val_accuracy", val_acc, "best",
                      improved, "seconds", secs, "train_frames_per_second", seen_now / t_train);
        char *s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
        if (s) {
            fprintf(log, "%s\n", s);
            fflush(log);
        }
        free(s);
        json_decref(line);
        if (tty)
            fprintf(stderr, "\r\033[K");
        epochs_this_run++;
        if (!o->quiet) {
            /* the whole run's ETA: this run's mean epoch time for the epochs left (an upper
             * bound when early stopping ends it sooner) */
            char eta[48] = "";
            if (epoch + 1 < o->epochs) {
                int e = (int)(run_seconds / epochs_this_run * (o->epochs - epoch - 1) + 0.5);
                snprintf(eta, sizeof eta, ", ETA %d:%02d:%02d for %d more", e / 3600,
                         e / 60 % 60, e % 60, o->epochs - epoch - 1);
            }
            fprintf(stderr,
                    "epoch %d/%d: train loss %.4f acc %.1f%%, val loss %.4f acc %.1f%%%s, "
                    "%.0f frames/s, %.1f s%s\n",
                    epoch + 1, o->epochs, loss_sum / steps, 100.0 * correct / seen, val_loss,
                    100.0 * val_acc, improved ? " (best)" : "", seen_now / t_train, secs, eta);
        }
        if (o->patience > 0 && st.bad_epochs >= o->patience) {
            res->early_stopped = true;
            if (!o->quiet)
                fprintf(stderr, "early stop: no validation-loss improvement for %d epochs\n",
                        o->patience);
            break;
        }
        if (o->stop_after > 0 && epochs_this_run >= o->stop_after)
            break;
        if (o->interrupt && *o->interrupt && epoch + 1 < o->epochs) {
            res->interrupted = true; /* the epoch's checkpoint is written: stop here */
            res->stopped_epoch = epoch + 1;
            res->stopped_step = steps;
            break;
        }
    }
stopped:
    res->steps_per_epoch = steps;
    res->epochs_run = st.epoch;
    res->best_epoch = st.best_epoch + 1;
    res->best_val_loss = st.best_val_loss;
    res->best_val_accuracy = st.best_val_acc;
    res->frames_per_second = train_time > 0 ? train_frames / train_time : 0;
out:
    search_split_record_free(&split_record);
    free(frozen);
    free(taken);
    free(lr_scale);
    if (log)
        fclose(log);
    free(fingerprint);
    free(schedule);
    ev_aligned_free(input);
    free(labels);
    free(batch_idx);
    free(opt.m);
    free(opt.v);
    free(train_idx);
    free(val_idx);
    search_sampler_free(sampler);
    search_exec_free(ex);
    ev_net_free(net);
    if (ds != o->dataset)
        search_dataset_free(ds);
    return rc;
}

int search_train_benchmark(const search_train_options *o, int warmup, int steps,
                           double *seconds_per_step, double *frames_per_second, ev_error *err)
{
    ev_net_config cfg = {0};
    train_net_config(o, &cfg);
    cfg.in_channels = 1;
    cfg.num_classes = o->num_classes > 0 ? o->num_classes : 14;
    cfg.input_height = cfg.input_width = o->size;
    ev_net *net = NULL;
    search_exec *ex = NULL;
    optimiser opt = {.kind = o->optimizer};
    const size_t fsz = (size_t)o->size * o->size;
    float *input = NULL;
    int32_t *labels = NULL;
    int rc = ev_net_create(&cfg, o->batch, true, &net, err);
    if (!rc)
        rc = search_exec_create(net, default_threads(o->threads), &ex, err);
    if (rc)
        goto out;
    ev_net_init_weights(net, o->seed);
    opt.total = trainable_total(net);
    opt.m = calloc(opt.total, sizeof(float));
    opt.v = calloc(opt.total, sizeof(float));
    input = malloc((size_t)o->batch * fsz * sizeof(float));
    labels = malloc((size_t)o->batch * sizeof *labels);
    if (!opt.m || !opt.v || !input || !labels) {
        rc = ev_fail(err, EV_ERR_NOMEM, "benchmark: out of memory");
        goto out;
    }
    uint64_t rng = o->seed;
    for (size_t i = 0; i < (size_t)o->batch * fsz; i++)
        input[i] = ev_rng_uniform(&rng);
    for (int i = 0; i < o->batch; i++)
        labels[i] = i % cfg.num_classes;
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup)
            t0 = search_now_s();
        float loss;
        if ((rc = search_exec_forward(ex, input, true, err)) ||
            (rc = search_exec_backward(ex, labels, 0.0f, &loss, err)))
            goto out;
        optimiser_step(&opt, net, o->lr, o->weight_decay, o->momentum, false);
    }
    double dt = (search_now_s() - t0) / steps;
    *seconds_per_step = dt;
    *frames_per_second = o->batch / dt;
out:
    free(input);
    free(labels);
    free(opt.m);
    free(opt.v);
    search_exec_free(ex);
    ev_net_free(net);
    return rc;
}
