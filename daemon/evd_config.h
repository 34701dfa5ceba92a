/* evd_config.h: echoviewd's configuration: the YAML schema (conf/echoviewd.yaml is the
 * documented reference) and its parser with file:line:column errors. The pipelines built from
 * it are evd_pipeline.h's. */
#ifndef EVD_CONFIG_H
#define EVD_CONFIG_H

#include <glib.h>

G_BEGIN_DECLS

#define EVD_CONFIG_ERROR (evd_config_error_quark())
GQuark evd_config_error_quark(void);

typedef enum {
    EVD_CONFIG_ERROR_IO,
    EVD_CONFIG_ERROR_SYNTAX,
    EVD_CONFIG_ERROR_SCHEMA,
} EvdConfigErrorCode;

/* The largest frame side a source or sender may be configured with: 4096 x 4096 covers every
 * ultrasound and video format in use, and bounds the depayloader's frame buffers (a 16384 x
 * 16384 typo took 1.9 GB). */
#define EVD_MAX_FRAME_SIDE 4096

typedef enum {
    EVD_SOURCE_RTP_RAW,
    EVD_SOURCE_RTP_H264,
    EVD_SOURCE_RTP_JPEG,
    EVD_SOURCE_SDP,
    EVD_SOURCE_URI,
    EVD_SOURCE_PHANTOM,
    EVD_SOURCE_PIPELINE,
} EvdSourceType;

/* One `name: value` element property from the config, applied with gst_util_set_object_arg(). */
typedef struct {
    gchar *name;
    gchar *value;
    gint line, column; /* 1-based position of the value, for error messages */
} EvdProperty;

typedef struct {
    EvdSourceType type;
    gchar *address;          /* rtp-*: local address (or multicast group) to bind */
    guint port;              /* rtp-*: UDP port */
    gint port_line, port_column; /* where the port is set (0: the default) */
    GPtrArray *allowed_senders;  /* rtp-*: addresses or prefixes (a.b.c.d/n) that may send; NULL:
                                    any */
    gboolean has_ssrc;           /* rtp-*: only packets of this RTP SSRC are taken */
    guint32 ssrc;
    guint payload;           /* rtp-*: RTP payload type */
    guint width, height;     /* rtp-raw: frame size; phantom: output size (0 = default) */
    gchar *sampling;         /* rtp-raw: RFC 4175 sampling (YCbCr-4:2:0, RGB, ...) */
    guint depth;             /* rtp-raw: bits per sample */
    guint framerate;         /* phantom: frames per second (0 = element default); every other
                                source: the rate the sender sends at, for the fps check (0:
                                not declared, no check) */
    guint jitter_latency_ms; /* rtp-*: jitter buffer latency */
    gchar *location;         /* sdp: the SDP file (absolute) */
    gchar *uri;              /* uri */
    gchar *pipeline;         /* pipeline: a gst-launch fragment ending in raw video */
    GPtrArray *properties;   /* phantom: EvdProperty of echophantomsrc */
} EvdSourceConfig;

typedef struct {
    gchar *id;
    gboolean enabled;
    gdouble stall_timeout; /* seconds without a frame before `stalled` */
    gdouble frozen_timeout;    /* seconds of unchanged frames before `frozen`; 0: off */
    gdouble frozen_difference; /* "unchanged": mean absolute difference at most this (of 255) */
    gdouble max_loss;          /* recent RTP loss ratio above which the stream is `degraded` */
    gdouble unknown_timeout;   /* seconds of an unknown stable view before `degraded`; 0: off */
    gdouble min_fps_ratio;     /* classified fps below this share of source.framerate ... */
    gdouble low_fps_timeout;   /* ... for this many seconds: `degraded`; either 0: off */
    EvdSourceConfig source;
    GPtrArray *classifier; /* EvdProperty of echoviewclassify, defaults merged in */
    gint line, column;     /* where the stream is defined */
} EvdStreamConfig;

/* A built-in synthetic scanner: echophantomsrc frames sent as RFC 4175 RTP over UDP. */
typedef struct {
    gchar *id;
    gchar *host;
    guint port;
    guint payload;
    guint width, height, framerate;
    gchar *format;         /* I420 or RGB (GRAY8 is not payloadable) */
    GPtrArray *properties; /* EvdProperty of echophantomsrc */
    gint line, column;
} EvdSenderConfig;

