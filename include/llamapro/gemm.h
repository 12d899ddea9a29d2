/* gemm.h - the ONE matrix-multiply entry point. Every matmul of the model goes through lp_gemm,
 * so a distributed path (ScaLAPACK PSGEMM for tensor-parallel layers) can replace it in one place.
 *
 * Row-major: C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T (trans flag 1).
 * lda/ldb/ldc are row strides in elements, so heads inside a [N, H*hd] matrix can be addressed
 * without copies. Called inside an OpenMP parallel region it runs on the calling thread only
 * (OpenBLAS's OpenMP build does not nest).
 */
#ifndef LLAMAPRO_GEMM_H
#define LLAMAPRO_GEMM_H

void lp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* Measure this process's sgemm rate (GFLOP/s) on an [M,K]x[K,N]^T product, best of `reps`. */
double lp_gemm_measure_gflops(int M, int N, int K, int reps);

/* The BLAS library's self-description (OpenBLAS: build config and the core it chose). */
const char *lp_gemm_library(void);

#endif
