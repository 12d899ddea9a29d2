/* gemm.c - lp_gemm_ex on oneDNN matmul (fp32 and bf16) and cblas_sgemm (OpenBLAS, OpenMP build).
 *
 * oneDNN primitives are expensive to create (JIT code generation) and cheap to run, so each
 * distinct call shape gets one cached primitive with its memory objects; a call only swaps data
 * pointers in. A model step has a dozen shapes, all met in the first step (warm-up); after that
 * no call creates or allocates anything. The cache is process-wide and not thread-safe: oneDNN
 * calls come from the main thread only (oneDNN parallelises inside, on the same OpenMP runtime).
 * fp32 calls made inside a parallel region (attention's per-head products, each on one thread)
 * run on OpenBLAS, as does the lp_gemm shorthand (its shapes vary with the decoder's position).
 */
#include "llamapro/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include <dnnl.h>
#include <dnnl_debug.h>

#include "llamapro/blas_select.h"
#include "llamapro/check.h"

int lp_precision_parse(const char *s) {
    if (!strcmp(s, "fp32")) return LP_FP32;
    if (!strcmp(s, "bf16")) return LP_BF16;
    return -1;
}

const char *lp_precision_name(lp_precision p) { return p == LP_BF16 ? "bf16" : "fp32"; }

void lp_to_bf16(lp_bf16 *restrict dst, const float *restrict src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = lp_bf16_of(src[i]);
}

void lp_from_bf16(float *restrict dst, const lp_bf16 *restrict src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dst[i] = lp_bf16_to_float(src[i]);
}

/* ---- oneDNN state ------------------------------------------------------------------------- */
#define DNNL_CHECK(call, what)                                                                       \
    do {                                                                                             \
        dnnl_status_t st_ = (call);                                                                  \
        if (st_ != dnnl_success) lp_fatal_at(__FILE__, __LINE__, (what), dnnl_status_name(st_));     \
    } while (0)

static const char *dnnl_status_name(dnnl_status_t st) {
    switch (st) {
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    default: return "oneDNN error";
    }
}

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static void dnnl_start(void) {
    if (engine) return;
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the CPU engine");
    DNNL_CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags), "creating a stream");
}

/* Row-major [rows, cols] matrix with row stride ld, or its transpose when trans (the stored
 * matrix is then [cols, rows]). */
static void md_strided(dnnl_memory_desc_t *md, int rows, int cols, int ld, int trans, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {rows, cols}, strides = {trans ? 1 : ld, trans ? ld : 1};
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides), "describing a matrix");
}

typedef struct {
    int dt, ta, tb, M, N, K, lda, ldb, ldc, packed; /* dt: the inputs' dnnl_data_type_t */
    int batch; long sa, sb, sc;    /* batched entries (lp_gemm_batch): count and element strides; 0: 2-D */
    int threaded;                  /* batched: run on the calling thread, per-thread operands and scratchpads */
    struct thread_args *per;       /* threaded: [MAX_THREADS], made on a thread's first call */
    float alpha, beta;
    const dnnl_memory_desc_t *wmd; /* packed weights' layout (packed entries) */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
    double secs; long calls;
} entry;

enum { MAX_ENTRIES = 256, MAX_THREADS = 64 };
typedef struct thread_args {
    dnnl_memory_t a, b, c, s; /* operands and user scratchpad of one thread */
    void *scratch;
} thread_args;
static dnnl_stream_t thread_stream[MAX_THREADS];
static entry cache[MAX_ENTRIES];
static int n_cache;

struct lp_packed {
    int N, K, trans;
    dnnl_data_type_t dt; /* op(B) = W^T (trans, W stored [N, K]) or W (W stored [K, N]) */
    dnnl_memory_desc_t md; /* the blocked layout the matmul chose */
    void *data;
    dnnl_primitive_t reorder; /* plain W -> data, kept for lp_gemm_repack */
    dnnl_memory_t src, dst;
};

