/* optim.c - AdamW, clipping, learning-rate schedule (see optim.h). */
#include "llamapro/optim.h"

#include <math.h>
#include <string.h>

#include "llamapro/check.h"

void lp_adamw_init(lp_adamw *o, lp_model *m, double beta1, double beta2, double eps, double weight_decay) {
    memset(o, 0, sizeof *o);
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    for (int i = 0; i < m->n_tensors; i++) o->n += m->tensors[i].trainable && m->tensors[i].data;
    o->t = lp_calloc((size_t)o->n + 1, sizeof(lp_tensor *), "allocating optimizer state");
    o->m = lp_calloc((size_t)o->n + 1, sizeof(float *), "allocating optimizer state");
    o->v = lp_calloc((size_t)o->n + 1, sizeof(float *), "allocating optimizer state");
    int k = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *t = &m->tensors[i];
        if (!t->trainable || !t->data) continue;
        o->t[k] = t;
        o->m[k] = lp_calloc(t->numel, sizeof(float), "allocating AdamW moments");
        o->v[k] = lp_calloc(t->numel, sizeof(float), "allocating AdamW moments");
        k++;
    }
}

void lp_adamw_free(lp_adamw *o) {
    for (int i = 0; i < o->n; i++) {
        lp_free(o->m[i]);
        lp_free(o->v[i]);
    }
    lp_free(o->t);
    lp_free(o->m);
    lp_free(o->v);
    memset(o, 0, sizeof *o);
}

size_t lp_adamw_bytes(const lp_adamw *o) {
    size_t b = 0;
    for (int i = 0; i < o->n; i++) b += 2 * o->t[i]->numel * sizeof(float);
    return b;
}

/* Fixed chunks, each summed in order, then the chunk sums in order: the result does not depend
 * on the thread count or on which threads finish first (an OpenMP reduction's does). */
#define LP_SQ_CHUNKS 64
double lp_tensor_grad_sqnorm(const lp_tensor *t) {
    if (!t->trainable || !t->grad) return 0.0;
    const float *g = t->grad;
    size_t n = t->numel;
    double part[LP_SQ_CHUNKS];
#pragma omp parallel for schedule(static)
    for (int k = 0; k < LP_SQ_CHUNKS; k++) {
        size_t lo = n * (size_t)k / LP_SQ_CHUNKS, hi = n * (size_t)(k + 1) / LP_SQ_CHUNKS;
        /* 16 partial sums (fixed lanes from lo), added in order: independent adds that vectorise,
         * where one running sum is a chain of dependent adds, 4 cycles per element */
        enum { LANES = 16 };
        double acc[LANES] = {0}, s = 0;
        size_t j = lo;
        for (; j + LANES <= hi; j += LANES)
            for (int i = 0; i < LANES; i++) acc[i] += (double)g[j + i] * g[j + i];
        for (; j < hi; j++) s += (double)g[j] * g[j];
        for (int i = 0; i < LANES; i++) s += acc[i];
        part[k] = s;
    }
    double s = 0;
    for (int k = 0; k < LP_SQ_CHUNKS; k++) s += part[k];
    return s;
}

double lp_grad_sqnorm(const lp_model *m) {
    double s = 0;
    for (int i = 0; i < m->n_tensors; i++) s += lp_tensor_grad_sqnorm(&m->tensors[i]);
    return s;
}

int lp_adamw_step(lp_adamw *o, double lr, float grad_scale) {
    int bad = 0;
    o->step++;
    /* bias corrections in double: 1 - beta2^t is tiny for the first steps */
    double bc1 = 1.0 - pow(o->beta1, (double)o->step), bc2 = 1.0 - pow(o->beta2, (double)o->step);
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float step_size = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (int i = 0; i < o->n; i++) {
        lp_tensor *t = o->t[i];
        float *p = t->data, *g = t->grad, *m = o->m[i], *v = o->v[i];
        float decay = t->is_matrix ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
        size_t n = t->numel;
#pragma omp parallel for schedule(static) reduction(| : bad)
        for (size_t j = 0; j < n; j++) {
            float gj = g[j] * grad_scale;
            m[j] = b1 * m[j] + (1.0f - b1) * gj;
            v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
            p[j] = p[j] * decay - step_size * m[j] / (sqrtf(v[j]) * inv_sqrt_bc2 + eps);
            bad |= !isfinite(p[j]);
        }
    }
    return !bad;
}

double lp_lr_at(long step, long total, long warmup, double lr, double min_lr, const char *schedule) {
    if (step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (!strcmp(schedule, "constant") || total <= warmup) return lr;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    if (progress > 1) progress = 1;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(3.14159265358979323846 * progress));
}

float lp_clip_factor(double norm, double clip) {
    /* as torch.nn.utils.clip_grad_norm_: clip / (norm + 1e-6), never above 1 */
    if (clip <= 0) return 1.0f;
    double f = clip / (norm + 1e-6);
    return f < 1.0 ? (float)f : 1.0f;
}
