/* test_bundle.c: hostile safetensors files and model.yaml files: each gets its own clear error
 * naming the tensor, key or line, never a crash; a good bundle round-trips through the writer. */
#include "ev_bundle.h"
#include "ev_safetensors.h"
#include "test_util.h"
#include <math.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/ev_test_bundle_XXXXXX";
static const char *fixture;

/* safetensors bytes: 8-byte length + header + data */
static size_t make_st(unsigned char *out, const char *header, const void *data, size_t data_len,
                      uint64_t fake_len)
{
    size_t h = strlen(header);
    uint64_t len = fake_len ? fake_len : h;
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(len >> (8 * i));
    memcpy(out + 8, header, h);
    memcpy(out + 8 + h, data, data_len);
    return 8 + h + data_len;
}

static void check_parse_errors(void)
{
    static const struct {
        const char *header;
        size_t data_len;
        uint64_t fake_len;
        const char *want;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0,
         "tensor 'a': data_offsets [0, 8] point past the end of the data (4 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0,
         "tensor 'a': F32 shape needs 12 bytes but data_offsets span 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
         8, 0, "overlap"},
        /* every pair, not only neighbours: the empty B between A and C hid C inside A */
        {"{\"A\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]},"
         "\"B\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[10,10]},"
         "\"C\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[50,60]}}",
         100, 0, "tensors 'A' [0, 100] and 'B' [10, 10] overlap in the data section"},
        {"{\"A\":{\"dtype\":\"U8\",\"shape\":[100],\"data_offsets\":[0,100]},"
         "\"C\":{\"dtype\":\"U8\",\"shape\":[10],\"data_offsets\":[50,60]},"
         "\"D\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[100,100]}}",
         100, 0, "tensors 'A' [0, 100] and 'C' [50, 60] overlap in the data section"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0,
         "tensor 'a': unknown dtype 'Q4'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0,
         "shape entry 0 is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, 0,
         "data_offsets must be [begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":["
         "0,4]}}",
         4, 0, "shape overflows"},
        {"{\"a\":{\"dtype\":\"F32\"}}", 0, 0,
         "needs dtype (string), shape (array) and data_offsets"},
        {"{\"a\":", 0, 0, "header is not valid JSON"},
        {"[1,2]", 0, 0, "header is not a JSON object"},
        {"{}", 0, (uint64_t)1 << 40, "exceeds the"},
        {"{}", 0, 1000, "truncated: header length 1000 but only 2 bytes follow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, 0, "header is not valid JSON: duplicate object key"},
    };
    unsigned char buf[1024];
    float data[32] = {1, 2, 3, 4}; /* 128 bytes: the largest data section below */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = make_st(buf, cases[i].header, data, cases[i].data_len, cases[i].fake_len);
        ev_safetensors st;
        ev_error err = {0};
        int rc = ev_safetensors_parse(buf, n, &st, &err);
        if (!cases[i].want) {
            CHECK(rc == 0 && st.count == 1 && ((float *)(st.data + st.tensors[0].begin))[1] == 2.0f,
                  "well-formed safetensors parses");
            ev_safetensors_free(&st);
        } else {
            char label[48];
            snprintf(label, sizeof label, "hostile safetensors %zu", i);
            CHECK_ERR(rc, err, cases[i].want, label);
        }
    }
    ev_safetensors st;
    ev_error err = {0};
    CHECK_ERR(ev_safetensors_parse(buf, 5, &st, &err), err, "truncated: 5 bytes", "5-byte file");
    /* empty tensors at the ends of a span (and at the end of the data) share no bytes */
    static const char *edges = "{\"e0\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"e8\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                               "\"e16\":{\"dtype\":\"F32\",\"shape\":[0,3],"
                               "\"data_offsets\":[16,16]}}";
    size_t n = make_st(buf, edges, data, 16, 0);
    int rc = ev_safetensors_parse(buf, n, &st, &err);
    CHECK(rc == 0 && st.count == 5 && ev_safetensors_find(&st, "e8")->begin == 8 &&
              ((float *)(st.data + ev_safetensors_find(&st, "b")->begin))[1] == 4.0f,
          "empty tensors at span boundaries parse");
    if (rc == 0)
        ev_safetensors_free(&st);
}

