/* pipe_report.c - stage timings and memory for the run's log and metrics (see pipeline.h). */
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/pipeline.h"

static size_t append(char *buf, size_t n, size_t at, const char *fmt, double v) {
    if (at < n) at += (size_t)snprintf(buf + at, n - at, fmt, v);
    return at;
}

void lp_pipe_metrics_json(const lp_pipe *p, char *buf, size_t n) {
    static const int kinds[] = {LP_T_FWD, LP_T_BIN, LP_T_BWT, LP_T_WAIT, LP_T_OPT, LP_T_IDLE};
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
