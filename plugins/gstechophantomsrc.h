/* gstechophantomsrc.h: echophantomsrc, a live source of synthetic echo cine loops. */
#ifndef GST_ECHO_PHANTOM_SRC_H
#define GST_ECHO_PHANTOM_SRC_H

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ECHO_PHANTOM_SRC (gst_echo_phantom_src_get_type())
G_DECLARE_FINAL_TYPE(GstEchoPhantomSrc, gst_echo_phantom_src, GST, ECHO_PHANTOM_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(echophantomsrc);

G_END_DECLS

#endif
