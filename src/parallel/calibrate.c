/* calibrate.c - measured rates for the partitioner's cost model (see partition.h). */
#include <stdlib.h>

#include "llamapro/check.h"
#include "llamapro/flops.h"
#include "llamapro/forward.h"
#include "llamapro/partition.h"
#include "llamapro/rng.h"

#define LP_CAL_REPS 5

static double median(double *x, int n) { /* n small: insertion sort */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
            double t = x[j];
            x[j] = x[j - 1], x[j - 1] = t;
        }
    return x[n / 2];
}

void lp_cost_calibrate(lp_cost_rates *r, const lp_config *c, int B, int T, MPI_Comm comm) {
    int size;
    LP_CHECK_MPI(MPI_Comm_size(comm, &size), "calibrating the cost model");
    double v[6] = {1, 1, 1, 1, 1, 1};
    {
        lp_config one = *c;
        one.n_layers = 1;
        lp_model m;
        lp_model_alloc(&m, &one);
        lp_model_init_random(&m, 1);
        lp_model_set_layer_trainable(&m, 0); /* gradients, so all three kinds of work run */
        lp_acts a;
        lp_acts_alloc(&a, &m, B, T);
        int N = B * T, *tok = lp_calloc((size_t)N, sizeof(int), "calibrating"), *tgt = lp_calloc((size_t)N, sizeof(int), "calibrating");
        lp_rng rng;
        lp_rng_seed(&rng, 7);
        for (int i = 0; i < N; i++) tok[i] = (int)lp_rng_below(&rng, (uint64_t)c->vocab_size), tgt[i] = tok[(i + 1) % N];
        double dt[5][LP_CAL_REPS];
        for (int rep = 0; rep <= LP_CAL_REPS; rep++) { /* round 0 warms caches and BLAS up */
            double t[6];
            long cnt;
            lp_embed_forward(&m, &a, tok, B, T);
            t[0] = MPI_Wtime();
            lp_block_forward(&m, &a, 0);
            t[1] = MPI_Wtime();
            lp_head_forward(&m, &a, tgt, &cnt);
            t[2] = MPI_Wtime();
            lp_head_backward(&m, &a, tgt, 1.0f / N);
            t[3] = MPI_Wtime();
            lp_block_backward_input(&m, &a, 0);
            t[4] = MPI_Wtime();
            lp_block_backward_weight(&m, &a, 0);
            t[5] = MPI_Wtime();
            for (int k = 0; k < 5 && rep > 0; k++) dt[k][rep - 1] = t[k + 1] - t[k];
        }
        double best[5];
        for (int k = 0; k < 5; k++) best[k] = median(dt[k], LP_CAL_REPS);
        double lin = lp_flops_layer_linear(c, B, T), att = lp_flops_layer_attention(c, B, T);
        double head = 2.0 * N * c->dim * (double)c->vocab_size, tiny = 1e-9;
        v[0] = (lin + att) / (best[0] + tiny);
        v[3] = head / (best[1] + tiny);
        v[4] = head / (best[2] + tiny);
        v[5] = v[4]; /* the head's weight-gradient GEMM has the shape of its input-gradient GEMM */
        v[1] = (lin + 2.0 * att) / (best[3] + tiny);
        v[2] = lin / (best[4] + tiny);
        lp_free(tok), lp_free(tgt);
        lp_acts_free(&a);
        lp_model_free(&m);
    }
    /* every rank measured while the others did too (as in training, they share the node); the
     * mean over ranks is one model for all, so every rank plans the same partition */
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, v, 6, MPI_DOUBLE, MPI_SUM, comm), "averaging the cost model");
    for (int k = 0; k < 6; k++) v[k] /= size;
    *r = (lp_cost_rates){v[0], v[1], v[2], v[3], v[4], v[5]};
}
