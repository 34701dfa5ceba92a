/* test_cuda.c: the cuda backend against the reference backend. Skips (77) when the backend is not
 * built in or no GPU is visible.
 *
 * 1. Each own kernel, called directly, against the reference op in fp32 (<= 1e-4 relative) and
 *    fp16 (<= 1e-2): depthwise (3x3, 5x5, dilated, stride 2, ReLU on load), pointwise (stride 2
 *    on a cropped view into a channel slice, accumulating: FactorizedReduce's half), dense conv
 *    (stem), max/avg pool (odd sizes, stride 2, padding rules, a NaN), node-sum add, GAP+linear.
 * 2. Whole networks (DARTS_V2, the echo paper's 128 px cell, a genotype using every primitive;
 *    golden fixture bundles and in-memory networks with random weights and BN statistics) at
 *    batch 1, 3 and 64, fp32 and fp16: the logits, and every node value the plan keeps, grouped
 *    by the kernel that made it.
 * 3. Graph replay on and off give identical logits; cuDNN on and off both match the reference;
 *    a missing GPU id is refused. */
#include "ev_bundle.h"
#include "ev_private.h" /* ev_cuda_device_count */
#include "ops_ref.h"
#include "test_util.h"

#include <stdlib.h>

#ifndef EV_HAVE_CUDA_BACKEND
int main(void)
{
    printf("skip: the cuda backend is not built in\n");
    return 77;
}
#else

#include "cuda_kernels.h"
#include "ev_cuda.h"

#include <cuda_runtime_api.h>

static const char *const darts_v2 =
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
    "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
static const char *const paper128 =
    "Genotype(normal=[('dil_conv_5x5', 1), ('dil_conv_5x5', 0), ('dil_conv_5x5', 1), "
    "('dil_conv_5x5', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 2), ('max_pool_3x3', 1), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 1), "
    "('dil_conv_5x5', 0), ('max_pool_3x3', 0), ('dil_conv_5x5', 2), ('dil_conv_5x5', 2), "
    "('dil_conv_5x5', 3), ('dil_conv_5x5', 4), ('dil_conv_5x5', 3)], reduce_concat=[2, 3, 4, 5])";
/* every primitive, `none` included, and a node made of `none` + identity */
static const char *const coverage =
    "Genotype(normal=[('avg_pool_3x3', 0), ('sep_conv_5x5', 1), ('dil_conv_5x5', 0), "
    "('skip_connect', 2), ('none', 1), ('skip_connect', 3), ('sep_conv_3x3', 4), "
    "('max_pool_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('avg_pool_3x3', 0), "
    "('sep_conv_5x5', 1), ('skip_connect', 0), ('dil_conv_3x3', 2), ('none', 1), "
    "('avg_pool_3x3', 3), ('skip_connect', 1), ('none', 4)], reduce_concat=[2, 3, 4, 5])";

static uint64_t rng = 0x1234567;

static void fill_uniform(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * ev_rng_uniform(&rng);
}

/* ---- device helpers ------------------------------------------------------------------------ */

/* Uploads host floats as a contiguous tensor of the given precision. */
static void *upload(const float *host, size_t count, int half)
{
    float *f = NULL;
    void *out = NULL;
    if (cudaMalloc((void **)&f, count * sizeof(float) + 16))
        return NULL;
    cudaMemcpy(f, host, count * sizeof(float), cudaMemcpyHostToDevice);
    if (!half)
        return f;
    if (cudaMalloc(&out, count * 2 + 16) == cudaSuccess)
        evk_float_to_half(0, f, out, (long long)count);
    cudaDeviceSynchronize();
    cudaFree(f);
    return out;
}

static void download(evk_view v, int n, int half, float *host)
{
    size_t count = (size_t)n * v.c * v.h * v.w;
    float *f = NULL;
    cudaMalloc((void **)&f, count * sizeof(float) + 16);
    evk_gather(0, half, n, v, f);
    cudaMemcpy(host, f, count * sizeof(float), cudaMemcpyDeviceToHost);
    cudaFree(f);
}

static evk_view view_of(void *data, int c, int h, int w)
{
    evk_view v = {0};
    v.data = data;
    v.c = c;
    v.h = h;
    v.w = w;
    v.hstride = w;
    v.cstride = (long long)h * w;
    v.nstride = (long long)c * h * w;
    return v;
}

