/* gstechoviewmodels.h: the process-wide registry of loaded models, so that several
 * echoviewclassify elements with the same model-instance-id share one ev_model (the weights are
 * read-only at inference time; every element still has its own plan). */
#ifndef GST_ECHO_VIEW_MODELS_H
#define GST_ECHO_VIEW_MODELS_H

#include <glib.h>

#include "echoview.h"

G_BEGIN_DECLS

typedef struct _GstEchoViewModelRef GstEchoViewModelRef;

typedef enum {
    GST_ECHO_VIEW_MODELS_ACQUIRED,    /* *out holds a reference */
    GST_ECHO_VIEW_MODELS_LOAD_FAILED, /* the engine could not load path: err has its code */
    GST_ECHO_VIEW_MODELS_ID_CONFLICT, /* instance_id already holds another model-file */
} GstEchoViewModelsResult;

/* Loads path, or when instance_id is non-empty and already registered, takes another reference
 * to that model. On failure *out is NULL and err (optional) says why; the result tells which
 * failure it is, so callers never read the message to decide. */
GstEchoViewModelsResult gst_echo_view_models_acquire(const gchar *instance_id, const gchar *path,
                                                     GstEchoViewModelRef **out, ev_error *err);
const ev_model *gst_echo_view_model_ref_model(const GstEchoViewModelRef *ref);
/* Drops a reference; the last one frees the model and removes the id. NULL is allowed. */
void gst_echo_view_models_release(GstEchoViewModelRef *ref);
/* How many elements hold the model registered under instance_id (0 if none); for tests. */
guint gst_echo_view_models_count(const gchar *instance_id);

G_END_DECLS

#endif
