/* evd_snapshot.c: stream views, latency windows and histograms, and the snapshots made of them
 * (evd_snapshot.h). */
#include "evd_snapshot.h"

#include <string.h>

const gdouble evd_latency_bucket_bounds[EVD_LATENCY_BUCKETS] = {
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0};

const gchar *evd_stream_state_name(EvdStreamState state)
{
    static const gchar *names[] = {"starting", "running", "stalled", "failed",
                                  "disabled", "error",   "frozen",  "degraded"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == EVD_STATE_COUNT);
    return (guint)state < G_N_ELEMENTS(names) ? names[state] : "?";
}

void evd_view_init(EvdView *view)
{
    memset(view, 0, sizeof *view);
    view->label_id = view->stable_label_id = -1;
}

void evd_view_update(EvdView *view, const GstEchoViewMeta *meta)
{
    view->label = meta->label;
    view->label_id = meta->label_id;
    view->confidence = meta->confidence;
    view->stable_label = meta->stable_label;
    view->stable_label_id = meta->stable_label_id;
    view->model_name = meta->model_name;
    view->n_probabilities = MIN(meta->n_probabilities, EVD_MAX_CLASSES);
    for (guint i = 0; i < view->n_probabilities; i++)
        view->probabilities[i] = meta->probabilities[i];
}

void evd_latency_add(EvdLatency *latency, GstClockTime value)
{
    gdouble s = (gdouble)value / GST_SECOND;
    guint b = 0;

    ev_stats_window_add(&latency->window, s * 1000.0);
    while (b < EVD_LATENCY_BUCKETS && s > evd_latency_bucket_bounds[b])
        b++;
    latency->buckets[b]++;
    latency->count++;
    latency->sum_s += s;
}

void evd_stream_snapshot_free(EvdStreamSnapshot *snap)
{
    if (!snap)
        return;
    g_free(snap->id);
    g_free(snap->source_type);
    g_free(snap->pipeline);
    g_free(snap->label);
    g_free(snap->stable_label);
    g_free(snap->probabilities);
    g_strfreev(snap->classes);
    g_free(snap->withheld);
    g_free(snap->model_name);
    g_free(snap->model_file);
    g_free(snap->backend);
    g_free(snap->last_error);
    g_free(snap);
}

void evd_snapshot_set_view(EvdStreamSnapshot *snap, const EvdView *view)
{
    snap->label = g_strdup(view->label);
    snap->label_id = view->label_id;
    snap->confidence = view->confidence;
    snap->stable_label = g_strdup(view->stable_label);
    snap->stable_label_id = view->stable_label_id;
    snap->n_probabilities = view->n_probabilities;
    snap->probabilities = g_memdup2(view->probabilities, sizeof(gdouble) * view->n_probabilities);
}

void evd_snapshot_set_latency_histogram(EvdStreamSnapshot *snap, const EvdLatency *latency)
{
    memcpy(snap->latency_buckets, latency->buckets, sizeof snap->latency_buckets);
    snap->latency_count = latency->count;
    snap->latency_sum_s = latency->sum_s;
}

void evd_snapshot_set_latency_window(EvdStreamSnapshot *snap, const ev_stats_window *window)
{
    ev_stats_summary summary;

    ev_stats_window_summarize(window, &summary);
    snap->latency_window = (guint)summary.n;
    snap->latency_mean_ms = summary.mean;
    snap->latency_p50_ms = summary.p50;
    snap->latency_p99_ms = summary.p99;
}
