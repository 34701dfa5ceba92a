/* evd_model.h: what echoviewd shows about a model bundle: its name and class names, read
 * from model.yaml (the bundle contract in docs/ARCHITECTURE.md), so that the probabilities of
 * the classifier's messages and metas can be labelled. The weights are never read here. */
#ifndef EVD_MODEL_H
#define EVD_MODEL_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    gchar *file; /* the model-file property value */
    gchar *name;
    gchar **classes; /* NULL-terminated, in logits order */
    guint n_classes;
} EvdModelInfo;

/* path: a bundle folder or its model.yaml. */
EvdModelInfo *evd_model_info_load(const gchar *path, GError **err);
void evd_model_info_free(EvdModelInfo *info);

G_END_DECLS

#endif
