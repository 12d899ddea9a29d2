/* run.c - the training run (see train_run.h): [parallel] pp pipeline stages x dp replicas
 * (pipeline.h; pp = 1 is one stage holding the whole model). Every rank computes the same loss,
 * norm and evaluation numbers (they are reduced); rank 0 prints progress and writes
 * run/metrics.jsonl. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llamapro/check.h"
#include "llamapro/engine.h"
#include "llamapro/evaluate.h"
#include "llamapro/gemm.h"
#include "llamapro/model_file.h"
#include "llamapro/optim.h"
#include "llamapro/run_ckpt.h"
#include "llamapro/mixture.h"
#include "llamapro/train_run.h"

static void make_dir(const char *dir) {
    char buf[LP_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) lp_user_error("[run] dir: cannot create %s: %s", buf, strerror(errno));
            *p = '/';
        }
    if (mkdir(buf, 0777) && errno != EEXIST) lp_user_error("[run] dir: cannot create %s: %s", buf, strerror(errno));
}

static void fmt_duration(double s, char *out, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
}

/* After each metrics.jsonl record (rank 0; no-op elsewhere): a write that failed (full disk, quota,
 * I/O error) ends the run with one line naming the file, exit 1, as every other output does. */
static void metrics_flush(FILE *metrics, const char *path) {
    if (metrics && (fflush(metrics) != 0 || ferror(metrics))) lp_user_error("%s: cannot write: %s", path, strerror(errno));
}

static void run_evals(lp_pipe *t, const lp_run_config *rc, long step, FILE *metrics, const char *mpath) {
    for (int i = 0; i < rc->n_val; i++) {
        const lp_val_set *v = &rc->val[i];
        lp_eval_result r = lp_pipe_evaluate(t, v->path, v->split, rc->seq_len, (uint64_t)rc->eval_tokens);
        lp_info("eval  step %ld | %-8s loss %.4f | ppl %.2f | %ld tokens", step, v->name, r.loss, r.ppl, r.tokens);
        if (metrics) {
            fprintf(metrics, "{\"step\": %ld, \"eval\": \"%s\", \"loss\": %.9g, \"ppl\": %.6g, \"tokens\": %ld}\n", step,
                    v->name, r.loss, r.ppl, r.tokens);
            metrics_flush(metrics, mpath);
        }
    }
}

