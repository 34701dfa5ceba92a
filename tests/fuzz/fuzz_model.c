/* fuzz_model.c: libFuzzer target for the model bundle loader: the input is split at the first
 * NUL byte into model.yaml text and weights.safetensors bytes, written to a private folder and
 * loaded with ev_model_load; the safetensors part is also parsed directly. */
#include "ev_safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void write_file(const char *name, const uint8_t *data, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/ev_fuzz_model_%d", (int)getpid());
        mkdir(dir, 0700);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t yaml_len = nul ? (size_t)(nul - data) : size;
    const uint8_t *st = nul ? nul + 1 : data + size;
    size_t st_len = size - yaml_len - (nul ? 1 : 0);
    ev_safetensors parsed;
    ev_error err;
    if (ev_safetensors_parse(st, st_len, &parsed, &err) == EV_OK)
        ev_safetensors_free(&parsed);
    write_file("model.yaml", data, yaml_len);
    write_file("weights.safetensors", st, st_len);
    ev_model *m = NULL;
    if (ev_model_load(dir, &m, &err) == EV_OK)
        ev_model_free(m);
    return 0;
}
