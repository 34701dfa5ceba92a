/* cmd_dicom2rtp.c: `echoview dicom2rtp`: plays DICOM cine loops in real time as one RTP stream
 * (bridge/bridge_sender.h) and writes the SDP that echoviewd's `sdp` source reads. */
#include "bridge_sender.h"
#include "dicom.h"
#include "tools.h"

#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: echoview dicom2rtp FILE...|DIR --port P [--host H] [--encoding raw|h264|jpeg]\n"
    "                          [--raw-format rgb|i420] [--size WxH] [--payload N] [--loop]\n"
    "                          [--sdp out.sdp]\n"
    "  Plays DICOM files (single- or multi-frame; native, RLE or JPEG) one after the other in\n"
    "  real time, at each file's Frame Time / Frame Time Vector / Cine Rate, as one RTP stream.\n"
    "  A DIR plays its *.dcm files (and files without an extension) in name order.\n"
    "  --host H          destination address (default 127.0.0.1)\n"
    "  --port P          destination UDP port (required)\n"
    "  --encoding E      raw: RFC 4175 (default), h264 or jpeg\n"
    "  --raw-format F    raw sampling: rgb (default; gray pixels arrive unchanged) or i420\n"
    "  --size WxH        stream frame size (default: the first readable file's); other sizes\n"
    "                    are scaled with borders; odd sizes are rounded down to even\n"
    "  --payload N       RTP payload type (default 96)\n"
    "  --loop            replay the whole list forever\n"
    "  --sdp FILE        write the stream's SDP (for echoviewd: source {type: sdp, location})\n";

static gint compare_paths(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(char *const *)a, *(char *const *)b); /* g_ptr_array_sort passes char ** */
}

static int collect(const char *arg, GPtrArray *files)
{
    if (!g_file_test(arg, G_FILE_TEST_IS_DIR)) {
        g_ptr_array_add(files, g_strdup(arg));
        return 0;
    }
    GError *error = NULL;
    GDir *dir = g_dir_open(arg, 0, &error);
    if (!dir) {
        fprintf(stderr, "echoview dicom2rtp: %s\n", error->message);
        g_error_free(error);
        return -1;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(dir))) {
        const char *dot = strrchr(name, '.');
        if (name[0] != '.' && (!dot || !g_ascii_strcasecmp(dot, ".dcm")))
            g_ptr_array_add(names, g_build_filename(arg, name, NULL));
    }
    g_dir_close(dir);
    g_ptr_array_sort(names, compare_paths);
    for (guint i = 0; i < names->len; i++) {
        char *path = g_ptr_array_index(names, i);
        if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
            g_ptr_array_add(files, g_strdup(path));
    }
    g_ptr_array_unref(names);
    return 0;
}

static int parse_encoding(const char *cmd, const tool_option *row, const char *val)
{
    if (bridge_encoding_parse(val, row->target))
        return 0;
    fprintf(stderr, "echoview %s: --encoding raw, h264 or jpeg, got '%s'\n", cmd, val);
    return -1;
}

static int parse_size(const char *cmd, const tool_option *row, const char *val)
{
    BridgeSenderConfig *config = row->target;
    char x;
    if (sscanf(val, "%ux%u%c", &config->width, &config->height, &x) != 2 || config->width < 2 ||
        config->height < 2 || config->width > MEDIA_MAX_DIMENSION ||
        config->height > MEDIA_MAX_DIMENSION) {
        fprintf(stderr, "echoview %s: --size needs WxH (2..%d), got '%s'\n", cmd,
                MEDIA_MAX_DIMENSION, val);
        return -1;
    }
    return 0;
}

/* A FILE or DIR operand: its files join the play list (failing: the work failed). */
static int take_files(void *ctx, const char *arg)
{
    return collect(arg, ctx) < 0 ? TOOL_FAILED : TOOL_CONTINUE;
}

