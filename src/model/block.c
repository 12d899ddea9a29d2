/* block.c - one LLaMA decoder block: forward, input-gradient backward, weight-gradient backward.
 *
 *   ln1 = rmsnorm(x)            qkv = ln1 Wqkv^T, RoPE on q,k     atty = attention(qkv)
 *   xmid = x + atty Wo^T        ln2 = rmsnorm(xmid)               h13 = ln2 W13^T
 *   hg = silu(h1) * h3          out = xmid + hg W2^T
 * Wqkv = wq|wk|wv and W13 = w1|w3 are contiguous in the layer block (model.h), one GEMM each.
 *
 * Precision bf16 (mixed, as on GPUs): every GEMM reads bf16 inputs and accumulates and writes
 * fp32; RMSNorm statistics, RoPE, attention (softmax), the residual stream, the backward's
 * residual gradients and all weight-gradient sums stay fp32. The producing kernel writes a GEMM
 * input in bf16 directly: alone where it is the only reader (RMSNorm, SwiGLU, the rotated dqkv),
 * beside the fp32 value where other kernels read that too (residual gradients). The attention
 * output gets one conversion pass.
 *
 * The residual that a beta = 1 GEMM adds to is copied by the kernel that reads the rows anyway
 * (the forward's RMSNorms), and the backward's RMSNorms write dx = residual + rmsnorm'(dy) in one
 * pass, so no step has a separate copy pass; a copy is exact, so the bits are those of copying.
 */
#include <omp.h>

#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/gemm.h"
#include "llamapro/kernels.h"
#include "llamapro/tp_shard.h"

static double attention_seconds;

double lp_attention_seconds(void) { return attention_seconds; }

/* see lp_acts: one slot shared by the held layers before first_bwd, then one per layer */
static lp_layer_acts *slot(lp_acts *a, int l) {
    LP_ASSERT(l >= a->l0 && l < a->l1, "running a layer whose activations this stage does not hold");
    if (l < a->first_bwd) return &a->slots[0];
    int shared = a->l0 < a->first_bwd ? 1 : 0, lo = a->l0 > a->first_bwd ? a->l0 : a->first_bwd;
    return &a->slots[shared + l - lo];
}

typedef struct {
    int N, C, F, H, KV, hd, QKV, Y, bf;
    const float *attn_norm, *mlp_norm;
} dims;

static dims dims_of(const lp_model *m, const lp_acts *a, int l) {
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
    d.bf = m->precision == LP_BF16;
    LP_ASSERT(a->precision == m->precision, "running a model with activations of another precision");
    d.attn_norm = lp_layer_norm(m, l, LP_ATTN_NORM);
    d.mlp_norm = lp_layer_norm(m, l, LP_MLP_NORM);
    return d;
}

/* A GEMM input: the bf16 buffer in bf16, the fp32 one otherwise. */
#define IN(d, f32, h16) ((d).bf ? (const void *)(h16) : (const void *)(f32))

/* bf16 copy of an fp32 GEMM input that other kernels read in fp32; fp32: the buffer itself. */
static const void *as_input(const dims *d, lp_bf16 *h, const float *f, size_t n) {
    if (!d->bf) return f;
    lp_to_bf16(h, f, n);
    return h;
}

/* y = rmsnorm(x) (bf16: yh alone), and xcopy = x */
static void rmsnorm(const dims *d, float *y, lp_bf16 *yh, float *xcopy, float *rstd, const float *x, const float *w,
                    float eps) {
    lp_rmsnorm_forward_fused(d->bf ? NULL : y, d->bf ? yh : NULL, xcopy, rstd, x, w, d->N, d->C, eps);
}

