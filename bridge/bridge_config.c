/* bridge_config.c: the bridge's YAML schema on libyaml's document API. Unknown keys, aliases,
 * duplicate AE titles and out-of-range numbers are errors with file:line:column. */
#include "bridge_config.h"

#include <string.h>
#include <yaml.h>

#define MAX_NODES 10000

typedef struct {
    const gchar *path;
    yaml_document_t *doc;
    guint8 *visited;
    gsize n_nodes;
    GError **error;
} Parser;

static gboolean fail_at(Parser *p, const yaml_node_t *node, const gchar *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static gboolean fail_at(Parser *p, const yaml_node_t *node, const gchar *fmt, ...)
{
    va_list ap;
    gchar *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(p->error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s:%zu:%zu: %s", p->path,
                node ? node->start_mark.line + 1 : 0, node ? node->start_mark.column + 1 : 0, msg);
    g_free(msg);
    return FALSE;
}

/* Each node is reached once: a second visit is an alias, refused (billion laughs). */
static yaml_node_t *node_get(Parser *p, const yaml_node_t *parent, int index)
{
    yaml_node_t *node = yaml_document_get_node(p->doc, index);

    if (!node || index < 1 || (gsize)index > p->n_nodes) {
        fail_at(p, parent, "malformed document");
        return NULL;
    }
    if (p->visited[index - 1]) {
        fail_at(p, node, "aliases are not supported");
        return NULL;
    }
    p->visited[index - 1] = 1;
    return node;
}

static gboolean get_string(Parser *p, const yaml_node_t *node, const gchar *key, gchar **out)
{
    const gchar *s;

    if (node->type != YAML_SCALAR_NODE)
        return fail_at(p, node, "'%s' must be a string", key);
    s = (const gchar *)node->data.scalar.value;
    if (node->data.scalar.length != strlen(s) || !*s)
        return fail_at(p, node, "'%s' must be a non-empty string without NUL bytes", key);
    for (const gchar *c = s; *c; c++)
        if ((guchar)*c < 0x20 || *c == 0x7f)
            return fail_at(p, node, "'%s' contains a control character", key);
    g_free(*out);
    *out = g_strdup(s);
    return TRUE;
}

static gboolean get_uint(Parser *p, const yaml_node_t *node, const gchar *key, guint min, guint max,
                         guint *out)
{
    guint64 v;
    const gchar *s;

    if (node->type != YAML_SCALAR_NODE)
        return fail_at(p, node, "'%s' must be a number", key);
    s = (const gchar *)node->data.scalar.value;
    if (!g_ascii_string_to_unsigned(s, 10, min, max, &v, NULL))
        return fail_at(p, node, "'%s' must be an integer in %u..%u, got '%s'", key, min, max, s);
    *out = (guint)v;
    return TRUE;
}

static gboolean get_bool(Parser *p, const yaml_node_t *node, const gchar *key, gboolean *out)
{
    const gchar *s = node->type == YAML_SCALAR_NODE ? (const gchar *)node->data.scalar.value : "";

    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))
        *out = TRUE;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))
        *out = FALSE;
    else
        return fail_at(p, node, "'%s' must be true or false", key);
    return TRUE;
}

typedef gboolean (*KeyHandler)(Parser *p, const gchar *key, yaml_node_t *value, gpointer data);

static gboolean walk_mapping(Parser *p, yaml_node_t *node, const gchar *what, KeyHandler handle,
                             gpointer data)
{
    GHashTable *seen;
    gboolean ok = TRUE;

    if (node->type != YAML_MAPPING_NODE)
        return fail_at(p, node, "%s must be a mapping", what);
    seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         ok && pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = node_get(p, node, pair->key);
        yaml_node_t *v = k ? node_get(p, node, pair->value) : NULL;
        const gchar *key;

        if (!v) {
            ok = FALSE;
            break;
        }
        if (k->type != YAML_SCALAR_NODE) {
            ok = fail_at(p, k, "keys of %s must be strings", what);
            break;
        }
        key = (const gchar *)k->data.scalar.value;
        if (!g_hash_table_add(seen, (gpointer)key)) {
            ok = fail_at(p, k, "duplicate key '%s' in %s", key, what);
            break;
        }
        if (!handle(p, key, v, data)) {
            if (p->error && !*p->error)
                fail_at(p, k, "unknown key '%s' in %s", key, what);
            ok = FALSE;
        }
    }
    g_hash_table_unref(seen);
    return ok;
}