static dnnl_primitive_t make_matmul(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b,
                                    const dnnl_memory_desc_t *c, float alpha, float beta, int user_scratchpad,
                                    dnnl_primitive_desc_t *pd_out) {
    dnnl_matmul_desc_t d;
    DNNL_CHECK(dnnl_matmul_desc_init(&d, a, b, NULL, c), "describing a bf16 matmul");
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr), "creating matmul attributes");
    if (alpha != 1.0f) DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha), "setting alpha");
    if (user_scratchpad)
        DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "setting the scratchpad mode");
    if (beta != 0.0f) {
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create(&po), "creating post-ops");
        DNNL_CHECK(dnnl_post_ops_append_sum(po, beta), "adding the beta * C post-op");
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po), "setting post-ops");
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &d, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st == dnnl_unimplemented)
        lp_user_error("precision bf16: oneDNN has no bf16 matmul for this CPU's instruction set (%s; it needs AVX-512); "
                      "use precision fp32",
                      dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()));
    DNNL_CHECK(st, "creating a bf16 matmul primitive descriptor");
    dnnl_primitive_t p;
    DNNL_CHECK(dnnl_primitive_create(&p, pd), "creating a bf16 matmul primitive");
    if (pd_out) *pd_out = pd;
    else dnnl_primitive_desc_destroy(pd);
    return p;
}

/* A [batch, rows, cols] stack of such matrices, `stride` elements apart. */
static void md_batched(dnnl_memory_desc_t *md, int batch, long stride, int rows, int cols, int ld, int trans,
                       dnnl_data_type_t dt) {
    dnnl_dims_t dims = {batch, rows, cols}, strides = {stride, trans ? 1 : ld, trans ? ld : 1};
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, 3, dims, dt, strides), "describing a batch of matrices");
}

/* The matmul of a new cache entry and its (unbound) operands. */
static void entry_bind(entry *e, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *c) {
    e->prim = make_matmul(a, b, c, e->alpha, e->beta, e->threaded, NULL);
    DNNL_CHECK(dnnl_memory_create(&e->a, a, engine, DNNL_MEMORY_NONE), "creating a matmul operand");
    DNNL_CHECK(dnnl_memory_create(&e->b, b, engine, DNNL_MEMORY_NONE), "creating a matmul operand");
    DNNL_CHECK(dnnl_memory_create(&e->c, c, engine, DNNL_MEMORY_NONE), "creating a matmul operand");
}

static entry *find_or_create(dnnl_data_type_t dt, int ta, int tb, int M, int N, int K, float alpha, int lda, int ldb,
                             const lp_packed *pk, float beta, int ldc) {
    for (int i = 0; i < n_cache; i++) {
        entry *e = &cache[i];
        if (e->batch == 0 && e->dt == (int)dt && e->ta == ta && e->tb == tb && e->M == M && e->N == N && e->K == K && e->lda == lda && e->ldc == ldc &&
            e->alpha == alpha && e->beta == beta && e->packed == (pk != NULL) &&
            (pk ? dnnl_memory_desc_equal(e->wmd, &pk->md) : e->ldb == ldb))
            return e;
    }
    LP_ASSERT(n_cache < MAX_ENTRIES, "caching more matmul shapes than expected");
    dnnl_start();
    entry *e = &cache[n_cache++];
    *e = (entry){(int)dt, ta, tb, M, N, K, lda, ldb, ldc, pk != NULL, 0, 0, 0, 0, 0, NULL, alpha, beta, pk ? &pk->md : NULL,
                 NULL, NULL, NULL, NULL, 0, 0};
    dnnl_memory_desc_t a, b, c;
    md_strided(&a, M, K, lda, ta, dt);
    if (pk) b = pk->md;
    else md_strided(&b, K, N, ldb, tb, dt);
    md_strided(&c, M, N, ldc, 0, dnnl_f32);
    entry_bind(e, &a, &b, &c);
    return e;
}

static void run_entry(entry *e, const void *A, const void *B, float *C) {
    DNNL_CHECK(dnnl_memory_set_data_handle(e->a, (void *)A), "binding a matmul operand");
    DNNL_CHECK(dnnl_memory_set_data_handle(e->b, (void *)B), "binding a matmul operand");
    DNNL_CHECK(dnnl_memory_set_data_handle(e->c, C), "binding a matmul operand");
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    double t0 = omp_get_wtime();
    DNNL_CHECK(dnnl_primitive_execute(e->prim, stream, 3, args), "running a bf16 matmul");
    DNNL_CHECK(dnnl_stream_wait(stream), "waiting for a bf16 matmul");
    e->secs += omp_get_wtime() - t0;
    e->calls++;
}

