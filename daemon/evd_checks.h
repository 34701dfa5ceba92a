/* evd_checks.h: the frame checks that stop a stream from reporting a confident label for frames
 * it cannot read correctly. Two checks, each a small state machine fed on a streaming thread
 * (under the supervisor's lock) and read by the stream's tick on the main loop:
 * - the size check (rtp-raw only): the RFC 4175 payload headers of the RTP packets going into
 *   the depayloader say which lines and pixels the sender sends; a sender whose frames are not
 *   the configured width x height (it changed resolution) makes the stream `error`, since the
 *   depayloader would otherwise crop or pad its frames into the configured size silently;
 * - the frozen check (every stream): the mean absolute difference between consecutive frames on
 *   a grid of at most 64 x 64 samples of the first plane; frames that stay within
 *   `frozen-difference` of each other for `frozen-timeout` seconds make the stream `frozen`
 *   (a scanner's freeze button, a capture card repeating its last frame). */
#ifndef EVD_CHECKS_H
#define EVD_CHECKS_H

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

/* Frames in a row that must disagree with the configured size before the stream is `error`
 * (a lost last line makes one frame look short; ten in a row does not happen by loss), and
 * frames in a row that must agree before it recovers. */
#define EVD_SIZE_BAD_FRAMES 10
#define EVD_SIZE_GOOD_FRAMES 3
/* Payload headers read per packet at most (RFC 4175 allows as many as fit). */
#define EVD_SIZE_MAX_SEGMENTS 64

typedef struct {
    /* configuration (0 width: the check is off) */
    guint width, height;
    guint pgroup_bytes, pgroup_pixels; /* one pixel group: octets, and pixels along a line */
    guint line_step;                   /* lines one payload line covers (2 for 4:2:0) */
    /* the frame being received */
    gboolean in_frame;
    guint32 timestamp;
    guint frame_width, frame_height;
    /* the verdict */
    guint bad_run, good_run;
    guint seen_width, seen_height; /* the latest complete frame */
    gboolean mismatch;
    guint64 frames_checked, frames_mismatched;
} EvdSizeCheck;

/* sampling and depth as in the configuration (RFC 4175 names); width 0 turns the check off. */
void evd_size_check_init(EvdSizeCheck *c, const gchar *sampling, guint depth, guint width,
                         guint height);
/* One RTP packet (with its RTP header) going into the depayloader. */
void evd_size_check_packet(EvdSizeCheck *c, GstBuffer *rtp);
/* The pixel group of a sampling and depth: FALSE for a sampling RFC 4175 does not define. */
gboolean evd_size_check_pgroup(const gchar *sampling, guint depth, guint *bytes, guint *pixels,
                               guint *line_step);

#define EVD_FROZEN_GRID 64

typedef struct {
    guint8 samples[EVD_FROZEN_GRID * EVD_FROZEN_GRID];
    guint n_samples; /* 0: no previous frame */
    gint64 same_since;   /* monotonic time the frames stopped changing, 0 while they change */
    gdouble difference;  /* of the latest frame against the one before, grey levels of 255 */
    gboolean has_difference;
} EvdFrozenCheck;

void evd_frozen_check_reset(EvdFrozenCheck *c);
/* One frame as the classifier receives it; threshold in levels of 255. */
void evd_frozen_check_frame(EvdFrozenCheck *c, const GstVideoInfo *info, GstBuffer *buffer,
                            gdouble threshold, gint64 now);

G_END_DECLS

#endif
