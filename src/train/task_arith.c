/* task_arith.c - arithmetic exact-match accuracy (see evaluate.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/decode.h"
#include "llamapro/evaluate.h"
#include "llamapro/tokenizer.h"

/* Greedy answer of one problem; 1 when it equals `expected`. */
static int score_one(const lp_model *m, lp_decoder *d, const lp_tokenizer *tok, const char *prompt,
                     const char *expected, int *ids, int cap) {
    char err[256];
    int *enc = NULL;
    size_t ecap = 0;
    long k = lp_tokenizer_encode(tok, prompt, strlen(prompt), &enc, &ecap, err, sizeof err);
    if (k < 0 || k + 1 >= cap) { free(enc); return 0; }
    int n = 0;
    ids[n++] = lp_tokenizer_bos_id(tok) >= 0 ? lp_tokenizer_bos_id(tok) : 1;
    for (long i = 0; i < k; i++) ids[n++] = enc[i];
    free(enc);
    d->pos = 0; /* reuse the caches: positions are overwritten from 0 */
    const float *logits = NULL;
    for (int i = 0; i < n; i++) logits = lp_decoder_step(d, m, ids[i]);
    /* documents are concatenated with BOS in front of each, so a model ends an answer by starting
     * the next problem: BOS as well as EOS ends the answer */
    int start = n, budget = (int)strlen(expected) + 4, eos = lp_tokenizer_eos_id(tok), bos = ids[0];
    while (n < cap && n - start < budget) {
        int next = lp_sample(logits, m->cfg.vocab_size, 0.0f, NULL);
        if (next == eos || next == bos) break;
        ids[n++] = next;
        char *piece = lp_tokenizer_decode(tok, &next, 1, err, sizeof err); /* "\n" whatever the kind */
        int newline = piece && strchr(piece, '\n');
        free(piece);
        if (newline) break;
        if (n < cap) logits = lp_decoder_step(d, m, next);
    }
    char *text = lp_tokenizer_decode(tok, ids + start, (size_t)(n - start), err, sizeof err);
    if (!text) return 0;
    /* the answer is the number the continuation starts with: [-]digits */
    char *s = text, *e;
    while (*s == ' ') s++;
    e = s + (*s == '-');
    while (*e >= '0' && *e <= '9') e++;
    int ok = (size_t)(e - s) == strlen(expected) && !strncmp(s, expected, (size_t)(e - s));
    free(text);
    return ok;
}

double lp_eval_arithmetic(const lp_model *m, const char *path, const char *split, long max_docs, long *n,
                          MPI_Comm comm) {
    int rank, size;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &rank), "scoring arithmetic");
    LP_CHECK_MPI(MPI_Comm_size(comm, &size), "scoring arithmetic");
    if (!m->tokenizer) lp_user_error("--task arithmetic needs a model with an embedded tokenizer");
    char err[256];
    lp_tokenizer *tok = lp_tokenizer_load_bytes(m->tokenizer, m->tokenizer_len, err, sizeof err);
    if (!tok) lp_user_error("the model's embedded tokenizer cannot be loaded: %s", err);
    lp_corpus *c = lp_corpus_open(path, split);
    uint64_t docs = lp_corpus_n_docs(c);
    if (max_docs > 0 && (uint64_t)max_docs < docs) docs = (uint64_t)max_docs;
    int cap = m->cfg.max_seq_len;
    lp_decoder d;
    lp_decoder_init(&d, m, cap);
    int *ids = lp_calloc((size_t)cap, sizeof(int), "allocating the answer buffer");
    long stats[2] = {0, 0}; /* correct, scored */
    for (uint64_t doc = (uint64_t)rank; doc < docs; doc += (uint64_t)size) {
        uint64_t off[2];
        lp_corpus_read_doc_offsets(c, doc, 2, off);
        size_t len = (size_t)(off[1] - off[0]);
        int *toks = lp_calloc(len + 1, sizeof(int), "reading a problem");
        lp_corpus_read(c, off[0], len, toks);
        int skip = len && toks[0] == lp_corpus_bos_id(c);
        char *text = lp_tokenizer_decode(tok, toks + skip, len - (size_t)skip, err, sizeof err);
        lp_free(toks);
        char *a = text ? strstr(text, " A: ") : NULL;
        if (!text || !a || strncmp(text, "Q: ", 3))
            lp_user_error("%s:%s: document %llu is not an arithmetic problem (\"Q: ... A: ...\"); was it made by "
                          "`prepare --synthetic arithmetic`?", path, split, (unsigned long long)doc);
        a[3] = 0; /* prompt ends with "A:" */
        char expected[64];
        snprintf(expected, sizeof expected, "%s", a + 4);
        expected[strcspn(expected, "\n")] = 0;
        stats[0] += score_one(m, &d, tok, text, expected, ids, cap);
        stats[1]++;
        free(text);
    }
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, stats, 2, MPI_LONG, MPI_SUM, comm), "reducing arithmetic scores");
    lp_free(ids);
    lp_decoder_free(&d);
    lp_corpus_close(c);
    lp_tokenizer_free(tok);
    *n = stats[1];
    return stats[1] ? (double)stats[0] / (double)stats[1] : 0.0;
}
