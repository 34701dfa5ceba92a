/* ops_ref.c: the reference ops of ops_ref.h, instantiated from ops_ref_impl.h in float (ev_ref_*)
 * and in double (ev_ref64_*), plus the output-size rule shared by convolutions and pools.
 */
#include "ops_ref.h"

/* PyTorch's floor rule (ceil_mode off). 0 when the dilated kernel does not fit the padded input
 * or an argument is not positive, so callers can reject the shape instead of wrapping. */
int ev_conv2d_out_size(int in, int kernel, int stride, int pad, int dilation)
{
    if (in <= 0 || kernel <= 0 || stride <= 0 || pad < 0 || dilation <= 0)
        return 0;
    const long long span = (long long)dilation * (kernel - 1) + 1;
    const long long room = (long long)in + 2LL * pad - span;
    if (room < 0 || room / stride + 1 > 0x7fffffffLL)
        return 0;
    return (int)(room / stride + 1);
}

#define EV_REAL float
#define EV_REF_FN(name) ev_ref_##name
#include "ops_ref_impl.h"

#define EV_REAL double
#define EV_REF_FN(name) ev_ref64_##name
#include "ops_ref_impl.h"