/* copies the fixture bundle into a fresh folder and returns its path */
static const char *copy_bundle(const char *name)
{
    static char dir[1024];
    char cmd[4096];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/model.yaml' '%s/weights.safetensors' '%s/'",
             dir, fixture, fixture, dir);
    if (system(cmd) != 0)
        printf("  copy failed: %s\n", cmd);
    return dir;
}

static void edit_file(const char *dir, const char *file, const char *sed)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "sed -i %s '%s/%s'", sed, dir, file);
    if (system(cmd) != 0)
        printf("  edit failed: %s\n", cmd);
}

static void expect_load_error(const char *dir, const char *want, const char *label)
{
    ev_model *m = NULL;
    ev_error err = {0};
    int rc = ev_model_load(dir, &m, &err);
    CHECK_ERR(rc, err, want, label);
    ev_model_free(m);
}

/* rewrites weights.safetensors with one tensor changed (renamed, reshaped, retyped, dropped) */
static void rewrite_weights(const char *dir, const char *victim, const char *new_name, int drop_dim,
                            float poison)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    ev_safetensors st;
    ev_error err = {0};
    if (ev_safetensors_read(path, &st, &err)) {
        printf("  %s\n", err.message);
        return;
    }
    ev_st_entry *e = calloc((size_t)st.count, sizeof *e);
    int64_t(*shapes)[8] = calloc((size_t)st.count, sizeof *shapes);
    int n = 0;
    for (int i = 0; i < st.count; i++) {
        ev_st_tensor *t = &st.tensors[i];
        if (t->dtype != EV_DTYPE_F32)
            continue; /* the writer writes F32 only: num_batches_tracked goes */
        bool is_victim = !strcmp(t->name, victim);
        if (is_victim && !new_name && !drop_dim && poison == 0)
            continue; /* drop it */
        memcpy(shapes[n], t->shape, sizeof shapes[n]);
        int ndim = t->ndim;
        if (is_victim && drop_dim)
            shapes[n][0] -= 1;
        float *data = (float *)(st.data + t->begin);
        if (is_victim && poison != 0)
            data[0] = poison;
        e[n] = (ev_st_entry){is_victim && new_name ? new_name : t->name, ndim, shapes[n], data};
        n++;
    }
    if (ev_safetensors_write(path, e, n, NULL, 0, &err))
        printf("  %s\n", err.message);
    free(e);
    free(shapes);
    ev_safetensors_free(&st);
}

