/* gstechoviewmodels.c: refcounted registry of shared models under one mutex. */
#include "gstechoviewmodels.h"

#include <string.h>

struct _GstEchoViewModelRef {
    gchar *instance_id; /* NULL for a private model */
    gchar *path;
    ev_model *model;
    guint refcount; /* protected by registry_lock */
};

static GMutex registry_lock;
static GHashTable *registry; /* instance_id -> GstEchoViewModelRef, under registry_lock */

static GstEchoViewModelRef *model_ref_load(const gchar *instance_id, const gchar *path,
                                           ev_error *err)
{
    ev_model *model = NULL;
    GstEchoViewModelRef *ref;

    if (ev_model_load(path, &model, err) != EV_OK)
        return NULL;
    ref = g_new0(GstEchoViewModelRef, 1);
    ref->instance_id = g_strdup(instance_id);
    ref->path = g_strdup(path);
    ref->model = model;
    ref->refcount = 1;
    return ref;
}

GstEchoViewModelsResult gst_echo_view_models_acquire(const gchar *instance_id, const gchar *path,
                                                     GstEchoViewModelRef **out, ev_error *err)
{
    GstEchoViewModelsResult result = GST_ECHO_VIEW_MODELS_ACQUIRED;
    GstEchoViewModelRef *ref;

    if (!instance_id || !*instance_id) {
        *out = model_ref_load(NULL, path, err);
        return *out ? GST_ECHO_VIEW_MODELS_ACQUIRED : GST_ECHO_VIEW_MODELS_LOAD_FAILED;
    }

    /* Loading under the lock keeps two elements starting together from loading twice; a model
   * loads in milliseconds, and other ids wait only that long. */
    g_mutex_lock(&registry_lock);
    if (!registry)
        registry = g_hash_table_new(g_str_hash, g_str_equal);
    ref = g_hash_table_lookup(registry, instance_id);
    if (ref) {
        if (strcmp(ref->path, path) != 0) {
            if (err) {
                err->code = EV_ERR_INVALID;
                g_snprintf(err->message, sizeof err->message,
                           "model-instance-id '%s' already holds model-file '%s', not '%s'",
                           instance_id, ref->path, path);
            }
            ref = NULL;
            result = GST_ECHO_VIEW_MODELS_ID_CONFLICT;
        } else {
            ref->refcount++;
        }
    } else {
        ref = model_ref_load(instance_id, path, err);
        if (ref)
            g_hash_table_insert(registry, ref->instance_id, ref);
        else
            result = GST_ECHO_VIEW_MODELS_LOAD_FAILED;
    }
    g_mutex_unlock(&registry_lock);
    *out = ref;
    return result;
}

const ev_model *gst_echo_view_model_ref_model(const GstEchoViewModelRef *ref) { return ref->model; }

static void model_ref_free(GstEchoViewModelRef *ref)
{
    ev_model_free(ref->model);
    g_free(ref->instance_id);
    g_free(ref->path);
    g_free(ref);
}

void gst_echo_view_models_release(GstEchoViewModelRef *ref)
{
    gboolean last;

    if (!ref)
        return;
    if (!ref->instance_id) {
        model_ref_free(ref);
        return;
    }
    g_mutex_lock(&registry_lock);
    last = --ref->refcount == 0;
    if (last)
        g_hash_table_remove(registry, ref->instance_id);
    g_mutex_unlock(&registry_lock);
    if (last)
        model_ref_free(ref);
}

guint gst_echo_view_models_count(const gchar *instance_id)
{
    GstEchoViewModelRef *ref;
    guint n = 0;

    g_mutex_lock(&registry_lock);
    ref = registry && instance_id ? g_hash_table_lookup(registry, instance_id) : NULL;
    if (ref)
        n = ref->refcount;
    g_mutex_unlock(&registry_lock);
    return n;
}
