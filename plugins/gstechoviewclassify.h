/* gstechoviewclassify.h: echoviewclassify, the in-place view-classifier element. */
#ifndef GST_ECHO_VIEW_CLASSIFY_H
#define GST_ECHO_VIEW_CLASSIFY_H

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ECHO_VIEW_CLASSIFY (gst_echo_view_classify_get_type())
G_DECLARE_FINAL_TYPE(GstEchoViewClassify, gst_echo_view_classify, GST, ECHO_VIEW_CLASSIFY,
                     GstBaseTransform)

/* The values and order of the engine's ev_backend_kind (echoview.h), so the property converts
 * with a cast (checked at compile time in gstechoviewclassify.c). */
typedef enum {
    GST_ECHO_VIEW_BACKEND_AUTO = 0,
    GST_ECHO_VIEW_BACKEND_REFERENCE = 1,
    GST_ECHO_VIEW_BACKEND_CPU = 2,
    GST_ECHO_VIEW_BACKEND_CUDA = 3,
} GstEchoViewBackend;

typedef enum {
    GST_ECHO_VIEW_UPDATES_EVERY_FRAME,
    GST_ECHO_VIEW_UPDATES_ON_CHANGE,
    GST_ECHO_VIEW_UPDATES_NONE,
} GstEchoViewUpdates;

/* What resets the per-stream state (result, smoothing, hysteresis, detected ROI): the
 * `reset-on` flags. A DISCONT buffer (a lost RTP packet, a dropped frame) is left out by default:
 * the picture after a gap is the same scan, and forgetting the history there turned 0.05 %
 * packet loss into a stable label that was mostly "unknown". */
typedef enum {
    GST_ECHO_VIEW_RESET_ON_FLUSH = 1 << 0,
    GST_ECHO_VIEW_RESET_ON_DISCONT = 1 << 1,
    GST_ECHO_VIEW_RESET_ON_STREAM_START = 1 << 2,
    GST_ECHO_VIEW_RESET_ON_CAPS = 1 << 3,
} GstEchoViewResetOn;

GST_ELEMENT_REGISTER_DECLARE(echoviewclassify);

G_END_DECLS

#endif
