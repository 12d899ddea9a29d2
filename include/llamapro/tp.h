/* tp.h - tensor parallelism inside a pipeline stage (Megatron-LM style) on a BLACS grid.
 *
 * The tp ranks of one stage replica (layout tp_comm, partition.h) split every held block:
 *   attention by heads: rank r holds query heads [r H/tp, (r+1) H/tp) and kv heads
 *     [r KV/tp, (r+1) KV/tp) (the kv heads its query heads read: group = H/KV is unchanged), so
 *     wq, wk, wv keep those row blocks and wo the matching input columns;
 *   MLP by the hidden dimension: w1 and w3 keep rows [r F/tp, (r+1) F/tp), w2 those input columns;
 *   attn_norm, mlp_norm, the embedding, the final norm and the LM head are replicated.
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

typedef struct lp_tp {
    int tp, rank;      /* group size, this rank's place */
    MPI_Comm comm;     /* the layout's tp_comm (not owned) */
    int blacs;         /* BLACS system handle of comm */
    int ctxt;          /* BLACS context: a tp x 1 process grid over comm */
} lp_tp;

/* Refuse a tp that does not divide the model's n_heads, n_kv_heads and hidden_dim: user error on
 * every rank, one line naming [parallel] tp and the values that would work. Reads config only. */
void lp_tp_check(const lp_config *c, int tp, const char *source);

/* BLACS context over comm (collective over comm). */
void lp_tp_init(lp_tp *t, MPI_Comm comm);
void lp_tp_free(lp_tp *t);

/* Group size, 1 for NULL. */
static inline int lp_tp_size(const lp_tp *t) { return t ? t->tp : 1; }

/* Offset of layer tensor `kind` in a rank's local layer block, and that block's size. tp = 1 gives
 * model.h's layout. */
size_t lp_tp_layer_offset(const lp_config *c, int tp, int kind);
size_t lp_tp_layer_numel(const lp_config *c, int tp);
/* Copy rank r's shard of a whole layer block `full` into `local` (to_local = 1) or back into its
 * place in `full` (to_local = 0; replicated norms are copied too). */
void lp_tp_layer_map(const lp_config *c, int tp, int r, float *full, float *local, int to_local);

/* Whether tensor t is split over the group (a layer matrix) rather than replicated. */
static inline int lp_tp_sharded(const lp_tensor *t) {
    return t->layer >= 0 && t->kind != LP_ATTN_NORM && t->kind != LP_MLP_NORM;
}

/* Keep only this rank's shard of every held layer (parameters; gradients reallocated at shard
 * size when the layer had any) and point the tensor table there; sets m->tp = t. Call after the
 * trainable flags are set and before the optimizer is made. Not collective. */
void lp_tp_shard(lp_model *m, const lp_tp *t);

/* Checkpoints and model files hold full tensors by global name. For a sharded tensor ts (data or
 * any array of its layout, e.g. an AdamW moment): lp_tp_tensor_gather assembles the full
 * [shape[0], shape[1]] tensor on group rank 0 from every rank's shard (collective over the group;
 * full may be NULL elsewhere); lp_tp_tensor_take cuts this rank's shard out of a full tensor. */
void lp_tp_tensor_gather(const lp_tp *t, const lp_tensor *ts, const float *shard, float *full);
void lp_tp_tensor_take(const lp_tp *t, const lp_tensor *ts, const float *full, float *shard);

/* Widths of layer weight group g (LP_G_*) in a rank's shard: lp_group_dims with the split
 * dimension divided by tp. */
void lp_tp_group_dims(const lp_config *c, int tp, int g, int *in, int *out);
/* Whether the product of group g splits its inner dimension over the group (so its result is a
 * partial sum): wo and w2 forward (y = x W^T), wq|wk|wv and w1|w3 input gradient (dx = dy W). */
static inline int lp_tp_partial(int g, int backward) {
    return backward ? g == LP_G_QKV || g == LP_G_W13 : g == LP_G_WO || g == LP_G_W2;
}
/* Complete a partial sum y[n] computed with beta_r = lp_tp_beta(t, beta) on every rank: one
 * in-place MPI_Allreduce over the group (C = beta C + sum_r partial_r). No-op for tp = 1. */
static inline float lp_tp_beta(const lp_tp *t, float beta) { return t && t->tp > 1 && t->rank > 0 ? 0.0f : beta; }
void lp_tp_allreduce(const lp_tp *t, float *y, size_t n);

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
