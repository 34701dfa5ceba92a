/* cudnn_loader.c: finds and loads libcudnn.so.9 at run time (see cudnn_loader.h). */
#include "cudnn_loader.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <glob.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define CUDNN_SONAME "libcudnn.so." EV_CUDNN_STR(CUDNN_MAJOR)
#define EV_CUDNN_STR(x) EV_CUDNN_STR2(x)
#define EV_CUDNN_STR2(x) #x

static ev_cudnn_api api;
static const ev_cudnn_api *loaded;
static char status_line[768];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Resolves every entry point from handle; false (and status_line says which) if one is missing
 * or the library is another major version than the headers we were built with. */
static bool bind_all(void *handle, const char *where)
{
#define EV_CUDNN_BIND(ret, name, params)                                                   \
    if (!(*(void **)&api.name = dlsym(handle, #name))) {                                   \
        snprintf(status_line, sizeof status_line, "cuDNN at %s lacks %s; not used", where, \
                 #name);                                                                   \
        return false;                                                                      \
    }
    EV_CUDNN_FUNCTIONS(EV_CUDNN_BIND)
#undef EV_CUDNN_BIND
    const size_t version = api.cudnnGetVersion();
    if (version / 10000 != CUDNN_MAJOR) {
        snprintf(status_line, sizeof status_line,
                 "cuDNN at %s is version %zu, this build needs major version %d; not used", where,
                 version, CUDNN_MAJOR);
        return false;
    }
    snprintf(api.path, sizeof api.path, "%s", where);
    snprintf(status_line, sizeof status_line, "cuDNN %zu.%zu.%zu from %s", version / 10000,
             version / 100 % 100, version % 100, where);
    return true;
}

typedef enum { OPENED, NOT_THERE, UNUSABLE } open_result;

static open_result open_library(const char *file)
{
    void *handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return NOT_THERE;
    if (!bind_all(handle, file)) {
        dlclose(handle);
        return UNUSABLE;
    }
    loaded = &api; /* the handle stays open for the life of the process */
    return OPENED;
}

/* true once a library is loaded; a library that is there but unusable (status_line says why)
 * does not stop the search */
static bool try_open(const char *file) { return open_library(file) == OPENED; }

/* the folders where the NVIDIA Python wheels (PyTorch's cuDNN among them) put the library */
static bool try_wheels(void)
{
    const char *home = getenv("HOME");
    char user[512] = "";
    if (home && *home)
        snprintf(user, sizeof user, "%s/.local", home);
    const char *prefixes[] = {getenv("VIRTUAL_ENV"), getenv("CONDA_PREFIX"), "/usr/local", "/usr",
                              "/opt/conda", user};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (!prefixes[i] || !*prefixes[i])
            continue;
        char pattern[1200];
        snprintf(pattern, sizeof pattern,
                 "%s/lib/python3*/*-packages/nvidia/{cudnn,cu%d}/lib/" CUDNN_SONAME, prefixes[i],
                 CUDART_VERSION / 1000);
        glob_t found;
        bool loaded_one = false;
        if (glob(pattern, GLOB_BRACE, NULL, &found) == 0)
            for (size_t k = 0; k < found.gl_pathc && !loaded_one; k++)
                loaded_one = try_open(found.gl_pathv[k]);
        globfree(&found);
        if (loaded_one)
            return true;
    }
    return false;
}

static void load_once(void)
{
    snprintf(status_line, sizeof status_line,
             "cuDNN not found (set EV_CUDNN_LIBRARY to a %s, or add its folder to "
             "LD_LIBRARY_PATH); every convolution runs on the backend's own kernels",
             CUDNN_SONAME);
    const char *explicit_file = getenv("EV_CUDNN_LIBRARY");
    if (explicit_file && *explicit_file) {
        if (open_library(explicit_file) == NOT_THERE)
            snprintf(status_line, sizeof status_line,
                     "cuDNN: EV_CUDNN_LIBRARY=%s cannot be loaded (%s); own kernels only",
                     explicit_file, dlerror());
        return;
    }
    if (try_open(CUDNN_SONAME))
        return;
    static const char *toolkit[] = {"/usr/local/cuda/lib64/" CUDNN_SONAME,
                                    "/usr/local/cuda/lib/" CUDNN_SONAME,
                                    "/usr/lib/x86_64-linux-gnu/" CUDNN_SONAME};
    for (size_t i = 0; i < sizeof toolkit / sizeof toolkit[0]; i++)
        if (try_open(toolkit[i]))
            return;
    try_wheels();
}

const ev_cudnn_api *ev_cudnn_get(void)
{
    pthread_once(&once, load_once);
    return loaded;
}

const char *ev_cudnn_status(void)
{
    pthread_once(&once, load_once);
    return status_line;
}
