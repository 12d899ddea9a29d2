/* prepare.c - `llamapro prepare`: flags, tokenizer loading, then the pipeline (prepare.h). */
#include <errno.h>
#include <getopt.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/docsource.h"
#include "llamapro/prepare.h"
#include "llamapro/test_hook.h"
#include "llamapro/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: llamapro prepare --tokenizer MODEL.h5|tokenizer.model|tokenizer.json --out CORPUS.h5\n"
        "                        [--val-fraction F] [--test-fraction F] [--text-key K] FILES...\n"
        "       llamapro prepare --synthetic arithmetic --docs N [--seed S]\n"
        "                        --tokenizer MODEL.h5|tokenizer.model|tokenizer.json --out CORPUS.h5\n\n"
        "Tokenize documents into an HDF5 corpus file (/splits/{train,val[,test]}/{tokens,doc_offsets}).\n"
        "Runs on any number of MPI ranks (mpirun -n P) with OpenMP threads in each; the output does\n"
        "not depend on P or the thread count.\n\n"
        "inputs (plain, gzip-compressed (zlib) or NAME.zst (zstd), read streaming):\n"
        "  *.jsonl, *.ndjson[.gz|.zst]  one JSON object per line, the text under \"text\" (or --text-key)\n"
        "  any other file           one document: the whole file\n"
        "Text must be UTF-8. Every document starts with the tokenizer's BOS (for a tokenizer that adds\n"
        "none, such as Qwen's, its <|endoftext|>); documents with empty text are skipped.\n"
        "A document goes to val/test by a hash of its text (fractions below), so the split depends on\n"
        "neither the rank count nor the file order; within a split documents keep the input order.\n\n"
        "options:\n"
        "  --tokenizer FILE     a model file with an embedded /tokenizer, a SentencePiece tokenizer.model,\n"
        "                       or a Hugging Face tokenizer.json (byte-level BPE; the tokenizer_config.json\n"
        "                       beside it, when present, names BOS and EOS)\n"
        "  --out FILE           the corpus file (written as FILE.partial, renamed when complete)\n"
        "  --val-fraction F     expected fraction of documents in val (default 0.05)\n"
        "  --test-fraction F    expected fraction in a held-out test split (default 0: no test split;\n"
        "                       0.05 with --synthetic)\n"
        "  --text-key K         JSONL field holding the text (default \"text\")\n"
        "  --synthetic arithmetic  generate documents instead of reading files: one problem each,\n"
        "                       exactly \"Q: <a><op><b>=? A: <result>\" with op one of + - * (ASCII '*'\n"
        "                       for multiplication), a and b of 1-4 digits (uniform digit count, then\n"
        "                       uniform value, no leading zeros), result possibly negative, e.g.\n"
        "                       \"Q: 37+58=? A: 95\", \"Q: 7-1204=? A: -1197\", \"Q: 12*305=? A: 3660\"\n"
        "  --docs N             number of synthetic documents\n"
        "  --seed S             seed of the synthetic generator (default 1); same seed, same corpus\n"
        "  --name NAME          what the corpus is (e.g. code), recorded with each input file and its\n"
        "                       document count (attributes source_name, sources, source_docs);\n"
        "                       default: --out's base name\n"
        "  --quiet              no progress lines on stderr\n"
        "  --help               this text\n" LP_HELP_STOP);
}

static double parse_fraction(const char *flag, const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= 0 && v < 1))
        lp_user_error("%s '%s': expected a number in [0, 1)", flag, s);
    return v;
}

static unsigned long long parse_count(const char *flag, const char *s) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-') lp_user_error("%s '%s': expected a non-negative integer", flag, s);
    return v;
}

/* The tokenizer from a model file's /tokenizer dataset (uint8) or from a tokenizer file. */
static lp_tokenizer *load_tokenizer(const char *path) {
    char err[512];
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* probing: a missing or non-HDF5 file is not an error here */
    htri_t is_h5 = H5Fis_hdf5(path);
    lp_tokenizer *t = NULL;
    if (is_h5 > 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) lp_user_error("%s: cannot open the HDF5 file (expected a model file)", path);
        if (H5Lexists(f, "/tokenizer", H5P_DEFAULT) <= 0)
            lp_user_error("%s: no /tokenizer dataset (expected a model file with an embedded tokenizer, "
                          "or pass a tokenizer.model or tokenizer.json)", path);
        hid_t d = H5Dopen2(f, "/tokenizer", H5P_DEFAULT);
        hid_t s = d >= 0 ? H5Dget_space(d) : -1;
        hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
        if (n <= 0) lp_user_error("%s: /tokenizer is empty or unreadable (expected the tokenizer bytes)", path);
        unsigned char *buf = lp_calloc((size_t)n, 1, "reading the embedded tokenizer");
        if (H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            lp_user_error("%s: cannot read /tokenizer (expected uint8 tokenizer bytes)", path);
        H5Sclose(s); H5Dclose(d); H5Fclose(f);
        t = lp_tokenizer_load_bytes(buf, (size_t)n, err, sizeof err);
        lp_free(buf);
        if (!t) lp_user_error("%s: /tokenizer: %s", path, err);
    } else {
        t = lp_tokenizer_load_file(path, err, sizeof err);
        if (!t) lp_user_error("%s (expected a SentencePiece tokenizer.model, a tokenizer.json or a model .h5)", err);
    }
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    if (lp_tokenizer_bos_id(t) < 0) lp_user_error("%s: the tokenizer has no BOS and no <|endoftext|> token (expected one to start documents)", path);
    return t;
}

