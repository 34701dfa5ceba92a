/* evd_config.c: echoviewd's configuration schema on the YAML reader (base/ev_yaml.h owns the
 * rules: limits, aliases, UTF-8, scalar types, unknown keys): sections, defaults and
 * cross-field checks. What the configuration becomes in GStreamer is evd_pipeline.c's.
 * About 800 lines for one job: every key of conf/echoviewd.yaml is read here, next to its
 * default and range, so that the schema is in one place. */
#include "evd_config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "ev_shard.h"
#include "ev_yaml.h"

#define EVD_CONFIG_MAX_STREAMS 256
#define EVD_TOKEN_FILE_MAX_BYTES 65536

G_DEFINE_QUARK(evd - config - error - quark, evd_config_error)

typedef struct {
    ev_yaml_doc *doc;
    gchar *dir; /* relative paths are resolved against it */
} Parser;

/* Every failure is recorded in the document (the first one wins) and returns FALSE. */
#define fail_at(p, node, ...) ev_yaml_fail((p)->doc, (node), __VA_ARGS__)

static gboolean get_string(Parser *p, const ev_yaml_node *node, const gchar *key, gchar **out)
{
    const gchar *s = ev_yaml_get_string(p->doc, node, key);

    if (!s)
        return FALSE;
    g_free(*out);
    *out = g_strdup(s);
    return TRUE;
}

static gboolean get_nonempty_string(Parser *p, const ev_yaml_node *node, const gchar *key,
                                    gchar **out)
{
    const gchar *s = ev_yaml_get_nonempty_string(p->doc, node, key);

    if (!s)
        return FALSE;
    g_free(*out);
    *out = g_strdup(s);
    return TRUE;
}

static gboolean get_uint(Parser *p, const ev_yaml_node *node, const gchar *key, guint min,
                         guint max, guint *out)
{
    long v;

    if (!ev_yaml_get_int(p->doc, node, key, min, max, &v))
        return FALSE;
    *out = (guint)v;
    return TRUE;
}

/* Numbers have one syntax, decimal (base/ev_yaml.c refuses 0x10, 0x1p4, infinity). */
static gboolean get_double(Parser *p, const ev_yaml_node *node, const gchar *key, gdouble min,
                           gdouble max, gdouble *out)
{
    return ev_yaml_get_double(p->doc, node, key, min, max, out);
}

/* "10.1.2.3", "10.1.2.0/24", "fd00::/8": an address, or a prefix of one. */
static gboolean address_or_prefix_ok(const gchar *text)
{
    guchar buf[sizeof(struct in6_addr)];
    const gchar *slash = strchr(text, '/');
    gchar *address = g_strndup(text, slash ? (gsize)(slash - text) : strlen(text));
    gint family = inet_pton(AF_INET, address, buf) == 1    ? AF_INET
                  : inet_pton(AF_INET6, address, buf) == 1 ? AF_INET6
                                                           : 0;
    gboolean ok = family != 0;

    g_free(address);
    if (ok && slash) {
        gchar *end;
        guint64 bits = g_ascii_strtoull(slash + 1, &end, 10);
        ok = slash[1] && g_ascii_isdigit(slash[1]) && !*end &&
             bits <= (family == AF_INET ? 32u : 128u);
    }
    return ok;
}

/* A numeric IPv4 or IPv6 address, as the start binds it: no name is resolved, so
 * --check-config, a start and a reload read an address the same way. */
static gboolean get_address(Parser *p, const ev_yaml_node *node, const gchar *key, gboolean local,
                            gchar **out)
{
    guchar buf[sizeof(struct in6_addr)];

    if (!get_nonempty_string(p, node, key, out))
        return FALSE;
    if (inet_pton(AF_INET, *out, buf) == 1 || inet_pton(AF_INET6, *out, buf) == 1 ||
        (local && strcmp(*out, "localhost") == 0))
        return TRUE;
    return fail_at(p, node, "'%s' must be a numeric IPv4 or IPv6 address%s, not '%s'", key,
                   local ? " (or localhost)" : "", *out);
}

static gboolean get_bool(Parser *p, const ev_yaml_node *node, const gchar *key, gboolean *out)
{
    bool v;

    if (!ev_yaml_get_bool(p->doc, node, key, &v))
        return FALSE;
    *out = v;
    return TRUE;
}

static gchar *resolve_path(Parser *p, const gchar *path)
{
    if (g_path_is_absolute(path))
        return g_strdup(path);
    return g_build_filename(p->dir, path, NULL);
}

/* Handlers of one mapping's keys; walk() runs them through ev_yaml_walk_mapping, which has
 * already refused unknown keys (keys is the section's list), duplicates and aliases. */
typedef gboolean (*KeyHandler)(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                               const ev_yaml_node *value, gpointer data);

typedef struct {
    Parser *p;
    KeyHandler handle;
    gpointer data;
} WalkCtx;

static bool walk_pair(ev_yaml_doc *doc, const char *key, const ev_yaml_node *key_node,
                      const ev_yaml_node *value, void *data)
{
    WalkCtx *w = data;
    return w->handle(w->p, key, key_node, value, w->data);
}

static gboolean walk(Parser *p, const ev_yaml_node *node, const gchar *what,
                     const gchar *const *keys, KeyHandler handle, gpointer data)
{
    WalkCtx w = {p, handle, data};
    return ev_yaml_walk_mapping(p->doc, node, what, keys, walk_pair, &w);
}

/* ---- element properties ---------------------------------------------------------------- */

static void property_free(gpointer data)
{
    EvdProperty *prop = data;

    g_free(prop->name);
    g_free(prop->value);
    g_free(prop);
}

const EvdProperty *evd_properties_find(const GPtrArray *properties, const gchar *name)
{
    for (guint i = 0; properties && i < properties->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(properties, i);
        if (strcmp(prop->name, name) == 0)
            return prop;
    }
    return NULL;
}

static void properties_set(GPtrArray *properties, const gchar *name, const gchar *value, gint line,
                           gint column)
{
    EvdProperty *prop = (EvdProperty *)evd_properties_find(properties, name);

    if (!prop) {
        prop = g_new0(EvdProperty, 1);
        prop->name = g_strdup(name);
        g_ptr_array_add(properties, prop);
    }
    g_free(prop->value);
    prop->value = g_strdup(value);
    prop->line = line;
    prop->column = column;
}

typedef struct {
    GPtrArray *properties;
    const gchar *what;
    const gchar *const *reserved; /* names the daemon sets itself */
} PropertiesCtx;

static gboolean property_name_ok(const gchar *name)
{
    if (!g_ascii_isalpha(name[0]))
        return FALSE;
    for (const gchar *c = name; *c; c++)
        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_')
            return FALSE;
    return TRUE;
}