void lp_block_forward(const lp_model *m, lp_acts *a, int l) {
    dims d = dims_of(m, a, l);
    lp_layer_acts *s = slot(a, l);
    size_t NC = (size_t)a->B * a->T * d.C;
    const float *x = a->resid + (size_t)(l - a->l0) * NC;
    float *out = a->resid + (size_t)(l + 1 - a->l0) * NC;
    int B = a->cur_B, T = a->cur_T;
    float eps = m->cfg.norm_eps;

    rmsnorm(&d, s->ln1, s->ln1h, s->xmid, s->rstd1, x, d.attn_norm, eps);                 /* and xmid = x */
    lp_layer_linear(m, l, LP_G_QKV, d.N, IN(d, s->ln1, s->ln1h), 0.0f, s->qkv);          /* [N,QKV] */
    const lp_config *c = &m->cfg;
    if (c->qkv_bias) lp_bias_forward(s->qkv, lp_layer_norm(m, l, LP_BQ), d.N, d.QKV, d.QKV); /* + bq|bk|bv */
    if (c->qk_norm)                                                                       /* per-head norms on q, k */
        lp_qknorm_forward(s->qkv, s->qkn_x, s->qkn_rstd, lp_layer_norm(m, l, LP_Q_NORM),
                          lp_layer_norm(m, l, LP_K_NORM), d.N, d.H, d.KV, d.hd, d.QKV, eps);
    lp_rope_apply(s->qkv, d.QKV, d.N, T, d.H + d.KV, d.hd, a->rope_cos, a->rope_sin, +1); /* q and k */
    double t0 = omp_get_wtime();
    lp_attention_forward(m->precision, s->atty, s->lse, a->attn_ws, s->qkv, B, T, d.H, d.KV, d.hd, c->sliding_window); /* [N,Y] */
    attention_seconds += omp_get_wtime() - t0;
    lp_layer_linear(m, l, LP_G_WO, d.N, as_input(&d, s->attyh, s->atty, (size_t)d.N * d.Y), 1.0f, s->xmid); /* x + atty wo^T */
    rmsnorm(&d, s->ln2, s->ln2h, out, s->rstd2, s->xmid, d.mlp_norm, eps);                /* and out = xmid */
    lp_layer_linear(m, l, LP_G_W13, d.N, IN(d, s->ln2, s->ln2h), 0.0f, s->h13);          /* [N,2F] */
    if (d.bf) lp_swiglu_forward_bf16(s->hgh, s->h13, d.N, d.F);
    else lp_swiglu_forward(s->hg, s->h13, d.N, d.F);
    lp_layer_linear(m, l, LP_G_W2, d.N, IN(d, s->hg, s->hgh), 1.0f, out);                /* xmid + hg w2^T */
}

void lp_block_backward_input(const lp_model *m, lp_acts *a, int l) {
    dims d = dims_of(m, a, l);
    lp_layer_acts *s = slot(a, l);
    size_t NC = (size_t)a->B * a->T * d.C;
    const float *x = a->resid + (size_t)(l - a->l0) * NC;
    const float *dout = a->dres[a->dres_cur];
    float *dx = a->dres[1 - a->dres_cur];
    int B = a->cur_B, T = a->cur_T;
    size_t nc = (size_t)d.N * d.C;
    /* bf16 forms of dout and dx, beside dres (forward.h); dout's was written by its producer (the
     * head, or the block above), except for a gradient received from the next pipeline stage.
     * dx's is needed only when a block below runs its backward on this stage. */
    lp_bf16 *douth = d.bf ? a->douth + (size_t)a->dres_cur * NC : NULL;
    lp_bf16 *dxh = d.bf && l > a->l0 && l > a->first_bwd ? a->douth + (size_t)(1 - a->dres_cur) * NC : NULL;
    if (d.bf && l == a->l1 - 1 && !a->head) lp_to_bf16(douth, dout, nc);

    /* MLP: dhg = dout w2 ; dh13 = swiglu'(dhg) ; dln2 = dh13 W13 ; dxmid = dout + rmsnorm'(dln2) */
    lp_layer_linear_backward(m, l, LP_G_W2, d.N, IN(d, dout, douth), 0.0f, a->dhg);
    if (d.bf) lp_swiglu_backward_bf16(a->dh13h, a->dhg, s->h13, d.N, d.F);
    else lp_swiglu_backward(a->dh13, a->dhg, s->h13, d.N, d.F);
    lp_layer_linear_backward(m, l, LP_G_W13, d.N, IN(d, a->dh13, a->dh13h), 0.0f, a->dln2);
    lp_rmsnorm_backward_input(a->dxmid, d.bf ? a->dxmidh : NULL, dout, a->dln2, s->xmid, d.mlp_norm, s->rstd2, d.N, d.C);

    /* attention: datty = dxmid wo ; dqkv = attention'(datty) with RoPE rotated back ;
     * dln1 = dqkv Wqkv ; dx = dxmid + rmsnorm'(dln1) */
    lp_layer_linear_backward(m, l, LP_G_WO, d.N, IN(d, a->dxmid, a->dxmidh), 0.0f, a->datty);
    double t0 = omp_get_wtime();
    lp_attention_backward(m->precision, a->dqkv, a->attn_ws, a->datty, s->atty, s->lse, s->qkv, B, T, d.H, d.KV, d.hd,
                          m->cfg.sliding_window);
    attention_seconds += omp_get_wtime() - t0;
    const lp_config *c = &m->cfg;
    size_t nqkv = (size_t)d.N * d.QKV;
    if (d.bf && !c->qk_norm && !c->qkv_bias) { /* the GEMMs are dqkv's only readers: bf16 alone */
        lp_rope_apply_to_bf16(a->dqkvh, a->dqkv, d.QKV, d.N, T, d.H + d.KV, d.hd, a->rope_cos, a->rope_sin, -1);
    } else {
        lp_rope_apply(a->dqkv, d.QKV, d.N, T, d.H + d.KV, d.hd, a->rope_cos, a->rope_sin, -1);
        if (c->qk_norm) { /* back through the q/k norms; their weight gradients need dy of the norms,
                           * which this overwrites, so they are added here (trainable layers only) */
            float *g = m->layers[l].grads; /* under tp, this rank's heads' share (lp_tp_sum_replicated_grads) */
            int tp = lp_tp_size(m->tp);
            lp_qknorm_backward(a->dqkv, g ? g + lp_tp_layer_offset(c, tp, LP_Q_NORM) : NULL,
                               g ? g + lp_tp_layer_offset(c, tp, LP_K_NORM) : NULL, s->qkn_x, s->qkn_rstd,
                               lp_layer_norm(m, l, LP_Q_NORM), lp_layer_norm(m, l, LP_K_NORM), d.N, d.H,
                               d.KV, d.hd, d.QKV);
        }
        if (d.bf) lp_to_bf16(a->dqkvh, a->dqkv, nqkv);
    }
    lp_layer_linear_backward(m, l, LP_G_QKV, d.N, IN(d, a->dqkv, a->dqkvh), 0.0f, a->dln1);
    lp_rmsnorm_backward_input(dx, dxh, a->dxmid, a->dln1, x, d.attn_norm, s->rstd1, d.N, d.C); /* dxmid + rmsnorm'(dln1) */
    a->dres_cur = 1 - a->dres_cur;
}

