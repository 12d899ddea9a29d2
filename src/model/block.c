/* block.c - one LLaMA decoder block: forward, input-gradient backward, weight-gradient backward.
 *
 *   ln1 = rmsnorm(x)            qkv = ln1 Wqkv^T, RoPE on q,k     atty = attention(qkv)
 *   xmid = x + atty Wo^T        ln2 = rmsnorm(xmid)               h13 = ln2 W13^T
 *   hg = silu(h1) * h3          out = xmid + hg W2^T
 * Wqkv = wq|wk|wv and W13 = w1|w3 are contiguous in the layer block (model.h), one GEMM each.
 */
#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/gemm.h"
#include "llamapro/kernels.h"
#include "llamapro/tp.h"

/* see lp_acts: one slot shared by the held layers before first_bwd, then one per layer */
static lp_layer_acts *slot(lp_acts *a, int l) {
    LP_ASSERT(l >= a->l0 && l < a->l1, "running a layer whose activations this stage does not hold");
    if (l < a->first_bwd) return &a->slots[0];
    int shared = a->l0 < a->first_bwd ? 1 : 0, lo = a->l0 > a->first_bwd ? a->l0 : a->first_bwd;
    return &a->slots[shared + l - lo];
}

typedef struct {
    int N, C, F, H, KV, hd, QKV, Y;
    const float *attn_norm, *wqkv, *wo, *mlp_norm, *w13, *w2;
} dims;

/* Under tensor parallelism (tp.h) the layer block holds this rank's H/tp heads, KV/tp kv heads and
 * F/tp hidden units: the same code runs on those, and lp_tp_gemm_sum completes the products whose
 * inner dimension is split. tp = 1: the whole block, lp_tp_gemm_sum is lp_gemm. */
static dims dims_of(const lp_model *m, const lp_acts *a, const float *p) {
    const lp_config *c = &m->cfg;
    int tp = lp_tp_size(m->tp);
    dims d;
    d.N = a->cur_B * a->cur_T;
    d.C = c->dim;
    d.F = c->hidden_dim / tp;
    d.H = c->n_heads / tp;
    d.KV = c->n_kv_heads / tp;
    d.hd = lp_head_dim(c);
    d.QKV = (d.H + 2 * d.KV) * d.hd;
    d.Y = d.H * d.hd;
    d.attn_norm = p + lp_tp_layer_offset(c, tp, LP_ATTN_NORM);
    d.wqkv = p + lp_tp_layer_offset(c, tp, LP_WQ);
    d.wo = p + lp_tp_layer_offset(c, tp, LP_WO);
    d.mlp_norm = p + lp_tp_layer_offset(c, tp, LP_MLP_NORM);
    d.w13 = p + lp_tp_layer_offset(c, tp, LP_W1);
    d.w2 = p + lp_tp_layer_offset(c, tp, LP_W2);
    return d;
}

void lp_block_forward(const lp_model *m, lp_acts *a, int l) {
    dims d = dims_of(m, a, m->layers[l].params);
    lp_layer_acts *s = slot(a, l);
    size_t NC = (size_t)a->B * a->T * d.C;
    const float *x = a->resid + (size_t)(l - a->l0) * NC;
    float *out = a->resid + (size_t)(l + 1 - a->l0) * NC;
    int B = a->cur_B, T = a->cur_T;

    lp_rmsnorm_forward(s->ln1, s->rstd1, x, d.attn_norm, d.N, d.C, m->cfg.norm_eps);
    lp_gemm(0, 1, d.N, d.QKV, d.C, 1.0f, s->ln1, d.C, d.wqkv, d.C, 0.0f, s->qkv, d.QKV);   /* [N,QKV] */
    lp_rope_apply(s->qkv, d.QKV, d.N, T, d.H + d.KV, d.hd, a->rope_cos, a->rope_sin, +1); /* q and k */
    lp_attention_forward(s->atty, s->att, s->qkv, B, T, d.H, d.KV, d.hd);                 /* [N,Y] */
    for (size_t i = 0; i < (size_t)d.N * d.C; i++) s->xmid[i] = x[i];
    lp_tp_gemm_sum(m->tp, 1, d.N, d.C, d.Y, s->atty, d.Y, d.wo, d.Y, 1.0f, s->xmid, d.C);     /* x + atty wo^T */
    lp_rmsnorm_forward(s->ln2, s->rstd2, s->xmid, d.mlp_norm, d.N, d.C, m->cfg.norm_eps);
    lp_gemm(0, 1, d.N, 2 * d.F, d.C, 1.0f, s->ln2, d.C, d.w13, d.C, 0.0f, s->h13, 2 * d.F); /* [N,2F] */
    lp_swiglu_forward(s->hg, s->h13, d.N, d.F);
    for (size_t i = 0; i < (size_t)d.N * d.C; i++) out[i] = s->xmid[i];
    lp_tp_gemm_sum(m->tp, 1, d.N, d.C, d.F, s->hg, d.F, d.w2, d.F, 1.0f, out, d.C);           /* xmid + hg w2^T */
}

