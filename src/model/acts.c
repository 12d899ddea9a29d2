/* acts.c - allocation of the activation and backward-scratch buffers (see forward.h). */
#include <omp.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/kernels.h"
#include "llamapro/tp_shard.h"

#define F32(n, what) lp_calloc((size_t)(n), sizeof(float), what)
#define BF16(n, what) lp_calloc((size_t)(n), sizeof(lp_bf16), what)

static void slot_alloc(lp_layer_acts *s, const lp_config *c, size_t N, int B, int T, int bf16) {
    int hd = lp_head_dim(c), QKV = (c->n_heads + 2 * c->n_kv_heads) * hd;
    s->rstd1 = F32(N, "allocating activations");
    s->qkv = F32(N * QKV, "allocating activations");
    s->lse = F32(lp_attention_lse_floats(B, T, c->n_heads), "allocating attention statistics");
    s->atty = F32(N * c->n_heads * hd, "allocating activations");
    s->xmid = F32(N * c->dim, "allocating activations");
    s->rstd2 = F32(N, "allocating activations");
    s->h13 = F32(N * 2 * c->hidden_dim, "allocating activations");
    if (c->qk_norm) {
        s->qkn_x = F32(N * (c->n_heads + c->n_kv_heads) * hd, "allocating activations");
        s->qkn_rstd = F32(N * (c->n_heads + c->n_kv_heads), "allocating activations");
    }
    if (bf16) {
        s->ln1h = BF16(N * c->dim, "allocating activations");
        s->attyh = BF16(N * c->n_heads * hd, "allocating activations");
        s->ln2h = BF16(N * c->dim, "allocating activations");
        s->hgh = BF16(N * c->hidden_dim, "allocating activations");
    } else {
        s->ln1 = F32(N * c->dim, "allocating activations");
        s->ln2 = F32(N * c->dim, "allocating activations");
        s->hg = F32(N * c->hidden_dim, "allocating activations");
    }
}

static void slot_free(lp_layer_acts *s) {
    void *p[] = {s->ln1, s->rstd1, s->qkv, s->lse, s->atty, s->xmid, s->ln2, s->rstd2, s->h13, s->hg,
                 s->ln1h, s->attyh, s->ln2h, s->hgh, s->qkn_x, s->qkn_rstd};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) lp_free(p[i]);
}

static size_t slot_floats(const lp_config *c, size_t N, int B, int T) {
    int hd = lp_head_dim(c), QKV = (c->n_heads + 2 * c->n_kv_heads) * hd;
    size_t qkn = c->qk_norm ? (size_t)(c->n_heads + c->n_kv_heads) * (hd + 1) : 0;
    return N * (4 * (size_t)c->dim + QKV + (size_t)c->n_heads * hd + 3 * (size_t)c->hidden_dim + 2 + qkn) +
           lp_attention_lse_floats(B, T, c->n_heads);
}

/* Attention workspace floats: sized for the backward when its owner has backward scratch. */
static size_t attn_ws_floats(const lp_config *c, int B, int T, int backward) {
    return lp_attention_ws_floats(B, T, c->n_heads, c->n_kv_heads, lp_head_dim(c), backward);
}

size_t lp_acts_attn_ws_bytes(const lp_config *c, int B, int T, int backward) {
    return attn_ws_floats(c, B, T, backward) * sizeof(float);
}

/* Slots for layers [l0, l1): one shared by the layers before first_bwd (if any are held), one for
 * each held layer from first_bwd on. */
static int n_slots_for(int l0, int l1, int first_bwd) {
    int lo = l0 > first_bwd ? l0 : first_bwd;
    return (l0 < first_bwd && l0 < l1 ? 1 : 0) + (l1 > lo ? l1 - lo : 0);
}

int lp_acts_needs_backward(const lp_model *m, int l0, int l1, int head) {
    if (l1 > lp_model_first_backward_layer(m) && l1 > l0) return 1;
    if (!head) return 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].layer < 0 && m->tensors[i].trainable && strcmp(m->tensors[i].name, "tok_embeddings")) return 1;
    /* tied embeddings trained through the head */
    return m->cfg.tie_embeddings && m->tensors[0].trainable;
}

