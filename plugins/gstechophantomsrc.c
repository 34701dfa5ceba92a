/* gstechophantomsrc.c: echophantomsrc, a live GstPushSrc of synthetic echo cine loops rendered
 * by the phantom library (phantom/echophantom.h). One patient per seed; a schedule of views,
 * each held for some seconds, loops forever (or until num-buffers). Frames are scanner-like
 * (fan at the top centre, margins, overlays); every buffer carries an EchoViewMeta whose
 * ground-truth fields name the view on screen, so a classifier downstream can be scored.
 *
 * Cine loops: within an acquisition the heart beats with a whole number of frames per beat
 * (the patient's heart rate rounded to it), and the electronic noise repeats with the beat, so
 * frame k of an acquisition equals frame k + beat. The element renders each frame of the beat
 * once into a cache (cache-size MiB; beat frames x width x height bytes) and replays it: one
 * render per frame of a beat per acquisition instead of one per frame. cache-size=0 renders
 * every frame and gives the same bytes.
 */
/**
 * SECTION:element-echophantomsrc
 * @title: echophantomsrc
 *
 * A live source of synthetic echocardiography cine loops: a schedule of standard views, each
 * held for some seconds, rendered like a scanner's B-mode frames (GRAY8 or RGB). Every buffer
 * carries an EchoViewMeta whose ground-truth fields name the view on screen.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 echophantomsrc view=PLAX-full ! videoconvert ! autovideosink
 * ]|
 */
#include "gstechophantomsrc.h"

#include <gst/video/video.h>
#include <string.h>

#include "echophantom.h"
#include "gstechoviewmeta.h"

GST_DEBUG_CATEGORY_STATIC(gst_echo_phantom_src_debug);
#define GST_CAT_DEFAULT gst_echo_phantom_src_debug

#define DEFAULT_VIEW "A4CH-LV"
#define DEFAULT_SEED 1
#define DEFAULT_QUALITY 0
#define DEFAULT_OVERLAYS TRUE
#define DEFAULT_PHANTOM_VERSION 1
#define DEFAULT_IS_LIVE TRUE
#define DEFAULT_CACHE_SIZE 64 /* MiB: a 36-frame beat at 800x600 is 17 MiB */
#define MAX_CACHE_SIZE 4096
#define MAX_SEGMENTS 256

enum {
    PROP_0,
    PROP_VIEW,
    PROP_SCHEDULE,
    PROP_SEED,
    PROP_QUALITY,
    PROP_OVERLAYS,
    PROP_IS_LIVE,
    PROP_PHANTOM_VERSION,
    PROP_CACHE_SIZE,
};

typedef struct {
    gint view;
    GstClockTime duration; /* ns: integer time, so segment edges fall on exact frames */
} Segment;

struct _GstEchoPhantomSrc {
    GstPushSrc parent;

    /* properties, under the object lock */
    gchar *view;
    gchar *schedule;
    guint64 seed;
    gint quality;
    gboolean overlays;
    gint phantom_version;
    guint cache_size; /* MiB */

    /* from start() to stop() */
    Segment segments[MAX_SEGMENTS];
    guint n_segments;
    GstClockTime loop_duration;
    guint64 run_seed;
    gint run_quality;
    gboolean run_overlays;
    gint run_version;
    guint run_cache_size;
    ep_patient patient;
    gfloat heart_rate_bpm; /* the patient's, before rounding to whole frames per beat */

    /* from set_caps() */
    GstVideoInfo info;
    ep_renderer *renderer;
    guint8 *gray; /* scratch frame for RGB output */
    guint64 n_frames;
    guint beat_frames; /* frames per heart beat at the negotiated rate */

    /* the cine-loop cache: frame j of the beat of acquisition cache_key in slot j */
    guint8 *cache;
    guint cache_slots; /* how many frames fit in run_cache_size (at most beat_frames) */
    guint8 *cached;    /* per slot: rendered for cache_key */
    gint64 cache_key;

    /* the acquisition on screen */
    gint64 scan_key; /* loop * n_segments + segment, -1 before the first frame */
    GstClockTime scan_start; /* stream time of its start */
    ep_scan scan;
};

