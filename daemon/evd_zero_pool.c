/* evd_zero_pool.c: the zero-filling buffer pool of rtp-raw pipelines.
 *
 * rtpvrawdepay copies each packet's lines into a pool buffer and pushes the frame when the next
 * one starts, complete or not: the lines of lost packets, and the rows beyond the sender's size
 * when it does not match the configured one, keep whatever that memory held. For a fresh
 * buffer that is uninitialised memory, which reached the ROI detector, the network and the
 * `stats` events (valgrind --track-origins traced it to gst_buffer_pool_acquire_buffer in
 * rtpvrawdepay). The depayloader takes its pool from the ALLOCATION query, so it is answered
 * with a pool whose new buffers are zeroed: missing rows are black (or, in a recycled buffer,
 * an earlier frame's), never undefined. */
#include "evd_zero_pool.h"

#include <gst/video/video.h>

#define EVD_TYPE_ZEROED_POOL (evd_zeroed_pool_get_type())
G_DECLARE_FINAL_TYPE(EvdZeroedPool, evd_zeroed_pool, EVD, ZEROED_POOL, GstVideoBufferPool)

struct _EvdZeroedPool {
    GstVideoBufferPool parent;
};

G_DEFINE_TYPE(EvdZeroedPool, evd_zeroed_pool, GST_TYPE_VIDEO_BUFFER_POOL)

static GstFlowReturn evd_zeroed_pool_alloc_buffer(GstBufferPool *pool, GstBuffer **buffer,
                                                  GstBufferPoolAcquireParams *params)
{
    GstFlowReturn ret =
        GST_BUFFER_POOL_CLASS(evd_zeroed_pool_parent_class)->alloc_buffer(pool, buffer, params);

    if (ret == GST_FLOW_OK)
        gst_buffer_memset(*buffer, 0, 0, gst_buffer_get_size(*buffer));
    return ret;
}

static void evd_zeroed_pool_class_init(EvdZeroedPoolClass *klass)
{
    GST_BUFFER_POOL_CLASS(klass)->alloc_buffer = evd_zeroed_pool_alloc_buffer;
}

static void evd_zeroed_pool_init(EvdZeroedPool *pool) {}

/* On the depayloader's src pad: answers its ALLOCATION query with an EvdZeroedPool (and video
 * meta, as videoconvert downstream would). */
static GstPadProbeReturn on_depay_query(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    GstCaps *caps = NULL;
    GstVideoInfo vinfo;
    GstBufferPool *pool;

    if (GST_QUERY_TYPE(query) != GST_QUERY_ALLOCATION)
        return GST_PAD_PROBE_OK;
    gst_query_parse_allocation(query, &caps, NULL);
    if (!caps || !gst_video_info_from_caps(&vinfo, caps))
        return GST_PAD_PROBE_OK;
    pool = g_object_new(EVD_TYPE_ZEROED_POOL, NULL);
    gst_query_add_allocation_pool(query, pool, (guint)GST_VIDEO_INFO_SIZE(&vinfo), 0, 0);
    gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
    gst_object_unref(pool);
    return GST_PAD_PROBE_HANDLED;
}

void evd_zero_pool_attach(GstElement *depay)
{
    GstPad *pad = gst_element_get_static_pad(depay, "src");

    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, on_depay_query, NULL, NULL);
    gst_object_unref(pad);
}
