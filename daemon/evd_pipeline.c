/* evd_pipeline.c: what a configuration becomes in GStreamer: the gst-launch description of each
 * stream's and sender's pipeline, the fingerprints that tell a reload which streams changed,
 * and the checks only GStreamer can make (elements and properties exist and take the values,
 * descriptions build, models load). The supervisor (evd_supervisor.c) runs what is described
 * here. */
#include "evd_pipeline.h"

#include <gst/gst.h>
#include <string.h>

#include "evd_models.h"

/* ---- pipeline descriptions --------------------------------------------------------------- */

/* A gst-launch property value in double quotes. */
static void append_quoted(GString *s, const gchar *value)
{
    g_string_append_c(s, '"');
    for (const gchar *c = value; *c; c++) {
        if (*c == '"' || *c == '\\')
            g_string_append_c(s, '\\');
        g_string_append_c(s, *c);
    }
    g_string_append_c(s, '"');
}

static void append_properties(GString *s, const GPtrArray *properties)
{
    for (guint i = 0; properties && i < properties->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(properties, i);
        g_string_append_printf(s, " %s=", prop->name);
        append_quoted(s, prop->value);
    }
}

static void append_udpsrc(GString *s, const EvdSourceConfig *src, const gchar *caps,
                          guint64 timeout_ns)
{
    g_string_append(s, "udpsrc name=src address=");
    append_quoted(s, src->address);
    g_string_append_printf(s, " port=%u buffer-size=4194304 timeout=%" G_GUINT64_FORMAT " caps=",
                           src->port, timeout_ns);
    append_quoted(s, caps);
    g_string_append_printf(s, " ! rtpjitterbuffer name=jitter latency=%u ! ",
                           src->jitter_latency_ms);
}

gchar *evd_pipeline_describe_stream(const EvdStreamConfig *stream)
{
    const EvdSourceConfig *src = &stream->source;
    GString *s = g_string_new(NULL);
    guint64 timeout_ns = (guint64)(stream->stall_timeout * 1e9);
    gchar *caps;

    switch (src->type) {
    case EVD_SOURCE_RTP_RAW:
        /* 1.22's rtpvrawdepay wants width, height and depth as strings (RFC 4175 SDP form). */
        caps = g_strdup_printf(
            "application/x-rtp,media=(string)video,clock-rate=(int)90000,"
            "encoding-name=(string)RAW,sampling=(string)%s,depth=(string)%u,width=(string)%u,"
            "height=(string)%u,colorimetry=(string)BT601-5,payload=(int)%u",
            src->sampling, src->depth, src->width, src->height, src->payload);
        append_udpsrc(s, src, caps, timeout_ns);
        g_string_append(s, "rtpvrawdepay name=depay");
        g_free(caps);
        break;
    case EVD_SOURCE_RTP_H264:
    case EVD_SOURCE_RTP_JPEG: {
        gboolean h264 = src->type == EVD_SOURCE_RTP_H264;
        caps = g_strdup_printf("application/x-rtp,media=(string)video,clock-rate=(int)90000,"
                               "encoding-name=(string)%s,payload=(int)%u",
                               h264 ? "H264" : "JPEG", src->payload);
        append_udpsrc(s, src, caps, timeout_ns);
        g_string_append(s,
                        h264 ? "rtph264depay ! h264parse ! decodebin" : "rtpjpegdepay ! jpegdec");
        g_free(caps);
        break;
    }
    case EVD_SOURCE_SDP:
        g_string_append(s, "filesrc location=");
        append_quoted(s, src->location);
        g_string_append_printf(
            s, " ! sdpdemux name=sdp latency=%u timeout=%" G_GUINT64_FORMAT " ! decodebin",
            src->jitter_latency_ms, timeout_ns / 1000);
        break;
    case EVD_SOURCE_URI:
        g_string_append(s, "uridecodebin uri=");
        append_quoted(s, src->uri);
        break;
    case EVD_SOURCE_PHANTOM:
        g_string_append(s, "echophantomsrc name=phantom");
        append_properties(s, src->properties);
        if (src->width || src->height || src->framerate) {
            g_string_append(s, " ! video/x-raw");
            if (src->width)
                g_string_append_printf(s, ",width=%u", src->width);
            if (src->height)
                g_string_append_printf(s, ",height=%u", src->height);
            if (src->framerate)
                g_string_append_printf(s, ",framerate=%u/1", src->framerate);
        }
        break;
    case EVD_SOURCE_PIPELINE:
        g_string_append(s, src->pipeline);
        break;
    }
    /* The queue decouples the network thread from inference: when the classifier falls behind,
   * old frames are dropped here (counted as `dropped`) rather than packets in the socket. */
    g_string_append(
        s, " ! queue name=frames leaky=downstream max-size-buffers=2 "
           "max-size-bytes=0 max-size-time=0 ! videoconvert ! echoviewclassify name=classify "
           "updates=on-change");
    /* Streams share one loaded model per file (the weights are read-only at inference). */
    if (!evd_properties_find(stream->classifier, "model-instance-id")) {
        g_string_append(s, " model-instance-id=");
        append_quoted(s, evd_properties_find(stream->classifier, "model-file")->value);
    }
    /* One unique-id for every pipeline: the element's default is a new id per element, and each
     * id registers its "echoview-result-<id>" GstCustomMeta, a GType that is never freed, so
     * every restart of a stream kept about 5 KB (RssAnon grew 4.7 MiB/h in a soak). Buffers of
     * one pipeline meet one classifier here, so one id serves them all. */
    if (!evd_properties_find(stream->classifier, "unique-id"))
        g_string_append(s, " unique-id=1");
    append_properties(s, stream->classifier);
    /* Network sources are paced by the sender; local ones (phantom, files) by the clock. */
    g_string_append_printf(s, " ! fakesink name=sink sync=%s async=false enable-last-sample=false",
                           src->type == EVD_SOURCE_RTP_RAW || src->type == EVD_SOURCE_RTP_H264 ||
                                   src->type == EVD_SOURCE_RTP_JPEG || src->type == EVD_SOURCE_SDP
                               ? "false"
                               : "true");
    return g_string_free(s, FALSE);
}

