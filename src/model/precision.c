/* precision.c - the model's GEMM forms of its weights and the per-layer linear maps (model.h).
 *
 * Packed forms, chosen by measurement (Zen 4, 2 threads, inside the bench step): the forward
 * product y = x W^T runs 15-25% faster in bf16 on weights pre-packed in oneDNN's blocked layout
 * than on plain row-major weights (in isolation the gap is 4-8%; inside a step the plain layout
 * also costs cache misses), and so does the input-gradient product dx = dy W on W packed for that
 * orientation. So every layer's four weight groups are packed once at load for the forward, and
 * those of layers that run backward (from the first trainable one on) for the input gradient too,
 * (bf16 only: fp32 reads its masters in place, see lp_model_set_precision). A frozen layer then
 * holds bf16 forms only besides its fp32 master; a trainable layer also keeps a plain bf16 copy.
 * lp_model_sync_forms refreshes trainable layers' forms from the fp32 masters after each
 * optimizer step (a conversion and reorders: a few ms for the bench's two blocks).
 */
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/model.h"
#include "llamapro/tp_shard.h"

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

static void free_forms(lp_model *m) {
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

/* (Re)pack layer ly's groups from its block w (float or lp_bf16 as m->precision): forward always,
 * input gradient when bwd. */
static void pack_layer(lp_model *m, lp_layer *ly, const void *w, int M, int bwd) {
    size_t es = m->precision == LP_BF16 ? sizeof(lp_bf16) : sizeof(float);
    int tp = lp_tp_size(m->tp); /* a tensor-parallel shard (tp.h) */
    for (int g = 0; g < LP_G_N; g++) {
        int in, out;
        lp_tp_group_dims(&m->cfg, tp, g, &in, &out);
        const void *wg = (const char *)w + es * lp_tp_layer_offset(&m->cfg, tp, group_tensor[g]);
        if (ly->packed[g]) lp_gemm_repack(ly->packed[g], wg);
        else ly->packed[g] = lp_gemm_pack(m->precision, M, out, in, wg, in, 1);
        if (!bwd) continue;
        if (ly->packed_bwd[g]) lp_gemm_repack(ly->packed_bwd[g], wg);
        else ly->packed_bwd[g] = lp_gemm_pack(m->precision, M, in, out, wg, in, 0);
    }
}

void lp_model_set_precision(lp_model *m, lp_precision p, int M) {
    free_forms(m);
    m->precision = p;
    /* fp32 reads the fp32 masters in place: packed fp32 copies would double or triple the weights'
     * memory for a gain lost in this machine's noise */
    if (M <= 0 || p == LP_FP32) return;
    const lp_config *c = &m->cfg;
    size_t per = lp_tp_layer_numel(c, lp_tp_size(m->tp));
    int first_bwd = lp_model_first_backward_layer(m), bf = p == LP_BF16;
    lp_bf16 *tmp = bf ? lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights") : NULL;
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params) continue;
        const void *w = ly->params;
        if (bf) {
            lp_bf16 *h = tmp;
            if (ly->trainable) h = ly->wbf16 = lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights");
            lp_to_bf16(h, ly->params, per);
            w = h;
        }
        pack_layer(m, ly, w, M, l >= first_bwd);
    }
    lp_free(tmp);
    if (m->output) {
        int V = c->vocab_size, C = c->dim;
        const void *w = m->output;
        if (bf) {
            m->output_bf16 = lp_calloc((size_t)V * C, sizeof(lp_bf16), "allocating the bf16 LM head");
            lp_to_bf16(m->output_bf16, m->output, (size_t)V * C);
            w = m->output_bf16;
        }
        m->output_packed = lp_gemm_pack(p, M, V, C, w, C, 1);
    }
}

void lp_model_sync_forms(lp_model *m) {
    const lp_config *c = &m->cfg;
    int bf = m->precision == LP_BF16;
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params || !ly->trainable || !ly->packed[0]) continue;
        const void *w = ly->params;
        if (bf) {
            lp_to_bf16(ly->wbf16, ly->params, lp_tp_layer_numel(c, lp_tp_size(m->tp)));
            w = ly->wbf16;
        }
        pack_layer(m, ly, w, 0, 1);
    }
    lp_tensor *out = lp_model_tensor(m, c->tie_embeddings ? "tok_embeddings" : "output");
    if (m->output_packed && out->trainable) {
        const void *w = m->output;
        if (bf) {
            lp_to_bf16(m->output_bf16, m->output, (size_t)c->vocab_size * c->dim);
            w = m->output_bf16;
        }
        lp_gemm_repack(m->output_packed, w);
    }
}

size_t lp_model_forms_bytes(const lp_model *m) {
    size_t b = 0, per = lp_tp_layer_numel(&m->cfg, lp_tp_size(m->tp));
    for (int l = 0; l < m->cfg.n_layers; l++) {
        if (m->layers[l].wbf16) b += per * sizeof(lp_bf16);
        for (int g = 0; g < LP_G_N; g++)
            b += lp_gemm_pack_bytes(m->layers[l].packed[g]) + lp_gemm_pack_bytes(m->layers[l].packed_bwd[g]);
    }
    if (m->output_bf16) b += (size_t)m->cfg.vocab_size * m->cfg.dim * sizeof(lp_bf16);
    return b + lp_gemm_pack_bytes(m->output_packed);
}

/* Under tensor parallelism the layer holds a shard (tp.h): the product runs on it, and one whose
 * inner dimension is split is a partial sum that the group's all-reduce completes. */
void lp_layer_linear(const lp_model *m, int l, int g, int M, const void *x, float beta, float *y) {
    const lp_layer *ly = &m->layers[l];
    int in, out, tp = lp_tp_size(m->tp), part = tp > 1 && lp_tp_partial(g, 0);
    lp_tp_group_dims(&m->cfg, tp, g, &in, &out);
    const float *w = ly->packed[g] ? NULL : ly->params + lp_tp_layer_offset(&m->cfg, tp, group_tensor[g]);
    LP_ASSERT(ly->packed[g] || m->precision == LP_FP32, "running a bf16 layer without its bf16 weights");
    lp_gemm_ex(m->precision, 0, 1, M, out, in, 1.0f, x, in, w, in, ly->packed[g], part ? lp_tp_beta(m->tp, beta) : beta, y, out);
    if (part) lp_tp_allreduce(m->tp, y, (size_t)M * out);
}

void lp_layer_linear_backward(const lp_model *m, int l, int g, int M, const void *dy, float beta, float *dx) {
    const lp_layer *ly = &m->layers[l];
    int in, out, tp = lp_tp_size(m->tp), part = tp > 1 && lp_tp_partial(g, 1);
    lp_tp_group_dims(&m->cfg, tp, g, &in, &out);
    const float *w = ly->packed_bwd[g] ? NULL : ly->params + lp_tp_layer_offset(&m->cfg, tp, group_tensor[g]);
    LP_ASSERT(ly->packed_bwd[g] || m->precision == LP_FP32, "running a bf16 backward of a layer packed for forward only");
    lp_gemm_ex(m->precision, 0, 0, M, in, out, 1.0f, dy, out, w, in, ly->packed_bwd[g], part ? lp_tp_beta(m->tp, beta) : beta,
               dx, in);
    if (part) lp_tp_allreduce(m->tp, dx, (size_t)M * in);
}