static gboolean handle_property(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                                const ev_yaml_node *value, gpointer data)
{
    PropertiesCtx *ctx = data;
    gchar *text = NULL;

    if (!property_name_ok(key))
        return fail_at(p, key_node, "'%s' is not a property name", key);
    for (guint i = 0; ctx->reserved && ctx->reserved[i]; i++)
        if (strcmp(key, ctx->reserved[i]) == 0)
            return fail_at(p, key_node, "'%s' is set by echoviewd and cannot be configured in %s",
                           key, ctx->what);
    if (ev_yaml_node_kind(value) != EV_YAML_SCALAR)
        return fail_at(p, value, "%s.%s must be a scalar", ctx->what, key);
    if (!get_string(p, value, key, &text))
        return FALSE;
    if (strcmp(key, "model-file") == 0) {
        gchar *resolved = resolve_path(p, text);
        g_free(text);
        text = resolved;
    }
    properties_set(ctx->properties, key, text, ev_yaml_node_line(value),
                   ev_yaml_node_column(value));
    g_free(text);
    return TRUE;
}

static const gchar *const classifier_reserved[] = {"name", "updates", "parent", NULL};
static const gchar *const phantom_reserved[] = {"name", "parent", NULL};

static gboolean parse_properties(Parser *p, const ev_yaml_node *node, const gchar *what,
                                 const gchar *const *reserved, GPtrArray *into)
{
    PropertiesCtx ctx = {into, what, reserved};

    if (ev_yaml_is_null(node))
        return TRUE;
    /* any name: GStreamer checks them against the element (evd_pipeline_validate) */
    return walk(p, node, what, NULL, handle_property, &ctx);
}

static GPtrArray *properties_new(void) { return g_ptr_array_new_with_free_func(property_free); }

static GPtrArray *properties_copy(const GPtrArray *from)
{
    GPtrArray *to = properties_new();

    for (guint i = 0; from && i < from->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(from, i);
        properties_set(to, prop->name, prop->value, prop->line, prop->column);
    }
    return to;
}

/* ---- sections ---------------------------------------------------------------------------- */

typedef struct {
    EvdConfig *config;
    GPtrArray *classifier_defaults;
} ConfigCtx;

/* A PEM file (certificate or key) for HTTPS or MQTT over TLS, read whole: a regular file of at
 * most 64 KiB. out (may be NULL) takes the text, path (may be NULL) the resolved file name. */
static gboolean read_pem_file(Parser *p, const ev_yaml_node *value, const gchar *key, gchar **out,
                              gchar **path)
{
    gchar *file = NULL, *resolved;
    char *contents = NULL;
    size_t len = 0;
    ev_yaml_error io = {0};
    gboolean ok = FALSE;

    if (!get_nonempty_string(p, value, key, &file))
        return FALSE;
    resolved = resolve_path(p, file);
    g_free(file);
    if (ev_yaml_read_file(resolved, EVD_TOKEN_FILE_MAX_BYTES, &contents, &len, &io) != EV_YAML_OK) {
        fail_at(p, value, "cannot read %s: %s", key, io.message);
        goto out;
    }
    if (memchr(contents, '\0', len) || !strstr(contents, "-----BEGIN ")) {
        fail_at(p, value, "%s %s is not a PEM file", key, resolved);
        goto out;
    }
    if (out) {
        g_free(*out);
        *out = g_strdup(contents);
    }
    if (path) {
        g_free(*path);
        *path = g_strdup(resolved);
    }
    ok = TRUE;
out:
    free(contents);
    g_free(resolved);
    return ok;
}

/* A secret (the API token, the broker password) read from a file, so that the configuration
 * itself can stay readable: one word of printable ASCII, surrounding white space stripped. */
static gboolean read_secret_file(Parser *p, const ev_yaml_node *value, const gchar *key,
                                 const gchar *noun, gchar **out)
{
    gchar *file = NULL, *resolved;
    char *contents = NULL;
    size_t len = 0;
    ev_yaml_error io = {0};
    gboolean ok = FALSE;

    if (!get_nonempty_string(p, value, key, &file))
        return FALSE;
    resolved = resolve_path(p, file);
    g_free(file);
    if (ev_yaml_read_file(resolved, EVD_TOKEN_FILE_MAX_BYTES, &contents, &len, &io) != EV_YAML_OK) {
        fail_at(p, value, "cannot read %s: %s", key, io.message);
        goto out;
    }
    if (memchr(contents, '\0', len)) {
        fail_at(p, value, "%s must hold printable ASCII without spaces", key);
        goto out;
    }
    g_strstrip(contents);
    if (contents[0] == '\0' || strlen(contents) > 4096) {
        fail_at(p, value, "%s must hold one %s of 1 to 4096 bytes", key, noun);
        goto out;
    }
    for (const gchar *s = contents; *s; s++)
        if (!g_ascii_isgraph(*s)) {
            fail_at(p, value, "%s must hold printable ASCII without spaces", key);
            goto out;
        }
    g_free(*out);
    *out = g_strdup(contents);
    ok = TRUE;
out:
    if (contents) /* a secret: not left in freed memory */
        memset(contents, 0, len);
    g_free(resolved);
    free(contents);
    return ok;
}

static const gchar *const http_keys[] = {"address",
                                         "port",
                                         "token",
                                         "token-file",
                                         "connection-limit",
                                         "connection-timeout",
                                         "request-size-limit",
                                         "event-clients",
                                         "connections-per-address",
                                         "header-timeout",
                                         "host-names",
                                         "tls-certificate",
                                         "tls-key",
                                         NULL};

