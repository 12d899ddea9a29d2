/* bench.c - `llamapro bench`: timed steps of the training engine (engine.h: the setup, pipeline
 * stage and step function `train` runs) on a random model of the configured shape; tokens/s,
 * GFLOP/s from an explicit FLOP count, MFU against the GEMM ceiling `train` uses, and where the
 * step's time goes (the stage timers of pipeline.h). */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/comm.h"
#include "llamapro/engine.h"
#include "llamapro/expand.h"
#include "llamapro/flops.h"
#include "llamapro/gemm.h"
#include "llamapro/optim.h"
#include "llamapro/rng.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro bench --config RUN.ini [section.key=value ...] [--expand P]\n"
            "                      [--steps N] [--warmup W] [--json FILE]\n\n"
            "Times training steps of a randomly initialised model whose shape is [model] of RUN.ini\n"
            "(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len), with\n"
            "[batch] micro_batch sequences of [data] seq_len tokens, [batch] microbatches per step,\n"
            "through the engine `llamapro train` runs: the same setup, pipeline stages ([parallel] pp;\n"
            "data-parallel replicas = ranks / pp, under mpirun/srun like train), step and AdamW.\n\n"
            "  --expand P     expand the model by P interleaved blocks and train only those (LLaMA Pro);\n"
            "                 without it every tensor is trained (pretraining)\n"
            "  --steps N      timed steps (default 5)\n"
            "  --warmup W     untimed steps first (default 1)\n"
            "  --json FILE    also write the results as one JSON object\n\n"
            "FLOPs count only the work a step must do (no backward below the first trainable layer,\n"
            "no weight gradients of frozen layers, causal half of attention). MFU divides the\n"
            "achieved FLOP/s by the MFU ceiling: the best lp_gemm rate over >= 5 warm repetitions of\n"
            "each of the step's own GEMM shapes (forward, input-gradient, weight-gradient), with the\n"
            "same threads and all ranks at once, measured before and after the timed steps (the\n"
            "higher counts). The per-phase times are those of the pipeline stage's timers.\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* phases reported, in pipeline.h's timer indices */
static const int phase_idx[] = {LP_T_FWD, LP_T_BIN, LP_T_BWT, LP_T_OPT, LP_T_WAIT, LP_T_IDLE};
static const char *const phase_name[] = {"forward", "input_grad", "weight_grad", "optimizer", "waiting", "other"};
enum { N_PHASES = 6 };