static void check_bundles(void)
{
    ev_model *m = NULL;
    ev_error err = {0};
    const char *dir = copy_bundle("good");
    int rc = ev_model_load(dir, &m, &err);
    CHECK(rc == 0 && ev_model_num_classes(m) == 14 &&
              !strcmp(ev_model_class_name(m, 5), "Apical-LA/MV"),
          "the fixture bundle loads from its folder (%s)", rc ? err.message : "ok");
    /* writer round trip: save, reload, same logits */
    if (!rc) {
        char out[1024];
        snprintf(out, sizeof out, "%s/saved", tmpdir);
        char *names[14];
        for (int i = 0; i < 14; i++)
            names[i] = (char *)ev_model_class_name(m, i);
        ev_preprocess_params pre;
        ev_model_preprocess_params(m, &pre);
        rc = ev_model_save_bundle(out, "saved", ev_model_network(m), names, pre.scale, pre.mean,
                                  pre.std, &err);
        ev_model *m2 = NULL;
        char yaml[1100];
        snprintf(yaml, sizeof yaml, "%s/model.yaml", out);
        rc |= ev_model_load(yaml, &m2, &err);
        float in[16 * 16], a[14], b[14];
        for (int i = 0; i < 256; i++)
            in[i] = (float)(i % 17) / 17.0f;
        ev_plan *p1 = NULL, *p2 = NULL;
        ev_plan_options opt = {.backend = EV_BACKEND_REFERENCE};
        if (!rc) {
            rc |= ev_plan_create(m, &opt, &p1, &err) || ev_plan_create(m2, &opt, &p2, &err);
            rc |= ev_plan_run(p1, in, a, &err) || ev_plan_run(p2, in, b, &err);
        }
        CHECK(rc == 0 && !memcmp(a, b, sizeof a) &&
                  !strcmp(ev_model_class_name(m2, 5), "Apical-LA/MV"),
              "ev_model_save_bundle round-trips (model.yaml path form; same logits) (%s)",
              rc ? err.message : "ok");
        ev_plan_free(p1);
        ev_plan_free(p2);
        ev_model_free(m2);
    }
    ev_model_free(m);

    expect_load_error("/nonexistent/model", "/nonexistent/model: No such file", "missing bundle");
    dir = copy_bundle("missing_tensor");
    rewrite_weights(dir, "cells.1._ops.2.conv_1.weight", NULL, 0, 0);
    rewrite_weights(dir, "cells.2.preprocess1.op.1.weight", NULL, 0, 0);
    expect_load_error(dir, "tensor 'cells.2.preprocess1.op.1.weight' is missing", "missing tensor");
    dir = copy_bundle("unexpected");
    rewrite_weights(dir, "classifier.bias", "classifier.extra", 0, 0);
    expect_load_error(dir, "tensor 'classifier.bias' is missing", "renamed tensor");
    dir = copy_bundle("shape");
    rewrite_weights(dir, "stem.0.weight", NULL, 1, 0);
    expect_load_error(
        dir, "tensor 'stem.0.weight': shape (11, 1, 3, 3), the network needs (12, 1, 3, 3)",
        "shape mismatch");
    dir = copy_bundle("nan");
    rewrite_weights(dir, "stem.1.running_var", NULL, 0, NAN);
    expect_load_error(dir, "tensor 'stem.1.running_var': element 0 is not finite", "NaN weight");
    dir = copy_bundle("classes");
    edit_file(dir, "model.yaml", "'s/classes: \\[A2CH, /classes: [/'");
    expect_load_error(dir, "tensor 'classifier.weight': shape (14, 64), the network needs (13, 64)",
                      "13 classes against 14-class weights");
    dir = copy_bundle("extra");
    {
        char path[2048];
        snprintf(path, sizeof path, "%s/weights.safetensors", dir);
        ev_net *net = NULL;
        ev_model *tmp = NULL;
        if (!ev_model_load(fixture, &tmp, &err)) {
            ev_net_config cfg = ev_model_network(tmp)->cfg;
            cfg.init_channels = 6; /* a different network entirely */
            if (!ev_net_create(&cfg, 1, false, &net, &err))
                ev_net_save_weights(net, path, &err);
        }
        ev_net_free(net);
        ev_model_free(tmp);
        expect_load_error(
            dir, "tensor 'stem.0.weight': shape (18, 1, 3, 3), the network needs (12, 1, 3, 3)",
            "weights of another network");
    }
    dir = copy_bundle("truncated");
    {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "truncate -s 22000 '%s/weights.safetensors'", dir);
        if (system(cmd) != 0)
            printf("  truncate failed\n");
    }
    expect_load_error(dir, "point past the end of the data", "weights truncated in the data");
    {
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "truncate -s 5000 '%s/weights.safetensors'", dir);
        if (system(cmd) != 0)
            printf("  truncate failed\n");
    }
    expect_load_error(dir, "truncated: header length", "weights truncated in the header");
    dir = copy_bundle("unknown_key");
    edit_file(dir, "model.yaml", "'s/^weights:/colour: red\\nweights:/'");
    expect_load_error(dir, "model.yaml:9:1: unknown key 'colour'", "unknown model.yaml key");
    dir = copy_bundle("bad_channels");
    edit_file(dir, "model.yaml", "'s/init_channels: 4/init_channels: four/'");
    expect_load_error(dir, "model.yaml:6:18: 'init_channels' must be an integer, not 'four'",
                      "non-integer init_channels");
    dir = copy_bundle("bad_op");
    edit_file(dir, "model.yaml", "'s/dil_conv_3x3/dil_conv_9x9/'");
    expect_load_error(dir, "unknown op 'dil_conv_9x9'", "unknown op in model.yaml");
    dir = copy_bundle("bad_layout");
    edit_file(dir, "model.yaml", "'s/layout: \\[normal, reduce/layout: [normal, sideways/'");
    expect_load_error(dir,
                      "model.yaml:7:20: network: layout entry 'sideways' is not normal or reduce",
                      "bad layout entry");
    dir = copy_bundle("odd_size");
    edit_file(dir, "model.yaml", "'s/width: 16, height: 16/width: 18, height: 18/'");
    expect_load_error(dir, "input 18x18 does not work", "odd feature map at a reduction");
    dir = copy_bundle("no_weights");
    edit_file(dir, "model.yaml", "'s/^weights: .*/weights: nothing.safetensors/'");
    expect_load_error(dir, "nothing.safetensors: cannot open", "missing weights file");
    dir = copy_bundle("bad_yaml");
    edit_file(dir, "model.yaml", "'s/^input: {/input: {{/'");
    expect_load_error(dir, "model.yaml:4:1: did not find expected ',' or '}'", "malformed YAML");
    /* the YAML reader's rules hold for model.yaml as for every other file */
    dir = copy_bundle("alias");
    edit_file(dir, "model.yaml", "'s/^name: .*/name: \\&n darts\\ndescription: *n/'");
    expect_load_error(dir, "model.yaml:1:7: aliases are not supported", "an alias in model.yaml");
    dir = copy_bundle("alias_notes");
    edit_file(dir, "model.yaml", "'s/^weights:/training: {a: \\&t [1], b: *t}\\nweights:/'");
    expect_load_error(dir, "model.yaml:9:15: aliases are not supported",
                      "an alias in a free-form section");
    dir = copy_bundle("two_documents");
    edit_file(dir, "model.yaml", "'$a ---\\nname: other'");
    expect_load_error(dir, "model.yaml:10:1: a second YAML document starts here",
                      "a second document");
    dir = copy_bundle("bad_utf8");
    edit_file(dir, "model.yaml", "'s/^name: .*/name: caf\\xff/'");
    expect_load_error(dir, "model.yaml:1:10: invalid leading UTF-8 octet (0xFF", "bad UTF-8");
    dir = copy_bundle("deep");
    edit_file(dir, "model.yaml",
              "'$a metrics: "
              "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'");
    expect_load_error(dir, "model.yaml:10:41: nested deeper than 32 levels", "deep nesting");
    dir = copy_bundle("std_zero");
    edit_file(dir, "model.yaml", "'s/std: \\[1.0\\]/std: [0.0]/'");
    expect_load_error(dir, "preprocess: std must be positive", "zero std");
    dir = copy_bundle("normalize_bad");
    edit_file(dir, "model.yaml", "'s/std: \\[1.0\\]/std: [1.0], normalize: histogram/'");
    expect_load_error(dir, "preprocess: normalize must be none or sector, not 'histogram'",
                      "unknown normalisation");
    dir = copy_bundle("calibration_bad");
    edit_file(dir, "model.yaml", "'$a calibration: {temperature: 0, confidence_threshold: 0.5}'");
    expect_load_error(dir, "'calibration: temperature' must be", "temperature 0");
    dir = copy_bundle("calibration_key");
    edit_file(dir, "model.yaml", "'$a calibration: {temperature: 2, bins: 15}'");
    expect_load_error(dir, "unknown key 'bins'", "unknown calibration key");
}

