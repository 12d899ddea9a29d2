/* test_elementwise.c - the fused elementwise kernels of a block and the head (kernels.h) against
 * references computed here in double: RMSNorm forward with its bf16 output and residual copy,
 * RMSNorm backward writing dx = res + rmsnorm'(dy) and bf16(dx) (checked against central finite
 * differences of a double forward), cross-entropy forward/backward from the saved logsumexp (fp32
 * in place and bf16), and RoPE written to bf16. bf16 outputs must be the round-to-nearest-even of
 * the kernel's own fp32 value (rounded here with frexp/rint, independently of lp_bf16_of) and
 * within half a bf16 ulp (2^-8 relative: 8 significant bits) plus the fp32 error of the double reference. The fused
 * kernels keep the bits of one thread on two (README "Thread-count invariance"). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <omp.h>

#include "llamapro/kernels.h"
#include "llamapro/rng.h"

/* x rounded to 8 significant bits, half to even (bf16's rounding of a normal float) */
static float ref_bf16(float x) {
    if (x == 0) return x;
    int e;
    double f = frexp((double)x, &e);
    return (float)ldexp(rint(ldexp(f, 8)), e - 8);
}

static float bf16_value(lp_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void fill(float *x, size_t n, uint64_t seed, float scale) {
    lp_rng r;
    lp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = scale * ((float)lp_rng_below(&r, 1u << 20) / (1 << 20) - 0.5f);
}

/* every bf16 element is the rounding of the matching fp32 one */
static void assert_rounding_of(const lp_bf16 *h, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (bf16_value(h[i]) != ref_bf16(f[i])) fail_msg("element %zu: bf16 %.9g, rounding of %.9g is %.9g", i, bf16_value(h[i]), f[i], ref_bf16(f[i]));
}

enum { N = 37, C = 72 };

/* double RMSNorm of one row: y = x / sqrt(mean x^2 + eps) * w */
static void ref_rmsnorm_row(double *y, const double *x, const float *w, int n, double eps) {
    double ss = 0;
    for (int c = 0; c < n; c++) ss += x[c] * x[c];
    double r = 1.0 / sqrt(ss / n + eps);
    for (int c = 0; c < n; c++) y[c] = x[c] * r * w[c];
}

static void test_rmsnorm_forward_fused(void **state) {
    (void)state;
    float x[N * C], w[C], y[N * C], y2[N * C], xc[N * C], rstd[N], rstd2[N];
    lp_bf16 yh[N * C];
    fill(x, N * C, 1, 4.0f), fill(w, C, 2, 2.0f);
    float eps = 1e-5f;
    lp_rmsnorm_forward_fused(y, yh, xc, rstd, x, w, N, C, eps);
    double worst = 0;
    for (int n = 0; n < N; n++) {
        double xd[C], yd[C];
        for (int c = 0; c < C; c++) xd[c] = x[n * C + c];
        ref_rmsnorm_row(yd, xd, w, C, eps);
        for (int c = 0; c < C; c++) {
            worst = fmax(worst, fabs(y[n * C + c] - yd[c]) / (fabs(yd[c]) + 1e-3));
            assert_true(fabs(bf16_value(yh[n * C + c]) - yd[c]) <= 0x1p-8 * fabs(yd[c]) + 1e-6);
        }
    }
    printf("rmsnorm forward: worst relative error %.3g\n", worst);
    assert_true(worst <= 1e-6);
    assert_memory_equal(xc, x, sizeof x);
    assert_rounding_of(yh, y, N * C);
    /* the unfused form gives the same bits */
    lp_rmsnorm_forward(y2, rstd2, x, w, N, C, eps);
    assert_memory_equal(y, y2, sizeof y);
    assert_memory_equal(rstd, rstd2, sizeof rstd);
}

/* sum_c dy[c] * rmsnorm(x)[c] in double: its gradient in x is rmsnorm'(dy) */
static double probe(const double *x, const float *dy, const float *w, double eps) {
    double y[C], s = 0;
    ref_rmsnorm_row(y, x, w, C, eps);
    for (int c = 0; c < C; c++) s += dy[c] * y[c];
    return s;
}

static void test_rmsnorm_backward_residual(void **state) {
    (void)state;
    static float x[N * C], w[C], dy[N * C], res[N * C], rstd[N], dx[N * C], dx0[N * C], dx2[N * C], y[N * C];
    static lp_bf16 dxh[N * C], dxh2[N * C];
    fill(x, N * C, 3, 4.0f), fill(w, C, 4, 2.0f), fill(dy, N * C, 5, 1.0f), fill(res, N * C, 6, 1.0f);
    float eps = 1e-5f;
    lp_rmsnorm_forward(y, rstd, x, w, N, C, eps);
    lp_rmsnorm_backward_input(dx, dxh, res, dy, x, w, rstd, N, C);
    lp_rmsnorm_backward_input(dx0, NULL, NULL, dy, x, w, rstd, N, C);
    double worst = 0;
    for (int n = 0; n < N; n++) {
        double xd[C];
        for (int c = 0; c < C; c++) xd[c] = x[n * C + c];
        for (int c = 0; c < C; c++) { /* central difference, h small against |x| ~ 1 */
            double h = 1e-6, keep = xd[c];
            xd[c] = keep + h;
            double up = probe(xd, dy + n * C, w, eps);
            xd[c] = keep - h;
            double down = probe(xd, dy + n * C, w, eps);
            xd[c] = keep;
            double g = (up - down) / (2 * h);
            worst = fmax(worst, fabs(dx0[n * C + c] - g));
            worst = fmax(worst, fabs(dx[n * C + c] - (res[n * C + c] + g)));
        }
    }
    printf("rmsnorm backward: worst absolute error %.3g against finite differences\n", worst);
    assert_true(worst <= 1e-5);
    assert_rounding_of(dxh, dx, N * C);
    /* same bits on 1 and 2 threads */
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    lp_rmsnorm_backward_input(dx2, dxh2, res, dy, x, w, rstd, N, C);
    omp_set_num_threads(saved);
    assert_memory_equal(dx, dx2, sizeof dx);
    assert_memory_equal(dxh, dxh2, sizeof dxh);
}

enum { CN = 23, V = 1003 }; /* V not a multiple of the vector width */

static void test_crossentropy(void **state) {
    (void)state;
    static float logits[CN * V], work[CN * V], lse[CN], losses[CN], lse2[CN], losses2[CN];
    static lp_bf16 dh[CN * V];
    int targets[CN];
    fill(logits, CN * V, 7, 30.0f); /* logits in [-15, 15]: exp overflows without the max shift in float */
    for (int n = 0; n < CN; n++) targets[n] = n == 5 ? -1 : (int)((n * 389u) % V);
    long count;
    double total = lp_crossentropy_forward(losses, lse, logits, targets, CN, V, &count);
    assert_int_equal(count, CN - 1);
    double ref_total = 0, worst_l = 0, worst_g = 0;
    float scale = 0.37f;
    memcpy(work, logits, sizeof work);
    lp_crossentropy_backward(work, lse, targets, CN, V, scale);
    lp_crossentropy_backward_bf16(dh, logits, lse, targets, CN, V, scale);
    for (int n = 0; n < CN; n++) {
        const float *row = logits + (size_t)n * V;
        if (targets[n] < 0) {
            assert_true(losses[n] == 0);
            for (int v = 0; v < V; v++) assert_true(work[(size_t)n * V + v] == 0 && dh[(size_t)n * V + v] == 0);
            continue;
        }
        double mx = row[0], s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
        double z = mx + log(s), l = z - row[targets[n]];
        ref_total += l;
        worst_l = fmax(worst_l, fabs(losses[n] - l));
        assert_true(fabs(lse[n] - z) <= 1e-6 * fabs(z) + 1e-6);
        for (int v = 0; v < V; v++) {
            double g = (exp((double)row[v] - z) - (v == targets[n])) * scale;
            worst_g = fmax(worst_g, fabs(work[(size_t)n * V + v] - g));
            assert_true(fabs(bf16_value(dh[(size_t)n * V + v]) - g) <= 0x1p-8 * fabs(g) + 1e-6);
        }
    }
    printf("cross-entropy: loss sum %.9g reference %.9g, worst loss error %.3g, worst gradient error %.3g\n", total,
           ref_total, worst_l, worst_g);
    assert_true(fabs(total - ref_total) <= 1e-5 * fabs(ref_total));
    assert_true(worst_l <= 1e-5);
    assert_true(worst_g <= 1e-6);
    assert_rounding_of(dh, work, (size_t)CN * V);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double total1 = lp_crossentropy_forward(losses2, lse2, logits, targets, CN, V, &count);
    omp_set_num_threads(saved);
    assert_memory_equal(&total, &total1, sizeof total);
    assert_memory_equal(losses, losses2, sizeof losses);
    assert_memory_equal(lse, lse2, sizeof lse);
}

static void test_rope_to_bf16(void **state) {
    (void)state;
    enum { T = 9, R = 18, H = 3, KV = 1, HD = 8, LD = (H + 2 * KV) * HD };
    float cs[T * HD / 2], sn[T * HD / 2], x[R * LD], y[R * LD];
    lp_bf16 yh[R * LD];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < HD / 2; i++) {
            double a = t * pow(10000.0, -2.0 * i / HD);
            cs[t * HD / 2 + i] = (float)cos(a), sn[t * HD / 2 + i] = (float)sin(a);
        }
    fill(x, R * LD, 8, 2.0f);
    for (int sign = -1; sign <= 1; sign += 2) {
        memcpy(y, x, sizeof y);
        lp_rope_apply(y, LD, R, T, H + KV, HD, cs, sn, sign);
        lp_rope_apply_to_bf16(yh, x, LD, R, T, H + KV, HD, cs, sn, sign);
        assert_rounding_of(yh, y, R * LD);
        for (int r = 0; r < R; r++)
            for (int j = 0; j < LD; j++) {
                double want = x[r * LD + j];
                if (j < (H + KV) * HD) { /* rotate the pair (2i, 2i+1) by sign * angle */
                    int i = (j % HD) / 2, t = r % T;
                    double a = sign * t * pow(10000.0, -2.0 * i / HD);
                    double x0 = x[r * LD + j - j % 2], x1 = x[r * LD + j - j % 2 + 1];
                    want = j % 2 ? x0 * sin(a) + x1 * cos(a) : x0 * cos(a) - x1 * sin(a);
                }
                assert_true(fabs(y[r * LD + j] - want) <= 1e-6);
                assert_true(fabs(bf16_value(yh[r * LD + j]) - want) <= 0x1p-8 * fabs(want) + 1e-6);
            }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm_forward_fused),
        cmocka_unit_test(test_rmsnorm_backward_residual),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_rope_to_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
