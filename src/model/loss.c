/* loss.c - softmax cross-entropy over the vocabulary. Row statistics in double: V can be 32000+
 * and the loss is compared against a float64 reference. */
#include <stddef.h>
#include <math.h>

#include "llamapro/kernels.h"

double lp_crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V,
                               long *count) {
    double total = 0;
    long cnt = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, cnt)
    for (int n = 0; n < N; n++) {
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
        cnt++;
    }
    *count = cnt;
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