/* what a half-precision store makes of a value */
static void round_half(float *x, size_t n, int half)
{
    if (!half)
        return;
    void *d = upload(x, n, 1);
    download(view_of(d, 1, 1, (int)n), 1, 1, x);
    cudaFree(d);
}

static double tolerance(int half) { return half ? 1e-2 : 1e-4; }

/* ---- 1. kernels ------------------------------------------------------------------------------ */

static void test_depthwise(int half, int k, int stride, int dil)
{
    const int n = 2, c = 5, h = 11, w = 9, pad = dil * (k / 2);
    ev_shape xs = {n, c, h, w};
    ev_shape ys = {n, c, ev_conv2d_out_size(h, k, stride, pad, dil),
                   ev_conv2d_out_size(w, k, stride, pad, dil)};
    size_t nx = ev_shape_numel(xs), ny = ev_shape_numel(ys);
    float *x = malloc(nx * 4), *xr = malloc(nx * 4), *wt = malloc((size_t)c * k * k * 4);
    float *want = malloc(ny * 4), *got = malloc(ny * 4), bias[5];
    fill_uniform(x, nx, -1, 1);
    round_half(x, nx, half);
    fill_uniform(wt, (size_t)c * k * k, -0.5f, 0.5f);
    fill_uniform(bias, 5, -0.2f, 0.2f);
    ev_ref_relu_forward(x, nx, xr);
    ev_conv_desc d = {k, k, stride, pad, dil, c};
    ev_ref_conv2d_forward(xr, xs, wt, c, &d, want, ys);
    for (size_t i = 0; i < ny; i++)
        want[i] += bias[(i / ((size_t)ys.h * ys.w)) % c];
    void *dx = upload(x, nx, half), *dy = upload(want, ny, half);
    float *dw = upload(wt, (size_t)c * k * k, 0), *db = upload(bias, 5, 0);
    evk_view vx = view_of(dx, c, h, w), vy = view_of(dy, c, ys.h, ys.w);
    vx.relu = 1;
    int rc = evk_depthwise(0, half, n, vx, vy, dw, db, k, stride, pad, dil, 0);
    download(vy, n, half, got);
    double e = rel_error(got, want, ny);
    CHECK(rc == 0 && e <= tolerance(half),
          "%s depthwise %dx%d stride %d dilation %d, relu on load: "
          "rel error %.2e",
          half ? "fp16" : "fp32", k, k, stride, dil, e);
    cudaFree(dx), cudaFree(dy), cudaFree(dw), cudaFree(db);
    free(x), free(xr), free(wt), free(want), free(got);
}

/* FactorizedReduce's second half: ReLU, crop 1, 1x1 stride 2, into channels [3, 3 + cout) of a
 * 9-channel buffer, accumulating onto what is there. */
