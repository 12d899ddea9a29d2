/* engine.c - the setup and step shared by train and bench (see engine.h). */
#include "llamapro/engine.h"

#include <math.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/flops.h"
#include "llamapro/model_file.h"

void lp_train_validate(const lp_run_config *rc, const char *source) {
    /* every rank reads the same config, so every rank stops alike (lp_user_error_all) */
    /* written as !(inside) so that NaN, which compares false with everything, is refused too */
    if (!(rc->lr >= 0 && isfinite(rc->lr))) lp_user_error_all("%s: [optim] lr must be a finite number >= 0 (got %g)", source, rc->lr);
    if (!(rc->min_lr >= 0 && isfinite(rc->min_lr)))
        lp_user_error_all("%s: [optim] min_lr must be a finite number >= 0 (got %g)", source, rc->min_lr);
    if (!(rc->eps > 0 && isfinite(rc->eps))) lp_user_error_all("%s: [optim] eps must be > 0 (got %g)", source, rc->eps);
    if (!(rc->beta1 >= 0 && rc->beta1 < 1)) lp_user_error_all("%s: [optim] beta1 must be in [0, 1) (got %g)", source, rc->beta1);
    if (!(rc->beta2 >= 0 && rc->beta2 < 1)) lp_user_error_all("%s: [optim] beta2 must be in [0, 1) (got %g)", source, rc->beta2);
    if (!(rc->weight_decay >= 0 && isfinite(rc->weight_decay)))
        lp_user_error_all("%s: [optim] weight_decay must be a finite number >= 0 (got %g)", source, rc->weight_decay);
    if (!(rc->clip >= 0 && isfinite(rc->clip)))
        lp_user_error_all("%s: [optim] clip must be a finite number >= 0 (0 = no clipping; got %g)", source, rc->clip);
}

/* The first held tensor (in table order over the whole world) with a NaN or Inf: exit 1 on every
 * rank naming it. Checked once at start, so that a later non-finite loss is known to come from
 * the optimization, not from the input. */
static void check_finite_weights(const lp_engine *e) {
    const lp_model *m = &e->m;
    int first = 2 * m->n_tensors; /* 2 * index + (1 for Inf, 0 for NaN) */
    for (int i = 0; i < m->n_tensors && first == 2 * m->n_tensors; i++) {
        const float *d = m->tensors[i].data;
        if (!d) continue;
        int nan = 0, inf = 0;
        size_t n = m->tensors[i].numel;
#pragma omp parallel for schedule(static) reduction(| : nan, inf)
        for (size_t j = 0; j < n; j++) nan |= isnan(d[j]), inf |= isinf(d[j]);
        if (nan || inf) first = 2 * i + (nan ? 0 : 1);
    }
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, e->c->world), "checking the input weights");
    if (first < 2 * m->n_tensors)
        lp_user_error_all("%s contains %s in the input model %s (every weight must be finite: re-create, re-import or "
                          "re-expand the model)", m->tensors[first / 2].name, first % 2 ? "Inf" : "NaN", e->model_name);
}

