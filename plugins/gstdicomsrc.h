/* gstdicomsrc.h: dicomsrc, a source of the frames of a DICOM file (media/dicom.h). */
#ifndef GST_DICOM_SRC_H
#define GST_DICOM_SRC_H

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_DICOM_SRC (gst_dicom_src_get_type())
G_DECLARE_FINAL_TYPE(GstDicomSrc, gst_dicom_src, GST, DICOM_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(dicomsrc);

G_END_DECLS

#endif
