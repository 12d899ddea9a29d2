/* test_expand_train.c - LLaMA Pro on the reference: expansion is an exact identity, and 3 AdamW
 * steps training only the new blocks reproduce the float64 PyTorch run (expanded/train). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <math.h>
#include <mpi.h>

#include "fixture.h"
#include "llamapro/expand.h"
#include "llamapro/forward.h"
#include "llamapro/optim.h"
#include "llamapro/partition.h"
#include "llamapro/pipeline.h"

static void test_expand_identity(void **state) {
    (void)state;
    lp_model base, ex;
    fx_load_reference_model(&base);
    int new_layers[2];
    char err[256];
    assert_int_equal(lp_expand(&base, &ex, 2, LP_EXPAND_INTERLEAVE, new_layers, err, sizeof err), 0);
    size_t n;
    int *want = fx_read_int(fx_reference(), "/expanded/trainable_layers", &n);
    int *src = fx_read_int(fx_reference(), "/expanded/source_layers", &n);
    assert_int_equal(new_layers[0], want[0]);
    assert_int_equal(new_layers[1], want[1]);
    assert_string_equal(ex.layers[want[0]].origin, "copy-of:1");
    char o[32];
    snprintf(o, sizeof o, "copy-of:%d", src[1]);
    assert_string_equal(ex.layers[want[1]].origin, o);
    assert_true(lp_expand_verify_identity(&base, &ex, 7));

    /* and the expanded logits equal the reference's logits_at_init */
    int *tokens = fx_read_int(fx_reference(), "/input/tokens", &n);
    lp_acts a;
    lp_acts_alloc(&a, &ex, 2, (int)n / 2);
    lp_forward(&ex, &a, tokens, NULL, 2, (int)n / 2, NULL);
    double *ref = fx_read(fx_reference(), "/expanded/logits_at_init", &n);
    assert_true(fx_max_abs_diff_f(a.logits, ref, n) <= 1e-4);

    /* P that does not divide L is refused, naming both numbers */
    lp_model bad;
    assert_int_equal(lp_expand(&base, &bad, 3, LP_EXPAND_INTERLEAVE, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "3"));
    assert_non_null(strstr(err, "4 layers"));
    /* top and bottom stack the new blocks (copies of the last / first block); their logits on the
     * reference tokens equal the base model's (within 1e-6; the new blocks add exact zeros) and
     * the fixture's float64 base logits (within 1e-4) */
    int T = (int)(n / 2 / (size_t)base.cfg.vocab_size); /* n: the 2 x 16 x 96 logits read above */
    lp_acts ab;
    lp_acts_alloc(&ab, &base, 2, T);
    lp_forward(&base, &ab, tokens, NULL, 2, T, NULL);
    size_t nb;
    double *base_ref = fx_read(fx_reference(), "/base/logits", &nb);
    assert_int_equal(nb, n);
    const struct { lp_expand_position pos; int first_new; const char *origin; } cases[] = {
        {LP_EXPAND_TOP, 4, "copy-of:3"}, {LP_EXPAND_BOTTOM, 0, "copy-of:0"}};
    for (int k = 0; k < 2; k++) {
        lp_model st;
        assert_int_equal(lp_expand(&base, &st, 2, cases[k].pos, new_layers, err, sizeof err), 0);
        assert_int_equal(st.cfg.n_layers, 6);
        assert_int_equal(new_layers[0], cases[k].first_new);
        assert_int_equal(new_layers[1], cases[k].first_new + 1);
        for (int j = 0; j < 2; j++) assert_string_equal(st.layers[new_layers[j]].origin, cases[k].origin);
        lp_acts as;
        lp_acts_alloc(&as, &st, 2, T);
        lp_forward(&st, &as, tokens, NULL, 2, T, NULL);
        double worst = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)as.logits[i] - ab.logits[i]));
        printf("%s: max |logits - base logits| = %.3g, vs float64 base %.3g\n", lp_expand_position_name(cases[k].pos),
               worst, fx_max_abs_diff_f(as.logits, base_ref, n));
        assert_true(worst <= 1e-6);
        assert_true(fx_max_abs_diff_f(as.logits, base_ref, n) <= 1e-4);
        lp_acts_free(&as);
        lp_model_free(&st);
    }
    lp_acts_free(&ab);
    free(base_ref);
    lp_acts_free(&a);
    free(tokens); free(ref); free(want); free(src);
    lp_model_free(&ex);
    lp_model_free(&base);
}

static void test_train_new_blocks_matches_reference(void **state) {
    (void)state;
    fx_expanded_run r;
    fx_expanded_run_init(&r, 0);
    lp_model *m = &r.m;
    size_t n;
    double *losses = fx_read(fx_reference(), "/expanded/train/losses", &n);
    double *norms = fx_read(fx_reference(), "/expanded/train/grad_norms_before_clip", &n);
    for (int s = 0; s < 3; s++) {
        double gn = 0, loss = lp_pipe_step(&r.t, r.seq, 1e-2, &gn);
        printf("step %d loss %.7f (ref %.7f) grad norm %.7f (ref %.7f)\n", s, loss, losses[s], gn, norms[s]);
        assert_true(fabs(loss - losses[s]) <= 1e-4 * fabs(losses[s]));
        assert_true(fabs(gn - norms[s]) <= 1e-4 * fabs(norms[s]));
    }
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *tt = &m->tensors[i];
        if (tt->trainable) {
            char d[160];
            snprintf(d, sizeof d, "/expanded/train/weights_after/%s", tt->name);
            double *w = fx_read(fx_reference(), d, &n);
            double rel = fx_rel_l2_f(tt->data, w, n);
            if (rel > 1e-5) printf("%s rel %.3g\n", tt->name, rel);
            assert_true(rel <= 1e-4);
            free(w);
        } else {
            assert_memory_equal(tt->data, r.before[i], tt->numel * sizeof(float));
        }
    }
    fx_expanded_run_forward(&r);
    double *after = fx_read(fx_reference(), "/expanded/train/logits_after", &n);
    assert_true(fx_max_abs_diff_f(r.t.acts[0].logits, after, n) <= 1e-4);
    /* gradient and optimizer memory exist for the two new layers only */
    for (int l = 0; l < m->cfg.n_layers; l++)
        assert_int_equal(m->layers[l].grads != NULL, l == r.new_layers[0] || l == r.new_layers[1]);
    assert_int_equal(lp_adamw_bytes(&r.t.opt), 2 * 2 * lp_layer_numel(&m->cfg) * sizeof(float));
    free(losses); free(norms); free(after);
    fx_expanded_run_free(&r);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand_identity),
        cmocka_unit_test(test_train_new_blocks_matches_reference),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
