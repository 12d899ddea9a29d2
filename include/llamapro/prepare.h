/* prepare.h - tokenize input documents into a corpus file, in parallel (the `prepare` command).
 *
 * Every rank reads the input in the same batches of about 8 MB of records; a batch is cut into
 * contiguous, byte-balanced ranges, one per rank; each rank parses and tokenizes its range with
 * OpenMP threads; the ranks agree on offsets (MPI_Exscan) and append collectively. The result
 * does not depend on the number of ranks or threads: documents stay in input order, and a
 * document's split is a function of its text alone (split_of_text), so it also does not depend on
 * file order, and duplicates of a document always land in the same split.
 */
#ifndef LLAMAPRO_PREPARE_H
#define LLAMAPRO_PREPARE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "llamapro/docsource.h"
#include "llamapro/tokenizer.h"

typedef struct {
    const char *out;          /* final path; written as OUT.partial and renamed on success */
    const char *text_key;     /* JSONL field with the text */
    double val_fraction, test_fraction; /* test split only when test_fraction > 0 */
    const char *const *sources; /* names recorded in the file */
    int n_sources;
    const char *name;         /* the source's name (attribute source_name); NULL: --out's base name */
    size_t batch_bytes;       /* input bytes per batch (all ranks); 0 = default 8 MB */
    int quiet;                /* no progress lines */
} lp_prepare_opts;

/* Split of a document: 0 train, 1 val, 2 test. u = the top 53 bits of a 64-bit hash of the text
 * (FNV-1a then the splitmix64 finaliser) as a fraction in [0,1); val when u < val_fraction, test
 * when u < val_fraction + test_fraction, else train. */
int lp_split_of_text(const char *text, size_t len, double val_fraction, double test_fraction);

/* Run the whole pipeline over `src` on all ranks of comm (collective). User errors (bad
 * documents, empty input) end the program through lp_user_error with the first offending record
 * in input order. */
void lp_prepare_run(lp_docsrc *src, const lp_tokenizer *tok, const lp_prepare_opts *o, MPI_Comm comm);

#endif
