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

/* Local sizes of each layer tensor (elements). */
static void local_sizes(const lp_config *c, int tp, size_t n[LP_LAYER_NTENSORS]) {
    size_t C = (size_t)c->dim, hd = (size_t)lp_head_dim(c), Hl = (size_t)(c->n_heads / tp),
           KVl = (size_t)(c->n_kv_heads / tp), Fl = (size_t)(c->hidden_dim / tp);
    n[LP_ATTN_NORM] = n[LP_MLP_NORM] = C;
    n[LP_WQ] = n[LP_WO] = Hl * hd * C;
    n[LP_WK] = n[LP_WV] = KVl * hd * C;
    n[LP_W1] = n[LP_W3] = n[LP_W2] = Fl * C;
}

size_t lp_tp_layer_offset(const lp_config *c, int tp, int kind) {
    size_t n[LP_LAYER_NTENSORS], off = 0;
    local_sizes(c, tp, n);
    for (int t = 0; t < kind; t++) off += n[t];
    return off;
}

size_t lp_tp_layer_numel(const lp_config *c, int tp) { return lp_tp_layer_offset(c, tp, LP_LAYER_NTENSORS); }

/* rows [r0, r0+nr) x columns [c0, c0+nc) of a row-major matrix with ld columns <-> dense local */
static void copy_block(float *full, int ld, int r0, int nr, int c0, int nc, float *local, int to_local) {
    for (int i = 0; i < nr; i++) {
        float *f = full + (size_t)(r0 + i) * ld + c0, *l = local + (size_t)i * nc;
        if (to_local) memcpy(l, f, sizeof(float) * (size_t)nc);
        else memcpy(f, l, sizeof(float) * (size_t)nc);
    }
}

void lp_tp_layer_map(const lp_config *c, int tp, int r, float *full, float *local, int to_local) {
    int C = c->dim, hd = lp_head_dim(c), Yl = c->n_heads / tp * hd, KVl = c->n_kv_heads / tp * hd,
        Fl = c->hidden_dim / tp;
    for (int t = 0; t < LP_LAYER_NTENSORS; t++) {
        float *f = full + lp_layer_tensor_offset(c, t), *l = local + lp_tp_layer_offset(c, tp, t);
        switch (t) {
        case LP_ATTN_NORM:
        case LP_MLP_NORM: copy_block(f, C, 0, 1, 0, C, l, to_local); break;
        case LP_WQ: copy_block(f, C, r * Yl, Yl, 0, C, l, to_local); break;            /* [H hd, C] rows */
        case LP_WK:
        case LP_WV: copy_block(f, C, r * KVl, KVl, 0, C, l, to_local); break;          /* [KV hd, C] rows */
        case LP_WO: copy_block(f, c->n_heads * hd, 0, C, r * Yl, Yl, l, to_local); break; /* [C, H hd] cols */
        case LP_W1:
        case LP_W3: copy_block(f, C, r * Fl, Fl, 0, C, l, to_local); break;            /* [F, C] rows */
        case LP_W2: copy_block(f, c->hidden_dim, 0, C, r * Fl, Fl, l, to_local); break; /* [C, F] cols */
        }
    }
}

void lp_tp_shard(lp_model *m, const lp_tp *t) {
    const lp_config *c = &m->cfg;
    m->tp = t;
    if (lp_tp_size(t) == 1) return;
    size_t n = lp_tp_layer_numel(c, t->tp);
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params) continue;
        float *local = lp_calloc(n, sizeof(float), "allocating a tensor-parallel layer shard");
        lp_tp_layer_map(c, t->tp, t->rank, ly->params, local, 1);
        lp_free(ly->params);
        ly->params = local;
        if (ly->grads) {
            lp_free(ly->grads);
            ly->grads = lp_calloc(n, sizeof(float), "allocating a tensor-parallel gradient shard");
        }
    }
    size_t sizes[LP_LAYER_NTENSORS];
    local_sizes(c, t->tp, sizes);
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *ts = &m->tensors[i];
        if (ts->layer < 0 || !m->layers[ts->layer].params) continue;
        size_t off = lp_tp_layer_offset(c, t->tp, ts->kind);
        ts->numel = sizes[ts->kind];
        ts->data = m->layers[ts->layer].params + off;
        ts->grad = ts->grad ? m->layers[ts->layer].grads + off : NULL;
    }
}

/* Rows (wq, wk, wv, w1, w3: split by output rows) or columns (wo, w2: by input columns). */
static int split_rows(const lp_tensor *ts) { return ts->kind != LP_WO && ts->kind != LP_W2; }

void lp_tp_tensor_gather(const lp_tp *t, const lp_tensor *ts, const float *shard, float *full) {
    size_t n = ts->numel, R = (size_t)ts->shape[0], Cl = (size_t)ts->shape[1] / t->tp;
    float *tmp = NULL;
    if (t->rank == 0 && !split_rows(ts)) tmp = lp_calloc(n * t->tp, sizeof(float), "gathering a sharded tensor");
    /* row blocks arrive in rank order: that is the full tensor */
    LP_CHECK_MPI(MPI_Gather(shard, (int)n, MPI_FLOAT, tmp ? tmp : full, (int)n, MPI_FLOAT, 0, t->comm),
                 "gathering a tensor-parallel shard");
    if (!tmp) return;
    for (int r = 0; r < t->tp; r++)
        for (size_t i = 0; i < R; i++)
            memcpy(full + i * Cl * t->tp + r * Cl, tmp + r * n + i * Cl, Cl * sizeof(float));
    lp_free(tmp);
}

void lp_tp_tensor_take(const lp_tp *t, const lp_tensor *ts, const float *full, float *shard) {
    size_t n = ts->numel, R = (size_t)ts->shape[0], Cl = (size_t)ts->shape[1] / t->tp;
    if (split_rows(ts)) {
        memcpy(shard, full + (size_t)t->rank * n, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < R; i++) memcpy(shard + i * Cl, full + i * Cl * t->tp + t->rank * Cl, Cl * sizeof(float));
}

void lp_tp_group_dims(const lp_config *c, int tp, int g, int *in, int *out) {
    lp_group_dims(c, g, in, out);
    if (g == LP_G_QKV || g == LP_G_W13) *out /= tp; /* split by output rows */
    else *in /= tp;                                 /* wo, w2: by input columns */
}

void lp_tp_allreduce(const lp_tp *t, float *y, size_t n) {
    if (lp_tp_size(t) == 1) return;
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, y, (int)n, MPI_FLOAT, MPI_SUM, t->comm), "all-reducing a tensor-parallel product");
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
