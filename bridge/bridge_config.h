/* bridge_config.h: echoview-dicom-bridge's YAML configuration (conf/echoview-dicom-bridge.yaml
 * is the documented reference): the DICOM listener, the spool folder, and one RTP destination
 * per sending station (calling AE title, or "*" for any other). Errors are file:line:column. */
#ifndef ECHOVIEW_BRIDGE_CONFIG_H
#define ECHOVIEW_BRIDGE_CONFIG_H

#include <glib.h>

#include "bridge_sender.h"

G_BEGIN_DECLS

#define BRIDGE_MAX_DESTINATIONS 256

typedef struct {
    gchar *calling_ae; /* exact AE title, or "*" */
    gchar *host;
    guint port, payload, width, height;
    BridgeEncoding encoding;
    gboolean raw_i420;
    gboolean loop; /* repeat the latest loop until a newer one arrives */
    gchar *sdp;    /* optional SDP file to write */
} BridgeDestination;

typedef struct {
    guint port;      /* DICOM listener port */
    gchar *ae_title; /* called AE title we answer to */
    gchar *spool;    /* where received files wait until played */
    guint acse_timeout, dimse_timeout;
    gchar *bind_address;     /* numeric IPv4 address to listen on (127.0.0.1) */
    guint max_associations;  /* served at once */
    guint idle_timeout;      /* seconds a connection may stay silent before its request */
    guint spool_max_mb;      /* refuse C-STOREs (0xA700) while the spool holds more; 0: no cap */
    /* listen.tls: DICOM TLS (PEM files, absolute); tls_certificate NULL: plaintext */
    gchar *tls_certificate, *tls_key, *tls_ca;
    gboolean tls_require_client_cert;
    gchar *dir; /* the configuration file's folder (absolute): relative paths start there */
    GPtrArray *destinations; /* BridgeDestination* */
} BridgeConfig;

BridgeConfig *bridge_config_load(const gchar *path, GError **error);
BridgeConfig *bridge_config_parse(const gchar *path, const gchar *text, gsize length,
                                  GError **error);
void bridge_config_free(BridgeConfig *config);
/* The destination for a calling AE title (exact match first, then "*"), or NULL. */
const BridgeDestination *bridge_config_route(const BridgeConfig *config, const gchar *calling_ae);

G_END_DECLS

#endif