#define CAPS_STR                                              \
    "video/x-raw, format = (string) { GRAY8, RGB }, "         \
    "width = (int) [ 8, 4096 ], height = (int) [ 8, 4096 ], " \
    "framerate = (fraction) [ 1/1, 240/1 ]"

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(CAPS_STR));

G_DEFINE_TYPE(GstEchoPhantomSrc, gst_echo_phantom_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(echophantomsrc, "echophantomsrc", GST_RANK_NONE,
                            GST_TYPE_ECHO_PHANTOM_SRC);

/* "VIEW:SECONDS,VIEW:SECONDS,..." (a bare "VIEW" holds for 5 s). */
static gboolean parse_schedule(const gchar *text, Segment *segments, guint *n, GError **error)
{
    gchar **items = g_strsplit(text, ",", -1);
    gboolean ok = FALSE;
    guint count = 0;

    for (gchar **item = items; *item; item++) {
        gchar *spec = g_strstrip(*item), *colon, *end;
        gdouble seconds = 5.0;
        gint view;

        if (!*spec)
            continue;
        if (count == MAX_SEGMENTS) {
            g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
                        "more than %d schedule entries", MAX_SEGMENTS);
            goto out;
        }
        colon = strrchr(spec, ':');
        if (colon) {
            *colon = '\0';
            seconds = g_ascii_strtod(colon + 1, &end);
            if (end == colon + 1 || *end || !(seconds > 0.0 && seconds <= 86400.0)) {
                g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
                            "'%s': seconds must be a number in (0, 86400]", colon + 1);
                goto out;
            }
        }
        view = ep_view_parse(spec);
        if (view < 0) {
            g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "unknown view '%s'",
                        spec);
            goto out;
        }
        segments[count].view = view;
        segments[count].duration = (GstClockTime)(seconds * GST_SECOND + 0.5);
        count++;
    }
    if (!count) {
        g_set_error(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, "empty schedule");
        goto out;
    }
    *n = count;
    ok = TRUE;
out:
    g_strfreev(items);
    return ok;
}

static gboolean gst_echo_phantom_src_start(GstBaseSrc *base)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(base);
    gchar *text;
    GError *error = NULL;
    gboolean ok;

    GST_OBJECT_LOCK(self);
    text = g_strdup(self->schedule && *self->schedule ? self->schedule : self->view);
    self->run_seed = self->seed;
    self->run_quality = self->quality;
    self->run_overlays = self->overlays;
    self->run_version = self->phantom_version;
    self->run_cache_size = self->cache_size;
    GST_OBJECT_UNLOCK(self);

    ok = text && parse_schedule(text, self->segments, &self->n_segments, &error);
    if (!ok) {
        GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                          ("Invalid view or schedule '%s'.", GST_STR_NULL(text)),
                          ("%s", error ? error->message : "no view"));
        g_clear_error(&error);
        g_free(text);
        return FALSE;
    }
    g_free(text);
    self->loop_duration = 0;
    for (guint i = 0; i < self->n_segments; i++)
        self->loop_duration += self->segments[i].duration;
    ep_patient_init(&self->patient, self->run_seed);
    self->heart_rate_bpm = self->patient.heart_rate_bpm;
    self->n_frames = 0;
    self->scan_key = -1;
    self->cache_key = -1;
    return TRUE;
}

static gboolean gst_echo_phantom_src_stop(GstBaseSrc *base)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(base);

    g_clear_pointer(&self->renderer, ep_renderer_free);
    g_clear_pointer(&self->gray, g_free);
    g_clear_pointer(&self->cache, g_free);
    g_clear_pointer(&self->cached, g_free);
    self->cache_slots = 0;
    return TRUE;
}

static GstCaps *gst_echo_phantom_src_fixate(GstBaseSrc *base, GstCaps *caps)
{
    GstStructure *s;

    caps = gst_caps_make_writable(caps);
    caps = gst_caps_truncate(caps);
    s = gst_caps_get_structure(caps, 0);
    /* A scanner's typical output unless downstream asks for something else. */
    gst_structure_fixate_field_nearest_int(s, "width", 800);
    gst_structure_fixate_field_nearest_int(s, "height", 600);
    gst_structure_fixate_field_nearest_fraction(s, "framerate", 30, 1);
    gst_structure_fixate_field_string(s, "format", "GRAY8");
    return GST_BASE_SRC_CLASS(gst_echo_phantom_src_parent_class)->fixate(base, caps);
}

