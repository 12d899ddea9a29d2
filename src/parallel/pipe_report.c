/* pipe_report.c - stage timings and memory for the run's log and metrics (see pipeline.h). */
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/pipeline.h"

#define LP_SPLIT_MAX_PP 256 /* stages whose schedule the metrics simulate (on the stack) */

static size_t append(char *buf, size_t n, size_t at, const char *fmt, double v) {
    if (at < n) at += (size_t)snprintf(buf + at, n - at, fmt, v);
    return at;
}

/* The step's split into compute, bubble, p2p, all-reduce and optimizer seconds (pipeline.h). */
static void time_split(const lp_pipe *p, double out[5]) {
    int pp = p->ly->pp, last = 0;
    double f[LP_SPLIT_MAX_PP], b[LP_SPLIT_MAX_PP], busy = 0, compute = 0;
    int bw[LP_SPLIT_MAX_PP];
    for (int s = 0; s < pp; s++) {
        const double *x = p->all_times + (size_t)s * LP_T_N;
        double bs = x[LP_T_FWD] + x[LP_T_BIN] + x[LP_T_BWT];
        busy += bs;
        if (bs > compute) compute = bs;
        if (x[LP_T_PIPE] > p->all_times[(size_t)last * LP_T_N + LP_T_PIPE]) last = s;
        if (s < LP_SPLIT_MAX_PP) f[s] = x[LP_T_FWD] / p->M, b[s] = (x[LP_T_BIN] + x[LP_T_BWT]) / p->M, bw[s] = p->part->st[s].backward;
    }
    const double *xl = p->all_times + (size_t)last * LP_T_N;
    double span = xl[LP_T_PIPE], span0 = busy; /* the pipeline phase: measured, and with free messages */
    if (pp > 1 && pp <= LP_SPLIT_MAX_PP) span0 = busy / (pp * (1.0 - lp_schedule_bubble(p->schedule, pp, p->M, f, b, bw)));
    else if (pp > 1) span0 = span; /* too many stages to simulate here: all of the wait is bubble */
    if (span0 > span) span0 = span; /* a faster phase than the simulation (timings vary per microbatch) */
    if (span0 < compute) span0 = compute;
    out[0] = compute, out[1] = span0 - compute, out[2] = span - span0, out[3] = xl[LP_T_AR], out[4] = xl[LP_T_OPT];
}

void lp_pipe_metrics_json(const lp_pipe *p, char *buf, size_t n) {
    static const int kinds[] = {LP_T_FWD, LP_T_BIN, LP_T_BWT, LP_T_WAIT, LP_T_OPT, LP_T_AR, LP_T_IDLE};
    size_t at = 0;
    buf[0] = 0;
    at = append(buf, n, at, ", \"bubble\": %.4f", p->bubble);
    at = append(buf, n, at, ", \"bubble_pred\": %.4f", p->part->bubble);
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (at < n) at += (size_t)snprintf(buf + at, n - at, ", \"stage_%s_s\": [", lp_time_names[kinds[k]]);
        for (int s = 0; s < p->ly->pp; s++)
            at = append(buf, n, at, s ? ", %.4f" : "%.4f", p->all_times[(size_t)s * LP_T_N + kinds[k]]);
        if (at < n) at += (size_t)snprintf(buf + at, n - at, "]");
    }
    double t[5];
    time_split(p, t);
    static const char *const names[5] = {"compute", "bubble", "p2p", "allreduce", "optim"};
    for (int k = 0; k < 5; k++)
        if (at < n) at += (size_t)snprintf(buf + at, n - at, ", \"time_%s_s\": %.6f", names[k], t[k]);
}

void lp_pipe_report_memory(const lp_pipe *p, long step, FILE *metrics) {
    const lp_layout *ly = p->ly;
    size_t w, g, o, a;
    lp_pipe_bytes(p, &w, &g, &o, &a);
    size_t fz;
    lp_model_weight_bytes(p->m, &fz);
    enum { N = 6 };
    double mine[N] = {(double)w, (double)g, (double)o, (double)a, (double)lp_vmhwm_bytes(), (double)fz};
    double *all = lp_calloc((size_t)ly->pp * N, sizeof(double), "gathering stage memory");
    LP_CHECK_MPI(MPI_Allgather(mine, N, MPI_DOUBLE, all, N, MPI_DOUBLE, ly->pipe), "gathering stage memory");
    for (int s = 0; s < ly->pp; s++) {
        const double *x = all + (size_t)s * N;
        const lp_stage_plan *st = &p->part->st[s];
        lp_info("memory stage %d (layers %d-%d, %d trainable%s): weights %.1f MB (frozen layers %.1f MB, %s), gradients "
                "%.1f MB, optimizer %.1f MB, activations %.1f MB; peak resident %.1f MB", s, st->l0, st->l1 - 1,
                st->n_trainable, ly->tp > 1 ? ", per tensor-parallel rank" : "", x[0] * 1e-6, x[5] * 1e-6,
                lp_precision_name(p->m->precision), x[1] * 1e-6, x[2] * 1e-6, x[3] * 1e-6, x[4] * 1e-6);
        if (metrics)
            fprintf(metrics, "{\"step\": %ld, \"memory_stage\": %d, \"tp\": %d, \"layers\": %d, \"trainable_layers\": %d, "
                    "\"weights_bytes\": %.0f, \"frozen_layer_bytes\": %.0f, \"grads_bytes\": %.0f, \"optim_bytes\": %.0f, "
                    "\"acts_bytes\": %.0f, \"vmhwm_bytes\": %.0f}\n", step, s, ly->tp, st->l1 - st->l0, st->n_trainable, x[0],
                    x[5], x[1], x[2], x[3], x[4]);
    }
    if (metrics) fflush(metrics);
    lp_free(all);
}
