/* attention.c - fused causal grouped-query attention, flash style (FlashAttention-2's forward and
 * backward), in fp32 and bf16. No [T, T] matrix is kept: the forward leaves only each query row's
 * log-sum-exp (lse), and the backward recomputes the probabilities tile by tile from q, k and lse
 * (dV += P^T dO, dP = dO V^T, dS = P (dP - D), dQ += scale dS K, dK += scale dS^T Q, with
 * D = rowsum(dO * O)).
 *
 * Tiles. The sequence is cut into nT tiles of TB positions (the last one padded with zero rows).
 * q, k, v (and dO) are copied (bf16: converted, once per pass) from the fused [N, (H+2KV)*hd] qkv
 * into a unit-major tile layout: per unit (sequence b, kv head g) its tiles one after the other,
 * and in a tile the `group` = H/KV query heads sharing the kv head adjacent:
 *     q[b][g][i][j][t][c], k[b][g][i][t][c], v likewise      (i: tile, t: row in tile, h = g*group + j)
 * so the group's query rows of tile i are one [group*TB, hd] matrix (GQA costs no broadcast: the
 * group's heads share K as one taller product, and dK, dV sum over the group as the K dimension
 * of one product, without races), and a unit's diagonal of tile pairs (i, j = i - d), i = d ..
 * nT-1, is a batch of equally shaped products stored densely one after the other
 * (lp_gemm_batch); the score tiles are laid out the same way. Dense batches matter: oneDNN 2.6
 * runs them with its brgemm kernel (brg:avx512_core_bf16), while the former layout (tile-major
 * over all units, a unit's tiles B*KV matrices apart) got gemm:jit, ~20% slower. The
 * loop runs over diagonals d = 0 .. dmax: the online softmax may meet a row's key tiles in any
 * order, d = 0 (the diagonal tiles, which every row has) comes first, and a sliding window bounds
 * dmax.
 *
 * Threads. A unit is one (sequence, kv head): its rows depend on nothing else, so one parallel
 * region per call runs whole units on threads, and every value is computed the same way on any
 * thread count (bitwise, as fp32 requires). A unit's diagonal d is one lp_gemm_batch call per
 * product over its nT - d tile pairs, on the calling thread: fp32 OpenBLAS sgemm per tile; bf16
 * a single-threaded oneDNN batched matmul (gemm.h). bf16: q, k, v, dO and the probabilities P
 * and dS are rounded to bf16 before their products, which accumulate in fp32; the softmax
 * statistics, lse, D and all accumulators stay fp32.
 *
 * Scratch: one workspace per activation set (lp_attention_ws_floats): score tiles
 * [B*H*Tp, TB] and tile-major copies of q, k, v and the gradients; nothing scales with T*T.
 *
 * Measured (machine nearly idle, load 0.6-1.6): attention alone at the bench shape (B=8 T=256
 * H=KV=8 hd=64, forward + backward of one layer, best of 20): the former kernel (per-head sgemm,
 * stored [B,H,T,T] softmax) 18-26 ms on 2 threads, 30-34 ms on 1; this one fp32 24-31 / 41-46 ms
 * (recomputed scores, 64x64 sgemm calls), bf16 20-25 / 31-39 ms. In `bench` (bench.ini, --expand
 * 2, 2 threads, two alternating rounds) attention per step: bf16 0.112-0.128 s before, 0.121-0.130
 * s now; fp32 0.123-0.125 s before, 0.139-0.142 s now. TB = 128 was slower in both precisions.
 * The unit-major layout (dense batches, brgemm; load 2.4-2.5, same harness, bench shape, fwd +
 * bwd, best of 27): bf16 27-28 ms CPU on 1 thread against 32-33 ms with the tile-major layout
 * (fp32 unchanged in value, every result bitwise the same as before). What remains: oneDNN's
 * products about half, the vectorised expf of the row passes ~10%, the gathers ~15%.
 *
 * Built with -ffast-math (CMakeLists.txt) so expf vectorises (libmvec); no infinities are used:
 * masked scores are skipped by index, never set to -inf.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/gemm.h"
#include "llamapro/kernels.h"

enum { TB = 64 }; /* positions per tile (query and key) */

