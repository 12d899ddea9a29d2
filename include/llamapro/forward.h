/* forward.h - the transformer's forward and backward passes over activation buffers allocated
 * once (lp_acts), never inside a step.
 *
 * Backward is split per layer into an input-gradient call and a weight-gradient call:
 *  - a frozen layer runs only lp_block_backward_input;
 *  - a layer before the first trainable one runs no backward at all (and keeps no activations:
 *    all such layers share one activation slot);
 *  - lp_block_backward_weight(l) reads the scratch left by lp_block_backward_input(l), so it must
 *    run before the input-gradient call of the next layer.
 */
#ifndef LLAMAPRO_FORWARD_H
#define LLAMAPRO_FORWARD_H

#include "llamapro/model.h"

/* Activations of one layer for N = B*T rows. */
typedef struct {
    float *ln1;   /* [N, C]   attn_norm(x) */
    float *rstd1; /* [N] */
    float *qkv;   /* [N, QKV] q|k|v after RoPE, QKV = (H + 2KV) * hd */
    float *lse;   /* [lp_attention_lse_floats] attention rows' log-sum-exp (kernels.h) */
    float *atty;  /* [N, H*hd] attention output before wo */
    float *xmid;  /* [N, C]   x + attention */
    float *ln2;   /* [N, C]   mlp_norm(xmid) */
    float *rstd2; /* [N] */
    float *h13;   /* [N, 2F]  w1 x | w3 x */
    float *hg;    /* [N, F]   silu(w1 x) * w3 x */
    /* precision bf16: the GEMM inputs in bf16. ln1, ln2 and hg are then bf16 only (their fp32
     * buffers are NULL): nothing but GEMMs reads them. */
    lp_bf16 *ln1h, *attyh, *ln2h, *hgh;
    float *qkn_x;    /* qk_norm: [N, (H+KV)*hd] q and k before their norms, else NULL */
    float *qkn_rstd; /* qk_norm: [N, H+KV] */
} lp_layer_acts;

typedef struct {
    int B, T;              /* capacity: a pass may use any B*T <= B*T capacity with T <= this T */
    int l0, l1;            /* layers [l0, l1) of the model this holds activations for */
    int head;              /* final norm / logits / loss buffers present (the model holds the head) */
    int shared_scratch;    /* backward scratch borrowed from another lp_acts (not freed here) */
    int cur_B, cur_T;      /* shape of the last forward pass */
    int first_bwd;         /* layers < first_bwd share one slot and get no backward */
    lp_layer_acts *slots;  /* one slot shared by held layers < first_bwd (when there are any), then
                            * one per held layer >= first_bwd */
    int n_slots;
    float *resid;          /* [(l1-l0+1), N, C] residual stream: row l-l0 is the input of layer l */
    float *lnf, *rstdf;    /* final norm output [N, C], [N]   (head only) */
    float *logits;         /* [N, V]; after backward it holds dlogits in fp32 (bf16: dlogitsh does) (head only) */
    float *losses;         /* [N] per-position loss (head only) */
    float *lse;            /* [N] logsumexp of each logits row, for the backward (head only) */
    float *rope_cos, *rope_sin; /* [T, hd/2] */
    /* backward scratch, shared by all layers */
    float *dres[2];        /* [N, C] ping-pong residual gradients */
    float *dhg, *dh13, *dln2, *dxmid, *datty, *dqkv, *dln1; /* see block.c */
    int dres_cur;          /* which dres holds the gradient w.r.t. the current layer's output */
    lp_precision precision; /* the model's precision when allocated */
    float *attn_ws;        /* attention scratch (lp_attention_ws_floats; backward-sized when there
                            * is backward scratch); borrowed with shared scratch */
    lp_bf16 *lnfh;         /* bf16: final norm output [N, C] (head only) */
    lp_bf16 *douth, *dh13h, *dxmidh, *dqkvh, *dlogitsh; /* bf16 backward scratch: GEMM inputs;
                            * douth [2, N, C] holds bf16(dres[0]) and bf16(dres[1]) (block.c) */
} lp_acts;

/* Allocate activations for up to B sequences of up to T tokens (T <= max_seq_len) for the layers
 * the model holds (m->l0..m->l1; head buffers when it holds the final norm). Layers before
 * lp_model_first_backward_layer(m) share one slot, so set trainable flags first. The buffers
 * follow m->precision (bf16 GEMM inputs), so set the precision first too. Backward scratch
 * is allocated when some held layer needs a backward (or the head has trainable tensors). */
