/* mixture_main.c - for tests/mpi/mixture.sh.
 *   mixture make OUT.h5 OFFSET N
 *       a corpus whose train split is N tokens, token i = OFFSET + i % 20000 (documents of 1000
 *       tokens), so that a window's tokens tell which corpus and which window it is;
 *   mixture layout SPEC PP DP G STEPS MICRO
 *       fetch global batches of [data] train = SPEC (T = 8) the way a PP x DP layout would (as
 *       sampler_layout_main.c): rank r is stage r / DP, replica r % DP; replica d takes sequences
 *       [d*G/DP, (d+1)*G/DP), MICRO per fill call. Writes rankR.txt lines
 *       "step slot source cursor tokens..." (source and cursor from lp_mixture_source_of). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout_walk.h"
#include "llamapro/corpus.h"
#include "llamapro/mixture.h"
#include "llamapro/run_config.h"

static int make(const char *out, int offset, int n) {
    const char *sources[] = {"mixture_main"}, *splits[] = {"train", "val"};
    lp_corpus_meta meta = {.vocab_size = 60000, .bos_id = 1, .eos_id = 2,
                           .tokenizer_checksum = "fnv1a64:0000000000000000", .sources = sources, .n_sources = 1,
                           .split_rule = "all train"};
    lp_corpus_writer *w = lp_corpus_writer_create(out, MPI_COMM_SELF, &meta, splits, 2);
    int *tok = malloc((size_t)n * sizeof *tok);
    uint64_t nd = ((uint64_t)n + 999) / 1000, *ends = malloc(nd * sizeof *ends);
    for (int i = 0; i < n; i++) tok[i] = offset + i % 20000;
    for (uint64_t d = 0; d < nd; d++) ends[d] = (d + 1) * 1000 < (uint64_t)n ? (d + 1) * 1000 : (uint64_t)n;
    lp_corpus_writer_append(w, 0, tok, (uint64_t)n, ends, nd);
    lp_corpus_writer_append(w, 1, tok, 0, ends, 0);
    lp_corpus_writer_close(w);
    free(tok);
    free(ends);
    return 0;
}

static void fill(void *x, uint64_t step, int first, int n, int *buf) { lp_mixture_fill(x, step, first, n, buf); }
static void tag(void *x, uint64_t step, int slot, FILE *f) {
    uint64_t c;
    int s = lp_mixture_source_of(x, step, slot, &c);
    fprintf(f, " %d %llu", s, (unsigned long long)c);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size, rc = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc == 5 && !strcmp(argv[1], "make")) {
        if (rank == 0) rc = make(argv[2], atoi(argv[3]), atoi(argv[4]));
        MPI_Finalize();
        return rc;
    }
    if (argc != 8 || strcmp(argv[1], "layout")) {
        fprintf(stderr, "usage: mixture make OUT.h5 OFFSET N | mixture layout SPEC PP DP G STEPS MICRO\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int pp = atoi(argv[3]), dp = atoi(argv[4]), G = atoi(argv[5]), steps = atoi(argv[6]), micro = atoi(argv[7]);
    const int T = 8;
    lp_run_config cfg;
    lp_run_config_defaults(&cfg);
    lp_run_config_override(&cfg, "run.seed=1234");
    char assign[4200];
    snprintf(assign, sizeof assign, "data.train=%s", argv[2]);
    lp_run_config_override(&cfg, assign);
    lp_mixture *x = lp_mixture_open(cfg.train_path, cfg.train_split, cfg.replay, cfg.seed, T, G);
    layout_walk(pp, dp, G, steps, micro, T, fill, tag, x);
    lp_mixture_close(x);
    lp_run_config_free(&cfg);
    MPI_Finalize();
    return 0;
}
