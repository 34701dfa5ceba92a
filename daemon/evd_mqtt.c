/* evd_mqtt.c: the MQTT publisher (evd_mqtt.h, docs/MQTT.md). The main loop thread turns events
 * and state snapshots into messages and appends them to a bounded queue (the oldest message is
 * dropped, and counted, when it is full; a stream's state message replaces the one of the same
 * topic still waiting, since only the latest state matters). A network thread of our own runs
 * libmosquitto's socket with poll(2): it connects without blocking on the broker, hands queued
 * messages to libmosquitto (at most EVD_MQTT_IN_FLIGHT_MAX unacknowledged at a time; QoS 1
 * messages in flight when a connection drops are sent again on the next one), reconnects after
 * a capped exponential backoff, and logs what went wrong once per text per minute. */
#include "evd_mqtt.h"

#include <errno.h>
#include <mosquitto.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "evd_snapshot.h"

/* Messages handed to libmosquitto and not yet acknowledged (QoS 1) or written (QoS 0). */
#define EVD_MQTT_IN_FLIGHT_MAX 64
/* A connection without CONNACK by then has failed. */
#define EVD_MQTT_CONNACK_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* A connection up this long resets the backoff when it drops. */
#define EVD_MQTT_STABLE_US (10 * G_USEC_PER_SEC)
/* One log line per text per window; the repeats are counted. */
#define EVD_MQTT_LOG_WINDOW_US (60 * G_USEC_PER_SEC)
/* At stop: how long the queue may take to drain and the `offline` status to be acknowledged. */
#define EVD_MQTT_STOP_US (2 * G_USEC_PER_SEC)

typedef struct {
    gchar *topic;
    gchar *payload;
    gsize len;
    gint qos;
    gboolean retain;
    gboolean coalesce; /* a state message: a newer one of its topic replaces it while queued */
} Message;

typedef enum { LINK_DOWN, LINK_CONNECTING, LINK_UP } LinkState;

struct _EvdMqtt {
    /* settings (copied: a reload frees the configuration) */
    gchar *url, *host, *client_id, *instance, *base, *status_topic;
    guint port, keepalive, qos_state, qos_events, queue_size;
    gdouble state_interval, reconnect_delay, reconnect_delay_max;
    gboolean tls;
    gchar *username, *password, *tls_ca_file, *tls_certificate, *tls_key;

    EvdSupervisor *sup;
    guint state_timer;
    GThread *thread;
    int wake_fd;

    GMutex lock;         /* guards the fields below up to the network thread's */
    GQueue queue;        /* Message, oldest first */
    GHashTable *pending; /* topic -> the GList link of its queued state message */
    guint in_flight_n;   /* g_hash_table_size(in_flight), for the queue bound */
    gboolean stopping;

    /* the network thread only */
    struct mosquitto *mosq;
    LinkState link;
    gint64 connack_deadline, retry_at, up_since;
    gdouble delay;
    gboolean ever_connected;
    gint connack;          /* the broker's CONNACK code, -1: none yet */
    GHashTable *in_flight; /* mid -> qos */
    gint status_mid;       /* the `offline` publication at stop, -1: none */
    gboolean status_acked;
    gchar *lib_error;      /* the latest error libmosquitto logged (the TLS details) */
    gchar *logged_text;
    gint64 logged_at;
    guint64 suppressed;
};

/* Process-wide (evd_mqtt_counters). */
static GMutex counters_lock;
static EvdMqttCounters counters;
static gboolean counters_used;

static void message_free(Message *msg)
{
    g_free(msg->topic);
    g_free(msg->payload);
    g_free(msg);
}

static void count(guint64 *field, guint64 n)
{
    g_mutex_lock(&counters_lock);
    *field += n;
    g_mutex_unlock(&counters_lock);
}

/* Called with m->lock. */
static void update_depth(EvdMqtt *m)
{
    g_mutex_lock(&counters_lock);
    counters.queue_depth = m->queue.length + m->in_flight_n;
    g_mutex_unlock(&counters_lock);
}

static void set_connected(gboolean connected)
{
    g_mutex_lock(&counters_lock);
    counters.connected = connected;
    g_mutex_unlock(&counters_lock);
}

gboolean evd_mqtt_counters(EvdMqttCounters *out)
{
    g_mutex_lock(&counters_lock);
    *out = counters;
    g_mutex_unlock(&counters_lock);
    return counters_used;
}