static void test_pointwise(int half, int stride, int crop)
{
    const int n = 3, cin = 6, cout = 4, h = 10, w = 12, ctot = 9, c0 = 3;
    ev_shape xs = {n, cin, h, w}, cs = {n, cin, h - crop, w - crop};
    ev_shape ys = {n, cout, ev_conv2d_out_size(cs.h, 1, stride, 0, 1),
                   ev_conv2d_out_size(cs.w, 1, stride, 0, 1)};
    ev_shape bs = {n, ctot, ys.h, ys.w};
    size_t nx = ev_shape_numel(xs), nc = ev_shape_numel(cs), ny = ev_shape_numel(ys);
    size_t nb = ev_shape_numel(bs);
    float *x = malloc(nx * 4), *xr = malloc(nx * 4), *xc = malloc(nc * 4);
    float *wt = malloc((size_t)cout * cin * 4), *y = malloc(ny * 4);
    float *before = malloc(nb * 4), *want = malloc(nb * 4), *got = malloc(nb * 4), bias[4];
    fill_uniform(x, nx, -1, 1);
    round_half(x, nx, half);
    fill_uniform(before, nb, -1, 1);
    round_half(before, nb, half);
    fill_uniform(wt, (size_t)cout * cin, -0.5f, 0.5f);
    fill_uniform(bias, 4, -0.2f, 0.2f);
    ev_ref_relu_forward(x, nx, xr);
    ev_ref_crop_forward(xr, xs, crop, xc);
    ev_conv_desc d = {1, 1, stride, 0, 1, 1};
    ev_ref_conv2d_forward(xc, cs, wt, cout, &d, y, ys);
    memcpy(want, before, nb * 4);
    size_t plane = (size_t)ys.h * ys.w;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < cout; c++)
            for (size_t p = 0; p < plane; p++)
                want[((size_t)b * ctot + c0 + c) * plane + p] +=
                    y[((size_t)b * cout + c) * plane + p] + bias[c];
    void *dx = upload(x, nx, half), *dbuf = upload(before, nb, half);
    float *dw = upload(wt, (size_t)cout * cin, 0), *db = upload(bias, 4, 0);
    evk_view vx = view_of(dx, cin, h, w);
    vx.data = (char *)vx.data + (size_t)(crop * w + crop) * (half ? 2 : 4);
    vx.h -= crop;
    vx.w -= crop;
    vx.relu = 1;
    evk_view vb = view_of(dbuf, ctot, ys.h, ys.w), vy = vb;
    vy.data = (char *)vy.data + (size_t)c0 * plane * (half ? 2 : 4);
    vy.c = cout;
    int rc = evk_pointwise(0, half, n, vx, vy, dw, db, stride, 1);
    download(vb, n, half, got);
    double e = rel_error(got, want, nb);
    CHECK(rc == 0 && e <= tolerance(half),
          "%s pointwise stride %d crop %d into a channel slice, accumulating: rel error %.2e",
          half ? "fp16" : "fp32", stride, crop, e);
    cudaFree(dx), cudaFree(dbuf), cudaFree(dw), cudaFree(db);
    free(x), free(xr), free(xc), free(wt), free(y), free(before), free(want), free(got);
}

static void test_stem(int half)
{
    const int n = 2, cin = 3, cout = 12, h = 9, w = 8;
    ev_shape xs = {n, cin, h, w}, ys = {n, cout, h, w};
    size_t nx = ev_shape_numel(xs), ny = ev_shape_numel(ys);
    float *x = malloc(nx * 4), *wt = malloc((size_t)cout * cin * 9 * 4), *want = malloc(ny * 4);
    float *got = malloc(ny * 4), bias[12];
    fill_uniform(x, nx, -1, 1);
    round_half(x, nx, half);
    fill_uniform(wt, (size_t)cout * cin * 9, -0.3f, 0.3f);
    fill_uniform(bias, 12, -0.2f, 0.2f);
    ev_conv_desc d = {3, 3, 1, 1, 1, 1};
    ev_ref_conv2d_forward(x, xs, wt, cout, &d, want, ys);
    for (size_t i = 0; i < ny; i++)
        want[i] += bias[(i / ((size_t)h * w)) % cout];
    void *dx = upload(x, nx, half), *dy = upload(want, ny, half);
    float *dw = upload(wt, (size_t)cout * cin * 9, 0), *db = upload(bias, 12, 0);
    int rc = evk_conv_direct(0, half, n, view_of(dx, cin, h, w), view_of(dy, cout, h, w), dw, db, 3,
                             1, 1, 1, 1, 0);
    download(view_of(dy, cout, h, w), n, half, got);
    double e = rel_error(got, want, ny);
    CHECK(rc == 0 && e <= tolerance(half), "%s dense 3x3 conv (stem): rel error %.2e",
          half ? "fp16" : "fp32", e);
    cudaFree(dx), cudaFree(dy), cudaFree(dw), cudaFree(db);
    free(x), free(wt), free(want), free(got);
}

