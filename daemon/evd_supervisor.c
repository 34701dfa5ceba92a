/* evd_supervisor.c: the supervisor (evd_supervisor.h): the tick that drives every stream's
 * frame clock, reloads that add, restart and remove streams to match a new configuration, the
 * models held loaded (retried with backoff when one fails), and the snapshots and status the
 * HTTP side reads. */
#include "evd_supervisor.h"

#include <gst/gst.h>
#include <math.h>
#include <string.h>

#include "evd_models.h"
#include "evd_pipeline.h"
#include "evd_stream.h"

GST_DEBUG_CATEGORY(evd_debug);
#define GST_CAT_DEFAULT evd_debug

#define EVD_TICK_MS 250

struct _EvdSupervisor {
    GMutex lock;
    EvdStreamHost host; /* what every stream gets: the lock, the event callback */
    GPtrArray *streams; /* EvdStream, config order */
    GPtrArray *senders; /* EvdStream */
    EvdConfig *config;
    EvdModels *models;
    gboolean model_loaded;
    gchar *model_error;
    gint64 model_retry_at;
    guint model_failures;
    guint tick_id;
};

/* (Re)loads every distinct model of the config; sets model_loaded / model_error. The new set is
 * loaded before the old one is freed, so weights shared with running streams stay loaded. */
static void supervisor_load_models(EvdSupervisor *sup)
{
    gchar *error = NULL;
    EvdModels *models = evd_models_load(sup->config, &error), *old;

    g_mutex_lock(&sup->lock);
    old = sup->models;
    sup->models = models;
    sup->model_loaded = error == NULL;
    g_free(sup->model_error);
    sup->model_error = error;
    g_mutex_unlock(&sup->lock);
    if (error) {
        g_warning("%s", error);
        sup->model_retry_at =
            g_get_monotonic_time() +
            (gint64)(MIN(sup->config->restart_delay * pow(2.0, MIN(sup->model_failures, 30u)),
                         sup->config->restart_delay_max) *
                     G_USEC_PER_SEC);
        sup->model_failures++;
    } else {
        sup->model_failures = 0;
    }
    evd_models_free(old);
}

static EvdStream *find_stream(GPtrArray *list, const gchar *id)
{
    for (guint i = 0; i < list->len; i++) {
        EvdStream *st = g_ptr_array_index(list, i);
        if (strcmp(st->id, id) == 0)
            return st;
    }
    return NULL;
}

static void stream_stop_and_remove(EvdSupervisor *sup, GPtrArray *list, EvdStream *st)
{
    evd_stream_stop(st);
    g_mutex_lock(&sup->lock);
    g_ptr_array_remove(list, st);
    g_mutex_unlock(&sup->lock);
    g_message("%s %s: removed", st->is_sender ? "sender" : "stream", st->id);
    evd_stream_emit_removed(st);
    evd_stream_free(st);
}

static gboolean on_tick(gpointer data)
{
    EvdSupervisor *sup = data;
    gint64 now = g_get_monotonic_time();

    if (!sup->model_loaded && now >= sup->model_retry_at)
        supervisor_load_models(sup);
    for (guint i = 0; i < sup->streams->len; i++)
        evd_stream_tick(g_ptr_array_index(sup->streams, i), now);
    for (guint i = 0; i < sup->senders->len; i++)
        evd_stream_tick(g_ptr_array_index(sup->senders, i), now);
    return G_SOURCE_CONTINUE;
}

EvdSupervisor *evd_supervisor_new(EvdEventFunc on_event, gpointer user_data)
{
    EvdSupervisor *sup = g_new0(EvdSupervisor, 1);

    if (!evd_debug)
        GST_DEBUG_CATEGORY_INIT(evd_debug, "echoviewd", 0, "echoviewd supervisor");
    g_mutex_init(&sup->lock);
    sup->host.lock = &sup->lock;
    sup->host.on_event = on_event;
    sup->host.user_data = user_data;
    sup->streams = g_ptr_array_new();
    sup->senders = g_ptr_array_new();
    sup->tick_id = g_timeout_add(EVD_TICK_MS, on_tick, sup);
    return sup;
}

