/* test_overlay.c: echoviewoverlay, by reading pixels back. The panel changes a rectangle at the
 * top left and nothing else, in every format; the label, the bar (its length follows the
 * confidence, its colour the threshold) and "no result" are drawn; buffers without a
 * classifier's meta and a unique-id nobody wrote pass untouched; unique-id picks the classifier;
 * with downstream taking GstVideoOverlayComposition the pixels stay untouched and the attached
 * composition blends to the same picture; behind a real echoviewclassify the panel appears.
 * usage: test_overlay MODEL_DIR */
#include "gst_test_util.h"

#include <gst/video/video-overlay-composition.h>

typedef struct {
    gint x0, y0, x1, y1;     /* changed pixels' bounding box in frame pixels (x1, y1 exclusive) */
    gint lx0, ly0, lx1, ly1; /* the same for plane 0 (luma, gray or packed RGB) alone */
    gsize luma;              /* changed pixels in plane 0 */
} Change;

/* Where b differs from a (same caps), over every plane. */
static Change changed(const GstVideoInfo *info, GstBuffer *a, GstBuffer *b)
{
    GstVideoFrame fa, fb;
    Change c = {G_MAXINT, G_MAXINT, -1, -1, G_MAXINT, G_MAXINT, -1, -1, 0};
    const gint width = GST_VIDEO_INFO_WIDTH(info);

    gst_video_frame_map(&fa, info, a, GST_MAP_READ);
    gst_video_frame_map(&fb, info, b, GST_MAP_READ);
    for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&fa); p++) {
        gint comp[GST_VIDEO_MAX_COMPONENTS];
        gst_video_format_info_component(info->finfo, p, comp);
        const gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE(&fa, comp[0]);
        const gint pw = GST_VIDEO_FRAME_COMP_WIDTH(&fa, comp[0]),
                   ph = GST_VIDEO_FRAME_COMP_HEIGHT(&fa, comp[0]);
        const gint sx = width / pw, sy = GST_VIDEO_INFO_HEIGHT(info) / ph;
        for (gint y = 0; y < ph; y++) {
            const guint8 *ra = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&fa, p) +
                               (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&fa, p);
            const guint8 *rb = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&fb, p) +
                               (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&fb, p);
            for (gint x = 0; x < pw; x++) {
                if (!memcmp(ra + x * ps, rb + x * ps, ps))
                    continue;
                if (p == 0) {
                    c.luma++;
                    c.lx0 = MIN(c.lx0, x);
                    c.ly0 = MIN(c.ly0, y);
                    c.lx1 = MAX(c.lx1, x + 1);
                    c.ly1 = MAX(c.ly1, y + 1);
                }
                c.x0 = MIN(c.x0, x * sx);
                c.y0 = MIN(c.y0, y * sy);
                c.x1 = MAX(c.x1, (x + 1) * sx);
                c.y1 = MAX(c.y1, (y + 1) * sy);
            }
        }
    }
    gst_video_frame_unmap(&fa);
    gst_video_frame_unmap(&fb);
    return c;
}

/* A frame of one grey level (neutral chroma). */
static GstBuffer *flat_frame(const GstVideoInfo *info, guint8 grey)
{
    GstBuffer *buf = make_frame(info, 0);
    GstVideoFrame f;

    gst_video_frame_map(&f, info, buf, GST_MAP_WRITE);
    for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&f); p++) {
        gint comp[GST_VIDEO_MAX_COMPONENTS];
        gst_video_format_info_component(info->finfo, p, comp);
        const gboolean chroma = GST_VIDEO_INFO_IS_YUV(info) && p > 0;
        const gint rows = GST_VIDEO_FRAME_COMP_HEIGHT(&f, comp[0]);
        memset(GST_VIDEO_FRAME_PLANE_DATA(&f, p), chroma ? 128 : grey,
               (gsize)rows * GST_VIDEO_FRAME_PLANE_STRIDE(&f, p));
    }
    gst_video_frame_unmap(&f);
    return buf;
}

