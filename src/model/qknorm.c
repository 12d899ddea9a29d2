/* qknorm.c - Qwen3's q/k norms: RMSNorm over head_dim on every query and key head, before RoPE,
 * in place on the fused projection qkv [N, QKV] (q heads [0, H), k heads [H, H+KV) of hd columns
 * each; v is untouched). Statistics in double as in rmsnorm.c. */
#include <math.h>
#include <string.h>

#include "llamapro/kernels.h"

/* head j of row n: its columns in qkv and its weight (q_norm for j < H, k_norm after) */
#define HEAD(base, n, j) ((base) + (size_t)(n) * QKV + (size_t)(j) * hd)

void lp_qknorm_forward(float *qkv, float *xs, float *rstd, const float *qw, const float *kw, int N, int H, int KV,
                       int hd, int QKV, float eps) {
    int NH = H + KV;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int j = 0; j < NH; j++) {
            float *x = HEAD(qkv, n, j), *save = xs + ((size_t)n * NH + j) * hd;
            const float *w = j < H ? qw : kw;
            double ss = 0;
            for (int i = 0; i < hd; i++) ss += (double)x[i] * x[i];
            float r = (float)(1.0 / sqrt(ss / hd + (double)eps));
            rstd[(size_t)n * NH + j] = r;
            memcpy(save, x, sizeof(float) * (size_t)hd);
            for (int i = 0; i < hd; i++) x[i] = save[i] * r * w[i];
        }
}

void lp_qknorm_backward(float *dqkv, float *dqw, float *dkw, const float *xs, const float *rstd, const float *qw,
                        const float *kw, int N, int H, int KV, int hd, int QKV) {
    int NH = H + KV;
    if (dqw && dkw) { /* dw[i] += sum over rows and heads of dy * xhat; one column per task */
#pragma omp parallel for schedule(static)
        for (int i = 0; i < 2 * hd; i++) {
            int k = i >= hd, c = i % hd, j0 = k ? H : 0, j1 = k ? NH : H;
            double acc = 0;
            for (int n = 0; n < N; n++)
                for (int j = j0; j < j1; j++)
                    acc += (double)(HEAD(dqkv, n, j)[c] * xs[((size_t)n * NH + j) * hd + c] * rstd[(size_t)n * NH + j]);
            (k ? dkw : dqw)[c] += (float)acc;
        }
    }
    /* dx = rstd * (dy*w - xhat * mean(dy*w*xhat)), in place */
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int j = 0; j < NH; j++) {
            float *d = HEAD(dqkv, n, j);
            const float *x = xs + ((size_t)n * NH + j) * hd, *w = j < H ? qw : kw;
            float r = rstd[(size_t)n * NH + j];
            double dot = 0;
            for (int i = 0; i < hd; i++) dot += (double)d[i] * w[i] * x[i];
            float m = (float)(dot * r / hd);
            for (int i = 0; i < hd; i++) d[i] = r * (d[i] * w[i] - x[i] * r * m);
        }
}
