/* loss.c - softmax cross-entropy over the vocabulary. Row statistics in double: V can be 32000+
 * and the loss is compared against a float64 reference. */
#include <stddef.h>
#include <math.h>

#include "llamapro/kernels.h"

/* The loss sum over rows in a fixed number of chunks (chunk k holds rows [N*k/K, N*(k+1)/K)), each
 * summed in row order, then the chunk sums in chunk order. The blocking does not depend on the
 * thread count (an OpenMP reduction's does: one partial sum per thread), so neither do the bits. */
enum { LOSS_CHUNKS = 64 };

double lp_crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V,
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
                continue;
            }
            const float *row = logits + (size_t)n * V;
            float mx = row[0];
            for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
            double s = 0;
            for (int v = 0; v < V; v++) s += exp((double)(row[v] - mx));
            double l = log(s) + mx - row[targets[n]];
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

void lp_crossentropy_backward(float *logits, const int *targets, int N, int V, float scale) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        if (targets[n] < 0) {
            for (int v = 0; v < V; v++) row[v] = 0;
            continue;
        }
        float mx = row[0];
        for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
        float s = 0;
        for (int v = 0; v < V; v++) {
            row[v] = expf(row[v] - mx);
            s += row[v];
        }
        float k = scale / s;
        for (int v = 0; v < V; v++) row[v] *= k;
        row[targets[n]] -= scale;
    }
}
