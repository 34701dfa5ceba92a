/* video.h: frames of a video file (MP4, AVI, MKV, ... whatever GStreamer's decodebin decodes
 * here), converted to 8-bit gray or RGB and sampled at a chosen rate of stream time. Only built
 * when GStreamer is found (meson: media_video_dep, ECHOVIEW_HAVE_VIDEO). Files are untrusted:
 * a file that does not decode, has no video stream or stalls is an error naming it. */
#ifndef ECHOVIEW_MEDIA_VIDEO_H
#define ECHOVIEW_MEDIA_VIDEO_H

#include "echoview.h"

#include <stdbool.h>
#include <stdint.h>

/* Refuse more sampled frames than this from one file. */
#define MEDIA_VIDEO_MAX_FRAMES 100000

/* One sampled frame: index counts sampled frames from 0; rows of stride bytes, width *
 * channels used. Return false to stop reading (not an error). */
typedef bool (*media_video_frame_fn)(void *user, int index, const uint8_t *pixels, int width,
                                     int height, int stride, int channels);

/* Decodes path and calls on_frame for each sampled frame: with fps > 0 the first frame at or
 * after each multiple of 1/fps seconds of stream time, else every frame. channels 1 (gray) or
 * 3 (RGB). *sampled (optional) gets the number of frames handed over. */
int media_video_read(const char *path, double fps, int channels, media_video_frame_fn on_frame,
                     void *user, int *sampled, ev_error *err);

/* Whether a name has a video extension this reader is meant for (.mp4 .m4v .mov .avi .mkv
 * .webm). Always built (video_name.c, in the media library), with or without GStreamer. */
bool media_video_is_name(const char *name);

#endif
