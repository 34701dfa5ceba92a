/* ev_isa.h: the one instruction-set selector (cpu/cpu_dispatch.c), for inference and training
 * alike: which vector sets this build and machine run, and the best of them capped by the
 * environment variable EV_CPU_ISA (generic, avx2 or avx512; anything else caps nothing). The
 * cpu backend picks its kernel table by it, and so does search/'s training executor. */
#ifndef EV_ISA_H
#define EV_ISA_H

#include <stdbool.h>

typedef enum ev_cpu_isa {
    EV_CPU_ISA_GENERIC = 0, /* portable C */
    EV_CPU_ISA_AVX2,        /* AVX2 + FMA */
    EV_CPU_ISA_AVX512,      /* AVX-512 F + VL (and AVX2 + FMA) */
    EV_CPU_NUM_ISA
} ev_cpu_isa;

/* Whether this build and machine run the set (generic always does). */
bool ev_cpu_isa_supported(ev_cpu_isa isa);
/* The best set this machine runs, at most EV_CPU_ISA's. A user of a narrower table (training
 * has no AVX-512 kernels) takes its best set at or below this one. */
ev_cpu_isa ev_cpu_isa_best(void);

#endif
