/* evd_http.c: the HTTP API. libmicrohttpd runs its own polling thread (epoll); handlers read
 * supervisor snapshots and never block on GStreamer. Event-stream connections are suspended
 * while they have nothing to send and resumed by evd_http_publish(); before the server stops,
 * every suspended connection is resumed and ends its stream. */
#include "evd_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echoview.h"
#include "evd_metrics.h"
#include "evd_thumbnail.h"

#define EVD_EVENT_BUFFER_MAX (1024 * 1024) /* a client further behind than this is dropped */
#define EVD_EVENT_BLOCK 16384

extern const char evd_page_html[];
extern const size_t evd_page_html_len;

/* One TCP connection, for the header deadline (evd_http_new). */
typedef struct {
    MHD_socket fd;
    gint64 request_start; /* monotonic: the connection's start or the previous response's end */
    gboolean in_request;  /* its headers are in: being answered (or an event stream) */
    gboolean cut;         /* shut down for missing the deadline */
} Connection;

typedef struct {
    EvdHttp *http;
    struct MHD_Connection *connection;
    GString *pending;
    gboolean suspended;
    gboolean overflowed;
} EventClient;

struct _EvdHttp {
    struct MHD_Daemon *daemon;
    EvdSupervisor *sup;
    guint port;
    GMutex lock; /* token, clients */
    gchar *token;
    guint max_event_clients;
    GList *clients; /* EventClient */
    guint64 next_event_id;
    gboolean stopping;
    guint64 requests_total;
    guint64 responses_by_class[6]; /* index = status / 100 */
    GList *connections;            /* Connection */
    guint header_timeout;          /* seconds */
    guint64 header_timeouts_total; /* connections shut down for missing it */
    guint64 evicted_total;         /* idle connections shut down to make room */
    guint connection_limit;
    gchar **host_names;         /* besides numeric hosts and localhost */
    guint64 unauthorized;       /* 401s in the current log window */
    gint64 unauthorized_since;  /* monotonic: the window's start */
    gchar unauthorized_from[64];
    guint64 misdirected_total;  /* 421s */
    gint64 snapshot_second;     /* the second of the snapshot rate limit */
    guint snapshots_in_second;
    guint sweep_id;
};

static gint64 start_time_us;

void evd_http_set_start_time(gint64 monotonic_us) { start_time_us = monotonic_us; }

/* ---- responses --------------------------------------------------------------------------- */

static enum MHD_Result queue(EvdHttp *http, struct MHD_Connection *connection, guint status,
                             const gchar *type, gchar *body, gsize len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"echoviewd\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (strncmp(type, "text/html", 9) == 0)
        MHD_add_response_header(
            response, "Content-Security-Policy",
            "default-src 'none'; "
            "script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
            "img-src blob:; "
            "frame-ancestors 'none'");
    ret = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    g_mutex_lock(&http->lock);
    http->responses_by_class[MIN(status / 100, 5u)]++;
    g_mutex_unlock(&http->lock);
    return ret;
}

static enum MHD_Result queue_json(EvdHttp *http, struct MHD_Connection *connection, guint status,
                                  json_t *body)
{
    gchar *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    gchar *owned;
    gsize len;

    json_decref(body);
    if (!text)
        return MHD_NO;
    /* json_dumps uses malloc; MHD_RESPMEM_MUST_FREE frees with free(), so hand it over as is,
   * with a trailing newline for curl users. */
    len = strlen(text);
    owned = realloc(text, len + 2);
    if (!owned) {
        free(text);
        return MHD_NO;
    }
    owned[len] = '\n';
    owned[len + 1] = '\0';
    return queue(http, connection, status, "application/json", owned, len + 1);
}

static enum MHD_Result queue_error(EvdHttp *http, struct MHD_Connection *connection, guint status,
                                   const gchar *message)
{
    return queue_json(http, connection, status,
                      json_pack("{s:s, s:i}", "error", message, "status", status));
}

/* ---- JSON views -------------------------------------------------------------------------- */

static json_t *streams_json(EvdHttp *http)
{
    GPtrArray *snaps = evd_supervisor_snapshot(http->sup, FALSE);
    json_t *list = json_array();

    for (guint i = 0; i < snaps->len; i++)
        json_array_append_new(list, evd_snapshot_json(g_ptr_array_index(snaps, i), FALSE));
    g_ptr_array_unref(snaps);
    return json_pack("{s:o}", "streams", list);
}