static gboolean handle_http(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                            const ev_yaml_node *value, gpointer data)
{
    EvdConfig *c = data;

    if (strcmp(key, "address") == 0)
        return get_address(p, value, key, TRUE, &c->http_address);
    if (strcmp(key, "port") == 0)
        return get_uint(p, value, key, 0, 65535, &c->http_port);
    if (strcmp(key, "token") == 0) {
        if (ev_yaml_is_null(value)) {
            g_clear_pointer(&c->http_token, g_free);
            return TRUE;
        }
        if (!get_nonempty_string(p, value, key, &c->http_token))
            return FALSE;
        for (const gchar *s = c->http_token; *s; s++)
            if (!g_ascii_isgraph(*s))
                return fail_at(p, value, "'token' must be printable ASCII without spaces");
        return TRUE;
    }
    if (strcmp(key, "token-file") == 0)
        return read_secret_file(p, value, key, "token", &c->http_token);
    if (strcmp(key, "connection-limit") == 0)
        return get_uint(p, value, key, 1, 4096, &c->http_connection_limit);
    if (strcmp(key, "connection-timeout") == 0)
        return get_uint(p, value, key, 1, 3600, &c->http_connection_timeout);
    if (strcmp(key, "request-size-limit") == 0)
        return get_uint(p, value, key, 1024, 1024 * 1024, &c->http_request_size_limit);
    if (strcmp(key, "connections-per-address") == 0)
        return get_uint(p, value, key, 1, 4096, &c->http_connections_per_address);
    if (strcmp(key, "header-timeout") == 0)
        return get_uint(p, value, key, 1, 3600, &c->http_header_timeout);
    if (strcmp(key, "tls-certificate") == 0)
        return read_pem_file(p, value, key, &c->http_tls_certificate, NULL);
    if (strcmp(key, "tls-key") == 0)
        return read_pem_file(p, value, key, &c->http_tls_key, NULL);
    if (strcmp(key, "host-names") == 0) {
        GPtrArray *names = g_ptr_array_new();
        if (ev_yaml_node_kind(value) != EV_YAML_SEQUENCE) {
            g_ptr_array_free(names, TRUE);
            return fail_at(p, value, "host-names must be a list of host names");
        }
        for (gsize i = 0; i < ev_yaml_length(value); i++) {
            const ev_yaml_node *item = ev_yaml_item(p->doc, value, i);
            gchar *name = NULL;
            if (!item || !get_nonempty_string(p, item, "host-names", &name)) {
                g_ptr_array_free(names, TRUE);
                return FALSE;
            }
            for (const gchar *ch = name; *ch; ch++)
                if (!g_ascii_isalnum(*ch) && *ch != '-' && *ch != '.') {
                    gboolean ok = fail_at(p, item, "'%s' is not a host name", name);
                    g_free(name);
                    g_ptr_array_free(names, TRUE);
                    return ok;
                }
            g_ptr_array_add(names, g_ascii_strdown(name, -1));
            g_free(name);
        }
        g_ptr_array_add(names, NULL);
        g_strfreev(c->http_host_names);
        c->http_host_names = (gchar **)g_ptr_array_free(names, FALSE);
        return TRUE;
    }
    return get_uint(p, value, key, 1, 1024, &c->http_event_clients); /* event-clients */
}

static const gchar *const supervision_keys[] = {
    "stall-timeout",     "restart-delay", "restart-delay-max", "frozen-timeout",
    "frozen-difference", "max-loss",      "unknown-timeout",   "min-fps-ratio",
    "low-fps-timeout",   NULL};

static gboolean handle_supervision(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                                   const ev_yaml_node *value, gpointer data)
{
    EvdConfig *c = data;

    if (strcmp(key, "stall-timeout") == 0)
        return get_double(p, value, key, 0.1, 3600, &c->stall_timeout);
    if (strcmp(key, "restart-delay") == 0)
        return get_double(p, value, key, 0.05, 3600, &c->restart_delay);
    if (strcmp(key, "frozen-timeout") == 0)
        return get_double(p, value, key, 0, 3600, &c->frozen_timeout);
    if (strcmp(key, "frozen-difference") == 0)
        return get_double(p, value, key, 0, 255, &c->frozen_difference);
    if (strcmp(key, "max-loss") == 0)
        return get_double(p, value, key, 0, 1, &c->max_loss);
    if (strcmp(key, "unknown-timeout") == 0)
        return get_double(p, value, key, 0, 86400, &c->unknown_timeout);
    if (strcmp(key, "min-fps-ratio") == 0)
        return get_double(p, value, key, 0, 1, &c->min_fps_ratio);
    if (strcmp(key, "low-fps-timeout") == 0)
        return get_double(p, value, key, 0, 3600, &c->low_fps_timeout);
    return get_double(p, value, key, 0.05, 86400, &c->restart_delay_max); /* restart-delay-max */
}

static gboolean parse_source_type(Parser *p, const ev_yaml_node *value, EvdSourceType *out)
{
    static const struct {
        const gchar *name;
        EvdSourceType type;
    } types[] = {
        {"rtp-raw", EVD_SOURCE_RTP_RAW},   {"rtp-h264", EVD_SOURCE_RTP_H264},
        {"rtp-jpeg", EVD_SOURCE_RTP_JPEG}, {"sdp", EVD_SOURCE_SDP},
        {"uri", EVD_SOURCE_URI},           {"phantom", EVD_SOURCE_PHANTOM},
        {"pipeline", EVD_SOURCE_PIPELINE},
    };
    const gchar *s = ev_yaml_scalar(value);

    for (gsize i = 0; s && i < G_N_ELEMENTS(types); i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return TRUE;
        }
    return fail_at(p, value,
                   "source type must be one of rtp-raw, rtp-h264, rtp-jpeg, sdp, uri, "
                   "phantom, pipeline");
}

const gchar *evd_source_type_name(EvdSourceType type)
{
    static const gchar *names[] = {"rtp-raw", "rtp-h264", "rtp-jpeg", "sdp",
                                   "uri",     "phantom",  "pipeline"};
    return (guint)type < G_N_ELEMENTS(names) ? names[type] : "?";
}

/* Which source keys each type accepts. */
static gboolean source_key_allowed(EvdSourceType type, const gchar *key)
{
    gboolean rtp =
        type == EVD_SOURCE_RTP_RAW || type == EVD_SOURCE_RTP_H264 || type == EVD_SOURCE_RTP_JPEG;

    if (strcmp(key, "type") == 0)
        return TRUE;
    if (strcmp(key, "address") == 0 || strcmp(key, "port") == 0 || strcmp(key, "payload") == 0 ||
        strcmp(key, "allowed-senders") == 0 || strcmp(key, "ssrc") == 0)
        return rtp;
    if (strcmp(key, "jitter-latency") == 0)
        return rtp || type == EVD_SOURCE_SDP;
    if (strcmp(key, "sampling") == 0 || strcmp(key, "depth") == 0)
        return type == EVD_SOURCE_RTP_RAW;
    if (strcmp(key, "width") == 0 || strcmp(key, "height") == 0)
        return type == EVD_SOURCE_RTP_RAW || type == EVD_SOURCE_PHANTOM;
    if (strcmp(key, "framerate") == 0)
        return TRUE; /* phantom: its rate; every other source: the sender's, for the fps check */
    if (strcmp(key, "properties") == 0)
        return type == EVD_SOURCE_PHANTOM;
    if (strcmp(key, "location") == 0)
        return type == EVD_SOURCE_SDP;
    if (strcmp(key, "uri") == 0)
        return type == EVD_SOURCE_URI;
    if (strcmp(key, "pipeline") == 0)
        return type == EVD_SOURCE_PIPELINE;
    return FALSE;
}

static const gchar *const source_keys[] = {
    "type",       "address",  "port",  "payload",  "jitter-latency",
    "sampling",   "depth",    "width", "height",   "framerate",
    "properties", "location", "uri",   "pipeline", "allowed-senders", "ssrc", NULL};