/* Whether config still has the stream (or, for a sender, the simulate entry) with id. */
static gboolean config_names(const EvdConfig *config, gboolean sender, const gchar *id)
{
    GPtrArray *list = sender ? config->senders : config->streams;

    for (guint j = 0; j < list->len; j++) {
        gconstpointer c = g_ptr_array_index(list, j);
        if (strcmp(sender ? ((const EvdSenderConfig *)c)->id : ((const EvdStreamConfig *)c)->id,
                   id) == 0)
            return TRUE;
    }
    return FALSE;
}

static void remove_gone(EvdSupervisor *sup, GPtrArray *list, const EvdConfig *config)
{
    for (guint i = list->len; i > 0; i--) {
        EvdStream *st = g_ptr_array_index(list, i - 1);
        if (!config_names(config, st->is_sender, st->id))
            stream_stop_and_remove(sup, list, st);
    }
}

void evd_supervisor_apply(EvdSupervisor *sup, EvdConfig *config)
{
    EvdConfig *old = sup->config;
    GPtrArray *streams = g_ptr_array_new(), *senders = g_ptr_array_new();
    GPtrArray *to_start = g_ptr_array_new();

    sup->config = config;
    supervisor_load_models(sup);

    /* Remove what is gone. */
    remove_gone(sup, sup->streams, config);
    remove_gone(sup, sup->senders, config);

    /* Add what is new, restart what changed, leave the rest alone. */
    for (guint i = 0; i < config->senders->len; i++) {
        EvdSenderConfig *sc = g_ptr_array_index(config->senders, i);
        EvdStream *st = find_stream(sup->senders, sc->id);
        gchar *fp = evd_pipeline_fingerprint_sender(sc);

        if (!st) {
            st = evd_stream_new(&sup->host, sc->id, TRUE);
            evd_stream_configure_sender(st, sc);
            g_ptr_array_add(to_start, st);
        } else if (strcmp(fp, st->fingerprint) != 0) {
            evd_stream_stop(st);
            evd_stream_configure_sender(st, sc);
            g_ptr_array_add(to_start, st);
        }
        g_ptr_array_add(senders, st);
        g_free(fp);
    }
    for (guint i = 0; i < config->streams->len; i++) {
        EvdStreamConfig *sc = g_ptr_array_index(config->streams, i);
        EvdStream *st = find_stream(sup->streams, sc->id);
        gchar *fp = evd_pipeline_fingerprint_stream(sc);

        if (!st) {
            st = evd_stream_new(&sup->host, sc->id, FALSE);
            evd_stream_configure(st, sc);
            if (sc->enabled)
                g_ptr_array_add(to_start, st);
        } else if (strcmp(fp, st->fingerprint) != 0) {
            g_message("stream %s: configuration changed", st->id);
            evd_stream_stop(st);
            evd_stream_configure(st, sc);
            if (sc->enabled)
                g_ptr_array_add(to_start, st);
            else
                evd_stream_set_state(st, EVD_STATE_DISABLED, "disabled in the configuration");
        }
        g_ptr_array_add(streams, st);
        g_free(fp);
    }
    g_mutex_lock(&sup->lock);
    g_ptr_array_unref(sup->streams);
    g_ptr_array_unref(sup->senders);
    sup->streams = streams;
    sup->senders = senders;
    g_mutex_unlock(&sup->lock);
    for (guint i = 0; i < streams->len; i++)
        evd_stream_set_backoff(g_ptr_array_index(streams, i), config->restart_delay,
                               config->restart_delay_max);
    for (guint i = 0; i < senders->len; i++)
        evd_stream_set_backoff(g_ptr_array_index(senders, i), config->restart_delay,
                               config->restart_delay_max);
    for (guint i = 0; i < to_start->len; i++)
        evd_stream_start(g_ptr_array_index(to_start, i));
    g_ptr_array_unref(to_start);
    evd_config_free(old);
}