int lp_cmd_prepare(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {
        {"tokenizer", required_argument, 0, 't'}, {"out", required_argument, 0, 'o'},
        {"val-fraction", required_argument, 0, 'v'}, {"test-fraction", required_argument, 0, 'T'},
        {"text-key", required_argument, 0, 'k'}, {"synthetic", required_argument, 0, 's'},
        {"docs", required_argument, 0, 'n'}, {"seed", required_argument, 0, 'S'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {"name", required_argument, 0, 'N'},
        {0, 0, 0, 0}};
    const char *tokpath = NULL, *out = NULL, *text_key = "text", *synthetic = NULL, *name = NULL;
    double val = 0.05, test = -1;
    unsigned long long n_docs = 0, seed = 1;
    int have_docs = 0, quiet = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': tokpath = optarg; break;
        case 'o': out = optarg; break;
        case 'v': val = parse_fraction("--val-fraction", optarg); break;
        case 'T': test = parse_fraction("--test-fraction", optarg); break;
        case 'k': text_key = optarg; break;
        case 's': synthetic = optarg; break;
        case 'n': n_docs = parse_count("--docs", optarg); have_docs = 1; break;
        case 'S': seed = parse_count("--seed", optarg); break;
        case 'q': quiet = 1; break;
        case 'N': name = optarg; break;
        case 'h': if (lp_world_rank() == 0) usage(stdout); return 0;
        default:
            lp_user_error("prepare: unknown or incomplete option '%s' (see llamapro prepare --help)",
                          argv[optind - 1]);
        }
    }
    if (!tokpath) lp_user_error("prepare: --tokenizer is required (a model .h5, a tokenizer.model or a tokenizer.json)");
    if (!out) lp_user_error("prepare: --out is required (the corpus .h5 to write)");
    if (test < 0) test = synthetic ? 0.05 : 0;
    if (val + test >= 1) lp_user_error("prepare: --val-fraction + --test-fraction = %g (expected < 1)", val + test);
    int n_files = argc - optind;
    char **files = argv + optind;
    lp_docsrc *src;
    const char *synth_name[1];
    if (synthetic) {
        if (n_files) lp_user_error("prepare: --synthetic takes no input files (got '%s')", files[0]);
        if (!have_docs || n_docs == 0) lp_user_error("prepare: --synthetic needs --docs N (N > 0)");
        src = lp_docsrc_open_synthetic(synthetic, n_docs, seed);
        if (!src) lp_user_error("prepare: --synthetic '%s' (expected: arithmetic)", synthetic);
        static char name[128];
        snprintf(name, sizeof name, "synthetic:%s docs=%llu seed=%llu", synthetic, n_docs, seed);
        synth_name[0] = name;
    } else {
        if (have_docs) lp_user_error("prepare: --docs only goes with --synthetic");
        if (n_files == 0) lp_user_error("prepare: no input files (expected JSONL or text files after the options)");
        src = lp_docsrc_open_files(files, n_files);
    }
    lp_tokenizer *tok = load_tokenizer(tokpath);

    /* A bad output path is the user's mistake, not an HDF5 failure: try it first. */
    char partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", out);
    if (lp_world_rank() == 0) {
        FILE *f = fopen(partial, "wb");
        if (!f) lp_user_error("%s: cannot create (%s)", partial, strerror(errno));
        fclose(f);
        lp_partial_register(partial);
    }
    LP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD), "waiting for the output check");

    lp_prepare_opts o = {.out = out, .text_key = text_key, .val_fraction = val, .test_fraction = test,
                         .sources = synthetic ? synth_name : (const char *const *)files,
                         .n_sources = synthetic ? 1 : n_files, .quiet = quiet, .name = name};
    o.batch_bytes = lp_test_hook_prepare_batch_bytes(0); /* 0: the default */
    lp_prepare_run(src, tok, &o, MPI_COMM_WORLD);
    lp_docsrc_close(src);
    lp_tokenizer_free(tok);
    return 0;
}
