/* evd_mqtt.h: echoviewd's MQTT output (libmosquitto; docs/MQTT.md): per stream a retained state
 * topic and event topics, an instance status topic with a last will. The main loop thread only
 * queues messages (a bounded queue that drops the oldest); a network thread of the publisher's
 * own connects, publishes and reconnects with a capped exponential backoff, so a slow or absent
 * broker never blocks a stream. */
#ifndef EVD_MQTT_H
#define EVD_MQTT_H

#include <glib.h>
#include <jansson.h>

#include "evd_config.h"
#include "evd_supervisor.h"

G_BEGIN_DECLS

typedef struct _EvdMqtt EvdMqtt;

/* Starts the network thread (the first connection is made there) and a main loop timer that
 * publishes every stream's state each state-interval. instance names the topics. */
EvdMqtt *evd_mqtt_new(const EvdMqttConfig *config, const gchar *instance, EvdSupervisor *sup);
/* Publishes the retained `offline` status, disconnects cleanly (so the will is not sent), stops
 * the thread; messages still queued are dropped (counted). */
void evd_mqtt_free(EvdMqtt *mqtt);
/* Queues one event (the daemon's event JSON, the same as /api/v1/events sends) on the stream's
 * event topic; data is borrowed. Main loop thread. */
void evd_mqtt_publish_event(EvdMqtt *mqtt, const gchar *event, json_t *data);

/* The counters of /metrics: process-wide, so that they never go down when a reload replaces
 * the publisher. FALSE (and zeros) when no publisher was ever started. */
typedef struct {
    gboolean connected;
    guint64 published;  /* messages the broker took (QoS 1: acknowledged; QoS 0: written) */
    guint64 dropped;    /* messages dropped: the queue was full, or lost with a connection */
    guint64 reconnects; /* connections made after the first */
    guint64 connect_failures; /* attempts that failed (refused, unreachable, TLS, timeout) */
    guint queue_depth;  /* messages waiting or in flight now */
    guint queue_size;
} EvdMqttCounters;

gboolean evd_mqtt_counters(EvdMqttCounters *out);

G_END_DECLS

#endif