/* A classifier's result as echoviewclassify writes it. */
static void add_result(GstBuffer *buf, guint unique_id, const char *label, gint label_id,
                       gfloat confidence, guint64 age)
{
    GstEchoViewMeta *m = gst_buffer_add_echo_view_meta(buf);
    m->unique_id = unique_id;
    m->model_name = g_intern_static_string("test");
    m->stable_label = g_intern_static_string("PLAX-full");
    m->stable_label_id = 2;
    m->age = age;
    if (age != GST_ECHO_VIEW_AGE_NONE) {
        m->label = g_intern_string(label);
        m->label_id = label_id;
        m->confidence = confidence;
        m->inferred = age == 0;
    }
}

/* A harness around "echoviewoverlay PROPERTIES"; sink_caps (may be NULL) is what downstream
 * takes, given before the source caps so that negotiation sees it. */
static GstHarness *overlay_harness(const char *caps, const char *launch, const char *sink_caps)
{
    GstHarness *h = gst_harness_new_parse(launch ? launch : "echoviewoverlay");
    if (sink_caps)
        gst_harness_set_sink_caps_str(h, sink_caps);
    gst_harness_set_src_caps_str(h, caps);
    return h;
}

/* Pushes a copy of in through h; returns what came out. */
static GstBuffer *through(GstHarness *h, GstBuffer *in)
{
    GstBuffer *out;
    if (gst_harness_push(h, gst_buffer_copy_deep(in)) != GST_FLOW_OK)
        return NULL;
    out = gst_harness_pull(h);
    return out;
}

/* Counts of the bar's colours in an RGB frame: green (confident), amber (below threshold). */
static void bar_colours(const GstVideoInfo *info, GstBuffer *buf, gsize *green, gsize *amber)
{
    GstVideoFrame f;
    *green = *amber = 0;
    gst_video_frame_map(&f, info, buf, GST_MAP_READ);
    for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT(info); y++) {
        const guint8 *row = (const guint8 *)GST_VIDEO_FRAME_PLANE_DATA(&f, 0) +
                            (gsize)y * GST_VIDEO_FRAME_PLANE_STRIDE(&f, 0);
        for (gint x = 0; x < GST_VIDEO_INFO_WIDTH(info); x++) {
            const gint r = row[3 * x], g = row[3 * x + 1], b = row[3 * x + 2];
            *green += g > r + 60 && g > b + 60;
            *amber += r > g + 40 && g > b + 60;
        }
    }
    gst_video_frame_unmap(&f);
}

static void test_formats(void)
{
    static const char *formats[] = {"GRAY8", "GRAY16_LE", "I420", "NV12", "RGB", "BGRx", "RGBA"};

    for (gsize i = 0; i < G_N_ELEMENTS(formats); i++) {
        gchar *caps = g_strdup_printf("video/x-raw,format=%s,width=320,height=240,framerate=30/1",
                                      formats[i]);
        GstCaps *c = gst_caps_from_string(caps);
        GstVideoInfo info;
        GstHarness *h = overlay_harness(caps, NULL, NULL);
        GstBuffer *in, *out;
        Change ch;

        gst_video_info_from_caps(&info, c);
        in = flat_frame(&info, 100);
        out = through(h, in); /* no meta at all */
        ch = changed(&info, in, out);
        CHECK(out && ch.x1 < 0, "%s: a buffer without a result passes untouched", formats[i]);
        gst_clear_buffer(&out);

        add_result(in, 1, "PLAX-full", 2, 0.9f, 0);
        out = through(h, in);
        ch = changed(&info, in, out);
        /* 320x240: font scale 1, the panel one pixel in from the corner */
        CHECK(out && ch.lx0 == 1 && ch.ly0 == 1 && ch.lx1 > 40 && ch.ly1 > 20 && ch.x0 >= 0 &&
                  ch.y0 >= 0 && ch.x1 <= 160 && ch.y1 <= 80,
              "%s: the panel changes (%d,%d)-(%d,%d) (all planes: (%d,%d)-(%d,%d)), nothing "
              "outside the top-left rectangle",
              formats[i], ch.lx0, ch.ly0, ch.lx1, ch.ly1, ch.x0, ch.y0, ch.x1, ch.y1);
        CHECK(ch.luma == (gsize)(ch.lx1 - ch.lx0) * (ch.ly1 - ch.ly0),
              "%s: the panel is a solid rectangle over the flat frame (%zu pixels changed)",
              formats[i], ch.luma);
        gst_clear_buffer(&out);
        gst_buffer_unref(in);
        gst_harness_teardown(h);
        gst_caps_unref(c);
        g_free(caps);
    }
}

