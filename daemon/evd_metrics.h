/* evd_metrics.h: echoviewd's /metrics body (Prometheus text exposition format 0.0.4). */
#ifndef EVD_METRICS_H
#define EVD_METRICS_H

#include <glib.h>

#include "evd_supervisor.h"

G_BEGIN_DECLS

/* The HTTP server's own counters, copied under its lock. */
typedef struct {
    guint64 requests_total;
    guint64 responses_by_class[6]; /* index = status / 100 */
} EvdHttpCounters;

/* The whole exposition; g_free() it. */
gchar *evd_metrics_text(EvdSupervisor *sup, const EvdHttpCounters *http, gdouble uptime_s,
                        gsize *len);

G_END_DECLS

#endif
