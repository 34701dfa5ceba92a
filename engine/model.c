/* model.c: model bundles (model.yaml + weights.safetensors): parsing with file:line:column
 * errors, loading into a batch-1 reference network, and writing bundles for training output. */
#include "ev_private.h"
#include "ev_safetensors.h"
#include "yaml_util.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const ev_echo_views[14] = {
    "A2CH",         "A3CH",          "A4CH-LV",   "A4CH-RV",      "A5CH",
    "Apical-LA/MV", "PLAX-TV",       "PLAX-full", "PLAX-valves",  "PSAX-AV",
    "PSAX-LV",      "Subcostal-IVC", "Subcostal", "Suprasternal",
};

static int parse_float_list(ev_yaml_doc *doc, const ev_yaml_node *node, const char *what, int count,
                            float *out, ev_error *err)
{
    if (ev_yaml_node_kind(node) != EV_YAML_SEQUENCE) {
        ev_yaml_fail(doc, node, "%s must be a list", what);
        return ev_fail_yaml_doc(err, doc);
    }
    int n = (int)ev_yaml_length(node);
    if (n != count && n != 1) {
        ev_yaml_fail(doc, node, "%s has %d entries; the input has %d channels", what, n, count);
        return ev_fail_yaml_doc(err, doc);
    }
    for (int i = 0; i < count; i++) {
        const ev_yaml_node *item = ev_yaml_item(doc, node, (size_t)(n == 1 ? 0 : i));
        double v;
        if (!item || !ev_yaml_get_double(doc, item, what, -DBL_MAX, DBL_MAX, &v))
            return ev_fail_yaml_doc(err, doc);
        out[i] = (float)v;
    }
    return EV_OK;
}

static void free_classes(ev_model *m)
{
    for (int i = 0; m->class_names && i < m->num_classes; i++)
        free(m->class_names[i]);
    free(m->class_names);
    m->class_names = NULL;
    m->num_classes = 0;
}