static void gemm_onednn(dnnl_data_type_t dt, int ta, int tb, int M, int N, int K, float alpha, const void *A, int lda,
                        const void *B, int ldb, const lp_packed *pk, float beta, float *C, int ldc) {
    LP_ASSERT(!omp_in_parallel(), "calling a oneDNN GEMM inside a parallel region");
    if (pk) LP_ASSERT(tb == pk->trans && pk->N == N && pk->K == K && pk->dt == dt,
                      "using a packed weight of another shape, orientation or precision");
    entry *e = find_or_create(dt, ta, tb, M, N, K, alpha, lda, ldb, pk, beta, ldc);
    run_entry(e, A, pk ? pk->data : B, C);
}

static entry *find_or_create_batch(int batch, int ta, int tb, int M, int N, int K, float alpha, int lda,
                                   long sa, int ldb, long sb, float beta, int ldc, long sc) {
    for (int i = 0; i < n_cache; i++) {
        entry *e = &cache[i];
        if (e->batch == batch && e->ta == ta && e->tb == tb && e->M == M && e->N == N && e->K == K && e->lda == lda &&
            e->ldb == ldb && e->ldc == ldc && e->sa == sa && e->sb == sb && e->sc == sc && e->alpha == alpha && e->beta == beta)
            return e;
    }
    LP_ASSERT(n_cache < MAX_ENTRIES, "caching more matmul shapes than expected");
    dnnl_start();
    entry *e = &cache[n_cache++];
    *e = (entry){dnnl_bf16, ta, tb, M, N, K, lda, ldb, ldc, 0, batch, sa, sb, sc, 1, NULL, alpha, beta, NULL, NULL,
                 NULL, NULL, NULL, 0, 0};
    e->per = lp_calloc(MAX_THREADS, sizeof(thread_args), "allocating per-thread matmul operands");
    dnnl_memory_desc_t a, b, c;
    md_batched(&a, batch, sa, M, K, lda, ta, dnnl_bf16);
    md_batched(&b, batch, sb, K, N, ldb, tb, dnnl_bf16);
    md_batched(&c, batch, sc, M, N, ldc, 0, dnnl_f32);
    entry_bind(e, &a, &b, &c);
    return e;
}

/* Thread tid's operands, scratchpad and stream for entry e (first call of that thread; under the
 * cache's critical section). */
static void thread_bind(const entry *e, thread_args *t, int tid) {
    const_dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_get_primitive_desc(e->prim, &pd), "querying a matmul");
    const dnnl_memory_desc_t *a = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *b = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *c = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    DNNL_CHECK(dnnl_memory_create(&t->a, a, engine, DNNL_MEMORY_NONE), "creating a matmul operand");
    DNNL_CHECK(dnnl_memory_create(&t->b, b, engine, DNNL_MEMORY_NONE), "creating a matmul operand");
    DNNL_CHECK(dnnl_memory_create(&t->c, c, engine, DNNL_MEMORY_NONE), "creating a matmul operand");
    size_t bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (bytes) {
        t->scratch = lp_calloc(bytes, 1, "allocating a matmul scratchpad");
        DNNL_CHECK(dnnl_memory_create(&t->s, sp, engine, t->scratch), "wrapping a matmul scratchpad");
    }
    if (!thread_stream[tid])
        DNNL_CHECK(dnnl_stream_create(&thread_stream[tid], engine, dnnl_stream_default_flags), "creating a stream");
}

