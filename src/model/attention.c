/* attention.c - causal grouped-query attention. Per (sequence, head), GEMMs through lp_gemm that
 * read q, k, v in place from the fused [N, (H+2KV)*hd] projection (row stride QKV).
 *
 * Causality in blocks: query rows are taken QB at a time, and rows [r0, r1) only meet keys
 * [0, r1); so the GEMMs skip most of the masked upper triangle (with 4 blocks, 62% of the square
 * is computed instead of 100%) while staying large enough to run at GEMM speed.
 *
 * Query head h reads key/value head h / (H/KV). In the backward pass several query heads add into
 * one key/value head's gradient, so work is split over (sequence, kv head) pairs and the heads of
 * a group run in order on one thread: no two threads write the same dk/dv rows.
 *
 * Built with -ffast-math (CMakeLists.txt) so the softmax's expf vectorises (libmvec).
 */
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <string.h>

#include "llamapro/gemm.h"
#include "llamapro/kernels.h"

enum { QB = 64 }; /* query rows per causal block */

/* Softmax of row t of p over columns [lo, t], zero over [0, lo) and (t, ncols). */
static void softmax_row(float *row, int lo, int t, int ncols) {
    float mx = row[lo], sum = 0;
    for (int s = lo + 1; s <= t; s++) mx = row[s] > mx ? row[s] : mx;
#pragma omp simd reduction(+ : sum)
    for (int s = lo; s <= t; s++) {
        row[s] = expf(row[s] - mx);
        sum += row[s];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int s = lo; s <= t; s++) row[s] *= inv;
    if (lo > 0) memset(row, 0, sizeof(float) * (size_t)lo);
    if (ncols > t + 1) memset(row + t + 1, 0, sizeof(float) * (size_t)(ncols - t - 1));
}

void lp_attention_forward(float *y, float *att, const float *qkv, int B, int T, int H, int KV, int hd, int window) {
    int QKV = (H + 2 * KV) * hd, Y = H * hd, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)b * T * QKV + h * hd;
            const float *k = qkv + (size_t)b * T * QKV + (H + h / group) * hd;
            const float *v = qkv + (size_t)b * T * QKV + (H + KV + h / group) * hd;
            float *p = att + ((size_t)b * H + h) * T * T;
            float *yh = y + (size_t)b * T * Y + h * hd;
            for (int r0 = 0; r0 < T; r0 += QB) {
                int r1 = r0 + QB < T ? r0 + QB : T, rows = r1 - r0;
                /* p[r0:r1, 0:r1] = scale * q[r0:r1] k[0:r1]^T */
                lp_gemm(0, 1, rows, r1, hd, scale, q + (size_t)r0 * QKV, QKV, k, QKV, 0.0f, p + (size_t)r0 * T, T);
                for (int t = r0; t < r1; t++) softmax_row(p + (size_t)t * T, window > 0 && t >= window ? t - window + 1 : 0, t, T);
                /* y[r0:r1] = p[r0:r1, 0:r1] v[0:r1] */
                lp_gemm(0, 0, rows, hd, r1, 1.0f, p + (size_t)r0 * T, T, v, QKV, 0.0f, yh + (size_t)r0 * Y, Y);
            }
        }
}

void lp_attention_backward(float *dqkv, float *scratch, const float *dy, const float *att,
                           const float *qkv, int B, int T, int H, int KV, int hd) {
    int QKV = (H + 2 * KV) * hd, Y = H * hd, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < KV; g++) {
            float *ds = scratch + (size_t)omp_get_thread_num() * T * T;
            const float *k = qkv + (size_t)b * T * QKV + (H + g) * hd;
            const float *v = qkv + (size_t)b * T * QKV + (H + KV + g) * hd;
            float *dk = dqkv + (size_t)b * T * QKV + (H + g) * hd;
            float *dv = dqkv + (size_t)b * T * QKV + (H + KV + g) * hd;
            for (int t = 0; t < T; t++) { /* dk, dv accumulate over heads and blocks */
                memset(dk + (size_t)t * QKV, 0, sizeof(float) * hd);
                memset(dv + (size_t)t * QKV, 0, sizeof(float) * hd);
            }
            for (int j = 0; j < group; j++) {
                int h = g * group + j;
                const float *q = qkv + (size_t)b * T * QKV + h * hd;
                const float *p = att + ((size_t)b * H + h) * T * T;
                const float *dyh = dy + (size_t)b * T * Y + h * hd;
                float *dq = dqkv + (size_t)b * T * QKV + h * hd;
                for (int r0 = 0; r0 < T; r0 += QB) {
                    int r1 = r0 + QB < T ? r0 + QB : T, rows = r1 - r0;
                    const float *pr = p + (size_t)r0 * T;
                    float *dsr = ds + (size_t)r0 * T;
                    /* dv[0:r1] += p_r^T dy_r */
                    lp_gemm(1, 0, r1, hd, rows, 1.0f, pr, T, dyh + (size_t)r0 * Y, Y, 1.0f, dv, QKV);
                    /* dp_r = dy_r v[0:r1]^T ; ds = p * (dp - sum(dp * p)) */
                    lp_gemm(0, 1, rows, r1, hd, 1.0f, dyh + (size_t)r0 * Y, Y, v, QKV, 0.0f, dsr, T);
                    for (int t = r0; t < r1; t++) {
                        float *dr = ds + (size_t)t * T;
                        const float *prow = p + (size_t)t * T;
                        float dot = 0;
#pragma omp simd reduction(+ : dot)
                        for (int s = 0; s <= t; s++) dot += dr[s] * prow[s];
#pragma omp simd
                        for (int s = 0; s <= t; s++) dr[s] = prow[s] * (dr[s] - dot);
                        if (r1 > t + 1) memset(dr + t + 1, 0, sizeof(float) * (size_t)(r1 - t - 1));
                    }
                    /* dq_r = scale * ds_r k[0:r1] ; dk[0:r1] += scale * ds_r^T q_r */
                    lp_gemm(0, 0, rows, hd, r1, scale, dsr, T, k, QKV, 0.0f, dq + (size_t)r0 * QKV, QKV);
                    lp_gemm(1, 0, r1, hd, rows, scale, dsr, T, q + (size_t)r0 * QKV, QKV, 1.0f, dk, QKV);
                }
            }
        }
}
