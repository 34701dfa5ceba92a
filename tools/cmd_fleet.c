/* cmd_fleet.c: `echoview fleet map`: which instance of a fleet of echoviewd runs each stream of
 * one shared daemon config (rendezvous hashing, base/ev_shard.h, the daemon's own rule) and the
 * RTP destination its sender must use. The config is read by the daemon's own parser
 * (daemon/evd_config.h), so a config the daemon refuses is refused here with the same message. */
#include "tools.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ev_shard.h"
#include "evd_config.h"

static const char *usage =
    "usage: echoview fleet map --config FILE --shards N [--host PATTERN] [--format text|json]\n"
    "  For each stream of the echoviewd config FILE: the shard (0..N-1) that runs it when N\n"
    "  instances share FILE (echoviewd --shard I/N), that instance's host and the RTP\n"
    "  destination host:port its sender must use. The host of shard I is PATTERN with {i}\n"
    "  replaced by I (default 'echoviewd-{i}', the StatefulSet pod name); a stream bound to a\n"
    "  specific address (a unicast or multicast address, not 0.0.0.0 or ::) is sent to that\n"
    "  address. Streams that are not RTP (uri, phantom, pipeline, sdp) have no destination.\n";

/* PATTERN with each {i} replaced by index. */
static char *host_of(const char *pattern, unsigned index)
{
    GString *out = g_string_new(NULL);
    for (const char *p = pattern; *p;) {
        if (strncmp(p, "{i}", 3) == 0) {
            g_string_append_printf(out, "%u", index);
            p += 3;
        } else {
            g_string_append_c(out, *p++);
        }
    }
    return g_string_free(out, FALSE);
}

static bool is_rtp(EvdSourceType t)
{
    return t == EVD_SOURCE_RTP_RAW || t == EVD_SOURCE_RTP_H264 || t == EVD_SOURCE_RTP_JPEG;
}

static int fleet_map(int argc, char **argv)
{
    const char *config_path = NULL, *pattern = "echoviewd-{i}", *format = "text";
    int shards = 0;
    const tool_option options[] = {
        TOOL_STRING("--config", &config_path),
        TOOL_INT("--shards", &shards, 1, EV_SHARD_MAX),
        TOOL_STRING("--host", &pattern),
        TOOL_CHOICE("--format", &format, "text", "json"),
    };
    const tool_parser parser = {
        .cmd = "fleet map", .usage = usage, .options = options, .count = TOOL_COUNT(options)};
    int status = tool_parse_args(&parser, argc, argv);
    if (status != TOOL_CONTINUE)
        return status;
    if (!config_path || shards < 1) {
        fprintf(stderr, "echoview fleet map: --config FILE and --shards N are required\n%s",
                usage);
        return TOOL_USAGE;
    }
    if (!*pattern) {
        fprintf(stderr, "echoview fleet map: --host must not be empty\n");
        return TOOL_USAGE;
    }
    GError *err = NULL;
    EvdConfig *config = evd_config_load(config_path, &err);
    if (!config) {
        fprintf(stderr, "echoview fleet map: %s\n", err->message);
        g_clear_error(&err);
        return TOOL_FAILED;
    }
    bool json = strcmp(format, "json") == 0;
    json_t *rows = json_array();
    if (!json)
        printf("%-24s %5s  %-24s %s\n", "STREAM", "SHARD", "INSTANCE", "RTP DESTINATION");
    for (guint i = 0; i < config->streams->len; i++) {
        const EvdStreamConfig *s = g_ptr_array_index(config->streams, i);
        unsigned owner = ev_shard_owner(s->id, (unsigned)shards);
        char *host = host_of(pattern, owner), *dest = NULL;
        if (is_rtp(s->source.type)) {
            const char *a = s->source.address;
            bool wildcard = !a || !*a || strcmp(a, "0.0.0.0") == 0 || strcmp(a, "::") == 0;
            const char *h = wildcard ? host : a;
            dest = strchr(h, ':') ? g_strdup_printf("[%s]:%u", h, s->source.port)
                                  : g_strdup_printf("%s:%u", h, s->source.port);
        }
        if (json)
            json_array_append_new(
                rows, json_pack("{s:s, s:i, s:s, s:s, s:s?}", "stream", s->id, "shard",
                                (int)owner, "instance", host, "source",
                                evd_source_type_name(s->source.type), "destination", dest));
        else
            printf("%-24s %5u  %-24s %s\n", s->id, owner, host, dest ? dest : "-");
        g_free(host);
        g_free(dest);
    }
    if (json) {
        json_t *doc = json_pack("{s:s, s:i, s:o}", "config", config->path, "shards", shards,
                                "streams", rows);
        char *text = json_dumps(doc, JSON_INDENT(2));
        puts(text);
        free(text);
        json_decref(doc);
    } else {
        json_decref(rows);
    }
    evd_config_free(config);
    return TOOL_OK;
}

int cmd_fleet(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "map") == 0)
        return fleet_map(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return TOOL_OK;
    }
    fprintf(stderr, "echoview fleet: expected the subcommand 'map'\n%s", usage);
    return TOOL_USAGE;
}
