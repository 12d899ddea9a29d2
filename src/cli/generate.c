/* generate.c - `llamapro generate`: sampling with the key/value-cache decoder. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/gemm.h"
#include "llamapro/cli.h"
#include "llamapro/decode.h"
#include "llamapro/model_file.h"
#include "llamapro/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro generate --model M.h5 (--prompt TEXT | --prompt-ids 1,2,3) [--tokens N]\n"
            "                         [--temperature T] [--seed S] [--print-ids] [--precision fp32|bf16]\n\n"
            "Continues the prompt with up to N new tokens (default 64; stops at the end-of-sequence\n"
            "token or the model's max_seq_len). --temperature 0 is greedy (the most likely token each\n"
            "step); otherwise tokens are drawn from softmax(logits / T) (default T = 0.8) with a\n"
            "generator seeded by --seed (default 1): the same seed gives the same text.\n"
            "--prompt is tokenized with the model's embedded tokenizer (SentencePiece or byte-level BPE)\n"
            "and starts with its BOS (<|endoftext|> for one that has none, such as Qwen's); --prompt-ids takes ids as they are (models without a tokenizer). --print-ids prints\n"
            "the generated ids, comma-separated, instead of text. --precision bf16 runs the GEMMs on\n"
            "bf16 inputs with fp32 accumulation (oneDNN), as [run] precision = bf16 trains; default fp32.\n");
}

int lp_cmd_generate(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},  {"prompt", required_argument, 0, 'p'},
                                         {"prompt-ids", required_argument, 0, 'i'}, {"tokens", required_argument, 0, 'n'},
                                         {"temperature", required_argument, 0, 't'}, {"seed", required_argument, 0, 's'},
                                         {"print-ids", no_argument, 0, 'P'},   {"help", no_argument, 0, 'h'},
                                         {"precision", required_argument, 0, 'x'}, {0, 0, 0, 0}};
    const char *model = NULL, *prompt = NULL, *prompt_ids = NULL;
    int ntok = 64, print_ids = 0, o, prec = LP_FP32;
    double temp = 0.8;
    unsigned long long seed = 1;
    while ((o = getopt_long(argc, argv, "m:p:i:n:t:s:Ph", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'i': prompt_ids = optarg; break;
        case 'n': ntok = (int)lp_flag_int("--tokens", optarg, 1, 1 << 30); break;
        /* NaN, Inf and negative temperatures make softmax(logits / T) undefined */
        case 't': temp = lp_flag_double("--temperature", optarg, 0, 1e6); break;
        case 's': seed = (unsigned long long)lp_flag_int("--seed", optarg, 0, 9223372036854775807LL); break;
        case 'P': print_ids = 1; break;
        case 'x': prec = lp_precision_parse(optarg);
            if (prec < 0) lp_user_error("--precision: expected fp32 or bf16, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return 0;
        default: lp_user_error("generate: unknown option (see llamapro generate --help)");
        }
    }
    if (!model || (!prompt == !prompt_ids))
        lp_user_error("generate: --model and exactly one of --prompt / --prompt-ids are required (see --help)");
    lp_model m;
    lp_model_load(&m, model, MPI_COMM_WORLD);
    lp_model_set_precision(&m, prec, 1);
    lp_model_release_frozen(&m); /* bf16: the packed forms are all the decoder reads */
    const lp_config *c = &m.cfg;
    char err[256];
    lp_tokenizer *tok = NULL;
    if (m.tokenizer) {
        tok = lp_tokenizer_load_bytes(m.tokenizer, m.tokenizer_len, err, sizeof err);
        if (!tok) lp_user_error("%s: the embedded tokenizer cannot be loaded: %s", model, err);
    } else if (prompt) {
        lp_user_error("%s: the model has no embedded tokenizer: use --prompt-ids (and --print-ids)", model);
    }
    int cap = c->max_seq_len, n = 0;
    int *seq = lp_calloc((size_t)cap, sizeof(int), "allocating the sequence");
    if (prompt_ids) {
        n = lp_parse_int_list(prompt_ids, seq, cap);
        if (n <= 0) lp_user_error("--prompt-ids: expected comma-separated token ids (at most %d), got '%s'", cap, prompt_ids);
    } else {
        int *ids = NULL;
        size_t icap = 0;
        long k = lp_tokenizer_encode(tok, prompt, strlen(prompt), &ids, &icap, err, sizeof err);
        if (k < 0) lp_user_error("--prompt: %s", err);
        if (k + 1 > cap) lp_user_error("--prompt: %ld tokens, more than the model's max_seq_len %d", k + 1, cap);
        seq[n++] = lp_tokenizer_bos_id(tok) >= 0 ? lp_tokenizer_bos_id(tok) : 1;
        for (long i = 0; i < k; i++) seq[n++] = ids[i];
        free(ids);
    }
    for (int i = 0; i < n; i++)
        if (seq[i] < 0 || seq[i] >= c->vocab_size)
            lp_user_error("--prompt-ids: id %d is outside the model's vocabulary [0, %d)", seq[i], c->vocab_size);
    lp_decoder d;
    lp_decoder_init(&d, &m, cap);
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    const float *logits = NULL;
    for (int i = 0; i < n; i++) logits = lp_decoder_step(&d, &m, seq[i]);
    int eos = tok ? lp_tokenizer_eos_id(tok) : -1, start = n;
    size_t printed = 0;
    if (tok && !print_ids) { /* print the prompt, then stream the continuation */
        char *text = lp_tokenizer_decode(tok, seq + 1, (size_t)n - 1, err, sizeof err);
        if (text) { fputs(text, stdout); printed = strlen(text); free(text); }
    }
    while (n < cap && n - start < ntok) {
        int next = lp_sample(logits, c->vocab_size, (float)temp, &rng);
        seq[n++] = next;
        if (next == eos) break;
        if (print_ids) {
            printf("%s%d", n - 1 > start ? "," : "", next);
        } else if (tok) {
            char *text = lp_tokenizer_decode(tok, seq + 1, (size_t)n - 1, err, sizeof err);
            if (text && strlen(text) > printed) { fputs(text + printed, stdout); printed = strlen(text); }
            free(text);
        } else {
            printf("%s%d", n - 1 > start ? "," : "", next);
        }
        fflush(stdout);
        if (n < cap) logits = lp_decoder_step(&d, &m, next);
    }
    printf("\n");
    lp_decoder_free(&d);
    lp_free(seq);
    if (tok) lp_tokenizer_free(tok);
    lp_model_free(&m);
    return 0;
}
