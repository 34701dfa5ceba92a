/* echoviewd.c: the echoview daemon: reads the YAML config, runs one supervised GStreamer
 * pipeline per stream (and the built-in synthetic senders), serves the HTTP API, and speaks
 * systemd's notify protocol (READY, STATUS, WATCHDOG, RELOADING on SIGHUP, STOPPING). */
#include <gio/gio.h>
#include <glib-unix.h>
#include <gst/gst.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "echoview.h"
#include "evd_config.h"
#include "evd_http.h"
#include "evd_metrics.h"
#include "evd_mqtt.h"
#include "evd_pipeline.h"
#include "evd_supervisor.h"

#ifndef EVD_DEFAULT_CONFIG
#define EVD_DEFAULT_CONFIG "/etc/echoviewd/echoviewd.yaml"
#endif

typedef struct {
    GMainLoop *loop;
    gchar *config_path;
    EvdConfig *config_view; /* the applied config (owned by the supervisor) */
    EvdSupervisor *sup;
    EvdHttp *http;
    EvdMqtt *mqtt; /* NULL: no mqtt section */
    gchar *last_status;
    guint64 watchdog_usec;
    gint64 last_keepalive;
    EvdFleet fleet;
} Daemon;

/* Loads path and keeps this instance's shard of its streams. */
static EvdConfig *load_config(Daemon *d, const gchar *path, GError **err)
{
    EvdConfig *config = evd_config_load(path, err);

    if (config && d->fleet.shard_count > 1)
        evd_config_select_shard(config, d->fleet.shard_index, d->fleet.shard_count);
    return config;
}

static void on_event(const gchar *event, json_t *data, gpointer user_data)
{
    Daemon *d = user_data;

    if (d->mqtt)
        evd_mqtt_publish_event(d->mqtt, event, data);
    if (d->http)
        evd_http_publish(d->http, event, data);
    else
        json_decref(data);
}

static void notify_status(Daemon *d)
{
    EvdSupervisorStatus st;
    gchar *status;

    evd_supervisor_status(d->sup, &st);
    status = g_strdup_printf("%u of %u enabled streams running%s; http port %u", st.n_running,
                             st.n_enabled, st.model_loaded ? "" : "; model not loaded",
                             evd_http_port(d->http));
    if (g_strcmp0(status, d->last_status) != 0) {
        sd_notifyf(0, "STATUS=%s", status);
        g_free(d->last_status);
        d->last_status = status;
    } else {
        g_free(status);
    }
    evd_supervisor_status_clear(&st);
}

/* Once a second: systemd STATUS, a `stats` event per stream for live views, keepalives. */
static gboolean on_second(gpointer data)
{
    Daemon *d = data;
    GPtrArray *snaps = evd_supervisor_snapshot(d->sup, FALSE);
    gint64 now = g_get_monotonic_time();

    notify_status(d);
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        json_t *probabilities = json_object(), *stats;
        /* every class's probability (none while the view is withheld), for the page's bars */
        for (guint k = 0; s->classes && k < s->n_probabilities; k++)
            json_object_set_new(probabilities, s->classes[k], json_real(s->probabilities[k]));
        stats = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:f, s:f, s:I, s:I, "
                                   "s:f, s:I}",
                                   "stream", s->id, "state", evd_stream_state_name(s->state),
                                   "withheld", s->withheld, "last_error", s->last_error,
                                   "label", s->label, "view", s->stable_label, "confidence",
                                   s->confidence, "fps", s->fps, "frames", (json_int_t)s->frames,
                                   "inferred", (json_int_t)s->inferred, "latency_p99_ms",
                                   s->latency_p99_ms, "restarts", (json_int_t)s->restarts);
        json_object_set_new(stats, "probabilities", probabilities);
        evd_http_publish(d->http, "stats", stats);
    }
    g_ptr_array_unref(snaps);
    if (now - d->last_keepalive > 15 * G_USEC_PER_SEC) {
        evd_http_keepalive(d->http);
        d->last_keepalive = now;
    }
    return G_SOURCE_CONTINUE;
}

