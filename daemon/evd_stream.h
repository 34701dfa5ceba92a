/* evd_stream.h: one supervised pipeline (a stream, or a built-in sender), inside the daemon.
 * Its state machine (starting, running, stalled, failed, disabled) is driven on the main loop
 * thread by bus messages, udpsrc timeouts and the supervisor's tick; a failed or stalled
 * pipeline is rebuilt after a capped exponential backoff. The streaming threads only count
 * frames and copy the classifier's EchoViewMeta, under the supervisor's lock; the lock is never
 * held across a GStreamer state change, so a streaming thread waiting for it can never block a
 * teardown. */
#ifndef EVD_STREAM_H
#define EVD_STREAM_H

#include <gst/gst.h>

#include "evd_checks.h"
#include "evd_config.h"
#include "evd_models.h"
#include "evd_snapshot.h"
#include "evd_supervisor.h"
#include "evd_thumbnail.h"

G_BEGIN_DECLS

/* frames tracked through the leaky queue (it holds 2; the rest is slack) */
#define EVD_QUEUE_TRACK 16

GST_DEBUG_CATEGORY_EXTERN(evd_debug);

/* What a stream needs from its supervisor. */
typedef struct {
    GMutex *lock; /* guards the fields marked "under lock" */
    EvdEventFunc on_event;
    gpointer user_data;
} EvdStreamHost;

typedef struct {
    EvdStreamHost host;
    gboolean is_sender;
    gchar *id;
    gchar *description;
    gchar *fingerprint;
    gchar *source_type;
    gchar *model_file;
    gchar *backend;
    gboolean enabled;
    gboolean has_jitter; /* rtp-* and sdp: jitter-buffer statistics */
    gboolean has_udp;    /* rtp-*: our own udpsrc (ingress checks, stall reasons) */
    gdouble stall_timeout;
    gdouble restart_delay, restart_delay_max; /* the backoff, from the configuration */
    /* the frame checks (evd_checks.h), from the configuration */
    gchar *sampling;
    guint depth, width, height; /* rtp-raw: the configured frame; width 0: no size check */
    gdouble frozen_timeout;     /* 0: off */
    gdouble frozen_difference;
    gdouble max_loss;        /* recent loss ratio above which the stream is `degraded` */
    gdouble unknown_timeout; /* seconds of an unknown stable view before `degraded`; 0: off */
    guint framerate;         /* source.framerate: the sender's rate, 0: not declared */
    gdouble min_fps_ratio;   /* classified fps below this share of framerate ... */
    gdouble low_fps_timeout; /* ... for this long: `degraded`; 0: off */
    GPtrArray *allowed; /* rtp-*: GInetAddressMask that may send (NULL: any) */
    gboolean has_ssrc;
    guint32 ssrc;
    guint payload; /* rtp-*: the configured payload type */
    guint port;    /* rtp-*: the configured UDP port */

    /* main thread only */
    GstElement *pipeline;
    GstElement *classify;
    GstElement *jitter;
    guint restart_timer;
    guint failures;       /* consecutive, for the backoff */
    gint64 running_since; /* monotonic */
    gint64 fps_time;
    guint64 fps_frames;
    guint64 fps_received; /* `received` at fps_time */
    gdouble fps_in;       /* frames out of the source in the last second */
    gint64 low_fps_since; /* monotonic: fps fell below min-fps-ratio x framerate, 0: it is not */
    gboolean withheld_sent; /* a `view` event said the view is withheld */
    /* cumulative jitter-buffer counts, one sample a second, for the recent loss */
    guint64 loss_pushed[EVD_LOSS_WINDOW_S + 1], loss_lost[EVD_LOSS_WINDOW_S + 1];
    guint loss_samples;
    GHashTable *warnings;   /* text -> EvdWarning: the rate limit of warning log lines */

    /* the classifier's streaming thread only */
    EvdFrozenCheck frozen;
    GstCaps *frozen_caps;      /* the caps of frozen_info */
    GstVideoInfo frozen_info;  /* the classifier's input (frozen check, thumbnail) */

    /* under lock */
    EvdStreamState state;
    gint64 state_since_mono, state_since_wall;
    gint64 last_frame;    /* monotonic, 0: none in this pipeline */
    guint64 probe_frames; /* frames out of the classifier, cumulative */
    guint64 received;     /* frames into the queue, cumulative */
    guint64 dropped;      /* frames the leaky queue dropped, cumulative */
    /* the frames now in the leaky queue, oldest first, by identity only (no reference held):
     * when a frame leaves, the ones queued before it that never left were dropped */
    const GstBuffer *queued[EVD_QUEUE_TRACK];
    guint queued_head, queued_count;
    guint64 frames_base, inferred_base, skipped_base;
    guint64 frames_cur, inferred_cur, skipped_cur;
    guint64 pushed_base, lost_base, late_base, dup_base;
    guint64 pushed_cur, lost_cur, late_cur, dup_cur;
    guint64 view_changes;
    guint64 warnings_total; /* GStreamer warnings, logged or counted */
    guint restarts;
    gdouble fps;
    EvdView view;
    EvdLatency latency;
    gchar *last_error;
    gint64 last_error_time;
    GstElement *sdp_jitter; /* sdp: the jitter buffer sdpdemux made (a ref), for the counters */
    EvdThumbnail thumb;     /* the latest frame, small (once a second) */
    EvdSizeCheck size;        /* fed by the depayloader's sink pad probe */
    gint64 frozen_since;      /* copied from `frozen` */
    gint64 unknown_since;     /* monotonic: the stable view became unknown, 0: it is known */
    gdouble loss_recent;      /* see EVD_LOSS_WINDOW_S */
    gdouble frame_difference; /* copied from `frozen`; < 0: none yet */
    /* what arrives at udpsrc, for the reasons of a stall */
    gint64 udp_last;          /* monotonic: the latest packet, 0: none in this pipeline */
    gint64 udp_last_other_pt; /* monotonic: the latest packet of another payload type */
    guint udp_other_pt;       /* its payload type */
    guint64 udp_window_packets; /* packets since the stream last had a frame */
    /* packets dropped at udpsrc: from an address not allowed, of another SSRC (cumulative) */
    guint64 rejected_address, rejected_ssrc;
    guint64 rejected_logged; /* rejected_address + rejected_ssrc when last logged */
    gint64 rejected_last;    /* monotonic */
    gchar rejected_from[64]; /* the latest rejected sender address */
    guint32 rejected_ssrc_value;
    gboolean rejected_by_ssrc; /* the latest rejection was for the SSRC */
} EvdStream;