static void test_pool(int half, int is_max, int stride, int accumulate)
{
    const int n = 2, c = 3, h = 7, w = 9;
    ev_shape xs = {n, c, h, w};
    ev_shape ys = {n, c, ev_conv2d_out_size(h, 3, stride, 1, 1),
                   ev_conv2d_out_size(w, 3, stride, 1, 1)};
    size_t nx = ev_shape_numel(xs), ny = ev_shape_numel(ys);
    float *x = malloc(nx * 4), *want = malloc(ny * 4), *got = malloc(ny * 4);
    float *before = malloc(ny * 4);
    /* all negative: a max pool that let zero padding win would show it */
    fill_uniform(x, nx, -2, -0.1f);
    round_half(x, nx, half);
    fill_uniform(before, ny, -1, 1);
    round_half(before, ny, half);
    if (is_max)
        ev_ref_maxpool_forward(x, xs, 3, stride, 1, want, ys);
    else
        ev_ref_avgpool_forward(x, xs, 3, stride, 1, want, ys);
    if (accumulate)
        for (size_t i = 0; i < ny; i++)
            want[i] += before[i];
    void *dx = upload(x, nx, half), *dy = upload(before, ny, half);
    int rc = evk_pool(0, half, n, view_of(dx, c, h, w), view_of(dy, c, ys.h, ys.w), 3, stride, 1,
                      is_max, accumulate);
    download(view_of(dy, c, ys.h, ys.w), n, half, got);
    double e = rel_error(got, want, ny);
    CHECK(rc == 0 && e <= tolerance(half), "%s %s pool 3x3 stride %d on %dx%d%s: rel error %.2e",
          half ? "fp16" : "fp32", is_max ? "max" : "avg", stride, h, w,
          accumulate ? ", accumulating" : "", e);
    cudaFree(dx), cudaFree(dy);
    free(x), free(want), free(got), free(before);
}

static void test_pool_nan(void)
{
    float x[9] = {1, 2, 3, 4, NAN, 6, 7, 8, 9}, got[9];
    void *dx = upload(x, 9, 0), *dy = upload(x, 9, 0);
    int rc = evk_pool(0, 0, 1, view_of(dx, 1, 3, 3), view_of(dy, 1, 3, 3), 3, 1, 1, 1, 0);
    download(view_of(dy, 1, 3, 3), 1, 0, got);
    int nans = 0;
    for (int i = 0; i < 9; i++)
        nans += isnan(got[i]) != 0;
    CHECK(rc == 0 && nans == 9, "max pool: a NaN in every window wins (%d of 9 NaN)", nans);
    cudaFree(dx), cudaFree(dy);
}

static void test_head(int half)
{
    const int n = 3, c = 20, h = 5, w = 6, k = 14;
    ev_shape xs = {n, c, h, w};
    size_t nx = ev_shape_numel(xs);
    float *x = malloc(nx * 4), gap[3 * 20], wt[14 * 20], bias[14], want[3 * 14], got[3 * 14];
    fill_uniform(x, nx, -1, 1);
    round_half(x, nx, half);
    fill_uniform(wt, sizeof wt / 4, -0.5f, 0.5f);
    fill_uniform(bias, k, -0.5f, 0.5f);
    ev_ref_gap_forward(x, xs, gap);
    ev_ref_linear_forward(gap, n, c, wt, bias, k, want);
    void *dx = upload(x, nx, half);
    float *dw = upload(wt, sizeof wt / 4, 0), *db = upload(bias, k, 0), *dgap, *dlog;
    cudaMalloc((void **)&dgap, sizeof gap);
    cudaMalloc((void **)&dlog, sizeof want);
    int rc = evk_gap_linear(0, half, n, view_of(dx, c, h, w), dgap, dw, db, k, dlog);
    cudaMemcpy(got, dlog, sizeof got, cudaMemcpyDeviceToHost);
    double e = rel_error(got, want, (size_t)n * k);
    CHECK(rc == 0 && e <= 1e-4, "%s global pool + linear: rel error %.2e", half ? "fp16" : "fp32",
          e);
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dgap), cudaFree(dlog);
    free(x);
}