static int parse_network(ev_yaml_doc *doc, const ev_yaml_node *net, const char *dir, ev_model *m,
                         ev_error *err)
{
    static const char *const keys[] = {"arch",          "init_channels", "layout",
                                       "layers",        "genotype",      "genotype_file",
                                       "genotype_name", "auxiliary",     NULL};
    if (!ev_yaml_walk_mapping(doc, net, "network", keys, NULL, NULL))
        return ev_fail_yaml_doc(err, doc);
    int rc;
    ev_net_config *cfg = &m->cfg;
    long v;
    /* arch: darts (the default) or a baseline, which takes none of the DARTS keys */
    const ev_yaml_node *n = ev_yaml_lookup(doc, net, "arch");
    if (n) {
        const char *arch = ev_yaml_get_nonempty_string(doc, n, "arch");
        if (!arch)
            return ev_fail_yaml_doc(err, doc);
        if (!ev_arch_from_name(arch, &cfg->arch)) {
            ev_yaml_fail(doc, n,
                         "network: arch '%s' is not darts, resnet18, densenet201, vgg16 or "
                         "vgg16_bn",
                         arch);
            return ev_fail_yaml_doc(err, doc);
        }
    }
    if (cfg->arch != EV_ARCH_DARTS) {
        for (int i = 1; keys[i]; i++)
            if ((n = ev_yaml_lookup(doc, net, keys[i]))) {
                ev_yaml_fail(doc, n, "network: %s is a DARTS setting; arch %s takes none", keys[i],
                             ev_arch_name(cfg->arch));
                return ev_fail_yaml_doc(err, doc);
            }
        return EV_OK;
    }
    n = ev_yaml_lookup(doc, net, "init_channels");
    if (!n) {
        ev_yaml_fail(doc, net, "network: init_channels is missing");
        return ev_fail_yaml_doc(err, doc);
    }
    if (!ev_yaml_get_int(doc, n, "init_channels", 1, 4096, &v))
        return ev_fail_yaml_doc(err, doc);
    cfg->init_channels = (int)v;
    const ev_yaml_node *layout = ev_yaml_lookup(doc, net, "layout");
    const ev_yaml_node *layers = ev_yaml_lookup(doc, net, "layers");
    if (!!layout == !!layers) {
        ev_yaml_fail(doc, net, "network: give exactly one of layout or layers");
        return ev_fail_yaml_doc(err, doc);
    }
    if (layers) {
        if (!ev_yaml_get_int(doc, layers, "layers", 1, EV_MAX_CELLS, &v))
            return ev_fail_yaml_doc(err, doc);
        cfg->num_cells = (int)v;
        ev_layout_from_layers(cfg->num_cells, cfg->reduction);
    } else {
        if (ev_yaml_node_kind(layout) != EV_YAML_SEQUENCE) {
            ev_yaml_fail(doc, layout, "network: layout must be a list of normal/reduce");
            return ev_fail_yaml_doc(err, doc);
        }
        cfg->num_cells = 0;
        for (size_t i = 0; i < ev_yaml_length(layout); i++) {
            const ev_yaml_node *c = ev_yaml_item(doc, layout, i);
            if (!c)
                return ev_fail_yaml_doc(err, doc);
            const char *s = ev_yaml_scalar(c);
            if (cfg->num_cells >= EV_MAX_CELLS) {
                ev_yaml_fail(doc, c, "network: layout longer than %d cells", EV_MAX_CELLS);
                return ev_fail_yaml_doc(err, doc);
            }
            if (s && (!strcmp(s, "normal") || !strcmp(s, "N"))) {
                cfg->reduction[cfg->num_cells++] = false;
            } else if (s && (!strcmp(s, "reduce") || !strcmp(s, "reduction") || !strcmp(s, "R"))) {
                cfg->reduction[cfg->num_cells++] = true;
            } else {
                ev_yaml_fail(doc, c, "network: layout entry '%s' is not normal or reduce",
                             s ? s : "?");
                return ev_fail_yaml_doc(err, doc);
            }
        }
        if (cfg->num_cells == 0) {
            ev_yaml_fail(doc, layout, "network: layout is empty");
            return ev_fail_yaml_doc(err, doc);
        }
    }
    const ev_yaml_node *g = ev_yaml_lookup(doc, net, "genotype");
    const ev_yaml_node *gf = ev_yaml_lookup(doc, net, "genotype_file");
    if (!!g == !!gf) {
        ev_yaml_fail(doc, net, "network: give exactly one of genotype or genotype_file");
        return ev_fail_yaml_doc(err, doc);
    }
    if (g) {
        if ((rc = ev_genotype_from_yaml_node(doc, g, &cfg->genotype, err)))
            return rc;
    } else {
        const char *file = ev_yaml_get_nonempty_string(doc, gf, "genotype_file");
        if (!file)
            return ev_fail_yaml_doc(err, doc);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s%s%s", file[0] == '/' ? "" : dir, file[0] == '/' ? "" : "/",
                 file);
        if ((rc = ev_genotype_load_file(path, &cfg->genotype, err)))
            return rc;
    }
    /* genotype_name: a note for readers of the file; checked, not kept */
    const ev_yaml_node *gn = ev_yaml_lookup(doc, net, "genotype_name");
    if (gn && !ev_yaml_get_string(doc, gn, "genotype_name"))
        return ev_fail_yaml_doc(err, doc);
    const ev_yaml_node *aux = ev_yaml_lookup(doc, net, "auxiliary");
    if (aux && !ev_yaml_get_bool(doc, aux, "auxiliary", &cfg->auxiliary))
        return ev_fail_yaml_doc(err, doc);
    return EV_OK;
}

