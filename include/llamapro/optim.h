/* optim.h - AdamW (decoupled weight decay, PyTorch semantics), gradient-norm clipping and the
 * learning-rate schedule. Optimizer state exists for trainable tensors only. */
#ifndef LLAMAPRO_OPTIM_H
#define LLAMAPRO_OPTIM_H

#include <stddef.h>

#include "llamapro/model.h"

typedef struct {
    int n;             /* trainable tensors */
    lp_tensor **t;     /* [n] into the model's tensor table */
    float **m, **v;    /* [n] first and second moments, same shape as the tensor */
    long step;         /* updates done */
    double beta1, beta2, eps, weight_decay;
} lp_adamw;

/* State for every trainable tensor of m (zeroed moments, step 0). */
void lp_adamw_init(lp_adamw *o, lp_model *m, double beta1, double beta2, double eps, double weight_decay);
void lp_adamw_free(lp_adamw *o);
/* Bytes of optimizer state (m and v). */
size_t lp_adamw_bytes(const lp_adamw *o);
/* Sum of squared gradients of one tensor in double (0 unless trainable and held here), in an
 * order fixed by the tensor alone (not by threads or layout). */
double lp_tensor_grad_sqnorm(const lp_tensor *t);
/* Sum over the tensor table, in table order, of lp_tensor_grad_sqnorm. A pipeline gets the same
 * bits by gathering the per-tensor sums by table index and adding them in that order. */
double lp_grad_sqnorm(const lp_model *m);
/* One update with learning rate lr; every gradient is multiplied by grad_scale first (clipping).
 * Weight decay applies to matrices only, never to norm weights. Returns 1 when every updated
 * weight is finite, 0 when the update produced a NaN or Inf (checked in the same pass). */
int lp_adamw_step(lp_adamw *o, double lr, float grad_scale);

/* Learning rate at 0-based step: linear warmup over `warmup` steps, then cosine decay from lr to
 * min_lr at step `total` ("cosine"), or lr throughout ("constant"). */
double lp_lr_at(long step, long total, long warmup, double lr, double min_lr, const char *schedule);
/* Clip factor for a global gradient norm: min(1, clip / norm); 1 when clip <= 0. */
float lp_clip_factor(double norm, double clip);

#endif
