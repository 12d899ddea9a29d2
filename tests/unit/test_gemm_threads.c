/* test_gemm_threads.c - the BLAS half of thread-count invariance (README "Thread-count
 * invariance"): lp_gemm gives bitwise the same product on 1 and 2 OpenMP threads for the three
 * transpositions a training step uses, at sizes where OpenBLAS does split the work over threads.
 * OpenBLAS's level-3 threading partitions M and N, never K, so every output element is one
 * kernel's dot product in one order. If a BLAS update broke this, training on different core
 * counts would drift apart in the last bits; this test names the shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <omp.h>

#include "llamapro/gemm.h"
#include "llamapro/rng.h"

static void fill(float *x, size_t n, uint64_t seed) {
    lp_rng r;
    lp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)lp_rng_below(&r, 1u << 20) / (1 << 20) - 0.5f;
}

static void test_gemm_same_bits_on_1_and_2_threads(void **state) {
    (void)state;
    /* forward (x W^T), input gradient (dy W), weight gradient (dy^T x) of a 256-row microbatch;
     * a ragged one; and the LM head */
    int shapes[][5] = {{0, 1, 256, 384, 128}, {0, 0, 256, 128, 352}, {1, 0, 704, 128, 256},
                       {0, 1, 250, 333, 97},  {0, 1, 256, 4096, 128}, {1, 0, 4096, 128, 256}};
    int saved = omp_get_max_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int ta = shapes[s][0], tb = shapes[s][1], M = shapes[s][2], N = shapes[s][3], K = shapes[s][4];
        float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
        float *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
        fill(a, (size_t)M * K, 1 + s), fill(b, (size_t)K * N, 100 + s);
        fill(c1, (size_t)M * N, 7), memcpy(c2, c1, sizeof(float) * M * N); /* beta = 1: accumulate too */
        int lda = ta ? M : K, ldb = tb ? K : N;
        omp_set_num_threads(1);
        lp_gemm(ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 1.0f, c1, N);
        omp_set_num_threads(2);
        lp_gemm(ta, tb, M, N, K, 1.0f, a, lda, b, ldb, 1.0f, c2, N);
        size_t diff = 0;
        for (size_t i = 0; i < (size_t)M * N; i++) diff += memcmp(&c1[i], &c2[i], sizeof(float)) != 0;
        printf("%c%c %d x %d x %d: %zu elements differ between 1 and 2 threads\n", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K,
               diff);
        assert_int_equal(diff, 0);
        free(a), free(b), free(c1), free(c2);
    }
    omp_set_num_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gemm_same_bits_on_1_and_2_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
