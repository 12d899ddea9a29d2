/* tp.c - tensor parallelism inside a stage (see tp.h). */
#include "llamapro/tp.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/gemm.h"

/* BLACS and PBLAS (libscalapack-openmpi) have no C header in Debian. */
extern int Csys2blacs_handle(MPI_Comm comm);
extern void Cfree_blacs_system_handle(int handle);
extern void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
extern void Cblacs_gridexit(int ctxt);
extern void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
                      const int *icsrc, const int *ictxt, const int *lld, int *info);
extern void psgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const float *alpha,
                    const float *a, const int *ia, const int *ja, const int *desca, const float *b, const int *ib,
                    const int *jb, const int *descb, const float *beta, float *c, const int *ic, const int *jc,
                    const int *descc);

/* Divisors of n, for the error message. */
static void divisors(int a, int b, int c, char *out, size_t len) {
    size_t k = 0;
    out[0] = 0;
    for (int d = 1; d <= a && k + 8 < len; d++)
        if (a % d == 0 && b % d == 0 && c % d == 0) k += (size_t)snprintf(out + k, len - k, "%s%d", k ? ", " : "", d);
}

void lp_tp_check(const lp_config *c, int tp, const char *source) {
    if (tp >= 1 && c->n_heads % tp == 0 && c->n_kv_heads % tp == 0 && c->hidden_dim % tp == 0) return;
    char ok[128];
    divisors(c->n_kv_heads, c->n_heads, c->hidden_dim, ok, sizeof ok);
    lp_user_error_all("%s: [parallel] tp = %d must divide the model's n_heads %d, n_kv_heads %d and hidden_dim %d "
                      "(each rank keeps whole heads and whole kv heads): use tp = %s", source, tp, c->n_heads,
                      c->n_kv_heads, c->hidden_dim, ok);
}

void lp_tp_init(lp_tp *t, MPI_Comm comm) {
    memset(t, 0, sizeof *t);
    t->comm = comm;
    LP_CHECK_MPI(MPI_Comm_size(comm, &t->tp), "sizing the tensor-parallel group");
    LP_CHECK_MPI(MPI_Comm_rank(comm, &t->rank), "placing this rank in the tensor-parallel group");
    t->blacs = Csys2blacs_handle(comm);
    t->ctxt = t->blacs;
    Cblacs_gridinit(&t->ctxt, "R", t->tp, 1);
    int pr, pc, r, col;
    Cblacs_gridinfo(t->ctxt, &pr, &pc, &r, &col);
    LP_ASSERT(pr == t->tp && pc == 1 && r == t->rank, "making the tensor-parallel BLACS grid");
}

void lp_tp_free(lp_tp *t) {
    if (t->tp) {
        Cblacs_gridexit(t->ctxt);
        Cfree_blacs_system_handle(t->blacs);
    }
    memset(t, 0, sizeof *t);
}

void lp_tp_gemm_sum(const lp_tp *t, int trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    if (lp_tp_size(t) == 1) {
        lp_gemm(0, trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    LP_ASSERT(ldc == N, "summing a tensor-parallel product into a strided matrix");
    lp_gemm(0, trans_b, M, N, K, 1.0f, A, lda, B, ldb, lp_tp_beta(t, beta), C, ldc);
    lp_tp_allreduce(t, C, (size_t)M * N);
}

void lp_tp_gemm_sum_pblas(const lp_tp *t, int M, int N, int K, const float *A, const float *B, float *C, float *scratch) {
    /* Column-major view of the row-major data: A_r[M,K] is the (K x M) block r of a (tp K x M)
     * matrix Ag, B_r[N,K] the (K x N) block r of Bg; C^T (N x M) = Bg^T Ag, returned in row blocks
     * of nb = ceil(N/tp) rows (rank r holds rows [r nb, r nb + nb) of C^T). */
    int Kg = K * t->tp, nb = (N + t->tp - 1) / t->tp, zero = 0, one = 1, info;
    int lldo = nb, da[9], db[9], dc[9];
    descinit_(da, &Kg, &M, &K, &M, &zero, &zero, &t->ctxt, &K, &info);
    LP_ASSERT(info == 0, "describing a PBLAS operand");
    descinit_(db, &Kg, &N, &K, &N, &zero, &zero, &t->ctxt, &K, &info);
    LP_ASSERT(info == 0, "describing a PBLAS operand");
    descinit_(dc, &N, &M, &nb, &M, &zero, &zero, &t->ctxt, &lldo, &info);
    LP_ASSERT(info == 0, "describing a PBLAS result");
    float alpha = 1.0f, beta = 0.0f, *mine = scratch, *all = scratch + (size_t)nb * M;
    psgemm_("T", "N", &N, &M, &Kg, &alpha, B, &one, &one, db, A, &one, &one, da, &beta, mine, &one, &one, dc);
    LP_CHECK_MPI(MPI_Allgather(mine, nb * M, MPI_FLOAT, all, nb * M, MPI_FLOAT, t->comm),
                 "gathering a PBLAS product");
    /* C[i, j] = C^T[j, i]: row j of C^T is row j - r nb of rank r's block, column-major ld nb */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int r = j / nb;
            C[(size_t)i * N + j] = all[(size_t)r * nb * M + (size_t)i * nb + (j - r * nb)];
        }
}

double lp_tp_measure(const lp_tp *t, int M, int N, int K, int reps, double seconds[2]) {
    float *a = lp_calloc((size_t)M * K, sizeof(float), "allocating the tensor-parallel probe");
    float *b = lp_calloc((size_t)N * K, sizeof(float), "allocating the tensor-parallel probe");
    float *c0 = lp_calloc((size_t)M * N, sizeof(float), "allocating the tensor-parallel probe");
    float *c1 = lp_calloc((size_t)M * N, sizeof(float), "allocating the tensor-parallel probe");
    int nb = (N + t->tp - 1) / t->tp;
    float *scratch = lp_calloc((size_t)nb * M * (t->tp + 1), sizeof(float), "allocating the tensor-parallel probe");
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(((i + 3 * t->rank) * 7) % 13) * 0.01f - 0.06f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(((i + 5 * t->rank) * 5) % 11) * 0.01f - 0.05f;
    seconds[0] = seconds[1] = 1e30;
    for (int rep = 0; rep <= reps; rep++) { /* rep 0 warms up */
        for (int v = 0; v < 2; v++) {
            LP_CHECK_MPI(MPI_Barrier(t->comm), "timing tensor-parallel products");
            double t0 = MPI_Wtime();
            if (v == 0) lp_tp_gemm_sum(t, 1, M, N, K, a, K, b, K, 0.0f, c0, N);
            else lp_tp_gemm_sum_pblas(t, M, N, K, a, b, c1, scratch);
            double dt = MPI_Wtime() - t0;
            LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, t->comm), "timing tensor-parallel products");
            if (rep > 0 && dt < seconds[v]) seconds[v] = dt;
        }
    }
    double diff = 0, ref = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) {
        double d = fabs((double)c0[i] - c1[i]), r = fabs((double)c0[i]);
        if (d > diff) diff = d;
        if (r > ref) ref = r;
    }
    lp_free(a), lp_free(b), lp_free(c0), lp_free(c1), lp_free(scratch);
    return ref > 0 ? diff / ref : diff;
}
