/* tp.h - tensor parallelism inside a pipeline stage (Megatron-LM style) on a BLACS grid.
 *
 * The tp ranks of one stage replica (layout tp_comm, partition.h) split every held block:
 *   attention by heads: rank r holds query heads [r H/tp, (r+1) H/tp) and kv heads
 *     [r KV/tp, (r+1) KV/tp) (the kv heads its query heads read: group = H/KV is unchanged), so
 *     wq, wk, wv keep those row blocks and wo the matching input columns;
 *   MLP by the hidden dimension: w1 and w3 keep rows [r F/tp, (r+1) F/tp), w2 those input columns;
 *   q/k/v biases (Qwen2) go with their heads;
 *   attn_norm, mlp_norm, the per-head q/k norms (Qwen3: one head_dim vector shared by all heads;
 *   each rank's gradient covers its heads, summed over the group once a step), the embedding, the
 *   final norm and the LM head are replicated.
 * A rank's layer block has the layout of model.h with H/tp, KV/tp, F/tp in place of H, KV, F
 * (lp_tp_layer_offset); gradients and AdamW moments follow the same shards, so a rank holds about
 * 1/tp of each block's weights, gradients and optimizer state. The tensor table's data, grad and
 * numel point at the local shard; shape stays the global shape (names and shapes are global).
 *
 * The block then runs the tp = 1 code on its local heads and hidden units; the residual stream,
 * RMSNorm, RoPE and softmax are local and replicated. The products whose inner dimension is split
 * (wo and w2 forward; the input gradients through w13 and wqkv backward) give partial sums that
 * one all-reduce over tp_comm completes (lp_layer_linear in the model's precision, or
 * lp_tp_gemm_sum): two per block forward, two backward.
 * Weight gradients need no communication.
 *
 * Two implementations of that distributed product are kept and measured (lp_tp_measure):
 * PBLAS psgemm on array descriptors over a tp x 1 BLACS grid made from tp_comm (the split inner
 * dimension is the row dimension of both column-major operands, so the grid is tp x 1; the result
 * comes back row-block distributed and is all-gathered), and a local sgemm through lp_gemm plus
 * one MPI_Allreduce. The second is faster here (README, "Tensor parallelism") and is the one used.
 */
#ifndef LLAMAPRO_TP_H
#define LLAMAPRO_TP_H

#include <mpi.h>
#include <stddef.h>

#include "llamapro/model.h"
#include "llamapro/tp_shard.h"


/* Refuse a tp that does not divide the model's n_heads, n_kv_heads and hidden_dim: user error on
 * every rank, one line naming [parallel] tp and the values that would work. Reads config only. */
void lp_tp_check(const lp_config *c, int tp, const char *source);

/* BLACS context over comm (collective over comm). */
void lp_tp_init(lp_tp *t, MPI_Comm comm);
void lp_tp_free(lp_tp *t);

/* The distributed product: C[M,N] = beta * C + sum over the group of A_r[M,K] op(B_r) with
 * op(B) = B[N,K]^T (trans_b) or B[K,N]; K is each rank's slice of the inner dimension. Local
 * lp_gemm on rank 0 with beta, on the others with 0, then one in-place MPI_Allreduce (C must be
 * contiguous: ldc == N). t == NULL or tp == 1: plain lp_gemm. Collective over t->comm. */
void lp_tp_gemm_sum(const lp_tp *t, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

/* The same product (trans_b = 1, beta = 0) through PBLAS psgemm: descriptors of the global
 * operands over the BLACS grid, the result all-gathered into C. scratch holds 2 x ceil(N/tp) x
 * tp x M floats. Collective over t->comm. */
void lp_tp_gemm_sum_pblas(const lp_tp *t, int M, int N, int K, const float *A, const float *B, float *C, float *scratch);

/* Time both variants on an [M, N, K per rank] product (best of reps, every rank at once) into
 * seconds[0] (lp_tp_gemm_sum) and seconds[1] (PBLAS); returns the largest relative difference
 * between their results. Collective. */
double lp_tp_measure(const lp_tp *t, int M, int N, int K, int reps, double seconds[2]);

#endif
