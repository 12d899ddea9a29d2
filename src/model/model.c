/* model.c - config checks, the per-layer parameter layout and the tensor table (see model.h). */
#include "llamapro/model.h"
#include "llamapro/tp_shard.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/rng.h"

static const char *layer_names[LP_LAYER_NTENSORS] = {"attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w1",
                                                     "w3", "w2", "bq", "bk", "bv", "q_norm", "k_norm"};

const char *lp_layer_tensor_name(int t) { return (t >= 0 && t < LP_LAYER_NTENSORS) ? layer_names[t] : "?"; }

int lp_layer_tensor_index(const char *s) {
    for (int t = 0; t < LP_LAYER_NTENSORS; t++)
        if (!strcmp(s, layer_names[t])) return t;
    return -1;
}

int lp_config_validate(const lp_config *c, char *err, size_t n) {
#define BAD(...) do { snprintf(err, n, __VA_ARGS__); return -1; } while (0)
    if (c->dim <= 0) BAD("dim must be positive (got %d)", c->dim);
    if (c->hidden_dim <= 0) BAD("hidden_dim must be positive (got %d)", c->hidden_dim);
    if (c->n_layers <= 0) BAD("n_layers must be positive (got %d)", c->n_layers);
    if (c->n_heads <= 0) BAD("n_heads must be positive (got %d)", c->n_heads);
    if (!c->head_dim && c->dim % c->n_heads) BAD("n_heads (%d) must divide dim (%d)", c->n_heads, c->dim);
    if (lp_head_dim(c) % 2) BAD("head dimension dim/n_heads = %d must be even for RoPE", lp_head_dim(c));
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads)
        BAD("n_kv_heads (%d) must divide n_heads (%d)", c->n_kv_heads, c->n_heads);
    if (c->vocab_size <= 0) BAD("vocab_size must be positive (got %d)", c->vocab_size);
    if (c->max_seq_len <= 0) BAD("max_seq_len must be positive (got %d)", c->max_seq_len);
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps)) BAD("norm_eps must be positive (got %g)", c->norm_eps);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta)) BAD("rope_theta must be positive (got %g)", c->rope_theta);
    return lp_config_validate_arch(c, err, n); /* the family's options (arch.c) */
#undef BAD
}

size_t lp_layer_tensor_shape(const lp_config *c, int t, int shape[2], int *ndim) {
    int C = c->dim, F = c->hidden_dim, hd = lp_head_dim(c);
    int q = c->n_heads * hd, kv = c->n_kv_heads * hd;
    int r = 0, k = 0;
    switch (t) {
    case LP_ATTN_NORM: case LP_MLP_NORM: *ndim = 1; shape[0] = C; shape[1] = 1; return (size_t)C;
    case LP_WQ: r = q; k = C; break;
    case LP_WK: case LP_WV: r = kv; k = C; break;
    case LP_WO: r = C; k = q; break;
    case LP_W1: case LP_W3: r = F; k = C; break;
    case LP_W2: r = C; k = F; break;
    case LP_BQ: case LP_BK: case LP_BV: /* vectors; size 0 without the option */
    case LP_Q_NORM: case LP_K_NORM: {
        int len = t == LP_BQ ? q : t == LP_BK || t == LP_BV ? kv : hd;
        int on = t <= LP_BV ? c->qkv_bias : c->qk_norm;
        *ndim = 1; shape[0] = on ? len : 0; shape[1] = 1;
        return on ? (size_t)len : 0;
    }
    default: LP_ASSERT(0, "looking up a layer tensor shape");
    }
    *ndim = 2;
    shape[0] = r;
    shape[1] = k;
    return (size_t)r * (size_t)k;
}

size_t lp_layer_tensor_offset(const lp_config *c, int t) {
    size_t off = 0;
    int shape[2], nd;
    for (int i = 0; i < t; i++) off += lp_layer_tensor_shape(c, i, shape, &nd);
    return off;
}

size_t lp_layer_numel(const lp_config *c) { return lp_layer_tensor_offset(c, LP_LAYER_NTENSORS); }

static lp_tensor *add_tensor(lp_model *m, const char *name, int layer, int kind, int ndim, int r,
                             int k, float *data) {
    lp_tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->layer = layer;
    t->kind = kind;
    t->ndim = ndim;
    t->shape[0] = r;
    t->shape[1] = ndim == 2 ? k : 1;
    t->numel = (size_t)r * (size_t)t->shape[1];
    t->data = data;
    t->is_matrix = ndim == 2;
    return t;
}