void evd_supervisor_free(EvdSupervisor *sup)
{
    if (!sup)
        return;
    g_source_remove(sup->tick_id);
    for (guint i = 0; i < sup->streams->len; i++)
        evd_stream_free(g_ptr_array_index(sup->streams, i));
    for (guint i = 0; i < sup->senders->len; i++)
        evd_stream_free(g_ptr_array_index(sup->senders, i));
    g_ptr_array_unref(sup->streams);
    g_ptr_array_unref(sup->senders);
    evd_models_free(sup->models);
    g_free(sup->model_error);
    evd_config_free(sup->config);
    g_mutex_clear(&sup->lock);
    g_free(sup);
}

GPtrArray *evd_supervisor_snapshot(EvdSupervisor *sup, gboolean senders)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)evd_stream_snapshot_free);

    GPtrArray *windows = g_ptr_array_new_with_free_func(g_free);

    g_mutex_lock(&sup->lock);
    {
        GPtrArray *list = senders ? sup->senders : sup->streams;
        for (guint i = 0; i < list->len; i++) {
            EvdStream *st = g_ptr_array_index(list, i);
            g_ptr_array_add(out,
                            evd_stream_snapshot(st, evd_models_find(sup->models, st->model_file)));
            g_ptr_array_add(windows,
                            senders ? NULL
                                    : g_memdup2(&st->latency.window, sizeof st->latency.window));
        }
    }
    g_mutex_unlock(&sup->lock);
    /* the sorts for the percentiles run on the copies, with the streaming threads free */
    for (guint i = 0; !senders && i < out->len; i++) {
        EvdStreamSnapshot *snap = g_ptr_array_index(out, i);
        evd_snapshot_set_latency_window(snap, g_ptr_array_index(windows, i));
    }
    g_ptr_array_unref(windows);
    return out;
}

EvdStreamSnapshot *evd_supervisor_snapshot_one(EvdSupervisor *sup, const gchar *id)
{
    GPtrArray *all = evd_supervisor_snapshot(sup, FALSE);
    EvdStreamSnapshot *found = NULL;

    for (guint i = 0; i < all->len && !found; i++) {
        EvdStreamSnapshot *snap = g_ptr_array_index(all, i);
        if (strcmp(snap->id, id) == 0)
            found = g_ptr_array_steal_index(all, i);
    }
    g_ptr_array_unref(all);
    return found;
}

void evd_supervisor_status(EvdSupervisor *sup, EvdSupervisorStatus *status)
{
    memset(status, 0, sizeof *status);
    g_mutex_lock(&sup->lock);
    status->model_loaded = sup->model_loaded;
    status->model_error = g_strdup(sup->model_error);
    if (sup->streams->len > 0) {
        EvdStream *first = g_ptr_array_index(sup->streams, 0);
        const EvdModelInfo *info = evd_models_find(sup->models, first->model_file);
        status->model_file = g_strdup(first->model_file);
        status->model_name = g_strdup(info ? info->name : NULL);
        status->backend = g_strdup(first->backend);
    }
    for (guint i = 0; i < sup->streams->len; i++) {
        EvdStream *st = g_ptr_array_index(sup->streams, i);
        status->n_streams++;
        if (st->enabled)
            status->n_enabled++;
        if (st->state == EVD_STATE_RUNNING)
            status->n_running++;
        status->n_state[st->state]++;
    }
    g_mutex_unlock(&sup->lock);
}

void evd_supervisor_status_clear(EvdSupervisorStatus *status)
{
    g_free(status->model_error);
    g_free(status->model_name);
    g_free(status->model_file);
    g_free(status->backend);
}

gboolean evd_supervisor_thumbnail(EvdSupervisor *sup, const gchar *id, EvdThumbnail *out)
{
    EvdStream *st;

    g_mutex_lock(&sup->lock);
    st = find_stream(sup->streams, id);
    if (st)
        *out = st->thumb;
    g_mutex_unlock(&sup->lock);
    return st != NULL;
}
