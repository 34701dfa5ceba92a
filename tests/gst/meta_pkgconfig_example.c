/* meta_pkgconfig_example.c: an application built with nothing but
 * `pkg-config --cflags --libs echoviewmeta`: adds an EchoViewMeta, reads it back by unique-id,
 * prints "ok <label> <unique_id>". Compiled and run by test_meta_pkgconfig.sh. */
#include <gstechoviewmeta.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    GstBuffer *buf;
    GstEchoViewMeta *m;
    int ok;

    gst_init(&argc, &argv);
    buf = gst_buffer_new();
    m = gst_buffer_ensure_echo_view_meta_for_id(buf, 4);
    m->label = g_intern_static_string("PLAX-full");
    m = gst_buffer_get_echo_view_meta_by_id(buf, 4);
    ok = m && m->unique_id == 4 && m->age == GST_ECHO_VIEW_AGE_NONE;
    printf("%s %s %u\n", ok ? "ok" : "FAIL", m ? m->label : "-", m ? m->unique_id : 0);
    gst_buffer_unref(buf);
    return ok ? 0 : 1;
}