void lp_gemm_batch(lp_precision prec, int batch, int trans_a, int trans_b, int M, int N, int K, float alpha,
                   const void *A, int lda, long stride_a, const void *B, int ldb, long stride_b, float beta, float *C,
                   int ldc, long stride_c) {
    if (batch == 0 || M == 0 || N == 0) return;
    if (prec == LP_BF16) { /* a single-threaded primitive with this thread's operands */
        int tid = omp_get_thread_num();
        LP_ASSERT(tid < MAX_THREADS, "running more threads than the GEMM cache holds");
        thread_args *t;
        entry *e;
#pragma omp critical(lp_gemm_cache)
        {
            e = find_or_create_batch(batch, trans_a, trans_b, M, N, K, alpha, lda, stride_a, ldb, stride_b, beta,
                                            ldc, stride_c);
            t = &e->per[tid];
            if (!t->a) thread_bind(e, t, tid);
        }
        DNNL_CHECK(dnnl_memory_set_data_handle(t->a, (void *)A), "binding a matmul operand");
        DNNL_CHECK(dnnl_memory_set_data_handle(t->b, (void *)B), "binding a matmul operand");
        DNNL_CHECK(dnnl_memory_set_data_handle(t->c, C), "binding a matmul operand");
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, t->a}, {DNNL_ARG_WEIGHTS, t->b}, {DNNL_ARG_DST, t->c},
                                   {DNNL_ARG_SCRATCHPAD, t->s}};
        DNNL_CHECK(dnnl_primitive_execute(e->prim, thread_stream[tid], t->s ? 4 : 3, args), "running a bf16 matmul");
        DNNL_CHECK(dnnl_stream_wait(thread_stream[tid]), "waiting for a bf16 matmul");
        return;
    }
    /* fp32: one single-threaded sgemm per matrix, the same whatever the thread count (no nested
     * region when called from a thread: even an inactive one costs a team setup) */
    const float *a = A, *b = B;
    if (omp_in_parallel()) {
        for (int i = 0; i < batch; i++)
            lp_gemm(trans_a, trans_b, M, N, K, alpha, a + (size_t)i * stride_a, lda, b + (size_t)i * stride_b, ldb, beta,
                    C + (size_t)i * stride_c, ldc);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < batch; i++)
        lp_gemm(trans_a, trans_b, M, N, K, alpha, a + (size_t)i * stride_a, lda, b + (size_t)i * stride_b, ldb, beta,
                C + (size_t)i * stride_c, ldc);
}

static double gemm_seconds;

double lp_gemm_seconds(void) { return gemm_seconds; }

void lp_gemm_ex(lp_precision prec, int trans_a, int trans_b, int M, int N, int K, float alpha, const void *A,
                int lda, const void *B, int ldb, const lp_packed *packed, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    int timed = !omp_in_parallel();
    double t0 = timed ? omp_get_wtime() : 0;
    if (prec == LP_BF16) {
        gemm_onednn(dnnl_bf16, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, packed, beta, C, ldc);
    } else if (packed) {
        gemm_onednn(dnnl_f32, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, packed, beta, C, ldc);
    } else {
        /* fp32 stays on OpenBLAS: its sgemm never splits K over threads, which makes every result
         * bitwise the same on any thread count (README, tests/unit/test_gemm_threads.c); oneDNN's
         * fp32 matmul was 10-50% faster here but gives no such guarantee */
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                    alpha, A, lda, B, ldb, beta, C, ldc);
    }
    if (timed) gemm_seconds += omp_get_wtime() - t0;
}

void lp_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

lp_packed *lp_gemm_pack(lp_precision prec, int M, int N, int K, const void *W, int ldw, int trans) {
    dnnl_start();
    dnnl_data_type_t dt = prec == LP_BF16 ? dnnl_bf16 : dnnl_f32;
    lp_packed *p = lp_calloc(1, sizeof *p, "allocating a packed weight");
    p->N = N;
    p->K = K;
    p->trans = trans;
    p->dt = dt;
    /* let the matmul for this shape choose the weights' layout ... */
    dnnl_memory_desc_t a, b, c, plain;
    md_strided(&a, M, K, K, 0, dt);
    dnnl_dims_t wd = {K, N};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&b, 2, wd, dt, dnnl_format_tag_any), "describing packed weights");
    md_strided(&c, M, N, N, 0, dnnl_f32);
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t mm = make_matmul(&a, &b, &c, 1.0f, 0.0f, 0, &pd);
    p->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_destroy(mm);
    dnnl_primitive_desc_destroy(pd);
    /* ... and reorder op(W) (W^T: W read with transposed strides) into it; the reorder is kept so
     * that a trainable layer's packed form can follow its weights after every optimizer step */
    md_strided(&plain, K, N, ldw, trans, dt);
    size_t bytes = dnnl_memory_desc_get_size(&p->md);
    p->data = lp_calloc(bytes, 1, "allocating a packed weight");
    DNNL_CHECK(dnnl_memory_create(&p->src, &plain, engine, DNNL_MEMORY_NONE), "wrapping a weight");
    DNNL_CHECK(dnnl_memory_create(&p->dst, &p->md, engine, p->data), "wrapping a packed weight");
    dnnl_primitive_desc_t rpd;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&rpd, &plain, engine, &p->md, engine, NULL), "describing a packing");
    DNNL_CHECK(dnnl_primitive_create(&p->reorder, rpd), "creating a packing");
    dnnl_primitive_desc_destroy(rpd);
    lp_gemm_repack(p, W);
    return p;
}

