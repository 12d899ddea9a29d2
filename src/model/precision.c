/* precision.c - the model's GEMM forms of its weights and the per-layer linear maps (model.h).
 *
 * Packed forms, chosen by measurement (Zen 4, 2 threads, inside the bench step): the forward
 * product y = x W^T runs 15-25% faster in bf16 on weights pre-packed in oneDNN's blocked layout
 * than on plain row-major weights (in isolation the gap is 4-8%; inside a step the plain layout
 * also costs cache misses), and so does the input-gradient product dx = dy W on W packed for that
 * orientation. Packed forms are per orientation, so a layer that runs both products needs two.
 * Memory decides for frozen layers (their weights are most of a LLaMA Pro model and must take
 * half their fp32 bytes in bf16): a frozen layer that runs forward only keeps its packed forward
 * form; one that also runs the input-gradient backward keeps ONE plain bf16 copy that both
 * orientations read (oneDNN blocks it inside each call); neither keeps its fp32 block (the norms
 * stay fp32, 2C floats). Trainable layers keep everything: fp32 masters (the optimizer's), a plain
 * bf16 copy and both packed forms, refreshed by lp_model_sync_forms after each optimizer step (a
 * conversion and reorders: a few ms for the bench's two blocks). fp32 reads its masters in place.
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

/* Number of floats of the layer's 1-D tensors (norms, biases, q/k norms) before tensor t, in
 * block order: their offsets in lp_layer.norms; t = LP_LAYER_NTENSORS gives the total. */
static size_t vec_offset(const lp_config *c, int t) {
    size_t off = 0;
    for (int u = 0; u < t; u++) {
        int shape[2], nd;
        size_t n = lp_layer_tensor_shape(c, u, shape, &nd);
        if (nd == 1) off += n;
    }
    return off;
}

static int is_vec(const lp_config *c, int t) {
    int shape[2], nd;
    lp_layer_tensor_shape(c, t, shape, &nd);
    return nd == 1;
}

/* Free frozen layer l's fp32 block (its GEMM forms hold the matrices now): its 1-D tensors move to
 * ly->norms and the tensor table points there; its matrices are marked released. */
static void release_layer(lp_model *m, int l) {
    const lp_config *c = &m->cfg;
    lp_layer *ly = &m->layers[l];
    ly->norms = lp_calloc(vec_offset(c, LP_LAYER_NTENSORS) + 1, sizeof(float), "allocating a frozen layer's norms");
    for (int t = 0; t < LP_LAYER_NTENSORS; t++) {
        int shape[2], nd;
        size_t n = lp_layer_tensor_shape(c, t, shape, &nd);
        if (nd == 1 && n) memcpy(ly->norms + vec_offset(c, t), ly->params + lp_layer_tensor_offset(c, t), n * sizeof(float));
    }
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *t = &m->tensors[i];
        if (t->layer != l) continue;
        t->data = is_vec(c, t->kind) ? ly->norms + vec_offset(c, t->kind) : NULL;
        t->released = t->data == NULL;
    }
    lp_free(ly->params);
    ly->params = NULL;
}

void lp_model_release_frozen(lp_model *m) {
    /* not under tensor parallelism: a shard's 1-D tensors and the writers' gathers assume fp32 shards */
    if (m->precision != LP_BF16 || lp_tp_size(m->tp) > 1) return;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params || ly->trainable) continue;
        LP_ASSERT(ly->packed[0] || ly->wbf16, "releasing a frozen layer without bf16 forms");
        release_layer(m, l);
    }
}

const float *lp_layer_norm(const lp_model *m, int l, int t) {
    const lp_layer *ly = &m->layers[l];
    LP_ASSERT(is_vec(&m->cfg, t), "reading a layer matrix as a vector");
    if (ly->norms) return ly->norms + vec_offset(&m->cfg, t);
    return ly->params ? ly->params + lp_tp_layer_offset(&m->cfg, lp_tp_size(m->tp), t) : NULL;
}

void lp_model_set_precision(lp_model *m, lp_precision p, int M) {
    const lp_config *c = &m->cfg;
    int released = 0;
    for (int l = 0; l < c->n_layers; l++) released |= m->layers[l].norms != NULL;
    LP_ASSERT(!released || M <= 0, "changing the precision of a model whose frozen fp32 weights were released");
    free_forms(m);
    m->precision = p;
    /* fp32 reads the fp32 masters in place: packed fp32 copies would double or triple the weights'
     * memory for a gain lost in this machine's noise */
    if (M <= 0 || p == LP_FP32) return;
    size_t per = lp_tp_layer_numel(c, lp_tp_size(m->tp));
    int first_bwd = lp_model_first_backward_layer(m), bf = p == LP_BF16;
    lp_bf16 *tmp = bf ? lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights") : NULL;
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params) continue;
        const void *w = ly->params;
        if (bf) {
            lp_bf16 *h = tmp;
            if (ly->trainable || l >= first_bwd) h = ly->wbf16 = lp_calloc(per, sizeof(lp_bf16), "allocating bf16 weights");
            lp_to_bf16(h, ly->params, per);
            w = h;
        }
        if (!bf || ly->trainable) pack_layer(m, ly, w, M, l >= first_bwd);
        else if (l < first_bwd) pack_layer(m, ly, w, M, 0);
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

