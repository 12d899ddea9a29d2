/* eval.c - `llamapro eval --model M.h5 --corpus C.h5[:split] [--max-tokens N] [--precision fp32|bf16] [--pp N|auto]`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/comm.h"
#include "llamapro/corpus.h"
#include "llamapro/evaluate.h"
#include "llamapro/gemm.h"
#include "llamapro/model_file.h"
#include "llamapro/run_config.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro eval --model M.h5 --corpus C.h5[:split] [--max-tokens N] [--seq-len T] [--batch B]\n"
            "                     [--precision fp32|bf16] [--pp N|auto] [--node-mem-gb X]\n"
            "                     [--config RUN.ini [section.key=value ...]]\n\n"
            "Mean cross-entropy loss (nats/token) and perplexity of the model on a corpus split (default\n"
            "val). The first N tokens of the split (default: all) are cut into non-overlapping windows of\n"
            "T+1 tokens (default T = the model's max_seq_len), B windows a forward pass. Prints one line:\n"
            "loss, ppl, tokens. --precision bf16 runs the GEMMs on bf16 inputs with fp32 accumulation\n"
            "(oneDNN), as [run] precision = bf16 trains, with the frozen weights held in bf16 only; default\n"
            "fp32 (both modes of eval).\n\n"
            "The MPI ranks are laid out as in training: pp pipeline stages x dp replicas (ranks = pp x dp).\n"
            "Each rank loads only its stage's layers (the partitioner's split of the forward work), windows\n"
            "flow through the stages and are spread over the replicas. Any pp gives bitwise the loss of one\n"
            "rank; any dp the same to rounding (within 1e-6 relative).\n"
            "  --pp N           pipeline stages (1 = the whole model on every rank)\n"
            "  --pp auto        (the default without --config) the fewest stages, dividing the ranks, whose\n"
            "                   largest stage fits a rank's share of the node's memory: weights (in the\n"
            "                   --precision), activations of one pass of B x T and a rank's runtime, as\n"
            "                   `llamapro plan` counts them, times the ranks on this node <= the node's\n"
            "                   memory; none fitting is an error. So a model that fits one rank runs\n"
            "                   data-parallel only. Rank 0 prints the layout and its planned memory on stderr.\n"
            "  --node-mem-gb X  memory of a node for --pp auto (default: the Slurm allocation's\n"
            "                   SLURM_MEM_PER_NODE, else this machine's physical memory)\n"
            "  --config RUN.ini the training run's layout and evaluation settings: [parallel] pp and\n"
            "                   partition, [data] seq_len, [run] eval_tokens and precision, [batch] micro_batch\n"
            "                   (as --pp, --seq-len, --max-tokens, --precision, --batch; a flag given wins), and\n"
            "                   [model] path when --model is not given; section.key=value arguments override\n"
            "                   the file, as for train. The numbers then match the run's eval lines.\n\n"
            "       llamapro eval --task arithmetic --model M.h5 --corpus C.h5[:split] [--max-docs N]\n\n"
            "Exact-match accuracy of greedy answers on a corpus made by `prepare --synthetic arithmetic`\n"
            "(default split: test): the model sees \"Q: 37+58=? A:\" and must continue with \"95\". The whole\n"
            "model on every rank (documents spread over the ranks; --pp 1 only).\n"
            "Prints one line: accuracy, problems.\n" LP_HELP_STOP);
}

int lp_cmd_eval(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    enum { O_PP = 256, O_NODEMEM, O_CONFIG };
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},      {"corpus", required_argument, 0, 'c'},
                                         {"max-tokens", required_argument, 0, 'n'}, {"seq-len", required_argument, 0, 't'},
                                         {"batch", required_argument, 0, 'b'},      {"help", no_argument, 0, 'h'},
                                         {"task", required_argument, 0, 'k'},       {"max-docs", required_argument, 0, 'd'},
                                         {"precision", required_argument, 0, 'x'},  {"pp", required_argument, 0, O_PP},
                                         {"node-mem-gb", required_argument, 0, O_NODEMEM},
                                         {"config", required_argument, 0, O_CONFIG}, {0, 0, 0, 0}};
    const char *model = NULL, *corpus = NULL, *task = NULL, *config = NULL;
    long long max_tokens = -1, max_docs = 0;
    int T = 0, B = 0, o, prec = -1, pp = -1; /* -1: not given (pp 0: auto) */
    double node_mem = 0;
    while ((o = getopt_long(argc, argv, "m:c:n:t:b:k:d:x:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'c': corpus = optarg; break;
        case 'n': max_tokens = lp_flag_int("--max-tokens", optarg, 0, 1LL << 50); break;
        case 't': T = (int)lp_flag_int("--seq-len", optarg, 1, 1 << 20); break;
        case 'b': B = (int)lp_flag_int("--batch", optarg, 1, 1 << 16); break;
        case 'k': task = optarg;
            if (strcmp(task, "arithmetic")) lp_user_error("--task: '%s' is not a task (expected arithmetic)", optarg);
            break;
        case 'd': max_docs = lp_flag_int("--max-docs", optarg, 0, 1LL << 50); break;
        case 'x': prec = lp_precision_parse(optarg);
            if (prec < 0) lp_user_error("--precision: expected fp32 or bf16, got '%s'", optarg);
            break;
        case O_PP: pp = strcmp(optarg, "auto") ? (int)lp_flag_int("--pp", optarg, 1, 1 << 20) : 0; break;
        case O_NODEMEM: {
            char *end;
            node_mem = strtod(optarg, &end) * 1e9;
            if (*end || !(node_mem > 0)) lp_user_error("--node-mem-gb: expected a positive number of GB, got '%s'", optarg);
            break;
        }
        case O_CONFIG: config = optarg; break;
        case 'h': usage(stdout); return 0;
        default: lp_user_error("eval: unknown option (see llamapro eval --help)");
        }
    }
    if (optind < argc && !config)
        lp_user_error("eval: unexpected argument '%s' (section.key=value overrides need --config)", argv[optind]);
    lp_run_config rc;
    char pp_name[LP_PATH_MAX + 32] = "--pp";
    const char *partition = NULL;
    if (config) { /* the training run's settings, under the flags given */
        lp_run_config_read(&rc, config, argv + optind, argc - optind);
        if (pp < 0) pp = rc.pp, snprintf(pp_name, sizeof pp_name, "%s: [parallel] pp", config), partition = rc.partition;
        if (!T) T = rc.seq_len;
        if (!B) B = rc.micro_batch;
        if (max_tokens < 0) max_tokens = rc.eval_tokens;
        if (prec < 0) prec = lp_precision_parse(rc.precision);
        if (!model && rc.model_path[0]) model = rc.model_path;
    }
    if (pp < 0) pp = task ? 1 : 0;
    if (!B) B = 8;
    if (max_tokens < 0) max_tokens = 0;
    if (prec < 0) prec = LP_FP32;
    if (!model || !corpus) lp_user_error("eval: --model and --corpus are required (see llamapro eval --help)");
    if (task && pp > 1) lp_user_error("--pp %d: --task arithmetic runs the whole model on every rank (expected --pp 1)", pp);
    char path[LP_PATH_MAX], split[32];
    snprintf(split, sizeof split, "%s", task ? "test" : "val");
    snprintf(path, sizeof path, "%s", corpus);
    char *colon = strrchr(path, ':');
    if (colon && !strchr(colon, '/')) {
        snprintf(split, sizeof split, "%s", colon + 1);
        *colon = 0;
    }
    lp_comm c;
    lp_comm_init(&c);
    if (task) {
        lp_model m;
        lp_model_load(&m, model, c.world);
        lp_model_set_precision(&m, (lp_precision)prec, 1); /* the decoder: one row per GEMM */
        lp_model_release_frozen(&m);
        lp_check_corpus_fits_model(&m, path, split, "--corpus");
        lp_corpus_check_ids(path, split, m.cfg.vocab_size, c.world);
        long n = 0;
        double acc = lp_eval_arithmetic(&m, path, split, (long)max_docs, &n, c.world);
        if (c.rank == 0) printf("accuracy %.4f problems %ld\n", acc, n);
        lp_model_free(&m);
    } else {
        lp_eval_layout L = {.pp = pp, .partition = partition, .precision = prec, .B = B, .T = T, .node_mem = node_mem,
                            .pp_name = pp_name, .source = config ? config : "eval"};
        lp_eval_result r = lp_evaluate_model(model, &L, path, split, (uint64_t)max_tokens, &c);
        if (c.rank == 0) printf("loss %.6f ppl %.4f tokens %ld\n", r.loss, r.ppl, r.tokens);
    }
    if (config) lp_run_config_free(&rc);
    lp_comm_free(&c);
    return 0;
}
