/* rmsnorm.c - RMSNorm forward and backward. Sums are taken in double: C is small (48..8192) and
 * the reference is float64, so this keeps the one-pass statistics exact at no real cost.
 * The fused forms carry the neighbouring passes of a block (block.c) along while a row is in
 * cache: the residual copy before a beta = 1 GEMM and the bf16 form of a GEMM input. Both are
 * exact (a copy, one rounding of the fp32 value), so fused and separate passes give the same bits. */
#include <math.h>
#include <string.h>

#include "llamapro/kernels.h"

/* Row sums in double over LANES interleaved partial sums, added up in a fixed order at the end:
 * independent adds that vectorise and pipeline (one running sum is a chain of dependent adds, 4
 * cycles each: ~25 ms of the bench's step); the order depends on C only, not on the threads. */
enum { LANES = 16 };

/* sum_c x[c]^2 */
static double row_sumsq(const float *x, int C) {
    double acc[LANES] = {0}, s = 0;
    int c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += (double)x[c + j] * x[c + j];
    for (; c < C; c++) s += (double)x[c] * x[c];
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

/* sum_c dy[c] w[c] x[c] */
static double row_dot3(const float *dy, const float *w, const float *x, int C) {
    double acc[LANES] = {0}, s = 0;
    int c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int j = 0; j < LANES; j++) acc[j] += (double)dy[c + j] * w[c + j] * x[c + j];
    for (; c < C; c++) s += (double)dy[c] * w[c] * x[c];
    for (int j = 0; j < LANES; j++) s += acc[j];
    return s;
}

/* 1/sqrt(mean(x^2) + eps) of one row of C values */
static float row_rstd(const float *x, int C, float eps) { return (float)(1.0 / sqrt(row_sumsq(x, C) / C + (double)eps)); }

void lp_rmsnorm_forward_fused(float *y, lp_bf16 *yh, float *xcopy, float *rstd, const float *x, const float *w,
                              int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float r = row_rstd(xr, C, eps);
        rstd[n] = r;
        if (y) {
            float *yr = y + (size_t)n * C;
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = xr[c] * r * w[c];
        }
        if (yh) {
            lp_bf16 *yr = yh + (size_t)n * C;
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = lp_bf16_of(xr[c] * r * w[c]);
        }
        if (xcopy) memcpy(xcopy + (size_t)n * C, xr, sizeof(float) * C);
    }
}

void lp_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int C, float eps) {
    lp_rmsnorm_forward_fused(y, NULL, NULL, rstd, x, w, N, C, eps);
}

void lp_rmsnorm_backward_input(float *dx, lp_bf16 *dxh, const float *res, const float *dy, const float *x,
                               const float *w, const float *rstd, int N, int C) {
    /* dx = res + rstd * (dy*w - xhat * mean(dy*w*xhat)),  xhat = x * rstd */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float r = rstd[n];
        float m = (float)(row_dot3(dyr, w, xr, C) * r / C);
        if (res) {
            const float *rr = res + (size_t)n * C;
#pragma omp simd
            for (int c = 0; c < C; c++) dxr[c] = rr[c] + r * (dyr[c] * w[c] - xr[c] * r * m);
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) dxr[c] = r * (dyr[c] * w[c] - xr[c] * r * m);
        }
        if (dxh) {
            lp_bf16 *hr = dxh + (size_t)n * C;
#pragma omp simd
            for (int c = 0; c < C; c++) hr[c] = lp_bf16_of(dxr[c]);
        }
    }
}

void lp_rmsnorm_backward_weight(float *dw, const float *dy, const float *x, const float *rstd, int N, int C) {
    /* Columns in blocks of 16 per task: every thread reads whole cache lines of each row. Each
     * column is summed over rows 0..N-1 in order by one task, whatever thread runs it, so the
     * gradient has the same bits for any thread count (README "Thread-count invariance"). */
    enum { BLK = 16 };
    int nblk = (C + BLK - 1) / BLK;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * BLK, c1 = c0 + BLK < C ? c0 + BLK : C;
        double acc[BLK];
        memset(acc, 0, sizeof acc);
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
            float r = rstd[n];
            for (int c = c0; c < c1; c++) acc[c - c0] += (double)(dyr[c] * xr[c] * r);
        }
        for (int c = c0; c < c1; c++) dw[c] += (float)acc[c - c0];
    }
}