static gboolean handle_source(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                              const ev_yaml_node *value, gpointer data)
{
    EvdSourceConfig *s = data;

    if (strcmp(key, "type") == 0)
        return TRUE; /* read before the walk */
    if (!source_key_allowed(s->type, key))
        return fail_at(p, key_node, "key '%s' does not apply to a source of type %s", key,
                       evd_source_type_name(s->type));
    if (strcmp(key, "address") == 0)
        return get_address(p, value, key, FALSE, &s->address);
    if (strcmp(key, "port") == 0) {
        s->port_line = ev_yaml_node_line(value);
        s->port_column = ev_yaml_node_column(value);
        return get_uint(p, value, key, 1, 65535, &s->port);
    }
    if (strcmp(key, "payload") == 0)
        return get_uint(p, value, key, 0, 127, &s->payload);
    if (strcmp(key, "ssrc") == 0) {
        long v;
        if (!ev_yaml_get_int(p->doc, value, key, 0, 4294967295L, &v))
            return FALSE;
        s->has_ssrc = TRUE;
        s->ssrc = (guint32)v;
        return TRUE;
    }
    if (strcmp(key, "allowed-senders") == 0) {
        if (ev_yaml_node_kind(value) != EV_YAML_SEQUENCE || ev_yaml_length(value) == 0)
            return fail_at(p, value, "allowed-senders must be a non-empty list of addresses");
        if (!s->allowed_senders)
            s->allowed_senders = g_ptr_array_new_with_free_func(g_free);
        for (gsize i = 0; i < ev_yaml_length(value); i++) {
            const ev_yaml_node *item = ev_yaml_item(p->doc, value, i);
            gchar *text = NULL;
            if (!item || !get_nonempty_string(p, item, "allowed-senders", &text))
                return FALSE;
            if (!address_or_prefix_ok(text)) {
                gboolean ok = fail_at(p, item,
                                      "'%s' is not a numeric address or prefix (10.1.2.3, "
                                      "10.1.2.0/24, fd00::/8)",
                                      text);
                g_free(text);
                return ok;
            }
            g_ptr_array_add(s->allowed_senders, text);
        }
        return TRUE;
    }
    if (strcmp(key, "jitter-latency") == 0)
        return get_uint(p, value, key, 0, 10000, &s->jitter_latency_ms);
    if (strcmp(key, "depth") == 0)
        return get_uint(p, value, key, 8, 16, &s->depth);
    if (strcmp(key, "width") == 0)
        return get_uint(p, value, key, 16, EVD_MAX_FRAME_SIDE, &s->width);
    if (strcmp(key, "height") == 0)
        return get_uint(p, value, key, 16, EVD_MAX_FRAME_SIDE, &s->height);
    if (strcmp(key, "framerate") == 0)
        return get_uint(p, value, key, 1, 1000, &s->framerate);
    if (strcmp(key, "sampling") == 0) {
        static const gchar *const samplings[] = {"YCbCr-4:2:0", "YCbCr-4:2:2", "YCbCr-4:4:4", "RGB",
                                                 "RGBA",        "BGR",         "BGRA",        NULL};
        if (!get_string(p, value, key, &s->sampling))
            return FALSE;
        if (!g_strv_contains(samplings, s->sampling))
            return fail_at(
                p, value,
                "sampling must be one of YCbCr-4:2:0, YCbCr-4:2:2, "
                "YCbCr-4:4:4, RGB, RGBA, BGR, BGRA (RFC 4175; grayscale is not payloadable)");
        return TRUE;
    }
    if (strcmp(key, "properties") == 0)
        return parse_properties(p, value, "source.properties", phantom_reserved, s->properties);
    if (strcmp(key, "location") == 0) {
        gchar *loc = NULL;
        if (!get_nonempty_string(p, value, key, &loc))
            return FALSE;
        g_free(s->location);
        s->location = resolve_path(p, loc);
        g_free(loc);
        return TRUE;
    }
    if (strcmp(key, "uri") == 0) {
        if (!get_nonempty_string(p, value, key, &s->uri))
            return FALSE;
        if (!g_uri_is_valid(s->uri, G_URI_FLAGS_NONE, NULL))
            return fail_at(p, value, "'%s' is not a valid URI", s->uri);
        return TRUE;
    }
    return get_nonempty_string(p, value, key, &s->pipeline); /* pipeline */
}

static gboolean parse_source(Parser *p, const ev_yaml_node *node, EvdSourceConfig *s)
{
    const ev_yaml_node *type_node;

    if (ev_yaml_node_kind(node) != EV_YAML_MAPPING)
        return fail_at(p, node, "source must be a mapping");
    /* The type decides which keys are valid, so read it first. */
    if (!(type_node = ev_yaml_lookup(p->doc, node, "type")))
        return ev_yaml_doc_error(p->doc)->code == EV_YAML_OK &&
               fail_at(p, node, "source needs a 'type'");
    if (!parse_source_type(p, type_node, &s->type))
        return FALSE;
    if (!walk(p, node, "source", source_keys, handle_source, s))
        return FALSE;

    switch (s->type) {
    case EVD_SOURCE_RTP_RAW:
        if (!s->width || !s->height)
            return fail_at(p, node,
                           "an rtp-raw source needs 'width' and 'height' (RFC 4175 carries "
                           "no frame size in band)");
        /* fallthrough */
    case EVD_SOURCE_RTP_H264:
    case EVD_SOURCE_RTP_JPEG:
        if (!s->port)
            return fail_at(p, node, "an %s source needs a 'port'", evd_source_type_name(s->type));
        break;
    case EVD_SOURCE_SDP:
        if (!s->location)
            return fail_at(p, node, "an sdp source needs a 'location'");
        break;
    case EVD_SOURCE_URI:
        if (!s->uri)
            return fail_at(p, node, "a uri source needs a 'uri'");
        break;
    case EVD_SOURCE_PIPELINE:
        if (!s->pipeline)
            return fail_at(p, node, "a pipeline source needs a 'pipeline'");
        break;
    case EVD_SOURCE_PHANTOM:
        break;
    }
    return TRUE;
}

typedef struct {
    ConfigCtx *cc;
    EvdStreamConfig *stream;
    gboolean has_source;
} StreamCtx;

static gboolean id_ok(const gchar *id)
{
    gsize n = strlen(id);

    if (n == 0 || n > 64)
        return FALSE;
    for (const gchar *c = id; *c; c++)
        if (!g_ascii_isalnum(*c) && *c != '-' && *c != '_' && *c != '.')
            return FALSE;
    return TRUE;
}

static const gchar *const stream_keys[] = {"id",         "enabled", "stall-timeout",
                                           "frozen-timeout", "source", "classifier", NULL};

static gboolean handle_stream(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                              const ev_yaml_node *value, gpointer data)
{
    StreamCtx *ctx = data;
    EvdStreamConfig *s = ctx->stream;

    if (strcmp(key, "id") == 0) {
        if (!get_nonempty_string(p, value, key, &s->id))
            return FALSE;
        if (!id_ok(s->id))
            return fail_at(p, value, "stream id '%s' must be 1 to 64 of [A-Za-z0-9._-]", s->id);
        return TRUE;
    }
    if (strcmp(key, "enabled") == 0)
        return get_bool(p, value, key, &s->enabled);
    if (strcmp(key, "stall-timeout") == 0)
        return get_double(p, value, key, 0.1, 3600, &s->stall_timeout);
    if (strcmp(key, "frozen-timeout") == 0)
        return get_double(p, value, key, 0, 3600, &s->frozen_timeout);
    if (strcmp(key, "source") == 0) {
        ctx->has_source = TRUE;
        return parse_source(p, value, &s->source);
    }
    return parse_properties(p, value, "classifier", classifier_reserved, s->classifier);
}

