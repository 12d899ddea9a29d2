/* blas_select.h - choosing OpenBLAS's kernels on processors it does not recognise.
 *
 * OpenBLAS (DYNAMIC_ARCH) picks its kernels once, in a load-time constructor, from CPUID or from
 * OPENBLAS_CORETYPE. Debian's 0.3.21 does not know recent Xeons and falls back to generic SSE3
 * ("Prescott") kernels: ~30 GFLOP/s instead of ~250 on 2 cores here. When OPENBLAS_CORETYPE is
 * unset and the chosen core is weaker than the CPU's vector ISA, llamapro re-executes itself once
 * with OPENBLAS_CORETYPE set to the best core the CPU supports (AVX-512: SkylakeX; AVX2+FMA:
 * Haswell). A value set by the user or the site is never changed.
 */
#ifndef LLAMAPRO_BLAS_SELECT_H
#define LLAMAPRO_BLAS_SELECT_H

/* Call first in main, before MPI_Init. Returns only if no re-exec was needed (or it failed). */
void lp_blas_select(char **argv);

/* What was decided, for logs: e.g. "SkylakeX (chosen by llamapro: OpenBLAS detected Prescott)". */
const char *lp_blas_selection(void);

#endif
