/* bridge_config.c: the bridge's YAML schema on the YAML reader (base/ev_yaml.h owns the rules:
 * limits, aliases, UTF-8, scalar types, unknown keys). Duplicate AE titles and a config that
 * would stream nothing are this schema's own errors; all name file:line:column. */
#include "bridge_config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "ev_yaml.h"

static gboolean get_string(ev_yaml_doc *doc, const ev_yaml_node *node, const gchar *key,
                           gchar **out)
{
    const gchar *s = ev_yaml_get_nonempty_string(doc, node, key);

    if (!s)
        return FALSE;
    g_free(*out);
    *out = g_strdup(s);
    return TRUE;
}

static gboolean get_uint(ev_yaml_doc *doc, const ev_yaml_node *node, const gchar *key, guint min,
                         guint max, guint *out)
{
    long v;

    if (!ev_yaml_get_int(doc, node, key, min, max, &v))
        return FALSE;
    *out = (guint)v;
    return TRUE;
}

static const gchar *const listen_keys[] = {"port",          "ae-title",         "acse-timeout",
                                           "dimse-timeout", "bind-address",     "max-associations",
                                           "idle-timeout",  "tls",              NULL};

static const gchar *const tls_keys[] = {"certificate", "key", "ca", "require-client-cert", NULL};

static bool handle_tls(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                       const ev_yaml_node *v, void *data)
{
    BridgeConfig *c = data;
    gchar **out = !strcmp(key, "certificate") ? &c->tls_certificate
                  : !strcmp(key, "key")       ? &c->tls_key
                  : !strcmp(key, "ca")        ? &c->tls_ca
                                              : NULL;

    if (!out) { /* require-client-cert */
        bool on;
        if (!ev_yaml_get_bool(doc, v, key, &on))
            return FALSE;
        c->tls_require_client_cert = on;
        return TRUE;
    }
    if (!get_string(doc, v, key, out))
        return FALSE;
    if (!g_path_is_absolute(*out)) {
        gchar *abs = g_build_filename(c->dir, *out, NULL);
        g_free(*out);
        *out = abs;
    }
    return TRUE;
}

static bool handle_listen(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                          const ev_yaml_node *v, void *data)
{
    BridgeConfig *c = data;

    if (!strcmp(key, "port"))
        return get_uint(doc, v, key, 1, 65535, &c->port);
    if (!strcmp(key, "ae-title")) {
        if (!get_string(doc, v, key, &c->ae_title))
            return FALSE;
        if (strlen(c->ae_title) > 16 || strchr(c->ae_title, '\\'))
            return ev_yaml_fail(doc, v, "'ae-title' must be at most 16 characters, without '\\'");
        return TRUE;
    }
    if (!strcmp(key, "acse-timeout"))
        return get_uint(doc, v, key, 1, 3600, &c->acse_timeout);
    if (!strcmp(key, "bind-address")) {
        struct in_addr a;
        if (!get_string(doc, v, key, &c->bind_address))
            return FALSE;
        if (inet_pton(AF_INET, c->bind_address, &a) != 1)
            return ev_yaml_fail(doc, v, "'bind-address' must be a numeric IPv4 address "
                                "(127.0.0.1, 0.0.0.0 for every interface), got '%s'",
                                c->bind_address);
        return TRUE;
    }
    if (!strcmp(key, "max-associations"))
        return get_uint(doc, v, key, 1, 64, &c->max_associations);
    if (!strcmp(key, "idle-timeout"))
        return get_uint(doc, v, key, 1, 3600, &c->idle_timeout);
    if (!strcmp(key, "tls")) {
        bool ok = ev_yaml_walk_mapping(doc, v, "'tls'", tls_keys, handle_tls, c);
        if (ok && (!c->tls_certificate || !c->tls_key))
            return ev_yaml_fail(doc, v, "'tls' needs 'certificate' and 'key' (PEM files)");
        if (ok && c->tls_require_client_cert && !c->tls_ca)
            return ev_yaml_fail(doc, v, "'require-client-cert' needs 'ca' (the PEM file of the "
                                "CAs that sign the scanners' certificates)");
        return ok;
    }
    return get_uint(doc, v, key, 1, 3600, &c->dimse_timeout); /* dimse-timeout */
}

static const gchar *const destination_keys[] = {"calling-ae", "host",       "port", "payload",
                                                "width",      "height",     "loop", "sdp",
                                                "encoding",   "raw-format", NULL};

static bool handle_destination(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                               const ev_yaml_node *v, void *data)
{
    BridgeDestination *d = data;
    const gchar *text;

    if (!strcmp(key, "calling-ae")) {
        if (!get_string(doc, v, key, &d->calling_ae))
            return FALSE;
        if (strlen(d->calling_ae) > 16)
            return ev_yaml_fail(doc, v, "'calling-ae' must be at most 16 characters");
        return TRUE;
    }
    if (!strcmp(key, "host"))
        return get_string(doc, v, key, &d->host);
    if (!strcmp(key, "port"))
        return get_uint(doc, v, key, 1, 65535, &d->port);
    if (!strcmp(key, "payload"))
        return get_uint(doc, v, key, 96, 127, &d->payload);
    if (!strcmp(key, "width"))
        return get_uint(doc, v, key, 16, 16384, &d->width);
    if (!strcmp(key, "height"))
        return get_uint(doc, v, key, 16, 16384, &d->height);
    if (!strcmp(key, "loop")) {
        bool loop;
        if (!ev_yaml_get_bool(doc, v, key, &loop))
            return FALSE;
        d->loop = loop;
        return TRUE;
    }
    if (!strcmp(key, "sdp"))
        return get_string(doc, v, key, &d->sdp);
    if (!(text = ev_yaml_get_nonempty_string(doc, v, key)))
        return FALSE;
    if (!strcmp(key, "encoding"))
        return bridge_encoding_parse(text, &d->encoding) ||
               ev_yaml_fail(doc, v, "'encoding' must be raw, h264 or jpeg, got '%s'", text);
    /* raw-format */
    if (strcmp(text, "rgb") && strcmp(text, "i420"))
        return ev_yaml_fail(doc, v, "'raw-format' must be rgb or i420, got '%s'", text);
    d->raw_i420 = !strcmp(text, "i420");
    return TRUE;
}