static int parse_classes(ev_yaml_doc *doc, const ev_yaml_node *n, ev_model *m, ev_error *err)
{
    /* no classes: the 14 echo views */
    if (n && ev_yaml_node_kind(n) != EV_YAML_SEQUENCE) {
        ev_yaml_fail(doc, n, "classes must be a list of names");
        return ev_fail_yaml_doc(err, doc);
    }
    int count = n ? (int)ev_yaml_length(n) : 14;
    if (count < 1 || count > EV_MAX_CLASSES) {
        ev_yaml_fail(doc, n, "classes: %d entries; need 1..%d", count, EV_MAX_CLASSES);
        return ev_fail_yaml_doc(err, doc);
    }
    if (!(m->class_names = calloc((size_t)count, sizeof *m->class_names)))
        return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    m->num_classes = count;
    for (int i = 0; i < count; i++) {
        const char *s = ev_echo_views[i % 14];
        if (n) {
            const ev_yaml_node *c = ev_yaml_item(doc, n, (size_t)i);
            if (!c)
                return ev_fail_yaml_doc(err, doc);
            if (ev_yaml_node_kind(c) != EV_YAML_SCALAR) {
                ev_yaml_fail(doc, c, "classes: entry %d is not a name", i);
                return ev_fail_yaml_doc(err, doc);
            }
            if (!(s = ev_yaml_get_nonempty_string(doc, c, "classes entry")))
                return ev_fail_yaml_doc(err, doc);
            for (int j = 0; j < i; j++)
                if (strcmp(m->class_names[j], s) == 0) {
                    ev_yaml_fail(doc, c, "classes: '%s' appears twice", s);
                    return ev_fail_yaml_doc(err, doc);
                }
        }
        if (!(m->class_names[i] = strdup(s)))
            return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    }
    return EV_OK;
}

static int parse_input(ev_yaml_doc *doc, const ev_yaml_node *root, ev_model *m, ev_error *err)
{
    static const char *const keys[] = {"width", "height", "channels", NULL};
    static const char *const dims[3] = {"width", "height", "channels"};
    int *fields[3] = {&m->input_width, &m->input_height, &m->input_channels};
    const ev_yaml_node *n = ev_yaml_lookup(doc, root, "input");
    long v;
    if (!n) {
        ev_yaml_fail(doc, root, "input: {width, height, channels} is missing");
        return ev_fail_yaml_doc(err, doc);
    }
    if (!ev_yaml_walk_mapping(doc, n, "input", keys, NULL, NULL))
        return ev_fail_yaml_doc(err, doc);
    for (int i = 0; i < 3; i++) {
        const ev_yaml_node *d = ev_yaml_lookup(doc, n, dims[i]);
        if (!d) {
            ev_yaml_fail(doc, n, "input: %s is missing", dims[i]);
            return ev_fail_yaml_doc(err, doc);
        }
        if (!ev_yaml_get_int(doc, d, dims[i], 1, i == 2 ? 3 : 4096, &v))
            return ev_fail_yaml_doc(err, doc);
        *fields[i] = (int)v;
    }
    if (m->input_channels == 2) {
        ev_yaml_fail(doc, n, "input: channels must be 1 (gray) or 3 (RGB)");
        return ev_fail_yaml_doc(err, doc);
    }
    return EV_OK;
}

static int parse_preprocess(ev_yaml_doc *doc, const ev_yaml_node *n, ev_model *m, ev_error *err)
{
    static const char *const keys[] = {"scale", "mean", "std", "normalize", NULL};
    m->scale = 1.0f / 255.0f;
    m->normalize = EV_NORMALIZE_NONE;
    for (int c = 0; c < 3; c++) {
        m->mean[c] = 0.0f;
        m->std[c] = 1.0f;
    }
    if (!n)
        return EV_OK;
    if (!ev_yaml_walk_mapping(doc, n, "preprocess", keys, NULL, NULL))
        return ev_fail_yaml_doc(err, doc);
    const ev_yaml_node *scale = ev_yaml_lookup(doc, n, "scale"),
                       *mean = ev_yaml_lookup(doc, n, "mean"), *std = ev_yaml_lookup(doc, n, "std");
    double d;
    int rc;
    if (scale) {
        if (!ev_yaml_get_double(doc, scale, "scale", -DBL_MAX, DBL_MAX, &d))
            return ev_fail_yaml_doc(err, doc);
        m->scale = (float)d;
    }
    if (mean &&
        (rc = parse_float_list(doc, mean, "preprocess: mean", m->input_channels, m->mean, err)))
        return rc;
    if (std && (rc = parse_float_list(doc, std, "preprocess: std", m->input_channels, m->std, err)))
        return rc;
    const ev_yaml_node *norm = ev_yaml_lookup(doc, n, "normalize");
    if (norm) {
        const char *v = ev_yaml_get_nonempty_string(doc, norm, "preprocess: normalize");
        if (!v)
            return ev_fail_yaml_doc(err, doc);
        if (!strcmp(v, "sector")) {
            m->normalize = EV_NORMALIZE_SECTOR;
        } else if (strcmp(v, "none")) {
            ev_yaml_fail(doc, norm, "preprocess: normalize must be none or sector, not '%s'", v);
            return ev_fail_yaml_doc(err, doc);
        }
    }
    for (int c = 0; c < m->input_channels; c++)
        if (!(m->std[c] > 0.0f)) {
            ev_yaml_fail(doc, std, "preprocess: std must be positive");
            return ev_fail_yaml_doc(err, doc);
        }
    return EV_OK;
}

