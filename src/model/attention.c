/* attention.c - fused causal grouped-query attention, flash style (FlashAttention-2's forward and
 * backward), in fp32 and bf16. No [T, T] matrix is kept: the forward leaves only each query row's
 * log-sum-exp (lse), and the backward recomputes the probabilities tile by tile from q, k and lse.
 *
 * Tiles. The sequence is cut into nT tiles of TB positions (the last one padded with zero rows).
 * q, k, v are copied (bf16: converted, once per layer call) from the fused [N, (H+2KV)*hd] qkv
 * into a tile-major layout where the TB-row blocks of one tile of all (sequence, head) pairs
 * follow each other, and the `group` = H/KV query heads sharing a kv head are adjacent:
 *     q[i][b][h][t][c], k[i][b][g][t][c], v likewise        (i: tile, t: row in tile, h = g*group + j)
 * so for kv head g the group's query rows of tile i are one [group*TB, hd] matrix (GQA costs no
 * broadcast: the group's heads share K as one taller product), and a whole diagonal of tile
 * pairs, (i, j = i - d) for i = d .. nT-1 over all (b, g), is ONE batch of equally shaped
 * products at constant strides (lp_gemm_batch). The loop runs over diagonals d = 0 .. dmax: the
 * online softmax may meet a row's key tiles in any order, d = 0 (the diagonal tiles, which every
 * row has) comes first, and the window (if any) bounds dmax. Calls per layer: 2 (dmax+1) forward,
 * 5 (dmax+1) backward, each over (nT-d)*B*KV products.
 *
 * Scratch: one workspace per activation set (lp_attention_ws_floats), a few [B*H*Tp, TB] score
 * tiles and tile-major copies of q, k, v and the gradients; nothing scales with T*T.
 *
 * Precision. fp32: products are OpenBLAS sgemm, one per matrix on one thread, elementwise work per
 * row: every value is computed the same way on any thread count (bitwise). bf16: q, k, v, dO and
 * the probabilities P and dS are rounded to bf16 before their products, which accumulate in fp32
 * (oneDNN); the softmax statistics, lse, D = rowsum(dO * O) and all accumulators stay fp32.
 *
 * Measured (bench config, B=8 T=256 H=KV=8 hd=64, 10 layers, OMP_NUM_THREADS=2): see gemm.h's
 * lp_gemm_batch and the report in the commit message; the former per-head sgemm kernel with a
 * stored [B,H,T,T] softmax took 0.114 s/step in bf16 and fp32 alike.
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

/* Tile-major row of head `h` (of `nh` heads) at position tq of sequence b. */
static size_t tm_row(const geo *g, int nh, int b, int h, int tq) {
    return (((size_t)(tq / TB) * g->B + b) * nh + h) * TB + tq % TB;
}

/* heads [h0, h0 + nh) of each row of src[N, ld] (in the run's precision) -> tile-major dst;
 * rows of the padded tail are zero. */
static void gather(const geo *g, void *dst, const float *src, int ld, int h0, int nh) {
    int Tp = g->nT * TB, hd = g->hd;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < g->B; b++)
        for (int tq = 0; tq < Tp; tq++)
            for (int h = 0; h < nh; h++) {
                size_t r = tm_row(g, nh, b, h, tq) * hd;
                if (tq >= g->T) memset(at(g, dst, r), 0, esz(g) * hd);
                else put(g, dst, r, src + ((size_t)b * g->T + tq) * ld + (size_t)(h0 + h) * hd, hd);
            }
}

/* tile-major fp32 src -> heads [h0, h0 + nh) of dst[N, ld] (real rows only). */
static void scatter(const geo *g, float *dst, int ld, int h0, int nh, const float *src) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < g->B; b++)
        for (int tq = 0; tq < g->T; tq++)
            for (int h = 0; h < nh; h++)
                memcpy(dst + ((size_t)b * g->T + tq) * ld + (size_t)(h0 + h) * g->hd, src + tm_row(g, nh, b, h, tq) * g->hd,
                       sizeof(float) * g->hd);
}

/* Tile pair (i, i - d) of query row R (tile-major): the query's position and the unmasked key
 * columns [*lo, *hi] of the tile (empty when hi < lo). */