static gboolean handle_listen(Parser *p, const gchar *key, yaml_node_t *v, gpointer data)
{
    BridgeConfig *c = data;

    if (!strcmp(key, "port"))
        return get_uint(p, v, key, 1, 65535, &c->port);
    if (!strcmp(key, "ae-title")) {
        if (!get_string(p, v, key, &c->ae_title))
            return FALSE;
        if (strlen(c->ae_title) > 16 || strchr(c->ae_title, '\\'))
            return fail_at(p, v, "'ae-title' must be at most 16 characters, without '\\'");
        return TRUE;
    }
    if (!strcmp(key, "acse-timeout"))
        return get_uint(p, v, key, 1, 3600, &c->acse_timeout);
    if (!strcmp(key, "dimse-timeout"))
        return get_uint(p, v, key, 1, 3600, &c->dimse_timeout);
    return FALSE;
}

static gboolean handle_destination(Parser *p, const gchar *key, yaml_node_t *v, gpointer data)
{
    BridgeDestination *d = data;
    gchar *text = NULL;
    gboolean ok;

    if (!strcmp(key, "calling-ae")) {
        if (!get_string(p, v, key, &d->calling_ae))
            return FALSE;
        if (strlen(d->calling_ae) > 16)
            return fail_at(p, v, "'calling-ae' must be at most 16 characters");
        return TRUE;
    }
    if (!strcmp(key, "host"))
        return get_string(p, v, key, &d->host);
    if (!strcmp(key, "port"))
        return get_uint(p, v, key, 1, 65535, &d->port);
    if (!strcmp(key, "payload"))
        return get_uint(p, v, key, 96, 127, &d->payload);
    if (!strcmp(key, "width"))
        return get_uint(p, v, key, 16, 16384, &d->width);
    if (!strcmp(key, "height"))
        return get_uint(p, v, key, 16, 16384, &d->height);
    if (!strcmp(key, "loop"))
        return get_bool(p, v, key, &d->loop);
    if (!strcmp(key, "sdp"))
        return get_string(p, v, key, &d->sdp);
    if (!strcmp(key, "encoding")) {
        ok = get_string(p, v, key, &text) &&
             (bridge_encoding_parse(text, &d->encoding) ||
              fail_at(p, v, "'encoding' must be raw, h264 or jpeg, got '%s'", text));
        g_free(text);
        return ok;
    }
    if (!strcmp(key, "raw-format")) {
        ok = get_string(p, v, key, &text) &&
             ((!strcmp(text, "rgb") || !strcmp(text, "i420")) ||
              fail_at(p, v, "'raw-format' must be rgb or i420, got '%s'", text));
        if (ok)
            d->raw_i420 = !strcmp(text, "i420");
        g_free(text);
        return ok;
    }
    return FALSE;
}

static void destination_free(gpointer data)
{
    BridgeDestination *d = data;

    g_free(d->calling_ae);
    g_free(d->host);
    g_free(d->sdp);
    g_free(d);
}

static gboolean parse_destinations(Parser *p, BridgeConfig *c, yaml_node_t *node)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return fail_at(p, node, "'destinations' must be a list");
    for (yaml_node_item_t *item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++) {
        yaml_node_t *v = node_get(p, node, *item);
        BridgeDestination *d;

        if (!v)
            return FALSE;
        if (c->destinations->len >= BRIDGE_MAX_DESTINATIONS)
            return fail_at(p, v, "more than %d destinations", BRIDGE_MAX_DESTINATIONS);
        d = g_new0(BridgeDestination, 1);
        d->host = g_strdup("127.0.0.1");
        d->payload = 96;
        d->width = 800;
        d->height = 600;
        d->loop = TRUE;
        g_ptr_array_add(c->destinations, d);
        if (!walk_mapping(p, v, "a destination", handle_destination, d))
            return FALSE;
        if (!d->calling_ae || !d->port)
            return fail_at(p, v, "a destination needs 'calling-ae' and 'port'");
        for (guint i = 0; i + 1 < c->destinations->len; i++)
            if (!strcmp(((BridgeDestination *)g_ptr_array_index(c->destinations, i))->calling_ae,
                        d->calling_ae))
                return fail_at(p, v, "calling-ae '%s' has two destinations", d->calling_ae);
    }
    return TRUE;
}