static json_t *status_json(EvdHttp *http)
{
    EvdSupervisorStatus st;
    GPtrArray *snaps = evd_supervisor_snapshot(http->sup, FALSE);
    GPtrArray *senders = evd_supervisor_snapshot(http->sup, TRUE);
    guint64 frames = 0, inferred = 0, skipped = 0, dropped = 0, restarts = 0, changes = 0;
    json_t *states = json_object(), *sender_list = json_array(), *o;

    evd_supervisor_status(http->sup, &st);
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        frames += s->frames;
        inferred += s->inferred;
        skipped += s->skipped;
        dropped += s->dropped;
        restarts += s->restarts;
        changes += s->view_changes;
    }
    for (guint i = 0; i < EVD_STATE_COUNT; i++)
        json_object_set_new(states, evd_stream_state_name(i), json_integer(st.n_state[i]));
    for (guint i = 0; i < senders->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(senders, i);
        json_array_append_new(sender_list,
                              json_pack("{s:s, s:s, s:I, s:s?}", "id", s->id, "state",
                                        evd_stream_state_name(s->state), "restarts",
                                        (json_int_t)s->restarts, "last_error", s->last_error));
    }
    o = json_pack(
        "{s:s, s:f, s:{s:b, s:s?, s:s?, s:s?}, s:s?, s:{s:i, s:i, s:i, s:o}, "
        "s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o}",
        "version", EV_VERSION, "uptime_seconds", (g_get_monotonic_time() - start_time_us) / 1e6,
        "model", "loaded", st.model_loaded, "name", st.model_name, "file", st.model_file, "error",
        st.model_error, "backend", st.backend, "streams", "configured", st.n_streams, "enabled",
        st.n_enabled, "running", st.n_running, "by_state", states, "totals", "frames",
        (json_int_t)frames, "inferred", (json_int_t)inferred, "skipped", (json_int_t)skipped,
        "dropped", (json_int_t)dropped, "restarts", (json_int_t)restarts, "view_changes",
        (json_int_t)changes, "senders", sender_list);
    evd_supervisor_status_clear(&st);
    g_ptr_array_unref(snaps);
    g_ptr_array_unref(senders);
    return o;
}

/* Without the token (when one is set) only the verdict: the reasons name streams and errors. */
static enum MHD_Result handle_readyz(EvdHttp *http, struct MHD_Connection *connection,
                                     gboolean authorized)
{
    EvdSupervisorStatus st;
    GPtrArray *snaps = evd_supervisor_snapshot(http->sup, FALSE);
    json_t *reasons = json_array();
    gboolean ready;

    evd_supervisor_status(http->sup, &st);
    if (!st.model_loaded)
        json_array_append_new(reasons, json_sprintf("model not loaded: %s",
                                                    st.model_error ? st.model_error : "not yet"));
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        if (s->enabled && s->state != EVD_STATE_RUNNING)
            json_array_append_new(
                reasons, json_sprintf("stream %s is %s", s->id, evd_stream_state_name(s->state)));
    }
    ready = json_array_size(reasons) == 0;
    evd_supervisor_status_clear(&st);
    g_ptr_array_unref(snaps);
    if (!authorized) {
        json_decref(reasons);
        return queue_json(http, connection, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                          json_pack("{s:b}", "ready", ready));
    }
    return queue_json(http, connection, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                      json_pack("{s:b, s:o}", "ready", ready, "reasons", reasons));
}

/* The latest frame of a stream as a small grey PNG: encoded here (the HTTP thread), from a
 * copy the streaming thread takes once a second; at most EVD_SNAPSHOTS_PER_SECOND in all. */
#define EVD_SNAPSHOTS_PER_SECOND 20

