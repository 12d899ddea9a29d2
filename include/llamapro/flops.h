/* flops.h - explicit FLOP counts of a training step, counting only the work the step must do:
 * no backward before the first layer that needs one, no weight gradients for frozen tensors,
 * the causal half of attention. Used for FLOP/s and MFU. */
#ifndef LLAMAPRO_FLOPS_H
#define LLAMAPRO_FLOPS_H

#include "llamapro/model.h"

typedef struct {
    double forward;      /* all layers + head */
    double input_grad;   /* input-gradient backward */
    double weight_grad;  /* weight-gradient backward */
} lp_flops;

/* FLOPs of one layer for B sequences of T tokens: forward (= input-gradient linear part) and the
 * attention parts. */
double lp_flops_layer_linear(const lp_config *c, int B, int T);
double lp_flops_layer_attention(const lp_config *c, int B, int T);
/* Whether the final norm / the LM head (tok_embeddings when tied) is trainable, from the tensor
 * flags alone (so a skeleton or any pipeline stage answers the same). */
int lp_flops_norm_trainable(const lp_model *m);
int lp_flops_head_trainable(const lp_model *m);
/* One microbatch of B x T through model m with its current trainable flags (flags only: a
 * skeleton or any stage of the model gives the whole step's count). */
lp_flops lp_flops_microbatch(const lp_model *m, int B, int T);
static inline double lp_flops_total(lp_flops f) { return f.forward + f.input_grad + f.weight_grad; }

#endif
