/* gstechoview.c: the `echoview` plugin: echoviewclassify, echoviewoverlay, echophantomsrc and
 * (with DCMTK) dicomsrc. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstechophantomsrc.h"
#include "gstechoviewclassify.h"
#include "gstechoviewoverlay.h"
#ifdef ECHOVIEW_HAVE_DICOM
#include "gstdicomsrc.h"
#endif

#include "echoview.h"

static gboolean plugin_init(GstPlugin *plugin)
{
    gboolean ok = FALSE;

    ok |= GST_ELEMENT_REGISTER(echoviewclassify, plugin);
    ok |= GST_ELEMENT_REGISTER(echoviewoverlay, plugin);
    ok |= GST_ELEMENT_REGISTER(echophantomsrc, plugin);
#ifdef ECHOVIEW_HAVE_DICOM
    ok |= GST_ELEMENT_REGISTER(dicomsrc, plugin);
#endif
    return ok;
}

#define PACKAGE "echoview"
/* "MIT/X11" is GStreamer's name for the MIT licence (plain "MIT" warns at every load) */
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, echoview,
                  "Echocardiography view classification (DARTS CNN) and a synthetic echo scanner",
                  plugin_init, EV_VERSION, "MIT/X11", "echoview",
                  "https://github.com/echoview/echoview")
