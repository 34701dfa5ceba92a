/* evd_snapshot.h: what the HTTP side reads about a stream. A snapshot is a copy taken under the
 * supervisor's lock; it is made of a stream's counters and two pieces of live state defined
 * here: its view (the latest result the classifier attached to a frame) and its latency (a
 * window for mean, p50 and p99, by base/ev_stats.h's definition as the element's, and the
 * Prometheus histogram). */
#ifndef EVD_SNAPSHOT_H
#define EVD_SNAPSHOT_H

#include <glib.h>
#include <gst/gst.h>
#include <jansson.h>

#include "ev_stats.h"
#include "gstechoviewmeta.h"

G_BEGIN_DECLS

/* The states of a supervised stream (evd_stream.c drives them). */
typedef enum {
    EVD_STATE_STARTING,
    EVD_STATE_RUNNING,
    EVD_STATE_STALLED,
    EVD_STATE_FAILED,
    EVD_STATE_DISABLED,
    EVD_STATE_ERROR,  /* frames arrive but are not what the configuration says (their size) */
    EVD_STATE_FROZEN, /* frames arrive but have not changed for frozen-timeout */
    EVD_STATE_DEGRADED, /* frames arrive, but too many packets are lost or no view is confident */
    EVD_STATE_COUNT
} EvdStreamState;

const gchar *evd_stream_state_name(EvdStreamState state);

#define EVD_MAX_CLASSES 256

/* The window of the recent packet loss ratio (`degraded` above max-loss), seconds. */
#define EVD_LOSS_WINDOW_S 5

/* Prometheus buckets of the inference latency histogram, in seconds (+Inf implied). */
#define EVD_LATENCY_BUCKETS 12
extern const gdouble evd_latency_bucket_bounds[EVD_LATENCY_BUCKETS];

/* The latest result of a stream's classifier, copied from the EchoViewMeta of a frame. */
typedef struct {
    const gchar *label; /* interned by the meta library; NULL before the first result */
    gint label_id;
    gdouble confidence;
    const gchar *stable_label;
    gint stable_label_id;
    guint n_probabilities;
    gdouble probabilities[EVD_MAX_CLASSES];
    const gchar *model_name;
} EvdView;

/* Latency of inferred results (frame entering the classifier to its result). */
typedef struct {
    ev_stats_window window;                   /* milliseconds, the latest 1024 */
    guint64 buckets[EVD_LATENCY_BUCKETS + 1]; /* non-cumulative; last is +Inf */
    guint64 count;
    gdouble sum_s;
} EvdLatency;

void evd_view_init(EvdView *view);
void evd_view_update(EvdView *view, const GstEchoViewMeta *meta);
/* Adds the latency of one result (what the meta of an inferred frame carries). */
void evd_latency_add(EvdLatency *latency, GstClockTime value);

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
    gchar *withheld; /* why the view is not reported (state not running), or NULL */
    gchar *model_name;
    gchar *model_file;
    gchar *backend;
    /* counters, cumulative over the stream's restarts */
    guint64 frames, inferred, skipped, received, dropped;
    guint64 view_changes;
    guint64 warnings; /* GStreamer warnings (logged or counted by the rate limit) */
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
    gdouble loss_recent; /* lost / (received + lost) over the last EVD_LOSS_WINDOW_S seconds */
    guint64 rejected_address, rejected_ssrc; /* packets dropped by the ingress checks */
    gchar *last_error;
    gint64 last_error_time;
    /* the frame checks */
    gboolean has_frame_size;           /* rtp-raw */
    guint frame_width, frame_height;   /* of the latest complete frame, 0 before one */
    gdouble frame_difference;          /* < 0: none yet */
    gdouble frozen_seconds;            /* how long the frames have not changed */
} EvdStreamSnapshot;

void evd_stream_snapshot_free(EvdStreamSnapshot *snap);
/* The view's fields (classes are the caller's: they come from the model). */
void evd_snapshot_set_view(EvdStreamSnapshot *snap, const EvdView *view);
/* The histogram and totals: cheap, under the lock that guards latency. */
void evd_snapshot_set_latency_histogram(EvdStreamSnapshot *snap, const EvdLatency *latency);
/* Mean, p50, p99 and size of a copy of the window: it sorts, so call it without that lock. */
void evd_snapshot_set_latency_window(EvdStreamSnapshot *snap, const ev_stats_window *window);

/* A stream as the API shows it (GET /api/v1/streams/ID; detail adds the pipeline and the model
 * file) and as the MQTT state topic carries it (docs/MQTT.md): one JSON shape for both. */
json_t *evd_snapshot_json(const EvdStreamSnapshot *s, gboolean detail);
/* An ISO 8601 UTC time with milliseconds ("2026-01-02T03:04:05.678Z"); null for 0. */
json_t *evd_json_time(gint64 wall_us);

G_END_DECLS

#endif