static void test_what_is_drawn(void)
{
    const char *caps = "video/x-raw,format=RGB,width=320,height=240,framerate=30/1";
    GstCaps *c = gst_caps_from_string(caps);
    GstVideoInfo info;
    GstHarness *h = overlay_harness(caps, NULL, NULL);
    GstBuffer *plain, *in, *a, *b, *none, *low;
    gsize green, amber, green_high, amber_low;
    Change ch;

    gst_video_info_from_caps(&info, c);
    plain = flat_frame(&info, 100);

    in = gst_buffer_copy_deep(plain);
    add_result(in, 1, "PLAX-full", 2, 0.9f, 0);
    a = through(h, in);
    gst_buffer_unref(in);
    in = gst_buffer_copy_deep(plain);
    add_result(in, 1, "A4CH-LV", 5, 0.9f, 0);
    b = through(h, in);
    gst_buffer_unref(in);
    ch = changed(&info, a, b);
    CHECK(ch.x1 > 0 && ch.y0 < 10, "another label changes the first line (rows %d-%d)", ch.y0,
          ch.y1);

    bar_colours(&info, a, &green_high, &amber);
    CHECK(green_high > 0 && amber == 0, "0.9 above the threshold: a green bar (%zu px), no amber",
          green_high);
    in = gst_buffer_copy_deep(plain);
    add_result(in, 1, GST_ECHO_VIEW_LABEL_UNKNOWN, -1, 0.25f, 0);
    low = through(h, in);
    gst_buffer_unref(in);
    bar_colours(&info, low, &green, &amber_low);
    CHECK(amber_low > 0 && green == 0, "0.25 below the threshold: an amber bar (%zu px), no green",
          amber_low);
    CHECK(green_high > 3.3 * amber_low && green_high < 4.0 * amber_low,
          "the bar's length follows the confidence: %zu / %zu px (90 %% / 25 %%)", green_high,
          amber_low);

    in = gst_buffer_copy_deep(plain);
    add_result(in, 1, NULL, -1, 0, GST_ECHO_VIEW_AGE_NONE);
    none = through(h, in);
    gst_buffer_unref(in);
    ch = changed(&info, plain, none);
    bar_colours(&info, none, &green, &amber);
    CHECK(ch.lx0 == 1 && ch.ly0 == 1 && green == 0 && amber == 0,
          "no result yet: a panel (\"no result\") with an empty bar");
    ch = changed(&info, a, none);
    CHECK(ch.x1 > 0, "\"no result\" is drawn differently from a result");

    in = gst_buffer_copy_deep(plain);
    add_result(in, 1, "PLAX-full", 2, 0.9f, 7);
    gst_clear_buffer(&b);
    b = through(h, in);
    gst_buffer_unref(in);
    ch = changed(&info, a, b);
    CHECK(ch.y0 > 20 && ch.x1 > 0, "the age is drawn on the last line (rows %d-%d differ)", ch.y0,
          ch.y1);

    gst_buffer_unref(a);
    gst_buffer_unref(b);
    gst_buffer_unref(none);
    gst_buffer_unref(low);
    gst_buffer_unref(plain);
    gst_harness_teardown(h);
    gst_caps_unref(c);
}