int cmd_dicom2rtp(int argc, char **argv)
{
    BridgeSenderConfig config = {.host = "127.0.0.1", .name = "dicom2rtp"};
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    const char *raw_format = "rgb";
    bool loop = false;
    int port = 0, payload = 0;
    const tool_option options[] = {
        TOOL_FLAG("--loop", &loop),
        TOOL_STRING("--host", &config.host),
        TOOL_INT("--port", &port, 1, 65535),
        TOOL_INT("--payload", &payload, 96, 127),
        TOOL_CUSTOM("--encoding", parse_encoding, &config.encoding),
        TOOL_CHOICE("--raw-format", &raw_format, "rgb", "i420"),
        TOOL_CUSTOM("--size", parse_size, &config),
        TOOL_STRING("--sdp", &config.sdp_path),
    };
    const tool_parser parser = {.cmd = "dicom2rtp",
                                .usage = usage,
                                .options = options,
                                .count = TOOL_COUNT(options),
                                .operand = take_files,
                                .ctx = files};
    int rc = tool_parse_args(&parser, argc, argv);
    if (rc != TOOL_CONTINUE)
        goto out;
    rc = TOOL_USAGE;
    config.port = (guint)port;
    config.payload = (guint)payload;
    config.raw_i420 = !strcmp(raw_format, "i420");
    if (loop)
        config.loop = BRIDGE_LOOP_ALL;
    if (!config.port || !files->len) {
        fprintf(stderr, "echoview dicom2rtp: %s\n%s",
                !files->len ? "no DICOM files given" : "--port P is required", usage);
        goto out;
    }
    /* The stream's size is fixed by the SDP: the first file that opens sets it. */
    if (!config.width) {
        for (guint i = 0; i < files->len && !config.width; i++) {
            media_dicom *d = NULL;
            ev_error err = {0};
            if (media_dicom_open(g_ptr_array_index(files, i), &d, &err) == EV_OK) {
                config.width = (guint)media_dicom_get_info(d)->width;
                config.height = (guint)media_dicom_get_info(d)->height;
                media_dicom_close(d);
            } else {
                fprintf(stderr, "echoview dicom2rtp: %s\n", err.message);
            }
        }
        if (!config.width) {
            fprintf(stderr,
                    "echoview dicom2rtp: none of the %u file(s) is a readable DICOM "
                    "image\n",
                    files->len);
            rc = TOOL_FAILED;
            goto out;
        }
    }
    gst_init(NULL, NULL);
    GError *error = NULL;
    BridgeSender *sender = bridge_sender_new(&config, &error);
    if (!sender) {
        fprintf(stderr, "echoview dicom2rtp: %s\n", error->message);
        g_error_free(error);
        rc = TOOL_FAILED;
        goto out;
    }
    for (guint i = 0; i < files->len; i++)
        bridge_sender_push(sender, g_ptr_array_index(files, i), FALSE);
    bridge_sender_finish(sender);
    fprintf(stderr, "dicom2rtp: %u file(s) -> %s:%u (%s %ux%u)%s\n", files->len, config.host,
            config.port, bridge_encoding_name(config.encoding), config.width & ~1u,
            config.height & ~1u, config.loop ? ", looping" : "");
    gboolean ok = bridge_sender_wait(sender, &error);
    guint failed = bridge_sender_files_failed(sender);
    guint64 frames = bridge_sender_frames_sent(sender);
    bridge_sender_free(sender);
    if (!ok) {
        fprintf(stderr, "echoview dicom2rtp: %s\n", error->message);
        g_error_free(error);
        rc = TOOL_FAILED;
    } else {
        printf("dicom2rtp: sent %" G_GUINT64_FORMAT " frame(s) from %u file(s), %u skipped\n",
               frames, files->len - failed, failed);
        rc = failed ? TOOL_FAILED : TOOL_OK;
    }
out:
    g_ptr_array_unref(files);
    return rc;
}
