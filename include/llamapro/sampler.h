/* sampler.h - training batches from a corpus split, as a function of (seed, step) only.
 *
 * The split's token stream is cut into W = (n_tokens - 1) / seq_len windows of seq_len + 1 tokens;
 * window w is tokens [w*seq_len, w*seq_len + seq_len + 1) (neighbours share one token, so every
 * token is a target once). Epoch e visits all windows in a pseudo-random order perm_e, a bijection
 * of [0, W) keyed by (seed, e) (a Feistel network with cycle walking: no O(W) table, computable
 * per index). Global batch k is sequences [k*G, (k+1)*G) of the concatenated epoch streams, i.e.
 * sequence j of batch k is window perm_e(p mod W) with p = k*G + j, e = p / W.
 *
 * Nothing depends on ranks: a rank asks for any sub-range of a batch (its data-parallel share, or
 * a microbatch) and reads only those windows. Reading is per process (corpus.h), so only the ranks
 * that need tokens (first and last pipeline stage) open the sampler. The whole state is the
 * lp_sampler_state below; the caller stores it with the step in checkpoints.
 */
#ifndef LLAMAPRO_SAMPLER_H
#define LLAMAPRO_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct lp_sampler lp_sampler;

typedef struct {
    uint64_t seed;
    uint64_t seq_len;
    uint64_t global_batch; /* G: sequences per optimizer step, over all replicas */
    uint64_t n_windows;    /* W: recorded so that a resume on a different corpus is caught */
} lp_sampler_state;

/* Open split `split` of corpus `path` for windows of seq_len + 1 tokens and global batches of
 * global_batch sequences. A corpus too small for one window is a user error naming the file. */
lp_sampler *lp_sampler_open(const char *path, const char *split, int seq_len, int global_batch,
                            uint64_t seed);
void lp_sampler_close(lp_sampler *s);

/* Sequences [first_seq, first_seq + n_seq) of global batch `step` into tokens
 * (n_seq * (seq_len + 1) ints, row-major: inputs are a row's first seq_len tokens, targets its
 * last seq_len). first_seq + n_seq <= global_batch. */
void lp_sampler_fill(lp_sampler *s, uint64_t step, int first_seq, int n_seq, int *tokens);

/* Window index (into the split) of sequence j of global batch `step`; what fill reads. */
uint64_t lp_sampler_window(const lp_sampler *s, uint64_t step, int j);

/* The state to save; and a check on resume that a saved state matches this sampler (0), or -1
 * with the mismatch explained in err. */
void lp_sampler_get_state(const lp_sampler *s, lp_sampler_state *st);
int lp_sampler_check_state(const lp_sampler *s, const lp_sampler_state *st, char *err, size_t errlen);
uint64_t lp_sampler_n_windows(const lp_sampler *s);

/* A bijection of [0, n) keyed by `key` (exposed for tests): perm(i) for i < n. */
uint64_t lp_permute_index(uint64_t i, uint64_t n, uint64_t key);

#endif
