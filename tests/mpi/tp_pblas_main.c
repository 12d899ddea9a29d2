/* tp_pblas_main.c - the two implementations of the tensor-parallel product (tp.h) on the world
 * as one tp group: PBLAS psgemm over the BLACS grid and lp_gemm + MPI_Allreduce.
 *   tp_pblas M N K REPS
 * Checks both against a product computed here without either (each rank's slice of the inner
 * dimension regenerated from the same formula, one plain loop over the whole inner dimension in
 * double), then prints the best time of each (the slowest rank's). Exit 0 when both agree with it
 * within 1e-5 relative to the largest entry. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "llamapro/check.h"
#include "llamapro/tp.h"

static float a_of(int r, size_t i) { return (float)(((i + 3 * (size_t)r) * 7) % 13) * 0.01f - 0.06f; }
static float b_of(int r, size_t i) { return (float)(((i + 5 * (size_t)r) * 5) % 11) * 0.01f - 0.05f; }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 5) {
        fprintf(stderr, "usage: tp_pblas M N K REPS\n");
        return 2;
    }
    int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]), reps = atoi(argv[4]);
    lp_tp t;
    lp_tp_init(&t, MPI_COMM_WORLD);
    /* both variants, on the operands lp_tp_measure builds (a_of, b_of of this rank) */
    double sec[2];
    lp_tp_measure(&t, M, N, K, reps, sec);
    float *a = calloc((size_t)M * K, sizeof(float)), *b = calloc((size_t)N * K, sizeof(float));
    float *c0 = calloc((size_t)M * N, sizeof(float)), *c1 = calloc((size_t)M * N, sizeof(float));
    int nb = (N + t.tp - 1) / t.tp;
    float *scratch = calloc((size_t)nb * M * (t.tp + 1), sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = a_of(t.rank, i);
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = b_of(t.rank, i);
    lp_tp_gemm_sum(&t, 1, M, N, K, a, K, b, K, 0.0f, c0, N);
    lp_tp_gemm_sum_pblas(&t, M, N, K, a, b, c1, scratch);
    /* reference: C[i,j] = sum_r sum_k A_r[i,k] B_r[j,k], on rank 0 (a few rows suffice) */
    int bad = 0;
    if (t.rank == 0) {
        double worst[2] = {0, 0}, big = 0;
        for (int i = 0; i < M; i += (M > 16 ? M / 16 : 1))
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int r = 0; r < t.tp; r++)
                    for (int k = 0; k < K; k++) s += (double)a_of(r, (size_t)i * K + k) * b_of(r, (size_t)j * K + k);
                big = fabs(s) > big ? fabs(s) : big;
                double d0 = fabs(c0[(size_t)i * N + j] - s), d1 = fabs(c1[(size_t)i * N + j] - s);
                worst[0] = d0 > worst[0] ? d0 : worst[0];
                worst[1] = d1 > worst[1] ? d1 : worst[1];
            }
        printf("tp %d, [%d x %d] per rank x [%d x %d]^T: allreduce %.3f ms (err %.2g), pblas %.3f ms (err %.2g), "
               "pblas / allreduce %.2f\n", t.tp, M, K, N, K, sec[0] * 1e3, worst[0] / big, sec[1] * 1e3, worst[1] / big,
               sec[1] / sec[0]);
        bad = worst[0] > 1e-5 * big || worst[1] > 1e-5 * big;
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
    lp_tp_free(&t);
    free(a), free(b), free(c0), free(c1), free(scratch);
    MPI_Finalize();
    return bad;
}
