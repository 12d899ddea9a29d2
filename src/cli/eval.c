/* eval.c - `llamapro eval --model M.h5 --corpus C.h5[:split] [--max-tokens N] [--precision fp32|bf16]`. */
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
            "                     [--precision fp32|bf16]\n\n"
            "Mean cross-entropy loss (nats/token) and perplexity of the model on a corpus split (default\n"
            "val). The first N tokens of the split (default: all) are cut into non-overlapping windows of\n"
            "T+1 tokens (default T = the model's max_seq_len), spread over the MPI ranks; any rank count\n"
            "gives the same result to rounding. Prints one line: loss, ppl, tokens. --precision bf16 runs the\n"
            "GEMMs on bf16 inputs with fp32 accumulation (oneDNN), as [run] precision = bf16 trains, with the\n"
            "frozen weights held in bf16 only; default fp32 (both modes of eval).\n\n"
            "       llamapro eval --task arithmetic --model M.h5 --corpus C.h5[:split] [--max-docs N]\n\n"
            "Exact-match accuracy of greedy answers on a corpus made by `prepare --synthetic arithmetic`\n"
            "(default split: test): the model sees \"Q: 37+58=? A:\" and must continue with \"95\".\n"
            "Prints one line: accuracy, problems.\n" LP_HELP_STOP);
}

int lp_cmd_eval(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},      {"corpus", required_argument, 0, 'c'},
                                         {"max-tokens", required_argument, 0, 'n'}, {"seq-len", required_argument, 0, 't'},
                                         {"batch", required_argument, 0, 'b'},      {"help", no_argument, 0, 'h'},
                                         {"task", required_argument, 0, 'k'},       {"max-docs", required_argument, 0, 'd'},
                                         {"precision", required_argument, 0, 'x'},  {0, 0, 0, 0}};
    const char *model = NULL, *corpus = NULL, *task = NULL;
    long long max_tokens = 0, max_docs = 0;
    int T = 0, B = 8, o, prec = LP_FP32;
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
        case 'h': usage(stdout); return 0;
        default: lp_user_error("eval: unknown option (see llamapro eval --help)");
        }
    }
    if (!model || !corpus) lp_user_error("eval: --model and --corpus are required (see llamapro eval --help)");
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
    lp_model m;
    lp_model_load(&m, model, c.world);
    if (task) {
        lp_model_set_precision(&m, (lp_precision)prec, 1); /* the decoder: one row per GEMM */
        lp_model_release_frozen(&m);
        lp_check_corpus_fits_model(&m, path, split, "--corpus");
        lp_corpus_check_ids(path, split, m.cfg.vocab_size, c.world);
        long n = 0;
        double acc = lp_eval_arithmetic(&m, path, split, (long)max_docs, &n, c.world);
        if (c.rank == 0) printf("accuracy %.4f problems %ld\n", acc, n);
        lp_model_free(&m);
        lp_comm_free(&c);
        return 0;
    }
    if (!T) T = m.cfg.max_seq_len;
    if (T > m.cfg.max_seq_len) lp_user_error("--seq-len %d exceeds the model's max_seq_len %d", T, m.cfg.max_seq_len);
    lp_check_corpus_fits_model(&m, path, split, "--corpus");
    lp_corpus_check_ids(path, split, m.cfg.vocab_size, c.world); /* ids index the embedding */
    /* all layers are frozen here: bf16 keeps only their packed forward forms */
    lp_model_set_precision(&m, (lp_precision)prec, B * T);
    lp_model_release_frozen(&m);
    lp_acts a;
    lp_acts_alloc(&a, &m, B, T);
    lp_eval_result r = lp_evaluate(&m, &a, path, split, T, (uint64_t)max_tokens, c.world);
    if (c.rank == 0) printf("loss %.6f ppl %.4f tokens %ld\n", r.loss, r.ppl, r.tokens);
    lp_acts_free(&a);
    lp_model_free(&m);
    lp_comm_free(&c);
    return 0;
}