static void wake(EvdMqtt *m)
{
    eventfd_write(m->wake_fd, 1);
}

/* ---- the queue (main loop thread in, network thread out) ----------------------------------- */

static void enqueue(EvdMqtt *m, gchar *topic, gchar *payload, gsize len, gint qos, gboolean retain,
                    gboolean coalesce)
{
    Message *msg;
    GList *link;
    guint64 dropped = 0;

    g_mutex_lock(&m->lock);
    if (m->stopping) {
        g_mutex_unlock(&m->lock);
        g_free(topic);
        g_free(payload);
        return;
    }
    link = coalesce ? g_hash_table_lookup(m->pending, topic) : NULL;
    if (link) {
        msg = link->data;
        g_free(msg->payload);
        msg->payload = payload;
        msg->len = len;
        g_mutex_unlock(&m->lock);
        g_free(topic);
        return;
    }
    while (m->queue.length > 0 && m->queue.length + m->in_flight_n >= m->queue_size) {
        Message *old = g_queue_pop_head(&m->queue);
        if (old->coalesce)
            g_hash_table_remove(m->pending, old->topic);
        message_free(old);
        dropped++;
    }
    if (m->queue.length + m->in_flight_n >= m->queue_size) {
        /* every slot is in flight: the new message is the one that cannot wait */
        g_mutex_unlock(&m->lock);
        count(&counters.dropped, dropped + 1);
        g_free(topic);
        g_free(payload);
        return;
    }
    msg = g_new0(Message, 1);
    msg->topic = topic;
    msg->payload = payload;
    msg->len = len;
    msg->qos = qos;
    msg->retain = retain;
    msg->coalesce = coalesce;
    g_queue_push_tail(&m->queue, msg);
    if (coalesce)
        g_hash_table_insert(m->pending, msg->topic, g_queue_peek_tail_link(&m->queue));
    update_depth(m);
    g_mutex_unlock(&m->lock);
    if (dropped)
        count(&counters.dropped, dropped);
    wake(m);
}

void evd_mqtt_publish_event(EvdMqtt *mqtt, const gchar *event, json_t *data)
{
    const gchar *stream = json_string_value(json_object_get(data, "stream"));
    gchar *payload;

    /* the built-in simulated senders are test equipment, not streams */
    if (!mqtt || !stream || json_is_true(json_object_get(data, "sender")))
        return;
    payload = json_dumps(data, JSON_COMPACT);
    if (!payload)
        return;
    enqueue(mqtt, g_strdup_printf("%s/%s/events/%s", mqtt->base, stream, event), payload,
            strlen(payload), (gint)mqtt->qos_events, FALSE, FALSE);
}

/* Every state-interval: each stream's state, retained (the API's stream JSON, which already
 * withholds the view of a stream that is not running). */
static gboolean on_state_timer(gpointer data)
{
    EvdMqtt *m = data;
    GPtrArray *snaps = evd_supervisor_snapshot(m->sup, FALSE);
    json_t *now = evd_json_time(g_get_real_time());

    for (guint i = 0; i < snaps->len; i++) {
        const EvdStreamSnapshot *s = g_ptr_array_index(snaps, i);
        json_t *o = evd_snapshot_json(s, FALSE);
        gchar *payload;

        json_object_set(o, "time", now);
        json_object_set_new(o, "instance", json_string(m->instance));
        payload = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (payload)
            enqueue(m, g_strdup_printf("%s/%s/state", m->base, s->id), payload, strlen(payload),
                    (gint)m->qos_state, TRUE, TRUE);
    }
    json_decref(now);
    g_ptr_array_unref(snaps);
    return G_SOURCE_CONTINUE;
}

/* ---- the network thread ------------------------------------------------------------------ */

/* One line per text per minute: a broker down for hours logs a line a minute, not one per
 * attempt, and the count of the lines not logged. detail (may be NULL) follows the text but
 * does not make it another one (the growing delay of the next attempt). */
static void log_problem_detail(EvdMqtt *m, const gchar *text, const gchar *detail)
{
    gint64 now = g_get_monotonic_time();

    if (g_strcmp0(text, m->logged_text) == 0 && now - m->logged_at < EVD_MQTT_LOG_WINDOW_US) {
        m->suppressed++;
        return;
    }
    if (m->suppressed)
        g_message("mqtt: the previous message repeated %" G_GUINT64_FORMAT " times",
                  m->suppressed);
    g_warning("mqtt: %s%s", text, detail ? detail : "");
    g_free(m->logged_text);
    m->logged_text = g_strdup(text);
    m->logged_at = now;
    m->suppressed = 0;
}

