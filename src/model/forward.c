/* forward.c - the whole model: embedding, blocks, final norm, LM head, loss; and backward. The
 * pieces are exported for pipeline stages, which run the same calls in the same order on the
 * layers they hold (so that every layout computes bitwise the same numbers). */
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/gemm.h"
#include "llamapro/kernels.h"

void lp_acts_set_shape(lp_acts *a, int B, int T) {
    LP_ASSERT(T <= a->T && (size_t)B * T <= (size_t)a->B * a->T, "running a forward pass larger than its buffers");
    a->cur_B = B;
    a->cur_T = T;
}

void lp_embed_forward(const lp_model *m, lp_acts *a, const int *tokens, int B, int T) {
    LP_ASSERT(m->tok_embeddings != NULL, "embedding tokens on a stage without the embedding");
    lp_acts_set_shape(a, B, T);
    lp_embedding_forward(a->resid, tokens, m->tok_embeddings, B * T, m->cfg.dim);
}

double lp_head_forward(const lp_model *m, lp_acts *a, const int *targets, long *count) {
    const lp_config *c = &m->cfg;
    LP_ASSERT(a->head && m->norm != NULL, "running the LM head on a stage without it");
    int N = a->cur_B * a->cur_T, C = c->dim, V = c->vocab_size;
    size_t NC = (size_t)a->B * a->T * C;
    const float *xL = a->resid + (size_t)(a->l1 - a->l0) * NC;
    if (m->precision == LP_BF16) {
        /* lnf in fp32 too: the head's weight gradient and tests read it; the GEMM reads bf16 */
        lp_rmsnorm_forward_fused(a->lnf, a->lnfh, NULL, a->rstdf, xL, m->norm, N, C, c->norm_eps);
        lp_gemm_ex(LP_BF16, 0, 1, N, V, C, 1.0f, a->lnfh, C, NULL, C, m->output_packed, 0.0f, a->logits, V); /* [N,V] */
    } else {
        lp_rmsnorm_forward(a->lnf, a->rstdf, xL, m->norm, N, C, c->norm_eps);
        lp_gemm_ex(LP_FP32, 0, 1, N, V, C, 1.0f, a->lnf, C, m->output_packed ? NULL : m->output, C, m->output_packed, 0.0f,
                   a->logits, V); /* [N,V] */
    }
    if (count) *count = 0;
    if (!targets) return 0.0;
    return lp_crossentropy_forward(a->losses, a->lse, a->logits, targets, N, V, count);
}

double lp_forward(const lp_model *m, lp_acts *a, const int *tokens, const int *targets, int B, int T,
                  long *count) {
    LP_ASSERT(a->l0 == 0 && a->l1 == m->cfg.n_layers, "running the whole model on a pipeline stage");
    lp_embed_forward(m, a, tokens, B, T);
    for (int l = 0; l < m->cfg.n_layers; l++) lp_block_forward(m, a, l);
    return lp_head_forward(m, a, targets, count);
}

void lp_head_backward(lp_model *m, lp_acts *a, const int *targets, float scale) {
    const lp_config *c = &m->cfg;
    LP_ASSERT(a->dres[0] != NULL, "running backward without gradient buffers (nothing trainable)");
    int N = a->cur_B * a->cur_T, C = c->dim, V = c->vocab_size, L = c->n_layers;
    size_t NC = (size_t)a->B * a->T * C;
    const float *xL = a->resid + (size_t)(a->l1 - a->l0) * NC;

    /* head: dlogits (in place in fp32); dlnf = dlogits Wout ; dWout += dlogits^T lnf */
    int bf = m->precision == LP_BF16;
    a->dres_cur = 0;
    float *dlnf = a->dres[1]; /* free until the first block's backward */
    const void *dlogits = a->logits, *lnf = a->lnf, *w = m->output;
    if (bf) { /* the GEMMs read bf16 forms only: dlogits are written in bf16 alone */
        lp_crossentropy_backward_bf16(a->dlogitsh, a->logits, a->lse, targets, N, V, scale);
        dlogits = a->dlogitsh, lnf = a->lnfh, w = m->output_bf16;
    } else {
        lp_crossentropy_backward(a->logits, a->lse, targets, N, V, scale);
    }
    if (a->first_bwd < L || m->norm_grad) {
        lp_gemm_ex(m->precision, 0, 0, N, C, V, 1.0f, dlogits, V, w, C, NULL, 0.0f, dlnf, C);
        if (m->norm_grad) lp_rmsnorm_backward_weight(m->norm_grad, dlnf, xL, a->rstdf, N, C);
        /* with its bf16 form for the last block's first GEMM (block.c: douth) */
        lp_rmsnorm_backward_input(a->dres[0], bf ? a->douth : NULL, NULL, dlnf, xL, m->norm, a->rstdf, N, C);
    }
    if (m->output_grad && lp_model_tensor(m, c->tie_embeddings ? "tok_embeddings" : "output")->trainable)
        lp_gemm_ex(m->precision, 1, 0, V, C, N, 1.0f, dlogits, V, lnf, C, NULL, 1.0f, m->output_grad, C);
}

void lp_embed_backward(lp_model *m, lp_acts *a, const int *tokens) {
    if (a->first_bwd == 0 && m->tok_embeddings_grad && m->tensors[0].trainable)
        lp_embedding_backward(m->tok_embeddings_grad, a->dres[a->dres_cur], tokens, a->cur_B * a->cur_T, m->cfg.dim);
}

void lp_backward(lp_model *m, lp_acts *a, const int *tokens, const int *targets, float scale) {
    lp_head_backward(m, a, targets, scale);
    for (int l = m->cfg.n_layers - 1; l >= a->first_bwd; l--) {
        lp_block_backward_input(m, a, l);
        if (m->layers[l].trainable) lp_block_backward_weight(m, a, l);
    }
    lp_embed_backward(m, a, tokens);
}
