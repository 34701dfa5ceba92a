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

/* ---- JSON -------------------------------------------------------------------------------- */

json_t *evd_json_time(gint64 wall_us)
{
    GDateTime *dt = g_date_time_new_from_unix_utc(wall_us / G_USEC_PER_SEC);
    gchar *s;
    json_t *j;

    if (!dt || wall_us == 0) {
        if (dt)
            g_date_time_unref(dt);
        return json_null();
    }
    s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
    j = json_sprintf("%s.%03dZ", s, (int)((wall_us / 1000) % 1000));
    g_free(s);
    g_date_time_unref(dt);
    return j;
}

json_t *evd_snapshot_json(const EvdStreamSnapshot *s, gboolean detail)
{
    json_t *probabilities = json_object(), *o;
    gdouble loss = 0;

    for (guint i = 0; i < s->n_probabilities; i++) {
        gchar fallback[16];
        const gchar *name = s->classes ? s->classes[i] : NULL;
        if (!name) {
            g_snprintf(fallback, sizeof fallback, "%u", i);
            name = fallback;
        }
        json_object_set_new(probabilities, name, json_real(s->probabilities[i]));
    }
    if (s->packets_pushed + s->packets_lost > 0)
        loss = (gdouble)s->packets_lost / (gdouble)(s->packets_pushed + s->packets_lost);
    o = json_pack("{s:s, s:s, s:b, s:s, s:o, s:{s:s?, s:i, s:f, s:s?, s:i, s:o}, s:s?, s:s?, "
                  "s:I, s:I, s:I, s:I, s:I, s:f, s:{s:f, s:f, s:f, s:i}, s:I, s:I, s:s?, s:o}",
                  "id", s->id, "source", s->source_type, "enabled", s->enabled, "state",
                  evd_stream_state_name(s->state), "state_since", evd_json_time(s->state_since), "view",
                  "label", s->label, "label_id", s->label_id, "confidence", s->confidence,
                  "stable_label", s->stable_label, "stable_label_id", s->stable_label_id,
                  "probabilities", probabilities, "model", s->model_name, "backend", s->backend,
                  "frames", (json_int_t)s->frames, "inferred", (json_int_t)s->inferred, "skipped",
                  (json_int_t)s->skipped, "received", (json_int_t)s->received, "dropped",
                  (json_int_t)s->dropped, "fps", s->fps, "latency_ms", "mean", s->latency_mean_ms,
                  "p50", s->latency_p50_ms, "p99", s->latency_p99_ms, "window",
                  (int)s->latency_window, "view_changes", (json_int_t)s->view_changes, "restarts",
                  (json_int_t)s->restarts, "last_error", s->last_error, "last_error_time",
                  evd_json_time(s->last_error_time));
    if (s->has_packets)
        json_object_set_new(
            o, "packets",
            json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I}", "received",
                      (json_int_t)s->packets_pushed, "lost", (json_int_t)s->packets_lost, "late",
                      (json_int_t)s->packets_late, "duplicates",
                      (json_int_t)s->packets_duplicates, "loss_ratio", loss, "loss_ratio_recent",
                      s->loss_recent, "rejected_address", (json_int_t)s->rejected_address,
                      "rejected_ssrc", (json_int_t)s->rejected_ssrc));
    else
        json_object_set_new(o, "packets", json_null());
    json_object_set_new(json_object_get(o, "view"), "withheld",
                        s->withheld ? json_string(s->withheld) : json_null());
    json_object_set_new(o, "frame_size",
                        s->has_frame_size && s->frame_width
                            ? json_pack("{s:i, s:i}", "width", (int)s->frame_width, "height",
                                        (int)s->frame_height)
                            : json_null());
    json_object_set_new(o, "frame_difference",
                        s->frame_difference >= 0 ? json_real(s->frame_difference) : json_null());
    json_object_set_new(o, "frozen_seconds", json_real(s->frozen_seconds));
    json_object_set_new(o, "warnings", json_integer((json_int_t)s->warnings));
    if (detail) {
        json_object_set_new(o, "pipeline", json_string(s->pipeline));
        json_object_set_new(o, "model_file",
                            s->model_file ? json_string(s->model_file) : json_null());
    }
    return o;
}
