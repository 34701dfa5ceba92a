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

int cmd_dicom2rtp(int argc, char **argv)
{
    BridgeSenderConfig config = {.host = "127.0.0.1", .name = "dicom2rtp"};
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    int rc = TOOL_USAGE;
    long v;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            rc = TOOL_OK;
            goto out;
        } else if (!strcmp(a, "--loop")) {
            config.loop = BRIDGE_LOOP_ALL;
            continue;
        } else if (a[0] != '-' || !a[1]) {
            if (collect(a, files) < 0) {
                rc = TOOL_FAILED;
                goto out;
            }
            continue;
        } else if (!val) {
            fprintf(stderr, "echoview dicom2rtp: %s needs a value\n%s", a, usage);
            goto out;
        }
        i++;
        if (!strcmp(a, "--host")) {
            config.host = val;
        } else if (!strcmp(a, "--port")) {
            if (!tool_parse_int("dicom2rtp", a, val, 1, 65535, &v))
                goto out;
            config.port = (guint)v;
        } else if (!strcmp(a, "--payload")) {
            if (!tool_parse_int("dicom2rtp", a, val, 96, 127, &v))
                goto out;
            config.payload = (guint)v;
        } else if (!strcmp(a, "--encoding")) {
            if (!bridge_encoding_parse(val, &config.encoding)) {
                fprintf(stderr, "echoview dicom2rtp: --encoding raw, h264 or jpeg, got '%s'\n",
                        val);
                goto out;
            }
        } else if (!strcmp(a, "--raw-format")) {
            if (strcmp(val, "rgb") && strcmp(val, "i420")) {
                fprintf(stderr, "echoview dicom2rtp: --raw-format rgb or i420, got '%s'\n", val);
                goto out;
            }
            config.raw_i420 = !strcmp(val, "i420");
        } else if (!strcmp(a, "--size")) {
            char x;
            if (sscanf(val, "%ux%u%c", &config.width, &config.height, &x) != 2 ||
                config.width < 2 || config.height < 2 || config.width > MEDIA_MAX_DIMENSION ||
                config.height > MEDIA_MAX_DIMENSION) {
                fprintf(stderr, "echoview dicom2rtp: --size needs WxH (2..%d), got '%s'\n",
                        MEDIA_MAX_DIMENSION, val);
                goto out;
            }
        } else if (!strcmp(a, "--sdp")) {
            config.sdp_path = val;
        } else {
            fprintf(stderr, "echoview dicom2rtp: unknown option '%s'\n%s", a, usage);
            goto out;
        }
    }
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