static size_t layer_forms_bytes(const lp_model *m, int l) {
    const lp_layer *ly = &m->layers[l];
    size_t b = ly->wbf16 ? lp_tp_layer_numel(&m->cfg, lp_tp_size(m->tp)) * sizeof(lp_bf16) : 0;
    for (int g = 0; g < LP_G_N; g++) b += lp_gemm_pack_bytes(ly->packed[g]) + lp_gemm_pack_bytes(ly->packed_bwd[g]);
    return b;
}

size_t lp_layer_weight_bytes(const lp_model *m, int l) {
    const lp_layer *ly = &m->layers[l];
    size_t fp32 = ly->params ? lp_tp_layer_numel(&m->cfg, lp_tp_size(m->tp)) : ly->norms ? vec_offset(&m->cfg, LP_LAYER_NTENSORS) : 0;
    return fp32 * sizeof(float) + layer_forms_bytes(m, l);
}

size_t lp_model_weight_bytes(const lp_model *m, size_t *frozen_layers) {
    size_t b = 0, fz = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].layer < 0 && m->tensors[i].data) b += m->tensors[i].numel * sizeof(float);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        size_t lb = lp_layer_weight_bytes(m, l);
        b += lb;
        if (!m->layers[l].trainable) fz += lb;
    }
    if (m->output_bf16) b += (size_t)m->cfg.vocab_size * m->cfg.dim * sizeof(lp_bf16);
    if (frozen_layers) *frozen_layers = fz;
    return b + lp_gemm_pack_bytes(m->output_packed);
}

size_t lp_model_forms_bytes(const lp_model *m) {
    size_t b = 0;
    for (int l = 0; l < m->cfg.n_layers; l++) b += layer_forms_bytes(m, l);
    if (m->output_bf16) b += (size_t)m->cfg.vocab_size * m->cfg.dim * sizeof(lp_bf16);
    return b + lp_gemm_pack_bytes(m->output_packed);
}

/* Layer ly's weight group g as GEMM operand B: NULL when a packed form replaces it, else the
 * plain bf16 copy (bf16) or the fp32 master. */
static const void *plain_group(const lp_model *m, const lp_layer *ly, int g, const lp_packed *pk) {
    size_t off = lp_tp_layer_offset(&m->cfg, lp_tp_size(m->tp), group_tensor[g]);
    if (pk) return NULL;
    if (m->precision == LP_BF16) {
        LP_ASSERT(ly->wbf16 != NULL, "running a bf16 layer without its bf16 weights in this orientation");
        return ly->wbf16 + off;
    }
    return ly->params + off;
}

/* Under tensor parallelism the layer holds a shard (tp.h): the product runs on it, and one whose
 * inner dimension is split is a partial sum that the group's all-reduce completes. */
void lp_layer_linear(const lp_model *m, int l, int g, int M, const void *x, float beta, float *y) {
    const lp_layer *ly = &m->layers[l];
    int in, out, tp = lp_tp_size(m->tp), part = tp > 1 && lp_tp_partial(g, 0);
    lp_tp_group_dims(&m->cfg, tp, g, &in, &out);
    lp_gemm_ex(m->precision, 0, 1, M, out, in, 1.0f, x, in, plain_group(m, ly, g, ly->packed[g]), in, ly->packed[g],
               part ? lp_tp_beta(m->tp, beta) : beta, y, out);
    if (part) lp_tp_allreduce(m->tp, y, (size_t)M * out);
}

void lp_layer_linear_backward(const lp_model *m, int l, int g, int M, const void *dy, float beta, float *dx) {
    const lp_layer *ly = &m->layers[l];
    int in, out, tp = lp_tp_size(m->tp), part = tp > 1 && lp_tp_partial(g, 1);
    lp_tp_group_dims(&m->cfg, tp, g, &in, &out);
    lp_gemm_ex(m->precision, 0, 0, M, in, out, 1.0f, dy, out, plain_group(m, ly, g, ly->packed_bwd[g]), in,
               ly->packed_bwd[g], part ? lp_tp_beta(m->tp, beta) : beta, dx, in);
    if (part) lp_tp_allreduce(m->tp, dx, (size_t)M * in);
}
