/* evd_model.c: reads `name` and `classes` from a bundle's model.yaml (libyaml). */
#include "evd_model.h"

#include <string.h>
#include <yaml.h>

#include "evd_config.h"

#define EVD_MODEL_MAX_CLASSES 1024

void evd_model_info_free(EvdModelInfo *info)
{
    if (!info)
        return;
    g_free(info->file);
    g_free(info->name);
    g_strfreev(info->classes);
    g_free(info);
}

EvdModelInfo *evd_model_info_load(const gchar *path, GError **err)
{
    gchar *yaml_path, *text = NULL;
    gsize len = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    EvdModelInfo *info = NULL;
    GPtrArray *classes = NULL;
    gchar *name = NULL;

    if (g_file_test(path, G_FILE_TEST_IS_DIR))
        yaml_path = g_build_filename(path, "model.yaml", NULL);
    else
        yaml_path = g_strdup(path);
    if (!g_file_get_contents(yaml_path, &text, &len, err))
        goto out_path;
    if (!yaml_parser_initialize(&parser))
        goto out_text;
    yaml_parser_set_input_string(&parser, (const guchar *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SYNTAX, "%s:%zu:%zu: %s", yaml_path,
                    parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "syntax error");
        goto out_parser;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "%s: not a mapping", yaml_path);
        goto out_doc;
    }
    classes = g_ptr_array_new_with_free_func(g_free);
    for (yaml_node_pair_t *pair = root->data.mapping.pairs.start;
         pair < root->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(&doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&doc, pair->value);

        if (!k || !v || k->type != YAML_SCALAR_NODE)
            continue;
        if (strcmp((const char *)k->data.scalar.value, "name") == 0 &&
            v->type == YAML_SCALAR_NODE) {
            g_free(name);
            name = g_strdup((const char *)v->data.scalar.value);
        } else if (strcmp((const char *)k->data.scalar.value, "classes") == 0 &&
                   v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                yaml_node_t *c = yaml_document_get_node(&doc, *it);
                if (!c || c->type != YAML_SCALAR_NODE || classes->len >= EVD_MODEL_MAX_CLASSES) {
                    g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                                "%s: bad classes list", yaml_path);
                    goto out_doc;
                }
                g_ptr_array_add(classes, g_strdup((const char *)c->data.scalar.value));
            }
        }
    }
    if (!name || classes->len == 0) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: needs 'name' and "
                    "'classes'",
                    yaml_path);
        goto out_doc;
    }
    info = g_new0(EvdModelInfo, 1);
    info->file = g_strdup(path);
    info->name = g_steal_pointer(&name);
    info->n_classes = classes->len;
    g_ptr_array_add(classes, NULL);
    info->classes = (gchar **)g_ptr_array_free(g_steal_pointer(&classes), FALSE);

out_doc:
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
out_text:
    g_free(text);
out_path:
    g_free(yaml_path);
    g_free(name);
    if (classes)
        g_ptr_array_unref(classes);
    return info;
}
