/* gstechoviewoverlay.h: echoviewoverlay, which draws echoviewclassify's result on the video. */
#ifndef GST_ECHO_VIEW_OVERLAY_H
#define GST_ECHO_VIEW_OVERLAY_H

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ECHO_VIEW_OVERLAY (gst_echo_view_overlay_get_type())
G_DECLARE_FINAL_TYPE(GstEchoViewOverlay, gst_echo_view_overlay, GST, ECHO_VIEW_OVERLAY,
                     GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(echoviewoverlay);

G_END_DECLS

#endif