static int row_mask(const geo *g, size_t R, int d, int *lo, int *hi) {
    int i = (int)(R / ((size_t)g->B * g->H * TB)), tq = i * TB + (int)(R % TB), sk0 = (i - d) * TB;
    *hi = tq - sk0 < TB - 1 ? tq - sk0 : TB - 1;
    *lo = g->window > 0 && tq - g->window + 1 > sk0 ? tq - g->window + 1 - sk0 : 0;
    return tq;
}

/* Last diagonal with any unmasked entry: key tile j = i - d meets query tile i iff some
 * tq - sk < window, i.e. (d - 1) * TB + 1 < window. */
static int last_diagonal(const geo *g) {
    int dmax = g->nT - 1;
    if (g->window > 0 && (g->window + TB - 2) / TB < dmax) dmax = (g->window + TB - 2) / TB;
    return dmax;
}

/* Diagonal d's products share one shape: nb = (nT-d)*B*KV matrices; query side (q, dO, S, P, dS,
 * dQ) starts d tiles in, key side (k, v, dK, dV) at tile 0. */
static int n_batch(const geo *g, int d) { return (g->nT - d) * g->B * g->KV; }
static size_t q_off(const geo *g, int d) { return (size_t)d * g->B * g->H * TB; } /* in rows */

/* S[nb][group*TB][TB] = scale * X_d K^T: the scores (X = q) or dP (X = dO, K = v). */
static void scores(const geo *g, int d, float alpha, void *x, void *k, float *out) {
    int hd = g->hd, M = g->group * TB;
    lp_gemm_batch(g->bf ? LP_BF16 : LP_FP32, n_batch(g, d), 0, 1, M, TB, hd, alpha, at(g, x, q_off(g, d) * hd), hd,
                  (long)M * hd, k, hd, (long)TB * hd, 0.0f, out, TB, (long)M * TB);
}

void lp_attention_forward(lp_precision prec, float *y, float *lse, float *ws, const float *qkv, int B, int T, int H, int KV,
                          int hd, int window) {
    geo g = geo_of(prec, ws, B, T, H, KV, hd, window, 0);
    float scale = 1.0f / sqrtf((float)hd);
    gather(&g, g.q, qkv, g.QKV, 0, H);
    gather(&g, g.k, qkv, g.QKV, H, KV);
    gather(&g, g.v, qkv, g.QKV, H + KV, KV);
    for (int d = 0, dmax = last_diagonal(&g); d <= dmax; d++) {
        scores(&g, d, scale, g.q, g.k, g.s);
        size_t rows = (size_t)n_batch(&g, d) * g.group * TB, R0 = q_off(&g, d);
        /* online softmax: running max m and sum l per row; O is rescaled when m grows */
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            size_t R = R0 + r;
            int lo, hi;
            row_mask(&g, R, d, &lo, &hi);
            const float *s = g.s + r * TB;
            float mx = -FLT_MAX, sum = 0;
            for (int c = lo; c <= hi; c++) mx = s[c] > mx ? s[c] : mx;
            float m_new = d == 0 || mx > g.m[R] ? mx : g.m[R], corr = d == 0 ? 0.0f : expf(g.m[R] - m_new), p[TB];
#pragma omp simd
            for (int c = 0; c < TB; c++) p[c] = c >= lo && c <= hi ? expf(s[c] - m_new) : 0.0f;
            put(&g, g.p, r * TB, p, TB);
            if (g.bf) /* l sums the probabilities the product will use */
#pragma omp simd
                for (int c = 0; c < TB; c++) p[c] = lp_bf16_to_float(((const lp_bf16 *)g.p)[r * TB + c]);
#pragma omp simd reduction(+ : sum)
            for (int c = 0; c < TB; c++) sum += p[c];
            g.l[R] = (d == 0 ? 0.0f : g.l[R] * corr) + sum;
            g.m[R] = m_new;
            if (d > 0)
#pragma omp simd
                for (int c = 0; c < hd; c++) g.o[R * hd + c] *= corr;
        }
        /* O[tiles d..] (+)= P V[tiles 0..] */
        int M = g.group * TB;
        lp_gemm_batch(prec, n_batch(&g, d), 0, 0, M, hd, TB, 1.0f, g.p, TB, (long)M * TB, g.v, hd, (long)TB * hd,
                      d == 0 ? 0.0f : 1.0f, g.o + R0 * hd, hd, (long)M * hd);
    }
    /* y = O / l on real rows; lse = m + log l on all rows (padded ones too: finite, unused) */
