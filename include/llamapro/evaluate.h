/* evaluate.h - mean loss and perplexity of a model on a corpus split, split over ranks.
 *
 * The first max_tokens tokens of the split are cut into non-overlapping windows of seq_len + 1
 * tokens (neighbours share one token, so every token but the first is predicted once); window w
 * goes to rank w mod P. Sums are reduced in double, so any rank count gives the same mean to
 * rounding.
 */
#ifndef LLAMAPRO_EVALUATE_H
#define LLAMAPRO_EVALUATE_H

#include <mpi.h>
#include <stdint.h>

#include "llamapro/forward.h"

/* Evaluate m on split `split` of corpus `path`. acts must hold at least one sequence of seq_len
 * tokens; max_tokens 0 means the whole split. Collective over comm. */
lp_eval_result lp_evaluate(const lp_model *m, lp_acts *acts, const char *path, const char *split,
                           int seq_len, uint64_t max_tokens, MPI_Comm comm);

/* User error (exit 1) unless corpus `path` fits model m: a vocabulary no larger than the model's
 * (embeddings may be padded past the tokenizer), and the same
 * tokenizer checksum when both record one. `what` names the config field in the message. */
void lp_check_corpus_fits_model(const lp_model *m, const char *path, const char *split, const char *what);

/* Exact-match accuracy of greedy answers on a synthetic arithmetic split (`prepare --synthetic
 * arithmetic`): each document "Q: 37+58=? A: 95" is decoded with the model's tokenizer, the model
 * is prompted with BOS + "Q: 37+58=? A:" and greedily continues until BOS or EOS (the next
 * document), a newline, or a few tokens past the answer's length; the answer counts when the
 * number the continuation starts with is exactly "95". Documents are spread over ranks (document d to rank d mod P); at most max_docs
 * (0 = all). *n gets the number scored. Collective over comm. */
double lp_eval_arithmetic(const lp_model *m, const char *path, const char *split, long max_docs, long *n,
                          MPI_Comm comm);

#endif