static enum MHD_Result handle_snapshot(EvdHttp *http, struct MHD_Connection *connection,
                                       const gchar *url)
{
    gsize prefix = strlen("/api/v1/streams/"), suffix = strlen("/snapshot.png");
    gchar *id = g_strndup(url + prefix, strlen(url) - prefix - suffix);
    EvdThumbnail *thumb = g_new(EvdThumbnail, 1);
    gint64 second = g_get_monotonic_time() / G_USEC_PER_SEC;
    gboolean limited, found;
    guint8 *png;
    gsize len;

    g_mutex_lock(&http->lock);
    if (http->snapshot_second != second) {
        http->snapshot_second = second;
        http->snapshots_in_second = 0;
    }
    limited = ++http->snapshots_in_second > EVD_SNAPSHOTS_PER_SECOND;
    g_mutex_unlock(&http->lock);
    if (limited) {
        g_free(id);
        g_free(thumb);
        return queue_error(http, connection, MHD_HTTP_TOO_MANY_REQUESTS,
                           "too many snapshot requests (at most 20 a second)");
    }
    found = evd_supervisor_thumbnail(http->sup, id, thumb);
    g_free(id);
    if (!found || !thumb->width) {
        g_free(thumb);
        return queue_error(http, connection, MHD_HTTP_NOT_FOUND,
                           found ? "no frame yet" : "no such stream");
    }
    png = evd_thumbnail_png(thumb, &len);
    g_free(thumb);
    /* g_malloc memory is malloc's (GLib >= 2.46): MHD frees it with free() */
    return queue(http, connection, MHD_HTTP_OK, "image/png", (gchar *)png, len);
}

/* ---- events ------------------------------------------------------------------------------ */

static void client_free(void *cls)
{
    EventClient *client = cls;
    EvdHttp *http = client->http;

    g_mutex_lock(&http->lock);
    http->clients = g_list_remove(http->clients, client);
    g_mutex_unlock(&http->lock);
    g_string_free(client->pending, TRUE);
    g_free(client);
}

