/* backend_none.c: the backend hooks for builds without the cpu/cuda backends. */
#include "ev_private.h"

#ifndef EV_HAVE_CPU_BACKEND
const ev_backend_vtable *ev_backend_cpu_vtable(void) { return NULL; }
#endif

#ifndef EV_HAVE_CUDA_BACKEND
const ev_backend_vtable *ev_backend_cuda_vtable(void) { return NULL; }
int ev_cuda_device_count(void) { return 0; }
#endif
