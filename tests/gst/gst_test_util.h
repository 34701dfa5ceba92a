/* gst_test_util.h: helpers shared by the element tests: making echoviewclassify with
 * properties, filling frames of any supported format from one grey pattern, the engine's own
 * answer for a frame, and collecting bus messages. */
#ifndef EV_GST_TEST_UTIL_H
#define EV_GST_TEST_UTIL_H

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdarg.h>
#include <stdlib.h>

#include "echoview.h"
#include "gstechoviewmeta.h"
#include "test_util.h"

/* Element from a factory with "name", "value" string pairs (NULL-terminated). */
static inline GstElement *make_element(const char *factory, ...)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    va_list ap;
    const char *name;

    if (!e) {
        fprintf(stderr, "no element %s: is GST_PLUGIN_PATH set?\n", factory);
        exit(1);
    }
    va_start(ap, factory);
    while ((name = va_arg(ap, const char *)))
        gst_util_set_object_arg(G_OBJECT(e), name, va_arg(ap, const char *));
    va_end(ap);
    return e;
}

/* Harness around an element; the element gets its own bus so messages can be read. */
static inline GstHarness *harness_for(GstElement *e, GstBus **bus)
{
    GstHarness *h;
    *bus = gst_bus_new();
    gst_element_set_bus(e, *bus);
    h = gst_harness_new_with_element(e, "sink", "src");
    gst_object_unref(e);
    return h;
}

/* An echo-like grey pattern, varied by `variant`. */
static inline guint8 pattern_value(int x, int y, int w, int h, int variant)
{
    int v;
    guint32 hash =
        ((guint32)x * 73856093u) ^ ((guint32)y * 19349663u) ^ ((guint32)variant * 83492791u);
    hash ^= hash >> 13;
    hash *= 0x5bd1e995u;
    hash ^= hash >> 15;
    switch (variant % 8) {
    case 0:
        v = (x * 255) / (w > 1 ? w - 1 : 1);
        break;
    case 1:
        v = (y * 255) / (h > 1 ? h - 1 : 1);
        break;
    case 2:
        v = ((x / 4 + y / 4) & 1) ? 220 : 30;
        break;
    case 3:
        v = (int)((x * 37 + y * 91 + x * y) % 251);
        break;
    case 4:
        v = (int)(hash % 256);
        break; /* noise */
    case 5:
        v = (int)(hash % 64) * (variant / 8 % 4);
        break; /* dim noise */
    case 6:
        v = x < w * (variant / 8 % 8 + 1) / 9 ? 255 : 0;
        break; /* a bright band */
    default:
        v = (y * (variant / 8 % 5 + 1)) % h < h / 2 ? 200 : 10;
        break; /* stripes */
    }
    v = (v + variant / 8 * 37) % 256;
    return (guint8)v;
}

/* Buffer of format/size filled with pattern; every format shows the same grey (R=G=B, chroma
 * neutral, 16-bit = 257 * grey). */
