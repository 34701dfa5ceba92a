/* evd_models.h: the models echoviewd holds loaded. For every model-file and backend of the
 * enabled streams, one echoviewclassify in PAUSED with the stream's settings: it proves the
 * model loads with that backend, keeps the shared weights loaded (model-instance-id) while
 * pipelines come and go, and tells the model's name and class names (the element's read-only
 * model-name and classes properties; the daemon never reads model.yaml itself). */
#ifndef EVD_MODELS_H
#define EVD_MODELS_H

#include <glib.h>

#include "evd_config.h"

G_BEGIN_DECLS

typedef struct {
    gchar *name;
    gchar **classes; /* NULL-terminated, in the order of the probabilities */
    guint n_classes;
} EvdModelInfo;

typedef struct _EvdModels EvdModels;

/* Loads every model of config's enabled streams. *error (optional): the first failure's message,
 * or NULL when all loaded; the ones that loaded are held either way. */
EvdModels *evd_models_load(const EvdConfig *config, gchar **error);
/* Stops the classifiers; weights still held by running streams stay loaded. NULL is allowed. */
void evd_models_free(EvdModels *models);
/* The model a model-file names, or NULL when it is not loaded. */
const EvdModelInfo *evd_models_find(const EvdModels *models, const gchar *model_file);
/* Starts and stops one classifier with the stream's settings: does its model load? */
gboolean evd_models_check(const EvdStreamConfig *stream, GError **err);

G_END_DECLS

#endif
