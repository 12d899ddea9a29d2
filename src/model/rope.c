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

/* One body for both outputs: y (float in place, or bf16) gets the rotated first n_heads*hd
 * columns of each row of x; ROTATE_REST also stores the remaining ld - n_heads*hd columns. */
#define ROPE(y, x, ld, N, T, n_heads, hd, cos_t, sin_t, sign, STORE, REST)                          \
    int half = hd / 2;                                                                               \
    _Pragma("omp parallel for schedule(static)") for (int n = 0; n < N; n++) {                      \
        const float *cr = cos_t + (size_t)(n % T) * half, *sr = sin_t + (size_t)(n % T) * half;     \
        const float *row = x + (size_t)n * ld;                                                       \
        for (int h = 0; h < n_heads; h++) {                                                          \
            const float *v = row + h * hd;                                                           \
            size_t o = (size_t)n * ld + (size_t)h * hd;                                              \
            for (int i = 0; i < half; i++) {                                                         \
                float c = cr[i], s = sign * sr[i];                                                   \
                float x0 = v[2 * i], x1 = v[2 * i + 1];                                              \
                y[o + 2 * i] = STORE(x0 * c - x1 * s);                                               \
                y[o + 2 * i + 1] = STORE(x0 * s + x1 * c);                                           \
            }                                                                                        \
        }                                                                                            \
        if (REST)                                                                                    \
            for (int i = n_heads * hd; i < ld; i++) y[(size_t)n * ld + i] = STORE(row[i]);          \
    }
#define AS_FLOAT(v) (v)

void lp_rope_apply(float *x, int ld, int N, int T, int n_heads, int hd, const float *cos_t,
                   const float *sin_t, int sign) {
    ROPE(x, x, ld, N, T, n_heads, hd, cos_t, sin_t, sign, AS_FLOAT, 0)
}

void lp_rope_apply_to_bf16(lp_bf16 *y, const float *x, int ld, int N, int T, int n_heads, int hd, const float *cos_t,
                           const float *sin_t, int sign) {
    ROPE(y, x, ld, N, T, n_heads, hd, cos_t, sin_t, sign, lp_bf16_of, 1)
}