static inline GstBuffer *make_frame(const GstVideoInfo *info, int variant)
{
    GstBuffer *buf = gst_buffer_new_and_alloc(GST_VIDEO_INFO_SIZE(info));
    GstVideoFrame f;
    const int w = GST_VIDEO_INFO_WIDTH(info), h = GST_VIDEO_INFO_HEIGHT(info);
    GstVideoFormat fmt = GST_VIDEO_INFO_FORMAT(info);

    gst_buffer_memset(buf, 0, 0, GST_VIDEO_INFO_SIZE(info));
    gst_video_frame_map(&f, info, buf, GST_MAP_WRITE);
    for (int y = 0; y < h; y++) {
        guint8 *row = (guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) +
                      (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
        const int ps = GST_VIDEO_FRAME_COMP_PSTRIDE(&f, 0);
        for (int x = 0; x < w; x++) {
            guint8 g = pattern_value(x, y, w, h, variant);
            if (fmt == GST_VIDEO_FORMAT_GRAY16_LE) {
                guint16 v = (guint16)(g * 257);
                row[2 * x] = v & 255;
                row[2 * x + 1] = v >> 8;
            } else if (fmt == GST_VIDEO_FORMAT_GRAY8 || fmt == GST_VIDEO_FORMAT_I420 ||
                       fmt == GST_VIDEO_FORMAT_NV12) {
                row[x] = g;
            } else {
                int bpp = ps;
                for (int c = 0; c < bpp; c++)
                    row[bpp * x + c] = g;
                if (GST_VIDEO_INFO_HAS_ALPHA(info))
                    row[bpp * x + GST_VIDEO_FRAME_COMP_POFFSET(&f, 3)] = 255;
            }
        }
    }
    if (GST_VIDEO_INFO_IS_YUV(info)) {
        for (guint p = 1; p < GST_VIDEO_FRAME_N_PLANES(&f); p++) {
            guint8 *d = GST_VIDEO_FRAME_PLANE_DATA(&f, p);
            int rows = GST_VIDEO_FRAME_COMP_HEIGHT(&f, 1);
            memset(d, 128, (gsize)rows * GST_VIDEO_FRAME_PLANE_STRIDE(&f, p));
        }
    }
    gst_video_frame_unmap(&f);
    return buf;
}

static inline ev_pixel_format pixel_format_of(GstVideoFormat f)
{
    switch (f) {
    case GST_VIDEO_FORMAT_GRAY16_LE:
        return EV_PIXEL_GRAY16;
    case GST_VIDEO_FORMAT_RGB:
        return EV_PIXEL_RGB;
    case GST_VIDEO_FORMAT_BGR:
        return EV_PIXEL_BGR;
    case GST_VIDEO_FORMAT_RGBx:
        return EV_PIXEL_RGBX;
    case GST_VIDEO_FORMAT_BGRx:
        return EV_PIXEL_BGRX;
    case GST_VIDEO_FORMAT_xRGB:
        return EV_PIXEL_XRGB;
    case GST_VIDEO_FORMAT_xBGR:
        return EV_PIXEL_XBGR;
    case GST_VIDEO_FORMAT_RGBA:
        return EV_PIXEL_RGBA;
    case GST_VIDEO_FORMAT_BGRA:
        return EV_PIXEL_BGRA;
    case GST_VIDEO_FORMAT_I420:
        return EV_PIXEL_I420;
    case GST_VIDEO_FORMAT_NV12:
        return EV_PIXEL_NV12;
    default:
        return EV_PIXEL_GRAY8;
    }
}

/* The engine's probabilities for a buffer, computed here exactly as `echoview classify` does:
 * ev_preprocess_frame + ev_plan_run + ev_softmax. roi NULL = whole frame; auto_roi: the screen
 * check and its region (ev_detect_screen), as echoviewclassify roi=auto does. */
static inline int engine_probabilities(const ev_model *m, ev_plan *plan, const GstVideoInfo *info,
                                       GstBuffer *buf, const ev_rect *roi, gboolean auto_roi,
                                       float *prob)
{
    GstVideoFrame f;
    ev_frame frame;
    ev_rect found;
    ev_error err = {0};
    int w, h, c, rc;
    float logits[EV_MAX_CLASSES];
    float *input;

    ev_model_input_shape(m, &w, &h, &c);
    input = g_new(float, (gsize)w *h *c);
    gst_video_frame_map(&f, info, buf, GST_MAP_READ);
    frame.data = GST_VIDEO_FRAME_PLANE_DATA(&f, 0);
    frame.stride = GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
    frame.width = GST_VIDEO_INFO_WIDTH(info);
    frame.height = GST_VIDEO_INFO_HEIGHT(info);
    frame.format = pixel_format_of(GST_VIDEO_INFO_FORMAT(info));
    ev_screen_info screen = {0};
    if (auto_roi) {
        /* roi=auto: the screen check's region; no fan gives `other` at 1, or all 0 without it */
        ev_detect_screen(&frame, &screen);
        roi = screen.region_found ? &screen.roi : NULL;
        (void)found;
    }
    rc = ev_preprocess_frame(m, &frame, roi, input, &err);
    if (!rc)
        rc = ev_plan_run(plan, input, logits, &err);
    gst_video_frame_unmap(&f);
    g_free(input);
    if (rc) {
        fprintf(stderr, "engine: %s\n", err.message);
        return rc;
    }
    ev_softmax(logits, prob, ev_model_num_classes(m));
    if (screen.type == EV_SCREEN_NOT_2D)
        for (int i = 0; i < ev_model_num_classes(m); i++)
            prob[i] = !strcmp(ev_model_class_name(m, i), EV_OTHER_LABEL) ? 1.0f : 0.0f;
    return 0;
}

static inline double max_abs_diff(const float *a, const float *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > d || a[i] != a[i])
            d = fabs((double)a[i] - b[i]);
    return d;
}

/* Pops every element message named echoviewclassify now waiting on bus. */
static inline GList *pop_classify_messages(GstBus *bus)
{
    GList *list = NULL;
    GstMessage *m;
    while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
        if (gst_message_has_name(m, "echoviewclassify"))
            list = g_list_append(list, m);
        else
            gst_message_unref(m);
    }
    return list;
}

/* Error message on bus (or NULL); caller frees. */
static inline GError *pop_error(GstBus *bus)
{
    GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    GError *e = NULL;
    if (m) {
        gst_message_parse_error(m, &e, NULL);
        gst_message_unref(m);
    }
    return e;
}

#endif
