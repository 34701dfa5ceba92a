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

GST_ELEMENT_REGISTER_DECLARE(echoviewclassify);

G_END_DECLS

#endif