static gboolean gst_echo_phantom_src_set_caps(GstBaseSrc *base, GstCaps *caps)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(base);
    GstVideoInfo info;

    if (!gst_video_info_from_caps(&info, caps) || GST_VIDEO_INFO_FPS_N(&info) <= 0) {
        GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("Unsupported caps."), ("%" GST_PTR_FORMAT, caps));
        return FALSE;
    }
    g_clear_pointer(&self->renderer, ep_renderer_free);
    g_clear_pointer(&self->gray, g_free);
    g_clear_pointer(&self->cache, g_free);
    g_clear_pointer(&self->cached, g_free);
    self->cache_slots = 0;
    self->cache_key = -1;
    self->renderer = ep_renderer_create(GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info));
    if (!self->renderer) {
        GST_ELEMENT_ERROR(self, RESOURCE, NO_SPACE_LEFT, ("Could not allocate the renderer."),
                          ("%dx%d", GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info)));
        return FALSE;
    }
    if (GST_VIDEO_INFO_FORMAT(&info) != GST_VIDEO_FORMAT_GRAY8)
        self->gray = g_malloc((gsize)GST_VIDEO_INFO_WIDTH(&info) * GST_VIDEO_INFO_HEIGHT(&info));
    {
        /* A whole number of frames per beat (at least 2): the heart rate shown and animated is
         * rate * 60 / beat_frames, within half a frame per beat of the patient's. */
        const gdouble rate = (gdouble)GST_VIDEO_INFO_FPS_N(&info) / GST_VIDEO_INFO_FPS_D(&info);
        const gsize frame_bytes = (gsize)GST_VIDEO_INFO_WIDTH(&info) * GST_VIDEO_INFO_HEIGHT(&info);
        const guint64 budget = (guint64)self->run_cache_size << 20;
        gdouble beat = rate * 60.0 / self->heart_rate_bpm + 0.5;

        self->beat_frames = beat < 2.0 ? 2u : beat > 1e6 ? 1000000u : (guint)beat;
        self->patient.heart_rate_bpm = (gfloat)(rate * 60.0 / self->beat_frames);
        self->cache_slots = (guint)MIN((guint64)self->beat_frames, budget / frame_bytes);
        if (self->cache_slots) {
            self->cache = g_try_malloc((gsize)self->cache_slots * frame_bytes);
            self->cached = g_try_malloc0(self->cache_slots);
            if (!self->cache || !self->cached) {
                GST_WARNING_OBJECT(self, "no memory for a %u-frame cache: rendering every frame",
                                   self->cache_slots);
                g_clear_pointer(&self->cache, g_free);
                g_clear_pointer(&self->cached, g_free);
                self->cache_slots = 0;
            }
        }
        GST_DEBUG_OBJECT(self, "%u frames per beat (%.1f bpm), %u cached", self->beat_frames,
                         self->patient.heart_rate_bpm, self->cache_slots);
    }
    self->info = info;
    /* basesrc allocates blocksize bytes per buffer */
    gst_base_src_set_blocksize(base, (guint)GST_VIDEO_INFO_SIZE(&info));
    return TRUE;
}

static void gst_echo_phantom_src_get_times(GstBaseSrc *base, GstBuffer *buffer, GstClockTime *start,
                                           GstClockTime *end)
{
    /* Live: basesrc waits until each frame's time, like a scanner delivering at its rate. */
    if (gst_base_src_is_live(base)) {
        GstClockTime ts = GST_BUFFER_PTS(buffer);
        if (GST_CLOCK_TIME_IS_VALID(ts)) {
            *start = ts;
            if (GST_BUFFER_DURATION_IS_VALID(buffer))
                *end = ts + GST_BUFFER_DURATION(buffer);
            return;
        }
    }
    *start = *end = GST_CLOCK_TIME_NONE;
}

/* The acquisition at time t: the schedule loops; every (loop, segment) pair is a fresh
 * acquisition with its own probe pose and settings, so a loop never repeats frames exactly. */