void lp_acts_alloc(lp_acts *a, const lp_model *m, int B, int T);
/* The same, but borrowing the backward scratch of `scratch` (same model and capacity): a pipeline
 * stage keeps one lp_acts per microbatch in flight, and backward runs one microbatch at a time. */
void lp_acts_alloc_shared(lp_acts *a, const lp_model *m, int B, int T, const lp_acts *scratch);
void lp_acts_free(lp_acts *a);
/* Bytes held by the activation buffers (borrowed scratch not counted). */
size_t lp_acts_bytes(const lp_acts *a, const lp_model *m);
/* Bytes lp_acts_alloc would take for layers [l0, l1) (+ head) with first backward layer
 * first_bwd, with or without backward scratch; for planning before anything is allocated. A
 * tensor-parallel rank's buffers: c = lp_tp_config (tp_shard.h). */
size_t lp_acts_plan_bytes(const lp_config *c, int B, int T, int l0, int l1, int head, int first_bwd, int scratch);
/* Bytes of the attention workspace included in lp_acts_plan_bytes(..., scratch = backward); an
 * lp_acts sharing another's scratch borrows its workspace too (lp_acts_bytes leaves it out). */
size_t lp_acts_attn_ws_bytes(const lp_config *c, int B, int T, int backward);
/* Whether a holder of layers [l0, l1) (+ head) runs any backward: some layer >= first_bwd, or a
 * trainable head tensor. */
int lp_acts_needs_backward(const lp_model *m, int l0, int l1, int head);

/* Seconds the blocks spent in attention (forward and backward kernels) since the process started:
 * a profile counter beside lp_gemm_seconds (gemm.h), for per-phase breakdowns. */
double lp_attention_seconds(void);

/* One layer: resid[l] -> resid[l+1] for the first a->cur_B * a->cur_T rows. */
void lp_block_forward(const lp_model *m, lp_acts *a, int l);
/* Input gradient of layer l: from a->dres[cur] (d resid[l+1]) to the other dres (d resid[l]);
 * flips a->dres_cur. */
void lp_block_backward_input(const lp_model *m, lp_acts *a, int l);
/* Weight gradients of layer l, added into m->layers[l].grads. Needs the scratch of the
 * immediately preceding lp_block_backward_input(m, a, l). */
void lp_block_backward_weight(lp_model *m, lp_acts *a, int l);

/* Pieces of lp_forward / lp_backward, for pipeline stages that hold part of the model.
 * lp_embed_forward sets the pass shape (B, T) and writes resid row 0 (needs the embedding);
 * lp_acts_set_shape sets it on a stage that receives resid row 0 instead. */
void lp_acts_set_shape(lp_acts *a, int B, int T);
void lp_embed_forward(const lp_model *m, lp_acts *a, const int *tokens, int B, int T);
/* Final norm, logits and (with targets) summed loss of resid row l1-l0; see lp_forward. */
double lp_head_forward(const lp_model *m, lp_acts *a, const int *targets, long *count);
/* Head backward: dlogits, head weight gradients, and d resid[L] into a->dres[a->dres_cur]
 * (dres_cur = 0) when anything below needs it. */
void lp_head_backward(lp_model *m, lp_acts *a, const int *targets, float scale);
/* Embedding gradient from a->dres[a->dres_cur] (= d resid[0]) when tok_embeddings is trainable. */
void lp_embed_backward(lp_model *m, lp_acts *a, const int *tokens);

/* Mean loss of a model over held-out tokens (evaluate.h, pipeline.h). */
typedef struct {
    double loss;   /* mean cross-entropy (nats per token) */
    double ppl;    /* exp(loss) */
    long tokens;   /* predicted positions counted */
} lp_eval_result;

/* Whole model: tokens[B*T] -> a->logits. With targets (may contain -1 = ignore) returns the summed
 * loss and sets *count to the number of counted positions; without, returns 0. */
double lp_forward(const lp_model *m, lp_acts *a, const int *tokens, const int *targets, int B, int T,
                  long *count);
/* Backward of the last lp_forward with targets: adds into the gradients of trainable tensors.
 * `scale` weights every position's loss (1 / positions in the global batch for a mean). */
void lp_backward(lp_model *m, lp_acts *a, const int *tokens, const int *targets, float scale);

#endif
