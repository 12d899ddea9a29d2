/* swiglu.c - SwiGLU gate: g = silu(h1) * h3.
 * Built with -ffast-math (CMakeLists.txt) so that expf vectorises through glibc's libmvec: these
 * loops are elementwise, so nothing is reassociated, and the vector expf is within 1-2 ulp. */
#include <stddef.h>
#include <math.h>

#include "llamapro/kernels.h"

/* One body for both output types: the fp32 and bf16 variants differ only in the store. */
#define SWIGLU_FORWARD(g, h13, N, F, STORE)                                                         \
    _Pragma("omp parallel for schedule(static)") for (int n = 0; n < N; n++) {                     \
        const float *h1 = h13 + (size_t)n * 2 * F, *h3 = h1 + F;                                    \
        _Pragma("omp simd") for (int i = 0; i < F; i++) {                                           \
            float a = h1[i];                                                                        \
            g[(size_t)n * F + i] = STORE(a / (1.0f + expf(-a)) * h3[i]);                            \
        }                                                                                           \
    }
#define SWIGLU_BACKWARD(dh13, dg, h13, N, F, STORE)                                                 \
    _Pragma("omp parallel for schedule(static)") for (int n = 0; n < N; n++) {                     \
        const float *h1 = h13 + (size_t)n * 2 * F, *h3 = h1 + F, *d = dg + (size_t)n * F;           \
        size_t r = (size_t)n * 2 * F;                                                               \
        _Pragma("omp simd") for (int i = 0; i < F; i++) {                                           \
            float a = h1[i], sig = 1.0f / (1.0f + expf(-a)), silu = a * sig;                        \
            dh13[r + F + i] = STORE(d[i] * silu);                                                   \
            dh13[r + i] = STORE(d[i] * h3[i] * sig * (1.0f + a * (1.0f - sig)));                    \
        }                                                                                           \
    }
#define AS_FLOAT(x) (x)

void lp_swiglu_forward(float *g, const float *h13, int N, int F) { SWIGLU_FORWARD(g, h13, N, F, AS_FLOAT) }

void lp_swiglu_backward(float *dh13, const float *dg, const float *h13, int N, int F) {
    SWIGLU_BACKWARD(dh13, dg, h13, N, F, AS_FLOAT)
}

void lp_swiglu_forward_bf16(lp_bf16 *g, const float *h13, int N, int F) { SWIGLU_FORWARD(g, h13, N, F, lp_bf16_of) }

void lp_swiglu_backward_bf16(lp_bf16 *dh13, const float *dg, const float *h13, int N, int F) {
    SWIGLU_BACKWARD(dh13, dg, h13, N, F, lp_bf16_of)
}
