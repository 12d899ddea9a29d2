/* plan.c - `llamapro plan`: for each node count and candidate layout (pp, dp, micro-batch,
 * microbatches, schedule; the cost model's partition) the predicted step time with its breakdown,
 * the bubble and the memory per rank; layouts that do not fit are marked, the rest ranked. The
 * model is the partitioner's cost model extended with communication (plan.h). */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/model_file.h"
#include "llamapro/pipeline.h"
#include "llamapro/plan.h"
#include "llamapro/run_config.h"
#include "llamapro/train_run.h"

#define MAX_LIST 64
#define LP_PLAN_CALIBRATIONS 3

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro plan --config RUN.ini [section.key=value ...] [--expand P] [--nodes LIST]\n"
            "                     [--ranks-per-node R] [--threads N] [--gflops X | --rates LIST]\n"
            "                     [--mem-bw-gbs X]\n"
            "                     [--node-mem-gb X] [--runtime-mb X] [--net FILE.json]\n"
            "                     [--latency-us X] [--bandwidth-gbs X] [--intra-latency-us X]\n"
            "                     [--intra-bandwidth-gbs X] [--pp LIST] [--micro-batch LIST]\n"
            "                     [--global-batch G] [--weak] [--schedules LIST] [--top K] [--detail]\n"
            "                     [--json FILE]\n\n"
            "Predicts, for each node count and each layout of its ranks into pp pipeline stages x dp\n"
            "data-parallel replicas (the partitioner's own cost model, plus point-to-point, all-reduce\n"
            "and optimizer time), the step time with its breakdown (compute, bubble, p2p, all-reduce,\n"
            "optimizer), the bubble and the memory per rank (weights, gradients, optimizer state,\n"
            "activations in flight, runtime). Layouts that do not fit a node's memory are marked; the\n"
            "rest are ranked by step time.\n\n"
            "Model: [model] path of RUN.ini (its trainable flags and [method]), or without a path the\n"
            "shape of [model] (dim, hidden_dim, n_layers, ...), with --expand P: expanded by P\n"
            "interleaved blocks (LLaMA Pro), only those trained. Sequences of [data] seq_len tokens.\n"
            "  --nodes LIST          node counts, e.g. 1,2,4 (default 1)\n"
            "  --ranks-per-node R    MPI ranks per node (default 1)\n"
            "  --threads N           OpenMP threads per rank for the measured rates (default: this\n"
            "                        machine's cores / R)\n"
            "  --gflops X            FLOP/s of one rank for all work, in GFLOP/s (default: measured on\n"
            "                        this machine with the training's own calibration, per kind of work;\n"
            "                        under srun/mpirun on every rank at once, as loaded as in training)\n"
            "  --rates F,I,W,HF,HI,HW  GFLOP/s of one rank per kind of work: a layer's forward, input\n"
            "                        gradient, weight gradient; the head's forward, input, weight gradient\n"
            "                        (as printed by a measured plan: one calibration for several plans)\n"
            "  --mem-bw-gbs X        memory bandwidth of one rank for the optimizer (default 10)\n"
            "  --node-mem-gb X       memory of a node (default: this machine's)\n"
            "  --runtime-mb X        resident memory of a rank besides model state and activations\n"
            "                        (MPI, libraries, buffers; default 41, measured here for llamapro train)\n"
            "  --net FILE.json       links from `llamapro bench --network --json FILE`\n"
            "  --latency-us X, --bandwidth-gbs X              link between nodes (default 20 us, 1 GB/s)\n"
            "  --intra-latency-us X, --intra-bandwidth-gbs X  link inside a node (default 1 us, 5 GB/s)\n"
            "  --pp LIST             stage counts to try (default: every divisor of the ranks <= layers)\n"
            "  --tp LIST             tensor-parallel ranks per stage to try (default 1; those not dividing\n"
            "                        the ranks / pp or the model's heads, kv heads, hidden_dim are skipped)\n"
            "  --micro-batch LIST    sequences per microbatch to try (default [batch] micro_batch)\n"
            "  --global-batch G      sequences per step (default [batch] micro_batch x microbatches);\n"
            "                        microbatches per replica = G / (dp x micro-batch)\n"
            "  --weak                weak scaling: the global batch is G x nodes\n"
            "  --schedules LIST      1f1b,gpipe (default both)\n"
            "  --top K               ranked layouts shown per node count (default 5)\n"
            "  --detail              per stage lines (layers, memory) of the best layout per node count\n"
            "  --json FILE           every layout as one JSON object per line\n");
}