static void test_add(int half)
{
    const int n = 2, c = 4, h = 3, w = 5;
    size_t count = (size_t)n * c * h * w;
    float a[120], b[120], want[120], got[120];
    fill_uniform(a, count, -1, 1);
    fill_uniform(b, count, -1, 1);
    round_half(a, count, half);
    round_half(b, count, half);
    for (size_t i = 0; i < count; i++)
        want[i] = b[i] + (a[i] > 0 ? a[i] : 0);
    void *da = upload(a, count, half), *db = upload(b, count, half);
    evk_view va = view_of(da, c, h, w);
    va.relu = 1;
    int rc = evk_add(0, half, n, va, view_of(db, c, h, w), 1);
    download(view_of(db, c, h, w), n, half, got);
    double e = rel_error(got, want, count);
    CHECK(rc == 0 && e <= tolerance(half), "%s node-sum add with ReLU on load: rel error %.2e",
          half ? "fp16" : "fp32", e);
    rc = evk_fill_zero(0, half, n, view_of(db, c, h, w));
    download(view_of(db, c, h, w), n, half, got);
    double z = 0;
    for (size_t i = 0; i < count; i++)
        z = fmax(z, fabs(got[i]));
    CHECK(rc == 0 && z == 0, "%s zero fill", half ? "fp16" : "fp32");
    cudaFree(da), cudaFree(db);
}

static void test_kernels(void)
{
    for (int half = 0; half <= 1; half++) {
        test_depthwise(half, 3, 1, 1);
        test_depthwise(half, 3, 2, 1);
        test_depthwise(half, 5, 1, 1);
        test_depthwise(half, 3, 1, 2);
        test_depthwise(half, 5, 2, 2);
        test_pointwise(half, 1, 0);
        test_pointwise(half, 2, 0);
        test_pointwise(half, 2, 1);
        test_stem(half);
        for (int is_max = 0; is_max <= 1; is_max++)
            for (int stride = 1; stride <= 2; stride++)
                test_pool(half, is_max, stride, stride == 2);
        test_add(half);
        test_head(half);
    }
    test_pool_nan();
}

/* ---- 2. networks ------------------------------------------------------------------------------ */

typedef struct kernel_stat {
    const char *name;
    double worst[2]; /* fp32, fp16 */
    int seen[2];
} kernel_stat;

static kernel_stat stats[32];
static int num_stats;

static void note(const char *name, int half, double e)
{
    int i = 0;
    while (i < num_stats && strcmp(stats[i].name, name))
        i++;
    if (i == num_stats) {
        if (num_stats == 32)
            return;
        stats[num_stats++].name = name;
    }
    stats[i].seen[half]++;
    if (e > stats[i].worst[half] || e != e)
        stats[i].worst[half] = e;
}

static ev_model *memory_model(const char *genotype, int size, int in_channels, int channels,
                              uint64_t seed)
{
    ev_error err = {0};
    ev_net_config cfg = {0};
    if (ev_genotype_parse(genotype, &cfg.genotype, &err)) {
        printf("genotype: %s\n", err.message);
        return NULL;
    }
    cfg.init_channels = channels;
    cfg.num_cells = 4;
    cfg.reduction[1] = cfg.reduction[3] = true;
    cfg.in_channels = in_channels;
    cfg.num_classes = 14;
    cfg.input_height = cfg.input_width = size;
    ev_net *net = NULL;
    if (ev_net_create(&cfg, 1, false, &net, &err)) {
        printf("network: %s\n", err.message);
        return NULL;
    }
    ev_net_init_weights(net, seed);
    for (int i = 0; i < net->num_params; i++) {
        ev_param *p = &net->params[i];
        switch (p->kind) {
        case EV_PARAM_RUNNING_MEAN:
            fill_uniform(p->data, p->numel, -0.3f, 0.3f);
            break;
        case EV_PARAM_RUNNING_VAR:
            fill_uniform(p->data, p->numel, 0.5f, 1.5f);
            break;
        case EV_PARAM_BN_WEIGHT:
            fill_uniform(p->data, p->numel, 0.6f, 1.4f);
            break;
        case EV_PARAM_BN_BIAS:
            fill_uniform(p->data, p->numel, -0.2f, 0.2f);
            break;
        default:
            break;
        }
    }
    char name[32];
    snprintf(name, sizeof name, "memory-%d", size);
    const ev_model_info info = {.name = name};
    ev_model *m = NULL;
    if (ev_model_from_net(net, &info, &m, &err))
        printf("model: %s\n", err.message);
    return m;
}

