/* kernels.h - the non-GEMM layers of a LLaMA block, each a forward/backward pair over flat float
 * arrays. N = B*T rows; shapes are given per argument. Backward functions ADD into weight
 * gradients (accumulation over microbatches) and OVERWRITE input gradients. All are OpenMP-
 * parallel over rows (or heads) and allocate nothing.
 */
#ifndef LLAMAPRO_KERNELS_H
#define LLAMAPRO_KERNELS_H

#include "llamapro/gemm.h"  /* lp_bf16 */
#include "llamapro/model.h" /* lp_config */

/* ---- embedding ---------------------------------------------------------------------------- */
/* out[N,C] = table[tokens[n], :]. */
void lp_embedding_forward(float *out, const int *tokens, const float *table, int N, int C);
/* dtable[tokens[n], :] += dout[n, :] (serial: rows of one token would race). */
void lp_embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int C);

/* ---- RMSNorm: y = x / sqrt(mean(x^2) + eps) * w --------------------------------------------- */
/* y[N,C], rstd[N] saved for backward. */
void lp_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int C, float eps);
/* The same statistics, writing the output in fp32 (y) and/or bf16 (yh, for a bf16 GEMM; rounded
 * once from the fp32 value), either may be NULL; xcopy (may be NULL) gets a copy of x, for the
 * residual that a beta = 1 GEMM adds to (block.c). */
void lp_rmsnorm_forward_fused(float *y, lp_bf16 *yh, float *xcopy, float *rstd, const float *x, const float *w,
                              int N, int C, float eps);
/* Input gradient: dx[N,C] = res + rmsnorm'(dy), res the residual gradient that bypasses the norm
 * (NULL: none). dxh (may be NULL) gets bf16(dx) in the same pass, for a bf16 GEMM. */
void lp_rmsnorm_backward_input(float *dx, lp_bf16 *dxh, const float *res, const float *dy, const float *x,
                               const float *w, const float *rstd, int N, int C);
/* Weight gradient: dw[C] += sum_n dy[n,:] * x[n,:] * rstd[n]. */
void lp_rmsnorm_backward_weight(float *dw, const float *dy, const float *x, const float *rstd, int N, int C);

/* ---- rotary embedding on interleaved pairs (0,1),(2,3)... ------------------------------------ */
/* Rotate (sign = +1) or rotate back (sign = -1, the backward of the rotation) the first
 * n_heads*hd columns of each row of x (row stride ld), positions t = row % T. */
void lp_rope_apply(float *x, int ld, int N, int T, int n_heads, int hd, const float *cos_t,
                   const float *sin_t, int sign);
/* The same rotation written to y [N, ld] in bf16 with the other columns of each row converted as
 * they are: the backward's dqkv -> its bf16 GEMM input in one pass (x is left unchanged). */
void lp_rope_apply_to_bf16(lp_bf16 *y, const float *x, int ld, int N, int T, int n_heads, int hd, const float *cos_t,
                           const float *sin_t, int sign);

/* ---- causal grouped-query attention ---------------------------------------------------------- */
/* Flash-style (attention.c): no [T, T] matrix is stored. qkv[N, (H+2KV)*hd] holds q | k | v per
 * row (after RoPE); y[N, H*hd]. window > 0: query t sees keys t - window < s <= t only (Mistral's
 * sliding window); 0: all s <= t. Query head h reads kv head h / (H/KV). The forward leaves the
 * rows' log-sum-exp in lse[lp_attention_lse_floats] for the backward, which recomputes the
 * probabilities from q, k and lse. ws: lp_attention_ws_floats(..., backward) floats of scratch
 * (any contents; shared by all layers). bf16: q, k, v, dy and the probabilities go to bf16 for
 * the products (fp32 accumulation); statistics and accumulators stay fp32. */
size_t lp_attention_lse_floats(int B, int T, int H);
size_t lp_attention_ws_floats(int B, int T, int H, int KV, int hd, int backward);
void lp_attention_forward(lp_precision prec, float *y, float *lse, float *ws, const float *qkv, int B, int T, int H, int KV,
                          int hd, int window);
/* dqkv[N, (H+2KV)*hd] (overwritten) from dy[N, H*hd], the forward's output y and lse; the same
 * window as the forward. */
void lp_attention_backward(lp_precision prec, float *dqkv, float *ws, const float *dy, const float *y, const float *lse,
                           const float *qkv, int B, int T, int H, int KV, int hd, int window);

/* ---- SwiGLU: g = silu(h1) * h3, with h13[N, 2F] = [h1 | h3] per row -------------------------- */
void lp_swiglu_forward(float *g, const float *h13, int N, int F);
void lp_swiglu_backward(float *dh13, const float *dg, const float *h13, int N, int F);
/* The same math writing bf16 (precision bf16: the outputs only feed GEMMs). */
void lp_swiglu_forward_bf16(lp_bf16 *g, const float *h13, int N, int F);
void lp_swiglu_backward_bf16(lp_bf16 *dh13, const float *dg, const float *h13, int N, int F);

/* ---- softmax cross-entropy over V classes ---------------------------------------------------- */
/* losses[n] = logsumexp(logits[n]) - logits[n, targets[n]]; rows with target < 0 get 0 and are
 * not counted. lse[n] (may be NULL) saves logsumexp(logits[n]) for the backward. Returns the sum
 * of losses; *count gets the number of counted rows. */
double lp_crossentropy_forward(float *losses, float *lse, const float *logits, const int *targets, int N, int V,
                               long *count);
/* In place: logits[n,:] becomes (softmax - onehot(target)) * scale (0 for ignored rows), softmax
 * from the forward's lse. */
void lp_crossentropy_backward(float *logits, const float *lse, const int *targets, int N, int V, float scale);
/* The same written to dlogits in bf16 (the head's GEMMs read nothing else); logits stay. */
void lp_crossentropy_backward_bf16(lp_bf16 *dlogits, const float *logits, const float *lse, const int *targets, int N,
                                   int V, float scale);

/* ---- family options (one kernel set, options as parameters) -------------------------------- */
/* RoPE cos/sin tables [T, hd/2] for positions 0..T-1 of config c: its head_dim, rope_theta and
 * rope_scaling (lp_rope_inv_freq). */
void lp_rope_table_config(float *cos_t, float *sin_t, int T, const lp_config *c);
/* Qwen3 q/k norms, in place on qkv [N, QKV] (q heads [0,H), k heads [H,H+KV), hd each): forward
 * saves the pre-norm values xs [N, (H+KV)*hd] and rstd [N, H+KV]; backward turns the gradient of
 * the normed q/k in dqkv into that of the pre-norm ones, in place, and adds the weight gradients
 * into dqw, dkw [hd] unless they are NULL (frozen layer). */
void lp_qknorm_forward(float *qkv, float *xs, float *rstd, const float *qw, const float *kw, int N, int H, int KV,
                       int hd, int QKV, float eps);
void lp_qknorm_backward(float *dqkv, float *dqw, float *dkw, const float *xs, const float *rstd, const float *qw,
                        const float *kw, int N, int H, int KV, int hd, int QKV);
/* x[n, 0:C] += b (row stride ld); db[C] += sum over n of dx[n, 0:C]. Qwen2's q/k/v biases. */
void lp_bias_forward(float *x, const float *b, int N, int C, int ld);
void lp_bias_backward(float *db, const float *dx, int N, int C, int ld);

#endif
