/* bridge_sender.h: plays DICOM cine loops (media/dicom.h) in real time as one continuous RTP
 * stream (RFC 4175 raw video, H.264 or JPEG) and writes the SDP that echoviewd's `sdp` source
 * reads. Used by `echoview dicom2rtp` (a playlist of files) and by echoview-dicom-bridge (loops
 * arriving over C-STORE). Files are queued from any thread; one feeder thread decodes them and
 * pushes frames, timed by the file's Frame Time, into an appsrc -> convert/scale -> payloader
 * -> udpsink pipeline whose clock paces the network output. */
#ifndef ECHOVIEW_BRIDGE_SENDER_H
#define ECHOVIEW_BRIDGE_SENDER_H

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    BRIDGE_ENCODING_RAW, /* RFC 4175 (SMPTE ST 2110-20 style), the DICOM Real-Time Video form */
    BRIDGE_ENCODING_H264,
    BRIDGE_ENCODING_JPEG,
} BridgeEncoding;

typedef enum {
    BRIDGE_LOOP_NONE,   /* play what is queued once, then idle (or end, see finish) */
    BRIDGE_LOOP_ALL,    /* replay everything queued so far, in order (dicom2rtp --loop) */
    BRIDGE_LOOP_LATEST, /* replay the latest file until a newer one arrives (the bridge) */
} BridgeLoop;

typedef struct {
    const gchar *host; /* destination address */
    guint port;        /* destination UDP port */
    guint payload;     /* RTP payload type (96 when 0) */
    BridgeEncoding encoding;
    gboolean raw_i420;   /* raw only: I420 instead of RGB (RGB keeps gray pixels exact) */
    guint width, height; /* stream frame size; files of another size are scaled with
                                 * borders to keep their aspect */
    BridgeLoop loop;
    const gchar *sdp_path;   /* written at start when set */
    const gchar *name;       /* the SDP session name (the AE title or "dicom2rtp") */
    const gchar *log_prefix; /* starts every log line (default: name) */
    gboolean keep_queued;    /* at free, owned files still queued (never played) stay on disk */
} BridgeSenderConfig;

typedef struct _BridgeSender BridgeSender;

gboolean bridge_encoding_parse(const gchar *text, BridgeEncoding *out);
const gchar *bridge_encoding_name(BridgeEncoding encoding);

/* The SDP text for a config (what bridge_sender_new writes to sdp_path). */
gchar *bridge_sdp_text(const BridgeSenderConfig *config);

/* Builds and starts the pipeline (PLAYING, idle until a file is queued); writes the SDP. */
BridgeSender *bridge_sender_new(const BridgeSenderConfig *config, GError **error);
/* Queues a file. With owned, the sender deletes the file once it will not play it again. */
void bridge_sender_push(BridgeSender *sender, const gchar *path, gboolean owned);
/* No more files: after the queue (and, with loop, never) the stream ends with EOS. */
void bridge_sender_finish(BridgeSender *sender);
/* Blocks until the stream ended (EOS) or failed. Returns FALSE with error on failure. */
gboolean bridge_sender_wait(BridgeSender *sender, GError **error);
/* Counters for logs and tests. */
guint64 bridge_sender_frames_sent(BridgeSender *sender);
guint bridge_sender_files_failed(BridgeSender *sender);
/* Files queued and not yet played. */
guint bridge_sender_queued(BridgeSender *sender);
/* Stops at once and frees everything (deleting owned files; with keep_queued, not those
 * still waiting in the queue: they were never played). */
void bridge_sender_free(BridgeSender *sender);

G_END_DECLS

#endif