/* normalize: sector and calibration: the loader reads them, every plan divides its logits by the
 * temperature, ev_model_write_calibration replaces the entry and keeps the rest */
static void check_calibration(void)
{
    ev_error err = {0};
    ev_model *plain = NULL, *cal = NULL;
    const char *dir = copy_bundle("calibrated");
    char path[1100];
    snprintf(path, sizeof path, "%s", dir);
    edit_file(path, "model.yaml", "'s/std: \\[1.0\\]/std: [1.0], normalize: sector/'");
    int rc = ev_model_write_calibration(path, 2.5f, 0.25f, &err);
    rc |= ev_model_write_calibration(path, 4.0f, 0.625f, &err); /* replaces the first */
    rc |= ev_model_load(path, &cal, &err);
    rc |= ev_model_load(fixture, &plain, &err);
    ev_preprocess_params pre = {0};
    if (!rc)
        ev_model_preprocess_params(cal, &pre);
    CHECK(rc == 0 && ev_model_temperature(cal) == 4.0f &&
              ev_model_confidence_threshold(cal) == 0.625f && pre.normalize == EV_NORMALIZE_SECTOR &&
              ev_model_temperature(plain) == 1.0f && ev_model_confidence_threshold(plain) == 0.0f,
          "calibration and normalize: sector load; rewriting replaces the entry (%s)",
          rc ? err.message : "ok");
    char cmd[1300];
    snprintf(cmd, sizeof cmd, "test $(grep -c '^calibration:' '%s/model.yaml') = 1", path);
    CHECK(system(cmd) == 0, "model.yaml holds one calibration entry after two writes");
    float in[16 * 16], a[14], b[14];
    for (int i = 0; i < 256; i++)
        in[i] = (float)(i % 13) / 13.0f;
    const ev_backend_kind kinds[2] = {EV_BACKEND_REFERENCE, EV_BACKEND_CPU};
    for (int k = 0; !rc && k < 2; k++) {
        ev_plan *p1 = NULL, *p2 = NULL;
        ev_plan_options opt = {.backend = kinds[k]};
        rc |= ev_plan_create(plain, &opt, &p1, &err) || ev_plan_create(cal, &opt, &p2, &err);
        rc |= ev_plan_run(p1, in, a, &err) || ev_plan_run(p2, in, b, &err);
        float worst = 0.0f;
        for (int c = 0; c < 14; c++)
            worst = fmaxf(worst, fabsf(b[c] - a[c] / 4.0f));
        CHECK(rc == 0 && worst <= 1e-6f * (1.0f + fabsf(a[0])),
              "%s plan: calibrated logits are the plain ones / 4 (max diff %g)",
              ev_backend_name(kinds[k]), (double)worst);
        ev_plan_free(p1);
        ev_plan_free(p2);
    }
    ev_model_free(plain);
    ev_model_free(cal);
    rc = ev_model_write_calibration(path, -1.0f, 0.5f, &err);
    CHECK_ERR(rc, err, "temperature -1 must be > 0", "a negative temperature is refused");
}