int lp_cmd_bench(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* the network benchmark lives in bench_network.c */
        if (!strcmp(argv[i], "--network")) return lp_cmd_bench_network(argc, argv);
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {"expand", required_argument, 0, 'e'},
                                         {"steps", required_argument, 0, 's'}, {"warmup", required_argument, 0, 'w'},
                                         {"json", required_argument, 0, 'j'},    {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *json = NULL;
    int expand = 0, steps = 5, warmup = 1, o;
    while ((o = getopt_long(argc, argv, "c:e:s:w:j:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'e': expand = atoi(optarg); if (expand < 1) lp_user_error("--expand: expected a positive block count, got '%s'", optarg); break;
        case 's': steps = atoi(optarg); if (steps < 1) lp_user_error("--steps: expected a positive count, got '%s'", optarg); break;
        case 'w': warmup = atoi(optarg); if (warmup < 0) lp_user_error("--warmup: expected a count >= 0, got '%s'", optarg); break;
        case 'j': json = optarg; break;
        case 'h': usage(stdout); return 0;
        default: lp_user_error("bench: unknown option (see llamapro bench --help)");
        }
    }
    if (!config) lp_user_error("bench: --config RUN.ini is required (see llamapro bench --help)");
    lp_run_config rc;
    lp_run_config_read(&rc, config, argv + optind, argc - optind);
    lp_config shape = lp_run_config_shape(&rc, config);
    lp_comm c;
    lp_comm_init(&c);

    /* the random model, the same on every rank (same seed); expanded blocks are marked as
     * `llamapro expand` marks them, and [method] picks them (llama-pro) or everything (full) */
    lp_model base, m;
    char err[256];
    lp_model_alloc(&base, &shape);
    lp_model_init_random(&base, rc.seed);
    if (expand) {
        int *nl = lp_calloc((size_t)expand, sizeof(int), "planning the expansion");
        if (lp_expand(&base, &m, expand, LP_EXPAND_INTERLEAVE, nl, err, sizeof err)) lp_user_error("--expand: %s", err);
        for (int k = 0; k < expand; k++) m.layers[nl[k]].marked_trainable = 1;
        lp_free(nl);
        lp_model_free(&base);
    } else {
        m = base;
    }
    snprintf(rc.method, sizeof rc.method, "%s", expand ? "llama-pro" : "full");
    int L = m.cfg.n_layers;
    lp_engine e;
    lp_engine_init(&e, &rc, config, &c, &m);
    const lp_config *k = &e.m.cfg;
    int n_tr = 0;
    for (int l = 0; l < L; l++) n_tr += e.m.layers[l].trainable;
    lp_rng rng;
    lp_rng_seed(&rng, lp_rng_mix(rc.seed + 1, (uint64_t)e.ly.replica, 0));
    size_t nw = (size_t)e.M * e.B * (e.T + 1);
    for (size_t i = 0; i < nw; i++) e.windows[i] = (int)lp_rng_below(&rng, (uint64_t)k->vocab_size);

    int root = c.rank == 0;
    double ceil_start = e.ceiling;
    lp_flops f = lp_flops_microbatch(&e.m, e.B, e.T);
    double per_tok = e.step_flops / e.tokens_per_step;
    if (root) {
        printf("bench: %s: %d layers (%d trainable, method %s), dim %d, hidden %d, heads %d/%d, vocab %d\n", config, L, n_tr,
               rc.method, k->dim, k->hidden_dim, k->n_heads, k->n_kv_heads, k->vocab_size);
        printf("bench: %d ranks (pp %d x tp %d x dp %d, %s) x %d threads; %d x %d sequences of %d tokens per replica; %ld tokens "
               "per step\n", c.size, e.ly.pp, e.ly.tp, e.ly.dp, rc.pp_schedule, c.threads, e.M, e.B, e.T, e.tokens_per_step);
        printf("bench: %s\n", lp_gemm_library());
        printf("bench: MFU ceiling %.1f GFLOP/s: best of %d warm repetitions of the step's %d GEMM shapes (rank 0:",
               e.ceiling, LP_CEILING_MIN_REPS, e.ceil.n);
        for (int i = 0; i < e.ceil.n; i++) {
            const lp_gemm_shape *s = &e.ceil.shape[i];
            printf(" %s %c%c %dx%dx%d %.0f%s", s->what, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M, s->N, s->K,
                   e.ceil.gflops[i], i + 1 < e.ceil.n ? "," : ")\n");
        }
        printf("bench: %.1f MFLOP/token (forward %.1f, input-grad %.1f, weight-grad %.1f)\n", per_tok * 1e-6,
               f.forward / (e.B * e.T) * 1e-6, f.input_grad / (e.B * e.T) * 1e-6, f.weight_grad / (e.B * e.T) * 1e-6);
    }
    lp_pipe_report_memory(&e.pipe, 0, NULL);
    double *dt = lp_calloc((size_t)steps, sizeof(double), "allocating step timings");
    double *sorted = lp_calloc((size_t)steps, sizeof(double), "allocating step timings");
    double *phase = lp_calloc((size_t)e.ly.pp * LP_T_N, sizeof(double), "allocating phase timings");
    double gn, loss = 0, gemm0 = 0, att0 = 0, tp0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) gemm0 = lp_gemm_seconds(), att0 = lp_attention_seconds(), tp0 = lp_tp_allreduce_seconds();
        double lr = lp_lr_at(s, rc.steps, rc.warmup_steps, rc.lr, rc.min_lr, rc.schedule), el;
        loss = lp_engine_step(&e, s, lr, &gn, &el);
        if (s >= warmup) {
            dt[s - warmup] = el;
            for (int i = 0; i < e.ly.pp * LP_T_N; i++) phase[i] += e.pipe.all_times[i];
        }
        if (root) printf("bench: step %d %.3f s loss %.4f%s\n", s, el, loss, s < warmup ? " (warm-up)" : "");
        fflush(stdout);
    }
    /* this rank's compute split: GEMM (layers and head), attention (its own small GEMMs and softmax
     * count here, not under GEMM), the rest is elementwise (norms, RoPE, SwiGLU, loss, copies) */
    double t_gemm = (lp_gemm_seconds() - gemm0) / steps, t_att = (lp_attention_seconds() - att0) / steps;
    /* the ceiling again after the steps: a probe slowed by a busy moment at start is corrected */
    double ceil_end = lp_engine_measure_ceiling(&e);
    memcpy(sorted, dt, sizeof(double) * steps);
    qsort(sorted, (size_t)steps, sizeof *sorted, cmp_double);
    double med = sorted[steps / 2], tok_s = e.tokens_per_step / med, gfs = e.step_flops / med * 1e-9;
    double mfu = lp_engine_mfu(&e, med);
    /* per phase: seconds per step, mean over timed steps, of the slowest stage in that phase */
    double ph[N_PHASES] = {0};
    for (int i = 0; i < N_PHASES; i++)
        for (int st = 0; st < e.ly.pp; st++) {
            double v = phase[st * LP_T_N + phase_idx[i]] / steps;
            if (v > ph[i]) ph[i] = v;
        }
    if (root) {
        printf("bench: step %.3f s (median of %d), %.0f tokens/s, %.1f GFLOP/s, MFU %.1f%% of %.1f GFLOP/s ceiling\n", med,
               steps, tok_s, gfs, 100 * mfu, e.ceiling);
        printf("bench: ceiling probes: %.1f GFLOP/s before the steps, %.1f after (the best per shape counts)\n", ceil_start,
               ceil_end);
        printf("bench: per step (mean of %d, slowest stage):", steps);
        for (int i = 0; i < N_PHASES; i++) printf(" %s %.3f s%s", phase_name[i], ph[i], i + 1 < N_PHASES ? "," : "\n");
        /* communication: waiting for other stages, and the tensor-parallel all-reduces */
        double t_opt = phase[LP_T_OPT] / steps, t_comm = phase[LP_T_WAIT] / steps + (lp_tp_allreduce_seconds() - tp0) / steps;
        double t_all = 0;
        for (int i = 0; i < LP_T_PIPE; i++) t_all += phase[i] / steps; /* LP_T_PIPE overlaps the others */
        double t_elt = t_all - t_gemm - t_att - t_opt - t_comm;
        printf("bench: rank 0 per step: GEMM %.3f s (%.0f%%), attention %.3f s (%.0f%%), elementwise %.3f s (%.0f%%), "
               "optimizer %.3f s (%.0f%%), communication %.3f s (%.0f%%)\n", t_gemm, 100 * t_gemm / t_all, t_att,
               100 * t_att / t_all, t_elt, 100 * t_elt / t_all, t_opt, 100 * t_opt / t_all, t_comm, 100 * t_comm / t_all);
        for (int st = 0; st < e.ly.pp && e.ly.pp > 1; st++) {
            printf("bench: stage %d:", st);
            for (int i = 0; i < N_PHASES; i++)
                printf(" %s %.3f s%s", phase_name[i], phase[st * LP_T_N + phase_idx[i]] / steps, i + 1 < N_PHASES ? "," : "\n");
        }
    }
    if (json && root) {
        FILE *jf = fopen(json, "w");
        if (!jf) lp_user_error("--json: cannot write %s", json);
        fprintf(jf,
                "{\"step_s\": %.6f, \"tokens_per_s\": %.1f, \"gflops\": %.2f, \"mfu\": %.4f, "
                "\"sgemm_gflops\": %.2f, \"ceiling_gflops\": %.2f, \"ceiling_start_gflops\": %.2f, "
                "\"ceiling_end_gflops\": %.2f, \"flop_per_token\": %.0f, \"tokens_per_step\": %ld, \"threads\": %d, "
                "\"ranks\": %d, \"pp\": %d, \"dp\": %d, \"layers\": %d, \"trainable_layers\": %d, \"steps_s\": [",
                med, tok_s, gfs, mfu, e.ceiling, e.ceiling, ceil_start, ceil_end, per_tok, e.tokens_per_step, c.threads,
                c.size, e.ly.pp, e.ly.dp, L, n_tr);
        for (int s = 0; s < steps; s++) fprintf(jf, "%s%.6f", s ? ", " : "", dt[s]);
        fprintf(jf, "], \"phases_s\": {");
        for (int i = 0; i < N_PHASES; i++) fprintf(jf, "%s\"%s\": %.6f", i ? ", " : "", phase_name[i], ph[i]);
        fprintf(jf, "}, \"gemm_shapes\": [");
        for (int i = 0; i < e.ceil.n; i++) {
            const lp_gemm_shape *s = &e.ceil.shape[i];
            fprintf(jf, "%s{\"phase\": \"%s\", \"trans\": \"%c%c\", \"m\": %d, \"n\": %d, \"k\": %d, \"gflops\": %.2f}",
                    i ? ", " : "", s->what, s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->M, s->N, s->K, e.ceil.gflops[i]);
        }
        fprintf(jf, "]}\n");
        if (fclose(jf)) lp_user_error("--json: cannot write %s", json);
    }
    lp_free(dt), lp_free(sorted), lp_free(phase);
    lp_engine_free(&e);
    lp_comm_free(&c);
    lp_run_config_free(&rc);
    return 0;
}
