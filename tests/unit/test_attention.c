/* test_attention.c - the flash-style attention (attention.c) against a naive float64 attention
 * written here: full [T, T] scores, softmax, and the textbook backward, for the output y and all
 * input gradients dq, dk, dv. Grouped-query heads (H = 6, KV = 2), T = 150 (not a multiple of the
 * 64-position tile: a padded last tile), causal and with a sliding window of 70 (crossing tile
 * borders, so a diagonal of tiles is partly masked), and a window smaller than a tile.
 *
 * Tolerances, relative to the largest magnitude of each output:
 *  - fp32: 1e-5. The kernel sums at most T = 150 products per element in fp32 (unit roundoff
 *    u = 6e-8) with tile-wise rescaling; the errors stay ~100 u.
 *  - bf16: 1.5e-2 = 8 * 2^-9. q, k, v, dy, P and dS are rounded to bf16 (8 significant bits,
 *    unit roundoff u = 2^-9 = 2e-3) before their products. One rounding of each factor gives a
 *    relative error of ~2u per product term; the scores s = q.k / sqrt(hd) of size |s| ~ 1-4
 *    then carry an absolute error of a few u that exp() turns into a relative error of P, and
 *    dS = P (dP - D) subtracts close quantities, which amplifies it: ~2-4u expected in y and the
 *    gradients (measured 1.2-2.9u), 8u bounds that with room, and is far below what a wrong
 *    mask, a missing tile or a wrong GQA head produce (O(1) relative errors, also caught by fp32). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "llamapro/gemm.h"
#include "llamapro/kernels.h"
#include "llamapro/rng.h"

enum { B = 2, T = 150, H = 6, KV = 2, HD = 16, QKV = (H + 2 * KV) * HD, Y = H * HD };

static void fill(float *x, size_t n, uint64_t seed, float amp) {
    lp_rng r;
    lp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = amp * ((float)lp_rng_below(&r, 1u << 20) / (1 << 20) - 0.5f);
}

/* Naive float64 attention: y[N, Y] and dqkv[N, QKV] from qkv and dy. */
static void reference(double *y, double *dqkv, const float *qkv, const float *dy, int window) {
    int group = H / KV;
    double scale = 1.0 / sqrt((double)HD);
    double *p = malloc(sizeof(double) * T * T), *dp = malloc(sizeof(double) * T * T);
    memset(dqkv, 0, sizeof(double) * B * T * QKV);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            int qo = h * HD, ko = (H + h / group) * HD, vo = (H + KV + h / group) * HD;
            const float *x = qkv + (size_t)b * T * QKV;
            const float *g = dy + (size_t)b * T * Y;
            for (int t = 0; t < T; t++) {
                double mx = -1e300, sum = 0;
                for (int s = 0; s < T; s++) {
                    int ok = s <= t && (window == 0 || t - s < window);
                    double v = 0;
                    for (int c = 0; c < HD; c++) v += (double)x[t * QKV + qo + c] * x[s * QKV + ko + c];
                    p[t * T + s] = ok ? v * scale : -1e300;
                    if (ok && p[t * T + s] > mx) mx = p[t * T + s];
                }
                for (int s = 0; s < T; s++) {
                    int ok = s <= t && (window == 0 || t - s < window);
                    p[t * T + s] = ok ? exp(p[t * T + s] - mx) : 0;
                    sum += p[t * T + s];
                }
                for (int s = 0; s < T; s++) p[t * T + s] /= sum;
                for (int c = 0; c < HD; c++) {
                    double o = 0;
                    for (int s = 0; s < T; s++) o += p[t * T + s] * x[s * QKV + vo + c];
                    y[((size_t)b * T + t) * Y + qo + c] = o;
                }
            }
            /* dv = P^T dy ; dP = dy v^T ; dS = P (dP - rowsum(dP P)) ; dq = scale dS k ; dk = scale dS^T q */
            double *d = dqkv + (size_t)b * T * QKV;
            for (int t = 0; t < T; t++) {
                double dot = 0;
                for (int s = 0; s < T; s++) {
                    double v = 0;
                    for (int c = 0; c < HD; c++) v += (double)g[t * Y + qo + c] * x[s * QKV + vo + c];
                    dp[t * T + s] = v;
                    dot += v * p[t * T + s];
                }
                for (int s = 0; s < T; s++) dp[t * T + s] = p[t * T + s] * (dp[t * T + s] - dot);
            }
            for (int t = 0; t < T; t++)
                for (int s = 0; s < T; s++)
                    for (int c = 0; c < HD; c++) {
                        d[s * QKV + vo + c] += p[t * T + s] * g[t * Y + qo + c];
                        d[t * QKV + qo + c] += scale * dp[t * T + s] * x[s * QKV + ko + c];
                        d[s * QKV + ko + c] += scale * dp[t * T + s] * x[t * QKV + qo + c];
                    }
        }
    free(p), free(dp);
}

