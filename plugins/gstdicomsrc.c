/* gstdicomsrc.c: dicomsrc, a GstPushSrc of the frames of one DICOM file (single- or
 * multi-frame, native or RLE/JPEG compressed) as raw GRAY8 or RGB video, rendered by
 * media/dicom.h exactly as DCMTK's dcm2pnm renders them. Timestamps follow the file: Frame Time,
 * the Frame Time Vector (frame by frame) or the Cine Rate, else 30 frames/s. With loop=true the
 * loop restarts with timestamps that keep increasing, as a scanner replaying a cine would.
 * The ultrasound region (Sequence of Ultrasound Regions) is the read-only `roi` property, in the
 * "x,y,width,height" form echoviewclassify's `roi` takes, and a GstVideoRegionOfInterestMeta of
 * type "ultrasound-region" on every buffer.
 */
/**
 * SECTION:element-dicomsrc
 * @title: dicomsrc
 *
 * Plays the frames of one DICOM file (single- or multi-frame; native, RLE or JPEG) as raw GRAY8
 * or RGB video with the file's timing, optionally looping; the ultrasound region of the file is
 * the read-only roi property and a GstVideoRegionOfInterestMeta "ultrasound-region" on every
 * buffer.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 dicomsrc location=cine.dcm loop=true ! \
 *     echoviewclassify model-file=models/echo-2cell-96 ! fakesink
 * ]|
 */
#include "gstdicomsrc.h"

#include <gst/video/video.h>
#include <math.h>

#include "dicom.h"

GST_DEBUG_CATEGORY_STATIC(gst_dicom_src_debug);
#define GST_CAT_DEFAULT gst_dicom_src_debug

#define DEFAULT_LOOP FALSE

enum {
    PROP_0,
    PROP_LOCATION,
    PROP_LOOP,
    PROP_ROI,
    PROP_FRAMES,
    PROP_FRAME_TIME,
};

struct _GstDicomSrc {
    GstPushSrc parent;

    /* properties, under the object lock */
    gchar *location;
    gboolean loop;
    gchar roi[64]; /* "auto" until a file with a region is open */
    guint frames;
    gdouble frame_time_ms;

    /* from start() to stop() */
    media_dicom *dicom;
    GstVideoInfo info;
    guint index;              /* next frame of the file */
    gdouble file_ms;          /* start of frame `index` within the file, in ms */
    GstClockTime loop_offset; /* sum of the durations of the loops already played */
    guint64 n_frames;
};

#define CAPS_STR                                                \
    "video/x-raw, format = (string) { GRAY8, RGB }, "           \
    "width = (int) [ 1, 16384 ], height = (int) [ 1, 16384 ], " \
    "framerate = (fraction) [ 0/1, MAX ]"

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(CAPS_STR));