static void test_unique_id(void)
{
    const char *caps = "video/x-raw,format=GRAY8,width=320,height=240,framerate=30/1";
    GstCaps *c = gst_caps_from_string(caps);
    GstVideoInfo info;
    GstHarness *first = overlay_harness(caps, NULL, NULL),
               *second = overlay_harness(caps, "echoviewoverlay unique-id=2", NULL),
               *absent = overlay_harness(caps, "echoviewoverlay unique-id=7", NULL);
    GstBuffer *plain, *both, *only2, *source, *o_first, *o_second, *o_only2, *o_absent, *o_src;
    Change ch;

    gst_video_info_from_caps(&info, c);
    plain = flat_frame(&info, 100);
    both = gst_buffer_copy_deep(plain);
    add_result(both, 1, "PLAX-full", 2, 0.9f, 0);
    add_result(both, 2, "A4CH-LV", 5, 0.8f, 0);
    only2 = gst_buffer_copy_deep(plain);
    add_result(only2, 2, "A4CH-LV", 5, 0.8f, 0);
    source = gst_buffer_copy_deep(plain);
    add_result(source, 0, NULL, -1, 0, GST_ECHO_VIEW_AGE_NONE); /* a source's ground truth */

    o_first = through(first, both);
    o_second = through(second, both);
    o_only2 = through(second, only2);
    o_absent = through(absent, both);
    o_src = through(first, source);
    CHECK(changed(&info, o_second, o_only2).x1 < 0 && changed(&info, o_first, o_second).x1 > 0,
          "unique-id=2 draws the second classifier's result, the default the first's");
    CHECK(changed(&info, plain, o_absent).x1 < 0, "a unique-id nobody wrote: untouched");
    CHECK(changed(&info, plain, o_src).x1 < 0, "a source's meta (unique-id 0) alone: untouched");
    ch = changed(&info, plain, o_first);
    CHECK(ch.lx0 == 1, "default: the first classifier's panel is drawn");

    for (GstBuffer **b = (GstBuffer *[]){plain, both, only2, source, o_first, o_second, o_only2,
                                         o_absent, o_src, NULL};
         *b; b++)
        gst_buffer_unref(*b);
    gst_harness_teardown(first);
    gst_harness_teardown(second);
    gst_harness_teardown(absent);
    gst_caps_unref(c);
}

/* Downstream that blends compositions itself gets the panel as a meta, pixels untouched; the
 * meta blends to what the element would have drawn. */
