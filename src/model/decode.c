/* decode.c - one-token-at-a-time forward pass with a key/value cache (see decode.h). */
#include "llamapro/decode.h"

#include <math.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/gemm.h"
#include "llamapro/kernels.h"

void lp_decoder_init(lp_decoder *d, const lp_model *m, int Tmax) {
    const lp_config *c = &m->cfg;
    LP_ASSERT(Tmax > 0 && Tmax <= c->max_seq_len, "sizing the decoder");
    memset(d, 0, sizeof *d);
    d->Tmax = Tmax;
    int hd = lp_head_dim(c), kv = c->n_kv_heads * hd, QKV = (c->n_heads + 2 * c->n_kv_heads) * hd;
    size_t cache = (size_t)c->n_layers * Tmax * kv;
    d->k = lp_calloc(cache, sizeof(float), "allocating the key cache");
    d->v = lp_calloc(cache, sizeof(float), "allocating the value cache");
    d->x = lp_calloc((size_t)c->dim, sizeof(float), "allocating decoder state");
    d->ln = lp_calloc((size_t)c->dim, sizeof(float), "allocating decoder state");
    d->qkv = lp_calloc((size_t)QKV, sizeof(float), "allocating decoder state");
    d->y = lp_calloc((size_t)c->n_heads * hd, sizeof(float), "allocating decoder state");
    d->h13 = lp_calloc(2 * (size_t)c->hidden_dim, sizeof(float), "allocating decoder state");
    d->hg = lp_calloc((size_t)c->hidden_dim, sizeof(float), "allocating decoder state");
    d->scores = lp_calloc((size_t)Tmax, sizeof(float), "allocating decoder state");
    d->logits = lp_calloc((size_t)c->vocab_size, sizeof(float), "allocating decoder state");
    d->rstd = lp_calloc(1, sizeof(float), "allocating decoder state");
    d->rope_cos = lp_calloc((size_t)Tmax * hd / 2, sizeof(float), "allocating the RoPE table");
    d->rope_sin = lp_calloc((size_t)Tmax * hd / 2, sizeof(float), "allocating the RoPE table");
    lp_rope_table_config(d->rope_cos, d->rope_sin, Tmax, c);
    if (c->qk_norm) d->qkn = lp_calloc((size_t)(c->n_heads + c->n_kv_heads) * (hd + 1), sizeof(float), "allocating decoder state");
    int w = c->dim > c->hidden_dim ? c->dim : c->hidden_dim;
    if (m->precision == LP_BF16) d->xh = lp_calloc((size_t)(w > c->n_heads * hd ? w : c->n_heads * hd), sizeof(lp_bf16),
                                                   "allocating decoder state");
}

/* Layer l's group g on one row x in the model's precision (bf16: x rounded into d->xh). */
static void linear(lp_decoder *d, const lp_model *m, int l, int g, const float *x, float beta, float *y) {
    int in, out;
    lp_group_dims(&m->cfg, g, &in, &out);
    if (m->precision == LP_BF16) lp_to_bf16(d->xh, x, (size_t)in);
    lp_layer_linear(m, l, g, 1, m->precision == LP_BF16 ? (const void *)d->xh : x, beta, y);
}

void lp_decoder_free(lp_decoder *d) {
    float *p[] = {d->k, d->v, d->x, d->ln, d->qkv, d->y, d->h13, d->hg, d->scores, d->logits, d->rstd,
                  d->rope_cos, d->rope_sin, d->qkn};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) lp_free(p[i]);
    lp_free(d->xh);
    memset(d, 0, sizeof *d);
}

