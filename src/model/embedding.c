/* embedding.c - token embedding lookup and its gradient. */
#include <string.h>

#include "llamapro/kernels.h"

void lp_embedding_forward(float *out, const int *tokens, const float *table, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, table + (size_t)tokens[n] * C, sizeof(float) * C);
}

/* Serial over rows in order: rows of one token would race, and the order of the additions into a
 * token's row is then fixed (the same bits for any thread count). */
void lp_embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        float *row = dtable + (size_t)tokens[n] * C;
        const float *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}
