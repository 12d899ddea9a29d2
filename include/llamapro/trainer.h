/* trainer.h - one training step on one pipeline stage holding the whole model, data-parallel
 * over a communicator: M microbatches of gradient accumulation, gradient all-reduce of
 * trainable tensors only, global-norm clipping, AdamW. Allocates everything at init; a step
 * allocates nothing. */
#ifndef LLAMAPRO_TRAINER_H
#define LLAMAPRO_TRAINER_H

#include <mpi.h>

#include "llamapro/forward.h"
#include "llamapro/optim.h"

typedef struct {
    lp_model *m;
    lp_acts acts;
    lp_adamw opt;
    int B, T, M;        /* sequences per microbatch, tokens per sequence, microbatches per step */
    MPI_Comm dp;        /* replicas; each gets its own B*M sequences of the global batch */
    int dp_size;
    int *tokens, *targets; /* [B*T] scratch */
    double clip;
} lp_trainer;

/* Set up for a model whose trainable flags are already set. */
void lp_trainer_init(lp_trainer *t, lp_model *m, int B, int T, int M, MPI_Comm dp, double beta1,
                     double beta2, double eps, double weight_decay, double clip);
void lp_trainer_free(lp_trainer *t);

/* One optimizer step. windows: this replica's M*B windows of T+1 tokens, microbatch-major.
 * Returns the mean loss over the global batch; *grad_norm gets the global gradient norm before
 * clipping. Every rank of dp returns the same numbers. */
double lp_trainer_step(lp_trainer *t, const int *windows, double lr, double *grad_norm);

/* Mean loss of windows (n sequences of T+1 tokens) without touching gradients; sum and count
 * are this rank's (reduce them for a global mean). */
void lp_eval_windows(const lp_model *m, lp_acts *a, const int *windows, int n, int T, int *tokens,
                     int *targets, double *sum, long *count);

#endif