void lp_model_alloc(lp_model *m, const lp_config *c) { lp_model_alloc_range(m, c, 0, c->n_layers, 1, 1); }

void lp_model_alloc_range(lp_model *m, const lp_config *c, int l0, int l1, int embed, int head) {
    char err[256];
    LP_ASSERT(lp_config_validate(c, err, sizeof err) == 0, "allocating a model");
    LP_ASSERT(0 <= l0 && l0 <= l1 && l1 <= c->n_layers, "allocating a model's layer range");
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->l0 = l0;
    m->l1 = l1;
    int C = c->dim, V = c->vocab_size, L = c->n_layers;
    /* tied: whichever end holds the embedding matrix holds the one copy it uses */
    if (embed || (head && c->tie_embeddings))
        m->tok_embeddings = lp_calloc((size_t)V * C, sizeof(float), "allocating embeddings");
    if (head) {
        m->norm = lp_calloc((size_t)C, sizeof(float), "allocating final norm");
        m->output = c->tie_embeddings ? m->tok_embeddings
                                      : lp_calloc((size_t)V * C, sizeof(float), "allocating LM head");
    }
    m->layers = lp_calloc((size_t)L, sizeof(lp_layer), "allocating layer table");
    m->tensors = lp_calloc((size_t)L * LP_LAYER_NTENSORS + 3, sizeof(lp_tensor), "allocating tensor table");
    add_tensor(m, "tok_embeddings", -1, -1, 2, V, C, m->tok_embeddings);
    size_t per = lp_layer_numel(c);
    for (int l = 0; l < L; l++) {
        lp_layer *ly = &m->layers[l];
        if (l >= l0 && l < l1) ly->params = lp_calloc(per, sizeof(float), "allocating layer parameters");
        snprintf(ly->origin, sizeof ly->origin, "base:%d", l);
        for (int t = 0; t < LP_LAYER_NTENSORS; t++) {
            int shape[2], nd;
            if (lp_layer_tensor_shape(c, t, shape, &nd) == 0) continue; /* an option this config lacks */
            char name[48];
            snprintf(name, sizeof name, "layers.%d.%s", l, layer_names[t]);
            add_tensor(m, name, l, t, nd, shape[0], shape[1], ly->params ? ly->params + lp_layer_tensor_offset(c, t) : NULL);
        }
    }
    add_tensor(m, "norm", -1, -1, 1, C, 1, m->norm);
    if (!c->tie_embeddings) add_tensor(m, "output", -1, -1, 2, V, C, m->output);
}

void lp_model_keep_range(lp_model *m, int l0, int l1, int embed, int head) {
    const lp_config *c = &m->cfg;
    LP_ASSERT(0 <= l0 && l0 <= l1 && l1 <= c->n_layers, "restricting a model to a layer range");
    LP_ASSERT(m->precision == LP_FP32, "restricting a model after choosing its precision");
    for (int l = 0; l < c->n_layers; l++)
        if (l < l0 || l >= l1) {
            lp_free(m->layers[l].params);
            lp_free(m->layers[l].grads);
            m->layers[l].params = m->layers[l].grads = NULL;
        }
    if (!head) {
        if (m->output != m->tok_embeddings) {
            lp_free(m->output);
            if (m->output_grad != m->tok_embeddings_grad) lp_free(m->output_grad);
        }
        lp_free(m->norm);
        lp_free(m->norm_grad);
        m->output = m->output_grad = m->norm = m->norm_grad = NULL;
    }
    if (!embed && !(head && c->tie_embeddings)) {
        lp_free(m->tok_embeddings);
        lp_free(m->tok_embeddings_grad);
        if (m->output == m->tok_embeddings) m->output = m->output_grad = NULL;
        m->tok_embeddings = m->tok_embeddings_grad = NULL;
    }
    m->l0 = l0;
    m->l1 = l1;
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *t = &m->tensors[i];
        float *base = NULL, *gbase = NULL;
        size_t off = 0;
        if (t->layer >= 0) {
            base = m->layers[t->layer].params;
            gbase = m->layers[t->layer].grads;
            off = lp_layer_tensor_offset(c, t->kind);
        } else if (!strcmp(t->name, "tok_embeddings")) {
            base = m->tok_embeddings, gbase = m->tok_embeddings_grad;
        } else if (!strcmp(t->name, "norm")) {
            base = m->norm, gbase = m->norm_grad;
        } else {
            base = m->output, gbase = m->output_grad;
        }
        t->data = base ? base + off : NULL;
        t->grad = (gbase && t->trainable) ? gbase + off : NULL;
    }
}