static void log_problem(EvdMqtt *m, const gchar *text)
{
    log_problem_detail(m, text, NULL);
}

/* libmosquitto's texts end in a full stop; ours go on ("...; next attempt in 1.0 s"). */
static gchar *sentence(const gchar *text)
{
    gchar *s = g_strdup(text);
    gsize n = strlen(s);

    if (n && s[n - 1] == '.')
        s[n - 1] = '\0';
    return s;
}

static gchar *error_text(EvdMqtt *m, int rc, int saved_errno)
{
    if (rc == MOSQ_ERR_TLS || (m->lib_error && strstr(m->lib_error, "OpenSSL")))
        return g_strdup_printf("TLS failure: %s", m->lib_error ? m->lib_error
                                                              : mosquitto_strerror(rc));
    if (rc == MOSQ_ERR_ERRNO)
        return g_strdup(g_strerror(saved_errno));
    if (rc == MOSQ_ERR_EAI)
        return g_strdup_printf("cannot resolve host '%s'", m->host);
    if (rc == MOSQ_ERR_KEEPALIVE)
        return g_strdup_printf("no answer from the broker within the keepalive (%u s)",
                               m->keepalive);
    return sentence(mosquitto_strerror(rc));
}

/* QoS 0 messages in libmosquitto's packet queue are gone with the connection (QoS 1 ones stay
 * in its message list and are sent again): counted as dropped. */
static void forget_qos0(EvdMqtt *m)
{
    GHashTableIter iter;
    gpointer key, value;
    guint lost = 0;

    g_hash_table_iter_init(&iter, m->in_flight);
    while (g_hash_table_iter_next(&iter, &key, &value))
        if (GPOINTER_TO_INT(value) == 0) {
            g_hash_table_iter_remove(&iter);
            lost++;
        }
    if (!lost)
        return;
    g_mutex_lock(&m->lock);
    m->in_flight_n = g_hash_table_size(m->in_flight);
    update_depth(m);
    g_mutex_unlock(&m->lock);
    count(&counters.dropped, lost);
}

/* The connection failed or dropped: try again after the backoff. */
static void link_down(EvdMqtt *m, const gchar *what)
{
    gint64 now = g_get_monotonic_time();
    gchar *text;

    if (m->link == LINK_UP && now - m->up_since >= EVD_MQTT_STABLE_US)
        m->delay = m->reconnect_delay;
    if (m->link != LINK_UP)
        count(&counters.connect_failures, 1);
    text = g_strdup_printf("; next attempt in %.2f s", m->delay);
    log_problem_detail(m, what, text);
    g_free(text);
    if (m->link == LINK_UP)
        set_connected(FALSE);
    m->link = LINK_DOWN;
    m->retry_at = now + (gint64)(m->delay * G_USEC_PER_SEC);
    m->delay = MIN(m->delay * 2, m->reconnect_delay_max);
    /* a DISCONNECT for a broker still there (refused, or no CONNACK in time); libmosquitto
     * closes the socket at the next attempt */
    mosquitto_disconnect(m->mosq);
    forget_qos0(m);
}

static void link_failed_rc(EvdMqtt *m, int rc, int saved_errno)
{
    gchar *reason, *what;

    if (m->link == LINK_CONNECTING && m->connack > 0) {
        /* a CONNACK that refuses (libmosquitto returns it as an error of the read) */
        reason = sentence(mosquitto_connack_string(m->connack));
        what = g_strdup_printf("the broker %s refused the connection: %s", m->url, reason);
    } else {
        reason = error_text(m, rc, saved_errno);
        what = m->link == LINK_UP
                   ? g_strdup_printf("connection to %s lost: %s", m->url, reason)
                   : g_strdup_printf("cannot connect to %s: %s", m->url, reason);
    }

    link_down(m, what);
    g_free(what);
    g_free(reason);
}

