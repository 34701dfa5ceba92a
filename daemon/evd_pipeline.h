/* evd_pipeline.h: what a configuration becomes in GStreamer: pipeline descriptions, their
 * fingerprints, and the checks only GStreamer can make. */
#ifndef EVD_PIPELINE_H
#define EVD_PIPELINE_H

#include <glib.h>

#include "evd_config.h"

G_BEGIN_DECLS

/* The gst-launch description of the stream's pipeline. Named elements: `classify`
 * (echoviewclassify), `src` (udpsrc, rtp sources), `jitter` (rtpjitterbuffer, rtp sources),
 * `depay` (rtpvrawdepay, rtp-raw), `frames` (the leaky queue). */
gchar *evd_pipeline_describe_stream(const EvdStreamConfig *stream);
/* The sender's pipeline description. */
gchar *evd_pipeline_describe_sender(const EvdSenderConfig *sender);
/* A canonical text of everything that shapes the pipeline; equal fingerprints mean that a
 * reload leaves the stream alone. */
gchar *evd_pipeline_fingerprint_stream(const EvdStreamConfig *stream);
gchar *evd_pipeline_fingerprint_sender(const EvdSenderConfig *sender);

/* Checks what can only be checked with GStreamer: elements and properties exist and accept the
 * configured values (errors name file:line:column), every description builds, every model of
 * an enabled stream loads. */
gboolean evd_pipeline_validate(const EvdConfig *config, GError **err);

G_END_DECLS

#endif