void lp_gemm_repack(lp_packed *p, const void *W) {
    DNNL_CHECK(dnnl_memory_set_data_handle(p->src, (void *)W), "binding a weight");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, p->src}, {DNNL_ARG_TO, p->dst}};
    DNNL_CHECK(dnnl_primitive_execute(p->reorder, stream, 2, args), "packing a weight");
    DNNL_CHECK(dnnl_stream_wait(stream), "packing a weight");
}

void lp_gemm_pack_free(lp_packed *p) {
    if (!p) return;
    /* cached primitives keep a pointer to the layout: drop the entries made for this weight */
    for (int i = 0; i < n_cache; i++)
        if (cache[i].wmd == &p->md) cache[i].wmd = NULL, cache[i].packed = -1, cache[i].calls = 0; /* never matches again */
    dnnl_primitive_destroy(p->reorder);
    dnnl_memory_destroy(p->src);
    dnnl_memory_destroy(p->dst);
    lp_free(p->data);
    lp_free(p);
}

size_t lp_gemm_pack_bytes(const lp_packed *p) { return p ? dnnl_memory_desc_get_size(&p->md) : 0; }

/* ---- measurement and self-description ------------------------------------------------------ */
double lp_gemm_measure_gflops_prec(lp_precision prec, int M, int N, int K, int reps) {
    size_t es = prec == LP_BF16 ? sizeof(lp_bf16) : sizeof(float);
    void *a = lp_calloc((size_t)M * K, es, "allocating the GEMM probe");
    void *b = lp_calloc((size_t)N * K, es, "allocating the GEMM probe");
    float *c = lp_calloc((size_t)M * N, sizeof(float), "allocating the GEMM probe");
    for (size_t i = 0; i < (size_t)M * K; i++) {
        float v = (float)((i * 7) % 13) * 0.01f;
        if (prec == LP_BF16) ((lp_bf16 *)a)[i] = lp_bf16_of(v);
        else ((float *)a)[i] = v;
    }
    for (size_t i = 0; i < (size_t)N * K; i++) {
        float v = (float)((i * 5) % 11) * 0.01f;
        if (prec == LP_BF16) ((lp_bf16 *)b)[i] = lp_bf16_of(v);
        else ((float *)b)[i] = v;
    }
    lp_packed *pk = lp_gemm_pack(prec, M, N, K, b, K, 1);
    lp_gemm_ex(prec, 0, 1, M, N, K, 1.0f, a, K, b, K, pk, 0.0f, c, N); /* warm-up: thread pool, pages, JIT */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        lp_gemm_ex(prec, 0, 1, M, N, K, 1.0f, a, K, b, K, pk, 0.0f, c, N);
        double dt = omp_get_wtime() - t0;
        if (dt < best) best = dt;
    }
    lp_gemm_pack_free(pk);
    lp_free(a);
    lp_free(b);
    lp_free(c);
    return 2.0 * M * N * (double)K / best * 1e-9;
}

double lp_gemm_measure_gflops(int M, int N, int K, int reps) { return lp_gemm_measure_gflops_prec(LP_FP32, M, N, K, reps); }

const char *lp_gemm_library(void) {
    static char buf[384];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "layer GEMMs oneDNN %d.%d.%d (%s); attention %s; kernels %s; %d threads", v->major, v->minor,
             v->patch, dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), openblas_get_config(), lp_blas_selection(),
             openblas_get_num_threads());
    return buf;
}

int lp_gemm_bf16_native(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *lp_gemm_library_bf16(void) {
    static char buf[256];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "oneDNN %d.%d.%d, ISA %s%s", v->major, v->minor, v->patch,
             dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()), lp_gemm_bf16_native() ? "" : " (bf16 emulated in fp32 units)");
    return buf;
}

void lp_gemm_profile(FILE *f) {
    for (int i = 0; i < n_cache; i++) {
        const entry *e = &cache[i];
        if (e->calls)
            fprintf(f, "%s gemm %s%s %5d x %5d x %5d%s%s: %6ld calls %8.3f s %6.1f GFLOP/s\n", e->dt == dnnl_bf16 ? "bf16" : "fp32", e->ta ? "T" : "N",
                    e->tb ? "T" : "N", e->M, e->N, e->K, e->packed > 0 ? " packed" : "", e->beta != 0 ? " +C" : "",
                    e->calls, e->secs, 2.0 * e->M * e->N * (double)e->K * (e->batch ? e->batch : 1) * e->calls / e->secs * 1e-9);
    }
}
