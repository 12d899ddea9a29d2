/* bench.c - `llamapro bench`: timed training steps (forward, backward, AdamW) of a random model
 * of the configured shape; tokens/s, GFLOP/s from an explicit FLOP count, and MFU against the
 * sgemm rate measured in the same run. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/expand.h"
#include "llamapro/flops.h"
#include "llamapro/gemm.h"
#include "llamapro/rng.h"
#include "llamapro/run_config.h"
#include "llamapro/trainer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro bench --config RUN.ini [section.key=value ...] [--expand P]\n"
            "                      [--steps N] [--warmup W] [--json FILE]\n\n"
            "Times training steps of a randomly initialised model whose shape is [model] of RUN.ini\n"
            "(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len), with\n"
            "[batch] micro_batch sequences of [data] seq_len tokens, [batch] microbatches per step.\n\n"
            "  --expand P     expand the model by P interleaved blocks and train only those (LLaMA Pro);\n"
            "                 without it every tensor is trained (pretraining)\n"
            "  --steps N      timed steps (default 5)\n"
            "  --warmup W     untimed steps first (default 1)\n"
            "  --json FILE    also write the results as one JSON object\n\n"
            "FLOPs count only the work a step must do (no backward below the first trainable layer,\n"
            "no weight gradients of frozen layers, causal half of attention). MFU divides the\n"
            "achieved FLOP/s by the best cblas_sgemm rate measured in this run on the model's own\n"
            "GEMM shapes, with the same threads (OMP_NUM_THREADS).\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

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
    lp_run_config_shape(&rc, config);
    char err[256];
    int B = rc.micro_batch, T = rc.seq_len, M = rc.microbatches;
    if (T > rc.shape.max_seq_len)
        lp_user_error("%s: [data] seq_len %d exceeds [model] max_seq_len %d", config, T, rc.shape.max_seq_len);

    lp_model base, m;
    lp_model_alloc(&base, &rc.shape);
    lp_model_init_random(&base, rc.seed);
    if (expand) {
        int *nl = lp_calloc((size_t)expand, sizeof(int), "planning the expansion");
        if (lp_expand(&base, &m, expand, LP_EXPAND_INTERLEAVE, nl, err, sizeof err)) lp_user_error("--expand: %s", err);
        for (int k = 0; k < expand; k++) lp_model_set_layer_trainable(&m, nl[k]);
        lp_free(nl);
        lp_model_free(&base);
    } else {
        m = base;
        for (int i = 0; i < m.n_tensors; i++) lp_model_set_trainable(&m, &m.tensors[i]);
    }
    const lp_config *c = &m.cfg;
    lp_model_set_precision(&m, lp_precision_parse(rc.precision), B * T); /* [run] precision, after the flags */
    lp_trainer t;
    lp_trainer_init(&t, &m, B, T, M, MPI_COMM_SELF, rc.beta1, rc.beta2, rc.eps, rc.weight_decay, rc.clip);
    int *windows = lp_calloc((size_t)M * B * (T + 1), sizeof(int), "allocating bench batches");
    lp_rng rng;
    lp_rng_seed(&rng, rc.seed + 1);
    for (size_t i = 0; i < (size_t)M * B * (T + 1); i++) windows[i] = (int)lp_rng_below(&rng, (uint64_t)c->vocab_size);

    /* the ceiling: best sgemm rate on this model's own large GEMM shapes */
    int N = B * T;
    double g1 = lp_gemm_measure_gflops_prec(m.precision, N, c->hidden_dim, c->dim, 5);
    double g2 = lp_gemm_measure_gflops_prec(m.precision, N, c->dim, c->hidden_dim, 5);
    double g3 = lp_gemm_measure_gflops_prec(m.precision, N, c->vocab_size, c->dim, 3);
    double peak = g1 > g2 ? g1 : g2;
    peak = g3 > peak ? g3 : peak;

    lp_flops f = lp_flops_microbatch(&m, B, T);
    double step_flops = M * lp_flops_total(f);
    printf("bench: %d layers (%d trainable), dim %d, hidden %d, heads %d/%d, vocab %d\n", c->n_layers,
           expand ? expand : c->n_layers, c->dim, c->hidden_dim, c->n_heads, c->n_kv_heads, c->vocab_size);
    printf("bench: %d x %d sequences of %d tokens per step = %d tokens; %d threads\n", M, B, T, M * B * T,
           omp_get_max_threads());
    printf("bench: %s\n", lp_gemm_library());
    printf("bench: precision %s%s%s\n", rc.precision, m.precision == LP_BF16 ? ", " : "", m.precision == LP_BF16 ? lp_gemm_library_bf16() : "");
    printf("bench: sgemm %dx%dx%d %.1f, %dx%dx%d %.1f, %dx%dx%d %.1f GFLOP/s\n", N, c->hidden_dim, c->dim, g1,
           N, c->dim, c->hidden_dim, g2, N, c->vocab_size, c->dim, g3);
    printf("bench: %.1f MFLOP/token (forward %.1f, input-grad %.1f, weight-grad %.1f)\n",
           step_flops / (M * N) * 1e-6, M * f.forward / (M * N) * 1e-6, M * f.input_grad / (M * N) * 1e-6,
           M * f.weight_grad / (M * N) * 1e-6);
    printf("bench: memory: params %.1f MB, gradients %.1f MB, optimizer %.1f MB, activations %.1f MB\n",
           lp_model_numel(&m, 0) * 4e-6, lp_model_numel(&m, 1) * 4e-6, lp_adamw_bytes(&t.opt) * 1e-6,
           lp_acts_bytes(&t.acts, &m) * 1e-6);
    double *dt = lp_calloc((size_t)steps, sizeof(double), "allocating step timings");
    double gn, loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = omp_get_wtime();
        loss = lp_trainer_step(&t, windows, 1e-4, &gn);
        double el = omp_get_wtime() - t0;
        if (s >= warmup) dt[s - warmup] = el;
        printf("bench: step %d %.3f s loss %.4f%s\n", s, el, loss, s < warmup ? " (warm-up)" : "");
        fflush(stdout);
    }
    qsort(dt, (size_t)steps, sizeof *dt, cmp_double);
    double med = dt[steps / 2], tok_s = M * N / med, gfs = step_flops / med * 1e-9;
    printf("bench: step %.3f s (median of %d), %.0f tokens/s, %.1f GFLOP/s, MFU %.1f%% of %.1f GFLOP/s sgemm\n",
           med, steps, tok_s, gfs, 100 * gfs / peak, peak);
    if (json) {
        FILE *jf = fopen(json, "w");
        if (!jf) lp_user_error("--json: cannot write %s", json);
        fprintf(jf,
                "{\"step_s\": %.6f, \"tokens_per_s\": %.1f, \"gflops\": %.2f, \"mfu\": %.4f, "
                "\"sgemm_gflops\": %.2f, \"flop_per_token\": %.0f, \"tokens_per_step\": %d, \"threads\": %d}\n",
                med, tok_s, gfs, gfs / peak, peak, step_flops / (M * N), M * N, omp_get_max_threads());
        fclose(jf);
    }
    lp_free(dt);
    lp_free(windows);
    lp_trainer_free(&t);
    lp_model_free(&m);
    lp_run_config_free(&rc);
    return 0;
}