static int parse_calibration(ev_yaml_doc *doc, const ev_yaml_node *n, ev_model *m, ev_error *err)
{
    static const char *const keys[] = {"temperature", "confidence_threshold", NULL};
    m->temperature = 1.0f;
    m->confidence_threshold = 0.0f;
    if (!n)
        return EV_OK;
    if (!ev_yaml_walk_mapping(doc, n, "calibration", keys, NULL, NULL))
        return ev_fail_yaml_doc(err, doc);
    const ev_yaml_node *t = ev_yaml_lookup(doc, n, "temperature"),
                       *c = ev_yaml_lookup(doc, n, "confidence_threshold");
    double d;
    if (t) {
        if (!ev_yaml_get_double(doc, t, "calibration: temperature", 1e-3, 1e3, &d))
            return ev_fail_yaml_doc(err, doc);
        m->temperature = (float)d;
    }
    if (c) {
        if (!ev_yaml_get_double(doc, c, "calibration: confidence_threshold", 0.0, 0.999999, &d))
            return ev_fail_yaml_doc(err, doc);
        m->confidence_threshold = (float)d;
    }
    return EV_OK;
}

static int parse_model_doc(ev_yaml_doc *doc, const char *dir, ev_model *m, char *weights_file,
                           size_t weights_size, ev_error *err)
{
    static const char *const top_keys[] = {"name",        "classes",  "input",   "preprocess",
                                           "network",     "weights",  "calibration",
                                           "description", "training", "metrics", NULL};
    static const char *const free_form[] = {"description", "training", "metrics"};
    const ev_yaml_node *root = ev_yaml_root(doc), *n;
    int rc;
    if (!ev_yaml_walk_mapping(doc, root, "model.yaml", top_keys, NULL, NULL))
        return ev_fail_yaml_doc(err, doc);
    for (int i = 0; i < 3; i++) /* notes of their own shape, but no aliases there either */
        if ((n = ev_yaml_lookup(doc, root, free_form[i])) && !ev_yaml_accept_any(doc, n))
            return ev_fail_yaml_doc(err, doc);
    n = ev_yaml_lookup(doc, root, "name");
    const char *name = n ? ev_yaml_get_string(doc, n, "name") : "unnamed";
    if (!name)
        return ev_fail_yaml_doc(err, doc);
    snprintf(m->name, sizeof m->name, "%s", name);
    if ((rc = parse_classes(doc, ev_yaml_lookup(doc, root, "classes"), m, err)) ||
        (rc = parse_input(doc, root, m, err)) ||
        (rc = parse_preprocess(doc, ev_yaml_lookup(doc, root, "preprocess"), m, err)) ||
        (rc = parse_calibration(doc, ev_yaml_lookup(doc, root, "calibration"), m, err)))
        return rc;

    if (!(n = ev_yaml_lookup(doc, root, "network"))) {
        ev_yaml_fail(doc, root, "network is missing");
        return ev_fail_yaml_doc(err, doc);
    }
    if ((rc = parse_network(doc, n, dir, m, err)))
        return rc;
    m->cfg.in_channels = m->input_channels;
    m->cfg.num_classes = m->num_classes;
    m->cfg.input_width = m->input_width;
    m->cfg.input_height = m->input_height;

    n = ev_yaml_lookup(doc, root, "weights");
    const char *wf = n ? ev_yaml_get_nonempty_string(doc, n, "weights") : "weights.safetensors";
    if (!wf)
        return ev_fail_yaml_doc(err, doc);
    if (weights_file) {
        int w = snprintf(weights_file, weights_size, "%s%s%s", wf[0] == '/' ? "" : dir,
                         wf[0] == '/' ? "" : "/", wf);
        if (w < 0 || (size_t)w >= weights_size) {
            ev_yaml_fail(doc, n, "weights path too long");
            return ev_fail_yaml_doc(err, doc);
        }
    }
    return EV_OK;
}