G_DEFINE_TYPE(GstDicomSrc, gst_dicom_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(dicomsrc, "dicomsrc", GST_RANK_NONE, GST_TYPE_DICOM_SRC);

static GstClockTime ms_to_time(gdouble ms) { return (GstClockTime)llround(ms * GST_MSECOND); }

static gboolean gst_dicom_src_start(GstBaseSrc *base)
{
    GstDicomSrc *self = GST_DICOM_SRC(base);
    const media_dicom_info *in;
    ev_error err = {0};
    gchar *location;
    gint fps_n, fps_d;

    GST_OBJECT_LOCK(self);
    location = g_strdup(self->location);
    GST_OBJECT_UNLOCK(self);

    if (!location || !*location) {
        GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("No DICOM file location set."),
                          ("set the location property"));
        g_free(location);
        return FALSE;
    }
    if (media_dicom_open(location, &self->dicom, &err) != EV_OK) {
        if (err.code == EV_ERR_IO)
            GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
                              ("Could not open DICOM file \"%s\".", location), ("%s", err.message));
        else
            GST_ELEMENT_ERROR(self, STREAM, DECODE, ("Could not read DICOM file \"%s\".", location),
                              ("%s", err.message));
        g_free(location);
        return FALSE;
    }
    g_free(location);
    in = media_dicom_get_info(self->dicom);
    /* A Frame Time Vector means a variable rate: framerate 0/1 as GStreamer spells it. */
    if (in->timing == MEDIA_DICOM_TIMING_FRAME_TIME_VECTOR) {
        fps_n = 0;
        fps_d = 1;
    } else {
        gst_util_double_to_fraction(1000.0 / in->frame_time_ms, &fps_n, &fps_d);
    }
    gst_video_info_set_format(&self->info,
                              in->channels == 3 ? GST_VIDEO_FORMAT_RGB : GST_VIDEO_FORMAT_GRAY8,
                              in->width, in->height);
    GST_VIDEO_INFO_FPS_N(&self->info) = fps_n;
    GST_VIDEO_INFO_FPS_D(&self->info) = fps_d;
    self->index = 0;
    self->file_ms = 0.0;
    self->loop_offset = 0;
    self->n_frames = 0;

    GST_OBJECT_LOCK(self);
    if (in->has_region)
        g_snprintf(self->roi, sizeof self->roi, "%d,%d,%d,%d", in->region_x, in->region_y,
                   in->region_width, in->region_height);
    else
        g_strlcpy(self->roi, "auto", sizeof self->roi);
    self->frames = in->frames;
    self->frame_time_ms = in->frame_time_ms;
    GST_OBJECT_UNLOCK(self);
    GST_INFO_OBJECT(self, "%u frame(s) %dx%d x%d, %.3f ms/frame, roi %s, transfer syntax %s",
                    in->frames, in->width, in->height, in->channels, in->frame_time_ms, self->roi,
                    media_dicom_transfer_syntax_name(in->transfer_syntax_uid));
    return TRUE;
}

static gboolean gst_dicom_src_stop(GstBaseSrc *base)
{
    GstDicomSrc *self = GST_DICOM_SRC(base);

    g_clear_pointer(&self->dicom, media_dicom_close);
    return TRUE;
}

static GstCaps *gst_dicom_src_get_caps(GstBaseSrc *base, GstCaps *filter)
{
    GstDicomSrc *self = GST_DICOM_SRC(base);
    GstCaps *caps;

    if (!self->dicom)
        caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(base));
    else
        caps = gst_video_info_to_caps(&self->info);
    if (filter) {
        GstCaps *tmp = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
        gst_caps_unref(caps);
        caps = tmp;
    }
    return caps;
}

static void post_tags(GstDicomSrc *self)
{
    const media_dicom_info *in = media_dicom_get_info(self->dicom);
    GstTagList *tags = gst_tag_list_new_empty();

    if (in->series_description[0])
        gst_tag_list_add(tags, GST_TAG_MERGE_REPLACE, GST_TAG_TITLE, in->series_description, NULL);
    gst_tag_list_add(tags, GST_TAG_MERGE_REPLACE, GST_TAG_CONTAINER_FORMAT, "DICOM",
                     GST_TAG_VIDEO_CODEC, media_dicom_transfer_syntax_name(in->transfer_syntax_uid),
                     NULL);
    gst_pad_push_event(GST_BASE_SRC_PAD(self), gst_event_new_tag(tags));
}

