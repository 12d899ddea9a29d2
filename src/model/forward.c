/* forward.c - the whole model: embedding, blocks, final norm, LM head, loss; and backward. */
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/gemm.h"
#include "llamapro/kernels.h"

double lp_forward(const lp_model *m, lp_acts *a, const int *tokens, const int *targets, int B, int T,
                  long *count) {
    const lp_config *c = &m->cfg;
    LP_ASSERT(T <= a->T && (size_t)B * T <= (size_t)a->B * a->T, "running a forward pass larger than its buffers");
    a->cur_B = B;
    a->cur_T = T;
    int N = B * T, C = c->dim, V = c->vocab_size, L = c->n_layers;
    size_t NC = (size_t)a->B * a->T * C;
    lp_embedding_forward(a->resid, tokens, m->tok_embeddings, N, C);
    for (int l = 0; l < L; l++) lp_block_forward(m, a, l);
    lp_rmsnorm_forward(a->lnf, a->rstdf, a->resid + (size_t)L * NC, m->norm, N, C, c->norm_eps);
    lp_gemm(0, 1, N, V, C, 1.0f, a->lnf, C, m->output, C, 0.0f, a->logits, V); /* [N,V] */
    if (count) *count = 0;
    if (!targets) return 0.0;
    return lp_crossentropy_forward(a->losses, a->logits, targets, N, V, count);
}

void lp_backward(lp_model *m, lp_acts *a, const int *tokens, const int *targets, float scale) {
    const lp_config *c = &m->cfg;
    LP_ASSERT(a->dres[0] != NULL, "running backward without gradient buffers (nothing trainable)");
    int N = a->cur_B * a->cur_T, C = c->dim, V = c->vocab_size, L = c->n_layers;
    size_t NC = (size_t)a->B * a->T * C;
    const float *xL = a->resid + (size_t)L * NC;

    /* head: dlogits in place; dlnf = dlogits Wout ; dWout += dlogits^T lnf */
    lp_crossentropy_backward(a->logits, targets, N, V, scale);
    a->dres_cur = 0;
    float *dlnf = a->dres[1]; /* free until the first block's backward */
    if (a->first_bwd < L || m->norm_grad) {
        lp_gemm(0, 0, N, C, V, 1.0f, a->logits, V, m->output, C, 0.0f, dlnf, C);
        if (m->norm_grad) lp_rmsnorm_backward_weight(m->norm_grad, dlnf, xL, a->rstdf, N, C);
        lp_rmsnorm_backward_input(a->dres[0], dlnf, xL, m->norm, a->rstdf, N, C, 0);
    }
    if (m->output_grad && lp_model_tensor(m, c->tie_embeddings ? "tok_embeddings" : "output")->trainable)
        lp_gemm(1, 0, V, C, N, 1.0f, a->logits, V, a->lnf, C, 1.0f, m->output_grad, C);

    for (int l = L - 1; l >= a->first_bwd; l--) {
        lp_block_backward_input(m, a, l);
        if (m->layers[l].trainable) lp_block_backward_weight(m, a, l);
    }
    if (a->first_bwd == 0 && m->tok_embeddings_grad && lp_model_tensor(m, "tok_embeddings")->trainable)
        lp_embedding_backward(m->tok_embeddings_grad, a->dres[a->dres_cur], tokens, N, C);
}
