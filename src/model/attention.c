/* attention.c - causal grouped-query attention. Per (sequence, head) two GEMMs through lp_gemm,
 * reading q, k, v in place from the fused [N, (H+2KV)*hd] projection (row stride QKV).
 *
 * Query head h reads key/value head h / (H/KV). In the backward pass several query heads add
 * into one key/value head's gradient, so work is split over (sequence, kv head) pairs and the
 * heads of a group run in order on one thread: no two threads write the same dk/dv rows.
 */
#include <math.h>
#include <omp.h>
#include <stddef.h>

#include "llamapro/gemm.h"
#include "llamapro/kernels.h"

void lp_attention_forward(float *y, float *att, const float *qkv, int B, int T, int H, int KV, int hd) {
    int QKV = (H + 2 * KV) * hd, Y = H * hd, group = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)b * T * QKV + h * hd;
            const float *k = qkv + (size_t)b * T * QKV + (H + h / group) * hd;
            const float *v = qkv + (size_t)b * T * QKV + (H + KV + h / group) * hd;
            float *p = att + ((size_t)b * H + h) * T * T;
            /* p[T,T] = scale * q k^T (the upper triangle is computed and then zeroed: one GEMM
             * call beats T triangular dot products) */
            lp_gemm(0, 1, T, T, hd, scale, q, QKV, k, QKV, 0.0f, p, T);
            for (int t = 0; t < T; t++) {
                float *row = p + (size_t)t * T;
                float mx = row[0];
                for (int s = 1; s <= t; s++) mx = row[s] > mx ? row[s] : mx;
                float sum = 0;
                for (int s = 0; s <= t; s++) {
                    row[s] = expf(row[s] - mx);
                    sum += row[s];
                }
                float inv = 1.0f / sum;
                for (int s = 0; s <= t; s++) row[s] *= inv;
                for (int s = t + 1; s < T; s++) row[s] = 0.0f;
            }
            lp_gemm(0, 0, T, hd, T, 1.0f, p, T, v, QKV, 0.0f, y + (size_t)b * T * Y + h * hd, Y);
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
            for (int j = 0; j < group; j++) {
                int h = g * group + j;
                const float *q = qkv + (size_t)b * T * QKV + h * hd;
                const float *p = att + ((size_t)b * H + h) * T * T;
                const float *dyh = dy + (size_t)b * T * Y + h * hd;
                float *dq = dqkv + (size_t)b * T * QKV + h * hd;
                float beta = j == 0 ? 0.0f : 1.0f; /* first head of the group initialises dk, dv */
                /* dv += p^T dy */
                lp_gemm(1, 0, T, hd, T, 1.0f, p, T, dyh, Y, beta, dv, QKV);
                /* dp = dy v^T, then the softmax backward: ds = p * (dp - sum(dp * p)) */
                lp_gemm(0, 1, T, T, hd, 1.0f, dyh, Y, v, QKV, 0.0f, ds, T);
                for (int t = 0; t < T; t++) {
                    float *dr = ds + (size_t)t * T;
                    const float *pr = p + (size_t)t * T;
                    float dot = 0;
                    for (int s = 0; s <= t; s++) dot += dr[s] * pr[s];
                    for (int s = 0; s <= t; s++) dr[s] = pr[s] * (dr[s] - dot);
                    for (int s = t + 1; s < T; s++) dr[s] = 0.0f;
                }
                /* dq = scale * ds k ; dk += scale * ds^T q */
                lp_gemm(0, 0, T, hd, T, scale, ds, T, k, QKV, 0.0f, dq, QKV);
                lp_gemm(1, 0, T, hd, T, scale, ds, T, q, QKV, beta, dk, QKV);
            }
        }
}