/* The watchdog proves that the main loop (which runs every state machine) is alive. */
static gboolean on_watchdog(gpointer data)
{
    sd_notify(0, "WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

static gboolean on_sighup(gpointer data)
{
    Daemon *d = data;
    GError *err = NULL;
    EvdConfig *config;

    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT "\nSTATUS=reloading %s",
               g_get_monotonic_time(), d->config_path);
    g_message("reloading %s", d->config_path);
    config = load_config(d, d->config_path, &err);
    if (config && !evd_pipeline_validate(config, &err)) {
        evd_config_free(config);
        config = NULL;
    }
    if (!config) {
        g_warning("reload failed, keeping the running configuration: %s", err->message);
        sd_notifyf(0, "READY=1\nSTATUS=reload failed: %s", err->message);
        g_clear_error(&err);
        g_clear_pointer(&d->last_status, g_free);
        return G_SOURCE_CONTINUE;
    }
    if (g_strcmp0(config->http_address, d->config_view->http_address) != 0 ||
        config->http_port != d->config_view->http_port ||
        config->http_connection_limit != d->config_view->http_connection_limit ||
        config->http_connection_timeout != d->config_view->http_connection_timeout ||
        config->http_request_size_limit != d->config_view->http_request_size_limit ||
        config->http_connections_per_address != d->config_view->http_connections_per_address ||
        g_strcmp0(config->http_tls_certificate, d->config_view->http_tls_certificate) != 0 ||
        g_strcmp0(config->http_tls_key, d->config_view->http_tls_key) != 0)
        g_warning("http listening settings changed: they take effect at the next restart");
    evd_http_reconfigure(d->http, config);
    if (!evd_mqtt_config_equal(config->mqtt, d->config_view->mqtt)) {
        g_message("mqtt settings changed: reconnecting");
        g_clear_pointer(&d->mqtt, evd_mqtt_free);
        if (config->mqtt)
            d->mqtt = evd_mqtt_new(config->mqtt, d->fleet.instance, d->sup);
    }
    d->config_view = config;
    evd_supervisor_apply(d->sup, config);
    g_clear_pointer(&d->last_status, g_free);
    notify_status(d);
    sd_notify(0, "READY=1");
    g_message("reloaded %s", d->config_path);
    return G_SOURCE_CONTINUE;
}

static gboolean on_sigterm(gpointer data)
{
    Daemon *d = data;

    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    g_message("stopping");
    g_main_loop_quit(d->loop);
    return G_SOURCE_CONTINUE;
}

static int check_config(const gchar *path)
{
    GError *err = NULL;
    EvdConfig *config = evd_config_load(path, &err);

    if (config && evd_pipeline_validate(config, &err)) {
        printf("%s: ok (%u streams, %u simulated senders, http %s:%u%s%s%s)\n", path,
               config->streams->len, config->senders->len, config->http_address, config->http_port,
               config->http_token ? ", token required" : "", config->mqtt ? ", mqtt " : "",
               config->mqtt ? config->mqtt->broker : "");
        evd_config_free(config);
        return 0;
    }
    fprintf(stderr, "%s\n", err->message);
    g_clear_error(&err);
    evd_config_free(config);
    return 1;
}

int main(int argc, char **argv)
{
    gchar *config_path = NULL, *check_path = NULL, *instance = NULL, *shard = NULL;
    gboolean version = FALSE;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
         "Configuration file (default: " EVD_DEFAULT_CONFIG ")", "FILE"},
        {"check-config", 0, 0, G_OPTION_ARG_FILENAME, &check_path,
         "Check FILE (syntax, schema, elements, properties, models) and exit: 0 when valid",
         "FILE"},
        {"instance", 0, 0, G_OPTION_ARG_STRING, &instance,
         "This instance's name in metrics and MQTT topics (default: $ECHOVIEW_INSTANCE, else the "
         "host name)", "NAME"},
        {"shard", 0, 0, G_OPTION_ARG_STRING, &shard,
         "Run only the streams rendezvous hashing gives to shard I of N (default: "
         "$ECHOVIEW_SHARD, else $ECHOVIEW_SHARDS=N with I from $HOSTNAME's -<digits>, else all)",
         "I/N"},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {NULL}};
    GOptionContext *ctx = g_option_context_new("- echocardiography view classification daemon");
    GError *err = NULL;
    Daemon d = {0};
    int listen_fd = -1, n_fds, status = 1;
    guint second_id = 0, watchdog_id = 0, hup_id, term_id, int_id;

