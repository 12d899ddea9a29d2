/* expand.c - block expansion and its identity check (see expand.h). */
#include "llamapro/expand.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/rng.h"

static const char *names[] = {"interleave", "top", "bottom"};

int lp_expand_position_parse(const char *s) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

const char *lp_expand_position_name(lp_expand_position p) { return names[p]; }

int lp_expand(const lp_model *base, lp_model *out, int P, lp_expand_position pos, int *new_layers,
              char *err, size_t errlen) {
    int L = base->cfg.n_layers;
    if (P < 1) {
        snprintf(err, errlen, "--blocks must be at least 1 (got %d)", P);
        return -1;
    }
    if (pos == LP_EXPAND_INTERLEAVE && L % P) {
        snprintf(err, errlen, "--blocks %d does not divide the model's %d layers (interleave puts one new block after each group of L/P)", P, L);
        return -1;
    }
    lp_config c = base->cfg;
    c.n_layers = L + P;
    lp_model_alloc(out, &c);
    size_t per = lp_layer_numel(&c);
    /* src[j]: base layer copied into new layer j; is_new[j] */
    int *src = lp_calloc((size_t)(L + P), sizeof(int), "planning the expansion");
    int *is_new = lp_calloc((size_t)(L + P), sizeof(int), "planning the expansion");
    int j = 0, k = 0;
    if (pos == LP_EXPAND_BOTTOM)
        for (int p = 0; p < P; p++) src[j] = 0, is_new[j++] = 1;
    for (int l = 0; l < L; l++) {
        src[j++] = l;
        if (pos == LP_EXPAND_INTERLEAVE && (l + 1) % (L / P) == 0) src[j] = l, is_new[j++] = 1;
    }
    if (pos == LP_EXPAND_TOP)
        for (int p = 0; p < P; p++) src[j] = L - 1, is_new[j++] = 1;
    LP_ASSERT(j == L + P, "planning the expansion");

    char json[8192];
    int off = snprintf(json, sizeof json, "{\"method\":\"llama-pro\",\"blocks\":%d,\"position\":\"%s\",\"source_layers\":[", P, names[pos]);
    for (j = 0; j < L + P; j++) {
        lp_layer *ly = &out->layers[j];
        memcpy(ly->params, base->layers[src[j]].params, per * sizeof(float));
        if (is_new[j]) {
            /* zero wo and w2: the block's two residual branches then contribute exactly 0 */
            memset(ly->params + lp_layer_tensor_offset(&c, LP_WO), 0, (size_t)c.dim * c.n_heads * lp_head_dim(&c) * sizeof(float));
            memset(ly->params + lp_layer_tensor_offset(&c, LP_W2), 0, (size_t)c.dim * c.hidden_dim * sizeof(float));
            snprintf(ly->origin, sizeof ly->origin, "copy-of:%d", src[j]);
            if (new_layers) new_layers[k] = j;
            off += snprintf(json + off, sizeof json - off, "%s%d", k ? "," : "", src[j]);
            k++;
        } else {
            snprintf(ly->origin, sizeof ly->origin, "%s", base->layers[src[j]].origin);
        }
    }
    off += snprintf(json + off, sizeof json - off, "],\"new_layers\":[");
    for (j = 0, k = 0; j < L + P; j++)
        if (is_new[j]) off += snprintf(json + off, sizeof json - off, "%s%d", k++ ? "," : "", j);
    snprintf(json + off, sizeof json - off, "]}");
    out->expansion_json = strdup(json);
    LP_CHECK_SYS(out->expansion_json != NULL, "recording the expansion");
    memcpy(out->tok_embeddings, base->tok_embeddings, (size_t)c.vocab_size * c.dim * sizeof(float));
    if (!c.tie_embeddings) memcpy(out->output, base->output, (size_t)c.vocab_size * c.dim * sizeof(float));
    memcpy(out->norm, base->norm, (size_t)c.dim * sizeof(float));
    if (base->tokenizer) {
        out->tokenizer = lp_calloc(base->tokenizer_len, 1, "copying the tokenizer");
        memcpy(out->tokenizer, base->tokenizer, base->tokenizer_len);
        out->tokenizer_len = base->tokenizer_len;
    }
    lp_free(src);
    lp_free(is_new);
    return 0;
}

int lp_expand_verify_identity(const lp_model *base, const lp_model *expanded, unsigned long long seed) {
    const lp_config *c = &base->cfg;
    int B = 2, T = c->max_seq_len < 32 ? c->max_seq_len : 32;
    int *tokens = lp_calloc((size_t)B * T, sizeof(int), "allocating the probe batch");
    lp_rng r;
    lp_rng_seed(&r, seed);
    for (int i = 0; i < B * T; i++) tokens[i] = (int)lp_rng_below(&r, (uint64_t)c->vocab_size);
    lp_acts a, b;
    lp_acts_alloc(&a, base, B, T);
    lp_acts_alloc(&b, expanded, B, T);
    lp_forward(base, &a, tokens, NULL, B, T, NULL);
    lp_forward(expanded, &b, tokens, NULL, B, T, NULL);
    int same = memcmp(a.logits, b.logits, (size_t)B * T * c->vocab_size * sizeof(float)) == 0;
    lp_acts_free(&a);
    lp_acts_free(&b);
    lp_free(tokens);
    return same;
}