/* The MQTT output (docs/MQTT.md): present when the configuration has an `mqtt:` section. */
typedef struct {
    gchar *broker;       /* the URL as configured: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] */
    gboolean tls;        /* mqtts */
    gchar *host;         /* a name or a numeric address (IPv6 without brackets) */
    guint port;          /* 1883 (mqtt) or 8883 (mqtts) unless given */
    gchar *client_id;    /* NULL: echoviewd-<instance> */
    gchar *topic_prefix; /* "echoview" */
    guint keepalive;     /* seconds */
    gchar *username;     /* NULL: none */
    gchar *password;     /* from `password` or `password-file`; NULL: none */
    gchar *tls_ca_file;  /* NULL: the system's CA certificates (/etc/ssl/certs) */
    gchar *tls_certificate, *tls_key; /* the client's certificate and key (files), or NULL */
    guint qos_state, qos_events;      /* 0 or 1 */
    gdouble state_interval;           /* seconds between two state messages of a stream */
    guint queue_size;                 /* messages waiting for the broker, at most */
    gdouble reconnect_delay, reconnect_delay_max; /* the backoff, seconds */
} EvdMqttConfig;

typedef struct {
    gchar *path; /* the file it came from (absolute) */
    gchar *http_address;
    guint http_port;
    gchar *http_token; /* NULL when no token is configured */
    guint http_connection_limit;
    guint http_connection_timeout; /* seconds of idleness before a connection is closed */
    guint http_request_size_limit; /* bytes of request line + headers */
    guint http_event_clients;      /* most concurrent /api/v1/events clients */
    guint http_connections_per_address; /* most concurrent connections from one address */
    gchar **http_host_names; /* names the API may be reached by (Host header), NULL-terminated */
    gchar *http_tls_certificate; /* PEM text (HTTPS when set, with the key), or NULL */
    gchar *http_tls_key;
    guint http_header_timeout; /* seconds for a request's line and headers, from the end of the
                                  previous response (or the connection's start) */
    gdouble restart_delay;         /* first restart delay, seconds */
    gdouble restart_delay_max;     /* cap of the exponential backoff, seconds */
    gdouble stall_timeout;         /* default for streams */
    gdouble frozen_timeout;        /* default for streams */
    gdouble frozen_difference;
    gdouble max_loss;
    gdouble unknown_timeout;
    gdouble min_fps_ratio;
    gdouble low_fps_timeout;
    GPtrArray *streams;            /* EvdStreamConfig */
    GPtrArray *senders;            /* EvdSenderConfig */
    EvdMqttConfig *mqtt;           /* NULL: no MQTT output */
} EvdConfig;

/* Parses path. On error returns NULL with "FILE:LINE:COLUMN: message" in err. */
EvdConfig *evd_config_load(const gchar *path, GError **err);
/* Parses len bytes of YAML text as if read from path (which names the file in messages and
 * anchors relative paths; it is not opened, though a `token-file` it names is read). */
EvdConfig *evd_config_parse(const gchar *text, gsize len, const gchar *path, GError **err);
void evd_config_free(EvdConfig *config);

const gchar *evd_source_type_name(EvdSourceType type);

/* Whether two MQTT sections are the same (a reload keeps the connection when they are). */
gboolean evd_mqtt_config_equal(const EvdMqttConfig *a, const EvdMqttConfig *b);

/* The fleet (docs/DAEMON.md, "Fleet"): this instance's name and its shard of the stream list. */
typedef struct {
    gchar *instance;   /* --instance, ECHOVIEW_INSTANCE, or the host name */
    guint shard_index; /* 0 <= shard_index < shard_count */
    guint shard_count; /* 1: every stream */
} EvdFleet;

/* Resolves the instance name and the shard from the flags (NULL: absent) and, when a flag is
 * absent, from the environment: ECHOVIEW_INSTANCE; ECHOVIEW_SHARD ("I/N"), or ECHOVIEW_SHARDS=N
 * with I the trailing -<digits> of $HOSTNAME (a StatefulSet pod's ordinal). No shard anywhere:
 * 0/1. On error returns FALSE with a message naming the source (flag or variable). */
gboolean evd_fleet_resolve(const gchar *instance_flag, const gchar *shard_flag, EvdFleet *fleet,
                           GError **err);
void evd_fleet_clear(EvdFleet *fleet);
/* Keeps the streams and simulated senders whose id rendezvous hashing (base/ev_shard.h) gives
 * to shard index of count; drops the others. */
void evd_config_select_shard(EvdConfig *config, guint index, guint count);

const EvdProperty *evd_properties_find(const GPtrArray *properties, const gchar *name);

G_END_DECLS

#endif
