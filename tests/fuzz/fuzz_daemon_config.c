/* fuzz_daemon_config.c: libFuzzer target for echoviewd's YAML configuration parser
 * (evd_config_parse, from memory). Whatever parses must also yield the pipeline descriptions
 * and fingerprints the supervisor builds from it; an error must carry a message. */
#include "evd_pipeline.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    EvdConfig *config = evd_config_parse((const gchar *)data, size, "/nonexistent/fuzz.yaml", &err);

    if (!config) {
        if (!err || !err->message[0])
            abort();
        g_error_free(err);
        return 0;
    }
    if (err)
        abort();
    for (guint i = 0; i < config->streams->len; i++) {
        const EvdStreamConfig *stream = g_ptr_array_index(config->streams, i);
        g_free(evd_pipeline_describe_stream(stream));
        g_free(evd_pipeline_fingerprint_stream(stream));
    }
    for (guint i = 0; i < config->senders->len; i++) {
        const EvdSenderConfig *sender = g_ptr_array_index(config->senders, i);
        g_free(evd_pipeline_describe_sender(sender));
        g_free(evd_pipeline_fingerprint_sender(sender));
    }
    evd_config_free(config);
    return 0;
}