static ssize_t client_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    EventClient *client = cls;
    EvdHttp *http = client->http;
    ssize_t n;

    g_mutex_lock(&http->lock);
    if (client->overflowed) {
        g_mutex_unlock(&http->lock);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (client->pending->len > 0) {
        n = MIN(max, client->pending->len);
        memcpy(buf, client->pending->str, n);
        g_string_erase(client->pending, 0, n);
        g_mutex_unlock(&http->lock);
        return n;
    }
    if (http->stopping) {
        g_mutex_unlock(&http->lock);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Nothing to send: park the connection until evd_http_publish() resumes it. */
    client->suspended = TRUE;
    MHD_suspend_connection(client->connection);
    g_mutex_unlock(&http->lock);
    return 0;
}

/* Appends text to every client; returns the connections to resume (after unlocking: a
 * suspended connection cannot close, so it stays valid until we resume it). */
static GPtrArray *clients_append(EvdHttp *http, const gchar *text)
{
    GPtrArray *resume = g_ptr_array_new();

    for (GList *l = http->clients; l; l = l->next) {
        EventClient *client = l->data;
        if (client->pending->len + strlen(text) > EVD_EVENT_BUFFER_MAX)
            client->overflowed = TRUE;
        else
            g_string_append(client->pending, text);
        if (client->suspended) {
            client->suspended = FALSE;
            g_ptr_array_add(resume, client->connection);
        }
    }
    return resume;
}

static void resume_all(GPtrArray *resume)
{
    for (guint i = 0; i < resume->len; i++)
        MHD_resume_connection(g_ptr_array_index(resume, i));
    g_ptr_array_unref(resume);
}

void evd_http_publish(EvdHttp *http, const gchar *event, json_t *data)
{
    gchar *json = json_dumps(data, JSON_COMPACT | JSON_ENSURE_ASCII);
    gchar *text;
    GPtrArray *resume;

    json_decref(data);
    if (!json)
        return;
    g_mutex_lock(&http->lock);
    text = g_strdup_printf("event: %s\nid: %" G_GUINT64_FORMAT "\ndata: %s\n\n", event,
                           ++http->next_event_id, json);
    resume = clients_append(http, text);
    g_mutex_unlock(&http->lock);
    resume_all(resume);
    g_free(text);
    free(json);
}

void evd_http_keepalive(EvdHttp *http)
{
    GPtrArray *resume;

    g_mutex_lock(&http->lock);
    resume = clients_append(http, ": keepalive\n\n");
    g_mutex_unlock(&http->lock);
    resume_all(resume);
}

static enum MHD_Result handle_events(EvdHttp *http, struct MHD_Connection *connection)
{
    EventClient *client;
    struct MHD_Response *response;
    enum MHD_Result ret;
    GPtrArray *snaps;

    g_mutex_lock(&http->lock);
    if (g_list_length(http->clients) >= http->max_event_clients || http->stopping) {
        g_mutex_unlock(&http->lock);
        return queue_error(http, connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "too many event clients");
    }
    client = g_new0(EventClient, 1);
    client->http = http;
    client->connection = connection;
    client->pending = g_string_new("retry: 2000\n\n");
    http->clients = g_list_prepend(http->clients, client);
    g_mutex_unlock(&http->lock);

    /* A first `hello` with every stream's state, so a client needs no second request. */
    snaps = evd_supervisor_snapshot(http->sup, FALSE);
    {
        json_t *list = json_array();
        gchar *json, *text;
        for (guint i = 0; i < snaps->len; i++) {
            EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
            json_array_append_new(list, json_pack("{s:s, s:s, s:s?, s:f}", "stream", s->id, "state",
                                                  evd_stream_state_name(s->state), "view",
                                                  s->stable_label, "confidence", s->confidence));
        }
        json = json_dumps(list, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(list);
        text = g_strdup_printf("event: hello\ndata: {\"streams\":%s}\n\n", json);
        g_mutex_lock(&http->lock);
        g_string_append(client->pending, text);
        g_mutex_unlock(&http->lock);
        free(json);
        g_free(text);
    }
    g_ptr_array_unref(snaps);

    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, EVD_EVENT_BLOCK, client_read,
                                                 client, client_free);
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(response, "X-Accel-Buffering", "no");
    ret = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    g_mutex_lock(&http->lock);
    http->responses_by_class[2]++;
    g_mutex_unlock(&http->lock);
    return ret;
}

/* ---- routing ----------------------------------------------------------------------------- */

/* DNS rebinding: a web page of another site that gets its name pointed at this address could
 * read the API from a browser on the LAN. The Host header must be a numeric address (a page
 * cannot rebind one), localhost, or one of http.host-names; none (HTTP/1.0) is accepted. */
static gboolean host_allowed(EvdHttp *http, const gchar *host)
{
    gchar *name;
    gboolean ok;
    guchar buf[16];

    if (!host)
        return TRUE;
    if (host[0] == '[') { /* [IPv6]:port */
        const gchar *end = strchr(host, ']');
        name = end ? g_strndup(host + 1, end - host - 1) : g_strdup("");
        ok = inet_pton(AF_INET6, name, buf) == 1;
        g_free(name);
        return ok;
    }
    {
        const gchar *colon = strchr(host, ':');
        name = g_ascii_strdown(host, colon ? colon - host : -1);
    }
    ok = inet_pton(AF_INET, name, buf) == 1 || strcmp(name, "localhost") == 0;
    g_mutex_lock(&http->lock);
    for (guint i = 0; !ok && http->host_names && http->host_names[i]; i++)
        ok = strcmp(name, http->host_names[i]) == 0;
    g_mutex_unlock(&http->lock);
    g_free(name);
    return ok;
}

/* 401s are logged once per 10 s with their count and the latest client. */
static void note_unauthorized(EvdHttp *http, struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    gchar from[64] = "?";

    if (info && info->client_addr) {
        const struct sockaddr *sa = info->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, from, sizeof from);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, from, sizeof from);
    }
    g_mutex_lock(&http->lock);
    if (!http->unauthorized)
        http->unauthorized_since = g_get_monotonic_time();
    http->unauthorized++;
    g_strlcpy(http->unauthorized_from, from, sizeof http->unauthorized_from);
    g_mutex_unlock(&http->lock);
}

