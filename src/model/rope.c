/* rope.c - rotary position embedding on interleaved pairs (Meta/llama2.c layout). */
#include <stddef.h>
#include <math.h>

#include "llamapro/kernels.h"
#include "llamapro/check.h"

void lp_rope_table_config(float *cos_t, float *sin_t, int T, const lp_config *c) {
    int half = lp_head_dim(c) / 2;
    double inv[1024];
    LP_ASSERT(half <= 1024, "building a RoPE table for head_dim <= 2048");
    lp_rope_inv_freq(c, inv); /* theta^(-2i/hd), llama3-rescaled when the config says so */
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double a = t * inv[i]; /* in double so long contexts keep their phase */
            cos_t[t * half + i] = (float)cos(a);
            sin_t[t * half + i] = (float)sin(a);
        }
}

void lp_rope_apply(float *x, int ld, int N, int T, int n_heads, int hd, const float *cos_t,
                   const float *sin_t, int sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *cr = cos_t + (size_t)(n % T) * half, *sr = sin_t + (size_t)(n % T) * half;
        float *row = x + (size_t)n * ld;
        for (int h = 0; h < n_heads; h++) {
            float *v = row + h * hd;
            for (int i = 0; i < half; i++) {
                float c = cr[i], s = sign * sr[i];
                float x0 = v[2 * i], x1 = v[2 * i + 1];
                v[2 * i] = x0 * c - x1 * s;
                v[2 * i + 1] = x0 * s + x1 * c;
            }
        }
    }
}