typedef struct {
    int B, T, H, KV, hd, group, nT, QKV, Y, window, bf;
    size_t NQ, NK; /* query rows B*H*Tp and key rows B*KV*Tp of the tile-major copies */
    /* workspace parts (bf16 parts use the first half of their room) */
    void *q, *k, *v, *p, *dout, *ds;
    float *s, *o, *m, *l, *dp, *dk, *dv;
} geo;

static int n_tiles(int T) { return (T + TB - 1) / TB; }

size_t lp_attention_lse_floats(int B, int T, int H) { return (size_t)B * H * n_tiles(T) * TB; }

size_t lp_attention_ws_floats(int B, int T, int H, int KV, int hd, int backward) {
    size_t NQ = lp_attention_lse_floats(B, T, H), NK = NQ / H * KV;
    size_t f = (NQ + 2 * NK) * hd + 2 * NQ * TB + NQ * hd + 2 * NQ; /* q k v, s p, o, m l */
    if (backward) f += NQ * hd + 2 * NQ * TB + 2 * NK * hd;        /* dout, dp ds, dk dv */
    return f;
}

static geo geo_of(lp_precision prec, float *ws, int B, int T, int H, int KV, int hd, int window, int backward) {
    geo g = {B, T, H, KV, hd, H / KV, n_tiles(T), (H + 2 * KV) * hd, H * hd, window, prec == LP_BF16, 0, 0,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    g.NQ = lp_attention_lse_floats(B, T, H), g.NK = g.NQ / H * KV;
    float *w = ws;
    g.q = w, w += g.NQ * hd;
    g.k = w, w += g.NK * hd;
    g.v = w, w += g.NK * hd;
    g.s = w, w += g.NQ * TB;
    g.p = w, w += g.NQ * TB;
    g.o = w, w += g.NQ * hd;
    g.m = w, w += g.NQ;
    g.l = w, w += g.NQ;
    if (backward) {
        g.dout = w, w += g.NQ * hd;
        g.dp = w, w += g.NQ * TB;
        g.ds = w, w += g.NQ * TB;
        g.dk = w, w += g.NK * hd;
        g.dv = w, w += g.NK * hd;
    }
    LP_ASSERT((size_t)(w - ws) == lp_attention_ws_floats(B, T, H, KV, hd, backward), "laying out the attention workspace");
    return g;
}

/* n floats -> the workspace matrix dst at element e, in the run's precision. */
static inline void put(const geo *g, void *dst, size_t e, const float *x, int n) {
    if (g->bf) {
        lp_bf16 *o = (lp_bf16 *)dst + e;
#pragma omp simd
        for (int c = 0; c < n; c++) o[c] = lp_bf16_of(x[c]);
    } else {
        memcpy((float *)dst + e, x, sizeof(float) * n);
    }
}
static size_t esz(const geo *g) { return g->bf ? sizeof(lp_bf16) : sizeof(float); }
static void *at(const geo *g, void *base, size_t e) { return (char *)base + e * esz(g); }

/* Tile-major row of head `h` (of `nh` heads: H query heads in groups, or KV) at position tq of
 * sequence b: unit (b, h / gs), then tile, then the head in its group, then the row. */
static size_t tm_row(const geo *g, int nh, int b, int h, int tq) {
    int gs = nh / g->KV;
    return ((((size_t)b * g->KV + h / gs) * g->nT + tq / TB) * gs + h % gs) * TB + tq % TB;
}

/* Unit u = (sequence b, kv head kv) owns query heads kv*group .. +group: all work on a unit reads
 * and writes only its own rows, so units run on threads independently. */

/* heads [h0, h0 + nh) of src[N, ld] -> tile-major dst (run's precision), for unit u's rows: its
 * `nh` heads starting at head `first` of the tile-major layout with `nt` heads; zero-padded tail. */
static void gather_unit(const geo *g, int u, void *dst, int nt, int first, int nh, const float *src, int ld, int h0) {
    int b = u / g->KV, hd = g->hd;
    for (int tq = 0; tq < g->nT * TB; tq++)
        for (int h = 0; h < nh; h++) {
            size_t r = tm_row(g, nt, b, first + h, tq) * hd;
            if (tq >= g->T) memset(at(g, dst, r), 0, esz(g) * hd);
            else put(g, dst, r, src + ((size_t)b * g->T + tq) * ld + (size_t)(h0 + first + h) * hd, hd);
        }
}

/* q, k, v of unit u from qkv. */
static void gather_qkv(const geo *g, int u, const float *qkv) {
    int kv = u % g->KV;
    gather_unit(g, u, g->q, g->H, kv * g->group, g->group, qkv, g->QKV, 0);
    gather_unit(g, u, g->k, g->KV, kv, 1, qkv, g->QKV, g->H);
    gather_unit(g, u, g->v, g->KV, kv, 1, qkv, g->QKV, g->H + g->KV);
}

/* tile-major fp32 src (heads [first, first + nh) of nt) -> dst[N, ld] heads h0 + first ..., unit u. */
static void scatter_unit(const geo *g, int u, float *dst, int ld, int h0, int nt, int first, int nh, const float *src) {
    int b = u / g->KV;
    for (int tq = 0; tq < g->T; tq++)
        for (int h = first; h < first + nh; h++)
            memcpy(dst + ((size_t)b * g->T + tq) * ld + (size_t)(h0 + h) * g->hd, src + tm_row(g, nt, b, h, tq) * g->hd,
                   sizeof(float) * g->hd);
}

/* Tile pair (i, i - d) of query row R (tile-major): the unmasked key columns [*lo, *hi] of the
 * tile (empty when hi < lo). */
static void row_mask(const geo *g, size_t R, int d, int *lo, int *hi) {
    int i = (int)(R / ((size_t)g->group * TB) % g->nT), tq = i * TB + (int)(R % TB), sk0 = (i - d) * TB;
    *hi = tq - sk0 < TB - 1 ? tq - sk0 : TB - 1;
    *lo = g->window > 0 && tq - g->window + 1 > sk0 ? tq - g->window + 1 - sk0 : 0;
}

/* Last diagonal with any unmasked entry: key tile j = i - d meets query tile i iff some
 * tq - sk < window, i.e. (d - 1) * TB + 1 < window. */
static int last_diagonal(const geo *g) {
    int dmax = g->nT - 1;
    if (g->window > 0 && (g->window + TB - 2) / TB < dmax) dmax = (g->window + TB - 2) / TB;
    return dmax;
}

/* Diagonal d's products of unit u: element ii is the tile pair (ii + d, ii). Query side (q, dO,
 * O/dQ: [group*TB, hd] each) starts d tiles into the unit, key side (k, v, dK, dV: [TB, hd]) at
 * its tile 0, scores (S, dP, P, dS: [group*TB, TB]) at the unit's first score tile. Each operand's
 * matrices are dense (one after the other), which makes oneDNN choose its brgemm kernel. */

enum { PR_S, PR_DP, PR_PV, PR_DV, PR_DK, PR_DQ };

/* Product `kind` of diagonal d for unit u's n = nT - d tile pairs: one batched call. */
static void product(const geo *g, int kind, int d, int u, float scale) {
    int hd = g->hd, M = g->group * TB, n = g->nT - d;
    lp_precision prec = g->bf ? LP_BF16 : LP_FP32;
    size_t t0 = (size_t)u * g->nT, qe = (t0 + d) * M * hd, ke = t0 * TB * hd, se = t0 * M * TB;
    long qs = (long)M * hd, ks = (long)TB * hd, ss = (long)M * TB;
    float beta = d == 0 ? 0.0f : 1.0f; /* d = 0 visits every row and key tile first */
    switch (kind) {
    case PR_S: /* S = scale Q K^T */
        lp_gemm_batch(prec, n, 0, 1, M, TB, hd, scale, at(g, g->q, qe), hd, qs, at(g, g->k, ke), hd, ks, 0.0f, g->s + se, TB, ss);
        break;
    case PR_DP: /* dP = dO V^T */
        lp_gemm_batch(prec, n, 0, 1, M, TB, hd, 1.0f, at(g, g->dout, qe), hd, qs, at(g, g->v, ke), hd, ks, 0.0f, g->dp + se, TB,
                      ss);
        break;
    case PR_PV: /* O (+)= P V */
        lp_gemm_batch(prec, n, 0, 0, M, hd, TB, 1.0f, at(g, g->p, se), TB, ss, at(g, g->v, ke), hd, ks, beta, g->o + qe, hd, qs);
        break;
    case PR_DV: /* dV (+)= P^T dO: the group's heads are the K dimension */
        lp_gemm_batch(prec, n, 1, 0, TB, hd, M, 1.0f, at(g, g->p, se), TB, ss, at(g, g->dout, qe), hd, qs, beta, g->dv + ke, hd,
                      ks);
        break;
    case PR_DK: /* dK (+)= scale dS^T Q */
        lp_gemm_batch(prec, n, 1, 0, TB, hd, M, scale, at(g, g->ds, se), TB, ss, at(g, g->q, qe), hd, qs, beta, g->dk + ke, hd,
                      ks);
        break;
    default: /* dQ (+)= scale dS K */
        lp_gemm_batch(prec, n, 0, 0, M, hd, TB, scale, at(g, g->ds, se), TB, ss, at(g, g->k, ke), hd, ks, beta, g->o + qe, hd,
                      qs);
    }
}

/* Online softmax over the score rows [r0, r1) of diagonal d: running max m and sum l per row,
 * P = exp(S - m) (rounded to the run's precision; l sums the rounded values the product uses),
 * and O rescaled when m grows. */
static void forward_rows(const geo *g, int d, size_t r0, size_t r1) {
    size_t R0 = (size_t)d * g->group * TB; /* score row r is query row r + R0 */
    for (size_t r = r0; r < r1; r++) {
        size_t R = R0 + r;
        int lo, hi, hd = g->hd;
        row_mask(g, R, d, &lo, &hi);
        const float *s = g->s + r * TB;
        float mx = -FLT_MAX, sum = 0;
        for (int c = lo; c <= hi; c++) mx = s[c] > mx ? s[c] : mx;
        float m_new = d == 0 || mx > g->m[R] ? mx : g->m[R], corr = d == 0 ? 0.0f : expf(g->m[R] - m_new), p[TB];
#pragma omp simd
        for (int c = 0; c < TB; c++) p[c] = c >= lo && c <= hi ? expf(s[c] - m_new) : 0.0f;
        put(g, g->p, r * TB, p, TB);
        if (g->bf)
#pragma omp simd
            for (int c = 0; c < TB; c++) p[c] = lp_bf16_to_float(((const lp_bf16 *)g->p)[r * TB + c]);
#pragma omp simd reduction(+ : sum)
        for (int c = 0; c < TB; c++) sum += p[c];
        g->l[R] = (d == 0 ? 0.0f : g->l[R] * corr) + sum;
        g->m[R] = m_new;
        if (d > 0)
#pragma omp simd
            for (int c = 0; c < hd; c++) g->o[R * hd + c] *= corr;
    }
}

/* P = exp(S - lse), dS = P (dP - D) over the score rows [r0, r1) of diagonal d. */
static void backward_rows(const geo *g, int d, size_t r0, size_t r1, const float *lse) {
    size_t R0 = (size_t)d * g->group * TB;
    for (size_t r = r0; r < r1; r++) {
        size_t R = R0 + r;
        int lo, hi;
        row_mask(g, R, d, &lo, &hi);
        const float *s = g->s + r * TB, *dp = g->dp + r * TB;
        float p[TB], ds[TB], L = lse[R], D = g->m[R];
#pragma omp simd
        for (int c = 0; c < TB; c++) {
            p[c] = c >= lo && c <= hi ? expf(s[c] - L) : 0.0f;
            ds[c] = p[c] * (dp[c] - D);
        }
        put(g, g->p, r * TB, p, TB);
        put(g, g->ds, r * TB, ds, TB);
    }
}

/* y = O / l and lse = m + log l for unit u (padded rows' lse: finite, unused). */
static void forward_finish(const geo *g, int u, float *y, float *lse) {
    int b = u / g->KV, kv = u % g->KV, hd = g->hd;
    for (int tq = 0; tq < g->nT * TB; tq++)
        for (int h = kv * g->group; h < (kv + 1) * g->group; h++) {
            size_t R = tm_row(g, g->H, b, h, tq);
            float inv = 1.0f / g->l[R];
            for (int c = 0; c < hd; c++) g->o[R * hd + c] *= inv;
            lse[R] = g->m[R] + logf(g->l[R]);
        }
    scatter_unit(g, u, y, g->Y, 0, g->H, kv * g->group, g->group, g->o);
}

/* Diagonal d of unit u: its nT - d tile pairs (one thread). */
static void forward_unit_diagonal(const geo *g, int u, int d, float scale) {
    size_t M = (size_t)g->group * TB, r0 = (size_t)u * g->nT * M;
    product(g, PR_S, d, u, scale);
    forward_rows(g, d, r0, r0 + (size_t)(g->nT - d) * M);
    product(g, PR_PV, d, u, scale);
}

void lp_attention_forward(lp_precision prec, float *y, float *lse, float *ws, const float *qkv, int B, int T, int H, int KV,
                          int hd, int window) {
    geo g = geo_of(prec, ws, B, T, H, KV, hd, window, 0);
    float scale = 1.0f / sqrtf((float)hd);
    int units = B * KV, dmax = last_diagonal(&g);
#pragma omp parallel for schedule(static) /* one parallel region, a unit per thread at a time */
    for (int u = 0; u < units; u++) {
        gather_qkv(&g, u, qkv);
        for (int d = 0; d <= dmax; d++) forward_unit_diagonal(&g, u, d, scale);
        forward_finish(&g, u, y, lse);
    }
}

/* The backward's inputs for unit u: q, k, v, dO in tile-major form and D = rowsum(dO * O) in fp32
 * from the fp32 dy and y (in g->m; 0 on padded rows). */
static void backward_start(const geo *g, int u, const float *qkv, const float *dy, const float *y) {
    int b = u / g->KV, kv = u % g->KV, hd = g->hd;
    gather_qkv(g, u, qkv);
    gather_unit(g, u, g->dout, g->H, kv * g->group, g->group, dy, g->Y, 0);
    for (int tq = 0; tq < g->nT * TB; tq++)
        for (int h = kv * g->group; h < (kv + 1) * g->group; h++) {
            float dot = 0;
            if (tq < g->T) {
                const float *a = dy + ((size_t)b * g->T + tq) * g->Y + (size_t)h * hd;
                const float *o = y + ((size_t)b * g->T + tq) * g->Y + (size_t)h * hd;
#pragma omp simd reduction(+ : dot)
                for (int c = 0; c < hd; c++) dot += a[c] * o[c];
            }
            g->m[tm_row(g, g->H, b, h, tq)] = dot;
        }
}

static void backward_finish(const geo *g, int u, float *dqkv) {
    int kv = u % g->KV;
    scatter_unit(g, u, dqkv, g->QKV, 0, g->H, kv * g->group, g->group, g->o);
    scatter_unit(g, u, dqkv, g->QKV, g->H, g->KV, kv, 1, g->dk);
    scatter_unit(g, u, dqkv, g->QKV, g->H + g->KV, g->KV, kv, 1, g->dv);
}

static const int backward_after_rows[] = {PR_DV, PR_DK, PR_DQ};

void lp_attention_backward(lp_precision prec, float *dqkv, float *ws, const float *dy, const float *y, const float *lse,
                           const float *qkv, int B, int T, int H, int KV, int hd, int window) {
    geo g = geo_of(prec, ws, B, T, H, KV, hd, window, 1);
    float scale = 1.0f / sqrtf((float)hd);
    int units = B * KV, dmax = last_diagonal(&g);
    size_t M = (size_t)g.group * TB;
#pragma omp parallel for schedule(static) /* one parallel region, as the forward */
    for (int u = 0; u < units; u++) {
        backward_start(&g, u, qkv, dy, y);
        size_t r0 = (size_t)u * g.nT * M;
        for (int d = 0; d <= dmax; d++) {
            product(&g, PR_S, d, u, scale);
            product(&g, PR_DP, d, u, scale);
            backward_rows(&g, d, r0, r0 + (size_t)(g.nT - d) * M, lse);
            for (int k = 0; k < 3; k++) product(&g, backward_after_rows[k], d, u, scale);
        }
        backward_finish(&g, u, dqkv);
    }
}