static int parse_list(const char *flag, const char *s, int *out) {
    int n = lp_parse_int_list(s, out, MAX_LIST);
    if (n < 1) lp_user_error("%s: expected a comma-separated list of positive integers, got '%s'", flag, s);
    for (int i = 0; i < n; i++)
        if (out[i] < 1) lp_user_error("%s: expected positive integers, got '%s'", flag, s);
    return n;
}

static double parse_pos(const char *flag, const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end || !(v > 0)) lp_user_error("%s: expected a positive number, got '%s'", flag, s);
    return v;
}

/* The skeleton to plan for: the model file's config and trainable flags with [method] applied,
 * or the [model] shape, expanded by P interleaved blocks when asked (the layers lp_expand adds:
 * after each group of L / P original layers). */
static void skeleton(lp_model *m, lp_run_config *rc, int expand, const char *source) {
    if (rc->model_path[0] && !expand) {
        lp_model_load_range(m, rc->model_path, MPI_COMM_SELF, 0, 0, 0, 0);
        lp_apply_method(m, rc, source);
        m->precision = lp_precision_parse(rc->precision); /* weight bytes per precision (nothing held) */
        return;
    }
    lp_config c = lp_run_config_shape(rc, source);
    int L = c.n_layers;
    if (expand && L % expand)
        lp_user_error("--expand %d: the %d layers of [model] n_layers do not split into %d equal groups", expand, L, expand);
    c.n_layers = L + expand;
    lp_model_alloc_range(m, &c, 0, 0, 0, 0);
    for (int k = 0; k < expand; k++) m->layers[(k + 1) * (L / expand + 1) - 1].marked_trainable = 1;
    lp_apply_method(m, rc, source);
    m->precision = lp_precision_parse(rc->precision);
}

static int cmp_case(const void *a, const void *b) {
    const lp_plan_case *x = a, *y = b;
    if (x->fits != y->fits) return y->fits - x->fits;
    return (x->t_step > y->t_step) - (x->t_step < y->t_step);
}

static void print_case(const lp_plan_case *pc, int rank_no) {
    char mark[16];
    if (pc->fits) snprintf(mark, sizeof mark, "%d", rank_no);
    else snprintf(mark, sizeof mark, "OOM");
    printf("  %4s  pp %3d tp %2d dp %5d  mb %2d x %5d %-5s | step %9.4f s = compute %9.4f + bubble %8.4f + p2p %8.4f + "
           "all-reduce %8.4f + optim %7.4f | bubble %5.1f%% | %10.0f tok/s | %8.1f MB/rank%s\n",
           mark, pc->pp, pc->tp, pc->dp, pc->B, pc->M, pc->schedule == LP_SCHED_GPIPE ? "gpipe" : "1f1b", pc->t_step, pc->t_compute,
           pc->t_bubble, pc->t_p2p, pc->t_allreduce, pc->t_optim, 100 * pc->bubble, pc->tokens_per_s, pc->mem_peak * 1e-6,
           pc->fits ? "" : " (does not fit)");
}

static void print_stages(const lp_plan_case *pc, double runtime) {
    for (int s = 0; s < pc->pp; s++) {
        const lp_stage_plan *st = &pc->part.st[s];
        printf("        stage %d: layers %d-%d (%d trainable) | weights %.1f MB, gradients %.1f MB, optimizer %.1f MB, "
               "activations %.1f MB (%d in flight), runtime %.1f MB = %.1f MB\n",
               s, st->l0, st->l1 - 1, st->n_trainable, st->weight_bytes * 1e-6, st->grad_bytes * 1e-6, st->optim_bytes * 1e-6,
               st->act_bytes * 1e-6, st->inflight, runtime * 1e-6, pc->stage_mem[s] * 1e-6);
    }
}