/* ev_bundle_path: a bundle named by its folder or by its model.yaml */
static void check_bundle_path(void)
{
    ev_error err = {0};
    char out[4200], want[4200], yaml[4200];
    int rc = ev_bundle_path(fixture, NULL, out, sizeof out, &err);
    snprintf(want, sizeof want, "%s/model.yaml", fixture);
    CHECK(rc == 0 && !strcmp(out, want), "folder: its model.yaml (%s)", rc ? err.message : out);
    snprintf(yaml, sizeof yaml, "%s", want);
    rc = ev_bundle_path(yaml, NULL, out, sizeof out, &err);
    CHECK(rc == 0 && !strcmp(out, yaml), "model.yaml: itself (%s)", rc ? err.message : out);
    rc = ev_bundle_path(yaml, "weights.safetensors", out, sizeof out, &err);
    snprintf(want, sizeof want, "%s/weights.safetensors", fixture);
    CHECK(rc == 0 && !strcmp(out, want), "model.yaml: a file beside it (%s)",
          rc ? err.message : out);
    rc = ev_bundle_path(fixture, "weights.safetensors", out, sizeof out, &err);
    CHECK(rc == 0 && !strcmp(out, want), "folder: a file in it (%s)", rc ? err.message : out);
    rc = ev_bundle_path("/nonexistent/bundle", NULL, out, sizeof out, &err);
    CHECK_ERR(rc, err, "/nonexistent/bundle: No such file or directory",
              "a missing bundle is named");
    rc = ev_bundle_path("", NULL, out, sizeof out, &err);
    CHECK_ERR(rc, err, "no model path given", "an empty path is refused");
    char small[8];
    rc = ev_bundle_path(fixture, NULL, small, sizeof small, &err);
    CHECK_ERR(rc, err, "path too long", "a path that does not fit is refused");
}

int main(int argc, char **argv)
{
    fixture = argc > 1 ? argv[1] : "tests/fixtures/golden/darts_v2_nrnr_g1";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    check_parse_errors();
    check_bundles();
    check_calibration();
    check_bundle_path();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        printf("  cleanup failed\n");
    return test_finish();
}