static gboolean handle_top(Parser *p, const gchar *key, yaml_node_t *v, gpointer data)
{
    BridgeConfig *c = data;

    if (!strcmp(key, "listen"))
        return walk_mapping(p, v, "'listen'", handle_listen, c);
    if (!strcmp(key, "spool"))
        return get_string(p, v, key, &c->spool);
    if (!strcmp(key, "destinations"))
        return parse_destinations(p, c, v);
    return FALSE;
}

BridgeConfig *bridge_config_parse(const gchar *path, const gchar *text, gsize length,
                                  GError **error)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    gboolean parser_ok = FALSE, doc_ok = FALSE, ok = FALSE;
    Parser p = {0};
    BridgeConfig *c = g_new0(BridgeConfig, 1);
    yaml_node_t *root;

    c->port = 11112;
    c->ae_title = g_strdup("ECHOVIEW");
    c->spool = g_strdup("/var/spool/echoview-bridge");
    c->acse_timeout = 30;
    c->dimse_timeout = 30;
    c->destinations = g_ptr_array_new_with_free_func(destination_free);
    p.path = path;
    p.error = error;
    if (length > BRIDGE_CONFIG_MAX_BYTES) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: larger than %d bytes", path,
                    BRIDGE_CONFIG_MAX_BYTES);
        goto out;
    }
    if (!yaml_parser_initialize(&parser))
        goto out;
    parser_ok = TRUE;
    yaml_parser_set_input_string(&parser, (const guchar *)text, length);
    if (!yaml_parser_load(&parser, &doc)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s:%zu:%zu: %s", path,
                    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "syntax error");
        goto out;
    }
    doc_ok = TRUE;
    p.doc = &doc;
    p.n_nodes = (gsize)(doc.nodes.top - doc.nodes.start);
    if (p.n_nodes > MAX_NODES) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: too many YAML nodes", path);
        goto out;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s:1:1: the file is empty", path);
        goto out;
    }
    p.visited = g_malloc0(p.n_nodes + 1);
    p.visited[0] = 1;
    if (!walk_mapping(&p, root, "the top level", handle_top, c))
        goto out;
    if (!c->destinations->len) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: no destinations: nothing would be streamed", path);
        goto out;
    }
    ok = TRUE;
out:
    g_free(p.visited);
    if (doc_ok)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (!ok) {
        if (error && !*error)
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "%s: out of memory", path);
        bridge_config_free(c);
        return NULL;
    }
    return c;
}

BridgeConfig *bridge_config_load(const gchar *path, GError **error)
{
    gchar *text = NULL;
    gsize length = 0;
    BridgeConfig *c;

    if (!g_file_get_contents(path, &text, &length, error))
        return NULL;
    c = bridge_config_parse(path, text, length, error);
    g_free(text);
    return c;
}

void bridge_config_free(BridgeConfig *c)
{
    if (!c)
        return;
    g_free(c->ae_title);
    g_free(c->spool);
    g_ptr_array_unref(c->destinations);
    g_free(c);
}

const BridgeDestination *bridge_config_route(const BridgeConfig *c, const gchar *calling_ae)
{
    const BridgeDestination *any = NULL;

    for (guint i = 0; i < c->destinations->len; i++) {
        const BridgeDestination *d = g_ptr_array_index(c->destinations, i);
        if (calling_ae && !strcmp(d->calling_ae, calling_ae))
            return d;
        if (!strcmp(d->calling_ae, "*"))
            any = d;
    }
    return any;
}
