/* evd_zero_pool.h: a buffer pool that zeroes new buffers, for rtp-raw depayloaders, whose frames
 * otherwise keep uninitialised memory where packets were lost (evd_zero_pool.c says why). */
#ifndef EVD_ZERO_POOL_H
#define EVD_ZERO_POOL_H

#include <gst/gst.h>

G_BEGIN_DECLS

/* Answers the ALLOCATION query on depay's src pad with such a pool (and video meta). */
void evd_zero_pool_attach(GstElement *depay);

G_END_DECLS

#endif