int ev_bundle_path(const char *bundle, const char *file, char *out, size_t size, ev_error *err)
{
    if (!bundle || !*bundle)
        return ev_fail(err, EV_ERR_INVALID, "no model path given");
    struct stat sb;
    if (stat(bundle, &sb) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: %s", bundle, strerror(errno));
    int n;
    if (S_ISDIR(sb.st_mode)) {
        n = snprintf(out, size, "%s/%s", bundle, file ? file : "model.yaml");
    } else if (!file) {
        n = snprintf(out, size, "%s", bundle);
    } else {
        const char *slash = strrchr(bundle, '/');
        n = slash ? snprintf(out, size, "%.*s/%s", (int)(slash - bundle), bundle, file)
                  : snprintf(out, size, "%s", file);
    }
    if (n < 0 || (size_t)n >= size)
        return ev_fail(err, EV_ERR_INVALID, "%s: path too long", bundle);
    return EV_OK;
}

/* Parses model.yaml (path) into the model's fields (no weights). */
static int parse_model_yaml(const char *path, ev_model *m, char *weights_file, size_t weights_size,
                            ev_error *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");

    ev_yaml_doc *doc = NULL;
    ev_yaml_error yerr = {0};
    if (ev_yaml_load_file(path, &doc, &yerr) != EV_YAML_OK)
        return ev_fail_yaml(err, &yerr);
    int rc = parse_model_doc(doc, dir, m, weights_file, weights_size, err);
    ev_yaml_free(doc);
    return rc;
}

int ev_model_load(const char *path, ev_model **out, ev_error *err)
{
    *out = NULL;
    char yaml_path[PATH_MAX];
    int rc = ev_bundle_path(path, NULL, yaml_path, sizeof yaml_path, err);
    if (rc)
        return rc;
    ev_model *m = calloc(1, sizeof *m);
    if (!m)
        return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    char weights[PATH_MAX];
    ev_safetensors st = {0};
    rc = parse_model_yaml(yaml_path, m, weights, sizeof weights, err);
    if (rc)
        goto fail;
    if ((rc = ev_net_create(&m->cfg, 1, false, &m->net, err))) {
        ev_fail_prefix(err, "%s: ", yaml_path);
        goto fail;
    }
    if ((rc = ev_safetensors_read(weights, &st, err)))
        goto fail;
    if ((rc = ev_net_load_weights(m->net, &st, err))) {
        ev_fail_prefix(err, "%s: ", weights);
        goto fail;
    }
    ev_safetensors_free(&st);
    m->params = ev_net_count_params(m->net);
    m->macs = ev_net_count_macs(m->net);
    *out = m;
    return EV_OK;
fail:
    ev_safetensors_free(&st);
    ev_model_free(m);
    return rc;
}

void ev_model_free(ev_model *model)
{
    if (!model)
        return;
    free_classes(model);
    ev_net_free(model->net);
    free(model);
}

const char *ev_model_name(const ev_model *model) { return model->name; }
int ev_model_num_classes(const ev_model *model) { return model->num_classes; }

const char *ev_model_class_name(const ev_model *model, int index)
{
    return index >= 0 && index < model->num_classes ? model->class_names[index] : "unknown";
}

void ev_model_input_shape(const ev_model *model, int *width, int *height, int *channels)
{
    if (width)
        *width = model->input_width;
    if (height)
        *height = model->input_height;
    if (channels)
        *channels = model->input_channels;
}

int64_t ev_model_num_params(const ev_model *model) { return model->params; }
int64_t ev_model_num_macs(const ev_model *model) { return model->macs; }
float ev_model_temperature(const ev_model *model) { return model->temperature; }
float ev_model_confidence_threshold(const ev_model *model) { return model->confidence_threshold; }
const ev_net *ev_model_network(const ev_model *model) { return model->net; }

int ev_model_from_net(ev_net *net, const ev_model_info *info, ev_model **out, ev_error *err)
{
    *out = NULL;
    const ev_model_info none = {0};
    if (!info)
        info = &none;
    if (!net)
        return ev_fail(err, EV_ERR_INVALID, "model: no network");
    if (net->batch != 1) {
        ev_net_free(net);
        return ev_fail(err, EV_ERR_INVALID,
                       "model: the network has batch %d; a model holds batch 1", net->batch);
    }
    ev_model *m = calloc(1, sizeof *m);
    const int k = net->cfg.num_classes;
    if (!m || !(m->class_names = calloc((size_t)k, sizeof *m->class_names))) {
        free(m);
        ev_net_free(net);
        return ev_fail(err, EV_ERR_NOMEM, "model: out of memory");
    }
    m->net = net;
    m->num_classes = k;
    snprintf(m->name, sizeof m->name, "%s", info->name ? info->name : "memory");
    for (int i = 0; i < k; i++)
        if (!(m->class_names[i] =
                  strdup(info->class_names ? info->class_names[i] : ev_echo_views[i % 14]))) {
            ev_model_free(m);
            return ev_fail(err, EV_ERR_NOMEM, "model: out of memory");
        }
    m->cfg = net->cfg;
    m->input_width = net->cfg.input_width;
    m->input_height = net->cfg.input_height;
    m->input_channels = net->cfg.in_channels;
    m->scale = info->scale != 0.0f ? info->scale : 1.0f / 255.0f;
    m->normalize = info->normalize;
    m->temperature = info->temperature > 0.0f ? info->temperature : 1.0f;
    m->confidence_threshold = info->confidence_threshold;
    for (int c = 0; c < 3; c++) {
        m->mean[c] = info->mean[c];
        m->std[c] = info->std[c] != 0.0f ? info->std[c] : 1.0f;
    }
    m->params = ev_net_count_params(net);
    m->macs = ev_net_count_macs(net);
    *out = m;
    return EV_OK;
}

/* YAML double-quoted scalar for names that may hold ':' '/' '#' and the like */
static void yaml_quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int ev_model_save_bundle(const char *dir, const char *name, const ev_net *net,
                         char *const *class_names, float scale, const float *mean, const float *std,
                         ev_error *err)
{
    ev_model_info info = {.name = name, .class_names = class_names, .scale = scale};
    /* mean and std hold one value per input channel (1 or 3), not always 3 */
    const int channels = net->cfg.in_channels < 3 ? net->cfg.in_channels : 3;
    for (int c = 0; c < 3; c++) {
        info.mean[c] = mean && c < channels ? mean[c] : 0.0f;
        info.std[c] = std && c < channels ? std[c] : 1.0f;
    }
    return ev_model_write_bundle(dir, net, &info, err);
}

int ev_model_write_bundle(const char *dir, const ev_net *net, const ev_model_info *info,
                          ev_error *err)
{
    const ev_model_info none = {0};
    if (!info)
        info = &none;
    const char *name = info->name;
    if (!name) {
        name = strrchr(dir, '/');
        name = name && name[1] ? name + 1 : dir;
    }
    char *const *class_names = info->class_names;
    const float scale = info->scale != 0.0f ? info->scale : 1.0f / 255.0f;
    float mean[3], std[3];
    for (int c = 0; c < 3; c++) {
        mean[c] = info->mean[c];
        std[c] = info->std[c] != 0.0f ? info->std[c] : 1.0f;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    int rc = ev_net_save_weights(net, path, err);
    if (rc)
        return rc;
    const ev_net_config *cfg = &net->cfg;
    char *genotype = cfg->arch == EV_ARCH_DARTS ? ev_genotype_to_string(&cfg->genotype) : NULL;
    if (cfg->arch == EV_ARCH_DARTS && !genotype)
        return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/model.yaml", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(genotype);
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    fprintf(f, "name: ");
    yaml_quote(f, name);
    fprintf(f, "\nclasses: [");
    for (int i = 0; i < cfg->num_classes; i++) {
        fprintf(f, "%s", i ? ", " : "");
        yaml_quote(f, class_names ? class_names[i] : ev_echo_views[i % 14]);
    }
    fprintf(f, "]\ninput: {width: %d, height: %d, channels: %d}\n", cfg->input_width,
            cfg->input_height, cfg->in_channels);
    fprintf(f, "preprocess: {scale: %.17g, mean: [", (double)scale);
    for (int c = 0; c < cfg->in_channels; c++)
        fprintf(f, "%s%.9g", c ? ", " : "", (double)mean[c]);
    fprintf(f, "], std: [");
    for (int c = 0; c < cfg->in_channels; c++)
        fprintf(f, "%s%.9g", c ? ", " : "", (double)std[c]);
    fprintf(f, "]%s}\nnetwork:\n",
            info->normalize == EV_NORMALIZE_SECTOR ? ", normalize: sector" : "");
    if (cfg->arch != EV_ARCH_DARTS) {
        fprintf(f, "  arch: %s\n", ev_arch_name(cfg->arch));
    } else {
        fprintf(f, "  init_channels: %d\n  layout: [", cfg->init_channels);
        for (int i = 0; i < cfg->num_cells; i++)
            fprintf(f, "%s%s", i ? ", " : "", cfg->reduction[i] ? "reduce" : "normal");
        fprintf(f, "]\n  genotype: \"%s\"\n", genotype);
        if (cfg->auxiliary)
            fprintf(f, "  auxiliary: true\n");
    }
    fprintf(f, "weights: weights.safetensors\n");
    if (info->temperature > 0.0f)
        fprintf(f, "calibration: {temperature: %.9g, confidence_threshold: %.9g}\n",
                (double)info->temperature, (double)info->confidence_threshold);
    free(genotype);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return ev_fail(err, EV_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return EV_OK;
}

int ev_model_write_calibration(const char *bundle, float temperature, float confidence_threshold,
                               ev_error *err)
{
    if (!bundle || !(temperature > 0.0f) || !isfinite(temperature) ||
        !(confidence_threshold >= 0.0f && confidence_threshold < 1.0f))
        return ev_fail(err, EV_ERR_INVALID,
                       "calibration: temperature %g must be > 0 and the threshold %g in [0, 1)",
                       (double)temperature, (double)confidence_threshold);
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    int rc = ev_bundle_path(bundle, NULL, path, sizeof path, err);
    if (rc)
        return rc;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r");
    if (!in)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    /* copy every line but an old top-level calibration entry and its indented continuation */
    char line[4096];
    bool skipping = false, ok = true;
    while (fgets(line, sizeof line, in)) {
        if (!strchr(line, '\n') && !feof(in)) {
            ok = false; /* a line this long is not a model.yaml we wrote */
            break;
        }
        if (skipping && (line[0] == ' ' || line[0] == '\t'))
            continue;
        skipping = !strncmp(line, "calibration:", 12);
        if (!skipping)
            fputs(line, out);
    }
    fprintf(out, "calibration: {temperature: %.9g, confidence_threshold: %.9g}\n",
            (double)temperature, (double)confidence_threshold);
    fclose(in);
    if (fclose(out) != 0 || !ok || rename(tmp, path) != 0) {
        remove(tmp);
        return ev_fail(err, ok ? EV_ERR_IO : EV_ERR_FORMAT, "%s: %s", path,
                       ok ? "write failed" : "a line is longer than 4095 bytes");
    }
    return EV_OK;
}
