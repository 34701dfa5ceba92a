/* evd_supervisor.h: the supervisor: one GStreamer pipeline per configured stream (and per
 * built-in sender), each a supervised stream (evd_stream.h) with its state machine and
 * restarts; reloads that restart only what changed; the models held loaded (evd_models.h);
 * thread-safe snapshots of every stream's view and statistics for the HTTP side. */
#ifndef EVD_SUPERVISOR_H
#define EVD_SUPERVISOR_H

#include <glib.h>
#include <jansson.h>

#include "evd_config.h"
#include "evd_snapshot.h"
#include "evd_thumbnail.h"

G_BEGIN_DECLS

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

/* A copy of a stream's latest thumbnail: FALSE for no such stream; width 0 for no frame yet. */
gboolean evd_supervisor_thumbnail(EvdSupervisor *sup, const gchar *id, EvdThumbnail *out);
void evd_supervisor_status_clear(EvdSupervisorStatus *status);

G_END_DECLS

#endif
