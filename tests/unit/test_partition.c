/* test_partition.c - the frozen-aware partitioner and the schedules (partition.h): schedule
 * orders, the simulated bubble against the closed form, stage ranges that follow the cost model
 * (frozen blocks before the first trainable one cost a forward only), and skeleton models that
 * carry trainable flags without gradient memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/partition.h"

static void test_schedule_orders(void **state) {
    (void)state;
    lp_op ops[16];
    /* 1F1B, first of 4 stages, 8 microbatches: 3 warm-up forwards, then alternate */
    int n = lp_schedule_ops(LP_SCHED_1F1B, 4, 0, 8, 1, ops);
    assert_int_equal(n, 16);
    const char *want = "F0F1F2F3B0F4B1F5B2F6B3F7B4B5B6B7";
    char got[64] = "";
    for (int i = 0; i < n; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%c%d", ops[i].backward ? 'B' : 'F', ops[i].mb);
    assert_string_equal(got, want);
    /* the last stage alternates from the start; GPipe: all forwards first; no backward: forwards only */
    n = lp_schedule_ops(LP_SCHED_1F1B, 4, 3, 2, 1, ops);
    assert_true(n == 4 && !ops[0].backward && ops[1].backward && ops[1].mb == 0 && !ops[2].backward);
    n = lp_schedule_ops(LP_SCHED_GPIPE, 2, 0, 3, 1, ops);
    assert_true(n == 6 && !ops[2].backward && ops[3].backward && ops[3].mb == 0 && ops[5].mb == 2);
    assert_int_equal(lp_schedule_ops(LP_SCHED_1F1B, 4, 0, 5, 0, ops), 5);
}

static void test_bubble_closed_form(void **state) {
    (void)state;
    /* equal stages: (p - 1) / (M + p - 1) for both schedules */
    double f[4] = {1, 1, 1, 1}, b[4] = {2, 2, 2, 2};
    int bw[4] = {1, 1, 1, 1};
    assert_true(fabs(lp_schedule_bubble(LP_SCHED_1F1B, 4, 8, f, b, bw) - 3.0 / 11) < 1e-12);
    assert_true(fabs(lp_schedule_bubble(LP_SCHED_GPIPE, 4, 8, f, b, bw) - 3.0 / 11) < 1e-12);
    assert_true(fabs(lp_schedule_bubble(LP_SCHED_1F1B, 2, 1, f, b, bw) - 0.5) < 1e-12);
    /* a forward-only first stage: it idles once its forwards are done */
    int bw2[2] = {0, 1};
    double f2[2] = {1, 1}, b2[2] = {0, 2};
    double x = lp_schedule_bubble(LP_SCHED_1F1B, 2, 4, f2, b2, bw2);
    /* stage 1 finishes at 1 + 4 * 3 = 13; busy 4 + 12 = 16 of 2 * 13 */
    assert_true(fabs(x - (1 - 16.0 / 26)) < 1e-12);
}

static void skeleton(lp_model *m, int L, const int *trainable, int nt) {
    lp_config c = {.dim = 64, .hidden_dim = 192, .n_layers = L, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 64,
                   .max_seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    lp_model_alloc_range(m, &c, 0, 0, 0, 0);
    for (int i = 0; i < nt; i++) lp_model_set_layer_trainable(m, trainable[i]);
}

static void test_frozen_aware_partition(void **state) {
    (void)state;
    /* LLaMA Pro with the new blocks on top: 6 frozen layers (forward only) then 2 trainable */
    lp_model m;
    int top[2] = {6, 7};
    skeleton(&m, 8, top, 2);
    for (int l = 0; l < 8; l++) assert_null(m.layers[l].grads); /* flags, no memory */
    assert_true(m.layers[6].trainable && m.tensors[6 * 9 + 1].trainable && m.tensors[6 * 9 + 1].grad == NULL);
    assert_int_equal(lp_model_first_backward_layer(&m), 6);
    lp_partition p;
    lp_partition_plan(&p, &m, 2, 2, 32, 8, LP_SCHED_1F1B, NULL, NULL, "test");
    /* frozen blocks are cheap: the first stage takes more than half, and trains nothing */
    assert_true(p.st[0].l1 > 4);
    assert_int_equal(p.st[0].backward, 0);
    assert_int_equal(p.st[0].grad_bytes, 0);
    assert_int_equal(p.st[0].optim_bytes, 0);
    assert_int_equal(p.st[1].l1, 8);
    assert_int_equal(p.st[1].n_trainable, 2);
    double slow = fmax(p.st[0].t_fwd + p.st[0].t_bwd, p.st[1].t_fwd + p.st[1].t_bwd);
    lp_partition u;
    lp_partition_plan(&u, &m, 2, 2, 32, 8, LP_SCHED_1F1B, NULL, "4,4", "test");
    assert_true(u.is_explicit && u.st[0].l1 == 4);
    assert_true(slow < fmax(u.st[0].t_fwd + u.st[0].t_bwd, u.st[1].t_fwd + u.st[1].t_bwd));
    assert_true(p.bubble < u.bubble);
    lp_partition_free(&p);
    lp_partition_free(&u);
    lp_model_free(&m);

    /* interleaved (4, 9 of 10): layers 0-3 need no backward; frozen 5-8 need the input gradient */
    int mid[2] = {4, 9};
    skeleton(&m, 10, mid, 2);
    lp_partition_plan(&p, &m, 3, 2, 32, 8, LP_SCHED_GPIPE, NULL, NULL, "test");
    assert_int_equal(p.st[0].l0, 0);
    assert_int_equal(p.st[2].l1, 10);
    for (int s = 0; s < 3; s++) {
        assert_true(p.st[s].l1 > p.st[s].l0);
        if (s) assert_int_equal(p.st[s].l0, p.st[s - 1].l1);
        assert_int_equal(p.st[s].inflight, p.st[s].backward ? 8 : 2); /* GPipe keeps all M */
        for (int l = p.st[s].l0; l < p.st[s].l1; l++) /* the trainable count and backward flag follow */
            if (l == 4 || l == 9) assert_true(p.st[s].n_trainable > 0 && p.st[s].backward);
    }
    assert_true(p.st[0].l1 - p.st[0].l0 >= p.st[2].l1 - p.st[2].l0);
    lp_partition_free(&p);
    lp_model_free(&m);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_orders),
        cmocka_unit_test(test_bubble_closed_form),
        cmocka_unit_test(test_frozen_aware_partition),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