static const ep_scan *scan_at(GstEchoPhantomSrc *self, GstClockTime t)
{
    guint64 loop = t / self->loop_duration;
    GstClockTime r = t - loop * self->loop_duration;
    GstClockTime start = loop * self->loop_duration;
    guint i = 0;
    gint64 key;

    while (i + 1 < self->n_segments && r >= self->segments[i].duration) {
        r -= self->segments[i].duration;
        start += self->segments[i].duration;
        i++;
    }
    key = (gint64)(loop * self->n_segments + i);
    if (key != self->scan_key) {
        ep_scan_init(&self->scan, self->segments[i].view,
                     self->run_seed * 1000003u + (guint64)key * 7919u + 17u);
        self->scan.framing = EP_FRAMING_SCANNER;
        self->scan.overlays = self->run_overlays ? EP_OVERLAY_ALL : 0;
        if (self->run_quality > 0)
            self->scan.quality = self->run_quality;
        /* version 2: one scanner (its style) per stream, the geometry per acquisition */
        if (self->run_version == 2)
            ep_scan_style(&self->scan, self->run_seed ^ 0x5CA7u,
                          self->run_seed * 1000003u + (guint64)key * 7919u + 18u);
        self->scan_key = key;
        self->scan_start = start;
        GST_DEBUG_OBJECT(self, "now showing %s", ep_view_name(self->scan.view));
    }
    return &self->scan;
}

/* Renders frame j of the beat of the acquisition on screen into out. */
static int render_beat_frame(GstEchoPhantomSrc *self, const ep_scan *scan, guint j, guint8 *out,
                             gsize stride)
{
    ep_scan noisy = *scan;

    noisy.noise_seed =
        self->run_seed ^ (((guint64)self->scan_key << 20 | j) * 0x9E3779B97F4A7C15ull);
    return ep_render(self->renderer, &self->patient, &noisy, (gdouble)j / self->beat_frames, out,
                     stride);
}

static GstFlowReturn gst_echo_phantom_src_fill(GstPushSrc *src, GstBuffer *buffer)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(src);
    const gint fps_n = GST_VIDEO_INFO_FPS_N(&self->info), fps_d = GST_VIDEO_INFO_FPS_D(&self->info);
    const gint width = GST_VIDEO_INFO_WIDTH(&self->info),
               height = GST_VIDEO_INFO_HEIGHT(&self->info);
    GstClockTime pts = gst_util_uint64_scale(self->n_frames, (guint64)fps_d * GST_SECOND, fps_n);
    GstClockTime next =
        gst_util_uint64_scale(self->n_frames + 1, (guint64)fps_d * GST_SECOND, fps_n);
    const ep_scan *scan;
    const guint8 *gray = NULL;
    guint64 first;
    guint j;
    GstVideoFrame frame;
    GstEchoViewMeta *meta;
    guint8 *rows;
    gint stride;
    int rc = EP_OK;

    if (!self->renderer) {
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("No caps negotiated."), (NULL));
        return GST_FLOW_NOT_NEGOTIATED;
    }
    scan = scan_at(self, pts);
    /* the acquisition's first frame is the first with pts >= its start */
    first = gst_util_uint64_scale_ceil(self->scan_start, fps_n, (guint64)fps_d * GST_SECOND);
    j = (guint)((self->n_frames - MIN(first, self->n_frames)) % self->beat_frames);
    if (!gst_video_frame_map(&frame, &self->info, buffer, GST_MAP_WRITE)) {
        GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("Could not map the output buffer."), (NULL));
        return GST_FLOW_ERROR;
    }
    rows = GST_VIDEO_FRAME_PLANE_DATA(&frame, 0);
    stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    if (j < self->cache_slots) {
        guint8 *slot = self->cache + (gsize)j * width * height;
        if (self->cache_key != self->scan_key) {
            memset(self->cached, 0, self->cache_slots);
            self->cache_key = self->scan_key;
        }
        if (!self->cached[j]) {
            rc = render_beat_frame(self, scan, j, slot, (gsize)width);
            self->cached[j] = rc == EP_OK;
        }
        gray = slot;
    } else if (self->gray) {
        rc = render_beat_frame(self, scan, j, self->gray, (gsize)width);
        gray = self->gray;
    } else {
        rc = render_beat_frame(self, scan, j, rows, (gsize)stride);
    }
    for (gint y = 0; rc == EP_OK && gray && y < height; y++) {
        const guint8 *in = gray + (gsize)y * width;
        guint8 *out = rows + (gsize)y * stride;
        if (!self->gray) {
            memcpy(out, in, (gsize)width);
            continue;
        }
        for (gint x = 0; x < width; x++)
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
    }
    gst_video_frame_unmap(&frame);
    if (rc != EP_OK) {
        GST_ELEMENT_ERROR(self, LIBRARY, FAILED, ("The phantom could not render a frame."),
                          ("%s", ep_strerror(rc)));
        return GST_FLOW_ERROR;
    }

    GST_BUFFER_PTS(buffer) = pts;
    GST_BUFFER_DTS(buffer) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION(buffer) = next - pts;
    GST_BUFFER_OFFSET(buffer) = self->n_frames;
    GST_BUFFER_OFFSET_END(buffer) = self->n_frames + 1;
    meta = gst_buffer_ensure_echo_view_meta(buffer);
    meta->ground_truth_id = scan->view;
    meta->ground_truth = g_intern_static_string(ep_view_name(scan->view));
    self->n_frames++;
    return GST_FLOW_OK;
}

