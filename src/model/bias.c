/* bias.c - a bias added to the first C columns of each row (Qwen2's q/k/v projection biases, on
 * the fused projection with row stride ld), and its gradient. */
#include <stddef.h>

#include "llamapro/kernels.h"

void lp_bias_forward(float *x, const float *b, int N, int C, int ld) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *r = x + (size_t)n * ld;
#pragma omp simd
        for (int c = 0; c < C; c++) r[c] += b[c];
    }
}

void lp_bias_backward(float *db, const float *dx, int N, int C, int ld) {
    /* columns in blocks so every task reads whole cache lines of each row; sums in double */
    enum { BLK = 16 };
    int nblk = (C + BLK - 1) / BLK;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nblk; k++) {
        int c0 = k * BLK, c1 = c0 + BLK < C ? c0 + BLK : C;
        double acc[BLK] = {0};
        for (int n = 0; n < N; n++)
            for (int c = c0; c < c1; c++) acc[c - c0] += dx[(size_t)n * ld + c];
        for (int c = c0; c < c1; c++) db[c] += (float)acc[c - c0];
    }
}
