/* corpus.h - corpus files (DESIGN.md section 4): tokens of documents, split into train/val(/test).
 *
 *   /                    attributes: format = "llamapro-corpus", format_version = 1, vocab_size,
 *                        bos_id, eos_id, tokenizer_checksum ("fnv1a64:<16 hex>" of the
 *                        tokenizer.model bytes, see tokenizer.h), sources (input names), split_rule,
 *                        source_name, source_docs (documents per input file)
 *   /splits/NAME/tokens       uint16 when vocab_size <= 65535, else uint32; every document starts
 *                             with BOS, no EOS is added
 *   /splits/NAME/doc_offsets  uint64 [n_docs + 1]: document d is tokens[doc_offsets[d], doc_offsets[d+1])
 * Datasets are chunked with the Fletcher32 checksum filter. Within a split, documents are in input
 * order (files in command-line order, lines in file order), whatever the number of ranks.
 *
 * Writing is collective over a communicator (parallel HDF5); reading is per process and needs no
 * other rank, so any subset of ranks (e.g. one pipeline stage) can read what it needs.
 */
#ifndef LLAMAPRO_CORPUS_H
#define LLAMAPRO_CORPUS_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define LP_CORPUS_FORMAT "llamapro-corpus"
#define LP_CORPUS_FORMAT_VERSION 1

typedef struct {
    int vocab_size, bos_id, eos_id;
    const char *tokenizer_checksum;
    const char *const *sources;
    int n_sources;
    const char *split_rule; /* how documents were assigned to splits, for humans */
} lp_corpus_meta;

/* ---- writer (collective) ---- */
typedef struct lp_corpus_writer lp_corpus_writer;

/* Create `path` (truncating) on all ranks of comm with the splits named in `splits` (n_splits of
 * them, e.g. "train", "val") empty. Collective. HDF5 failures are internal errors. */
lp_corpus_writer *lp_corpus_writer_create(const char *path, MPI_Comm comm, const lp_corpus_meta *meta,
                                          const char *const *splits, int n_splits);
/* Append this rank's documents to split `split`. Collective: every rank calls it, in the same
 * order, possibly with nothing; rank r's documents go after those of ranks < r. `tokens` holds
 * n_tokens ids, `doc_ends[i]` the end of local document i within `tokens` (so doc_ends[n_docs-1]
 * == n_tokens). */
void lp_corpus_writer_append(lp_corpus_writer *w, int split, const int *tokens, uint64_t n_tokens,
                             const uint64_t *doc_ends, uint64_t n_docs);
/* Totals written so far to a split (the same on every rank). */
uint64_t lp_corpus_writer_tokens(const lp_corpus_writer *w, int split);
uint64_t lp_corpus_writer_docs(const lp_corpus_writer *w, int split);
/* Provenance written when the input is read: root attributes source_name (what the corpus is,
 * e.g. "code") and source_docs (uint64 [n]: documents from each input file, in the order of the
 * `sources` attribute). Collective. */
void lp_corpus_writer_provenance(lp_corpus_writer *w, const char *name, const uint64_t *docs, int n);
/* Close the file. Collective. */
void lp_corpus_writer_close(lp_corpus_writer *w);

/* ---- reader (one process; no communication) ---- */
typedef struct lp_corpus lp_corpus;

/* Open split `split` ("train", "val", ...) of corpus file `path`. A missing file, a file that is
 * not a corpus, or a missing split is a user error (exit 1) naming the file and split. */
lp_corpus *lp_corpus_open(const char *path, const char *split);
void lp_corpus_close(lp_corpus *c);
uint64_t lp_corpus_n_tokens(const lp_corpus *c);
uint64_t lp_corpus_n_docs(const lp_corpus *c);
int lp_corpus_vocab_size(const lp_corpus *c);
int lp_corpus_bos_id(const lp_corpus *c);
int lp_corpus_eos_id(const lp_corpus *c);
/* "fnv1a64:..." of the tokenizer that made the corpus (compare with lp_tokenizer_checksum). */
const char *lp_corpus_tokenizer_checksum(const lp_corpus *c);
/* Read tokens [start, start+n) of the split into out (n ints). The range must lie inside the
 * split (internal error otherwise). */
void lp_corpus_read(lp_corpus *c, uint64_t start, size_t n, int *out);
/* Read doc_offsets[first .. first+n) into out. A failed read (checksum mismatch, truncated file)
 * of either function is a user error naming the file and the dataset. */
void lp_corpus_read_doc_offsets(lp_corpus *c, uint64_t first, size_t n, uint64_t *out);

/* Before any compute: every token id of split `split` of `path` must lie in [0, vocab) (ids
 * stored in a signed or wider type by another tool are checked after conversion to int), and
 * doc_offsets must rise from 0 to the token count. The tokens are read in 64K-token chunks spread
 * over the ranks of comm; a bad id is a user error on every rank naming the file, the split, the
 * first bad position and its value. Collective over comm. */
void lp_corpus_check_ids(const char *path, const char *split, int vocab, MPI_Comm comm);

#endif
