/* test_decode.c - generation: the key/value-cache decoder agrees with full forward passes.
 * Greedy decoding for 50 steps: every generated id must be the argmax of the last position's
 * logits of a fresh forward over the whole sequence so far (the batched training path). */
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

static void test_sampling_is_seeded_and_tempered(void **state) {
    (void)state;
    float logits[4] = {0.0f, 1.0f, 2.0f, 0.5f};
    lp_rng a, b;
    lp_rng_seed(&a, 42);
    lp_rng_seed(&b, 42);
    int counts[4] = {0};
    for (int i = 0; i < 20000; i++) {
        int x = lp_sample(logits, 4, 1.0f, &a);
        assert_int_equal(x, lp_sample(logits, 4, 1.0f, &b)); /* same seed, same draws */
        counts[x]++;
    }
    /* softmax(0,1,2,.5) = .0784 .2131 .5793 .1293 (python3 math.exp, not this code) */
    assert_true(fabs(counts[2] / 20000.0 - 0.5793) < 0.015);
    assert_true(fabs(counts[0] / 20000.0 - 0.0784) < 0.01);
    assert_int_equal(lp_sample(logits, 4, 0.0f, NULL), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_matches_full_forward),
        cmocka_unit_test(test_sampling_is_seeded_and_tempered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
