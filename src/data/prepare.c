/* prepare.c - the parallel tokenization pipeline (prepare.h). */
#include "llamapro/prepare.h"

#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"

#define LP_PREPARE_BATCH_BYTES (8u << 20)

int lp_split_of_text(const char *text, size_t len, double val_fraction, double test_fraction) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV-1a's low bits mix poorly; the splitmix64 finaliser spreads them over the top bits. */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
    h ^= h >> 31;
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    if (u < val_fraction) return 1;
    if (u < val_fraction + test_fraction) return 2;
    return 0;
}

/* A user error every rank detected identically: rank 0 reports it; the others wait to be taken
 * down by its MPI_Abort, so the message appears once. */
static void fail_all(MPI_Comm comm, const char *msg) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) lp_user_error("%s", msg);
    MPI_Barrier(comm);
    lp_exit(LP_EXIT_USAGE);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Rank r's contiguous, byte-balanced range [lo, hi) of the batch's records: record i goes to rank
 * floor(size * offset_i / batch_bytes). Returns whether record `probe` lies in the range. */
static int range_of(const lp_batch *b, int size, int r, size_t *lo, size_t *hi, size_t probe) {
    *lo = *hi = 0;
    for (size_t i = 0; i < b->n; i++) {
        int owner = (int)((double)size * (double)b->recs[i].off / (double)(b->len ? b->len : 1));
        if (owner >= size) owner = size - 1;
        if (owner < r) *lo = i + 1;
        if (owner <= r) *hi = i + 1;
    }
    if (*hi < *lo) *hi = *lo;
    return probe >= *lo && probe < *hi;
}

typedef struct { /* this rank's share of one split in the current batch */
    int *tok;
    uint64_t n_tok, cap_tok;
    uint64_t *ends;
    uint64_t n_docs, cap_docs;
} split_buf;

static void push_doc(split_buf *s, const int *ids, uint64_t n) {
    if (s->n_tok + n > s->cap_tok) {
        uint64_t cap = s->cap_tok ? s->cap_tok : 1 << 16;
        while (cap < s->n_tok + n) cap *= 2;
        s->tok = realloc(s->tok, cap * sizeof *s->tok);
        LP_CHECK_SYS(s->tok != NULL, "growing the token buffer");
        s->cap_tok = cap;
    }
    if (s->n_docs == s->cap_docs) {
        s->cap_docs = s->cap_docs ? 2 * s->cap_docs : 1024;
        s->ends = realloc(s->ends, s->cap_docs * sizeof *s->ends);
        LP_CHECK_SYS(s->ends != NULL, "growing the document offsets");
    }
    memcpy(s->tok + s->n_tok, ids, n * sizeof *ids);
    s->n_tok += n;
    s->ends[s->n_docs++] = s->n_tok;
}

