/* evd_http.h: echoviewd's HTTP API on libmicrohttpd (internal polling thread, epoll):
 * health, readiness, status, streams, Server-Sent Events, Prometheus metrics and the live page. */
#ifndef EVD_HTTP_H
#define EVD_HTTP_H

#include <glib.h>
#include <jansson.h>

#include "evd_config.h"
#include "evd_supervisor.h"

G_BEGIN_DECLS

typedef struct _EvdHttp EvdHttp;

/* Listens on listen_fd when it is >= 0 (socket activation), else on the config's address and
 * port (port 0: any free port, see evd_http_port()). */
EvdHttp *evd_http_new(const EvdConfig *config, EvdSupervisor *sup, int listen_fd, GError **err);
guint evd_http_port(EvdHttp *http);
/* Settings a reload may change (the token); the listening address needs a restart. */
void evd_http_reconfigure(EvdHttp *http, const EvdConfig *config);
/* Sends an event to every /api/v1/events client; takes data. Thread-safe. */
void evd_http_publish(EvdHttp *http, const gchar *event, json_t *data);
/* A comment line that keeps idle event streams (and proxies) open. */
void evd_http_keepalive(EvdHttp *http);
/* Ends the event streams (resuming suspended connections), then stops the server. */
void evd_http_free(EvdHttp *http);

/* The daemon's start time, for uptime. */
void evd_http_set_start_time(gint64 monotonic_us);

G_END_DECLS

#endif