const float *lp_decoder_step(lp_decoder *d, const lp_model *m, int token) {
    const lp_config *c = &m->cfg;
    int C = c->dim, F = c->hidden_dim, H = c->n_heads, KV = c->n_kv_heads, hd = lp_head_dim(c);
    int kvw = KV * hd, QKV = (H + 2 * KV) * hd, t = d->pos, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    memcpy(d->x, m->tok_embeddings + (size_t)token * C, sizeof(float) * C);
    for (int l = 0; l < c->n_layers; l++) {
        float *kc = d->k + (size_t)l * d->Tmax * kvw, *vc = d->v + (size_t)l * d->Tmax * kvw;
        lp_rmsnorm_forward(d->ln, d->rstd, d->x, lp_layer_norm(m, l, LP_ATTN_NORM), 1, C, c->norm_eps);
        linear(d, m, l, LP_G_QKV, d->ln, 0.0f, d->qkv);
        if (c->qkv_bias) lp_bias_forward(d->qkv, lp_layer_norm(m, l, LP_BQ), 1, QKV, QKV);
        if (c->qk_norm)
            lp_qknorm_forward(d->qkv, d->qkn, d->qkn + (size_t)(H + KV) * hd, lp_layer_norm(m, l, LP_Q_NORM),
                              lp_layer_norm(m, l, LP_K_NORM), 1, H, KV, hd, QKV, c->norm_eps);
        /* rotate q and k by position t: the tables offset to row t, one row of "T = 1" */
        lp_rope_apply(d->qkv, QKV, 1, 1, H + KV, hd, d->rope_cos + (size_t)t * hd / 2,
                      d->rope_sin + (size_t)t * hd / 2, +1);
        memcpy(kc + (size_t)t * kvw, d->qkv + H * hd, sizeof(float) * kvw);
        memcpy(vc + (size_t)t * kvw, d->qkv + (H + KV) * hd, sizeof(float) * kvw);
        /* keys j0..t: all of them, or the last `sliding_window` (Mistral) */
        int j0 = c->sliding_window > 0 && t + 1 > c->sliding_window ? t + 1 - c->sliding_window : 0, nk = t + 1 - j0;
        for (int h = 0; h < H; h++) {
            int g = h / group;
            const float *kh = kc + (size_t)j0 * kvw + g * hd, *vh = vc + (size_t)j0 * kvw + g * hd;
            /* scores[0..nk) = scale * q_h . k_j ; softmax ; y_h = sum_j p_j v_j */
            lp_gemm(0, 1, 1, nk, hd, scale, d->qkv + h * hd, hd, kh, kvw, 0.0f, d->scores, nk);
            float mx = d->scores[0], sum = 0;
            for (int j = 1; j < nk; j++) mx = d->scores[j] > mx ? d->scores[j] : mx;
            for (int j = 0; j < nk; j++) sum += (d->scores[j] = expf(d->scores[j] - mx));
            for (int j = 0; j < nk; j++) d->scores[j] /= sum;
            lp_gemm(0, 0, 1, hd, nk, 1.0f, d->scores, nk, vh, kvw, 0.0f, d->y + h * hd, hd);
        }
        linear(d, m, l, LP_G_WO, d->y, 1.0f, d->x);
        lp_rmsnorm_forward(d->ln, d->rstd, d->x, lp_layer_norm(m, l, LP_MLP_NORM), 1, C, c->norm_eps);
        linear(d, m, l, LP_G_W13, d->ln, 0.0f, d->h13);
        lp_swiglu_forward(d->hg, d->h13, 1, F);
        linear(d, m, l, LP_G_W2, d->hg, 1.0f, d->x);
    }
    lp_rmsnorm_forward(d->ln, d->rstd, d->x, m->norm, 1, C, c->norm_eps);
    if (m->precision == LP_BF16) {
        lp_to_bf16(d->xh, d->ln, (size_t)C);
        lp_gemm_ex(LP_BF16, 0, 1, 1, c->vocab_size, C, 1.0f, d->xh, C, NULL, C, m->output_packed, 0.0f, d->logits,
                   c->vocab_size);
    } else {
        lp_gemm(0, 1, 1, c->vocab_size, C, 1.0f, d->ln, C, m->output, C, 0.0f, d->logits, c->vocab_size);
    }
    d->pos++;
    return d->logits;
}

int lp_sample(const float *logits, int V, float temperature, lp_rng *rng) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (temperature <= 0) return best;
    /* inverse-CDF draw from softmax(logits / T); max subtracted for range */
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)(logits[v] - logits[best]) / temperature);
    double u = lp_rng_uniform(rng) * sum, acc = 0;
    for (int v = 0; v < V; v++) {
        acc += exp((double)(logits[v] - logits[best]) / temperature);
        if (acc > u) return v;
    }
    return V - 1;
}