#ifdef __GLIBC__
    /* Each streaming thread that frees into a new glibc arena keeps that arena's pages: with
   * pipelines restarted all day, 13-14 arenas grew resident memory by ~620 KiB/h in the soak,
   * 2 arenas kept it flat (docs/PERFORMANCE.md). The unit sets the same through GLIBC_TUNABLES;
   * this covers a daemon started by hand. An explicit GLIBC_TUNABLES or MALLOC_ARENA_MAX wins. */
    if (!g_getenv("GLIBC_TUNABLES") && !g_getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
#endif
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_add_group(ctx, gst_init_get_option_group());
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "echoviewd: %s\n", err->message);
        g_clear_error(&err);
        g_option_context_free(ctx);
        return 2;
    }
    g_option_context_free(ctx);
    if (version) {
        printf("echoviewd %s\n", EV_VERSION);
        return 0;
    }
    if (check_path) {
        status = check_config(check_path);
        g_free(check_path);
        g_free(config_path);
        gst_deinit();
        return status;
    }

    if (!evd_fleet_resolve(instance, shard, &d.fleet, &err)) {
        fprintf(stderr, "echoviewd: %s\n", err->message);
        sd_notifyf(0, "STATUS=bad configuration: %s", err->message);
        g_clear_error(&err);
        g_free(instance);
        g_free(shard);
        g_free(config_path);
        gst_deinit();
        return 2;
    }
    g_free(instance);
    g_free(shard);
    evd_metrics_set_instance(d.fleet.instance);
    d.config_path = config_path ? config_path : g_strdup(EVD_DEFAULT_CONFIG);
    d.config_view = load_config(&d, d.config_path, &err);
    if (d.config_view && !evd_pipeline_validate(d.config_view, &err))
        g_clear_pointer(&d.config_view, evd_config_free);
    if (!d.config_view) {
        fprintf(stderr, "echoviewd: %s\n", err->message);
        sd_notifyf(0, "STATUS=bad configuration: %s", err->message);
        g_clear_error(&err);
        goto out;
    }

    evd_http_set_start_time(g_get_monotonic_time());
    n_fds = sd_listen_fds(1);
    if (n_fds > 1) {
        fprintf(stderr, "echoviewd: expected one socket from systemd, got %d\n", n_fds);
        goto out;
    }
    if (n_fds == 1) {
        listen_fd = SD_LISTEN_FDS_START;
        if (sd_is_socket(listen_fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            fprintf(stderr, "echoviewd: the socket from systemd is not a listening stream socket "
                            "(echoviewd.socket needs ListenStream=)\n");
            goto out;
        }
    }

    d.loop = g_main_loop_new(NULL, FALSE);
    d.sup = evd_supervisor_new(on_event, &d);
    /* before the streams start, so that their first state events are published */
    if (d.config_view->mqtt)
        d.mqtt = evd_mqtt_new(d.config_view->mqtt, d.fleet.instance, d.sup);
    /* Streams first (setting a pipeline to PLAYING does not wait), then the server: with socket
   * activation connections are already queued on the inherited socket, and the first of them
   * must see the configured streams, not an empty supervisor. */
    evd_supervisor_apply(d.sup, d.config_view);
    d.http = evd_http_new(d.config_view, d.sup, listen_fd, &err);
    if (!d.http) {
        fprintf(stderr, "echoviewd: %s\n", err->message);
        g_clear_error(&err);
        goto out;
    }
    if (d.fleet.shard_count > 1)
        g_message("instance %s, shard %u/%u: %u streams", d.fleet.instance, d.fleet.shard_index,
                  d.fleet.shard_count, d.config_view->streams->len);
    g_message("listening on %s://%s:%u/%s", d.config_view->http_tls_certificate ? "https" : "http",
              listen_fd >= 0 ? "(socket activation)" : d.config_view->http_address,
              evd_http_port(d.http),
              d.config_view->http_token ? " (bearer token required for the API)" : "");

    hup_id = g_unix_signal_add(SIGHUP, on_sighup, &d);
    term_id = g_unix_signal_add(SIGTERM, on_sigterm, &d);
    int_id = g_unix_signal_add(SIGINT, on_sigterm, &d);
    second_id = g_timeout_add_seconds(1, on_second, &d);
    if (sd_watchdog_enabled(0, &d.watchdog_usec) > 0 && d.watchdog_usec > 0)
        watchdog_id = g_timeout_add(MAX(d.watchdog_usec / 2000, 1), on_watchdog, &d);
    notify_status(&d);
    sd_notify(0, "READY=1");

    g_main_loop_run(d.loop);

    g_source_remove(hup_id);
    g_source_remove(term_id);
    g_source_remove(int_id);
    g_source_remove(second_id);
    if (watchdog_id)
        g_source_remove(watchdog_id);
    status = 0;

out:
    /* HTTP and MQTT first (they read the supervisor), then the pipelines. */
    evd_http_free(d.http);
    d.http = NULL;
    g_clear_pointer(&d.mqtt, evd_mqtt_free);
    if (d.sup)
        evd_supervisor_free(d.sup);
    else
        evd_config_free(d.config_view);
    if (d.loop)
        g_main_loop_unref(d.loop);
    g_free(d.config_path);
    g_free(d.last_status);
    evd_fleet_clear(&d.fleet);
    gst_deinit();
    return status;
}