int lp_train_run(const lp_run_config *rc, const char *source, lp_comm *c) {
    if (!rc->model_path[0]) lp_user_error("%s: [model] path is empty (expected a model file to train)", source);
    if (!rc->train_path[0]) lp_user_error("%s: [data] train is empty (expected a corpus file)", source);
    lp_engine e;
    lp_engine_init(&e, rc, source, c, NULL);
    lp_model *m = &e.m;
    lp_mix_source src[LP_MIX_MAX];
    for (int i = 0, n = lp_mix_sources(rc->train_path, rc->train_split, rc->replay, src, LP_MIX_MAX); i < n; i++)
        lp_check_corpus_fits_model(m, src[i].path, src[i].split, "[data] train");
    for (int i = 0; i < rc->n_val; i++) lp_check_corpus_fits_model(m, rc->val[i].path, rc->val[i].split, "[data] val");

    int B = e.B, T = e.T, M = e.M;
    int G = B * M * e.ly.dp;
    lp_mixture *smp = lp_mixture_open(rc->train_path, rc->train_split, rc->replay, rc->seed, T, G); /* one corpus or a weighted mixture (mixture.h) */
    /* checkpoint hook 1/3: resume from <run.dir>/ckpt/latest (run_ckpt.h) */
    lp_run_ckpt ck;
    long first_step = lp_run_ckpt_begin(&ck, rc, source, m, &e.pipe.opt, smp, c);
    lp_model_sync_forms(m); /* resumed masters -> bf16 forms */
    int stopped = 0;

    FILE *metrics = NULL;
    char path[LP_PATH_MAX + 64], mpath[LP_PATH_MAX + 64];
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", rc->dir);
    if (c->rank == 0) {
        make_dir(rc->dir);
        metrics = fopen(mpath, "a");
        if (!metrics) lp_user_error("%s: cannot open for appending: %s", mpath, strerror(errno));
    }
    size_t np = lp_model_numel(m, 0), nt = lp_model_numel(m, 1);
    lp_info("train: %s, method %s: %zu parameters, %zu trainable (%.1f%%), %d layers", rc->model_path, rc->method, np,
            nt, 100.0 * nt / np, m->cfg.n_layers);
    lp_info("train: %d ranks x %d threads (%d pipeline stages x %d tensor-parallel x %d data-parallel replicas, %s); %d sequences "
            "x %d tokens per step (%d per microbatch, %d microbatches)", c->size, c->threads, e.ly.pp, e.ly.tp, e.ly.dp, rc->pp_schedule, G, T, B, M);
    lp_partition_print(&e.part);
    lp_pipe_report_memory(&e.pipe, 0, NULL);
    if (m->precision == LP_BF16) lp_info("train: precision bf16, %s; bf16 weight forms %.1f MB", lp_gemm_library_bf16(),
                                        lp_model_forms_bytes(m) / 1e6);
    lp_info("train: %s; MFU ceiling %.1f GFLOP/s (best GEMM rate on the step's %d shapes, all ranks)", lp_gemm_library(),
            e.ceiling, e.ceil.n);

    double t_start = MPI_Wtime(), last_print = 0, compute = 0;
    for (long step = first_step; step < rc->steps; step++) {
        if (rc->eval_every > 0 && step % rc->eval_every == 0 && rc->n_val)
            run_evals(&e.pipe, rc, step, metrics, mpath);
        if (lp_pipe_needs_tokens(&e.pipe)) lp_mixture_fill(smp, (uint64_t)step, e.ly.replica * B * M, B * M, e.windows);
        double lr = lp_lr_at(step, rc->steps, rc->warmup_steps, rc->lr, rc->min_lr, rc->schedule), gn, dt;
        double loss = lp_engine_step(&e, step, lr, &gn, &dt);
        compute += dt;
        double tps = e.tokens_per_step / dt, mfu = lp_engine_mfu(&e, dt);
        if (metrics) {
            char stages[2048], mix[2048];
            lp_pipe_metrics_json(&e.pipe, stages, sizeof stages);
            lp_mixture_metrics_json(smp, (uint64_t)step + 1, mix, sizeof mix);
            fprintf(metrics,
                    "{\"step\": %ld, \"loss\": %.17g, \"lr\": %.6g, \"grad_norm\": %.17g, \"tokens\": %ld, "
                    "\"tokens_per_s\": %.1f, \"mfu\": %.4f, \"time_s\": %.3f%s%s}\n",
                    step + 1, loss, lr, gn, (step + 1) * e.tokens_per_step, tps, mfu, MPI_Wtime() - t_start, mix, stages);
            metrics_flush(metrics, mpath);
        }
        double now = MPI_Wtime() - t_start;
        if (now - last_print >= 2.0 || step == 0 || step + 1 == rc->steps) {
            char eta[32];
            fmt_duration(compute / (step + 1 - first_step) * (rc->steps - step - 1), eta, sizeof eta);
            lp_info("step %ld/%d | loss %.4f | lr %.2e | grad %.3f | %.0f tok/s | MFU %.1f%% | ETA %s", step + 1, rc->steps,
                    loss, lr, gn, tps, 100 * mfu, eta);
            last_print = now;
        }
        /* checkpoint hook 2/3: every run.ckpt_every steps, and a clean stop on a signal or budget */
        if (lp_run_ckpt_after_step(&ck, step + 1, step + 1 == rc->steps, m, &e.pipe.opt)) {
            stopped = 1;
            break;
        }
    }
    /* checkpoint hook 3/3: stopped on a signal: the checkpoint is written; skip the final
     * evaluation and model, free everything, and leave with 75 */
    if (!stopped) {
        if (rc->n_val) run_evals(&e.pipe, rc, rc->steps, metrics, mpath);
        lp_pipe_report_memory(&e.pipe, rc->steps, metrics);
        metrics_flush(metrics, mpath);
        snprintf(path, sizeof path, "%s/final.h5", rc->dir);
        lp_model_save(m, path, c->world);
        lp_info("train: done in %.1f s; final model %s", MPI_Wtime() - t_start, path);
    }
    if (metrics && fclose(metrics) != 0) lp_user_error("%s: cannot write: %s", mpath, strerror(errno));
    lp_mixture_close(smp);
    lp_engine_free(&e);
    return stopped ? LP_EXIT_SIGNAL : 0;
}