void lp_block_backward_input(const lp_model *m, lp_acts *a, int l) {
    dims d = dims_of(m, a, m->layers[l].params);
    lp_layer_acts *s = slot(a, l);
    size_t NC = (size_t)a->B * a->T * d.C;
    const float *x = a->resid + (size_t)(l - a->l0) * NC;
    const float *dout = a->dres[a->dres_cur];
    float *dx = a->dres[1 - a->dres_cur];
    int B = a->cur_B, T = a->cur_T;

    /* MLP: dhg = dout w2 ; dh13 = swiglu'(dhg) ; dln2 = dh13 W13 ; dxmid = dout + rmsnorm'(dln2) */
    lp_gemm(0, 0, d.N, d.F, d.C, 1.0f, dout, d.C, d.w2, d.F, 0.0f, a->dhg, d.F);
    lp_swiglu_backward(a->dh13, a->dhg, s->h13, d.N, d.F);
    lp_tp_gemm_sum(m->tp, 0, d.N, d.C, 2 * d.F, a->dh13, 2 * d.F, d.w13, d.C, 0.0f, a->dln2, d.C);
    for (size_t i = 0; i < (size_t)d.N * d.C; i++) a->dxmid[i] = dout[i];
    lp_rmsnorm_backward_input(a->dxmid, a->dln2, s->xmid, d.mlp_norm, s->rstd2, d.N, d.C, 1);

    /* attention: datty = dxmid wo ; dqkv = attention'(datty) with RoPE rotated back ;
     * dln1 = dqkv Wqkv ; dx = dxmid + rmsnorm'(dln1) */
    lp_gemm(0, 0, d.N, d.Y, d.C, 1.0f, a->dxmid, d.C, d.wo, d.Y, 0.0f, a->datty, d.Y);
    lp_attention_backward(a->dqkv, a->datt_scratch, a->datty, s->att, s->qkv, B, T, d.H, d.KV, d.hd);
    lp_rope_apply(a->dqkv, d.QKV, d.N, T, d.H + d.KV, d.hd, a->rope_cos, a->rope_sin, -1);
    lp_tp_gemm_sum(m->tp, 0, d.N, d.C, d.QKV, a->dqkv, d.QKV, d.wqkv, d.C, 0.0f, a->dln1, d.C);
    for (size_t i = 0; i < (size_t)d.N * d.C; i++) dx[i] = a->dxmid[i];
    lp_rmsnorm_backward_input(dx, a->dln1, x, d.attn_norm, s->rstd1, d.N, d.C, 1);
    a->dres_cur = 1 - a->dres_cur;
}

void lp_block_backward_weight(lp_model *m, lp_acts *a, int l) {
    const lp_config *c = &m->cfg;
    float *g = m->layers[l].grads;
    LP_ASSERT(g != NULL, "computing weight gradients of a layer without gradient storage");
    dims d = dims_of(m, a, m->layers[l].params);
    lp_layer_acts *s = slot(a, l);
    size_t NC = (size_t)a->B * a->T * d.C;
    const float *x = a->resid + (size_t)(l - a->l0) * NC;
    const float *dout = a->dres[1 - a->dres_cur]; /* lp_block_backward_input flipped dres_cur */

    lp_gemm(1, 0, d.C, d.F, d.N, 1.0f, dout, d.C, s->hg, d.F, 1.0f,
            g + lp_tp_layer_offset(c, lp_tp_size(m->tp), LP_W2), d.F);                                  /* dW2 [C,F] */
    lp_gemm(1, 0, 2 * d.F, d.C, d.N, 1.0f, a->dh13, 2 * d.F, s->ln2, d.C, 1.0f,
            g + lp_tp_layer_offset(c, lp_tp_size(m->tp), LP_W1), d.C);                                  /* dW13 [2F,C] */
    lp_rmsnorm_backward_weight(g + lp_tp_layer_offset(c, lp_tp_size(m->tp), LP_MLP_NORM), a->dln2, s->xmid, s->rstd2, d.N, d.C);
    lp_gemm(1, 0, d.C, d.Y, d.N, 1.0f, a->dxmid, d.C, s->atty, d.Y, 1.0f,
            g + lp_tp_layer_offset(c, lp_tp_size(m->tp), LP_WO), d.Y);                                  /* dWo [C,Y] */
    lp_gemm(1, 0, d.QKV, d.C, d.N, 1.0f, a->dqkv, d.QKV, s->ln1, d.C, 1.0f,
            g + lp_tp_layer_offset(c, lp_tp_size(m->tp), LP_WQ), d.C);                                  /* dWqkv [QKV,C] */
    lp_rmsnorm_backward_weight(g + lp_tp_layer_offset(c, lp_tp_size(m->tp), LP_ATTN_NORM), a->dln1, x, s->rstd1, d.N, d.C);
}
