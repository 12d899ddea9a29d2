/* rmsnorm_bf16.c - RMSNorm forward writing its output in bf16 for the next GEMM, so precision
 * bf16 needs no separate conversion pass. The statistics are lp_rmsnorm_forward's (rmsnorm.c):
 * a sum of squares in double per row, rstd in fp32 (the backward pass reads it); only the
 * normalised output is rounded, once. */
#include <math.h>

#include "llamapro/kernels.h"

void lp_rmsnorm_forward_bf16(lp_bf16 *y, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        lp_bf16 *yr = y + (size_t)n * C;
        float r = lp_rmsnorm_rstd(xr, C, eps);
        rstd[n] = r;
#pragma omp simd
        for (int c = 0; c < C; c++) yr[c] = lp_bf16_of(xr[c] * r * w[c]);
    }
}
