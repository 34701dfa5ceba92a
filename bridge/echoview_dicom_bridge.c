/* echoview_dicom_bridge.c: echoview-dicom-bridge, the receiving side of the DICOM-to-RTP bridge.
 * A C-STORE service class provider (media/dicom.h, DCMTK) accepts cine loops pushed by scanners
 * or a PACS; each loop is streamed, as it arrives, to the RTP destination configured for the
 * sending station's AE title (bridge/bridge_sender.h), and the latest loop repeats until the
 * next one. Bad files and aborted associations are logged and answered; the service goes on.
 * Received loops wait in SPOOL/queued/<calling AE>/ until played, so those acknowledged but not
 * yet played when the bridge stops are played after the next start. SIGTERM/SIGINT stop it
 * within about a second. */
#include <errno.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <gst/gst.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bridge_config.h"
#include "bridge_sender.h"
#include "dicom.h"

static volatile sig_atomic_t stop_requested;

typedef struct {
    BridgeConfig *config;
    BridgeSender **senders; /* one per destination, same order */
} Bridge;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int should_stop(void *user)
{
    (void)user;
    return stop_requested;
}

/* Every line on stderr starts with the UTC time, unless stderr is the journal (which has its
 * own): a bridge run from a shell or a container used to log lines without any time. */
static void print_with_time(const gchar *text)
{
    static gboolean journal = -1;

    if (journal == -1)
        journal = getenv("JOURNAL_STREAM") != NULL;
    if (!journal) {
        gint64 now = g_get_real_time();
        GDateTime *dt = g_date_time_new_from_unix_utc(now / G_USEC_PER_SEC);
        gchar *stamp = dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S") : NULL;
        fprintf(stderr, "%s.%03dZ ", stamp ? stamp : "?", (int)(now / 1000 % 1000));
        g_free(stamp);
        if (dt)
            g_date_time_unref(dt);
    }
    fputs(text, stderr);
    fflush(stderr);
}

/* Where the loops from one calling AE title wait: SPOOL/queued/<AE, URI-escaped>/. */
static gchar *queue_dir(const Bridge *b, const BridgeDestination *d)
{
    gchar *name = g_uri_escape_string(d->calling_ae, NULL, FALSE);
    gchar *dir = g_build_filename(b->config->spool, "queued", name, NULL);
    g_free(name);
    return dir;
}

static gint compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const gchar *const *)a, *(const gchar *const *)b);
}

