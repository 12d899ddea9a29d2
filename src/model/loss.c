/* loss.c - softmax cross-entropy over the vocabulary.
 * Built with -ffast-math (CMakeLists.txt) so that expf vectorises through glibc's libmvec (within
 * 1-2 ulp). The row sums of exponentials are taken in double lanes (V can be 32000+ and the loss
 * is compared against a float64 reference); a lane split depends only on V and the row's address
 * alignment (buffers are 64-byte aligned), never on the thread count. The forward saves each
 * row's logsumexp, so the backward is one pass: softmax = exp(logit - lse). */
#include <stddef.h>
#include <math.h>

#include "llamapro/kernels.h"

/* The loss sum over rows in a fixed number of chunks (chunk k holds rows [N*k/K, N*(k+1)/K)), each
 * summed in row order, then the chunk sums in chunk order. The blocking does not depend on the
 * thread count (an OpenMP reduction's does: one partial sum per thread), so neither do the bits. */
enum { LOSS_CHUNKS = 64 };

/* log(sum_v exp(row[v])) of one row, shifted by its max */
static double row_logsumexp(const float *row, int V) {
    float mx = row[0];
#pragma omp simd reduction(max : mx)
    for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int v = 0; v < V; v++) s += (double)expf(row[v] - mx);
    return log(s) + mx;
}

double lp_crossentropy_forward(float *losses, float *lse, const float *logits, const int *targets, int N, int V,
                               long *count) {
    double part[LOSS_CHUNKS];
    long cnt[LOSS_CHUNKS];
#pragma omp parallel for schedule(static)
    for (int k = 0; k < LOSS_CHUNKS; k++) {
        int n0 = (int)((long)N * k / LOSS_CHUNKS), n1 = (int)((long)N * (k + 1) / LOSS_CHUNKS);
        double total = 0;
        long c = 0;
        for (int n = n0; n < n1; n++) {
            if (targets[n] < 0) {
                losses[n] = 0;
                if (lse) lse[n] = 0;
                continue;
            }
            const float *row = logits + (size_t)n * V;
            double z = row_logsumexp(row, V), l = z - row[targets[n]];
            if (lse) lse[n] = (float)z;
            losses[n] = (float)l;
            total += l;
            c++;
        }
        part[k] = total, cnt[k] = c;
    }
    double total = 0;
    long c = 0;
    for (int k = 0; k < LOSS_CHUNKS; k++) total += part[k], c += cnt[k];
    *count = c;
    return total;
}

/* One body for both output types: out[n,:] = (exp(logits[n,:] - lse[n]) - onehot) * scale. The
 * target's value is taken before the row is written (out may be logits). */
#define CE_BACKWARD(out, logits, lse, targets, N, V, scale, STORE)                                   \
    _Pragma("omp parallel for schedule(static)") for (int n = 0; n < N; n++) {                      \
        const float *row = logits + (size_t)n * V;                                                   \
        int t = targets[n];                                                                          \
        if (t < 0) {                                                                                 \
            for (int v = 0; v < V; v++) out[(size_t)n * V + v] = STORE(0.0f);                        \
            continue;                                                                                \
        }                                                                                            \
        float z = lse[n], at = expf(row[t] - z) * scale - scale;                                     \
        _Pragma("omp simd") for (int v = 0; v < V; v++) out[(size_t)n * V + v] = STORE(expf(row[v] - z) * scale); \
        out[(size_t)n * V + t] = STORE(at);                                                          \
    }
#define AS_FLOAT(x) (x)

void lp_crossentropy_backward(float *logits, const float *lse, const int *targets, int N, int V, float scale) {
    CE_BACKWARD(logits, logits, lse, targets, N, V, scale, AS_FLOAT)
}

void lp_crossentropy_backward_bf16(lp_bf16 *dlogits, const float *logits, const float *lse, const int *targets, int N,
                                   int V, float scale) {
    CE_BACKWARD(dlogits, logits, lse, targets, N, V, scale, lp_bf16_of)
}
