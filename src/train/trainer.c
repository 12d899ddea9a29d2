/* trainer.c - the single-stage, data-parallel training step (see trainer.h). */
#include "llamapro/trainer.h"

#include <math.h>
#include <string.h>

#include "llamapro/check.h"

void lp_trainer_init(lp_trainer *t, lp_model *m, int B, int T, int M, MPI_Comm dp, double beta1,
                     double beta2, double eps, double weight_decay, double clip) {
    memset(t, 0, sizeof *t);
    t->m = m;
    t->B = B;
    t->T = T;
    t->M = M;
    t->dp = dp;
    t->clip = clip;
    LP_CHECK_MPI(MPI_Comm_size(dp, &t->dp_size), "sizing the data-parallel communicator");
    lp_acts_alloc(&t->acts, m, B, T);
    lp_adamw_init(&t->opt, m, beta1, beta2, eps, weight_decay);
    t->tokens = lp_calloc((size_t)B * T, sizeof(int), "allocating the token buffer");
    t->targets = lp_calloc((size_t)B * T, sizeof(int), "allocating the target buffer");
}

void lp_trainer_free(lp_trainer *t) {
    lp_acts_free(&t->acts);
    lp_adamw_free(&t->opt);
    lp_free(t->tokens);
    lp_free(t->targets);
    memset(t, 0, sizeof *t);
}

static void split_windows(const int *w, int n, int T, int *tokens, int *targets) {
    for (int s = 0; s < n; s++) {
        memcpy(tokens + (size_t)s * T, w + (size_t)s * (T + 1), sizeof(int) * T);
        memcpy(targets + (size_t)s * T, w + (size_t)s * (T + 1) + 1, sizeof(int) * T);
    }
}

/* Sum the gradients of trainable tensors over replicas (layer blocks in one call each). */
static void allreduce_grads(lp_trainer *t) {
    if (t->dp_size == 1) return;
    lp_model *m = t->m;
    size_t per = lp_layer_numel(&m->cfg), VC = (size_t)m->cfg.vocab_size * m->cfg.dim;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].grads)
            LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, m->layers[l].grads, (int)per, MPI_FLOAT, MPI_SUM, t->dp),
                         "all-reducing layer gradients");
    float *g[3] = {m->tok_embeddings_grad, m->output_grad != m->tok_embeddings_grad ? m->output_grad : NULL, m->norm_grad};
    size_t n[3] = {VC, VC, (size_t)m->cfg.dim};
    for (int i = 0; i < 3; i++)
        if (g[i]) LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, g[i], (int)n[i], MPI_FLOAT, MPI_SUM, t->dp),
                               "all-reducing embedding/head gradients");
}

double lp_trainer_step(lp_trainer *t, const int *windows, double lr, double *grad_norm) {
    int B = t->B, T = t->T;
    /* every position of the global batch weighs the same: the mean over B*T*M*dp positions */
    float scale = 1.0f / ((float)B * T * t->M * t->dp_size);
    lp_model_zero_grads(t->m);
    double loss_sum = 0;
    long count_sum = 0;
    for (int mb = 0; mb < t->M; mb++) {
        split_windows(windows + (size_t)mb * B * (T + 1), B, T, t->tokens, t->targets);
        long count = 0;
        loss_sum += lp_forward(t->m, &t->acts, t->tokens, t->targets, B, T, &count);
        count_sum += count;
        lp_backward(t->m, &t->acts, t->tokens, t->targets, scale);
    }
    allreduce_grads(t);
    double stats[2] = {loss_sum, (double)count_sum};
    if (t->dp_size > 1)
        LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, stats, 2, MPI_DOUBLE, MPI_SUM, t->dp), "all-reducing the loss");
    double norm = sqrt(lp_grad_sqnorm(t->m));
    *grad_norm = norm;
    lp_adamw_step(&t->opt, lr, lp_clip_factor(norm, t->clip));
    lp_model_sync_forms(t->m); /* the trainable layers' GEMM forms (bf16, packed) follow the masters */
    return stats[0] / stats[1];
}

void lp_eval_windows(const lp_model *m, lp_acts *a, const int *windows, int n, int T, int *tokens,
                     int *targets, double *sum, long *count) {
    *sum = 0;
    *count = 0;
    for (int s0 = 0; s0 < n; s0 += a->B) {
        int b = n - s0 < a->B ? n - s0 : a->B;
        split_windows(windows + (size_t)s0 * (T + 1), b, T, tokens, targets);
        long c = 0;
        *sum += lp_forward(m, a, tokens, targets, b, T, &c);
        *count += c;
    }
}