/* Loops received before a stop and never played: queued again, oldest first. */
static void requeue(Bridge *b, guint i)
{
    const BridgeDestination *d = g_ptr_array_index(b->config->destinations, i);
    gchar *dir = queue_dir(b, d);
    GDir *folder = g_dir_open(dir, 0, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const gchar *name;

    while (folder && (name = g_dir_read_name(folder)))
        if (g_str_has_suffix(name, ".dcm"))
            g_ptr_array_add(names, g_build_filename(dir, name, NULL));
    if (folder)
        g_dir_close(folder);
    g_ptr_array_sort(names, compare_names);
    for (guint k = 0; k < names->len; k++)
        bridge_sender_push(b->senders[i], g_ptr_array_index(names, k), TRUE);
    if (names->len)
        g_printerr("echoview-dicom-bridge: %s: re-queued %u loop(s) received before the "
                   "restart\n",
                   d->calling_ae, names->len);
    g_ptr_array_unref(names);
    g_free(dir);
}

static void log_line(void *user, int is_error, const char *line)
{
    (void)user;
    g_printerr("echoview-dicom-bridge: %s%s\n", is_error ? "error: " : "", line);
}

static int accept_calling_ae(void *user, const char *calling_ae)
{
    Bridge *b = user;
    return bridge_config_route(b->config, calling_ae) != NULL;
}

static void on_file_locked(Bridge *b, const BridgeDestination *d, const char *path,
                           const char *calling_ae, const media_dicom_info *info);

static void on_file(void *user, const char *path, const char *calling_ae,
                    const media_dicom_info *info)
{
    static GMutex lock; /* associations run on their own threads */
    Bridge *b = user;
    const BridgeDestination *d = bridge_config_route(b->config, calling_ae);

    g_mutex_lock(&lock);
    on_file_locked(b, d, path, calling_ae, info);
    g_mutex_unlock(&lock);
}

static void on_file_locked(Bridge *b, const BridgeDestination *d, const char *path,
                           const char *calling_ae, const media_dicom_info *info)
{
    if (!d) { /* refused at association; a config reload could get here */
        g_printerr("echoview-dicom-bridge: error: no destination for %s, dropping %s\n", calling_ae,
                   path);
        g_unlink(path);
        return;
    }
    for (guint i = 0; i < b->config->destinations->len; i++)
        if (g_ptr_array_index(b->config->destinations, i) == d) {
            /* acknowledged: it waits in the destination's queue folder until played */
            static guint sequence;
            gchar *dir = queue_dir(b, d), *base = g_path_get_basename(path), *queued;
            queued = g_strdup_printf("%s/%020" G_GINT64_FORMAT "-%04u-%s%s", dir,
                                     g_get_real_time(), sequence++ % 10000, base,
                                     g_str_has_suffix(base, ".dcm") ? "" : ".dcm");
            if (g_mkdir_with_parents(dir, 0700) != 0 || g_rename(path, queued) != 0) {
                g_printerr("echoview-dicom-bridge: error: %s: cannot queue %s in %s: %s\n",
                           calling_ae, path, dir, g_strerror(errno));
                g_free(queued);
                queued = g_strdup(path);
            }
            g_printerr("echoview-dicom-bridge: %s: queued %u frame(s) for %s:%u\n", calling_ae,
                       info->frames, d->host, d->port);
            bridge_sender_push(b->senders[i], queued, TRUE);
            g_free(queued);
            g_free(base);
            g_free(dir);
            return;
        }
}

static const char *usage =
    "usage: echoview-dicom-bridge --config FILE | --check-config FILE\n"
    "  A DICOM C-STORE receiver (US Multi-frame / US Image Storage) that streams each cine\n"
    "  loop it receives as RTP to the destination configured for the sending AE title.\n"
    "  The configuration is documented in conf/echoview-dicom-bridge.yaml.\n";

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    gboolean check_only = FALSE;
    GError *error = NULL;
    Bridge b = {0};
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "--check-config")) &&
                   i + 1 < argc) {
            check_only = !strcmp(argv[i], "--check-config");
            config_path = argv[++i];
        } else {
            fprintf(stderr, "echoview-dicom-bridge: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (!config_path) {
        fputs(usage, stderr);
        return 2;
    }
    b.config = bridge_config_load(config_path, &error);
    if (!b.config) {
        fprintf(stderr, "echoview-dicom-bridge: %s\n", error->message);
        g_error_free(error);
        return 1;
    }
    /* the TLS files are read now, by the check and before a start plays queued loops */
    media_dicom_scp_config tls = {
        .tls_certificate = b.config->tls_certificate,
        .tls_key = b.config->tls_key,
        .tls_ca = b.config->tls_ca,
        .tls_require_client_cert = b.config->tls_require_client_cert,
    };
    ev_error tls_err = {0};
    if (media_dicom_tls_check(&tls, &tls_err) != EV_OK) {
        fprintf(stderr, "echoview-dicom-bridge: %s: %s\n", config_path, tls_err.message);
        bridge_config_free(b.config);
        return 1;
    }
    if (check_only) {
        printf("%s: ok (%u destination(s)%s)\n", config_path, b.config->destinations->len,
               b.config->tls_certificate ? ", DICOM TLS" : "");
        bridge_config_free(b.config);
        return 0;
    }
    g_set_printerr_handler(print_with_time);
    gst_init(NULL, NULL);
    if (g_mkdir_with_parents(b.config->spool, 0700) != 0) {
        fprintf(stderr, "echoview-dicom-bridge: spool %s: %s\n", b.config->spool,
                g_strerror(errno));
        goto out;
    }
    b.senders = g_new0(BridgeSender *, b.config->destinations->len);
    for (guint i = 0; i < b.config->destinations->len; i++) {
        const BridgeDestination *d = g_ptr_array_index(b.config->destinations, i);
        BridgeSenderConfig sc = {
            .host = d->host,
            .port = d->port,
            .payload = d->payload,
            .encoding = d->encoding,
            .raw_i420 = d->raw_i420,
            .width = d->width,
            .height = d->height,
            .loop = d->loop ? BRIDGE_LOOP_LATEST : BRIDGE_LOOP_NONE,
            .sdp_path = d->sdp,
            .name = d->calling_ae,
            .keep_queued = TRUE,
        };
        gchar *prefix = g_strdup_printf("echoview-dicom-bridge: %s", d->calling_ae);
        sc.log_prefix = prefix;
        b.senders[i] = bridge_sender_new(&sc, &error);
        g_free(prefix);
        if (!b.senders[i]) {
            fprintf(stderr, "echoview-dicom-bridge: destination %s: %s\n", d->calling_ae,
                    error->message);
            g_clear_error(&error);
            goto out;
        }
        g_printerr("echoview-dicom-bridge: %s -> %s:%u (%s %ux%u)%s%s\n", d->calling_ae, d->host,
                   d->port, bridge_encoding_name(d->encoding), d->width & ~1u, d->height & ~1u,
                   d->sdp ? ", SDP " : "", d->sdp ? d->sdp : "");
        requeue(&b, i);
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    media_dicom_scp_counters counters = {0};
    media_dicom_scp_config scp = {
        .bind_address = b.config->bind_address,
        .port = (int)b.config->port,
        .max_associations = (int)b.config->max_associations,
        .idle_timeout_s = (int)b.config->idle_timeout,
        .spool_max_bytes = (unsigned long long)b.config->spool_max_mb << 20,
        .counters = &counters,
        .ae_title = b.config->ae_title,
        .spool_dir = b.config->spool,
        .acse_timeout_s = (int)b.config->acse_timeout,
        .dimse_timeout_s = (int)b.config->dimse_timeout,
        .tls_certificate = b.config->tls_certificate,
        .tls_key = b.config->tls_key,
        .tls_ca = b.config->tls_ca,
        .tls_require_client_cert = b.config->tls_require_client_cert,
        .on_file = on_file,
        .log = log_line,
        .should_stop = should_stop,
        .accept_calling_ae = accept_calling_ae,
        .user = &b,
    };
    ev_error err = {0};
    if (media_dicom_scp_run(&scp, &err) != EV_OK) {
        fprintf(stderr, "echoview-dicom-bridge: %s\n", err.message);
        goto out;
    }
    g_printerr("echoview-dicom-bridge: stopped: %lu association(s), %lu C-STORE(s) stored, "
               "%lu idle connection(s) closed, %lu association(s) rejected (busy), "
               "%lu C-STORE(s) refused (spool full), %lu TLS connection(s) refused\n",
               counters.associations, counters.stored, counters.idle_aborted,
               counters.busy_refused, counters.spool_refused, counters.tls_refused);
    rc = 0;
out:
    for (guint i = 0; b.senders && i < b.config->destinations->len; i++)
        bridge_sender_free(b.senders[i]);
    g_free(b.senders);
    bridge_config_free(b.config);
    return rc;
}
