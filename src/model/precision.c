/* precision.c - the model's bf16 weight forms and the per-layer linear maps (see model.h).
 *
 * Why two forms: a frozen layer before the first trainable one only ever runs y = x W^T, so its
 * weights are packed once into oneDNN's blocked layout (4-8% faster GEMMs, and W never changes);
 * a layer that runs backward also needs dx = dy W, the other orientation, which the plain bf16
 * copy serves with transposed strides at full speed (measured: 400-430 GFLOP/s both ways on the
 * Zen 4 host, against 410-440 packed). Trainable layers keep fp32 masters; their bf16 copy is
 * refreshed by lp_model_sync_bf16 after each optimizer step.
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
        for (int g = 0; g < LP_G_N; g++) lp_gemm_pack_free(ly->packed[g]), ly->packed[g] = NULL;
    }
    lp_free(m->output_bf16);
    m->output_bf16 = NULL;
}

void lp_model_set_precision(lp_model *m, lp_precision p, int M) {
    free_bf16(m);
    m->precision = p;
    if (p != LP_BF16) return;
    const lp_config *c = &m->cfg;
    size_t per = lp_layer_numel(c);
    int first_bwd = lp_model_first_backward_layer(m);
    lp_bf16 *tmp = NULL;
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params) continue;
        if (l >= first_bwd) {
            ly->wbf16 = lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights");
            lp_to_bf16(ly->wbf16, ly->params, per);
            continue;
        }
        if (!tmp) tmp = lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights");
        lp_to_bf16(tmp, ly->params, per);
        for (int g = 0; g < LP_G_N; g++) {
            int in, out;
            lp_group_dims(c, g, &in, &out);
            ly->packed[g] = lp_gemm_pack(M, out, in, tmp + lp_layer_tensor_offset(c, group_tensor[g]), in);
        }
    }
    lp_free(tmp);
    if (m->output) {
        size_t VC = (size_t)c->vocab_size * c->dim;
        m->output_bf16 = lp_calloc(VC, sizeof(lp_bf16), "allocating the bf16 LM head");
        lp_to_bf16(m->output_bf16, m->output, VC);
    }
}

void lp_model_sync_bf16(lp_model *m) {
    if (m->precision != LP_BF16) return;
    const lp_config *c = &m->cfg;
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (ly->wbf16 && ly->trainable) lp_to_bf16(ly->wbf16, ly->params, lp_layer_numel(c));
        LP_ASSERT(!ly->trainable || !ly->packed[0], "a trainable layer has packed weights");
    }
    lp_tensor *out = lp_model_tensor(m, c->tie_embeddings ? "tok_embeddings" : "output");
    if (m->output_bf16 && out->trainable) lp_to_bf16(m->output_bf16, m->output, (size_t)c->vocab_size * c->dim);
}

size_t lp_model_bf16_bytes(const lp_model *m) {
    size_t b = 0, per = lp_layer_numel(&m->cfg);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (m->layers[l].wbf16) b += per * sizeof(lp_bf16);
        for (int g = 0; g < LP_G_N; g++) b += lp_gemm_pack_bytes(m->layers[l].packed[g]);
    }
    if (m->output_bf16) b += (size_t)m->cfg.vocab_size * m->cfg.dim * sizeof(lp_bf16);
    return b;
}

void lp_layer_linear(const lp_model *m, int l, int g, int M, const void *x, float beta, float *y) {
    const lp_layer *ly = &m->layers[l];
    int in, out;
    lp_group_dims(&m->cfg, g, &in, &out);
    size_t off = lp_layer_tensor_offset(&m->cfg, group_tensor[g]);
    if (m->precision == LP_BF16) {
        LP_ASSERT(ly->packed[g] || ly->wbf16, "running a bf16 layer without bf16 weights (lp_model_set_precision)");
        lp_gemm_ex(LP_BF16, 0, 1, M, out, in, 1.0f, x, in, ly->wbf16 ? ly->wbf16 + off : NULL, in, ly->packed[g], beta,
                   y, out);
    } else {
        lp_gemm_ex(LP_FP32, 0, 1, M, out, in, 1.0f, x, in, ly->params + off, in, NULL, beta, y, out);
    }
}

void lp_layer_linear_backward(const lp_model *m, int l, int g, int M, const void *dy, float beta, float *dx) {
    const lp_layer *ly = &m->layers[l];
    int in, out;
    lp_group_dims(&m->cfg, g, &in, &out);
    size_t off = lp_layer_tensor_offset(&m->cfg, group_tensor[g]);
    int bf = m->precision == LP_BF16;
    LP_ASSERT(!bf || ly->wbf16, "running a bf16 backward of a layer packed for forward only");
    lp_gemm_ex(m->precision, 0, 0, M, in, out, 1.0f, dy, out, bf ? (const void *)(ly->wbf16 + off) : ly->params + off, in,
               NULL, beta, dx, in);
}