/* Constant-time comparison, so response timing does not reveal the token's prefix. */
static gboolean token_matches(const gchar *expected, const gchar *header)
{
    gsize n, m;
    guint diff;

    if (!header || g_ascii_strncasecmp(header, "Bearer ", 7) != 0)
        return FALSE;
    header += 7;
    n = strlen(expected);
    m = strlen(header);
    diff = n ^ m;
    for (gsize i = 0; i < n; i++)
        diff |= (guchar)expected[i] ^ (guchar)(i < m ? header[i] : 0);
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    EvdHttp *http = cls;
    static int first_call_marker;
    const gchar *length, *encoding;
    gboolean authorized;

    if (*state == NULL) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        *state = &first_call_marker;
        g_mutex_lock(&http->lock);
        http->requests_total++;
        if (info && info->socket_context)
            ((Connection *)info->socket_context)->in_request = TRUE;
        g_mutex_unlock(&http->lock);
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return queue_error(http, connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
        encoding = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_TRANSFER_ENCODING);
        if ((length && strcmp(length, "0") != 0) || encoding)
            return queue_error(http, connection, MHD_HTTP_CONTENT_TOO_LARGE,
                               "requests take no body");
        /* Answer on the second call, when the request is complete: a response queued on the
         * first one makes libmicrohttpd close the connection after it (it cannot tell that no
         * body follows), which ended keep-alive and dropped pipelined requests. */
        return MHD_YES;
    } else if (*upload_data_size > 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (!host_allowed(http, MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_HOST))) {
        g_mutex_lock(&http->lock);
        http->misdirected_total++;
        g_mutex_unlock(&http->lock);
        return queue_error(http, connection, 421,
                           "the Host header names none of this server's names (a numeric "
                           "address, localhost, or http.host-names)");
    }
    g_mutex_lock(&http->lock);
    authorized =
        !http->token ||
        token_matches(http->token, MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                               MHD_HTTP_HEADER_AUTHORIZATION));
    g_mutex_unlock(&http->lock);

    if (strcmp(url, "/healthz") == 0)
        return queue_json(http, connection, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    if (strcmp(url, "/readyz") == 0)
        return handle_readyz(http, connection, authorized);
    if (strcmp(url, "/") == 0)
        return queue(http, connection, MHD_HTTP_OK, "text/html; charset=utf-8",
                     g_memdup2(evd_page_html, evd_page_html_len), evd_page_html_len);

    if (!authorized) {
        note_unauthorized(http, connection);
        return queue_error(http, connection, MHD_HTTP_UNAUTHORIZED,
                           "missing or wrong bearer token");
    }

    if (strcmp(url, "/api/v1/status") == 0)
        return queue_json(http, connection, MHD_HTTP_OK, status_json(http));
    if (strcmp(url, "/api/v1/streams") == 0 || strcmp(url, "/api/v1/streams/") == 0)
        return queue_json(http, connection, MHD_HTTP_OK, streams_json(http));
    if (g_str_has_prefix(url, "/api/v1/streams/") && g_str_has_suffix(url, "/snapshot.png"))
        return handle_snapshot(http, connection, url);
    if (g_str_has_prefix(url, "/api/v1/streams/")) {
        EvdStreamSnapshot *snap =
            evd_supervisor_snapshot_one(http->sup, url + strlen("/api/v1/streams/"));
        json_t *body;
        if (!snap)
            return queue_error(http, connection, MHD_HTTP_NOT_FOUND, "no such stream");
        body = evd_snapshot_json(snap, TRUE);
        evd_stream_snapshot_free(snap);
        return queue_json(http, connection, MHD_HTTP_OK, body);
    }
    if (strcmp(url, "/api/v1/events") == 0)
        return handle_events(http, connection);
    if (strcmp(url, "/metrics") == 0) {
        gsize len;
        EvdHttpCounters counters;
        g_mutex_lock(&http->lock);
        counters.requests_total = http->requests_total;
        counters.header_timeouts_total = http->header_timeouts_total;
        counters.evicted_total = http->evicted_total;
        counters.misdirected_total = http->misdirected_total;
        counters.connections = g_list_length(http->connections);
        counters.event_clients = g_list_length(http->clients);
        memcpy(counters.responses_by_class, http->responses_by_class,
               sizeof counters.responses_by_class);
        g_mutex_unlock(&http->lock);
        gchar *text = evd_metrics_text(http->sup, &counters,
                                       (g_get_monotonic_time() - start_time_us) / 1e6, &len);
        /* g_string memory is malloc-compatible with GLib >= 2.46 (g_malloc is malloc). */
        return queue(http, connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                     text, len);
    }
    return queue_error(http, connection, MHD_HTTP_NOT_FOUND, "no such path");
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    gchar *msg = g_strdup_vprintf(fmt, ap);
    g_message("http: %s", g_strchomp(msg));
    g_free(msg);
}

/* ---- connections: the header deadline ------------------------------------------------------- */

/* libmicrohttpd's own timeout is for idleness, so a client sending a header line every few
 * seconds kept a connection (and, 64 of them, the API) for as long as it liked. Every
 * connection is tracked here from its start; one whose request line and headers are not in
 * within header-timeout of its start (or of its previous response) is shut down: shutdown()
 * on its socket, which libmicrohttpd then sees as closed by the peer. The socket cannot be
 * closed and reused under us: libmicrohttpd notifies CLOSED (which takes the lock and forgets
 * the connection) before it closes the socket. */
