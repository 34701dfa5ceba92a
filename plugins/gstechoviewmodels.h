/* gstechoviewmodels.h: the process-wide registry of loaded models, so that several
 * echoviewclassify elements with the same model-instance-id share one ev_model (the weights are
 * read-only at inference time; every element still has its own plan). */
#ifndef GST_ECHO_VIEW_MODELS_H
#define GST_ECHO_VIEW_MODELS_H

#include <glib.h>

#include "echoview.h"

G_BEGIN_DECLS

typedef struct _GstEchoViewModelRef GstEchoViewModelRef;

/* Loads path, or when instance_id is non-empty and already registered, takes another reference
 * to that model. Fails (NULL, err filled, EV_ERR_INVALID) when the id is registered with a
 * different model-file. */
GstEchoViewModelRef *gst_echo_view_models_acquire(const gchar *instance_id, const gchar *path,
                                                  ev_error *err);
const ev_model *gst_echo_view_model_ref_model(const GstEchoViewModelRef *ref);
/* Drops a reference; the last one frees the model and removes the id. NULL is allowed. */
void gst_echo_view_models_release(GstEchoViewModelRef *ref);
/* How many elements hold the model registered under instance_id (0 if none); for tests. */
guint gst_echo_view_models_count(const gchar *instance_id);

G_END_DECLS

#endif