gchar *evd_pipeline_describe_sender(const EvdSenderConfig *sender)
{
    GString *s = g_string_new("echophantomsrc name=phantom");

    append_properties(s, sender->properties);
    g_string_append_printf(
        s,
        " ! video/x-raw,width=%u,height=%u,framerate=%u/1 ! videoconvert ! "
        "video/x-raw,format=%s ! rtpvrawpay pt=%u mtu=1400 ! udpsink name=sink host=",
        sender->width, sender->height, sender->framerate, sender->format, sender->payload);
    append_quoted(s, sender->host);
    g_string_append_printf(s, " port=%u sync=false async=false", sender->port);
    return g_string_free(s, FALSE);
}

gchar *evd_pipeline_fingerprint_stream(const EvdStreamConfig *stream)
{
    gchar *pipeline = evd_pipeline_describe_stream(stream);
    GString *senders = g_string_new(NULL);
    gchar *fp;

    for (guint i = 0; stream->source.allowed_senders && i < stream->source.allowed_senders->len;
         i++)
        g_string_append_printf(senders, "%s,",
                               (const gchar *)g_ptr_array_index(stream->source.allowed_senders, i));
    fp = g_strdup_printf("%d|checks %g %g %g %g %g %g %u|senders %s|ssrc %d %u|%s",
                         stream->enabled, stream->frozen_timeout, stream->frozen_difference,
                         stream->max_loss, stream->unknown_timeout, stream->min_fps_ratio,
                         stream->low_fps_timeout, stream->source.framerate, senders->str, stream->source.has_ssrc,
                         stream->source.ssrc, pipeline);
    g_string_free(senders, TRUE);

    g_free(pipeline);
    return fp;
}

gchar *evd_pipeline_fingerprint_sender(const EvdSenderConfig *sender)
{
    return evd_pipeline_describe_sender(sender);
}

/* ---- what only GStreamer can check -------------------------------------------------------------------------- */