static GstFlowReturn gst_dicom_src_create(GstPushSrc *src, GstBuffer **out)
{
    GstDicomSrc *self = GST_DICOM_SRC(src);
    const media_dicom_info *in = media_dicom_get_info(self->dicom);
    GstVideoFrame frame;
    GstBuffer *buf;
    ev_error err = {0};
    gboolean loop;
    gdouble duration_ms;
    int rc;

    GST_OBJECT_LOCK(self);
    loop = self->loop;
    GST_OBJECT_UNLOCK(self);

    if (self->index >= in->frames) {
        if (!loop)
            return GST_FLOW_EOS;
        self->loop_offset += ms_to_time(self->file_ms);
        self->index = 0;
        self->file_ms = 0.0;
    }
    if (self->n_frames == 0)
        post_tags(self);

    buf = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&self->info), NULL);
    if (!buf || !gst_video_frame_map(&frame, &self->info, buf, GST_MAP_WRITE)) {
        g_clear_pointer(&buf, gst_buffer_unref);
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("Could not allocate a frame."), (NULL));
        return GST_FLOW_ERROR;
    }
    rc = media_dicom_read_frame(self->dicom, self->index, GST_VIDEO_FRAME_PLANE_DATA(&frame, 0),
                                GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0), &err);
    gst_video_frame_unmap(&frame);
    if (rc != EV_OK) {
        gst_buffer_unref(buf);
        GST_ELEMENT_ERROR(self, STREAM, DECODE, ("Could not decode a DICOM frame."),
                          ("%s", err.message));
        return GST_FLOW_ERROR;
    }
    duration_ms = media_dicom_frame_duration_ms(self->dicom, self->index);
    GST_BUFFER_PTS(buf) = self->loop_offset + ms_to_time(self->file_ms);
    GST_BUFFER_DURATION(buf) =
        self->loop_offset + ms_to_time(self->file_ms + duration_ms) - GST_BUFFER_PTS(buf);
    GST_BUFFER_OFFSET(buf) = self->n_frames;
    GST_BUFFER_OFFSET_END(buf) = self->n_frames + 1;
    if (in->has_region)
        gst_buffer_add_video_region_of_interest_meta(buf, "ultrasound-region", in->region_x,
                                                     in->region_y, in->region_width,
                                                     in->region_height);
    self->file_ms += duration_ms;
    self->index++;
    self->n_frames++;
    *out = buf;
    return GST_FLOW_OK;
}

static gboolean gst_dicom_src_is_seekable(GstBaseSrc *base)
{
    GstDicomSrc *self = GST_DICOM_SRC(base);
    gboolean loop;

    GST_OBJECT_LOCK(self);
    loop = self->loop;
    GST_OBJECT_UNLOCK(self);
    return !loop;
}

/* Seeks land on the frame shown at the requested time (the first frame for time 0). */
static gboolean gst_dicom_src_do_seek(GstBaseSrc *base, GstSegment *segment)
{
    GstDicomSrc *self = GST_DICOM_SRC(base);
    const media_dicom_info *in;
    gdouble target_ms, ms = 0.0;
    guint i = 0;

    if (!self->dicom)
        return FALSE;
    in = media_dicom_get_info(self->dicom);
    target_ms = (gdouble)segment->position / GST_MSECOND;
    while (i < in->frames && ms + media_dicom_frame_duration_ms(self->dicom, i) <= target_ms) {
        ms += media_dicom_frame_duration_ms(self->dicom, i);
        i++;
    }
    self->index = i;
    self->file_ms = ms;
    self->loop_offset = 0;
    segment->time = segment->start;
    segment->position = ms_to_time(ms);
    return TRUE;
}

static gboolean gst_dicom_src_query(GstBaseSrc *base, GstQuery *query)
{
    GstDicomSrc *self = GST_DICOM_SRC(base);

    if (GST_QUERY_TYPE(query) == GST_QUERY_DURATION && self->dicom) {
        GstFormat format;
        const media_dicom_info *in = media_dicom_get_info(self->dicom);
        gdouble ms = 0.0;

        gst_query_parse_duration(query, &format, NULL);
        if (format == GST_FORMAT_TIME) {
            for (guint i = 0; i < in->frames; i++)
                ms += media_dicom_frame_duration_ms(self->dicom, i);
            gst_query_set_duration(query, format, self->loop ? (gint64)-1 : (gint64)ms_to_time(ms));
            return TRUE;
        }
    }
    return GST_BASE_SRC_CLASS(gst_dicom_src_parent_class)->query(base, query);
}