void lp_prepare_run(lp_docsrc *src, const lp_tokenizer *tok, const lp_prepare_opts *o, MPI_Comm comm) {
    int rank, size;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &rank), "getting the rank");
    LP_CHECK_MPI(MPI_Comm_size(comm, &size), "getting the number of ranks");
    const char *names[3] = {"train", "val", "test"};
    int n_splits = o->test_fraction > 0 ? 3 : 2;
    size_t batch_bytes = o->batch_bytes ? o->batch_bytes : LP_PREPARE_BATCH_BYTES;
    const int bos = lp_tokenizer_bos_id(tok);

    char partial[4200], rule[512], checksum[26];
    snprintf(partial, sizeof partial, "%s.partial", o->out);
    lp_partial_register(partial);
    snprintf(rule, sizeof rule,
             "u = top 53 bits of splitmix64-finalised FNV-1a-64(document text) / 2^53; "
             "val if u < %.9g, test if u < %.9g, else train; documents in input order",
             o->val_fraction, o->val_fraction + o->test_fraction);
    lp_tokenizer_checksum(tok, checksum);
    lp_corpus_meta meta = {lp_tokenizer_vocab_size(tok), bos, lp_tokenizer_eos_id(tok), checksum,
                           o->sources, o->n_sources, rule};
    lp_corpus_writer *w = lp_corpus_writer_create(partial, comm, &meta, names, n_splits);

    lp_batch b = {0};
    split_buf sb[3] = {{0}};
    int **docs = NULL;
    long *ndoc = NULL;
    signed char *status = NULL; /* per record: split 0..2, -1 empty text, -2 bad record */
    size_t rec_cap = 0;
    uint64_t rec_base = 0, tokens_all = 0;
    double t0 = now(), last = t0;
    char err[4400];
    int n_in = o->n_sources > 0 ? o->n_sources : 1; /* provenance: documents per input file */
    uint64_t *per_file = lp_calloc((size_t)n_in, sizeof *per_file, "counting documents per input file");

    for (;;) {
        long n = lp_docsrc_next(src, &b, batch_bytes, err, sizeof err);
        if (n < 0) fail_all(comm, err);
        if (n == 0) break;
        size_t lo, hi;
        range_of(&b, size, rank, &lo, &hi, 0);
        if (b.n > rec_cap) {
            rec_cap = b.n;
            docs = realloc(docs, rec_cap * sizeof *docs);
            ndoc = realloc(ndoc, rec_cap * sizeof *ndoc);
            status = realloc(status, rec_cap);
            LP_CHECK_SYS(docs && ndoc && status, "allocating per-document results");
        }
        int enc_failed = 0;
#pragma omp parallel
        {
            char terr[256];
#pragma omp for schedule(dynamic, 1)
            for (size_t i = lo; i < hi; i++) {
                const char *text;
                size_t len;
                char *owned, rerr[8];
                docs[i] = NULL;
                ndoc[i] = 0;
                if (lp_record_text(src, &b, i, o->text_key, &text, &len, &owned, rerr, sizeof rerr) < 0) {
                    status[i] = -2;
                    continue;
                }
                if (len == 0) {
                    status[i] = -1; /* nothing to learn from: skipped */
                    free(owned);
                    continue;
                }
                status[i] = (signed char)lp_split_of_text(text, len, o->val_fraction, o->test_fraction);
                size_t cap = 0;
                int *ids = NULL;
                long k = lp_tokenizer_encode(tok, text, len, &ids, &cap, terr, sizeof terr);
                free(owned);
                if (k < 0) {
#pragma omp atomic write
                    enc_failed = 1;
                    free(ids);
                    continue;
                }
                /* BOS first: shift the ids right by one. */
                int *d = malloc(((size_t)k + 1) * sizeof *d);
                if (d) {
                    d[0] = bos;
                    memcpy(d + 1, ids, (size_t)k * sizeof *ids);
                }
                free(ids);
                docs[i] = d;
                ndoc[i] = d ? k + 1 : -1;
            }
        }
        if (enc_failed) lp_fatal_at(__FILE__, __LINE__, "tokenizing documents", "the tokenizer failed");
        /* The first bad record in input order is reported, whichever rank holds it. */
        uint64_t first_bad = UINT64_MAX, global_bad;
        for (size_t i = lo; i < hi; i++)
            if (status[i] == -2) { first_bad = rec_base + i; break; }
        LP_CHECK_MPI(MPI_Allreduce(&first_bad, &global_bad, 1, MPI_UINT64_T, MPI_MIN, comm),
                     "agreeing on the first bad document");
        if (global_bad != UINT64_MAX) {
            /* The owner explains it; rank 0 reports it, since rank 0 removes the partial file. */
            size_t i = (size_t)(global_bad - rec_base);
            int owner = 0;
            for (int r = 0; r < size; r++) {
                size_t rlo, rhi;
                if (range_of(&b, size, r, &rlo, &rhi, i)) owner = r;
            }
            if (owner == rank) {
                const char *text;
                size_t len;
                char *owned;
                lp_record_text(src, &b, i, o->text_key, &text, &len, &owned, err, sizeof err);
            }
            LP_CHECK_MPI(MPI_Bcast(err, sizeof err, MPI_CHAR, owner, comm), "sharing an error message");
            fail_all(comm, err);
        }
        for (size_t i = lo; i < hi; i++) {
            if (status[i] < 0) continue;
            per_file[b.recs[i].file > 0 && b.recs[i].file < n_in ? b.recs[i].file : 0]++;
            LP_CHECK_SYS(docs[i] != NULL, "allocating a document's tokens");
            push_doc(&sb[status[i]], docs[i], (uint64_t)ndoc[i]);
            free(docs[i]);
        }
        for (int s = 0; s < n_splits; s++) {
            tokens_all -= lp_corpus_writer_tokens(w, s);
            lp_corpus_writer_append(w, s, sb[s].tok, sb[s].n_tok, sb[s].ends, sb[s].n_docs);
            tokens_all += lp_corpus_writer_tokens(w, s);
            sb[s].n_tok = sb[s].n_docs = 0;
        }
        rec_base += b.n;
        double t = now();
        if (!o->quiet && t - last >= 5.0) {
            last = t;
            double p = lp_docsrc_progress(src), el = t - t0;
            double eta = p > 0 ? el * (1 - p) / p : 0;
            lp_info("prepare: %" PRIu64 " documents, %" PRIu64 " tokens, %.0f tokens/s (%.0f per rank), "
                    "%.0f%% of the input, ETA %.0f s", rec_base, tokens_all, tokens_all / el,
                    tokens_all / el / size, 100 * p, eta);
        }
    }
    uint64_t total_docs = 0;
    for (int s = 0; s < n_splits; s++) total_docs += lp_corpus_writer_docs(w, s);
    if (total_docs == 0) fail_all(comm, "no documents with text in the input (expected non-empty texts)");

    char summary[512];
    int len = 0;
    for (int s = 0; s < n_splits; s++)
        len += snprintf(summary + len, sizeof summary - (size_t)len, "%s%s %" PRIu64 " docs %" PRIu64 " tokens",
                        s ? ", " : "", names[s], lp_corpus_writer_docs(w, s), lp_corpus_writer_tokens(w, s));
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, per_file, n_in, MPI_UINT64_T, MPI_SUM, comm), "counting documents per file");
    char base[256];
    const char *slash = strrchr(o->out, '/');
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : o->out);
    if (strlen(base) > 3 && !strcmp(base + strlen(base) - 3, ".h5")) base[strlen(base) - 3] = 0;
    lp_corpus_writer_provenance(w, o->name ? o->name : base, per_file, n_in);
    lp_free(per_file);
    lp_corpus_writer_close(w);
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for all ranks to close the corpus");
    if (rank == 0) LP_CHECK_SYS(rename(partial, o->out) == 0, "renaming the finished corpus into place");
    lp_partial_unregister(partial);
    double el = now() - t0;
    if (!o->quiet)
        lp_info("prepare: wrote %s: %s; %.1f s, %.0f tokens/s on %d ranks", o->out, summary, el,
                tokens_all / (el > 0 ? el : 1), size);
    for (int s = 0; s < 3; s++) { free(sb[s].tok); free(sb[s].ends); }
    free(docs); free(ndoc); free(status);
    lp_batch_free(&b);
}