void lp_block_backward_weight(lp_model *m, lp_acts *a, int l) {
    const lp_config *c = &m->cfg;
    float *g = m->layers[l].grads;
    LP_ASSERT(g != NULL, "computing weight gradients of a layer without gradient storage");
    dims d = dims_of(m, a, l);
    lp_layer_acts *s = slot(a, l);
    size_t NC = (size_t)a->B * a->T * d.C;
    const float *x = a->resid + (size_t)(l - a->l0) * NC;
    const float *dout = a->dres[1 - a->dres_cur]; /* lp_block_backward_input flipped dres_cur */
    const lp_bf16 *douth = d.bf ? a->douth + (size_t)(1 - a->dres_cur) * NC : NULL;
    lp_precision p = m->precision;
    int tp = lp_tp_size(m->tp);
    /* bf16: the inputs' bf16 forms, all left by the forward pass and lp_block_backward_input */
    lp_gemm_ex(p, 1, 0, d.C, d.F, d.N, 1.0f, IN(d, dout, douth), d.C, IN(d, s->hg, s->hgh), d.F, NULL, 1.0f,
               g + lp_tp_layer_offset(c, tp, LP_W2), d.F);                               /* dW2 [C,F] */
    lp_gemm_ex(p, 1, 0, 2 * d.F, d.C, d.N, 1.0f, IN(d, a->dh13, a->dh13h), 2 * d.F, IN(d, s->ln2, s->ln2h), d.C, NULL,
               1.0f, g + lp_tp_layer_offset(c, tp, LP_W1), d.C);                         /* dW13 [2F,C] */
    lp_rmsnorm_backward_weight(g + lp_tp_layer_offset(c, tp, LP_MLP_NORM), a->dln2, s->xmid, s->rstd2, d.N, d.C);
    lp_gemm_ex(p, 1, 0, d.C, d.Y, d.N, 1.0f, IN(d, a->dxmid, a->dxmidh), d.C, IN(d, s->atty, s->attyh), d.Y, NULL, 1.0f,
               g + lp_tp_layer_offset(c, tp, LP_WO), d.Y);                               /* dWo [C,Y] */
    lp_gemm_ex(p, 1, 0, d.QKV, d.C, d.N, 1.0f, IN(d, a->dqkv, a->dqkvh), d.QKV, IN(d, s->ln1, s->ln1h), d.C, NULL, 1.0f,
               g + lp_tp_layer_offset(c, tp, LP_WQ), d.C);                               /* dWqkv [QKV,C] */
    lp_rmsnorm_backward_weight(g + lp_tp_layer_offset(c, tp, LP_ATTN_NORM), a->dln1, x, s->rstd1, d.N, d.C);
    if (c->qkv_bias) lp_bias_backward(g + lp_tp_layer_offset(c, tp, LP_BQ), a->dqkv, d.N, d.QKV, d.QKV); /* dbq|dbk|dbv */
}