static void gst_dicom_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                       GParamSpec *pspec)
{
    GstDicomSrc *self = GST_DICOM_SRC(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_LOCATION:
        if (GST_STATE(self) > GST_STATE_READY) {
            GST_WARNING_OBJECT(self, "location can only be changed in NULL or READY");
            break;
        }
        g_free(self->location);
        self->location = g_value_dup_string(value);
        break;
    case PROP_LOOP:
        self->loop = g_value_get_boolean(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_dicom_src_get_property(GObject *object, guint prop_id, GValue *value,
                                       GParamSpec *pspec)
{
    GstDicomSrc *self = GST_DICOM_SRC(object);

    GST_OBJECT_LOCK(self);
    switch (prop_id) {
    case PROP_LOCATION:
        g_value_set_string(value, self->location);
        break;
    case PROP_LOOP:
        g_value_set_boolean(value, self->loop);
        break;
    case PROP_ROI:
        g_value_set_string(value, self->roi);
        break;
    case PROP_FRAMES:
        g_value_set_uint(value, self->frames);
        break;
    case PROP_FRAME_TIME:
        g_value_set_double(value, self->frame_time_ms);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
}

static void gst_dicom_src_finalize(GObject *object)
{
    GstDicomSrc *self = GST_DICOM_SRC(object);

    g_free(self->location);
    g_clear_pointer(&self->dicom, media_dicom_close);
    G_OBJECT_CLASS(gst_dicom_src_parent_class)->finalize(object);
}

static void gst_dicom_src_class_init(GstDicomSrcClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseSrcClass *base_class = GST_BASE_SRC_CLASS(klass);
    GstPushSrcClass *push_class = GST_PUSH_SRC_CLASS(klass);

    GST_DEBUG_CATEGORY_INIT(gst_dicom_src_debug, "dicomsrc", 0, "DICOM file source");

    gobject_class->set_property = gst_dicom_src_set_property;
    gobject_class->get_property = gst_dicom_src_get_property;
    gobject_class->finalize = gst_dicom_src_finalize;

    g_object_class_install_property(
        gobject_class, PROP_LOCATION,
        g_param_spec_string(
            "location", "Location",
            "Path of the DICOM file (single- or multi-frame; native, RLE or JPEG); default none",
            NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
    g_object_class_install_property(
        gobject_class, PROP_LOOP,
        g_param_spec_boolean(
            "loop", "Loop",
            "Replay the frames forever with increasing timestamps instead of ending "
            "(default false)",
            DEFAULT_LOOP, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        gobject_class, PROP_ROI,
        g_param_spec_string(
            "roi", "Ultrasound region",
            "read-only: the file's ultrasound image region as \"x,y,width,height\" in pixels (the "
            "largest 2D region of the Sequence of Ultrasound Regions), \"auto\" when the file has "
            "none; set from READY->PAUSED on, in the form echoviewclassify's roi takes",
            "auto", G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(
        gobject_class, PROP_FRAMES,
        g_param_spec_uint("frames", "Frames",
                          "read-only: number of frames in the file (0 until the file is open)", 0,
                          G_MAXUINT, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
    g_object_class_install_property(
        gobject_class, PROP_FRAME_TIME,
        g_param_spec_double(
            "frame-time", "Frame time",
            "read-only: nominal time per frame in milliseconds, from Frame Time, Frame Time Vector "
            "(mean), Cine Rate or Recommended Display Frame Rate, else 33.333 (0 until the file "
            "is open)",
            0.0, G_MAXDOUBLE, 0.0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

    gst_element_class_add_static_pad_template(element_class, &src_template);
    gst_element_class_set_static_metadata(
        element_class, "DICOM file source", "Source/File/Video",
        "Plays the frames of a DICOM image file (cine loops included) as "
        "raw video timed by the file's frame time",
        "echoview");

    base_class->start = GST_DEBUG_FUNCPTR(gst_dicom_src_start);
    base_class->stop = GST_DEBUG_FUNCPTR(gst_dicom_src_stop);
    base_class->get_caps = GST_DEBUG_FUNCPTR(gst_dicom_src_get_caps);
    base_class->is_seekable = GST_DEBUG_FUNCPTR(gst_dicom_src_is_seekable);
    base_class->do_seek = GST_DEBUG_FUNCPTR(gst_dicom_src_do_seek);
    base_class->query = GST_DEBUG_FUNCPTR(gst_dicom_src_query);
    push_class->create = GST_DEBUG_FUNCPTR(gst_dicom_src_create);
}

static void gst_dicom_src_init(GstDicomSrc *self)
{
    self->loop = DEFAULT_LOOP;
    g_strlcpy(self->roi, "auto", sizeof self->roi);
    gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
    gst_base_src_set_live(GST_BASE_SRC(self), FALSE);
}
