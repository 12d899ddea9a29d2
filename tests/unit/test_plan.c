/* test_plan.c - the layout model of `llamapro plan` (plan.h) against values computed here by hand:
 * one stage is M x the step's FLOPs (flops.h) at the given rate; a 2-stage GPipe step with one
 * microbatch adds exactly two messages (activations forward, gradient back) on the link between
 * the two ranks' nodes, or inside a node when they share one; the ring all-reduce of data parallel
 * replicas; the memory per rank and the fit against a node's memory; the network JSON reader;
 * tensor parallelism: blocks' compute and state halve, the head's do not, four all-reduces of the
 * activations per block and microbatch on the link inside a node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/flops.h"
#include "llamapro/plan.h"

#define RATE 1e10
static const lp_net NET = {.inter = {1e-4, 1e8}, .intra = {1e-6, 1e10}};

/* 4 layers, layers 1 and 3 trainable (layer 0 needs no backward) */
static void skeleton(lp_model *m) {
    lp_config c = {.dim = 64, .hidden_dim = 192, .n_layers = 4, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 256,
                   .max_seq_len = 32, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    lp_model_alloc_range(m, &c, 0, 0, 0, 0);
    lp_model_set_layer_trainable(m, 1);
    lp_model_set_layer_trainable(m, 3);
}

static lp_node node_of(int rpn) {
    return (lp_node){.ranks_per_node = rpn, .mem_bytes = 1e9, .rates = {RATE, RATE, RATE, RATE, RATE, RATE},
                     .mem_bw_Bps = 1e10, .runtime_bytes = 3e7};
}

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

static void test_allreduce_formula(void **state) {
    (void)state;
    lp_link l = {1e-5, 1e9};
    assert_true(lp_allreduce_seconds(l, 1e6, 1) == 0);
    /* ring: 2 (n-1) steps of latency, each rank sends 2 (n-1)/n of the data */
    assert_true(rel(lp_allreduce_seconds(l, 1e6, 4), 6 * 1e-5 + 1.5 * 1e6 / 1e9) < 1e-12);
}

/* tp = 2 on one 2-rank node against tp = 1 on one rank: the block compute halves, the LM head's
 * does not, and each of the 4 blocks adds 2 + 2 all-reduces of B x T x dim floats (layer 0 runs no
 * backward: 2 only); block weights, gradients and AdamW moments halve but for the replicated norms. */
static void test_tensor_parallel(void **state) {
    (void)state;
    lp_model m;
    skeleton(&m);
    lp_node n1 = node_of(1), n2 = node_of(2);
    lp_plan_case a, b;
    int B = 2, T = 16, M = 3;
    lp_plan_case_eval(&a, &m, &n1, &NET, 1, 1, B, T, M, LP_SCHED_1F1B, NULL, "test");
    lp_plan_case_eval_tp(&b, &m, &n2, &NET, 1, 1, 2, B, T, M, LP_SCHED_1F1B, NULL, "test");
    assert_int_equal(b.tp, 2);
    assert_int_equal(b.dp, 1);
    lp_flops f = lp_flops_microbatch(&m, B, T);
    double head = 2.0 * B * T * 64 * 256, head_all = head * 2; /* forward; input gradient (frozen head) */
    double ar = lp_allreduce_seconds(NET.intra, (double)B * T * 64 * 4, 2), comm = M * (4 * 2 + 3 * 2) * ar;
    double want = M * ((lp_flops_total(f) - head_all) / 2 + head_all) / RATE + comm;
    assert_true(rel(b.t_compute, want) < 1e-9);
    assert_true(rel(b.t_tp, comm) < 1e-12);
    /* the block's matrices halve; its two RMSNorm weights (2 x dim floats) are on both ranks */
    size_t per = lp_layer_numel(&m.cfg) * 4, half = (per - 2 * 64 * 4) / 2;
    const lp_stage_plan *x = &a.part.st[0], *y = &b.part.st[0];
    assert_true(y->weight_bytes == x->weight_bytes - 4 * half);
    assert_true(y->grad_bytes == x->grad_bytes - 2 * half && y->optim_bytes == x->optim_bytes - 4 * half);
    assert_true(y->act_bytes < x->act_bytes); /* the split parts' activations too (tp_train.sh counts them) */
    lp_plan_case_free(&a);
    lp_plan_case_free(&b);
    lp_model_free(&m);
}

static void test_one_stage(void **state) {
    (void)state;
    lp_model m;
    skeleton(&m);
    lp_node n = node_of(1);
    lp_plan_case pc;
    int B = 2, T = 16, M = 3;
    lp_plan_case_eval(&pc, &m, &n, &NET, 1, 1, B, T, M, LP_SCHED_1F1B, NULL, "test");
    double flops = M * lp_flops_total(lp_flops_microbatch(&m, B, T));
    assert_true(rel(pc.t_compute, flops / RATE) < 1e-9);
    assert_true(pc.t_bubble == 0 && pc.t_p2p == 0 && pc.t_allreduce == 0 && pc.bubble == 0);
    /* AdamW + norm + zeroing: 36 bytes per trainable parameter at the memory bandwidth */
    double ntr = 2.0 * lp_layer_numel(&m.cfg);
    assert_true(rel(pc.t_optim, ntr * 36 / 1e10) < 1e-9);
    assert_true(rel(pc.t_step, pc.t_compute + pc.t_optim) < 1e-12);
    assert_true(rel(pc.tokens_per_s, (double)B * T * M / pc.t_step) < 1e-12);
    /* memory: all weights, gradients + 2 Adam moments of the trainable layers, activations, runtime */
    const lp_stage_plan *st = &pc.part.st[0];
    double w = (4.0 * lp_layer_numel(&m.cfg) + 2.0 * 256 * 64 + 64) * 4; /* layers, embedding, head, norm */
    assert_true(rel((double)st->weight_bytes, w) < 1e-12);
    assert_true(rel((double)st->grad_bytes, ntr * 4) < 1e-12 && rel((double)st->optim_bytes, ntr * 8) < 1e-12);
    assert_true(rel(pc.mem_peak, (double)(st->weight_bytes + st->grad_bytes + st->optim_bytes + st->act_bytes) + 3e7) < 1e-12);
    assert_true(pc.fits);
    lp_plan_case_free(&pc);
    /* a node too small for it */
    n.mem_bytes = 3e7;
    lp_plan_case_eval(&pc, &m, &n, &NET, 1, 1, B, T, M, LP_SCHED_1F1B, NULL, "test");
    assert_false(pc.fits);
    lp_plan_case_free(&pc);
    lp_model_free(&m);
}

/* Two stages, one microbatch, GPipe: F0 -> send -> F1 B1 -> send -> B0, nothing overlaps. */
static void two_stages(int rpn, lp_link expect) {
    lp_model m;
    skeleton(&m);
    lp_node n = node_of(rpn);
    lp_plan_case pc;
    int B = 2, T = 16;
    lp_plan_case_eval(&pc, &m, &n, &NET, 2 / rpn, 2, B, T, 1, LP_SCHED_GPIPE, "2,2", "test");
    const lp_stage_plan *s0 = &pc.part.st[0], *s1 = &pc.part.st[1];
    assert_true(s0->backward && s1->backward);
    double msg = expect.latency_s + (double)B * T * 64 * 4 / expect.bandwidth_Bps;
    double chain = s0->t_fwd + s1->t_fwd + s1->t_bwd + s0->t_bwd;
    assert_true(rel(pc.t_p2p, 2 * msg) < 1e-9);
    assert_true(rel(pc.t_compute + pc.t_bubble, chain) < 1e-9);
    /* the small collectives of a 2-stage step: loss, gradient norms, timings on the pipe link */
    assert_true(rel(pc.t_allreduce, 3 * 2 * expect.latency_s) < 1e-9);
    lp_plan_case_free(&pc);
    lp_model_free(&m);
}

static void test_p2p_between_nodes(void **state) {
    (void)state;
    two_stages(1, NET.inter);
}

static void test_p2p_inside_a_node(void **state) {
    (void)state;
    two_stages(2, NET.intra);
}

static void test_data_parallel_allreduce(void **state) {
    (void)state;
    lp_model m;
    skeleton(&m);
    lp_node n = node_of(1);
    lp_plan_case pc;
    /* 4 nodes x 1 rank = 4 replicas: each trainable layer block reduced over the network */
    lp_plan_case_eval(&pc, &m, &n, &NET, 4, 1, 2, 16, 1, LP_SCHED_1F1B, NULL, "test");
    double g = 2.0 * lp_layer_numel(&m.cfg) * 4;
    double want = 2 * 2 * 3 * NET.inter.latency_s + 2.0 * 3 / 4 * g / NET.inter.bandwidth_Bps /* 2 layer blocks */
                  + 2 * 2 * NET.inter.latency_s;                                               /* the loss */
    assert_true(rel(pc.t_allreduce, want) < 1e-9);
    assert_int_equal(pc.dp, 4);
    lp_plan_case_free(&pc);
    lp_model_free(&m);
}

static void test_net_json(void **state) {
    (void)state;
    char path[] = "/tmp/test_plan_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *txt = "{\"ranks\": 3, \"intra\": {\"latency_s\": 2e-7, \"bandwidth_Bps\": 8e9, \"pairs\": 1},"
                      " \"inter\": {\"latency_s\": 3e-5, \"bandwidth_Bps\": 1.2e9, \"pairs\": 2}}";
    assert_true(write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt));
    close(fd);
    lp_net net = {{1, 1}, {1, 1}};
    lp_net_read_json(&net, path);
    assert_true(net.intra.latency_s == 2e-7 && net.intra.bandwidth_Bps == 8e9);
    assert_true(net.inter.latency_s == 3e-5 && net.inter.bandwidth_Bps == 1.2e9);
    /* one node measured: the link between nodes keeps its value */
    FILE *f = fopen(path, "w");
    fputs("{\"intra\": {\"latency_s\": 1e-6, \"bandwidth_Bps\": 5e9}, \"inter\": null}", f);
    fclose(f);
    lp_net_read_json(&net, path);
    assert_true(net.intra.latency_s == 1e-6 && net.inter.latency_s == 3e-5);
    unlink(path);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduce_formula), cmocka_unit_test(test_one_stage), cmocka_unit_test(test_tensor_parallel),
        cmocka_unit_test(test_p2p_between_nodes), cmocka_unit_test(test_p2p_inside_a_node),
        cmocka_unit_test(test_data_parallel_allreduce), cmocka_unit_test(test_net_json),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
