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
    guint64 header_timeouts_total; /* connections shut down for a late request */
    guint64 evicted_total;         /* idle connections shut down near connection-limit */
    guint64 misdirected_total;     /* 421s: a Host header that is none of the server's names */
    guint connections;             /* open now */
    guint event_clients;           /* open /api/v1/events streams now */
} EvdHttpCounters;

/* The instance label every sample carries (echoviewd --instance); set once at start-up, before
 * the first evd_metrics_text(). NULL: no instance label. */
void evd_metrics_set_instance(const gchar *instance);

/* The whole exposition; g_free() it. */
gchar *evd_metrics_text(EvdSupervisor *sup, const EvdHttpCounters *http, gdouble uptime_s,
                        gsize *len);

G_END_DECLS

#endif