static void check_network(const char *label, const ev_model *model, int batch, int half)
{
    ev_error err = {0};
    ev_net *ref = NULL;
    ev_plan *plan = NULL;
    const ev_net_config *cfg = &ev_model_network(model)->cfg;
    const int k = cfg->num_classes;
    size_t n_in = (size_t)batch * cfg->in_channels * cfg->input_height * cfg->input_width;
    float *input = malloc(n_in * sizeof(float));
    float *got = malloc((size_t)batch * k * sizeof(float));
    float *again = malloc((size_t)batch * k * sizeof(float));
    float *node = NULL;
    const char *prec = half ? "fp16" : "fp32";
    const double tol = tolerance(half);
    fill_uniform(input, n_in, 0, 1);
    int rc = ev_net_create(cfg, batch, false, &ref, &err);
    if (!rc)
        rc = ev_net_copy_params(ref, ev_model_network(model), &err);
    if (!rc)
        rc = ev_net_forward(ref, input, false, &err);
    CHECK(rc == 0, "%s batch %d: reference (%s)", label, batch, rc ? err.message : "ok");
    if (rc)
        goto out;
    ev_plan_options opt = {.backend = EV_BACKEND_CUDA, .batch = batch, .fp16 = half};
    rc = ev_plan_create(model, &opt, &plan, &err);
    CHECK(rc == 0, "%s batch %d %s: plan (%s)", label, batch, prec,
          rc ? err.message : ev_cuda_plan_describe(plan));
    if (rc)
        goto out;
    /* a plan whose capture failed runs eagerly (and says so); here replay must really be on */
    CHECK(strstr(ev_cuda_plan_describe(plan), "graph replay on") != NULL,
          "%s batch %d %s: graph replay is on (%s)", label, batch, prec,
          ev_cuda_plan_describe(plan));
    rc = ev_plan_run(plan, input, got, &err);
    double e = rel_error(got, ev_net_logits(ref), (size_t)batch * k);
    CHECK(rc == 0 && e <= tol, "%s batch %d %s: logits rel error %.2e <= %.0e", label, batch, prec,
          e, tol);

    /* every kept node against the reference node */
    double worst = 0;
    const char *worst_kernel = "-";
    int kept = 0;
    for (int i = 0; i < ref->graph.num_nodes; i++) {
        const char *kernel = ev_cuda_plan_node_kernel(plan, i);
        if (!kernel)
            continue;
        size_t count = ev_shape_numel(ref->graph.nodes[i].shape);
        float *buf = realloc(node, count * sizeof(float));
        if (!buf)
            break;
        node = buf;
        if (ev_cuda_plan_node_output(plan, i, node, count, &err)) {
            CHECK(0, "%s: node %d: %s", label, i, err.message);
            continue;
        }
        double ne = rel_error(node, ref->graph.nodes[i].out, count);
        note(kernel, half, ne);
        kept++;
        if (ne > worst || ne != ne) {
            worst = ne;
            worst_kernel = kernel;
        }
    }
    CHECK(kept > 0 && worst <= tol, "%s batch %d %s: %d kept nodes, worst rel error %.2e (%s)",
          label, batch, prec, kept, worst, worst_kernel);

    /* graph replay off: the same kernels, so the same bits */
    rc = ev_cuda_plan_set_graphs(plan, 0);
    if (!rc)
        rc = ev_plan_run(plan, input, again, &err);
    CHECK(rc == 0 && memcmp(got, again, (size_t)batch * k * sizeof(float)) == 0,
          "%s batch %d %s: graph replay off gives identical logits", label, batch, prec);
    ev_cuda_plan_set_graphs(plan, 1);
    rc = ev_plan_run(plan, input, again, &err);
    CHECK(rc == 0 && memcmp(got, again, (size_t)batch * k * sizeof(float)) == 0,
          "%s batch %d %s: a second replay gives identical logits", label, batch, prec);

    /* own kernels only (when cuDNN was in use) */
    if (ev_cuda_plan_set_cudnn(plan, 0) == 0) {
        rc = ev_plan_run(plan, input, again, &err);
        e = rel_error(again, ev_net_logits(ref), (size_t)batch * k);
        CHECK(rc == 0 && e <= tol, "%s batch %d %s: without cuDNN: logits rel error %.2e", label,
              batch, prec, e);
    }
out:
    ev_plan_free(plan);
    ev_net_free(ref);
    free(input);
    free(got);
    free(again);
    free(node);
}