static void test_attach(void)
{
    const char *caps = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
    GstCaps *c = gst_caps_from_string(caps);
    GstVideoInfo info;
    const char *featured = "video/x-raw(memory:SystemMemory, meta:GstVideoOverlayComposition),"
                           "format=I420,width=320,height=240,framerate=30/1";
    GstHarness *attach = gst_harness_new_parse("echoviewoverlay"),
               *blend = overlay_harness(caps, NULL, NULL),
               *caps_only = overlay_harness(caps, NULL, featured);
    GstBuffer *from_caps_only;
    GstBuffer *in, *attached, *blended, *composed;
    GstVideoOverlayCompositionMeta *cm;
    GstVideoFrame f;
    gint x = -1, y = -1;
    guint w = 0, hh = 0;

    gst_video_info_from_caps(&info, c);
    gst_harness_set_sink_caps_str(attach, featured);
    gst_harness_add_propose_allocation_meta(attach, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE,
                                            NULL);
    gst_harness_set_src_caps_str(attach, caps);
    in = flat_frame(&info, 100);
    add_result(in, 1, "PLAX-full", 2, 0.9f, 0);
    attached = through(attach, in);
    blended = through(blend, in);
    from_caps_only = through(caps_only, in);
    cm = attached ? gst_buffer_get_video_overlay_composition_meta(attached) : NULL;
    CHECK(cm && gst_video_overlay_composition_n_rectangles(cm->overlay) == 1,
          "downstream takes compositions: one rectangle attached");
    CHECK(attached && changed(&info, in, attached).x1 < 0, "attached: pixels untouched");
    CHECK(blended && !gst_buffer_get_video_overlay_composition_meta(blended),
          "plain downstream: blended, no composition meta");
    CHECK(from_caps_only && !gst_buffer_get_video_overlay_composition_meta(from_caps_only) &&
              changed(&info, blended, from_caps_only).x1 < 0,
          "the feature in the caps but not the meta in the allocation answer: blended");
    gst_clear_buffer(&from_caps_only);
    /* downstream starts blending compositions itself (same caps): a RECONFIGURE makes the
     * element ask again, and the next buffer gets the meta */
    gst_harness_add_propose_allocation_meta(caps_only, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE,
                                            NULL);
    gst_harness_push_upstream_event(caps_only, gst_event_new_reconfigure());
    from_caps_only = through(caps_only, in);
    CHECK(from_caps_only && gst_buffer_get_video_overlay_composition_meta(from_caps_only) &&
              changed(&info, in, from_caps_only).x1 < 0,
          "after a RECONFIGURE from a downstream that now takes the meta: attached, untouched");
    gst_clear_buffer(&from_caps_only);
    if (cm) {
        gst_video_overlay_rectangle_get_render_rectangle(
            gst_video_overlay_composition_get_rectangle(cm->overlay, 0), &x, &y, &w, &hh);
        composed = gst_buffer_copy_deep(attached);
        gst_video_frame_map(&f, &info, composed, GST_MAP_READWRITE);
        gst_video_overlay_composition_blend(cm->overlay, &f);
        gst_video_frame_unmap(&f);
        CHECK(x == 1 && y == 1 && changed(&info, blended, composed).x1 < 0,
              "the attached %ux%u rectangle at (%d,%d) blends to the blended picture", w, hh, x, y);
        gst_buffer_unref(composed);
    }
    gst_clear_buffer(&attached);
    gst_clear_buffer(&blended);
    gst_buffer_unref(in);
    gst_harness_teardown(attach);
    gst_harness_teardown(blend);
    gst_harness_teardown(caps_only);
    gst_caps_unref(c);
}

/* Behind a real classifier: the panel appears, the rest of the frame is the input. */
static void test_behind_classifier(const char *model)
{
    const char *caps = "video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1";
    GstCaps *c = gst_caps_from_string(caps);
    GstVideoInfo info;
    gchar *launch = g_strdup_printf("echoviewclassify model-file=%s ! echoviewoverlay", model);
    GstHarness *h = gst_harness_new_parse(launch);
    GstBuffer *in, *out;
    Change ch;

    gst_harness_set_src_caps_str(h, caps);
    gst_video_info_from_caps(&info, c);
    in = make_frame(&info, 3);
    out = through(h, in);
    ch = changed(&info, in, out);
    /* 640x480: font scale 3, the panel three pixels in from the corner */
    CHECK(out && gst_buffer_get_echo_view_meta(out) && ch.lx0 == 3 && ch.ly0 == 3 && ch.x1 <= 320 &&
              ch.y1 <= 160 && ch.luma > 1000,
          "classifier then overlay: the panel at (%d,%d)-(%d,%d), the rest of the frame as it "
          "came",
          ch.x0, ch.y0, ch.x1, ch.y1);
    gst_clear_buffer(&out);
    gst_buffer_unref(in);
    gst_harness_teardown(h);
    gst_caps_unref(c);
    g_free(launch);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_overlay MODEL_DIR\n");
        return 2;
    }
    gst_init(&argc, &argv);
    test_formats();
    test_what_is_drawn();
    test_unique_id();
    test_attach();
    test_behind_classifier(argv[1]);
    return test_finish();
}
