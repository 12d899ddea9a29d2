/* precision.c - the model's bf16 weight forms and the per-layer linear maps (see model.h).
 *
 * Packed forms, chosen by measurement (Zen 4, 2 threads, inside the bench step): the forward
 * product y = x W^T runs 15-25% faster on weights pre-packed in oneDNN's blocked layout than on
 * plain row-major bf16 (in isolation the gap is 4-8%; inside a step the plain layout also costs
 * cache misses), and so does the input-gradient product dx = dy W on W packed for that
 * orientation. So every layer's four weight groups are packed once at load for the forward, and
 * those of layers that run backward (from the first trainable one on) for the input gradient too.
 * A frozen layer then holds bf16 forms only besides its fp32 master; a trainable layer also keeps
 * a plain bf16 copy, which lp_model_sync_bf16 refreshes from the fp32 masters after each optimizer
 * step and repacks (a conversion and two reorders: a few ms for the bench's two blocks).
 */
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/model.h"

static const int group_tensor[LP_G_N] = {LP_WQ, LP_WO, LP_W1, LP_W2};

void lp_group_dims(const lp_config *c, int g, int *in, int *out) {
    int hd = lp_head_dim(c), QKV = (c->n_heads + 2 * c->n_kv_heads) * hd, Y = c->n_heads * hd;
    switch (g) {
    case LP_G_QKV: *in = c->dim, *out = QKV; break;
    case LP_G_WO: *in = Y, *out = c->dim; break;
    case LP_G_W13: *in = c->dim, *out = 2 * c->hidden_dim; break;
    default: *in = c->hidden_dim, *out = c->dim; break;
    }
}

static void free_bf16(lp_model *m) {
    for (int l = 0; l < m->cfg.n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        lp_free(ly->wbf16);
        ly->wbf16 = NULL;
        for (int g = 0; g < LP_G_N; g++) {
            lp_gemm_pack_free(ly->packed[g]), ly->packed[g] = NULL;
            lp_gemm_pack_free(ly->packed_bwd[g]), ly->packed_bwd[g] = NULL;
        }
    }
    lp_free(m->output_bf16);
    lp_gemm_pack_free(m->output_packed);
    m->output_bf16 = NULL;
    m->output_packed = NULL;
}

/* (Re)pack layer ly's groups from its bf16 block w: forward always, input gradient when bwd. */
static void pack_layer(lp_model *m, lp_layer *ly, const lp_bf16 *w, int M, int bwd) {
    for (int g = 0; g < LP_G_N; g++) {
        int in, out;
        lp_group_dims(&m->cfg, g, &in, &out);
        const lp_bf16 *wg = w + lp_layer_tensor_offset(&m->cfg, group_tensor[g]);
        if (ly->packed[g]) lp_gemm_repack(ly->packed[g], wg);
        else ly->packed[g] = lp_gemm_pack(M, out, in, wg, in, 1);
        if (!bwd) continue;
        if (ly->packed_bwd[g]) lp_gemm_repack(ly->packed_bwd[g], wg);
        else ly->packed_bwd[g] = lp_gemm_pack(M, in, out, wg, in, 0);
    }
}

void lp_model_set_precision(lp_model *m, lp_precision p, int M) {
    free_bf16(m);
    m->precision = p;
    if (p != LP_BF16) return;
    const lp_config *c = &m->cfg;
    size_t per = lp_layer_numel(c);
    int first_bwd = lp_model_first_backward_layer(m);
    lp_bf16 *tmp = lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights");
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params) continue;
        lp_bf16 *w = tmp;
        if (ly->trainable) w = ly->wbf16 = lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights");
        lp_to_bf16(w, ly->params, per);
        pack_layer(m, ly, w, M, l >= first_bwd);
    }
    lp_free(tmp);
    if (m->output) {
        int V = c->vocab_size, C = c->dim;
        m->output_bf16 = lp_calloc((size_t)V * C, sizeof(lp_bf16), "allocating the bf16 LM head");
        lp_to_bf16(m->output_bf16, m->output, (size_t)V * C);
        m->output_packed = lp_gemm_pack(M, V, C, m->output_bf16, C, 1);
    }
}

void lp_model_sync_bf16(lp_model *m) {
    if (m->precision != LP_BF16) return;
    const lp_config *c = &m->cfg;
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params || !ly->trainable) continue;
        LP_ASSERT(ly->wbf16 != NULL, "a trainable layer without its bf16 copy");
        lp_to_bf16(ly->wbf16, ly->params, lp_layer_numel(c));
        pack_layer(m, ly, ly->wbf16, 0, 1);
    }
    lp_tensor *out = lp_model_tensor(m, c->tie_embeddings ? "tok_embeddings" : "output");
    if (m->output_bf16 && out->trainable) {
        lp_to_bf16(m->output_bf16, m->output, (size_t)c->vocab_size * c->dim);
        lp_gemm_repack(m->output_packed, m->output_bf16);
    }
}

size_t lp_model_bf16_bytes(const lp_model *m) {
    size_t b = 0, per = lp_layer_numel(&m->cfg);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (m->layers[l].wbf16) b += per * sizeof(lp_bf16);
        for (int g = 0; g < LP_G_N; g++)
            b += lp_gemm_pack_bytes(m->layers[l].packed[g]) + lp_gemm_pack_bytes(m->layers[l].packed_bwd[g]);
    }
    if (m->output_bf16) b += (size_t)m->cfg.vocab_size * m->cfg.dim * sizeof(lp_bf16);
    b += lp_gemm_pack_bytes(m->output_packed);
    return b;
}

void lp_layer_linear(const lp_model *m, int l, int g, int M, const void *x, float beta, float *y) {
    const lp_layer *ly = &m->layers[l];
    int in, out;
    lp_group_dims(&m->cfg, g, &in, &out);
    size_t off = lp_layer_tensor_offset(&m->cfg, group_tensor[g]);
    if (m->precision == LP_BF16) {
        LP_ASSERT(ly->packed[g], "running a bf16 layer without bf16 weights (lp_model_set_precision)");
        lp_gemm_ex(LP_BF16, 0, 1, M, out, in, 1.0f, x, in, NULL, in, ly->packed[g], beta, y, out);
    } else {
        lp_gemm_ex(LP_FP32, 0, 1, M, out, in, 1.0f, x, in, ly->params + off, in, NULL, beta, y, out);
    }
}

void lp_layer_linear_backward(const lp_model *m, int l, int g, int M, const void *dy, float beta, float *dx) {
    const lp_layer *ly = &m->layers[l];
    int in, out;
    lp_group_dims(&m->cfg, g, &in, &out);
    size_t off = lp_layer_tensor_offset(&m->cfg, group_tensor[g]);
    if (m->precision == LP_BF16) {
        LP_ASSERT(ly->packed_bwd[g], "running a bf16 backward of a layer packed for forward only");
        lp_gemm_ex(LP_BF16, 0, 0, M, in, out, 1.0f, dy, out, NULL, in, ly->packed_bwd[g], beta, dx, in);
    } else {
        lp_gemm_ex(LP_FP32, 0, 0, M, in, out, 1.0f, dy, out, ly->params + off, in, NULL, beta, dx, in);
    }
}