EvdStream *evd_stream_new(const EvdStreamHost *host, const gchar *id, gboolean is_sender);
/* Stops the pipeline (and a pending restart) and frees the stream. */
void evd_stream_free(EvdStream *st);
/* Points st at its new configuration: call with the pipeline stopped or unchanged. */
void evd_stream_configure(EvdStream *st, const EvdStreamConfig *sc);
void evd_stream_configure_sender(EvdStream *st, const EvdSenderConfig *sc);
void evd_stream_set_backoff(EvdStream *st, gdouble restart_delay, gdouble restart_delay_max);

/* Builds the pipeline from the description and sets it PLAYING without waiting. */
void evd_stream_start(EvdStream *st);
/* Tears the pipeline down and forgets the backoff, before a restart with a new configuration. */
void evd_stream_stop(EvdStream *st);
void evd_stream_set_state(EvdStream *st, EvdStreamState state, const gchar *reason);
/* The frame clock: promotes and demotes the stream, keeps fps and counters fresh. */
void evd_stream_tick(EvdStream *st, gint64 now);
/* Posts the "removed" state event (the supervisor then frees the stream). */
void evd_stream_emit_removed(EvdStream *st);

/* A snapshot of everything but the latency window's percentiles (those sort: see
 * evd_snapshot_set_latency_window). Call under lock; model may be NULL. */
EvdStreamSnapshot *evd_stream_snapshot(const EvdStream *st, const EvdModelInfo *model);

G_END_DECLS

#endif
