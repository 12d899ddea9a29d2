/* tp_shard.h - a tensor-parallel rank's shard of the model (the model layer's part of tp.h).
 *
 * A rank of a tp group holds, of every held layer block, its H/tp query heads, KV/tp kv heads and
 * F/tp hidden units (and the q/k/v biases of those heads), laid out as model.h's block with those
 * widths (lp_tp_layer_offset); RMSNorm weights and per-head q/k norms are replicated.
 * lp_layer_linear runs the layer's products on the shard and completes those whose inner dimension
 * is split with one all-reduce over the group; model files read and write full tensors through
 * lp_tp_tensor_gather / lp_tp_tensor_take. The group itself is made in tp.h.
 */
#ifndef LLAMAPRO_TP_SHARD_H
#define LLAMAPRO_TP_SHARD_H

#include <mpi.h>
#include <stddef.h>

#include "llamapro/model.h"

typedef struct lp_tp {
    int tp, rank;      /* group size, this rank's place */
    MPI_Comm comm;     /* the layout's tp_comm (not owned) */
    int blacs;         /* BLACS system handle of comm */
    int ctxt;          /* BLACS context: a tp x 1 process grid over comm */
} lp_tp;

/* Group size, 1 for NULL. */
static inline int lp_tp_size(const lp_tp *t) { return t ? t->tp : 1; }

/* Offset of layer tensor `kind` in a rank's local layer block, and that block's size. tp = 1 gives
 * model.h's layout. */
size_t lp_tp_layer_offset(const lp_config *c, int tp, int kind);
size_t lp_tp_layer_numel(const lp_config *c, int tp);
/* Copy rank r's shard of a whole layer block `full` into `local` (to_local = 1) or back into its
 * place in `full` (to_local = 0; replicated norms are copied too). */
void lp_tp_layer_map(const lp_config *c, int tp, int r, float *full, float *local, int to_local);

/* Whether tensor t is split over the group (a layer matrix or q/k/v bias) rather than replicated
 * (RMSNorm weights, q/k norms). */
static inline int lp_tp_sharded(const lp_tensor *t) {
    return t->layer >= 0 && t->kind != LP_ATTN_NORM && t->kind != LP_MLP_NORM && t->kind != LP_Q_NORM &&
           t->kind != LP_K_NORM;
}

/* The shapes one rank of a group of tp computes with: c with n_heads, n_kv_heads and hidden_dim
 * divided by tp and head_dim made explicit (activation buffers and their sizes, forward.h). Not a
 * model's config: names, tensor shapes and files keep c. */
lp_config lp_tp_config(const lp_config *c, int tp);
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
/* Seconds spent in lp_tp_allreduce since the process started (a profile counter, as
 * lp_gemm_seconds: read it before and after a step). */
double lp_tp_allreduce_seconds(void);
/* Sum over the group the gradients of the replicated tensors that each rank computes from its own
 * heads only (Qwen3's q/k norms: a rank's share is its local heads' contribution), so every rank
 * holds the full gradient of the replicated weight; once per step, after the backward pass and
 * before the gradient norm. The RMSNorm weights need none (their inputs are whole on every rank).
 * Collective over the group; no-op for tp = 1. */
void lp_tp_sum_replicated_grads(const lp_model *m);

/* Checkpoints and model files hold full tensors by global name. For a sharded tensor ts (data or
 * any array of its layout, e.g. an AdamW moment): lp_tp_tensor_gather assembles the full
 * [shape[0], shape[1]] tensor on group rank 0 from every rank's shard (collective over the group;
 * full may be NULL elsewhere); lp_tp_tensor_take cuts this rank's shard out of a full tensor. */
void lp_tp_tensor_gather(const lp_tp *t, const lp_tensor *ts, const float *shard, float *full);
void lp_tp_tensor_take(const lp_tp *t, const lp_tensor *ts, const float *full, float *shard);

/* Keep only this rank's shard of every held layer (parameters; gradients reallocated at shard
 * size when the layer had any) and point the tensor table there; sets m->tp = t. Call after the
 * trainable flags are set and before the optimizer is made. Not collective. */
void lp_tp_shard(lp_model *m, const lp_tp *t);

#endif
