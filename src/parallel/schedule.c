/* schedule.c - the GPipe and 1F1B operation orders and their simulated bubble (partition.h). */
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/partition.h"

int lp_schedule_parse(const char *name) {
    if (!strcmp(name, "1f1b")) return LP_SCHED_1F1B;
    if (!strcmp(name, "gpipe")) return LP_SCHED_GPIPE;
    return -1;
}

int lp_schedule_ops(int schedule, int pp, int stage, int M, int backward, lp_op *ops) {
    int n = 0;
    if (!backward || schedule == LP_SCHED_GPIPE) {
        for (int mb = 0; mb < M; mb++) ops[n++] = (lp_op){0, mb};
        if (backward)
            for (int mb = 0; mb < M; mb++) ops[n++] = (lp_op){1, mb};
        return n;
    }
    /* 1F1B: the warm-up fills the stages after this one; each backward then frees a slot */
    int warm = pp - 1 - stage < M ? pp - 1 - stage : M, f = 0, b = 0;
    while (f < warm) ops[n++] = (lp_op){0, f++};
    while (f < M) {
        ops[n++] = (lp_op){0, f++};
        ops[n++] = (lp_op){1, b++};
    }
    while (b < M) ops[n++] = (lp_op){1, b++};
    return n;
}

double lp_schedule_bubble(int schedule, int pp, int M, const double *f, const double *b, const int *backward) {
    lp_op *ops = lp_calloc((size_t)pp * 2 * M, sizeof(lp_op), "simulating the schedule");
    int *nops = lp_calloc((size_t)pp, sizeof(int), "simulating the schedule");
    int *next = lp_calloc((size_t)pp, sizeof(int), "simulating the schedule");
    double *free_at = lp_calloc((size_t)pp, sizeof(double), "simulating the schedule");
    double *endf = lp_calloc((size_t)pp * M, sizeof(double), "simulating the schedule");
    double *endb = lp_calloc((size_t)pp * M, sizeof(double), "simulating the schedule");
    char *doneb = lp_calloc((size_t)pp * M, 1, "simulating the schedule");
    char *donef = lp_calloc((size_t)pp * M, 1, "simulating the schedule");
    for (int s = 0; s < pp; s++) nops[s] = lp_schedule_ops(schedule, pp, s, M, backward[s], ops + (size_t)s * 2 * M);
    double busy = 0, span = 0;
    for (int progress = 1; progress;) {
        progress = 0;
        for (int s = 0; s < pp; s++) {
            while (next[s] < nops[s]) {
                lp_op o = ops[(size_t)s * 2 * M + next[s]];
                double ready;
                if (!o.backward) {
                    if (s > 0 && !donef[(s - 1) * M + o.mb]) break;
                    ready = s > 0 ? endf[(s - 1) * M + o.mb] : 0;
                } else if (s == pp - 1) {
                    ready = endf[s * M + o.mb];
                } else {
                    if (!doneb[(s + 1) * M + o.mb]) break;
                    ready = endb[(s + 1) * M + o.mb];
                }
                double start = ready > free_at[s] ? ready : free_at[s], d = o.backward ? b[s] : f[s];
                free_at[s] = start + d;
                busy += d;
                if (o.backward) endb[s * M + o.mb] = free_at[s], doneb[s * M + o.mb] = 1;
                else endf[s * M + o.mb] = free_at[s], donef[s * M + o.mb] = 1;
                if (free_at[s] > span) span = free_at[s];
                next[s]++;
                progress = 1;
            }
        }
    }
    for (int s = 0; s < pp; s++) LP_ASSERT(next[s] == nops[s], "simulating the schedule (it deadlocks)");
    lp_free(ops), lp_free(nops), lp_free(next), lp_free(free_at);
    lp_free(endf), lp_free(endb), lp_free(doneb), lp_free(donef);
    return span > 0 ? 1.0 - busy / (pp * span) : 0.0;
}
