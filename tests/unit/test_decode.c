/* test_decode.c - generation.
 * - Against an independent reference (tiny-gqa.decode-reference.h5, float64 PyTorch, see
 *   tests/fixtures/README.md): the key/value-cache decoder's logits at all 32 positions (past the
 *   16 of tiny-gqa.reference.h5) and the greedy continuation of the reference prompt.
 * - Greedy decoding for 50 steps: every generated id must be the argmax of the last position's
 *   logits of a fresh forward over the whole sequence so far (the batched training path).
 * - Sampling at temperatures 0.5, 1 and 2: empirical frequencies against softmax(logits / T)
 *   computed here in double. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>

#include "fixture.h"
#include "llamapro/decode.h"
#include "llamapro/forward.h"

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void test_greedy_matches_full_forward(void **state) {
    (void)state;
    lp_model m;
    fx_load_reference_model(&m);
    /* the reference model has max_seq_len 32: allow longer positions for a 50-step run
     * (RoPE is defined for any position) */
    m.cfg.max_seq_len = 64;
    const lp_config *c = &m.cfg;
    int prompt[] = {1, 39, 13, 16};
    int n0 = 4, steps = 50, Tmax = n0 + steps;
    int *seq = calloc((size_t)Tmax, sizeof(int));
    memcpy(seq, prompt, sizeof prompt);
    lp_decoder d;
    lp_decoder_init(&d, &m, Tmax);
    lp_acts a;
    lp_acts_alloc(&a, &m, 1, Tmax);
    const float *logits = NULL;
    for (int i = 0; i < n0; i++) logits = lp_decoder_step(&d, &m, seq[i]);
    double worst = 0;
    for (int s = 0; s < steps; s++) {
        int next = lp_sample(logits, c->vocab_size, 0.0f, NULL);
        int n = n0 + s;
        lp_forward(&m, &a, seq, NULL, 1, n, NULL);
        const float *last = a.logits + (size_t)(n - 1) * c->vocab_size;
        assert_int_equal(next, argmax(last, c->vocab_size));
        for (int v = 0; v < c->vocab_size; v++) {
            double e = fabs(last[v] - logits[v]);
            worst = e > worst ? e : worst;
        }
        seq[n] = next;
        if (n < Tmax - 1 || s < steps - 1) logits = lp_decoder_step(&d, &m, next);
    }
    printf("max |decoder - forward| logit difference over 50 steps: %.3g\n", worst);
    assert_true(worst < 1e-4);
    lp_acts_free(&a);
    lp_decoder_free(&d);
    free(seq);
    lp_model_free(&m);
}

static void test_decoder_against_reference(void **state) {
    (void)state;
    lp_model m;
    fx_load_reference_model(&m);
    const char *ref = fx_path("tiny-gqa.decode-reference.h5");
    size_t nt, nl, np, ng;
    int *tok = fx_read_int(ref, "/tokens", &nt);
    int *prompt = fx_read_int(ref, "/prompt", &np);
    double *rl = fx_read(ref, "/logits", &nl);
    double *gap = fx_read(ref, "/gap", &ng);
    const int V = m.cfg.vocab_size, T = (int)nt;
    assert_int_equal(T, m.cfg.max_seq_len); /* 32: positions 16..31 are what this adds */
    assert_int_equal(nl, (size_t)T * V);
    /* teacher-forced on the reference tokens: the logits at every position */
    lp_decoder d;
    lp_decoder_init(&d, &m, T);
    double worst = 0, worst_late = 0;
    for (int t = 0; t < T; t++) {
        const float *lg = lp_decoder_step(&d, &m, tok[t]);
        double e = fx_max_abs_diff_f(lg, rl + (size_t)t * V, (size_t)V);
        worst = e > worst ? e : worst;
        if (t >= 16) worst_late = e > worst_late ? e : worst_late;
    }
    printf("decoder vs float64 reference: max |logit diff| %.3g (positions 16..31: %.3g)\n", worst, worst_late);
    assert_true(worst <= 1e-4); /* the tolerance of the forward-pass fixture tests */
    lp_decoder_free(&d);
    /* greedy continuation of the prompt: the reference's tokens, where the reference's argmax
     * is unambiguous at float32 accuracy (every gap is far above the 1e-4 logit tolerance) */
    lp_decoder_init(&d, &m, T);
    const float *lg = NULL;
    for (size_t i = 0; i < np; i++) {
        assert_int_equal(prompt[i], tok[i]);
        lg = lp_decoder_step(&d, &m, prompt[i]);
    }
    for (int t = (int)np; t < T; t++) {
        assert_true(gap[t - 1] > 2e-4);
        int next = lp_sample(lg, V, 0.0f, NULL);
        if (next != tok[t]) printf("position %d: generated %d, reference %d\n", t, next, tok[t]);
        assert_int_equal(next, tok[t]);
        if (t < T - 1) lg = lp_decoder_step(&d, &m, next);
    }
    lp_decoder_free(&d);
    free(tok); free(prompt); free(rl); free(gap);
    lp_model_free(&m);
}

/* Draw N samples at temperature temp; every class frequency must be within 5 standard deviations
 * sqrt(p(1-p)/N) of p = softmax(logits / temp)_k (computed here in double), and the chi-square
 * statistic (3 degrees of freedom) below 30.7, its 1 - 1e-6 quantile. For a sampler that ignored
 * the temperature the error would be >= 0.25 at T = 0.5 and 0.14 at T = 2 (p_2 = .831/.403, not
 * .579), versus a bound of at most 5 * 0.5 / sqrt(N) = 0.018. */
static void check_tempered(const float *logits, int V, float temp, int N, uint64_t seed) {
    double p[8], z = 0, mx = -INFINITY;
    for (int k = 0; k < V; k++) mx = fmax(mx, (double)logits[k] / temp);
    for (int k = 0; k < V; k++) z += p[k] = exp((double)logits[k] / temp - mx);
    for (int k = 0; k < V; k++) p[k] /= z;
    lp_rng a, b;
    lp_rng_seed(&a, seed);
    lp_rng_seed(&b, seed);
    int counts[8] = {0};
    for (int i = 0; i < N; i++) {
        int x = lp_sample(logits, V, temp, &a);
        assert_int_equal(x, lp_sample(logits, V, temp, &b)); /* same seed, same draws */
        assert_true(x >= 0 && x < V);
        counts[x]++;
    }
    double chi2 = 0;
    for (int k = 0; k < V; k++) {
        double f = counts[k] / (double)N, sd = sqrt(p[k] * (1 - p[k]) / N);
        printf("T=%.1f class %d: frequency %.4f, softmax %.4f (5 sd = %.4f)\n", temp, k, f, p[k], 5 * sd);
        assert_true(fabs(f - p[k]) <= 5 * sd);
        chi2 += (counts[k] - N * p[k]) * (counts[k] - N * p[k]) / (N * p[k]);
    }
    printf("T=%.1f chi-square %.2f (3 dof; 1e-6 tail above 30.7)\n", temp, chi2);
    assert_true(chi2 < 30.7);
}

static void test_sampling_is_seeded_and_tempered(void **state) {
    (void)state;
    float logits[4] = {0.0f, 1.0f, 2.0f, 0.5f};
    check_tempered(logits, 4, 0.5f, 20000, 42);
    check_tempered(logits, 4, 1.0f, 20000, 43);
    check_tempered(logits, 4, 2.0f, 20000, 44);
    assert_int_equal(lp_sample(logits, 4, 0.0f, NULL), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_against_reference),
        cmocka_unit_test(test_greedy_matches_full_forward),
        cmocka_unit_test(test_sampling_is_seeded_and_tempered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