void lp_engine_init(lp_engine *e, const lp_run_config *rc, const char *source, lp_comm *c, lp_model *whole) {
    memset(e, 0, sizeof *e);
    e->c = c;
    e->B = rc->micro_batch, e->T = rc->seq_len, e->M = rc->microbatches;
    e->model_name = whole ? "(random model)" : rc->model_path;
    lp_train_validate(rc, source);
    lp_layout_init_tp(&e->ly, c->world, rc->pp, rc->tp, source);
    /* the whole-model view: the method, the partition and the FLOP count read flags only */
    lp_model skel;
    if (whole) skel = *whole;
    else lp_model_load_range(&skel, rc->model_path, c->world, 0, 0, 0, 0);
    lp_apply_method(&skel, rc, source);
    lp_tp_check(&skel.cfg, rc->tp, source);
    if (e->T > skel.cfg.max_seq_len)
        lp_user_error_all("%s: [data] seq_len %d exceeds the model's max_seq_len %d", source, e->T, skel.cfg.max_seq_len);
    lp_cost_rates rates = lp_cost_rates_flops(); /* one stage: nothing to balance */
    if (rc->pp > 1) lp_cost_calibrate(&rates, &skel.cfg, e->B, e->T, c->world);
    skel.precision = lp_precision_parse(rc->precision); /* the weight bytes the plan counts; nothing is held yet */
    lp_partition_plan(&e->part, &skel, rc->pp, e->B, e->T, e->M, lp_schedule_parse(rc->pp_schedule), &rates, rc->partition,
                      source);
    skel.precision = LP_FP32;
    e->step_flops = (double)e->M * e->ly.dp * lp_flops_total(lp_flops_microbatch(&skel, e->B, e->T));
    lp_ceiling_shapes(&e->ceil, &skel, e->B, e->T);
    e->ceil.precision = lp_precision_parse(rc->precision); /* the ceiling in the run's precision */
    const lp_stage_plan *st = &e->part.st[e->ly.stage];
    if (whole) {
        lp_model_keep_range(&skel, st->l0, st->l1, st->embed, st->head);
        e->m = skel;
        memset(whole, 0, sizeof *whole); /* taken over */
    } else {
        /* this stage's tensors, with the flags the method chose on the skeleton */
        lp_model_load_range(&e->m, rc->model_path, c->world, st->l0, st->l1, st->embed, st->head);
        for (int i = 0; i < skel.n_tensors; i++)
            if (skel.tensors[i].trainable) lp_model_set_trainable(&e->m, &e->m.tensors[i]);
        lp_model_free(&skel);
    }
    check_finite_weights(e);
    if (e->ly.tp > 1) {
        lp_tp_init(&e->tp, e->ly.tp_comm);
        lp_tp_shard(&e->m, &e->tp);
    }
    lp_model_set_precision(&e->m, lp_precision_parse(rc->precision), e->B * e->T); /* after the flags */
    lp_model_release_frozen(&e->m); /* bf16: frozen layers in their bf16 forms only */
    lp_pipe_init(&e->pipe, &e->m, &e->ly, &e->part, e->B, e->T, e->M, rc->beta1, rc->beta2, rc->eps, rc->weight_decay,
                 rc->clip);
    e->tokens_per_step = (long)e->B * e->M * e->ly.dp * e->T;
    e->windows = lp_calloc((size_t)e->B * e->M * (e->T + 1), sizeof(int), "allocating the batch buffer");
    lp_engine_measure_ceiling(e);
}

void lp_engine_free(lp_engine *e) {
    lp_free(e->windows);
    lp_pipe_free(&e->pipe);
    lp_model_free(&e->m);
    lp_tp_free(&e->tp);
    lp_partition_free(&e->part);
    lp_layout_free(&e->ly);
    memset(e, 0, sizeof *e);
}

double lp_engine_measure_ceiling(lp_engine *e) {
    /* all ranks at once, as they run in a step (they share the node's cores and memory) */
    LP_CHECK_MPI(MPI_Barrier(e->c->world), "starting the GEMM ceiling probe");
    double g[2] = {lp_ceiling_measure(&e->ceil, LP_CEILING_MIN_REPS), e->ceil.best}, sum[2];
    LP_CHECK_MPI(MPI_Allreduce(g, sum, 2, MPI_DOUBLE, MPI_SUM, e->c->world), "summing the GEMM ceiling");
    e->ceiling = sum[1];
    return sum[0];
}

double lp_engine_step(lp_engine *e, long step, double lr, double *grad_norm, double *seconds) {
    double t0 = MPI_Wtime();
    double loss = lp_pipe_step(&e->pipe, e->windows, lr, grad_norm);
    double dt = MPI_Wtime() - t0;
    LP_CHECK_MPI(MPI_Allreduce(&dt, seconds, 1, MPI_DOUBLE, MPI_MAX, e->c->world), "timing the step");
    if (e->pipe.status == LP_STEP_NONFINITE_GRAD)
        lp_user_error_all("step %ld: loss %g, gradient norm %g: training diverged (the input weights are finite); stopped "
                          "before the update, nothing of this step was saved: lower [optim] lr (now %g)",
                          step + 1, loss, *grad_norm, lr);
    if (e->pipe.status == LP_STEP_NONFINITE_WEIGHTS)
        lp_user_error_all("step %ld: the update made a weight non-finite (loss %g, gradient norm %g): training diverged; "
                          "stopped before saving: lower [optim] lr (now %g)", step + 1, loss, *grad_norm, lr);
    return loss;
}

double lp_engine_mfu(lp_engine *e, double seconds) {
    double rate = e->step_flops / seconds * 1e-9;
    /* the probe was slowed down (a busy machine) while this step was not: measure again, a few
     * times (every rank decides alike: seconds is the same everywhere) */
    for (int retry = 0; retry < 3 && rate > e->ceiling; retry++) lp_engine_measure_ceiling(e);
    LP_ASSERT(rate <= e->ceiling, "computing MFU: a step ran faster than the best GEMM rate measured on its shapes");
    return rate / e->ceiling;
}