static void gst_echo_phantom_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                              GParamSpec *pspec)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_VIEW:
        g_free(self->view);
        self->view = g_value_dup_string(value);
        break;
    case PROP_SCHEDULE:
        g_free(self->schedule);
        self->schedule = g_value_dup_string(value);
        break;
    case PROP_SEED:
        self->seed = g_value_get_uint64(value);
        break;
    case PROP_QUALITY:
        self->quality = g_value_get_int(value);
        break;
    case PROP_OVERLAYS:
        self->overlays = g_value_get_boolean(value);
        break;
    case PROP_PHANTOM_VERSION:
        self->phantom_version = g_value_get_int(value);
        break;
    case PROP_CACHE_SIZE:
        self->cache_size = g_value_get_uint(value);
        break;
    case PROP_IS_LIVE:
        GST_OBJECT_UNLOCK(self);
        gst_base_src_set_live(GST_BASE_SRC(self), g_value_get_boolean(value));
        return;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_echo_phantom_src_get_property(GObject *object, guint prop_id, GValue *value,
                                              GParamSpec *pspec)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_VIEW:
        g_value_set_string(value, self->view);
        break;
    case PROP_SCHEDULE:
        g_value_set_string(value, self->schedule);
        break;
    case PROP_SEED:
        g_value_set_uint64(value, self->seed);
        break;
    case PROP_QUALITY:
        g_value_set_int(value, self->quality);
        break;
    case PROP_OVERLAYS:
        g_value_set_boolean(value, self->overlays);
        break;
    case PROP_PHANTOM_VERSION:
        g_value_set_int(value, self->phantom_version);
        break;
    case PROP_CACHE_SIZE:
        g_value_set_uint(value, self->cache_size);
        break;
    case PROP_IS_LIVE:
        GST_OBJECT_UNLOCK(self);
        g_value_set_boolean(value, gst_base_src_is_live(GST_BASE_SRC(self)));
        return;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_echo_phantom_src_finalize(GObject *object)
{
    GstEchoPhantomSrc *self = GST_ECHO_PHANTOM_SRC(object);

    g_free(self->view);
    g_free(self->schedule);
    G_OBJECT_CLASS(gst_echo_phantom_src_parent_class)->finalize(object);
}