static void check_model(const char *label, const ev_model *model, const int *batches, int count)
{
    for (int b = 0; b < count; b++)
        for (int half = 0; half <= 1; half++)
            check_network(label, model, batches[b], half);
}

static void test_networks(const char *fixtures)
{
    static const char *const golden[] = {"darts_v2_nrnr_g1", "darts_v2_nrnr_rgb", "darts_v2_l3_g1",
                                         "paper128_nrnr_g1", "paper128_nrnr_rgb", "paper128_l8_g1"};
    static const int all_batches[] = {1, 3, 64};
    static const int small_batches[] = {1, 3};
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/golden/%s", fixtures, golden[i]);
        ev_error err = {0};
        ev_model *model = NULL;
        int rc = ev_model_load(dir, &model, &err);
        CHECK(rc == 0, "load %s (%s)", golden[i], rc ? err.message : "ok");
        if (rc)
            continue;
        check_model(golden[i], model, all_batches, 3);
        ev_model_free(model);
    }
    struct {
        const char *label, *genotype;
        int size, in_channels, channels;
        const int *batches;
        int num_batches;
    } nets[] = {
        {"darts_v2 32px C16", darts_v2, 32, 1, 16, all_batches, 3},
        {"paper128 32px C16", paper128, 32, 1, 16, all_batches, 3},
        {"coverage 32px C8 rgb", coverage, 32, 3, 8, all_batches, 3},
        {"paper128 128px C16", paper128, 128, 1, 16, small_batches, 2},
        {"darts_v2 96px C16", darts_v2, 96, 1, 16, small_batches, 1},
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        ev_model *m = memory_model(nets[i].genotype, nets[i].size, nets[i].in_channels,
                                   nets[i].channels, 100 + i);
        CHECK(m != NULL, "%s: build", nets[i].label);
        if (!m)
            continue;
        check_model(nets[i].label, m, nets[i].batches, nets[i].num_batches);
        ev_model_free(m);
    }
    /* every kernel family the networks use was seen and stayed within tolerance */
    static const char *const expected[] = {"stem",         "depthwise",         "depthwise_dilated",
                                           "pointwise_bn", "factorized_reduce", "node_sum",
                                           "concat"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        int j = 0;
        while (j < num_stats && strcmp(stats[j].name, expected[i]))
            j++;
        CHECK(j < num_stats, "kernel %s was exercised", expected[i]);
    }
    for (int j = 0; j < num_stats; j++)
        CHECK(stats[j].worst[0] <= 1e-4 && stats[j].worst[1] <= 1e-2,
              "kernel %-18s fp32: %4d nodes, worst %.2e; fp16: %4d nodes, worst %.2e",
              stats[j].name, stats[j].seen[0], stats[j].worst[0], stats[j].seen[1],
              stats[j].worst[1]);
}

static void test_errors(const char *fixtures)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/golden/darts_v2_nrnr_g1", fixtures);
    ev_error err = {0};
    ev_model *model = NULL;
    if (ev_model_load(dir, &model, &err))
        return;
    ev_plan *plan = NULL;
    ev_plan_options opt = {.backend = EV_BACKEND_CUDA, .gpu_id = ev_cuda_device_count()};
    CHECK_ERR(ev_plan_create(model, &opt, &plan, &err), err, "does not exist",
              "gpu id past the end");
    CHECK(ev_cuda_plan_set_graphs(NULL, 1) == EV_ERR_UNSUPPORTED, "set_graphs on no plan");
    opt = (ev_plan_options){.backend = EV_BACKEND_REFERENCE};
    if (!ev_plan_create(model, &opt, &plan, &err)) {
        CHECK(ev_cuda_plan_set_graphs(plan, 0) == EV_ERR_UNSUPPORTED &&
                  ev_cuda_plan_describe(plan) == NULL,
              "cuda controls refuse a reference plan");
        ev_plan_free(plan);
    }
    ev_model_free(model);
}

int main(int argc, char **argv)
{
    const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";
    int devices = ev_cuda_device_count();
    if (devices <= 0) {
        printf("skip: no CUDA device visible\n");
        return 77;
    }
    printf("%d CUDA device(s); %s\n", devices, ev_cuda_cudnn_status());
    test_kernels();
    test_networks(fixtures);
    test_errors(fixtures);
    return test_finish();
}
#endif