static void link_connect(EvdMqtt *m)
{
    int rc;

    g_clear_pointer(&m->lib_error, g_free);
    m->connack = -1;
    errno = 0;
    rc = mosquitto_connect_async(m->mosq, m->host, (int)m->port, (int)m->keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        link_failed_rc(m, rc, errno);
        return;
    }
    m->link = LINK_CONNECTING;
    m->connack_deadline = g_get_monotonic_time() + EVD_MQTT_CONNACK_TIMEOUT_US;
}

static void link_up(EvdMqtt *m)
{
    int mid = 0;

    m->link = LINK_UP;
    m->up_since = g_get_monotonic_time();
    set_connected(TRUE);
    if (m->ever_connected)
        count(&counters.reconnects, 1);
    m->ever_connected = TRUE;
    if (m->logged_text && m->suppressed)
        g_message("mqtt: the previous message repeated %" G_GUINT64_FORMAT " times",
                  m->suppressed);
    g_clear_pointer(&m->logged_text, g_free);
    m->suppressed = 0;
    g_message("mqtt: connected to %s as %s; publishing under %s/", m->url, m->client_id, m->base);
    /* the will says offline when the connection is lost; this says online (retained) */
    if (mosquitto_publish(m->mosq, &mid, m->status_topic, 6, "online", 1, true) ==
        MOSQ_ERR_SUCCESS)
        g_hash_table_insert(m->in_flight, GINT_TO_POINTER(mid), GINT_TO_POINTER(1));
}

/* Hands queued messages to libmosquitto while there is room in flight. */
static void hand_over(EvdMqtt *m)
{
    guint limit = MIN(EVD_MQTT_IN_FLIGHT_MAX, m->queue_size);

    while (g_hash_table_size(m->in_flight) < limit) {
        Message *msg;
        int mid = 0, rc;

        g_mutex_lock(&m->lock);
        msg = g_queue_pop_head(&m->queue);
        if (msg && msg->coalesce)
            g_hash_table_remove(m->pending, msg->topic);
        g_mutex_unlock(&m->lock);
        if (!msg)
            return;
        rc = mosquitto_publish(m->mosq, &mid, msg->topic, (int)msg->len, msg->payload, msg->qos,
                               msg->retain);
        if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) {
            /* back to the head, unless a newer state of its topic is queued already */
            g_mutex_lock(&m->lock);
            if (msg->coalesce && g_hash_table_contains(m->pending, msg->topic)) {
                message_free(msg);
            } else {
                g_queue_push_head(&m->queue, msg);
                if (msg->coalesce)
                    g_hash_table_insert(m->pending, msg->topic, g_queue_peek_head_link(&m->queue));
            }
            g_mutex_unlock(&m->lock);
            return;
        }
        if (rc == MOSQ_ERR_SUCCESS) {
            g_hash_table_insert(m->in_flight, GINT_TO_POINTER(mid), GINT_TO_POINTER(msg->qos));
        } else {
            gchar *text = g_strdup_printf("cannot publish on %s: %s", msg->topic,
                                          mosquitto_strerror(rc));
            log_problem(m, text);
            g_free(text);
            count(&counters.dropped, 1);
        }
        g_mutex_lock(&m->lock);
        m->in_flight_n = g_hash_table_size(m->in_flight);
        update_depth(m);
        g_mutex_unlock(&m->lock);
        message_free(msg);
    }
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
    EvdMqtt *m = obj;

    m->connack = rc;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
    EvdMqtt *m = obj;

    if (mid == m->status_mid)
        m->status_acked = TRUE;
    if (!g_hash_table_remove(m->in_flight, GINT_TO_POINTER(mid)))
        return;
    count(&counters.published, 1);
    g_mutex_lock(&m->lock);
    m->in_flight_n = g_hash_table_size(m->in_flight);
    update_depth(m);
    g_mutex_unlock(&m->lock);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *text)
{
    EvdMqtt *m = obj;

    if (level == MOSQ_LOG_ERR) {
        g_free(m->lib_error);
        m->lib_error = g_strdup(text);
    }
}

/* One round of the socket: waits up to timeout_ms for it (or for wake()), reads, writes, and
 * keeps the keepalive. */