static gboolean validate_properties(const EvdConfig *config, const gchar *factory_name,
                                    const GPtrArray *properties, const gchar *what, GError **err)
{
    GstElementFactory *factory = gst_element_factory_find(factory_name);
    GObjectClass *klass;
    gboolean ok = TRUE;

    if (!factory) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: GStreamer element %s not found (is GST_PLUGIN_PATH set?)", config->path,
                    factory_name);
        return FALSE;
    }
    factory = GST_ELEMENT_FACTORY(gst_plugin_feature_load(GST_PLUGIN_FEATURE(factory)));
    if (!factory) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                    "%s: GStreamer element %s cannot be loaded", config->path, factory_name);
        return FALSE;
    }
    klass = g_type_class_ref(gst_element_factory_get_element_type(factory));
    for (guint i = 0; ok && properties && i < properties->len; i++) {
        const EvdProperty *prop = g_ptr_array_index(properties, i);
        GParamSpec *pspec = g_object_class_find_property(klass, prop->name);
        GValue value = G_VALUE_INIT;

        if (!pspec || !(pspec->flags & G_PARAM_WRITABLE)) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "%s:%d:%d: %s has no writable property '%s'", config->path, prop->line,
                        prop->column, what, prop->name);
            ok = FALSE;
            break;
        }
        g_value_init(&value, G_PARAM_SPEC_VALUE_TYPE(pspec));
        if (!gst_value_deserialize_with_pspec(&value, prop->value, pspec) ||
            g_param_value_validate(pspec, &value)) {
            g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                        "%s:%d:%d: bad value '%s' for %s property '%s' (%s)", config->path,
                        prop->line, prop->column, prop->value, what, prop->name,
                        g_param_spec_get_blurb(pspec));
            ok = FALSE;
        }
        g_value_unset(&value);
    }
    g_type_class_unref(klass);
    gst_object_unref(factory);
    return ok;
}

static gboolean validate_description(const EvdConfig *config, const gchar *what, const gchar *id,
                                     gint line, gint column, const gchar *description, GError **err)
{
    GError *perr = NULL;
    GstElement *pipeline =
        gst_parse_launch_full(description, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &perr);

    if (!pipeline) {
        g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA, "%s:%d:%d: %s '%s': %s",
                    config->path, line, column, what, id, perr ? perr->message : "cannot be built");
        g_clear_error(&perr);
        return FALSE;
    }
    g_clear_error(&perr);
    gst_object_unref(pipeline);
    return TRUE;
}

gboolean evd_pipeline_validate(const EvdConfig *config, GError **err)
{
    GHashTable *models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean ok = TRUE;

    for (guint i = 0; ok && i < config->streams->len; i++) {
        EvdStreamConfig *s = g_ptr_array_index(config->streams, i);
        gchar *description;
        const gchar *file;
        const EvdProperty *model;

        ok = validate_properties(config, "echoviewclassify", s->classifier, "echoviewclassify",
                                 err) &&
             (s->source.type != EVD_SOURCE_PHANTOM ||
              validate_properties(config, "echophantomsrc", s->source.properties, "echophantomsrc",
                                  err));
        if (!ok)
            break;
        description = evd_pipeline_describe_stream(s);
        ok = validate_description(config, "stream", s->id, s->line, s->column, description, err);
        g_free(description);
        model = evd_properties_find(s->classifier, "model-file");
        file = model->value;
        if (ok && s->enabled && !g_hash_table_contains(models, file)) {
            GError *merr = NULL;
            if (!evd_models_check(s, &merr)) {
                g_set_error(err, EVD_CONFIG_ERROR, EVD_CONFIG_ERROR_SCHEMA,
                            "%s:%d:%d: model-file: %s", config->path, model->line, model->column,
                            merr->message);
                g_clear_error(&merr);
                ok = FALSE;
                break;
            }
            g_hash_table_add(models, g_strdup(file));
        }
    }
    for (guint i = 0; ok && i < config->senders->len; i++) {
        EvdSenderConfig *s = g_ptr_array_index(config->senders, i);
        gchar *description;

        ok = validate_properties(config, "echophantomsrc", s->properties, "echophantomsrc", err);
        if (!ok)
            break;
        description = evd_pipeline_describe_sender(s);
        ok = validate_description(config, "simulate", s->id, s->line, s->column, description, err);
        g_free(description);
    }
    g_hash_table_unref(models);
    return ok;
}
