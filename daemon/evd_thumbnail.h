/* evd_thumbnail.h: the latest frame of a stream, small and grey, for the live page: taken on
 * the classifier's streaming thread at most once a second (a strided copy of the luma or, for
 * packed RGB, of a weighted sum of the first three bytes of each pixel: no allocation), encoded
 * to PNG on the HTTP thread that asks for it. */
#ifndef EVD_THUMBNAIL_H
#define EVD_THUMBNAIL_H

#include <gst/gst.h>
#include <gst/video/video.h>

G_BEGIN_DECLS

#define EVD_THUMB_MAX_SIDE 160

typedef struct _EvdThumbnail {
    guint width, height; /* 0: none yet */
    guint8 pixels[EVD_THUMB_MAX_SIDE * EVD_THUMB_MAX_SIDE];
    gint64 taken; /* monotonic */
} EvdThumbnail;

/* Downscales the frame into thumb (nearest sample); FALSE when the format is not one it reads. */
gboolean evd_thumbnail_take(EvdThumbnail *thumb, const GstVideoInfo *info, GstBuffer *buffer,
                            gint64 now);
/* An 8-bit greyscale PNG of the thumbnail (g_free it). */
guint8 *evd_thumbnail_png(const EvdThumbnail *thumb, gsize *len);

G_END_DECLS

#endif