static void source_clear(EvdSourceConfig *s)
{
    g_free(s->address);
    g_free(s->sampling);
    g_free(s->location);
    g_free(s->uri);
    g_free(s->pipeline);
    if (s->properties)
        g_ptr_array_unref(s->properties);
    if (s->allowed_senders)
        g_ptr_array_unref(s->allowed_senders);
}

static void stream_free(gpointer data)
{
    EvdStreamConfig *s = data;

    g_free(s->id);
    source_clear(&s->source);
    if (s->classifier)
        g_ptr_array_unref(s->classifier);
    g_free(s);
}

static void sender_free(gpointer data)
{
    EvdSenderConfig *s = data;

    g_free(s->id);
    g_free(s->host);
    g_free(s->format);
    if (s->properties)
        g_ptr_array_unref(s->properties);
    g_free(s);
}

static gboolean parse_streams(Parser *p, const ev_yaml_node *node, ConfigCtx *cc)
{
    EvdConfig *c = cc->config;

    if (ev_yaml_is_null(node))
        return TRUE;
    if (ev_yaml_node_kind(node) != EV_YAML_SEQUENCE)
        return fail_at(p, node, "streams must be a list");
    for (gsize i = 0; i < ev_yaml_length(node); i++) {
        const ev_yaml_node *entry = ev_yaml_item(p->doc, node, i);
        StreamCtx ctx = {cc, NULL, FALSE};
        EvdStreamConfig *s;

        if (!entry)
            return FALSE;
        if (c->streams->len >= EVD_CONFIG_MAX_STREAMS)
            return fail_at(p, entry, "at most %d streams", EVD_CONFIG_MAX_STREAMS);
        s = g_new0(EvdStreamConfig, 1);
        s->enabled = TRUE;
        s->stall_timeout = -1;
        s->frozen_timeout = -1;
        s->source.properties = properties_new();
        s->source.jitter_latency_ms = 50;
        s->source.payload = 96;
        s->source.depth = 8;
        s->source.address = g_strdup("127.0.0.1");
        s->source.sampling = g_strdup("YCbCr-4:2:0");
        s->classifier = properties_new();
        s->line = ev_yaml_node_line(entry);
        s->column = ev_yaml_node_column(entry);
        g_ptr_array_add(c->streams, s);
        ctx.stream = s;
        if (!walk(p, entry, "stream", stream_keys, handle_stream, &ctx))
            return FALSE;
        if (!s->id)
            return fail_at(p, entry, "stream needs an 'id'");
        if (!ctx.has_source)
            return fail_at(p, entry, "stream '%s' needs a 'source'", s->id);
        for (guint j = 0; j + 1 < c->streams->len; j++)
            if (strcmp(((EvdStreamConfig *)g_ptr_array_index(c->streams, j))->id, s->id) == 0)
                return fail_at(p, entry, "duplicate stream id '%s'", s->id);
    }
    return TRUE;
}

static const gchar *const sender_keys[] = {"id",     "host",      "port",   "payload",    "width",
                                           "height", "framerate", "format", "properties", NULL};

static gboolean handle_sender(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                              const ev_yaml_node *value, gpointer data)
{
    EvdSenderConfig *s = data;

    if (strcmp(key, "id") == 0) {
        if (!get_nonempty_string(p, value, key, &s->id))
            return FALSE;
        if (!id_ok(s->id))
            return fail_at(p, value, "sender id '%s' must be 1 to 64 of [A-Za-z0-9._-]", s->id);
        return TRUE;
    }
    if (strcmp(key, "host") == 0)
        return get_address(p, value, key, FALSE, &s->host);
    if (strcmp(key, "port") == 0)
        return get_uint(p, value, key, 1, 65535, &s->port);
    if (strcmp(key, "payload") == 0)
        return get_uint(p, value, key, 0, 127, &s->payload);
    if (strcmp(key, "width") == 0)
        return get_uint(p, value, key, 16, EVD_MAX_FRAME_SIDE, &s->width);
    if (strcmp(key, "height") == 0)
        return get_uint(p, value, key, 16, EVD_MAX_FRAME_SIDE, &s->height);
    if (strcmp(key, "framerate") == 0)
        return get_uint(p, value, key, 1, 240, &s->framerate);
    if (strcmp(key, "format") == 0) {
        if (!get_string(p, value, key, &s->format))
            return FALSE;
        if (strcmp(s->format, "I420") != 0 && strcmp(s->format, "RGB") != 0)
            return fail_at(p, value,
                           "format must be I420 or RGB (grayscale is not payloadable in "
                           "RFC 4175)");
        return TRUE;
    }
    return parse_properties(p, value, "simulate.properties", phantom_reserved, s->properties);
}

static gboolean parse_senders(Parser *p, const ev_yaml_node *node, EvdConfig *c)
{
    if (ev_yaml_is_null(node))
        return TRUE;
    if (ev_yaml_node_kind(node) != EV_YAML_SEQUENCE)
        return fail_at(p, node, "simulate must be a list");
    for (gsize i = 0; i < ev_yaml_length(node); i++) {
        const ev_yaml_node *entry = ev_yaml_item(p->doc, node, i);
        EvdSenderConfig *s;

        if (!entry)
            return FALSE;
        if (c->senders->len >= EVD_CONFIG_MAX_STREAMS)
            return fail_at(p, entry, "at most %d senders", EVD_CONFIG_MAX_STREAMS);
        s = g_new0(EvdSenderConfig, 1);
        s->host = g_strdup("127.0.0.1");
        s->payload = 96;
        s->width = 800;
        s->height = 600;
        s->framerate = 30;
        s->format = g_strdup("I420");
        s->properties = properties_new();
        s->line = ev_yaml_node_line(entry);
        s->column = ev_yaml_node_column(entry);
        g_ptr_array_add(c->senders, s);
        if (!walk(p, entry, "simulate entry", sender_keys, handle_sender, s))
            return FALSE;
        if (!s->id)
            return fail_at(p, entry, "simulate entry needs an 'id'");
        if (!s->port)
            return fail_at(p, entry, "simulate entry '%s' needs a 'port'", s->id);
        for (guint j = 0; j + 1 < c->senders->len; j++)
            if (strcmp(((EvdSenderConfig *)g_ptr_array_index(c->senders, j))->id, s->id) == 0)
                return fail_at(p, entry, "duplicate simulate id '%s'", s->id);
    }
    return TRUE;
}

/* ---- mqtt ------------------------------------------------------------------------------- */