/* max |got - want| / max |want| over the columns [c0, c1) of rows of width ld. */
static double rel_err(const float *got, const double *want, size_t rows, int ld, int c0, int c1) {
    double e = 0, m = 0;
    for (size_t r = 0; r < rows; r++)
        for (int c = c0; c < c1; c++) {
            double w = want[r * ld + c], d = fabs(got[r * ld + c] - w);
            if (d > e) e = d;
            if (fabs(w) > m) m = fabs(w);
        }
    return e / m;
}

static void check(lp_precision prec, int window, double tol) {
    size_t N = (size_t)B * T;
    float *qkv = malloc(sizeof(float) * N * QKV), *dy = malloc(sizeof(float) * N * Y);
    float *y = malloc(sizeof(float) * N * Y), *dqkv = malloc(sizeof(float) * N * QKV);
    float *lse = malloc(sizeof(float) * lp_attention_lse_floats(B, T, H));
    float *ws = malloc(sizeof(float) * lp_attention_ws_floats(B, T, H, KV, HD, 1));
    double *yr = malloc(sizeof(double) * N * Y), *dr = malloc(sizeof(double) * N * QKV);
    fill(qkv, N * QKV, 11 + window, 4.0f); /* scores of size ~1-4: a peaked softmax */
    fill(dy, N * Y, 12, 2.0f);
    reference(yr, dr, qkv, dy, window);
    lp_attention_forward(prec, y, lse, ws, qkv, B, T, H, KV, HD, window);
    lp_attention_backward(prec, dqkv, ws, dy, y, lse, qkv, B, T, H, KV, HD, window);
    double ey = rel_err(y, yr, N, Y, 0, Y), eq = rel_err(dqkv, dr, N, QKV, 0, H * HD),
           ek = rel_err(dqkv, dr, N, QKV, H * HD, (H + KV) * HD), ev = rel_err(dqkv, dr, N, QKV, (H + KV) * HD, QKV);
    printf("%s window %d: relative error y %.2e dq %.2e dk %.2e dv %.2e (tolerance %.1e)\n", lp_precision_name(prec), window,
           ey, eq, ek, ev, tol);
    assert_true(ey < tol);
    assert_true(eq < tol);
    assert_true(ek < tol);
    assert_true(ev < tol);
    free(qkv), free(dy), free(y), free(dqkv), free(lse), free(ws), free(yr), free(dr);
}

static void test_fp32_causal(void **state) { (void)state, check(LP_FP32, 0, 1e-5); }
static void test_fp32_window(void **state) { (void)state, check(LP_FP32, 70, 1e-5), check(LP_FP32, 20, 1e-5); }
static void test_bf16_causal(void **state) {
    (void)state;
    if (!lp_gemm_bf16_native()) printf("note: bf16 emulated by oneDNN on this CPU\n");
    check(LP_BF16, 0, 1.5e-2);
}
static void test_bf16_window(void **state) { (void)state, check(LP_BF16, 70, 1.5e-2); }

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fp32_causal), cmocka_unit_test(test_fp32_window),
                                       cmocka_unit_test(test_bf16_causal), cmocka_unit_test(test_bf16_window)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
