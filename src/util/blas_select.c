/* blas_select.c - see blas_select.h. */
#include "llamapro/blas_select.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define REEXEC_MARK "LLAMAPRO_BLAS_DETECTED"

static int rank_of(const char *core) {
    /* kernel generations OpenBLAS can run on x86-64, weakest first */
    static const char *order[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom",
                                  "Sandybridge", "Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (!strcasecmp(core, order[i])) return (int)i;
    return 100; /* unknown names: assume OpenBLAS knows best */
}

static const char *best_supported(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

void lp_blas_select(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return; /* the user's or the site's choice stands */
    const char *got = openblas_get_corename();
    const char *want = best_supported();
    if (!want || rank_of(got) >= rank_of(want)) return;
    char detected[64];
    snprintf(detected, sizeof detected, "%s", got);
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv(REEXEC_MARK, detected, 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): carry on with the generic kernels */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(REEXEC_MARK);
}

const char *lp_blas_selection(void) {
    static char buf[160];
    const char *mark = getenv(REEXEC_MARK);
    if (mark)
        snprintf(buf, sizeof buf, "%s (chosen by llamapro: OpenBLAS detected %s)", openblas_get_corename(), mark);
    else if (getenv("OPENBLAS_CORETYPE"))
        snprintf(buf, sizeof buf, "%s (OPENBLAS_CORETYPE=%s)", openblas_get_corename(), getenv("OPENBLAS_CORETYPE"));
    else
        snprintf(buf, sizeof buf, "%s (detected by OpenBLAS)", openblas_get_corename());
    return buf;
}
