/* evd_models.c: classifiers held in PAUSED, one per model-file and backend (evd_models.h). */
#include "evd_models.h"

#include <gst/gst.h>

struct _EvdModels {
    GPtrArray *probes;   /* GstElement pipelines, each holding one classifier in PAUSED */
    GHashTable *by_file; /* model-file -> EvdModelInfo */
};

static void apply_properties(GstElement *element, const GPtrArray *properties)
{
    for (guint i = 0; properties && i < properties->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(properties, i);
        gst_util_set_object_arg(G_OBJECT(element), prop->name, prop->value);
    }
}

static void model_info_free(EvdModelInfo *info)
{
    if (!info)
        return;
    g_free(info->name);
    g_strfreev(info->classes);
    g_free(info);
}

/* The name and classes of the model a started probe (probe_new) holds. */
static EvdModelInfo *model_info_from_probe(GstElement *probe)
{
    GstElement *classify = gst_bin_get_by_name(GST_BIN(probe), "classify");
    EvdModelInfo *info = g_new0(EvdModelInfo, 1);

    g_object_get(classify, "model-name", &info->name, "classes", &info->classes, NULL);
    info->n_classes = info->classes ? g_strv_length(info->classes) : 0;
    gst_object_unref(classify);
    return info;
}

/* A pipeline holding a classifier in PAUSED with the stream's settings; through
 * model-instance-id it shares one copy of the weights with every stream of that model. */
static GstElement *probe_new(const EvdStreamConfig *stream, GError **err)
{
    GstElement *pipeline = gst_pipeline_new(NULL);
    GstElement *classify = gst_element_factory_make("echoviewclassify", "classify");
    const gchar *file = evd_properties_find(stream->classifier, "model-file")->value;
    GstBus *bus;

    if (!classify) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "GStreamer element "
                    "echoviewclassify not found (is GST_PLUGIN_PATH set?)");
        gst_object_unref(pipeline);
        return NULL;
    }
    g_object_set(classify, "model-instance-id", file, NULL);
    apply_properties(classify, stream->classifier);
    gst_bin_add(GST_BIN(pipeline), classify);
    if (gst_element_set_state(pipeline, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
        GstMessage *msg;
        bus = gst_element_get_bus(pipeline);
        msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
        if (msg) {
            GError *gerr = NULL;
            gchar *debug = NULL;
            gst_message_parse_error(msg, &gerr, &debug);
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "model %s: %s%s%s", file,
                        gerr->message, debug ? ": " : "", debug ? debug : "");
            g_clear_error(&gerr);
            g_free(debug);
            gst_message_unref(msg);
        } else {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "model %s cannot be loaded",
                        file);
        }
        gst_object_unref(bus);
        gst_element_set_state(pipeline, GST_STATE_NULL);
        gst_object_unref(pipeline);
        return NULL;
    }
    return pipeline;
}

static void probe_free(gpointer data)
{
    gst_element_set_state(GST_ELEMENT(data), GST_STATE_NULL);
    gst_object_unref(data);
}

EvdModels *evd_models_load(const EvdConfig *config, gchar **error)
{
    EvdModels *models = g_new0(EvdModels, 1);
    GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gchar *first_error = NULL;

    models->probes = g_ptr_array_new_with_free_func(probe_free);
    models->by_file =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)model_info_free);
    for (guint i = 0; i < config->streams->len; i++) {
        const EvdStreamConfig *s = g_ptr_array_index(config->streams, i);
        const gchar *file = evd_properties_find(s->classifier, "model-file")->value;
        const EvdProperty *backend = evd_properties_find(s->classifier, "backend");
        gchar *key = g_strdup_printf("%s|%s", file, backend ? backend->value : "");
        GError *err = NULL;
        GstElement *probe;

        if (!s->enabled || g_hash_table_contains(seen, key)) {
            g_free(key);
            continue;
        }
        g_hash_table_add(seen, key);
        if ((probe = probe_new(s, &err))) {
            if (!g_hash_table_contains(models->by_file, file))
                g_hash_table_insert(models->by_file, g_strdup(file), model_info_from_probe(probe));
            g_ptr_array_add(models->probes, probe);
        } else if (!first_error) {
            first_error = g_strdup(err->message);
        }
        g_clear_error(&err);
    }
    g_hash_table_unref(seen);
    if (error)
        *error = first_error;
    else
        g_free(first_error);
    return models;
}

void evd_models_free(EvdModels *models)
{
    if (!models)
        return;
    g_ptr_array_unref(models->probes);
    g_hash_table_unref(models->by_file);
    g_free(models);
}

const EvdModelInfo *evd_models_find(const EvdModels *models, const gchar *model_file)
{
    return models && model_file ? g_hash_table_lookup(models->by_file, model_file) : NULL;
}

gboolean evd_models_check(const EvdStreamConfig *stream, GError **err)
{
    GstElement *probe = probe_new(stream, err);

    if (!probe)
        return FALSE;
    probe_free(probe);
    return TRUE;
}