size_t lp_acts_plan_bytes(const lp_config *c, int B, int T, int l0, int l1, int head, int first_bwd, int scratch) {
    size_t N = (size_t)B * T;
    size_t f = (size_t)n_slots_for(l0, l1, first_bwd) * slot_floats(c, N, B, T);
    f += (size_t)(l1 - l0 + 1) * N * c->dim + (size_t)T * lp_head_dim(c) + attn_ws_floats(c, B, T, scratch);
    if (head) f += N * c->dim + 3 * N + N * c->vocab_size;
    if (scratch) {
        int hd = lp_head_dim(c), QKV = (c->n_heads + 2 * c->n_kv_heads) * hd;
        f += N * (5 * (size_t)c->dim + 3 * (size_t)c->hidden_dim + (size_t)c->n_heads * hd + QKV);
    }
    return f * sizeof(float);
}

void lp_acts_alloc_shared(lp_acts *a, const lp_model *m, int B, int T, const lp_acts *scratch) {
    lp_config shard = lp_tp_config(&m->cfg, lp_tp_size(m->tp)); /* a tp rank's heads and hidden units */
    const lp_config *c = &shard;
    LP_ASSERT(T <= c->max_seq_len && B > 0 && T > 0, "allocating activations");
    memset(a, 0, sizeof *a);
    a->B = B;
    a->T = T;
    a->l0 = m->l0;
    a->l1 = m->l1;
    a->head = m->norm != NULL;
    size_t N = (size_t)B * T;
    int hd = lp_head_dim(c), QKV = (c->n_heads + 2 * c->n_kv_heads) * hd;
    a->first_bwd = lp_model_first_backward_layer(m);
    a->n_slots = n_slots_for(a->l0, a->l1, a->first_bwd);
    a->slots = lp_calloc((size_t)a->n_slots + 1, sizeof(lp_layer_acts), "allocating activation slots");
    a->precision = m->precision;
    int bf16 = m->precision == LP_BF16;
    for (int s = 0; s < a->n_slots; s++) slot_alloc(&a->slots[s], c, N, B, T, bf16);
    a->resid = F32((size_t)(a->l1 - a->l0 + 1) * N * c->dim, "allocating the residual stream");
    if (a->head) {
        a->lnf = F32(N * c->dim, "allocating activations");
        a->rstdf = F32(N, "allocating activations");
        a->logits = F32(N * c->vocab_size, "allocating logits");
        a->losses = F32(N, "allocating losses");
        a->lse = F32(N, "allocating losses");
        if (bf16) a->lnfh = BF16(N * c->dim, "allocating activations");
    }
    a->rope_cos = F32((size_t)T * hd / 2, "allocating the RoPE table");
    a->rope_sin = F32((size_t)T * hd / 2, "allocating the RoPE table");
    lp_rope_table_config(a->rope_cos, a->rope_sin, T, &m->cfg);
    if (scratch) {
        LP_ASSERT(scratch->B == B && scratch->T == T, "sharing backward scratch between activations of another size");
        memcpy(a->dres, scratch->dres, sizeof a->dres);
        a->dhg = scratch->dhg, a->dh13 = scratch->dh13, a->dln1 = scratch->dln1, a->dln2 = scratch->dln2;
        a->dxmid = scratch->dxmid, a->datty = scratch->datty, a->dqkv = scratch->dqkv;
        a->douth = scratch->douth, a->dh13h = scratch->dh13h, a->dxmidh = scratch->dxmidh, a->dqkvh = scratch->dqkvh;
        a->dlogitsh = scratch->dlogitsh;
        a->shared_scratch = 1;
    } else if (lp_acts_needs_backward(m, a->l0, a->l1, a->head)) {
        a->dres[0] = F32(N * c->dim, "allocating gradient scratch");
        a->dres[1] = F32(N * c->dim, "allocating gradient scratch");
        a->dhg = F32(N * c->hidden_dim, "allocating gradient scratch");
        a->dh13 = F32(N * 2 * c->hidden_dim, "allocating gradient scratch");
        a->dln1 = F32(N * c->dim, "allocating gradient scratch");
        a->dln2 = F32(N * c->dim, "allocating gradient scratch");
        a->dxmid = F32(N * c->dim, "allocating gradient scratch");
        a->datty = F32(N * c->n_heads * hd, "allocating gradient scratch");
        a->dqkv = F32(N * QKV, "allocating gradient scratch");
        if (bf16) {
            a->douth = BF16(2 * N * c->dim, "allocating gradient scratch");
            a->dh13h = BF16(N * 2 * c->hidden_dim, "allocating gradient scratch");
            a->dxmidh = BF16(N * c->dim, "allocating gradient scratch");
            a->dqkvh = BF16(N * QKV, "allocating gradient scratch");
            if (a->head) a->dlogitsh = BF16(N * c->vocab_size, "allocating gradient scratch");
        }
    }
    if (scratch) a->attn_ws = scratch->attn_ws; /* passes run one at a time: one workspace per stage */
    else a->attn_ws = F32(attn_ws_floats(c, B, T, a->dres[0] != NULL), "allocating attention scratch");
}

