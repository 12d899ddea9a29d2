/* mixture.h - training batches drawn from several corpora by weight, as a function of
 * (seed, step) only.
 *
 * [data] train is either one corpus ("path[:split]": exactly the single-source sampler of
 * sampler.h) or a mixture, entries "name:path[:split]@weight" separated by commas, e.g.
 *   train = code:run/corpus-code.h5@0.7, general:run/corpus-general.h5@0.3
 * Weights are positive and normalised to sum to 1. [data] replay (same syntax) adds sources at
 * fixed shares of the whole run, e.g. replay = general:run/corpus-general.h5@0.05 trains 5% on
 * general text and 95% on [data] train (its own weights scaled to 0.95); a share of 0 is no replay.
 *
 * How a mixture assigns sequences (no state beyond the configuration):
 * - The run's sequences form one stream of positions p = step * G + i (G = global batch). Source
 *   s receives N_s(p) of the first p positions, by a binary split in fixed point: source 0 gets
 *   round(p * w_0), the rest the others; of those, source 1 gets round(rest * w_1 / (1 - w_0)), and
 *   so on. Every N_s is non-decreasing in p, their sum is exactly p, and |N_s(p) - p * w_s| < n/2,
 *   so each global batch realises the weights to within a sequence or two, and any run of batches
 *   to within a few sequences in total.
 * - Position p belongs to the source whose count grows from p to p + 1, and is that source's
 *   sequence number c = N_s(p); the source's own sampler (sampler.h, keyed by seed and source
 *   index) maps c to window perm_e(c mod W_s), e = c / W_s, so a source smaller than its share is
 *   repeated with a fresh permutation per epoch.
 * - Slot j of global batch k is position k * G + perm_k(j) (a seeded bijection of [0, G)), so
 *   which replica gets which source varies from step to step.
 * Nothing depends on ranks or threads: any rank computes any slot. Resume needs only the step;
 * the checkpoint records the mixture (names, weights, windows per source) to refuse a resume on a
 * different one.
 */
#ifndef LLAMAPRO_MIXTURE_H
#define LLAMAPRO_MIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "llamapro/check.h" /* LP_PATH_MAX */
#include "llamapro/sampler.h"

#define LP_MIX_MAX 16

typedef struct {
    char name[64];
    char path[LP_PATH_MAX];
    char split[16];
    double weight; /* as written (not normalised) */
} lp_mix_source;

/* Is `spec` (a [data] train value) a mixture (contains '@')? */
int lp_mix_is_mixture(const char *spec);

/* Parse a mixture spec into src[0..max). Returns the number of sources (>= 1), or -1 with the
 * problem in `why` (entry not name:path[:split]@weight, weight not a number >= 0, duplicate
 * name, more than max sources). The split defaults to "train". */
int lp_mix_parse(const char *spec, lp_mix_source *src, int max, char *why, size_t n);

/* The sources of a run's [data] train value `train` (with [data] train's split `split` for a single
 * corpus): a mixture's entries, or the single corpus as one source named "train" with weight 1;
 * then [data] replay's (`replay`, may be "") sources at their shares (train's weights scaled to the
 * rest). User error naming the key when malformed. Returns the count. Takes the values, not the
 * run config, so that data stays below io (the layering test). */
int lp_mix_sources(const char *train, const char *split, const char *replay, lp_mix_source *src, int max);

typedef struct lp_mixture lp_mixture;

/* Open the sources of lp_mix_sources(train, split, replay) for windows of T + 1 tokens and global
 * batches of G sequences, with the run's seed. One corpus: the plain sampler, bitwise as before mixtures existed. User error
 * naming the file when a source is too small for one window. */
lp_mixture *lp_mixture_open(const char *train, const char *split, const char *replay, uint64_t seed, int T, int G);
void lp_mixture_close(lp_mixture *x);

/* Sequences [first_seq, first_seq + n_seq) of global batch `step` into tokens, as
 * lp_sampler_fill. */
void lp_mixture_fill(lp_mixture *x, uint64_t step, int first_seq, int n_seq, int *tokens);

/* Which source slot j of global batch `step` comes from; *seq gets its sequence number within
 * that source (its cursor), when seq is non-NULL. */
int lp_mixture_source_of(const lp_mixture *x, uint64_t step, int j, uint64_t *seq);

int lp_mixture_n_sources(const lp_mixture *x);
const char *lp_mixture_name(const lp_mixture *x, int s);
/* Sequences source s has given in the first `steps` global batches, and the epochs of it that
 * makes (sequences / windows). */
uint64_t lp_mixture_sequences(const lp_mixture *x, int s, uint64_t steps);
double lp_mixture_epochs(const lp_mixture *x, int s, uint64_t steps);

/* For metrics.jsonl step lines after `steps` steps: ', "sources": {"NAME": {"weight": w,
 * "tokens": t, "epochs": e}, ...}' for a mixture, "" for one corpus. */
void lp_mixture_metrics_json(const lp_mixture *x, uint64_t steps, char *buf, size_t n);

/* State to save in a checkpoint: the sampler state (seed, seq_len, G, total windows) and, for a
 * mixture, a description of every source (name, normalised weight in fixed point, windows) in
 * desc ("" for one corpus). check: 0 when a saved state matches this mixture, else -1 with the
 * difference in err. */
void lp_mixture_get_state(const lp_mixture *x, lp_sampler_state *st, char *desc, size_t n);
int lp_mixture_check_state(const lp_mixture *x, const lp_sampler_state *st, const char *desc, char *err,
                           size_t errlen);

#endif