#pragma omp parallel for schedule(static)
    for (size_t R = 0; R < g.NQ; R++) {
        float inv = 1.0f / g.l[R];
        for (int c = 0; c < hd; c++) g.o[R * hd + c] *= inv;
        lse[R] = g.m[R] + logf(g.l[R]);
    }
    scatter(&g, y, g.Y, 0, H, g.o);
}

void lp_attention_backward(lp_precision prec, float *dqkv, float *ws, const float *dy, const float *y, const float *lse,
                           const float *qkv, int B, int T, int H, int KV, int hd, int window) {
    geo g = geo_of(prec, ws, B, T, H, KV, hd, window, 1);
    float scale = 1.0f / sqrtf((float)hd);
    gather(&g, g.q, qkv, g.QKV, 0, H);
    gather(&g, g.k, qkv, g.QKV, H, KV);
    gather(&g, g.v, qkv, g.QKV, H + KV, KV);
    gather(&g, g.dout, dy, g.Y, 0, H);
    /* D = rowsum(dO * O) in fp32 from the fp32 dy and y (tile-major in g.m; 0 on padded rows) */
    int Tp = g.nT * TB;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int tq = 0; tq < Tp; tq++)
            for (int h = 0; h < H; h++) {
                float dot = 0;
                if (tq < T) {
                    const float *a = dy + ((size_t)b * T + tq) * g.Y + (size_t)h * hd, *o = y + ((size_t)b * T + tq) * g.Y + (size_t)h * hd;
#pragma omp simd reduction(+ : dot)
                    for (int c = 0; c < hd; c++) dot += a[c] * o[c];
                }
                g.m[tm_row(&g, H, b, h, tq)] = dot;
            }
    int M = g.group * TB;
    for (int d = 0, dmax = last_diagonal(&g); d <= dmax; d++) {
        int nb = n_batch(&g, d);
        size_t rows = (size_t)nb * M, R0 = q_off(&g, d);
        float beta = d == 0 ? 0.0f : 1.0f;
        scores(&g, d, scale, g.q, g.k, g.s);  /* S = scale Q K^T */
        scores(&g, d, 1.0f, g.dout, g.v, g.dp); /* dP = dO V^T */
        /* P = exp(S - lse), dS = P (dP - D) */
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < rows; r++) {
            size_t R = R0 + r;
            int lo, hi;
            row_mask(&g, R, d, &lo, &hi);
            const float *s = g.s + r * TB, *dp = g.dp + r * TB;
            float p[TB], ds[TB], L = lse[R], D = g.m[R];
#pragma omp simd
            for (int c = 0; c < TB; c++) {
                p[c] = c >= lo && c <= hi ? expf(s[c] - L) : 0.0f;
                ds[c] = p[c] * (dp[c] - D);
            }
            put(&g, g.p, r * TB, p, TB);
            put(&g, g.ds, r * TB, ds, TB);
        }
        lp_precision pr = prec;
        /* dV[tiles 0..] (+)= P^T dO and dK (+)= scale dS^T Q: the group's heads are the K dimension */
        lp_gemm_batch(pr, nb, 1, 0, TB, hd, M, 1.0f, g.p, TB, (long)M * TB, at(&g, g.dout, R0 * hd), hd, (long)M * hd,
                      beta, g.dv, hd, (long)TB * hd);
        lp_gemm_batch(pr, nb, 1, 0, TB, hd, M, scale, g.ds, TB, (long)M * TB, at(&g, g.q, R0 * hd), hd, (long)M * hd,
                      beta, g.dk, hd, (long)TB * hd);
        /* dQ[tiles d..] (+)= scale dS K */
        lp_gemm_batch(pr, nb, 0, 0, M, hd, TB, scale, g.ds, TB, (long)M * TB, g.k, hd, (long)TB * hd, beta, g.o + R0 * hd,
                      hd, (long)M * hd);
    }
    scatter(&g, dqkv, g.QKV, 0, H, g.o);
    scatter(&g, dqkv, g.QKV, H, KV, g.dk);
    scatter(&g, dqkv, g.QKV, H + KV, KV, g.dv);
}
