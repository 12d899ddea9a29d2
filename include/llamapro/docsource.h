/* docsource.h - the input documents of `prepare`, read in batches of raw records.
 *
 * A source is either a list of files or a synthetic generator. Files are read through instream.h:
 * plain and gzip-compressed files alike with zlib's gzopen, NAME.zst with libzstd (streaming):
 *   - NAME.jsonl, NAME.ndjson (optionally .gz or .zst): one JSON object per line, the document text under a
 *     string field ("text" by default); blank lines are skipped;
 *   - any other file: one document, the whole file.
 * Reading only splits the input into records (cheap, done identically on every rank); parsing a
 * record into its text (lp_record_text) is the expensive-ish part done by the rank that owns it.
 * Batches end on record boundaries once they hold about `max_bytes`, so the batch boundaries, like
 * everything else about the records, depend on the input alone.
 */
#ifndef LLAMAPRO_DOCSOURCE_H
#define LLAMAPRO_DOCSOURCE_H

#include <stddef.h>
#include <stdint.h>

enum { LP_REC_JSONL, LP_REC_TEXT };

typedef struct {
    size_t off, len; /* bytes [off, off+len) of the batch buffer */
    int file;        /* index of the input file; -1 for synthetic records */
    int kind;        /* LP_REC_JSONL or LP_REC_TEXT */
    uint64_t line;   /* 1-based line number of a JSONL record (0 for whole-file records) */
} lp_record;

typedef struct {
    char *data;      /* all records of the batch, back to back */
    size_t len, cap;
    lp_record *recs;
    size_t n, ncap;
} lp_batch;

typedef struct lp_docsrc lp_docsrc;

/* A source over `n` files (paths kept by reference; they must outlive the source). */
lp_docsrc *lp_docsrc_open_files(char *const *paths, int n);
/* A synthetic source of `n_docs` generated documents. `kind` is "arithmetic": one problem per
 * document, "Q: A<op>B=? A: R" with op one of + - * and operands of 1-4 digits, e.g.
 * "Q: 37+58=? A: 95", "Q: 7-1204=? A: -1197", "Q: 12*305=? A: 3660". Deterministic in `seed`.
 * Returns NULL for an unknown kind. */
lp_docsrc *lp_docsrc_open_synthetic(const char *kind, uint64_t n_docs, uint64_t seed);
void lp_docsrc_close(lp_docsrc *s);

/* Replace the contents of `b` with the next records, about max_bytes of them (at least one).
 * Returns the number of records, 0 at the end of the input, or -1 with a one-line message naming
 * the file in err (unreadable file, a file without documents). */
long lp_docsrc_next(lp_docsrc *s, lp_batch *b, size_t max_bytes, char *err, size_t errlen);
void lp_batch_free(lp_batch *b);

/* Progress through the input, in [0, 1] (compressed bytes for files, documents for synthetic). */
double lp_docsrc_progress(const lp_docsrc *s);

/* The text of record i: for JSONL the string field `text_key` (malloc'd into *owned, which the
 * caller frees; *text points into it), for whole-file and synthetic records the record bytes
 * themselves (*owned = NULL). Checks that the text is valid UTF-8. Returns 0, or -1 with a
 * one-line message "FILE:LINE: what is wrong (what was expected)" in err. Thread-safe. */
int lp_record_text(const lp_docsrc *s, const lp_batch *b, size_t i, const char *text_key,
                   const char **text, size_t *len, char **owned, char *err, size_t errlen);

/* Byte offset of the first invalid UTF-8 sequence in s[0..n) (overlong forms, surrogates and
 * code points above U+10FFFF are invalid), or -1 when all of it is valid. */
long lp_utf8_invalid_at(const char *s, size_t n);

#endif
