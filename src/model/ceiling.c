/* ceiling.c - the MFU ceiling measured on a step's own GEMM shapes (see ceiling.h). */
#include "llamapro/ceiling.h"

#include <omp.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/flops.h"
#include "llamapro/gemm.h"

static void add(lp_ceiling *c, int ta, int tb, int M, int N, int K, int acc, const char *what) {
    for (int i = 0; i < c->n; i++) {
        const lp_gemm_shape *s = &c->shape[i];
        if (s->ta == ta && s->tb == tb && s->M == M && s->N == N && s->K == K) return;
    }
    LP_ASSERT(c->n < LP_CEILING_MAX_SHAPES, "listing the step's GEMM shapes");
    c->shape[c->n++] = (lp_gemm_shape){ta, tb, M, N, K, acc, what};
}

void lp_ceiling_shapes(lp_ceiling *c, const lp_model *m, int B, int T) {
    memset(c, 0, sizeof *c);
    const lp_config *k = &m->cfg;
    int N = B * T, C = k->dim, F = k->hidden_dim, V = k->vocab_size, hd = lp_head_dim(k);
    int QKV = (k->n_heads + 2 * k->n_kv_heads) * hd, Y = k->n_heads * hd, L = k->n_layers;
    int first = lp_model_first_backward_layer(m), any_layer = 0;
    for (int l = 0; l < L; l++) any_layer |= m->layers[l].trainable;
    int out_tr = lp_flops_head_trainable(m), norm_tr = lp_flops_norm_trainable(m);
    /* the calls of block.c and forward.c, in their order */
    add(c, 0, 1, N, QKV, C, 0, "forward");
    add(c, 0, 1, N, C, Y, 1, "forward");
    add(c, 0, 1, N, 2 * F, C, 0, "forward");
    add(c, 0, 1, N, C, F, 1, "forward");
    add(c, 0, 1, N, V, C, 0, "forward");
    if (first < L || norm_tr) add(c, 0, 0, N, C, V, 0, "input-grad");
    if (first < L) {
        add(c, 0, 0, N, F, C, 0, "input-grad");
        add(c, 0, 0, N, C, 2 * F, 0, "input-grad");
        add(c, 0, 0, N, Y, C, 0, "input-grad");
        add(c, 0, 0, N, C, QKV, 0, "input-grad");
    }
    if (any_layer) {
        add(c, 1, 0, C, F, N, 1, "weight-grad");
        add(c, 1, 0, 2 * F, C, N, 1, "weight-grad");
        add(c, 1, 0, C, Y, N, 1, "weight-grad");
        add(c, 1, 0, QKV, C, N, 1, "weight-grad");
    }
    if (out_tr) add(c, 1, 0, V, C, N, 1, "weight-grad");
}

double lp_ceiling_measure(lp_ceiling *c, int reps) {
    if (reps < LP_CEILING_MIN_REPS) reps = LP_CEILING_MIN_REPS;
    double now = 0;
    for (int i = 0; i < c->n; i++) {
        const lp_gemm_shape *s = &c->shape[i];
        size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
        float *a = lp_calloc(na, sizeof(float), "allocating the GEMM ceiling probe");
        float *b = lp_calloc(nb, sizeof(float), "allocating the GEMM ceiling probe");
        float *d = lp_calloc(nc, sizeof(float), "allocating the GEMM ceiling probe");
        for (size_t j = 0; j < na; j++) a[j] = (float)((j * 7) % 13) * 0.01f;
        for (size_t j = 0; j < nb; j++) b[j] = (float)((j * 5) % 11) * 0.01f;
        int bf = c->precision == LP_BF16; /* bf16 probes: the run's GEMMs read bf16 inputs */
        lp_bf16 *ah = bf ? lp_calloc(na, sizeof(lp_bf16), "allocating the GEMM ceiling probe") : NULL;
        lp_bf16 *bh = bf ? lp_calloc(nb, sizeof(lp_bf16), "allocating the GEMM ceiling probe") : NULL;
        if (bf) lp_to_bf16(ah, a, na), lp_to_bf16(bh, b, nb);
        int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
        float beta = s->accumulate ? 1.0f : 0.0f;
        double best = 1e30;
        for (int r = 0; r <= reps; r++) { /* r = 0 warms the thread pool, caches and pages */
            double t0 = omp_get_wtime();
            if (bf) lp_gemm_ex(LP_BF16, s->ta, s->tb, s->M, s->N, s->K, 1.0f, ah, lda, bh, ldb, NULL, beta, d, s->N);
            else lp_gemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, a, lda, b, ldb, beta, d, s->N);
            double dt = omp_get_wtime() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        double g = 2.0 * s->M * s->N * (double)s->K / best * 1e-9;
        if (g > now) now = g;
        if (g > c->gflops[i]) c->gflops[i] = g;
        if (c->gflops[i] > c->best) c->best = c->gflops[i];
        lp_free(a), lp_free(b), lp_free(d), lp_free(ah), lp_free(bh);
    }
    return now;
}
