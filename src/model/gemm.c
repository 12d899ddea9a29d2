/* gemm.c - lp_gemm on cblas_sgemm (OpenBLAS, OpenMP build). */
#include "llamapro/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>

#include "llamapro/blas_select.h"
#include "llamapro/check.h"

void lp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

double lp_gemm_measure_gflops(int M, int N, int K, int reps) {
    float *a = lp_calloc((size_t)M * K, sizeof(float), "allocating the sgemm probe");
    float *b = lp_calloc((size_t)N * K, sizeof(float), "allocating the sgemm probe");
    float *c = lp_calloc((size_t)M * N, sizeof(float), "allocating the sgemm probe");
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)((i * 7) % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)((i * 5) % 11) * 0.01f;
    lp_gemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N); /* warm-up: thread pool, pages */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        lp_gemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double dt = omp_get_wtime() - t0;
        if (dt < best) best = dt;
    }
    lp_free(a);
    lp_free(b);
    lp_free(c);
    return 2.0 * M * N * (double)K / best * 1e-9;
}

const char *lp_gemm_library(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s; kernels %s; %d threads", openblas_get_config(), lp_blas_selection(),
             openblas_get_num_threads());
    return buf;
}
