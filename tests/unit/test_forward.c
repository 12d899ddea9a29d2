/* test_forward.c - the model core against the float64 PyTorch reference (tiny-gqa):
 * logits, loss and every parameter gradient, with the weights taken from the reference file
 * itself (so this tests the kernels alone; test_import covers the converters). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <math.h>

#include "fixture.h"
#include "llamapro/forward.h"
#include "llamapro/model.h"
#include "llamapro/import.h"
#include <mpi.h>
#include <string.h>

static const char *ref(void) { return fx_reference(); }

static void test_logits_loss_and_grads(void **state) {
    (void)state;
    lp_model m;
    fx_load_reference_model(&m);
    for (int i = 0; i < m.n_tensors; i++) lp_model_set_trainable(&m, &m.tensors[i]);
    size_t n;
    int *tokens = fx_read_int(ref(), "/input/tokens", &n);
    int *targets = fx_read_int(ref(), "/input/targets", &n);
    int B = 2, T = (int)n / 2;
    lp_acts a;
    lp_acts_alloc(&a, &m, B, T);
    long count = 0;
    double loss = lp_forward(&m, &a, tokens, targets, B, T, &count) / (double)count;
    assert_int_equal(count, B * T);

    double *ref_logits = fx_read(ref(), "/base/logits", &n);
    assert_int_equal(n, (size_t)B * T * m.cfg.vocab_size);
    double dl = fx_max_abs_diff_f(a.logits, ref_logits, n);
    printf("logits max abs diff %.3g\n", dl);
    assert_true(dl <= 1e-4);
    double *ref_loss = fx_read(ref(), "/base/loss", &n);
    printf("loss %.8f reference %.8f\n", loss, ref_loss[0]);
    assert_true(fabs(loss - ref_loss[0]) <= 1e-5);

    lp_backward(&m, &a, tokens, targets, 1.0f / (float)count);
    for (int i = 0; i < m.n_tensors; i++) {
        char d[128];
        snprintf(d, sizeof d, "/base/grads/%s", m.tensors[i].name);
        double *g = fx_read(ref(), d, &n);
        double rel = fx_rel_l2_f(m.tensors[i].grad, g, n);
        if (rel > 1e-5) printf("%-22s grad rel err %.3g\n", m.tensors[i].name, rel);
        assert_true(rel <= 1e-4);
        free(g);
    }
    free(ref_logits); free(ref_loss); free(tokens); free(targets);
    lp_acts_free(&a);
    lp_model_free(&m);
}

/* With only layer 2 trainable: layers 0-1 run no backward, and layer 2's gradients still match. */
static void test_frozen_prefix_skips_backward(void **state) {
    (void)state;
    lp_model m;
    fx_load_reference_model(&m);
    lp_model_set_layer_trainable(&m, 2);
    assert_int_equal(lp_model_first_backward_layer(&m), 2);
    size_t n;
    int *tokens = fx_read_int(ref(), "/input/tokens", &n);
    int *targets = fx_read_int(ref(), "/input/targets", &n);
    lp_acts a;
    lp_acts_alloc(&a, &m, 2, (int)n / 2);
    assert_int_equal(a.n_slots, 1 + 2); /* shared slot + layers 2, 3 */
    long count;
    lp_forward(&m, &a, tokens, targets, 2, (int)n / 2, &count);
    lp_backward(&m, &a, tokens, targets, 1.0f / (float)count);
    assert_null(m.layers[0].grads);
    assert_null(m.tok_embeddings_grad);
    for (int i = 0; i < m.n_tensors; i++) {
        if (m.tensors[i].layer != 2) continue;
        char d[128];
        snprintf(d, sizeof d, "/base/grads/%s", m.tensors[i].name);
        double *g = fx_read(ref(), d, &n);
        assert_true(fx_rel_l2_f(m.tensors[i].grad, g, n) <= 1e-4);
        free(g);
    }
    free(tokens); free(targets);
    lp_acts_free(&a);
    lp_model_free(&m);
}

/* Each importer end to end: the imported model's logits, loss and gradients match the reference. */
static void check_imported(lp_model *m) {
    for (int i = 0; i < m->n_tensors; i++) lp_model_set_trainable(m, &m->tensors[i]);
    size_t n;
    int *tokens = fx_read_int(ref(), "/input/tokens", &n);
    int *targets = fx_read_int(ref(), "/input/targets", &n);
    lp_acts a;
    lp_acts_alloc(&a, m, 2, (int)n / 2);
    long count;
    double loss = lp_forward(m, &a, tokens, targets, 2, (int)n / 2, &count) / (double)count;
    double *rl = fx_read(ref(), "/base/logits", &n);
    assert_true(fx_max_abs_diff_f(a.logits, rl, n) <= 1e-4);
    double *rloss = fx_read(ref(), "/base/loss", &n);
    assert_true(fabs(loss - rloss[0]) <= 1e-5);
    lp_backward(m, &a, tokens, targets, 1.0f / (float)count);
    for (int i = 0; i < m->n_tensors; i++) {
        char d[128];
        snprintf(d, sizeof d, "/base/grads/%s", m->tensors[i].name);
        double *g = fx_read(ref(), d, &n);
        assert_true(fx_rel_l2_f(m->tensors[i].grad, g, n) <= 1e-4);
        free(g);
    }
    free(rl); free(rloss); free(tokens); free(targets);
    lp_acts_free(&a);
    lp_model_free(m);
}

static void test_imported_llama2c(void **state) {
    (void)state;
    lp_model m;
    lp_import_llama2c(&m, fx_path("tiny-gqa.llama2c.bin"));
    check_imported(&m);
}

static void test_imported_hf(void **state) {
    (void)state;
    lp_model m;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fx_path("tiny-gqa-hf"));
    lp_import_hf(&m, dir);
    check_imported(&m);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imported_llama2c),
        cmocka_unit_test(test_imported_hf),
        cmocka_unit_test(test_logits_loss_and_grads),
        cmocka_unit_test(test_frozen_prefix_skips_backward),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
