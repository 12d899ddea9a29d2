/* flops.c - FLOP counts (see flops.h). A GEMM [M,K]x[K,N] is 2MNK; the two backward GEMMs of a
 * linear layer (input and weight gradient) each cost what its forward costs. */
#include "llamapro/flops.h"

#include <string.h>

static int flag(const lp_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return m->tensors[i].trainable;
    return 0;
}
int lp_flops_norm_trainable(const lp_model *m) { return flag(m, "norm"); }
int lp_flops_head_trainable(const lp_model *m) { return flag(m, m->cfg.tie_embeddings ? "tok_embeddings" : "output"); }

double lp_flops_layer_linear(const lp_config *c, int B, int T) {
    double N = (double)B * T, C = c->dim, F = c->hidden_dim, hd = lp_head_dim(c);
    double qkv = (c->n_heads + 2.0 * c->n_kv_heads) * hd, y = c->n_heads * hd;
    return 2.0 * N * (C * qkv + y * C + C * 2.0 * F + F * C);
}

double lp_flops_layer_attention(const lp_config *c, int B, int T) {
    /* q k^T and p v over the causal triangle: 2 GEMMs of 2 * hd * T(T+1)/2 per head */
    return 2.0 * B * c->n_heads * (double)lp_head_dim(c) * T * (T + 1.0);
}

lp_flops lp_flops_microbatch(const lp_model *m, int B, int T) {
    const lp_config *c = &m->cfg;
    lp_flops f = {0, 0, 0};
    double lin = lp_flops_layer_linear(c, B, T), att = lp_flops_layer_attention(c, B, T);
    double head = 2.0 * B * T * c->dim * (double)c->vocab_size;
    int first = lp_model_first_backward_layer(m);
    f.forward = c->n_layers * (lin + att) + head;
    for (int l = first; l < c->n_layers; l++) {
        f.input_grad += lin + 2.0 * att; /* attention backward: 4 GEMMs */
        if (m->layers[l].trainable) f.weight_grad += lin;
    }
    if (first < c->n_layers || lp_flops_norm_trainable(m)) f.input_grad += head;
    if (lp_flops_head_trainable(m)) f.weight_grad += head;
    return f;
}
