/* expand.h - LLaMA Pro block expansion (Wu et al. 2024): insert identity-initialised copies of
 * blocks (wo and w2 zero, so each new block adds nothing to the residual stream). */
#ifndef LLAMAPRO_EXPAND_H
#define LLAMAPRO_EXPAND_H

#include "llamapro/model.h"

typedef enum { LP_EXPAND_INTERLEAVE, LP_EXPAND_TOP, LP_EXPAND_BOTTOM } lp_expand_position;

/* Parse "interleave" | "top" | "bottom"; -1 if unknown. */
int lp_expand_position_parse(const char *s);
const char *lp_expand_position_name(lp_expand_position p);

/* out = base with P new blocks:
 *  interleave: after each group of L/P blocks, a copy of the group's last block (L % P == 0);
 *  top:        P copies of the last block after it;  bottom: P copies of the first before it.
 * New layers get origin "copy-of:i" and are recorded in out->expansion_json; out->tokenizer is
 * copied. Trainable flags are not set (the trainer decides). Returns -1 and a reason in err
 * (naming both numbers) when P is not valid for L. new_layers (size >= P) gets the new indices. */
int lp_expand(const lp_model *base, lp_model *out, int P, lp_expand_position pos, int *new_layers,
              char *err, size_t errlen);

/* Run base and expanded on the same probe batch; 1 if the logits are bitwise identical. */
int lp_expand_verify_identity(const lp_model *base, const lp_model *expanded, unsigned long long seed);

#endif
