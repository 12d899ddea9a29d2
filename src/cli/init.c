/* init.c - `llamapro init --config RUN.ini --out MODEL.h5 [--tokenizer FILE]`: a randomly
 * initialised model of the [model] shape, for pretraining and benchmarks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/h5util.h"
#include "llamapro/import.h"
#include "llamapro/model_file.h"
#include "llamapro/run_config.h"
#include "llamapro/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro init --config RUN.ini --out MODEL.h5 [--tokenizer tokenizer.model] [section.key=value ...]\n\n"
            "Writes a model of the shape in [model] (dim, hidden_dim, n_layers, n_heads, n_kv_heads,\n"
            "vocab_size, max_seq_len, norm_eps, rope_theta, tie_embeddings) with Llama's initialisation:\n"
            "matrices normal(0, 0.02), wo and w2 scaled by 1/sqrt(2 n_layers), norm weights 1; seeded by\n"
            "[run] seed. With --tokenizer the SentencePiece model is embedded, and its vocabulary size\n"
            "must equal vocab_size.\n" LP_HELP_STOP);
}

int lp_cmd_init(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},
                                         {"tokenizer", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *out = NULL, *tok = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "c:o:t:h", opts, NULL)) != -1) {
        if (o == 'c') config = optarg;
        else if (o == 'o') out = optarg;
        else if (o == 't') tok = optarg;
        else if (o == 'h') { usage(stdout); return 0; }
        else lp_user_error("init: unknown option (see llamapro init --help)");
    }
    if (!config || !out) lp_user_error("init: --config RUN.ini and --out MODEL.h5 are required (see llamapro init --help)");
    lp_run_config rc;
    lp_run_config_read(&rc, config, argv + optind, argc - optind);
    lp_run_config_shape(&rc, config);
    char err[256];
    lp_check_output_path(out);
    lp_model m;
    lp_model_alloc(&m, &rc.shape);
    if (tok) {
        lp_import_tokenizer(&m, tok);
        lp_tokenizer *t = lp_tokenizer_load_bytes(m.tokenizer, m.tokenizer_len, err, sizeof err);
        if (!t) lp_user_error("%s: not a SentencePiece model: %s", tok, err);
        int v = lp_tokenizer_vocab_size(t);
        lp_tokenizer_free(t);
        if (v != rc.shape.vocab_size)
            lp_user_error("%s: the tokenizer has %d pieces but [model] vocab_size is %d", tok, v, rc.shape.vocab_size);
    }
    lp_model_init_random(&m, rc.seed);
    lp_model_save(&m, out, MPI_COMM_WORLD);
    lp_info("init: wrote %s (%zu parameters, %d layers, seed %llu)", out, lp_model_numel(&m, 0), m.cfg.n_layers, rc.seed);
    lp_model_free(&m);
    lp_run_config_free(&rc);
    return 0;
}