static void pump(EvdMqtt *m, int timeout_ms)
{
    int sock = mosquitto_socket(m->mosq);
    struct pollfd fds[2] = {{.fd = m->wake_fd, .events = POLLIN},
                            {.fd = sock, .events = POLLIN}};
    int rc = MOSQ_ERR_SUCCESS;

    if (sock >= 0 && mosquitto_want_write(m->mosq))
        fds[1].events |= POLLOUT;
    if (poll(fds, sock >= 0 ? 2 : 1, timeout_ms) < 0 && errno != EINTR)
        g_usleep(10000);
    if (fds[0].revents & POLLIN) {
        eventfd_t v;
        eventfd_read(m->wake_fd, &v);
    }
    if (sock < 0) {
        if (m->link != LINK_DOWN)
            link_failed_rc(m, MOSQ_ERR_NO_CONN, 0);
        return;
    }
    errno = 0;
    if (fds[1].revents & (POLLIN | POLLERR | POLLHUP))
        rc = mosquitto_loop_read(m->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(m->mosq))
        rc = mosquitto_loop_write(m->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_misc(m->mosq);
    if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(m->mosq) < 0)
        rc = MOSQ_ERR_KEEPALIVE; /* libmosquitto closed it: no PINGRESP in time */
    if (rc != MOSQ_ERR_SUCCESS) {
        link_failed_rc(m, rc, errno);
        return;
    }
    if (m->link == LINK_CONNECTING && m->connack >= 0) {
        if (m->connack == 0) {
            link_up(m);
        } else {
            gchar *reason = sentence(mosquitto_connack_string(m->connack));
            gchar *what = g_strdup_printf("the broker %s refused the connection: %s", m->url,
                                          reason);
            link_down(m, what);
            g_free(what);
            g_free(reason);
        }
    }
}

static gboolean stopping(EvdMqtt *m)
{
    gboolean stop;

    g_mutex_lock(&m->lock);
    stop = m->stopping;
    g_mutex_unlock(&m->lock);
    return stop;
}

/* At stop: what is queued goes out if the broker takes it within EVD_MQTT_STOP_US, then the
 * retained `offline` and a DISCONNECT (after which the broker does not send the will). */
static void network_stop(EvdMqtt *m)
{
    gint64 deadline = g_get_monotonic_time() + EVD_MQTT_STOP_US;
    guint left;

    while (m->link == LINK_UP && g_get_monotonic_time() < deadline) {
        gboolean empty;
        hand_over(m);
        g_mutex_lock(&m->lock);
        empty = m->queue.length == 0;
        g_mutex_unlock(&m->lock);
        if (empty && g_hash_table_size(m->in_flight) == 0)
            break;
        pump(m, 100);
    }
    if (m->link == LINK_UP &&
        mosquitto_publish(m->mosq, &m->status_mid, m->status_topic, 7, "offline", 1, true) ==
            MOSQ_ERR_SUCCESS) {
        while (m->link == LINK_UP && !m->status_acked && g_get_monotonic_time() < deadline)
            pump(m, 100);
    }
    if (m->link != LINK_DOWN) {
        mosquitto_disconnect(m->mosq);
        mosquitto_loop_write(m->mosq, 1);
    }
    set_connected(FALSE);
    g_mutex_lock(&m->lock);
    left = m->queue.length + g_hash_table_size(m->in_flight);
    g_queue_clear_full(&m->queue, (GDestroyNotify)message_free);
    g_hash_table_remove_all(m->pending);
    m->in_flight_n = 0;
    update_depth(m);
    g_mutex_unlock(&m->lock);
    if (left)
        count(&counters.dropped, left);
}

