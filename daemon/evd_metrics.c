/* evd_metrics.c: echoviewd's /metrics in the Prometheus text format: build, uptime, model and
 * HTTP gauges and counters, and per stream the element's counters (cumulative over restarts),
 * fps, confidence, the top view's probabilities and the inference latency histogram. Levels are
 * gauges; only values that never go down are counters. */
#include "evd_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "echoview.h"
#include "evd_mqtt.h"

/* ---- the exposition -------------------------------------------------------------------------- */

static void metric_header(GString *out, const gchar *name, const gchar *type, const gchar *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void append_label_value(GString *out, const gchar *value)
{
    for (const gchar *c = value; *c; c++) {
        if (*c == '\\' || *c == '"')
            g_string_append_c(out, '\\');
        if (*c == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *c);
    }
}

static void append_double(GString *out, gdouble v)
{
    gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_string_append(out, g_ascii_dtostr(buf, sizeof buf, v));
}

typedef enum {
    COL_FRAMES,
    COL_INFERRED,
    COL_SKIPPED,
    COL_DROPPED,
    COL_RECEIVED,
    COL_RESTARTS,
    COL_CHANGES,
    COL_PACKETS_RECEIVED,
    COL_PACKETS_LOST,
    COL_WARNINGS
} CounterColumn;

static guint64 snapshot_counter(const EvdStreamSnapshot *s, CounterColumn col)
{
    switch (col) {
    case COL_FRAMES:
        return s->frames;
    case COL_INFERRED:
        return s->inferred;
    case COL_SKIPPED:
        return s->skipped;
    case COL_DROPPED:
        return s->dropped;
    case COL_RECEIVED:
        return s->received;
    case COL_RESTARTS:
        return s->restarts;
    case COL_CHANGES:
        return s->view_changes;
    case COL_PACKETS_RECEIVED:
        return s->packets_pushed;
    case COL_PACKETS_LOST:
        return s->packets_lost;
    case COL_WARNINGS:
        return s->warnings;
    }
    return 0;
}

typedef enum {
    GAUGE_FPS,
    GAUGE_CONFIDENCE,
    GAUGE_WITHHELD,
    GAUGE_DIFFERENCE,
    GAUGE_FROZEN
} GaugeColumn;

static gdouble snapshot_gauge(const EvdStreamSnapshot *s, GaugeColumn col)
{
    switch (col) {
    case GAUGE_FPS:
        return s->fps;
    case GAUGE_CONFIDENCE:
        return s->confidence;
    case GAUGE_WITHHELD:
        return s->withheld ? 1 : 0;
    case GAUGE_DIFFERENCE:
        return MAX(s->frame_difference, 0.0);
    case GAUGE_FROZEN:
        return s->frozen_seconds;
    }
    return 0;
}

/* The Prometheus client libraries' process metrics (names and units as theirs), from /proc and
 * getrusage: what a soak or an alert on a leak watches. */
static void append_process(GString *out, gdouble uptime_s)
{
    struct rusage ru;
    struct rlimit rl;
    unsigned long pages_virtual = 0, pages_resident = 0;
    long page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "re");
    DIR *fds = opendir("/proc/self/fd");
    guint n_fds = 0;

    if (f) {
        if (fscanf(f, "%lu %lu", &pages_virtual, &pages_resident) != 2)
            pages_virtual = pages_resident = 0;
        fclose(f);
    }
    if (fds) {
        struct dirent *e;
        while ((e = readdir(fds)))
            if (e->d_name[0] != '.')
                n_fds++;
        closedir(fds);
        n_fds--; /* the one opendir holds */
    }
    getrusage(RUSAGE_SELF, &ru);
    metric_header(out, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.");
    g_string_append(out, "process_cpu_seconds_total ");
    append_double(out, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                           ru.ru_stime.tv_usec / 1e6);
    g_string_append_c(out, '\n');
    metric_header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    g_string_append_printf(out, "process_resident_memory_bytes %" G_GUINT64_FORMAT "\n",
                           (guint64)pages_resident * (guint64)page);
    metric_header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    g_string_append_printf(out, "process_virtual_memory_bytes %" G_GUINT64_FORMAT "\n",
                           (guint64)pages_virtual * (guint64)page);
    metric_header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    g_string_append_printf(out, "process_open_fds %u\n", n_fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        metric_header(out, "process_max_fds", "gauge",
                      "Maximum number of open file descriptors.");
        g_string_append_printf(out, "process_max_fds %" G_GUINT64_FORMAT "\n",
                               (guint64)rl.rlim_cur);
    }
    metric_header(out, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.");
    g_string_append(out, "process_start_time_seconds ");
    append_double(out, (gdouble)(gint64)(g_get_real_time() / 1e6 - uptime_s));
    g_string_append_c(out, '\n');
}

static gchar *metrics_instance;

void evd_metrics_set_instance(const gchar *instance)
{
    g_free(metrics_instance);
    metrics_instance = g_strdup(instance);
}

/* Every sample line of text with instance="NAME" as its first label: one place, so that no
 * metric can miss it (the fleet's alert rules join on it). */
static GString *with_instance_label(GString *text)
{
    GString *out, *label;
    const gchar *line = text->str;

    if (!metrics_instance)
        return text;
    label = g_string_new("instance=\"");
    append_label_value(label, metrics_instance);
    g_string_append_c(label, '"');
    out = g_string_sized_new(text->len + text->len / 4);
    while (*line) {
        const gchar *end = strchr(line, '\n');
        gsize n = end ? (gsize)(end - line + 1) : strlen(line);
        if (line[0] != '#' && line[0] != '\n') {
            gsize name = strcspn(line, "{ ");
            g_string_append_len(out, line, name);
            if (line[name] == '{') {
                g_string_append_c(out, '{');
                g_string_append_len(out, label->str, label->len);
                if (line[name + 1] != '}')
                    g_string_append_c(out, ',');
                g_string_append_len(out, line + name + 1, n - name - 1);
            } else {
                g_string_append_c(out, '{');
                g_string_append_len(out, label->str, label->len);
                g_string_append_c(out, '}');
                g_string_append_len(out, line + name, n - name);
            }
        } else {
            g_string_append_len(out, line, n);
        }
        line += n;
    }
    g_string_free(label, TRUE);
    g_string_free(text, TRUE);
    return out;
}

/* The MQTT output's gauges and counters: only when an mqtt section was ever configured. */
static void append_mqtt(GString *out)
{
    EvdMqttCounters c;

    if (!evd_mqtt_counters(&c))
        return;
    metric_header(out, "echoviewd_mqtt_connected", "gauge", "1 while connected to the broker.");
    g_string_append_printf(out, "echoviewd_mqtt_connected %d\n", c.connected ? 1 : 0);
    metric_header(out, "echoviewd_mqtt_published_total", "counter",
                  "MQTT messages the broker took (QoS 1: acknowledged; QoS 0: written).");
    g_string_append_printf(out, "echoviewd_mqtt_published_total %" G_GUINT64_FORMAT "\n",
                           c.published);
    metric_header(out, "echoviewd_mqtt_queue_dropped_total", "counter",
                  "MQTT messages dropped: the queue was full (the oldest goes), or a QoS 0 "
                  "message was lost with its connection.");
    g_string_append_printf(out, "echoviewd_mqtt_queue_dropped_total %" G_GUINT64_FORMAT "\n",
                           c.dropped);
    metric_header(out, "echoviewd_mqtt_queue_messages", "gauge",
                  "MQTT messages waiting for the broker or in flight.");
    g_string_append_printf(out, "echoviewd_mqtt_queue_messages %u\n", c.queue_depth);
    metric_header(out, "echoviewd_mqtt_queue_size_messages", "gauge",
                  "The MQTT queue's capacity (mqtt.queue-size).");
    g_string_append_printf(out, "echoviewd_mqtt_queue_size_messages %u\n", c.queue_size);
    metric_header(out, "echoviewd_mqtt_reconnects_total", "counter",
                  "Connections to the broker made after the first.");
    g_string_append_printf(out, "echoviewd_mqtt_reconnects_total %" G_GUINT64_FORMAT "\n",
                           c.reconnects);
    metric_header(out, "echoviewd_mqtt_connect_failures_total", "counter",
                  "Connection attempts that failed (unreachable, refused, TLS, no CONNACK).");
    g_string_append_printf(out, "echoviewd_mqtt_connect_failures_total %" G_GUINT64_FORMAT "\n",
                           c.connect_failures);
}

gchar *evd_metrics_text(EvdSupervisor *sup, const EvdHttpCounters *http, gdouble uptime_s,
                        gsize *len)
{
    static const struct {
        const gchar *name;
        CounterColumn col;
        const gchar *help;
    } counters[] = {
        {"echoviewd_stream_frames_total", COL_FRAMES, "Frames that went through the classifier."},
        {"echoviewd_stream_inferences_total", COL_INFERRED, "Inferences completed."},
        {"echoviewd_stream_skipped_inferences_total", COL_SKIPPED,
         "Scheduled inferences the classifier skipped (async mode, a newer frame won)."},
        {"echoviewd_stream_dropped_frames_total", COL_DROPPED,
         "Frames dropped before the classifier because it fell behind."},
        {"echoviewd_stream_received_frames_total", COL_RECEIVED, "Frames out of the source."},
        {"echoviewd_stream_restarts_total", COL_RESTARTS, "Pipeline restarts."},
        {"echoviewd_stream_view_changes_total", COL_CHANGES, "Changes of the stable view."},
        {"echoviewd_stream_warnings_total", COL_WARNINGS,
         "GStreamer warnings of the stream's pipeline (the log shows one per text per 10 s)."},
        /* RTP sources only (the others have no jitter buffer, so no sample) */
        {"echoviewd_stream_rtp_packets_received_total", COL_PACKETS_RECEIVED,
         "RTP packets out of the jitter buffer."},
        {"echoviewd_stream_rtp_packets_lost_total", COL_PACKETS_LOST,
         "RTP packets the jitter buffer declared lost."},
    };
    static const struct {
        const gchar *name;
        GaugeColumn col;
        const gchar *help;
    } gauges[] = {
        {"echoviewd_stream_frames_per_second", GAUGE_FPS,
         "Frames per second through the classifier over the last second."},
        {"echoviewd_stream_view_confidence_ratio", GAUGE_CONFIDENCE,
         "Probability of the top view of the latest inference (0 while the view is withheld)."},
        {"echoviewd_stream_view_withheld", GAUGE_WITHHELD,
         "1 while the stream reports no view (any state but running: error, frozen, stalled, "
         "...)."},
        {"echoviewd_stream_frame_difference", GAUGE_DIFFERENCE,
         "Mean absolute difference of the latest frame to the one before (of 255, sampled)."},
        {"echoviewd_stream_frames_unchanged_seconds", GAUGE_FROZEN,
         "Seconds the frames have stayed within frozen-difference of each other."},
    };
    GPtrArray *snaps = evd_supervisor_snapshot(sup, FALSE);
    EvdSupervisorStatus st;
    GString *out = g_string_sized_new(8192);
    guint64 requests = http->requests_total;
    const guint64 *by_class = http->responses_by_class;

    evd_supervisor_status(sup, &st);

    metric_header(out, "echoviewd_build_info", "gauge", "Version of echoviewd (always 1).");
    g_string_append_printf(out, "echoviewd_build_info{version=\"%s\"} 1\n", EV_VERSION);
    metric_header(out, "echoviewd_uptime_seconds", "gauge", "Seconds since echoviewd started.");
    g_string_append(out, "echoviewd_uptime_seconds ");
    append_double(out, uptime_s);
    g_string_append_c(out, '\n');
    append_process(out, uptime_s);
    metric_header(out, "echoviewd_model_loaded", "gauge",
                  "1 when every configured model is loaded.");
    g_string_append_printf(out, "echoviewd_model_loaded %d\n", st.model_loaded ? 1 : 0);
    metric_header(out, "echoviewd_http_requests_total", "counter", "HTTP requests answered.");
    g_string_append_printf(out, "echoviewd_http_requests_total %" G_GUINT64_FORMAT "\n", requests);
    metric_header(out, "echoviewd_http_responses_total", "counter",
                  "HTTP responses by status class.");
    for (guint i = 1; i < 6; i++)
        g_string_append_printf(
            out, "echoviewd_http_responses_total{code=\"%uxx\"} %" G_GUINT64_FORMAT "\n", i,
            by_class[i]);

    metric_header(out, "echoviewd_http_header_timeouts_total", "counter",
                  "Connections closed for not sending a complete request within header-timeout.");
    g_string_append_printf(out, "echoviewd_http_header_timeouts_total %" G_GUINT64_FORMAT "\n",
                           http->header_timeouts_total);
    metric_header(out, "echoviewd_http_evicted_connections_total", "counter",
                  "Connections without a request closed to make room near connection-limit.");
    g_string_append_printf(out, "echoviewd_http_evicted_connections_total %" G_GUINT64_FORMAT
                                "\n",
                           http->evicted_total);
    metric_header(out, "echoviewd_http_misdirected_requests_total", "counter",
                  "Requests refused (421) for a Host header naming none of the server's names.");
    g_string_append_printf(out,
                           "echoviewd_http_misdirected_requests_total %" G_GUINT64_FORMAT "\n",
                           http->misdirected_total);
    metric_header(out, "echoviewd_http_connections", "gauge", "Open HTTP connections.");
    g_string_append_printf(out, "echoviewd_http_connections %u\n", http->connections);
    metric_header(out, "echoviewd_http_event_clients", "gauge", "Open /api/v1/events streams.");
    g_string_append_printf(out, "echoviewd_http_event_clients %u\n", http->event_clients);

    append_mqtt(out);

    metric_header(out, "echoviewd_stream_up", "gauge", "1 when the stream is running.");
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        g_string_append(out, "echoviewd_stream_up{stream=\"");
        append_label_value(out, s->id);
        g_string_append_printf(out, "\"} %d\n", s->state == EVD_STATE_RUNNING);
    }
    metric_header(out, "echoviewd_stream_state", "gauge",
                  "1 for the state the stream is in, 0 for the others.");
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        for (guint k = 0; k < EVD_STATE_COUNT; k++) {
            g_string_append(out, "echoviewd_stream_state{stream=\"");
            append_label_value(out, s->id);
            g_string_append_printf(out, "\",state=\"%s\"} %d\n", evd_stream_state_name(k),
                                   s->state == k);
        }
    }
    for (gsize c = 0; c < G_N_ELEMENTS(counters); c++) {
        gboolean rtp_only =
            counters[c].col == COL_PACKETS_RECEIVED || counters[c].col == COL_PACKETS_LOST;

        metric_header(out, counters[c].name, "counter", counters[c].help);
        for (guint i = 0; i < snaps->len; i++) {
            EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
            if (rtp_only && !s->has_packets)
                continue;
            g_string_append_printf(out, "%s{stream=\"", counters[c].name);
            append_label_value(out, s->id);
            g_string_append_printf(out, "\"} %" G_GUINT64_FORMAT "\n",
                                   snapshot_counter(s, counters[c].col));
        }
    }
    for (gsize g = 0; g < G_N_ELEMENTS(gauges); g++) {
        metric_header(out, gauges[g].name, "gauge", gauges[g].help);
        for (guint i = 0; i < snaps->len; i++) {
            EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
            g_string_append_printf(out, "%s{stream=\"", gauges[g].name);
            append_label_value(out, s->id);
            g_string_append(out, "\"} ");
            append_double(out, snapshot_gauge(s, gauges[g].col));
            g_string_append_c(out, '\n');
        }
    }
    metric_header(out, "echoviewd_stream_rtp_packets_rejected_total", "counter",
                  "RTP packets dropped at the socket: from an address outside "
                  "source.allowed-senders, or of another SSRC than source.ssrc.");
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        if (!s->has_packets)
            continue;
        g_string_append(out, "echoviewd_stream_rtp_packets_rejected_total{stream=\"");
        append_label_value(out, s->id);
        g_string_append_printf(out, "\",reason=\"address\"} %" G_GUINT64_FORMAT "\n",
                               s->rejected_address);
        g_string_append(out, "echoviewd_stream_rtp_packets_rejected_total{stream=\"");
        append_label_value(out, s->id);
        g_string_append_printf(out, "\",reason=\"ssrc\"} %" G_GUINT64_FORMAT "\n",
                               s->rejected_ssrc);
    }
    metric_header(out, "echoviewd_stream_rtp_loss_recent_ratio", "gauge",
                  "Share of RTP packets lost over the last 5 s (degraded above max-loss).");
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        if (!s->has_packets)
            continue;
        g_string_append(out, "echoviewd_stream_rtp_loss_recent_ratio{stream=\"");
        append_label_value(out, s->id);
        g_string_append(out, "\"} ");
        append_double(out, s->loss_recent);
        g_string_append_c(out, '\n');
    }
    metric_header(out, "echoviewd_stream_view_probability_ratio", "gauge",
                  "Probability of each view in the latest inference.");
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        for (guint k = 0; k < s->n_probabilities && s->classes; k++) {
            g_string_append(out, "echoviewd_stream_view_probability_ratio{stream=\"");
            append_label_value(out, s->id);
            g_string_append(out, "\",view=\"");
            append_label_value(out, s->classes[k]);
            g_string_append(out, "\"} ");
            append_double(out, s->probabilities[k]);
            g_string_append_c(out, '\n');
        }
    }
    metric_header(out, "echoviewd_stream_inference_latency_seconds", "histogram",
                  "Time from a frame entering the classifier to its result.");
    for (guint i = 0; i < snaps->len; i++) {
        EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        guint64 cumulative = 0;
        for (guint b = 0; b <= EVD_LATENCY_BUCKETS; b++) {
            cumulative += s->latency_buckets[b];
            g_string_append(out, "echoviewd_stream_inference_latency_seconds_bucket{stream=\"");
            append_label_value(out, s->id);
            g_string_append(out, "\",le=\"");
            if (b < EVD_LATENCY_BUCKETS)
                append_double(out, evd_latency_bucket_bounds[b]);
            else
                g_string_append(out, "+Inf");
            g_string_append_printf(out, "\"} %" G_GUINT64_FORMAT "\n", cumulative);
        }
        g_string_append(out, "echoviewd_stream_inference_latency_seconds_sum{stream=\"");
        append_label_value(out, s->id);
        g_string_append(out, "\"} ");
        append_double(out, s->latency_sum_s);
        g_string_append_c(out, '\n');
        g_string_append(out, "echoviewd_stream_inference_latency_seconds_count{stream=\"");
        append_label_value(out, s->id);
        g_string_append_printf(out, "\"} %" G_GUINT64_FORMAT "\n", s->latency_count);
    }
    evd_supervisor_status_clear(&st);
    g_ptr_array_unref(snaps);
    out = with_instance_label(out);
    *len = out->len;
    return g_string_free(out, FALSE);
}