void lp_acts_alloc(lp_acts *a, const lp_model *m, int B, int T) { lp_acts_alloc_shared(a, m, B, T, NULL); }

void lp_acts_free(lp_acts *a) {
    if (!a->slots) return;
    for (int s = 0; s < a->n_slots; s++) slot_free(&a->slots[s]);
    lp_free(a->slots);
    void *p[] = {a->resid, a->lnf, a->rstdf, a->logits, a->losses, a->lse, a->rope_cos, a->rope_sin, a->lnfh};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) lp_free(p[i]);
    if (!a->shared_scratch) {
        void *q[] = {a->dres[0], a->dres[1], a->dhg, a->dh13, a->dln1, a->dln2, a->dxmid, a->datty, a->dqkv, a->attn_ws,
                     a->douth, a->dh13h, a->dxmidh, a->dqkvh, a->dlogitsh};
        for (size_t i = 0; i < sizeof q / sizeof *q; i++) lp_free(q[i]);
    }
    memset(a, 0, sizeof *a);
}

size_t lp_acts_bytes(const lp_acts *a, const lp_model *m) {
    lp_config shard = lp_tp_config(&m->cfg, lp_tp_size(m->tp));
    const lp_config *c = &shard;
    int scratch = a->dres[0] != NULL && !a->shared_scratch;
    size_t b = lp_acts_plan_bytes(c, a->B, a->T, a->l0, a->l1, a->head, a->first_bwd, scratch);
    if (a->shared_scratch) b -= lp_acts_attn_ws_bytes(c, a->B, a->T, 0); /* borrowed with the scratch */
    if (a->precision != LP_BF16) return b;
    /* bf16: per slot ln1, ln2, hg in bf16 instead of fp32, plus atty in bf16; the head's lnf and
     * the backward GEMM inputs in bf16 besides their fp32 buffers */
    size_t N = (size_t)a->B * a->T;
    int hd = lp_head_dim(c), QKV = (c->n_heads + 2 * c->n_kv_heads) * hd, Y = c->n_heads * hd;
    size_t per_slot = N * (2 * (size_t)c->dim + c->hidden_dim);
    b -= (size_t)a->n_slots * per_slot * sizeof(float);
    b += (size_t)a->n_slots * (per_slot + N * Y) * sizeof(lp_bf16);
    if (a->head) b += N * c->dim * sizeof(lp_bf16);
    if (scratch)
        b += N * (3 * (size_t)c->dim + 2 * (size_t)c->hidden_dim + QKV + (a->head ? (size_t)c->vocab_size : 0)) *
             sizeof(lp_bf16);
    return b;
}
