/* evd_stream.h: the supervisor: one GStreamer pipeline per configured stream (and per
 * built-in sender), each with a state machine (starting, running, stalled, failed) driven by
 * bus messages, udpsrc timeouts and a frame clock; restarts with capped exponential backoff;
 * thread-safe snapshots of every stream's view and statistics for the HTTP side. */
#ifndef EVD_STREAM_H
#define EVD_STREAM_H

#include <glib.h>
#include <jansson.h>

#include "evd_config.h"

G_BEGIN_DECLS

typedef enum {
    EVD_STATE_STARTING,
    EVD_STATE_RUNNING,
    EVD_STATE_STALLED,
    EVD_STATE_FAILED,
    EVD_STATE_DISABLED,
    EVD_STATE_COUNT
} EvdStreamState;

const gchar *evd_stream_state_name(EvdStreamState state);

/* Prometheus buckets of the inference latency histogram, in seconds (+Inf implied). */
#define EVD_LATENCY_BUCKETS 12
extern const gdouble evd_latency_bucket_bounds[EVD_LATENCY_BUCKETS];

typedef struct {
    gchar *id;
    gchar *source_type;
    gchar *pipeline;
    gboolean enabled;
    gboolean is_sender;
    EvdStreamState state;
    gint64 state_since; /* wall clock, microseconds since the epoch */
    /* the view */
    gchar *label; /* NULL before the first result */
    gint label_id;
    gdouble confidence;
    gchar *stable_label;
    gint stable_label_id;
    guint n_probabilities;
    gdouble *probabilities;
    gchar **classes; /* names for probabilities (may be NULL) */
    gchar *model_name;
    gchar *model_file;
    gchar *backend;
    /* counters, cumulative over the stream's restarts */
    guint64 frames, inferred, skipped, received, dropped;
    guint64 view_changes;
    guint restarts;
    gdouble fps;
    /* latency of inferred results over the last 1024, milliseconds (mean of the window,
     * nearest-rank percentiles: base/ev_stats.h, as the element's); window 0: none yet */
    gdouble latency_mean_ms, latency_p50_ms, latency_p99_ms;
    guint latency_window;
    guint64 latency_buckets[EVD_LATENCY_BUCKETS + 1]; /* non-cumulative; last is +Inf */
    guint64 latency_count;
    gdouble latency_sum_s;
    /* RTP jitter buffer (has_packets FALSE for other sources) */
    gboolean has_packets;
    guint64 packets_pushed, packets_lost, packets_late, packets_duplicates;
    gchar *last_error;
    gint64 last_error_time;
} EvdStreamSnapshot;

void evd_stream_snapshot_free(EvdStreamSnapshot *snap);

typedef struct _EvdSupervisor EvdSupervisor;

/* Called with an event name ("view", "state") and its data (a new reference, to be taken);
 * from the main loop thread. */
typedef void (*EvdEventFunc)(const gchar *event, json_t *data, gpointer user_data);

EvdSupervisor *evd_supervisor_new(EvdEventFunc on_event, gpointer user_data);
/* Starts, restarts (changed config) and removes streams and senders to match config; streams
 * whose config is unchanged keep running. The supervisor keeps config (takes ownership). */
void evd_supervisor_apply(EvdSupervisor *sup, EvdConfig *config);
/* Stops every pipeline and frees the supervisor. */
void evd_supervisor_free(EvdSupervisor *sup);

/* Checks what can only be checked with GStreamer: elements and properties exist and accept the
 * configured values (errors name file:line:column), every model loads. */
gboolean evd_supervisor_validate(const EvdConfig *config, GError **err);

/* Thread-safe snapshots. */
GPtrArray *evd_supervisor_snapshot(EvdSupervisor *sup, gboolean senders);
EvdStreamSnapshot *evd_supervisor_snapshot_one(EvdSupervisor *sup, const gchar *id);

typedef struct {
    gboolean model_loaded;
    gchar *model_error; /* why not, or NULL */
    gchar *model_name;
    gchar *model_file;
    gchar *backend;
    guint n_streams, n_enabled, n_running;
    guint n_state[EVD_STATE_COUNT];
} EvdSupervisorStatus;

void evd_supervisor_status(EvdSupervisor *sup, EvdSupervisorStatus *status);
void evd_supervisor_status_clear(EvdSupervisorStatus *status);

G_END_DECLS

#endif
