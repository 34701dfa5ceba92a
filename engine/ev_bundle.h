/* ev_bundle.h: model bundles beyond loading (model.c): writing one from a trained network, a
 * model around a network built in memory, and read access to a model's network. This is how
 * search/, tools/, benchmarks and tests reach a model's insides without its struct, which stays
 * private to the engine (ev_private.h). Not installed. */
#ifndef EV_BUNDLE_H
#define EV_BUNDLE_H

#include "ev_graph.h"

/* The 14 echo views in the paper's order: the classes of a bundle that names none. */
extern const char *const ev_echo_views[14];

/* What a model is called, how frames are normalised and how its confidence is calibrated; zero
 * means default. */
typedef struct ev_model_info {
    const char *name;         /* NULL: "memory" */
    char *const *class_names; /* net->cfg.num_classes names; NULL: ev_echo_views (i % 14) */
    float scale;              /* pixel scale; 0: 1/255 */
    float mean[3];            /* per input channel; default 0 */
    float std[3];             /* per input channel; 0: 1 */
    ev_normalize normalize;   /* default none */
    float temperature;        /* 0: 1 (uncalibrated) */
    float confidence_threshold; /* 0: none */
} ev_model_info;

/* A file of the bundle given as its folder or as its model.yaml, into out (size bytes): file
 * NULL, the model.yaml (FOLDER/model.yaml, or bundle itself when it is a file); else that file
 * in the bundle's folder (FOLDER/file, or file beside the given model.yaml). EV_ERR_IO when
 * bundle does not exist; EV_ERR_INVALID when it is empty or the path does not fit. */
int ev_bundle_path(const char *bundle, const char *file, char *out, size_t size, ev_error *err);

/* Writes a bundle: model.yaml + weights.safetensors into dir (created if missing), named,
 * normalised and calibrated as info says (info->name NULL: the folder's name). */
int ev_model_write_bundle(const char *dir, const ev_net *net, const ev_model_info *info,
                          ev_error *err);
/* The same with the plain preprocessing block only. class_names NULL: ev_echo_views (i % 14). */
int ev_model_save_bundle(const char *dir, const char *name, const ev_net *net,
                         char *const *class_names, float scale, const float *mean, const float *std,
                         ev_error *err);

/* Sets the `calibration:` entry of an existing bundle's model.yaml (bundle: its folder or its
 * model.yaml), keeping the rest of the file; temperature > 0, threshold in [0, 1). */
int ev_model_write_calibration(const char *bundle, float temperature, float confidence_threshold,
                               ev_error *err);

/* A model around a batch-1 network with its weights already in place (random for a benchmark,
 * set by a test, trained): the same object ev_model_load returns, for every backend. The model
 * owns net from here on, also when this fails (then net is freed). info may be NULL. */
int ev_model_from_net(ev_net *net, const ev_model_info *info, ev_model **out, ev_error *err);

/* The model's batch-1 network (configuration, parameters, graph), read-only: executors copy its
 * parameters into a network of their batch size. */
const ev_net *ev_model_network(const ev_model *model);

#endif