static gpointer network_main(gpointer data)
{
    EvdMqtt *m = data;

    while (!stopping(m)) {
        gint64 now = g_get_monotonic_time();

        if (m->link == LINK_DOWN) {
            if (now < m->retry_at) {
                struct pollfd fd = {.fd = m->wake_fd, .events = POLLIN};
                if (poll(&fd, 1, (int)MIN((m->retry_at - now) / 1000 + 1, 1000)) > 0) {
                    eventfd_t v;
                    eventfd_read(m->wake_fd, &v);
                }
                continue;
            }
            link_connect(m);
            continue;
        }
        if (m->link == LINK_CONNECTING && now > m->connack_deadline) {
            gchar *what = g_strdup_printf("cannot connect to %s: no answer (CONNACK) within %d s",
                                          m->url, (int)(EVD_MQTT_CONNACK_TIMEOUT_US / 1000000));
            link_down(m, what);
            g_free(what);
            continue;
        }
        if (m->link == LINK_UP)
            hand_over(m);
        pump(m, 1000);
    }
    network_stop(m);
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

EvdMqtt *evd_mqtt_new(const EvdMqttConfig *config, const gchar *instance, EvdSupervisor *sup)
{
    static gsize lib_init = 0;
    EvdMqtt *m = g_new0(EvdMqtt, 1);
    int rc;

    if (g_once_init_enter(&lib_init)) {
        mosquitto_lib_init();
        g_once_init_leave(&lib_init, 1);
    }
    m->url = g_strdup(config->broker);
    m->host = g_strdup(config->host);
    m->port = config->port;
    m->tls = config->tls;
    m->client_id = config->client_id ? g_strdup(config->client_id)
                                     : g_strdup_printf("echoviewd-%s", instance);
    m->instance = g_strdup(instance);
    m->base = g_strdup_printf("%s/%s", config->topic_prefix, instance);
    m->status_topic = g_strdup_printf("%s/status", m->base);
    m->keepalive = config->keepalive;
    m->qos_state = config->qos_state;
    m->qos_events = config->qos_events;
    m->queue_size = config->queue_size;
    m->state_interval = config->state_interval;
    m->reconnect_delay = m->delay = config->reconnect_delay;
    m->reconnect_delay_max = config->reconnect_delay_max;
    m->username = g_strdup(config->username);
    m->password = g_strdup(config->password);
    m->tls_ca_file = g_strdup(config->tls_ca_file);
    m->tls_certificate = g_strdup(config->tls_certificate);
    m->tls_key = g_strdup(config->tls_key);
    m->sup = sup;
    m->status_mid = -1;
    g_mutex_init(&m->lock);
    g_queue_init(&m->queue);
    m->pending = g_hash_table_new(g_str_hash, g_str_equal);
    m->in_flight = g_hash_table_new(NULL, NULL);
    m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    m->mosq = mosquitto_new(m->client_id, true, m);
    mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m->mosq, EVD_MQTT_IN_FLIGHT_MAX);
    mosquitto_connect_callback_set(m->mosq, on_connect);
    mosquitto_publish_callback_set(m->mosq, on_publish);
    mosquitto_log_callback_set(m->mosq, on_log);
    mosquitto_will_set(m->mosq, m->status_topic, 7, "offline", 1, true);
    if (m->username)
        mosquitto_username_pw_set(m->mosq, m->username, m->password);
    if (m->tls) {
        if (!m->tls_ca_file)
            mosquitto_int_option(m->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        rc = mosquitto_tls_set(m->mosq, m->tls_ca_file, NULL, m->tls_certificate, m->tls_key,
                               NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            gchar *text = g_strdup_printf("TLS settings refused: %s", mosquitto_strerror(rc));
            log_problem(m, text);
            g_free(text);
        }
    }
    g_mutex_lock(&counters_lock);
    counters_used = TRUE;
    counters.queue_size = m->queue_size;
    counters.connected = FALSE;
    g_mutex_unlock(&counters_lock);
    g_message("mqtt: publishing to %s as %s (queue of %u messages, state every %.1f s)", m->url,
              m->client_id, m->queue_size, m->state_interval);
    m->thread = g_thread_new("evd-mqtt", network_main, m);
    m->state_timer = g_timeout_add((guint)(m->state_interval * 1000), on_state_timer, m);
    on_state_timer(m); /* the retained state at once, not an interval later */
    return m;
}

void evd_mqtt_free(EvdMqtt *m)
{
    if (!m)
        return;
    g_source_remove(m->state_timer);
    g_mutex_lock(&m->lock);
    m->stopping = TRUE;
    g_mutex_unlock(&m->lock);
    wake(m);
    g_thread_join(m->thread);
    mosquitto_destroy(m->mosq);
    close(m->wake_fd);
    g_hash_table_unref(m->pending);
    g_hash_table_unref(m->in_flight);
    g_mutex_clear(&m->lock);
    g_free(m->url);
    g_free(m->host);
    g_free(m->client_id);
    g_free(m->instance);
    g_free(m->base);
    g_free(m->status_topic);
    g_free(m->username);
    if (m->password)
        memset(m->password, 0, strlen(m->password));
    g_free(m->password);
    g_free(m->tls_ca_file);
    g_free(m->tls_certificate);
    g_free(m->tls_key);
    g_free(m->lib_error);
    g_free(m->logged_text);
    g_free(m);
}
