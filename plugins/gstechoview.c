/* gstechoview.c: the `echoview` plugin: echoviewclassify and echophantomsrc. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstechophantomsrc.h"
#include "gstechoviewclassify.h"

#include "echoview.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  gboolean ok = FALSE;

  ok |= GST_ELEMENT_REGISTER (echoviewclassify, plugin);
  ok |= GST_ELEMENT_REGISTER (echophantomsrc, plugin);
  return ok;
}

#define PACKAGE "echoview"
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, echoview,
    "Echocardiography view classification (DARTS CNN) and a synthetic echo scanner",
    plugin_init, EV_VERSION, "MIT", "echoview", "https://github.com/echoview/echoview")