void lp_model_free(lp_model *m) {
    if (!m->tensors) return;
    lp_model_set_precision(m, LP_FP32, 0); /* frees the GEMM forms */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        lp_free(m->layers[l].params);
        lp_free(m->layers[l].norms);
        lp_free(m->layers[l].grads);
    }
    if (m->output != m->tok_embeddings) lp_free(m->output);
    if (m->output_grad != m->tok_embeddings_grad) lp_free(m->output_grad);
    lp_free(m->tok_embeddings);
    lp_free(m->tok_embeddings_grad);
    lp_free(m->norm);
    lp_free(m->norm_grad);
    lp_free(m->layers);
    lp_free(m->tensors);
    lp_free(m->tokenizer);
    lp_free(m->expansion_json);
    lp_free(m->source);
    memset(m, 0, sizeof *m);
}

lp_tensor *lp_model_tensor(lp_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void lp_model_set_trainable(lp_model *m, lp_tensor *t) {
    const lp_config *c = &m->cfg;
    size_t VC = (size_t)c->vocab_size * c->dim;
    t->trainable = 1;
    if (t->layer >= 0) m->layers[t->layer].trainable = 1;
    if (!t->data) return; /* another stage's tensor: the flag only, no memory */
    if (t->layer >= 0) {
        lp_layer *ly = &m->layers[t->layer];
        if (!ly->grads) ly->grads = lp_calloc(lp_layer_numel(c), sizeof(float), "allocating layer gradients");
        t->grad = ly->grads + lp_layer_tensor_offset(c, t->kind);
    } else if (!strcmp(t->name, "tok_embeddings")) {
        if (!m->tok_embeddings_grad) m->tok_embeddings_grad = lp_calloc(VC, sizeof(float), "allocating embedding gradients");
        t->grad = m->tok_embeddings_grad;
        if (c->tie_embeddings && m->output) m->output_grad = m->tok_embeddings_grad;
    } else if (!strcmp(t->name, "norm")) {
        if (!m->norm_grad) m->norm_grad = lp_calloc((size_t)c->dim, sizeof(float), "allocating norm gradients");
        t->grad = m->norm_grad;
    } else if (!strcmp(t->name, "output")) {
        if (!m->output_grad) m->output_grad = lp_calloc(VC, sizeof(float), "allocating LM head gradients");
        t->grad = m->output_grad;
    }
}

void lp_model_set_layer_trainable(lp_model *m, int l) {
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].layer == l) lp_model_set_trainable(m, &m->tensors[i]);
}

int lp_model_first_backward_layer(const lp_model *m) {
    if (m->tensors[0].trainable) return 0; /* tok_embeddings is tensor 0 */
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].trainable) return l;
    return m->cfg.n_layers;
}

int lp_model_any_trainable(const lp_model *m) {
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable) return 1;
    return 0;
}

void lp_model_zero_grads(lp_model *m) {
    size_t per = lp_tp_layer_numel(&m->cfg, lp_tp_size(m->tp)), VC = (size_t)m->cfg.vocab_size * m->cfg.dim;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].grads) memset(m->layers[l].grads, 0, per * sizeof(float));
    if (m->tok_embeddings_grad) memset(m->tok_embeddings_grad, 0, VC * sizeof(float));
    if (m->output_grad && m->output_grad != m->tok_embeddings_grad) memset(m->output_grad, 0, VC * sizeof(float));
    if (m->norm_grad) memset(m->norm_grad, 0, (size_t)m->cfg.dim * sizeof(float));
}

size_t lp_model_numel(const lp_model *m, int trainable_only) {
    size_t n = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (!trainable_only || m->tensors[i].trainable) n += m->tensors[i].numel;
    return n;
}

void lp_model_init_random(lp_model *m, uint64_t seed) {
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    float out_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layers);
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *t = &m->tensors[i];
        if (!t->data) continue;
        if (!t->is_matrix) { /* norm weights 1, biases 0 */
            int bias = t->kind == LP_BQ || t->kind == LP_BK || t->kind == LP_BV;
            for (size_t j = 0; j < t->numel; j++) t->data[j] = bias ? 0.0f : 1.0f;
            continue;
        }
        float std = (t->kind == LP_WO || t->kind == LP_W2) ? out_std : 0.02f;
        for (size_t j = 0; j < t->numel; j++) t->data[j] = std * lp_rng_normal(&rng);
    }
}