/* Near connection-limit, the oldest connection that has no request in (idle, or still sending
 * its headers) is shut down to make room, so that many clients that never finish a request
 * (from many addresses: connections-per-address bounds one) cannot hold every slot until the
 * header deadline: a new client that sends its request at once is served. Under lock. */
static void evict_for_room(EvdHttp *http, Connection *except)
{
    Connection *oldest = NULL;
    guint live = 0;

    for (GList *l = http->connections; l; l = l->next) {
        Connection *c = l->data;
        if (c->cut)
            continue;
        live++;
        if (c != except && !c->in_request && c->fd != MHD_INVALID_SOCKET &&
            (!oldest || c->request_start < oldest->request_start))
            oldest = c;
    }
    if (live + 1 < http->connection_limit || !oldest)
        return;
    shutdown(oldest->fd, SHUT_RDWR);
    oldest->cut = TRUE;
    http->evicted_total++;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    EvdHttp *http = cls;
    Connection *c;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        c = g_new0(Connection, 1);
        c->fd = info ? info->connect_fd : MHD_INVALID_SOCKET;
        c->request_start = g_get_monotonic_time();
        g_mutex_lock(&http->lock);
        http->connections = g_list_prepend(http->connections, c);
        evict_for_room(http, c);
        g_mutex_unlock(&http->lock);
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        c = *socket_context;
        g_mutex_lock(&http->lock);
        http->connections = g_list_remove(http->connections, c);
        g_mutex_unlock(&http->lock);
        g_free(c);
        *socket_context = NULL;
    }
}

/* A request is answered: the next one's headers are due within header-timeout from now. */
static void on_completed(void *cls, struct MHD_Connection *connection, void **state,
                         enum MHD_RequestTerminationCode code)
{
    EvdHttp *http = cls;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    if (!info || !info->socket_context)
        return;
    g_mutex_lock(&http->lock);
    ((Connection *)info->socket_context)->in_request = FALSE;
    ((Connection *)info->socket_context)->request_start = g_get_monotonic_time();
    g_mutex_unlock(&http->lock);
}

static gboolean on_sweep(gpointer data)
{
    EvdHttp *http = data;
    gint64 now = g_get_monotonic_time();
    guint cut = 0;

    g_mutex_lock(&http->lock);
    for (GList *l = http->connections; l; l = l->next) {
        Connection *c = l->data;
        if (c->in_request || c->cut || c->fd == MHD_INVALID_SOCKET ||
            now - c->request_start < (gint64)http->header_timeout * G_USEC_PER_SEC)
            continue;
        shutdown(c->fd, SHUT_RDWR);
        c->cut = TRUE;
        cut++;
    }
    http->header_timeouts_total += cut;
    if (http->unauthorized && now - http->unauthorized_since >= 10 * G_USEC_PER_SEC) {
        g_message("http: %" G_GUINT64_FORMAT " request%s without a valid bearer token in the last "
                  "%.0f s (the latest from %s)",
                  http->unauthorized, http->unauthorized == 1 ? "" : "s",
                  (now - http->unauthorized_since) / 1e6, http->unauthorized_from);
        http->unauthorized = 0;
    }
    g_mutex_unlock(&http->lock);
    if (cut)
        g_message("http: closed %u connection%s that sent no complete request within %u s", cut,
                  cut == 1 ? "" : "s", http->header_timeout);
    return G_SOURCE_CONTINUE;
}

/* The listening socket, made here rather than by libmicrohttpd, which sets SO_REUSEPORT: with
 * it a second echoviewd on the same port started and silently took half of the connections.
 * SO_REUSEADDR only (a restart may rebind at once while old connections are in TIME_WAIT); a
 * port in use is an error that names it. */
static int listen_on(const EvdConfig *config, GError **err)
{
    struct sockaddr_storage addr = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
    socklen_t addr_len;
    const gchar *address = config->http_address;
    int fd, one = 1, saved;

    if (strcmp(address, "localhost") == 0)
        address = "127.0.0.1";
    if (inet_pton(AF_INET, address, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(config->http_port);
        addr_len = sizeof *in4;
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(config->http_port);
        addr_len = sizeof *in6;
    } else {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: http.address '%s' is not a numeric IPv4 or IPv6 address", config->path,
                    config->http_address);
        return -1;
    }
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_IO, "cannot create a socket: %s",
                    g_strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&addr, addr_len) != 0 || listen(fd, 128) != 0) {
        saved = errno;
        close(fd);
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_IO,
                    "cannot listen on %s port %u: %s%s", config->http_address, config->http_port,
                    g_strerror(saved),
                    saved == EADDRINUSE ? " (another echoviewd or another server has it)" : "");
        return -1;
    }
    return fd;
}

