/* gemm.h - the ONE matrix-multiply entry point. Every matmul of the model goes through lp_gemm_ex
 * (lp_gemm is its fp32 shorthand), so a distributed path (ScaLAPACK PSGEMM for tensor-parallel
 * layers) or another library can replace it in one place.
 *
 * Row-major: C[M,N] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T (trans flag 1).
 * lda/ldb/ldc are row strides in elements, so heads inside a [N, H*hd] matrix can be addressed
 * without copies. C is always fp32.
 *
 * Precision:
 *  - LP_FP32: A, B are float; cblas_sgemm (OpenBLAS, OpenMP build), which never splits K over
 *    threads, so results are bitwise the same on any thread count. Called inside an OpenMP
 *    parallel region it runs on the calling thread only. (oneDNN's fp32 matmul measured 10-50%
 *    faster on the step's shapes, but without that guarantee; it runs only fp32 packed weights.)
 *  - LP_BF16: A, B are bfloat16 (lp_bf16), products accumulate in fp32 and C is fp32: a oneDNN
 *    matmul primitive, created once per (shape, strides, transposes, beta) and cached, so a step
 *    after the first creates and allocates nothing. Must not be called inside a parallel region.
 *
 * A pre-packed weight (lp_packed, either precision) replaces B: W is copied once into oneDNN's preferred
 * blocked layout for one orientation (trans_b as packed), which runs 4-8% faster than the plain
 * layout in isolation and 15-25% faster inside a training step, and never changes for a frozen
 * layer.
 */
#ifndef LLAMAPRO_GEMM_H
#define LLAMAPRO_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { LP_FP32 = 0, LP_BF16 = 1 } lp_precision;
typedef uint16_t lp_bf16; /* the upper half of an IEEE float, round to nearest even */

typedef struct lp_packed lp_packed;

/* "fp32" / "bf16" -> precision; -1 for anything else. */
int lp_precision_parse(const char *s);
const char *lp_precision_name(lp_precision p);

/* C = alpha op(A) op(B) + beta C in precision `prec` (see above). With `packed` non-NULL (bf16)
 * B/ldb are ignored and the packed weight is used; its N, K and orientation must match. */
void lp_gemm_ex(lp_precision prec, int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
                int lda, const void *B, int ldb, const lp_packed *packed, float beta, float *C, int ldc);

/* fp32 shorthand on cblas_sgemm: small, varying shapes (attention heads, the decoder), any thread. */
void lp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);

/* A batch of products: for i in [0, batch), C_i = alpha op(A_i) op(B_i) + beta C_i with
 * X_i = X + i * stride_x elements (rows still lda/ldb/ldc apart): attention's tile products
 * (attention.c), called from inside its parallel region, each call on the calling thread alone.
 * fp32: one sgemm per matrix, the same whatever the thread count (outside a parallel region the
 * matrices are spread over the threads). bf16: one single-threaded oneDNN batched matmul; the
 * primitive is cached per shape (creation under a critical section, first step only) and each
 * thread binds its own operands, user-managed scratchpad and stream, so threads run it at once.
 * Measured against one multi-threaded batched call per diagonal over all (sequence, head) pairs
 * from the main thread (attention at the bench shape, fwd + bwd, best of 20, loaded machine):
 * 43-48 ms vs 61-73 ms on 2 threads, 32-44 vs 37-56 ms on 1 (the main-thread version also pays a
 * fork/join per product and row pass, which under load costs a time slice each: 7x slower in
 * bench). Keep the batch dense (stride_x = the matrix's rows * ld): oneDNN 2.6 then picks its
 * brgemm kernel (~195 GFLOP/s on one core for 4 x 64x64x64, loaded machine); strided batches get
 * gemm:jit (~155).
 * Not counted in lp_gemm_seconds (the caller counts it as attention). */
void lp_gemm_batch(lp_precision prec, int batch, int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const void *A, int lda, long stride_a, const void *B, int ldb, long stride_b, float beta, float *C,
                   int ldc, long stride_c);

/* Pack the weight W (float for LP_FP32, lp_bf16 for LP_BF16) for products C[M, N] = A[M, K] op(W):
 * trans = 1, op(W) = W^T with W stored [N, K] (the forward y = x W^T); trans = 0, W stored [K, N]
 * (the input gradient dx = dy W). ldw is W's row stride; M is the row count the layout is chosen
 * for (other M reuse it). Called at load time, never in a step. */
lp_packed *lp_gemm_pack(lp_precision prec, int M, int N, int K, const void *W, int ldw, int trans);
/* Pack new values of the same W (same ldw) into p: a trainable layer after an optimizer step. */
void lp_gemm_repack(lp_packed *p, const void *W);
void lp_gemm_pack_free(lp_packed *p);
size_t lp_gemm_pack_bytes(const lp_packed *p);

/* fp32 <-> bf16, round to nearest even (NaN stays NaN). dst may not alias src. */
void lp_to_bf16(lp_bf16 *dst, const float *src, size_t n);
void lp_from_bf16(float *dst, const lp_bf16 *src, size_t n);
static inline lp_bf16 lp_bf16_of(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (lp_bf16)((v.u >> 16) | 0x40); /* quiet NaN */
    return (lp_bf16)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}
static inline float lp_bf16_to_float(lp_bf16 h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

/* Seconds spent inside lp_gemm_ex since the process started (main thread's calls; a profile
 * counter for per-phase breakdowns: read it before and after a step). */
double lp_gemm_seconds(void);
/* Per bf16 GEMM shape: calls, seconds and GFLOP/s so far, one line each, to f. */
void lp_gemm_profile(FILE *f);

/* Measure this process's GEMM rate (GFLOP/s) in precision `prec` on an [M,K]x[K,N]^T product
 * (weights pre-packed, as the model's layers run), best of `reps`. */
double lp_gemm_measure_gflops_prec(lp_precision prec, int M, int N, int K, int reps);
/* The fp32 rate (lp_gemm_measure_gflops_prec(LP_FP32, ...)). */
double lp_gemm_measure_gflops(int M, int N, int K, int reps);

/* The GEMM libraries' self-description: oneDNN's version and ISA (layer GEMMs), OpenBLAS's build
 * config and the core it chose (attention). */
const char *lp_gemm_library(void);
/* The bf16 library and the instruction set it dispatches to, e.g. "oneDNN 2.6.3, ISA
 * avx512_core_bf16". On a CPU without bf16 instructions oneDNN still runs bf16 matmuls (it
 * converts to fp32 inside its avx512_core / avx2 kernels), only slower; the ISA names that. */
const char *lp_gemm_library_bf16(void);
/* Whether the CPU has native bf16 dot products (AVX512-BF16 or AMX). */
int lp_gemm_bf16_native(void);

#endif