static const gchar *const mqtt_keys[] = {
    "broker",   "client-id",     "topic-prefix", "keepalive",  "username",
    "password", "password-file", "tls",          "qos",        "state-interval",
    "queue-size", "reconnect-delay", "reconnect-delay-max", NULL};
static const gchar *const mqtt_tls_keys[] = {"ca-file", "certificate", "key", NULL};
static const gchar *const mqtt_qos_keys[] = {"state", "events", NULL};

/* mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (GUri parses; the rest is what a broker address
 * may be): no credentials in the URL (they would sit in logs), no path, query or fragment. */
static gboolean parse_broker(Parser *p, const ev_yaml_node *value, EvdMqttConfig *m)
{
    GError *uri_err = NULL;
    GUri *uri;
    const gchar *scheme, *host, *path;
    gboolean ok = FALSE;

    if (!get_nonempty_string(p, value, "broker", &m->broker))
        return FALSE;
    uri = g_uri_parse(m->broker, G_URI_FLAGS_NON_DNS, &uri_err);
    if (!uri) {
        ok = fail_at(p, value, "broker '%s' is not a URL (%s); expected mqtt://HOST[:PORT] or "
                               "mqtts://HOST[:PORT]",
                     m->broker, uri_err->message);
        g_error_free(uri_err);
        return ok;
    }
    scheme = g_uri_get_scheme(uri);
    host = g_uri_get_host(uri);
    path = g_uri_get_path(uri);
    if (g_ascii_strcasecmp(scheme, "mqtt") != 0 && g_ascii_strcasecmp(scheme, "mqtts") != 0)
        fail_at(p, value, "broker '%s': the scheme must be mqtt:// or mqtts://, not %s://",
                m->broker, scheme);
    else if (g_uri_get_userinfo(uri))
        fail_at(p, value, "broker '%s': no user name or password in the URL (use mqtt.username "
                          "and mqtt.password-file)", m->broker);
    else if (!host || !*host)
        fail_at(p, value, "broker '%s' has no host (mqtt://HOST[:PORT])", m->broker);
    else if ((path && *path && strcmp(path, "/") != 0) || g_uri_get_query(uri) ||
             g_uri_get_fragment(uri))
        fail_at(p, value, "broker '%s': a broker URL has no path, query or fragment",
                m->broker);
    else if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:") !=
             strlen(host))
        fail_at(p, value, "broker '%s': '%s' is not a host name or address", m->broker, host);
    else if (g_uri_get_port(uri) == 0)
        fail_at(p, value, "broker '%s': port 0 is not a broker port (1-65535)", m->broker);
    else {
        m->tls = g_ascii_strcasecmp(scheme, "mqtts") == 0;
        g_free(m->host);
        m->host = g_strdup(host);
        m->port = g_uri_get_port(uri) > 0 ? (guint)g_uri_get_port(uri) : m->tls ? 8883 : 1883;
        ok = TRUE;
    }
    g_uri_unref(uri);
    return ok;
}

/* A topic level or prefix: no wildcard, no NUL, no empty level, at most 256 bytes. */
static gboolean topic_ok(const gchar *topic)
{
    gsize n = strlen(topic);

    if (n == 0 || n > 256 || topic[0] == '/' || topic[n - 1] == '/' || strstr(topic, "//") ||
        strpbrk(topic, "+#") || topic[0] == '$')
        return FALSE;
    for (const gchar *c = topic; *c; c++)
        if ((guchar)*c < 0x20 || *c == 0x7f)
            return FALSE;
    return g_utf8_validate(topic, -1, NULL);
}

static gboolean handle_mqtt_tls(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                                const ev_yaml_node *value, gpointer data)
{
    EvdMqttConfig *m = data;

    if (strcmp(key, "ca-file") == 0)
        return read_pem_file(p, value, key, NULL, &m->tls_ca_file);
    if (strcmp(key, "certificate") == 0)
        return read_pem_file(p, value, key, NULL, &m->tls_certificate);
    return read_pem_file(p, value, key, NULL, &m->tls_key); /* key */
}

static gboolean handle_mqtt_qos(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                                const ev_yaml_node *value, gpointer data)
{
    EvdMqttConfig *m = data;

    return get_uint(p, value, key, 0, 1, strcmp(key, "state") == 0 ? &m->qos_state
                                                                   : &m->qos_events);
}