EvdHttp *evd_http_new(const EvdConfig *config, EvdSupervisor *sup, int listen_fd, GError **err)
{
    EvdHttp *http = g_new0(EvdHttp, 1);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;
    gboolean own_socket = listen_fd < 0;

    g_mutex_init(&http->lock);
    http->sup = sup;
    http->token = g_strdup(config->http_token);
    http->max_event_clients = config->http_event_clients;
    http->header_timeout = config->http_header_timeout;
    http->connection_limit = config->http_connection_limit;
    http->host_names = g_strdupv(config->http_host_names);

    if (own_socket) {
        listen_fd = listen_on(config, err);
        if (listen_fd < 0)
            goto fail;
    }
    /* HTTPS (GnuTLS, in libmicrohttpd): the PEM texts read with the configuration */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, config->http_tls_certificate},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, config->http_tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    if (config->http_tls_certificate)
        flags |= MHD_USE_TLS;
    else
        tls[0].option = MHD_OPTION_END;
    http->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, http, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)config->http_connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)config->http_connections_per_address,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)config->http_connection_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)config->http_request_size_limit,
        MHD_OPTION_END);
    if (!http->daemon) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_IO, "cannot serve on %s port %u: %s",
                    own_socket ? config->http_address : "the inherited socket", config->http_port,
                    config->http_tls_certificate
                        ? "the TLS certificate or key was refused (do they match? the log has "
                          "libmicrohttpd's reason)"
                        : g_strerror(errno));
        if (own_socket)
            close(listen_fd);
        goto fail;
    }
    http->sweep_id = g_timeout_add(250, on_sweep, http);
    if (own_socket && !config->http_token && strcmp(config->http_address, "127.0.0.1") != 0 &&
        strcmp(config->http_address, "::1") != 0 && strcmp(config->http_address, "localhost") != 0 &&
        !g_str_has_prefix(config->http_address, "127."))
        g_warning("http: listening on %s without a token: anyone who reaches this address reads "
                  "the streams and their views (set http.token or http.token-file)",
                  config->http_address);
    info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : config->http_port;
    return http;

fail:
    g_strfreev(http->host_names);
    g_free(http->token);
    g_mutex_clear(&http->lock);
    g_free(http);
    return NULL;
}

guint evd_http_port(EvdHttp *http) { return http->port; }

void evd_http_reconfigure(EvdHttp *http, const EvdConfig *config)
{
    g_mutex_lock(&http->lock);
    g_free(http->token);
    http->token = g_strdup(config->http_token);
    http->max_event_clients = config->http_event_clients;
    http->header_timeout = config->http_header_timeout;
    g_strfreev(http->host_names);
    http->host_names = g_strdupv(config->http_host_names);
    g_mutex_unlock(&http->lock);
}

void evd_http_free(EvdHttp *http)
{
    GPtrArray *resume = g_ptr_array_new();
    gint64 deadline;

    if (!http)
        return;
    g_source_remove(http->sweep_id);
    /* Suspended connections must be resumed before MHD_stop_daemon(); resumed, their reader
   * sees `stopping` and ends the stream. */
    {
        MHD_socket listener = MHD_quiesce_daemon(http->daemon);
        if (listener != MHD_INVALID_SOCKET)
            close(listener);
    }
    g_mutex_lock(&http->lock);
    http->stopping = TRUE;
    for (GList *l = http->clients; l; l = l->next) {
        EventClient *client = l->data;
        if (client->suspended) {
            client->suspended = FALSE;
            g_ptr_array_add(resume, client->connection);
        }
    }
    g_mutex_unlock(&http->lock);
    resume_all(resume);
    deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
    for (;;) {
        gboolean empty;
        g_mutex_lock(&http->lock);
        empty = http->clients == NULL;
        g_mutex_unlock(&http->lock);
        if (empty || g_get_monotonic_time() > deadline)
            break;
        g_usleep(10000);
    }
    MHD_stop_daemon(http->daemon);
    g_list_free_full(http->connections, g_free); /* none: every connection was closed */
    g_strfreev(http->host_names);
    g_free(http->token);
    g_mutex_clear(&http->lock);
    g_free(http);
}
