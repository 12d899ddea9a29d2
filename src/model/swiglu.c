/* swiglu.c - SwiGLU gate: g = silu(h1) * h3.
 * Built with -ffast-math (CMakeLists.txt) so that expf vectorises through glibc's libmvec: these
 * loops are elementwise, so nothing is reassociated, and the vector expf is within 1-2 ulp. */
#include <stddef.h>
#include <math.h>

#include "llamapro/kernels.h"

void lp_swiglu_forward(float *g, const float *h13, int N, int F) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *h1 = h13 + (size_t)n * 2 * F, *h3 = h1 + F;
        float *gr = g + (size_t)n * F;
#pragma omp simd
        for (int i = 0; i < F; i++) {
            float a = h1[i];
            gr[i] = a / (1.0f + expf(-a)) * h3[i];
        }
    }
}

void lp_swiglu_backward(float *dh13, const float *dg, const float *h13, int N, int F) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *h1 = h13 + (size_t)n * 2 * F, *h3 = h1 + F, *d = dg + (size_t)n * F;
        float *d1 = dh13 + (size_t)n * 2 * F, *d3 = d1 + F;
#pragma omp simd
        for (int i = 0; i < F; i++) {
            float a = h1[i], sig = 1.0f / (1.0f + expf(-a)), silu = a * sig;
            d3[i] = d[i] * silu;
            d1[i] = d[i] * h3[i] * sig * (1.0f + a * (1.0f - sig));
        }
    }
}