int lp_cmd_plan(int argc, char **argv) {
    enum { O_EXPAND = 256, O_NODES, O_RPN, O_THREADS, O_GFLOPS, O_MEMBW, O_NODEMEM, O_RUNTIME, O_NET, O_LAT, O_BW, O_ILAT,
           O_IBW, O_PP, O_TP, O_MB, O_GB, O_WEAK, O_SCHED, O_TOP, O_DETAIL, O_JSON, O_RATES };
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},          {"expand", required_argument, 0, O_EXPAND},
        {"nodes", required_argument, 0, O_NODES},       {"ranks-per-node", required_argument, 0, O_RPN},
        {"threads", required_argument, 0, O_THREADS},   {"gflops", required_argument, 0, O_GFLOPS},
        {"mem-bw-gbs", required_argument, 0, O_MEMBW},  {"node-mem-gb", required_argument, 0, O_NODEMEM},
        {"runtime-mb", required_argument, 0, O_RUNTIME}, {"net", required_argument, 0, O_NET},
        {"latency-us", required_argument, 0, O_LAT},    {"bandwidth-gbs", required_argument, 0, O_BW},
        {"intra-latency-us", required_argument, 0, O_ILAT}, {"intra-bandwidth-gbs", required_argument, 0, O_IBW},
        {"pp", required_argument, 0, O_PP},             {"micro-batch", required_argument, 0, O_MB},
        {"global-batch", required_argument, 0, O_GB},   {"weak", no_argument, 0, O_WEAK},
        {"schedules", required_argument, 0, O_SCHED},   {"top", required_argument, 0, O_TOP},
        {"detail", no_argument, 0, O_DETAIL},           {"json", required_argument, 0, O_JSON},
        {"rates", required_argument, 0, O_RATES},       {"help", no_argument, 0, 'h'},
        {"tp", required_argument, 0, O_TP},
        {0, 0, 0, 0}};
    const char *config = NULL, *net_file = NULL, *json = NULL;
    int expand = 0, nodes[MAX_LIST] = {1}, n_nodes = 1, rpn = 1, threads = 0, pps[MAX_LIST], n_pp = 0, tps[MAX_LIST] = {1}, n_tp = 1, mbs[MAX_LIST],
        n_mb = 0, G = 0, weak = 0, scheds[2] = {LP_SCHED_1F1B, LP_SCHED_GPIPE}, n_sched = 2, top = 5, detail = 0, o;
    double gflops = 0, mem_bw = 10e9, node_mem = 0, runtime = LP_RUNTIME_BYTES;
    lp_net net = {.inter = {20e-6, 1e9}, .intra = {1e-6, 5e9}};
    double lat = 0, bw = 0, ilat = 0, ibw = 0, rates[6] = {0};
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case O_EXPAND: expand = (int)parse_pos("--expand", optarg); break;
        case O_NODES: n_nodes = parse_list("--nodes", optarg, nodes); break;
        case O_RPN: rpn = (int)parse_pos("--ranks-per-node", optarg); break;
        case O_THREADS: threads = (int)parse_pos("--threads", optarg); break;
        case O_GFLOPS: gflops = parse_pos("--gflops", optarg) * 1e9; break;
        case O_MEMBW: mem_bw = parse_pos("--mem-bw-gbs", optarg) * 1e9; break;
        case O_NODEMEM: node_mem = parse_pos("--node-mem-gb", optarg) * 1e9; break;
        case O_RUNTIME: runtime = parse_pos("--runtime-mb", optarg) * 1e6; break;
        case O_NET: net_file = optarg; break;
        case O_LAT: lat = parse_pos("--latency-us", optarg) * 1e-6; break;
        case O_BW: bw = parse_pos("--bandwidth-gbs", optarg) * 1e9; break;
        case O_ILAT: ilat = parse_pos("--intra-latency-us", optarg) * 1e-6; break;
        case O_IBW: ibw = parse_pos("--intra-bandwidth-gbs", optarg) * 1e9; break;
        case O_PP: n_pp = parse_list("--pp", optarg, pps); break;
        case O_TP: n_tp = parse_list("--tp", optarg, tps); break;
        case O_MB: n_mb = parse_list("--micro-batch", optarg, mbs); break;
        case O_GB: G = (int)parse_pos("--global-batch", optarg); break;
        case O_WEAK: weak = 1; break;
        case O_SCHED: {
            char buf[64], *save = NULL;
            snprintf(buf, sizeof buf, "%s", optarg);
            n_sched = 0;
            for (char *e = strtok_r(buf, ",", &save); e && n_sched < 2; e = strtok_r(NULL, ",", &save))
                if ((scheds[n_sched++] = lp_schedule_parse(e)) < 0)
                    lp_user_error("--schedules: unknown schedule '%s' (expected 1f1b, gpipe or both)", e);
            if (!n_sched) lp_user_error("--schedules: expected 1f1b, gpipe or 1f1b,gpipe");
            break;
        }
        case O_TOP: top = (int)parse_pos("--top", optarg); break;
        case O_DETAIL: detail = 1; break;
        case O_JSON: json = optarg; break;
        case O_RATES: {
            char buf[256], *save = NULL, *e;
            int k = 0;
            snprintf(buf, sizeof buf, "%s", optarg);
            for (e = strtok_r(buf, ",", &save); e && k < 6; e = strtok_r(NULL, ",", &save)) rates[k++] = parse_pos("--rates", e) * 1e9;
            if (k != 6 || e) lp_user_error("--rates: expected 6 comma-separated GFLOP/s (forward, input gradient, weight gradient, head forward, head input gradient, head weight gradient), got '%s'", optarg);
            break;
        }
        case 'h': usage(stdout); return 0;
        default: lp_user_error("plan: unknown option (see llamapro plan --help)");
        }
    }
    if (!config) lp_user_error("plan: --config RUN.ini is required (see llamapro plan --help)");
    lp_run_config rc;
    lp_run_config_read(&rc, config, argv + optind, argc - optind);
    lp_model m;
    skeleton(&m, &rc, expand, config);
    const lp_config *c = &m.cfg;
    int T = rc.seq_len;
    if (T > c->max_seq_len) lp_user_error("%s: [data] seq_len %d exceeds the model's max_seq_len %d", config, T, c->max_seq_len);
    if (!n_mb) mbs[0] = rc.micro_batch, n_mb = 1;
    if (!G) G = rc.micro_batch * rc.microbatches;
    if (net_file) lp_net_read_json(&net, net_file);
    if (lat) net.inter.latency_s = lat;
    if (bw) net.inter.bandwidth_Bps = bw;
    if (ilat) net.intra.latency_s = ilat;
    if (ibw) net.intra.bandwidth_Bps = ibw;
    if (!node_mem) node_mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    lp_node node = {.ranks_per_node = rpn, .mem_bytes = node_mem, .mem_bw_Bps = mem_bw, .runtime_bytes = runtime};
    if (gflops) {
        node.rates = (lp_cost_rates){gflops, gflops, gflops, gflops, gflops, gflops};
    } else if (rates[0]) {
        node.rates = (lp_cost_rates){rates[0], rates[1], rates[2], rates[3], rates[4], rates[5]};
    } else {
        /* the training's own calibration (partition.h), on one microbatch, with a rank's threads;
         * started on the ranks of an allocation (srun llamapro plan), every rank measures while the
         * others do, as loaded as in training, and the rates are their mean */
        double lin = 2.0 * mbs[0] * T * (double)lp_layer_numel(c);
        if (lin > 2e11)
            lp_user_error("plan: measuring the rates of this model (%.0f GFLOP per layer and microbatch) would take minutes; "
                          "give --gflops X (the GEMM rate of one rank)", lin * 1e-9);
        int cores = omp_get_num_procs();
        int nt = threads ? threads : (cores / rpn > 0 ? cores / rpn : 1), saved = omp_get_max_threads();
        omp_set_num_threads(nt);
        /* the median of a few calibrations per kind of work: one can fall on a moment when the
         * machine is busy with something else */
        double v[6][LP_PLAN_CALIBRATIONS];
        for (int k = 0; k < LP_PLAN_CALIBRATIONS; k++) {
            lp_cost_rates r;
            lp_cost_calibrate(&r, c, mbs[0], T, MPI_COMM_WORLD);
            double x[6] = {r.fwd, r.bin, r.bwt, r.head_fwd, r.head_bin, r.head_bwt};
            for (int j = 0; j < 6; j++) v[j][k] = x[j];
        }
        double med[6];
        for (int j = 0; j < 6; j++) {
            qsort(v[j], LP_PLAN_CALIBRATIONS, sizeof(double), cmp_double);
            med[j] = v[j][LP_PLAN_CALIBRATIONS / 2];
        }
        node.rates = (lp_cost_rates){med[0], med[1], med[2], med[3], med[4], med[5]};
        omp_set_num_threads(saved);
        threads = nt;
    }
    int rank = lp_world_rank();
    FILE *jf = NULL;
    char jtmp[LP_PATH_MAX + 16];
    if (json && rank == 0) {
        snprintf(jtmp, sizeof jtmp, "%s.partial", json);
        lp_partial_register(jtmp);
        if (!(jf = fopen(jtmp, "w"))) lp_user_error("--json: cannot write %s", jtmp);
    }
    if (rank == 0) {
        printf("plan: %d layers (%zu trainable parameters of %zu), dim %d, hidden %d, heads %d/%d, vocab %d; seq_len %d\n",
               c->n_layers, lp_model_numel(&m, 1), lp_model_numel(&m, 0), c->dim, c->hidden_dim, c->n_heads, c->n_kv_heads,
               c->vocab_size, T);
        printf("plan: node: %d rank(s), %.1f GB; per rank %s GFLOP/s layer fwd %.3f, in-grad %.3f, w-grad %.3f, head %.3f/%.3f/%.3f"
               "%s; memory bandwidth %.1f GB/s; runtime %.1f MB\n",
               rpn, node_mem * 1e-9, gflops || rates[0] ? "given" : "measured", node.rates.fwd * 1e-9, node.rates.bin * 1e-9,
               node.rates.bwt * 1e-9, node.rates.head_fwd * 1e-9, node.rates.head_bin * 1e-9, node.rates.head_bwt * 1e-9,
               gflops || rates[0] ? "" : (threads == 1 ? " (1 thread)" : " (threads as asked)"), mem_bw * 1e-9, runtime * 1e-6);
        printf("plan: network%s: between nodes %.2f us, %.3f GB/s; inside a node %.2f us, %.3f GB/s\n",
               net_file ? " (measured)" : "", net.inter.latency_s * 1e6, net.inter.bandwidth_Bps * 1e-9,
               net.intra.latency_s * 1e6, net.intra.bandwidth_Bps * 1e-9);
        printf("plan: global batch %d sequences%s; step = compute + bubble + p2p + all-reduce + optimizer\n", G,
               weak ? " x nodes (weak scaling)" : "");
    }
    int max_cases = n_nodes * (n_pp ? n_pp : MAX_LIST) * n_tp * n_mb * n_sched * 4 + 16;
    lp_plan_case *cases = lp_calloc((size_t)max_cases, sizeof *cases, "planning layouts");
    lp_plan_case *best = lp_calloc((size_t)n_nodes, sizeof *best, "planning layouts");
    int *have_best = lp_calloc((size_t)n_nodes, sizeof(int), "planning layouts");
    for (int ni = 0; ni < n_nodes; ni++) {
        int N = nodes[ni], world = N * rpn, Gn = weak ? G * N : G, nc = 0;
        for (int pp = 1; pp <= world && pp <= c->n_layers; pp++) {
            if (world % pp) continue;
            if (n_pp) {
                int want = 0;
                for (int i = 0; i < n_pp; i++) want |= pps[i] == pp;
                if (!want) continue;
            }
            for (int ti = 0; ti < n_tp; ti++) {
                int tp = tps[ti];
                if (world % (pp * tp) || c->n_heads % tp || c->n_kv_heads % tp || c->hidden_dim % tp) continue;
                int dp = world / (pp * tp);
                for (int bi = 0; bi < n_mb; bi++) {
                    int B = mbs[bi];
                    if (Gn % (dp * B)) continue;
                    int M = Gn / (dp * B);
                    for (int si = 0; si < n_sched; si++) {
                        if (pp == 1 && si > 0) continue; /* one stage: the schedules coincide */
                        if (nc >= max_cases) break;
                        /* an explicit partition of the config applies to its own stage count */
                        int cnt = 1;
                        for (const char *q = rc.partition; *q; q++) cnt += *q == ',';
                        const char *part = rc.partition[0] && cnt == pp ? rc.partition : NULL;
                        lp_plan_case_eval_tp(&cases[nc], &m, &node, &net, N, pp, tp, B, T, M, scheds[si], part, config);
                        if (jf) lp_plan_case_json(&cases[nc], jf), fputc('\n', jf);
                        nc++;
                    }
                }
            }
        }
        if (rank == 0) {
            printf("\n%d node(s), %d ranks, global batch %d x %d tokens: %d layouts\n", N, world, Gn, T, nc);
            if (!nc) printf("  no layout: the global batch %d does not split into dp x micro-batch\n", Gn);
        }
        qsort(cases, (size_t)nc, sizeof *cases, cmp_case);
        for (int i = 0; i < nc && rank == 0; i++) {
            if (i < top || (!cases[i].fits && i < top + 3)) print_case(&cases[i], i + 1);
        }
        if (nc && cases[0].fits && rank == 0 && detail) print_stages(&cases[0], runtime);
        if (nc && cases[0].fits) {
            best[ni] = cases[0];
            have_best[ni] = 1;
            memset(&cases[0], 0, sizeof cases[0]);
        }
        for (int i = 0; i < nc; i++) lp_plan_case_free(&cases[i]);
    }
    if (rank == 0) {
        printf("\nbest layout per node count:\n%6s %5s %3s %5s %4s %6s %6s %10s %10s %10s %12s %14s %11s\n", "nodes", "pp", "tp", "dp", "mb",
               "M", "sched", "step s", "bubble", "tok/s", "tokens/day", "MB/rank (max)", "efficiency");
        double base = 0;
        int base_nodes = 0;
        for (int ni = 0; ni < n_nodes; ni++) {
            if (!have_best[ni]) {
                printf("%6d  no layout fits\n", nodes[ni]);
                continue;
            }
            const lp_plan_case *b = &best[ni];
            if (!base) base = b->tokens_per_s, base_nodes = b->nodes;
            printf("%6d %5d %3d %5d %4d %6d %6s %10.4f %9.1f%% %10.0f %12.3g %14.1f %10.1f%%\n", b->nodes, b->pp, b->tp, b->dp, b->B, b->M,
                   b->schedule == LP_SCHED_GPIPE ? "gpipe" : "1f1b", b->t_step, 100 * b->bubble, b->tokens_per_s,
                   b->tokens_per_s * 86400, b->mem_peak * 1e-6, 100 * b->tokens_per_s / base * base_nodes / b->nodes);
        }
    }
    for (int ni = 0; ni < n_nodes; ni++)
        if (have_best[ni]) lp_plan_case_free(&best[ni]);
    if (jf) {
        LP_CHECK_SYS(fclose(jf) == 0, "writing the plan");
        LP_CHECK_SYS(rename(jtmp, json) == 0, "renaming the plan into place");
        lp_partial_unregister(jtmp);
    }
    lp_free(cases), lp_free(best), lp_free(have_best);
    lp_model_free(&m);
    lp_run_config_free(&rc);
    return 0;
}