static gboolean handle_mqtt(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                            const ev_yaml_node *value, gpointer data)
{
    EvdMqttConfig *m = data;

    if (strcmp(key, "broker") == 0)
        return parse_broker(p, value, m);
    if (strcmp(key, "client-id") == 0) {
        if (!get_nonempty_string(p, value, key, &m->client_id))
            return FALSE;
        if (strlen(m->client_id) > 128 ||
            strspn(m->client_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
                strlen(m->client_id))
            return fail_at(p, value, "client-id '%s' must be 1-128 letters, digits, '-', '_' or "
                                     "'.'", m->client_id);
        return TRUE;
    }
    if (strcmp(key, "topic-prefix") == 0) {
        if (!get_nonempty_string(p, value, key, &m->topic_prefix))
            return FALSE;
        if (!topic_ok(m->topic_prefix))
            return fail_at(p, value, "topic-prefix '%s' must be 1-256 bytes of topic levels "
                                     "separated by '/': no '+', '#', leading '$', empty level "
                                     "or control character", m->topic_prefix);
        return TRUE;
    }
    if (strcmp(key, "keepalive") == 0)
        return get_uint(p, value, key, 5, 3600, &m->keepalive);
    if (strcmp(key, "username") == 0)
        return get_nonempty_string(p, value, key, &m->username);
    if (strcmp(key, "password") == 0)
        return get_nonempty_string(p, value, key, &m->password);
    if (strcmp(key, "password-file") == 0)
        return read_secret_file(p, value, key, "password", &m->password);
    if (strcmp(key, "tls") == 0)
        return ev_yaml_is_null(value) ||
               walk(p, value, "mqtt.tls", mqtt_tls_keys, handle_mqtt_tls, m);
    if (strcmp(key, "qos") == 0)
        return ev_yaml_is_null(value) ||
               walk(p, value, "mqtt.qos", mqtt_qos_keys, handle_mqtt_qos, m);
    if (strcmp(key, "state-interval") == 0)
        return get_double(p, value, key, 0.1, 3600, &m->state_interval);
    if (strcmp(key, "queue-size") == 0)
        return get_uint(p, value, key, 1, 1000000, &m->queue_size);
    if (strcmp(key, "reconnect-delay") == 0)
        return get_double(p, value, key, 0.05, 3600, &m->reconnect_delay);
    return get_double(p, value, key, 0.05, 86400, &m->reconnect_delay_max); /* reconnect-delay-max */
}

static void mqtt_config_free(EvdMqttConfig *m)
{
    if (!m)
        return;
    g_free(m->broker);
    g_free(m->host);
    g_free(m->client_id);
    g_free(m->topic_prefix);
    g_free(m->username);
    if (m->password) /* a secret: not left in freed memory */
        memset(m->password, 0, strlen(m->password));
    g_free(m->password);
    g_free(m->tls_ca_file);
    g_free(m->tls_certificate);
    g_free(m->tls_key);
    g_free(m);
}

/* The section's cross-field rules, after every key is read; node is the section. */
static gboolean parse_mqtt(Parser *p, const ev_yaml_node *node, EvdConfig *c)
{
    EvdMqttConfig *m = g_new0(EvdMqttConfig, 1);

    mqtt_config_free(c->mqtt);
    c->mqtt = m;
    m->topic_prefix = g_strdup("echoview");
    m->keepalive = 30;
    m->qos_state = 1;
    m->qos_events = 1;
    m->state_interval = 1;
    m->queue_size = 1000;
    m->reconnect_delay = 1;
    m->reconnect_delay_max = 30;
    if (!walk(p, node, "mqtt", mqtt_keys, handle_mqtt, m))
        return FALSE;
    if (!m->broker)
        return fail_at(p, node, "mqtt needs a 'broker' (mqtt://HOST[:PORT] or "
                                "mqtts://HOST[:PORT])");
    if (m->password && !m->username)
        return fail_at(p, node, "mqtt.password needs mqtt.username");
    if (!m->tls_certificate != !m->tls_key)
        return fail_at(p, node, "mqtt.tls.certificate and mqtt.tls.key go together");
    if ((m->tls_ca_file || m->tls_certificate) && !m->tls)
        return fail_at(p, node, "mqtt.tls is set but the broker URL '%s' is mqtt://, not "
                                "mqtts://", m->broker);
    if (m->reconnect_delay_max < m->reconnect_delay)
        return fail_at(p, node, "mqtt.reconnect-delay-max is below reconnect-delay");
    return TRUE;
}

gboolean evd_mqtt_config_equal(const EvdMqttConfig *a, const EvdMqttConfig *b)
{
    if (!a || !b)
        return a == b;
    return g_strcmp0(a->broker, b->broker) == 0 && g_strcmp0(a->client_id, b->client_id) == 0 &&
           g_strcmp0(a->topic_prefix, b->topic_prefix) == 0 && a->keepalive == b->keepalive &&
           g_strcmp0(a->username, b->username) == 0 && g_strcmp0(a->password, b->password) == 0 &&
           g_strcmp0(a->tls_ca_file, b->tls_ca_file) == 0 &&
           g_strcmp0(a->tls_certificate, b->tls_certificate) == 0 &&
           g_strcmp0(a->tls_key, b->tls_key) == 0 && a->qos_state == b->qos_state &&
           a->qos_events == b->qos_events && a->state_interval == b->state_interval &&
           a->queue_size == b->queue_size && a->reconnect_delay == b->reconnect_delay &&
           a->reconnect_delay_max == b->reconnect_delay_max;
}

static const gchar *const top_keys[] = {"http",    "supervision", "classifier",
                                        "streams", "simulate",    "mqtt", NULL};

static gboolean handle_top(Parser *p, const gchar *key, const ev_yaml_node *key_node,
                           const ev_yaml_node *value, gpointer data)
{
    ConfigCtx *cc = data;

    if (strcmp(key, "http") == 0)
        return ev_yaml_is_null(value) || walk(p, value, "http", http_keys, handle_http, cc->config);
    if (strcmp(key, "supervision") == 0)
        return ev_yaml_is_null(value) ||
               walk(p, value, "supervision", supervision_keys, handle_supervision, cc->config);
    if (strcmp(key, "classifier") == 0)
        return parse_properties(p, value, "classifier", classifier_reserved,
                                cc->classifier_defaults);
    if (strcmp(key, "streams") == 0)
        return parse_streams(p, value, cc);
    if (strcmp(key, "mqtt") == 0)
        return ev_yaml_is_null(value) || parse_mqtt(p, value, cc->config);
    return parse_senders(p, value, cc->config); /* simulate */
}

static EvdConfig *config_new(void)
{
    EvdConfig *c = g_new0(EvdConfig, 1);

    c->http_address = g_strdup("127.0.0.1");
    c->http_port = 8088;
    c->http_connection_limit = 64;
    c->http_connection_timeout = 30;
    c->http_request_size_limit = 16384;
    c->http_event_clients = 32;
    c->http_connections_per_address = 16;
    c->http_header_timeout = 10;
    c->restart_delay = 0.5;
    c->restart_delay_max = 30;
    c->stall_timeout = 3;
    c->frozen_timeout = 5;
    c->frozen_difference = 1;
    c->max_loss = 0.05;
    c->unknown_timeout = 60;
    c->min_fps_ratio = 0.5;
    c->low_fps_timeout = 10;
    c->streams = g_ptr_array_new_with_free_func(stream_free);
    c->senders = g_ptr_array_new_with_free_func(sender_free);
    return c;
}

void evd_config_free(EvdConfig *c)
{
    if (!c)
        return;
    g_free(c->path);
    g_free(c->http_address);
    g_free(c->http_token);
    g_strfreev(c->http_host_names);
    g_free(c->http_tls_certificate);
    if (c->http_tls_key) /* a private key: not left in freed memory */
        memset(c->http_tls_key, 0, strlen(c->http_tls_key));
    g_free(c->http_tls_key);
    g_ptr_array_unref(c->streams);
    g_ptr_array_unref(c->senders);
    mqtt_config_free(c->mqtt);
    g_free(c);
}

/* A YAML error as this daemon's GError. */
static void set_yaml_error(GError **err, const ev_yaml_error *yaml_err)
{
    EvdConfigErrorCode code = EVD_CONFIG_ERROR_SCHEMA;

    if (yaml_err->code == EV_YAML_ERR_IO || yaml_err->code == EV_YAML_ERR_TOO_LARGE)
        code = EVD_CONFIG_ERROR_IO;
    else if (yaml_err->code == EV_YAML_ERR_SYNTAX)
        code = EVD_CONFIG_ERROR_SYNTAX;
    g_set_error_literal(err, EVD_CONFIG_ERROR, code, yaml_err->message);
}

EvdConfig *evd_config_load(const gchar *path, GError **err)
{
    char *text = NULL;
    size_t len = 0;
    ev_yaml_error io = {0};
    EvdConfig *config;

    if (ev_yaml_read_file(path, EV_YAML_MAX_BYTES, &text, &len, &io) != EV_YAML_OK) {
        set_yaml_error(err, &io);
        return NULL;
    }
    config = evd_config_parse(text, len, path, err);
    free(text);
    return config;
}

EvdConfig *evd_config_parse(const gchar *text, gsize len, const gchar *path, GError **err)
{
    gchar *abs = g_canonicalize_filename(path, NULL);
    ev_yaml_error yaml_err = {0};
    Parser p = {0};
    ConfigCtx cc = {0};
    gboolean ok = FALSE;

    p.dir = g_path_get_dirname(abs);
    cc.config = config_new();
    cc.config->path = g_strdup(abs);
    cc.classifier_defaults = properties_new();

    if (ev_yaml_load_text(text, len, path, &p.doc, &yaml_err) != EV_YAML_OK) {
        set_yaml_error(err, &yaml_err);
        goto out;
    }
    if (!walk(&p, ev_yaml_root(p.doc), "the top level", top_keys, handle_top, &cc)) {
        set_yaml_error(err, ev_yaml_doc_error(p.doc));
        goto out;
    }
    if (!cc.config->http_tls_certificate != !cc.config->http_tls_key) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: http.tls-certificate and http.tls-key go together", path);
        goto out;
    }
    if (cc.config->restart_delay_max < cc.config->restart_delay) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: supervision.restart-delay-max is below restart-delay", path);
        goto out;
    }
    /* One UDP port per stream: udpsrc binds with SO_REUSEADDR, so a second stream on a port
     * starts, but the kernel gives each packet to one socket and the other stalls forever. */
    for (guint i = 0; i < cc.config->streams->len; i++) {
        EvdStreamConfig *s = g_ptr_array_index(cc.config->streams, i);
        gboolean udp = s->source.type == EVD_SOURCE_RTP_RAW ||
                       s->source.type == EVD_SOURCE_RTP_H264 ||
                       s->source.type == EVD_SOURCE_RTP_JPEG;
        for (guint j = 0; udp && j < i; j++) {
            EvdStreamConfig *t = g_ptr_array_index(cc.config->streams, j);
            if ((t->source.type == EVD_SOURCE_RTP_RAW || t->source.type == EVD_SOURCE_RTP_H264 ||
                 t->source.type == EVD_SOURCE_RTP_JPEG) &&
                t->source.port == s->source.port) {
                g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                            "%s:%d:%d: stream '%s' uses UDP port %u, as stream '%s' (line %d) "
                            "does: one UDP port per stream (one of them would never receive a "
                            "packet)",
                            path, s->source.port_line ? s->source.port_line : s->line,
                            s->source.port_line ? s->source.port_column : s->column, s->id,
                            s->source.port, t->id, t->line);
                goto out;
            }
        }
    }
    /* Defaults under each stream's own settings; the stream's value wins. */
    for (guint i = 0; i < cc.config->streams->len; i++) {
        EvdStreamConfig *s = g_ptr_array_index(cc.config->streams, i);
        GPtrArray *merged = properties_copy(cc.classifier_defaults);

        for (guint j = 0; j < s->classifier->len; j++) {
            const EvdProperty *prop = g_ptr_array_index(s->classifier, j);
            properties_set(merged, prop->name, prop->value, prop->line, prop->column);
        }
        g_ptr_array_unref(s->classifier);
        s->classifier = merged;
        if (s->stall_timeout < 0)
            s->stall_timeout = cc.config->stall_timeout;
        if (s->frozen_timeout < 0)
            s->frozen_timeout = cc.config->frozen_timeout;
        s->frozen_difference = cc.config->frozen_difference;
        s->max_loss = cc.config->max_loss;
        s->unknown_timeout = cc.config->unknown_timeout;
        s->min_fps_ratio = cc.config->min_fps_ratio;
        s->low_fps_timeout = cc.config->low_fps_timeout;
        if (!evd_properties_find(s->classifier, "model-file")) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "%s:%d:%d: stream '%s' has no classifier model-file (set "
                        "classifier.model-file at the top level or in the stream)",
                        path, s->line, s->column, s->id);
            goto out;
        }
    }
    ok = TRUE;