static void gst_echo_phantom_src_init(GstEchoPhantomSrc *self)
{
    self->view = g_strdup(DEFAULT_VIEW);
    self->seed = DEFAULT_SEED;
    self->quality = DEFAULT_QUALITY;
    self->overlays = DEFAULT_OVERLAYS;
    self->phantom_version = DEFAULT_PHANTOM_VERSION;
    self->cache_size = DEFAULT_CACHE_SIZE;
    self->scan_key = -1;
    self->cache_key = -1;
    gst_base_src_set_live(GST_BASE_SRC(self), DEFAULT_IS_LIVE);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

static void gst_echo_phantom_src_class_init(GstEchoPhantomSrcClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *base_class = GST_BASE_SRC_CLASS(klass);
    GstPushSrcClass *push_class = GST_PUSH_SRC_CLASS(klass);
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

    GST_DEBUG_CATEGORY_INIT(gst_echo_phantom_src_debug, "echophantomsrc", 0,
                            "synthetic echo scanner source");

    gobject_class->set_property = gst_echo_phantom_src_set_property;
    gobject_class->get_property = gst_echo_phantom_src_get_property;
    gobject_class->finalize = gst_echo_phantom_src_finalize;

    g_object_class_install_property(
        gobject_class, PROP_VIEW,
        g_param_spec_string(
            "view", "View",
            "The one view to show when no schedule is set, spelled like the model's classes "
            "(e.g. A4CH-LV, PLAX-full, Apical-LA/MV) (default: A4CH-LV)",
            DEFAULT_VIEW, rw));
    g_object_class_install_property(
        gobject_class, PROP_SCHEDULE,
        g_param_spec_string(
            "schedule", "Schedule",
            "Views and how long each is shown, looping: \"VIEW:SECONDS,VIEW:SECONDS,...\" "
            "(seconds of stream time; overrides view; default: none)",
            NULL, rw));
    g_object_class_install_property(
        gobject_class, PROP_SEED,
        g_param_spec_uint64(
            "seed", "Seed",
            "Patient and acquisitions are drawn from this seed; the same seed gives the same "
            "frames (default: 1)",
            0, G_MAXUINT64, DEFAULT_SEED, rw));
    g_object_class_install_property(
        gobject_class, PROP_QUALITY,
        g_param_spec_int(
            "quality", "Quality",
            "Image-quality grade of every acquisition, 1 (very poor) .. 5 (excellent); 0: drawn "
            "per acquisition from the seed (default: 0)",
            0, 5, DEFAULT_QUALITY, rw));
    g_object_class_install_property(
        gobject_class, PROP_OVERLAYS,
        g_param_spec_boolean(
            "overlays", "Overlays",
            "Draw the scanner overlays (depth ruler, ECG trace, acquisition text) beside the "
            "sector (default: true)",
            DEFAULT_OVERLAYS, rw));
    g_object_class_install_property(
        gobject_class, PROP_PHANTOM_VERSION,
        g_param_spec_int(
            "phantom-version", "Phantom version",
            "Renderer generation: 1 the original look, 2 real-scanner look with vendor-like "
            "screens and steered/zoomed fans, one scanner style per stream (default: 1)",
            1, 2, DEFAULT_PHANTOM_VERSION, rw));
    g_object_class_install_property(
        gobject_class, PROP_CACHE_SIZE,
        g_param_spec_uint(
            "cache-size", "Cache size",
            "MiB for the cine-loop cache: each frame of a heart beat (beat frames x width x "
            "height bytes) is rendered once per acquisition and replayed; 0 renders every frame "
            "(the same bytes) (default: 64)",
            0, MAX_CACHE_SIZE, DEFAULT_CACHE_SIZE, rw));

    g_object_class_install_property(
        gobject_class, PROP_IS_LIVE,
        g_param_spec_boolean(
            "is-live", "Is live",
            "Deliver frames in real time at the negotiated frame rate, like a scanner; false: as "
            "fast as downstream takes them (default: true)",
            DEFAULT_IS_LIVE, rw));

    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "Echo phantom source", "Source/Video",
        "Synthetic echocardiography cine loops of the 14 standard views, with the true view "
        "in an EchoViewMeta on every buffer",
        "echoview <echoview@localhost>");

    base_class->start = GST_DEBUG_FUNCPTR(gst_echo_phantom_src_start);
    base_class->stop = GST_DEBUG_FUNCPTR(gst_echo_phantom_src_stop);
    base_class->fixate = GST_DEBUG_FUNCPTR(gst_echo_phantom_src_fixate);
    base_class->set_caps = GST_DEBUG_FUNCPTR(gst_echo_phantom_src_set_caps);
    base_class->get_times = GST_DEBUG_FUNCPTR(gst_echo_phantom_src_get_times);
    push_class->fill = GST_DEBUG_FUNCPTR(gst_echo_phantom_src_fill);
}
