/* decode.h - incremental decoding with a key/value cache, for generation. One token at a time:
 * each step costs O(position) instead of re-running the whole sequence. Independent of the
 * training path's batched attention, which makes a full forward a real check of it. */
#ifndef LLAMAPRO_DECODE_H
#define LLAMAPRO_DECODE_H

#include "llamapro/model.h"
#include "llamapro/rng.h"

typedef struct {
    int Tmax, pos;       /* capacity and tokens consumed so far */
    float *k, *v;        /* [L, Tmax, KV*hd] caches (k after RoPE) */
    float *x, *ln, *qkv, *y, *h13, *hg, *scores, *logits, *rstd;
    float *rope_cos, *rope_sin; /* [Tmax, hd/2] */
    float *qkn;                 /* qk_norm: the norms' saved inputs and rstd for one row, else NULL */
    lp_bf16 *xh;         /* precision bf16: a GEMM input in bf16 [max(C, H*hd, F)] */
} lp_decoder;

/* Buffers for sequences of up to Tmax tokens (Tmax <= max_seq_len). */
void lp_decoder_init(lp_decoder *d, const lp_model *m, int Tmax);
void lp_decoder_free(lp_decoder *d);
/* Feed one token at position d->pos; returns the logits [V] for the next token (valid until the
 * next call). The caller checks d->pos < d->Tmax. */
const float *lp_decoder_step(lp_decoder *d, const lp_model *m, int token);

/* Next token from logits [V]: argmax when temperature <= 0, else a draw from
 * softmax(logits / temperature) using rng. */
int lp_sample(const float *logits, int V, float temperature, lp_rng *rng);

#endif