out:
    ev_yaml_free(p.doc);
    g_ptr_array_unref(cc.classifier_defaults);
    g_free(p.dir);
    g_free(abs);
    if (!ok) {
        evd_config_free(cc.config);
        return NULL;
    }
    return cc.config;
}

gboolean evd_fleet_resolve(const gchar *instance_flag, const gchar *shard_flag, EvdFleet *fleet,
                           GError **err)
{
    const gchar *env_instance = g_getenv("ECHOVIEW_INSTANCE");
    const gchar *env_shard = g_getenv("ECHOVIEW_SHARD"), *env_shards = g_getenv("ECHOVIEW_SHARDS");
    gchar reason[256];
    guint index = 0, count = 1;

    memset(fleet, 0, sizeof *fleet);
    if (shard_flag) {
        if (ev_shard_parse(shard_flag, &index, &count, reason, sizeof reason) != 0) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "--shard: %s", reason);
            return FALSE;
        }
    } else if (env_shard && *env_shard) {
        if (ev_shard_parse(env_shard, &index, &count, reason, sizeof reason) != 0) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "ECHOVIEW_SHARD: %s",
                        reason);
            return FALSE;
        }
    } else if (env_shards && *env_shards) {
        const gchar *host = g_getenv("HOSTNAME");
        gchar *spec;
        guint ordinal;
        gboolean ok;

        if (!host || !*host)
            host = g_get_host_name();
        if (ev_shard_ordinal(host, &ordinal, reason, sizeof reason) != 0) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "ECHOVIEW_SHARDS is set but %s (the shard index comes from a "
                        "StatefulSet pod name such as echoviewd-3)", reason);
            return FALSE;
        }
        spec = g_strdup_printf("%u/%s", ordinal, env_shards);
        ok = ev_shard_parse(spec, &index, &count, reason, sizeof reason) == 0;
        g_free(spec);
        if (!ok) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "ECHOVIEW_SHARDS=%s with the ordinal %u of host name '%s': %s",
                        env_shards, ordinal, host, reason);
            return FALSE;
        }
    }
    if (!instance_flag)
        instance_flag = env_instance && *env_instance ? env_instance : g_get_host_name();
    if (!*instance_flag || strlen(instance_flag) > 128 ||
        strspn(instance_flag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
            strlen(instance_flag)) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "instance name '%s' must be 1-128 letters, digits, '-', '_' or '.' (it is an "
                    "MQTT topic level and a metric label)", instance_flag);
        return FALSE;
    }
    fleet->instance = g_strdup(instance_flag);
    fleet->shard_index = index;
    fleet->shard_count = count;
    return TRUE;
}

void evd_fleet_clear(EvdFleet *fleet)
{
    g_clear_pointer(&fleet->instance, g_free);
}

void evd_config_select_shard(EvdConfig *config, guint index, guint count)
{
    for (guint i = config->streams->len; i-- > 0;) {
        const EvdStreamConfig *s = g_ptr_array_index(config->streams, i);
        if (ev_shard_owner(s->id, count) != index)
            g_ptr_array_remove_index(config->streams, i);
    }
    for (guint i = config->senders->len; i-- > 0;) {
        const EvdSenderConfig *s = g_ptr_array_index(config->senders, i);
        if (ev_shard_owner(s->id, count) != index)
            g_ptr_array_remove_index(config->senders, i);
    }
}
