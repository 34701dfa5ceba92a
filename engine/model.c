/* model.c: model bundles (model.yaml + weights.safetensors): parsing with file:line:column
 * errors, loading into a batch-1 reference network, and writing bundles for training output. */
#include "ev_private.h"
#include "ev_safetensors.h"
#include "yaml_util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const ev_echo_views[14] = {
    "A2CH",         "A3CH",          "A4CH-LV",   "A4CH-RV",      "A5CH",
    "Apical-LA/MV", "PLAX-TV",       "PLAX-full", "PLAX-valves",  "PSAX-AV",
    "PSAX-LV",      "Subcostal-IVC", "Subcostal", "Suprasternal",
};

static int read_text_file(const char *path, size_t limit, char **out, size_t *len, ev_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ev_fail(err, EV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(limit + 1);
    size_t n = buf ? fread(buf, 1, limit, f) : 0;
    bool more = buf && n == limit && fgetc(f) != EOF;
    bool bad = ferror(f);
    fclose(f);
    if (!buf)
        return ev_fail(err, EV_ERR_NOMEM, "%s: out of memory", path);
    if (more || bad) {
        free(buf);
        return more ? ev_fail(err, EV_ERR_FORMAT, "%s: larger than %zu bytes", path, limit)
                    : ev_fail(err, EV_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return EV_OK;
}

static int check_keys(yaml_document_t *doc, yaml_node_t *map, const char *source,
                      const char *section, const char *const *allowed, ev_error *err)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        const char *key = ev_yaml_scalar(k);
        bool ok = false;
        for (int i = 0; key && allowed[i]; i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char list[256] = "";
            for (int i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         allowed[i]);
            return ev_yaml_fail(err, source, k, "%sunknown key '%s' (expected one of: %s)", section,
                                key ? key : "?", list);
        }
    }
    return EV_OK;
}

static int parse_float_list(yaml_document_t *doc, yaml_node_t *node, const char *what,
                            const char *source, int count, float *out, ev_error *err)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return ev_yaml_fail(err, source, node, "%s must be a list", what);
    int n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    if (n != count && n != 1)
        return ev_yaml_fail(err, source, node, "%s has %d entries; the input has %d channels", what,
                            n, count);
    for (int i = 0; i < count; i++) {
        double v;
        yaml_node_t *item =
            yaml_document_get_node(doc, node->data.sequence.items.start[n == 1 ? 0 : i]);
        int rc = ev_yaml_float(item, what, source, &v, err);
        if (rc)
            return rc;
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

static int parse_network(yaml_document_t *doc, yaml_node_t *net, const char *source,
                         const char *dir, ev_model *m, ev_error *err)
{
    static const char *const keys[] = {"init_channels", "layout",        "layers",    "genotype",
                                       "genotype_file", "genotype_name", "auxiliary", NULL};
    if (net->type != YAML_MAPPING_NODE)
        return ev_yaml_fail(err, source, net, "network must be a mapping");
    int rc = check_keys(doc, net, source, "network: ", keys, err);
    if (rc)
        return rc;
    ev_net_config *cfg = &m->cfg;
    long v;
    yaml_node_t *n = ev_yaml_map_get(doc, net, "init_channels");
    if (!n)
        return ev_yaml_fail(err, source, net, "network: init_channels is missing");
    if ((rc = ev_yaml_int(n, "network: init_channels", source, 1, 4096, &v, err)))
        return rc;
    cfg->init_channels = (int)v;
    yaml_node_t *layout = ev_yaml_map_get(doc, net, "layout");
    yaml_node_t *layers = ev_yaml_map_get(doc, net, "layers");
    if (!!layout == !!layers)
        return ev_yaml_fail(err, source, net, "network: give exactly one of layout or layers");
    if (layers) {
        if ((rc = ev_yaml_int(layers, "network: layers", source, 1, EV_MAX_CELLS, &v, err)))
            return rc;
        cfg->num_cells = (int)v;
        ev_layout_from_layers(cfg->num_cells, cfg->reduction);
    } else {
        if (layout->type != YAML_SEQUENCE_NODE)
            return ev_yaml_fail(err, source, layout,
                                "network: layout must be a list of normal/reduce");
        cfg->num_cells = 0;
        for (yaml_node_item_t *it = layout->data.sequence.items.start;
             it < layout->data.sequence.items.top; it++) {
            yaml_node_t *c = yaml_document_get_node(doc, *it);
            const char *s = ev_yaml_scalar(c);
            if (cfg->num_cells >= EV_MAX_CELLS)
                return ev_yaml_fail(err, source, c, "network: layout longer than %d cells",
                                    EV_MAX_CELLS);
            if (s && (!strcmp(s, "normal") || !strcmp(s, "N")))
                cfg->reduction[cfg->num_cells++] = false;
            else if (s && (!strcmp(s, "reduce") || !strcmp(s, "reduction") || !strcmp(s, "R")))
                cfg->reduction[cfg->num_cells++] = true;
            else
                return ev_yaml_fail(err, source, c,
                                    "network: layout entry '%s' is not normal or reduce",
                                    s ? s : "?");
        }
        if (cfg->num_cells == 0)
            return ev_yaml_fail(err, source, layout, "network: layout is empty");
    }
    yaml_node_t *g = ev_yaml_map_get(doc, net, "genotype");
    yaml_node_t *gf = ev_yaml_map_get(doc, net, "genotype_file");
    if (!!g == !!gf)
        return ev_yaml_fail(err, source, net,
                            "network: give exactly one of genotype or genotype_file");
    if (g) {
        if ((rc = ev_genotype_from_yaml_node(doc, g, source, &cfg->genotype, err)))
            return rc;
    } else {
        const char *file = ev_yaml_scalar(gf);
        if (!file || !*file)
            return ev_yaml_fail(err, source, gf, "network: genotype_file must be a path");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s%s%s", file[0] == '/' ? "" : dir, file[0] == '/' ? "" : "/",
                 file);
        if ((rc = ev_genotype_load_file(path, &cfg->genotype, err)))
            return rc;
    }
    yaml_node_t *aux = ev_yaml_map_get(doc, net, "auxiliary");
    if (aux) {
        const char *s = ev_yaml_scalar(aux);
        if (!s || (strcmp(s, "true") && strcmp(s, "false")))
            return ev_yaml_fail(err, source, aux, "network: auxiliary must be true or false");
        cfg->auxiliary = strcmp(s, "true") == 0;
    }
    return EV_OK;
}

/* Parses model.yaml (path) into the model's fields (no weights). */
static int parse_model_yaml(const char *path, ev_model *m, char *weights_file, size_t weights_size,
                            ev_error *err)
{
    static const char *const top_keys[] = {"name",    "classes", "input",       "preprocess",
                                           "network", "weights", "description", "training",
                                           "metrics", NULL};
    static const char *const input_keys[] = {"width", "height", "channels", NULL};
    static const char *const pre_keys[] = {"scale", "mean", "std", NULL};
    char *text = NULL;
    size_t len = 0;
    int rc = read_text_file(path, 1 << 20, &text, &len, err);
    if (rc)
        return rc;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");

    yaml_document_t doc;
    if ((rc = ev_yaml_load(&doc, text, len, path, err))) {
        free(text);
        return rc;
    }
    free(text);
    yaml_node_t *root = yaml_document_get_root_node(&doc), *n;
    long v;
    if (!root || root->type != YAML_MAPPING_NODE) {
        rc = ev_yaml_fail(err, path, root, "model.yaml must be a mapping");
        goto out;
    }
    if ((rc = check_keys(&doc, root, path, "", top_keys, err)))
        goto out;
    n = ev_yaml_map_get(&doc, root, "name");
    snprintf(m->name, sizeof m->name, "%s", n && ev_yaml_scalar(n) ? ev_yaml_scalar(n) : "unnamed");

    /* classes: default the 14 echo views */
    n = ev_yaml_map_get(&doc, root, "classes");
    if (n && n->type != YAML_SEQUENCE_NODE) {
        rc = ev_yaml_fail(err, path, n, "classes must be a list of names");
        goto out;
    }
    int count = n ? (int)(n->data.sequence.items.top - n->data.sequence.items.start) : 14;
    if (count < 1 || count > EV_MAX_CLASSES) {
        rc = ev_yaml_fail(err, path, n, "classes: %d entries; need 1..%d", count, EV_MAX_CLASSES);
        goto out;
    }
    m->class_names = calloc((size_t)count, sizeof *m->class_names);
    if (!m->class_names) {
        rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
        goto out;
    }
    m->num_classes = count;
    for (int i = 0; i < count; i++) {
        const char *s = ev_echo_views[i % 14];
        if (n) {
            yaml_node_t *c = yaml_document_get_node(&doc, n->data.sequence.items.start[i]);
            s = ev_yaml_scalar(c);
            if (!s || !*s) {
                rc = ev_yaml_fail(err, path, c, "classes: entry %d is not a name", i);
                goto out;
            }
            for (int j = 0; j < i; j++)
                if (strcmp(m->class_names[j], s) == 0) {
                    rc = ev_yaml_fail(err, path, c, "classes: '%s' appears twice", s);
                    goto out;
                }
        }
        if (!(m->class_names[i] = strdup(s))) {
            rc = ev_fail(err, EV_ERR_NOMEM, "out of memory");
            goto out;
        }
    }

    n = ev_yaml_map_get(&doc, root, "input");
    if (!n || n->type != YAML_MAPPING_NODE) {
        rc = ev_yaml_fail(err, path, n ? n : root, "input: {width, height, channels} is missing");
        goto out;
    }
    if ((rc = check_keys(&doc, n, path, "input: ", input_keys, err)))
        goto out;
    const char *dims[3] = {"width", "height", "channels"};
    int *fields[3] = {&m->input_width, &m->input_height, &m->input_channels};
    for (int i = 0; i < 3; i++) {
        yaml_node_t *d = ev_yaml_map_get(&doc, n, dims[i]);
        char what[32];
        snprintf(what, sizeof what, "input: %s", dims[i]);
        if (!d) {
            rc = ev_yaml_fail(err, path, n, "%s is missing", what);
            goto out;
        }
        if ((rc = ev_yaml_int(d, what, path, 1, i == 2 ? 3 : 4096, &v, err)))
            goto out;
        *fields[i] = (int)v;
    }
    if (m->input_channels == 2) {
        rc = ev_yaml_fail(err, path, n, "input: channels must be 1 (gray) or 3 (RGB)");
        goto out;
    }

    m->scale = 1.0f / 255.0f;
    for (int c = 0; c < 3; c++) {
        m->mean[c] = 0.0f;
        m->std[c] = 1.0f;
    }
    n = ev_yaml_map_get(&doc, root, "preprocess");
    if (n) {
        if (n->type != YAML_MAPPING_NODE) {
            rc = ev_yaml_fail(err, path, n, "preprocess must be a mapping");
            goto out;
        }
        if ((rc = check_keys(&doc, n, path, "preprocess: ", pre_keys, err)))
            goto out;
        yaml_node_t *s = ev_yaml_map_get(&doc, n, "scale");
        double d;
        if (s) {
            if ((rc = ev_yaml_float(s, "preprocess: scale", path, &d, err)))
                goto out;
            m->scale = (float)d;
        }
        yaml_node_t *mean = ev_yaml_map_get(&doc, n, "mean"),
                    *std = ev_yaml_map_get(&doc, n, "std");
        if (mean && (rc = parse_float_list(&doc, mean, "preprocess: mean", path, m->input_channels,
                                           m->mean, err)))
            goto out;
        if (std && (rc = parse_float_list(&doc, std, "preprocess: std", path, m->input_channels,
                                          m->std, err)))
            goto out;
        for (int c = 0; c < m->input_channels; c++)
            if (!(m->std[c] > 0.0f)) {
                rc = ev_yaml_fail(err, path, std, "preprocess: std must be positive");
                goto out;
            }
    }

    n = ev_yaml_map_get(&doc, root, "network");
    if (!n) {
        rc = ev_yaml_fail(err, path, root, "network is missing");
        goto out;
    }
    if ((rc = parse_network(&doc, n, path, dir, m, err)))
        goto out;
    m->cfg.in_channels = m->input_channels;
    m->cfg.num_classes = m->num_classes;
    m->cfg.input_width = m->input_width;
    m->cfg.input_height = m->input_height;

    n = ev_yaml_map_get(&doc, root, "weights");
    const char *wf = n ? ev_yaml_scalar(n) : "weights.safetensors";
    if (!wf || !*wf) {
        rc = ev_yaml_fail(err, path, n, "weights must be a file name");
        goto out;
    }
    if (weights_file) {
        int w = snprintf(weights_file, weights_size, "%s%s%s", wf[0] == '/' ? "" : dir,
                         wf[0] == '/' ? "" : "/", wf);
        if (w < 0 || (size_t)w >= weights_size) {
            rc = ev_yaml_fail(err, path, n, "weights path too long");
            goto out;
        }
    }
out:
    yaml_document_delete(&doc);
    return rc;
}

int ev_model_load(const char *path, ev_model **out, ev_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return ev_fail(err, EV_ERR_INVALID, "no model path given");
    char yaml_path[PATH_MAX];
    struct stat sb;
    if (stat(path, &sb) != 0)
        return ev_fail(err, EV_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        snprintf(yaml_path, sizeof yaml_path, "%s/model.yaml", path);
    else
        snprintf(yaml_path, sizeof yaml_path, "%s", path);
    ev_model *m = calloc(1, sizeof *m);
    if (!m)
        return ev_fail(err, EV_ERR_NOMEM, "out of memory");
    char weights[PATH_MAX];
    ev_safetensors st = {0};
    int rc = parse_model_yaml(yaml_path, m, weights, sizeof weights, err);
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
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return ev_fail(err, EV_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    int rc = ev_net_save_weights(net, path, err);
    if (rc)
        return rc;
    const ev_net_config *cfg = &net->cfg;
    char *genotype = ev_genotype_to_string(&cfg->genotype);
    if (!genotype)
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
    fprintf(f, "]}\nnetwork:\n  init_channels: %d\n  layout: [", cfg->init_channels);
    for (int i = 0; i < cfg->num_cells; i++)
        fprintf(f, "%s%s", i ? ", " : "", cfg->reduction[i] ? "reduce" : "normal");
    fprintf(f, "]\n  genotype: \"%s\"\n", genotype);
    if (cfg->auxiliary)
        fprintf(f, "  auxiliary: true\n");
    fprintf(f, "weights: weights.safetensors\n");
    free(genotype);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return ev_fail(err, EV_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return EV_OK;
}