static void destination_free(gpointer data)
{
    BridgeDestination *d = data;

    g_free(d->calling_ae);
    g_free(d->host);
    g_free(d->sdp);
    g_free(d);
}

static gboolean parse_destinations(ev_yaml_doc *doc, BridgeConfig *c, const ev_yaml_node *node)
{
    if (ev_yaml_node_kind(node) != EV_YAML_SEQUENCE)
        return ev_yaml_fail(doc, node, "'destinations' must be a list");
    for (gsize i = 0; i < ev_yaml_length(node); i++) {
        const ev_yaml_node *v = ev_yaml_item(doc, node, i);
        BridgeDestination *d;

        if (!v)
            return FALSE;
        if (c->destinations->len >= BRIDGE_MAX_DESTINATIONS)
            return ev_yaml_fail(doc, v, "more than %d destinations", BRIDGE_MAX_DESTINATIONS);
        d = g_new0(BridgeDestination, 1);
        d->host = g_strdup("127.0.0.1");
        d->payload = 96;
        d->width = 800;
        d->height = 600;
        d->loop = TRUE;
        g_ptr_array_add(c->destinations, d);
        if (!ev_yaml_walk_mapping(doc, v, "a destination", destination_keys, handle_destination, d))
            return FALSE;
        if (!d->calling_ae || !d->port)
            return ev_yaml_fail(doc, v, "a destination needs 'calling-ae' and 'port'");
        for (guint j = 0; j + 1 < c->destinations->len; j++)
            if (!strcmp(((BridgeDestination *)g_ptr_array_index(c->destinations, j))->calling_ae,
                        d->calling_ae))
                return ev_yaml_fail(doc, v, "calling-ae '%s' has two destinations", d->calling_ae);
    }
    return TRUE;
}

static const gchar *const top_keys[] = {"listen", "spool", "spool-max-mb", "destinations", NULL};

static bool handle_top(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                       const ev_yaml_node *v, void *data)
{
    BridgeConfig *c = data;

    if (!strcmp(key, "listen"))
        return ev_yaml_walk_mapping(doc, v, "'listen'", listen_keys, handle_listen, c);
    if (!strcmp(key, "spool"))
        return get_string(doc, v, key, &c->spool);
    if (!strcmp(key, "spool-max-mb"))
        return get_uint(doc, v, key, 0, 1048576, &c->spool_max_mb);
    return parse_destinations(doc, c, v); /* destinations */
}

BridgeConfig *bridge_config_parse(const gchar *path, const gchar *text, gsize length,
                                  GError **error)
{
    ev_yaml_doc *doc = NULL;
    ev_yaml_error yaml_err = {0};
    BridgeConfig *c = g_new0(BridgeConfig, 1);
    gboolean ok = FALSE;

    c->port = 11112;
    c->ae_title = g_strdup("ECHOVIEW");
    c->spool = g_strdup("/var/spool/echoview-bridge");
    c->acse_timeout = 30;
    c->dimse_timeout = 30;
    c->bind_address = g_strdup("127.0.0.1");
    c->max_associations = 4;
    c->idle_timeout = 10;
    c->spool_max_mb = 2048;
    {
        gchar *abs = g_canonicalize_filename(path, NULL);
        c->dir = g_path_get_dirname(abs);
        g_free(abs);
    }
    c->destinations = g_ptr_array_new_with_free_func(destination_free);
    if (ev_yaml_load_text(text, length, path, &doc, &yaml_err) != EV_YAML_OK) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, yaml_err.message);
        goto out;
    }
    if (!ev_yaml_walk_mapping(doc, ev_yaml_root(doc), "the top level", top_keys, handle_top, c)) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                            ev_yaml_doc_error(doc)->message);
        goto out;
    }
    if (!c->destinations->len) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: no destinations: nothing would be streamed", path);
        goto out;
    }
    ok = TRUE;
out:
    ev_yaml_free(doc);
    if (!ok) {
        bridge_config_free(c);
        return NULL;
    }
    return c;
}

BridgeConfig *bridge_config_load(const gchar *path, GError **error)
{
    char *text = NULL;
    size_t length = 0;
    ev_yaml_error io = {0};
    BridgeConfig *c;

    if (ev_yaml_read_file(path, EV_YAML_MAX_BYTES, &text, &length, &io) != EV_YAML_OK) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, io.message);
        return NULL;
    }
    c = bridge_config_parse(path, text, length, error);
    free(text);
    return c;
}

void bridge_config_free(BridgeConfig *c)
{
    if (!c)
        return;
    g_free(c->ae_title);
    g_free(c->bind_address);
    g_free(c->spool);
    g_free(c->tls_certificate);
    g_free(c->tls_key);
    g_free(c->tls_ca);
    g_free(c->dir);
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
