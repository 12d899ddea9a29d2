/* run_ckpt.c - resume, periodic checkpoints and clean stops for a training run (see run_ckpt.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "llamapro/run_ckpt.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llamapro/check.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t stop_signal;

/* Only sets flags: the step loop polls them at its next step boundary. */
static void on_signal(int sig) {
    stop_flag = 1;
    stop_signal = sig;
}

int lp_stop_requested(void) { return stop_flag != 0; }

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a signal during MPI or file I/O must not make calls fail with EINTR */
    LP_CHECK_SYS(sigaction(SIGUSR1, &sa, NULL) == 0, "installing the SIGUSR1 handler");
    LP_CHECK_SYS(sigaction(SIGTERM, &sa, NULL) == 0, "installing the SIGTERM handler");
}

static void mkdir_p(const char *dir) {
    char buf[LP_CKPT_PATH];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++)
        if (*p == '/' || !*p) {
            char ch = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) lp_user_error("[run] dir: cannot create %s: %s", buf, strerror(errno));
            if (!ch) break;
            *p = ch;
        }
}

/* Keep the metrics of steps <= step and evaluations before it: the resumed run appends the rest,
 * so metrics.jsonl reads like one uninterrupted run. */
static void trim_metrics(const char *dir, long step) {
    char path[LP_CKPT_PATH + 32], tmp[LP_CKPT_PATH + 48], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r");
    if (!in) return;
    FILE *out = fopen(tmp, "w");
    LP_CHECK_SYS(out != NULL, "rewriting metrics.jsonl on resume");
    while (fgets(line, sizeof line, in)) {
        long s = -1;
        if (sscanf(line, "{\"step\": %ld", &s) != 1) continue;
        int eval = strstr(line, "\"eval\"") != NULL;
        if (eval ? s < step : s <= step) fputs(line, out);
    }
    fclose(in);
    LP_CHECK_SYS(fclose(out) == 0, "rewriting metrics.jsonl on resume");
    LP_CHECK_SYS(rename(tmp, path) == 0, "rewriting metrics.jsonl on resume");
}

long lp_run_ckpt_begin(lp_run_ckpt *k, const lp_run_config *rc, const char *source, lp_model *m, lp_adamw *o,
                       const lp_mixture *smp, lp_comm *c) {
    memset(k, 0, sizeof *k);
    install_handlers();
    k->c = c;
    k->every = rc->ckpt_every;
    k->keep_last = rc->keep_last;
    k->t_start = MPI_Wtime();
    k->budget_s = rc->max_minutes * 60.0;
    lp_mixture_get_state(smp, &k->st.data, k->st.data_mix, sizeof k->st.data_mix);
    k->tokens_per_step = (long)(k->st.data.global_batch * k->st.data.seq_len);
    lp_rng_seed(&k->st.rng, rc->seed);
    k->st.pp = rc->pp;
    k->st.ranks = c->size;
    k->st.dp = c->size / (rc->pp > 0 ? rc->pp : 1);
    k->st.config_text = rc->text;
    snprintf(k->dir, sizeof k->dir, "%s/ckpt", rc->dir);
    if (c->rank == 0) {
        mkdir_p(k->dir);
        lp_ckpt_clean_partials(k->dir);
    }
    /* Frozen tensors link into the model file training starts from, unless that file is itself a
     * checkpoint (which keep_last may delete) or nothing is frozen. */
    int frozen = lp_model_numel(m, 1) < lp_model_numel(m, 0);
    char real[PATH_MAX];
    if (frozen && !lp_ckpt_is_checkpoint(rc->model_path) && realpath(rc->model_path, real))
        snprintf(k->frozen_source, sizeof k->frozen_source, "%.1150s", real);
    LP_CHECK_MPI(MPI_Barrier(c->world), "waiting for the checkpoint directory");

    char latest[LP_CKPT_PATH];
    if (strcmp(rc->resume, "auto") || !lp_ckpt_latest(k->dir, latest, sizeof latest)) return 0;
    lp_train_state st;
    lp_ckpt_load(latest, m, o, &st, c->world);
    char err[5000];
    if (lp_mixture_check_state(smp, &st.data, st.data_mix, err, sizeof err) != 0)
        lp_user_error("%s: cannot resume from %s: %s (use run.resume=never or another run.dir)", source, latest, err);
    if (o->step != st.step)
        lp_user_error("%s: optimizer step %ld differs from train_state step %ld", latest, o->step, st.step);
    k->st.step = st.step;
    k->st.tokens = st.tokens;
    k->st.rng = st.rng;
    lp_free((void *)st.config_text);
    lp_info("train: resuming from %s at step %ld (%ld tokens; written by %d ranks: pp %d x dp %d; now %d ranks)", latest,
            st.step, st.tokens, st.ranks, st.pp, st.dp, c->size);
    if (c->rank == 0) trim_metrics(rc->dir, st.step);
    return st.step;
}

static void save(lp_run_ckpt *k, long done, const lp_model *m, const lp_adamw *o) {
    k->st.step = done;
    k->st.tokens = done * k->tokens_per_step;
    lp_ckpt_save(k->dir, m, o, &k->st, k->frozen_source[0] ? k->frozen_source : NULL, k->keep_last, k->c->world,
                 &k->last);
    lp_info("checkpoint: %s/step-%ld.h5 (%.1f MB%s, %.2f s)", k->dir, done, k->last.bytes / 1e6,
            k->last.linked ? ", frozen tensors linked" : "", k->last.seconds);
}

int lp_run_ckpt_after_step(lp_run_ckpt *k, long done, int last_step, const lp_model *m, const lp_adamw *o) {
    /* One all-reduce per step: a signal seen by any rank, or the budget, stops every rank at the
     * same step boundary. The maximum also tells which signal. */
    int flag[2] = {stop_flag ? 1 : 0, stop_signal};
    if (k->budget_s > 0 && MPI_Wtime() - k->t_start >= k->budget_s) flag[0] = flag[0] ? flag[0] : 2;
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, flag, 2, MPI_INT, MPI_MAX, k->c->world), "agreeing on a stop request");
    int periodic = k->every > 0 && done % k->every == 0;
    int stop = flag[0] && !last_step;
    if (periodic || stop) save(k, done, m, o);
    if (!stop) return 0;
    if (flag[0] == 2 && !flag[1])
        lp_info("train: run.max_minutes = %g used up: stopped after step %ld with checkpoint %s/step-%ld.h5; "
                "resume with the same command (exit %d)", k->budget_s / 60, done, k->dir, done, LP_EXIT_SIGNAL);
    else
        lp_info("train: %s received: stopped after step %ld with checkpoint %s/step-%ld.h5; resume with the same "
                "command (exit %d)", flag[1] == SIGTERM ? "SIGTERM" : "SIGUSR1", done, k->dir, done, LP_EXIT_SIGNAL);
    return 1;
}
