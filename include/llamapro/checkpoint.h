/* checkpoint.h - training checkpoints (DESIGN.md section 4), parallel HDF5.
 *
 * A checkpoint is a model file (format "llamapro-model", so eval, export and info read it as one)
 * with a root attribute checkpoint_version and two more groups:
 *   /optimizer/{m,v}/<tensor path>   AdamW moments of the trainable tensors; attribute step
 *   /train_state                     attributes step, tokens, written_dp, written_pp, written_ranks, written_tp,
 *                                    data_seed, data_seq_len, data_global_batch, data_n_windows
 *                                    (lp_sampler_state), data_mixture (a mixture's sources, when
 *                                    [data] train is one), frozen_source; datasets rng (4 x uint64)
 *                                    and config (the run config text, uint8)
 * Tensors are stored by global layer index, never by rank, so any pp x dp layout reads any
 * checkpoint. Every dataset carries the Fletcher32 filter; writes are collective.
 *
 * Frozen tensors never change during a run, so a checkpoint may store them as HDF5 external links
 * into the model file training started from (frozen_source) instead of copies: the checkpoint
 * then holds only what training changes. Readers follow the links transparently.
 *
 * Files live in a directory (<run.dir>/ckpt): step-N.h5 written as step-N.h5.partial, closed,
 * fsync'd and renamed; then `latest` (one line: "step-N.h5") is replaced by writing latest.tmp and
 * renaming it, so a crash at any moment leaves `latest` naming a complete checkpoint.
 */
#ifndef LLAMAPRO_CHECKPOINT_H
#define LLAMAPRO_CHECKPOINT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "llamapro/model.h"
#include "llamapro/optim.h"
#include "llamapro/rng.h"
#include "llamapro/sampler.h"

#define LP_CKPT_VERSION 1
#define LP_CKPT_PATH 1200 /* longest checkpoint path */

typedef struct {
    long step;               /* optimizer steps done */
    long tokens;             /* tokens trained on */
    lp_rng rng;              /* the run's RNG state (restored exactly) */
    lp_sampler_state data;   /* data cursor: with `step` it fixes the next batch */
    char data_mix[2048];     /* a mixture's sources (mixture.h), attribute data_mixture; "" = one corpus */
    int dp, pp, ranks;       /* layout that wrote it (information only: any layout resumes) */
    int tp;                  /* its tensor-parallel ranks per stage (written_tp; 1 when absent) */
    const char *config_text; /* run config text (save); lp_calloc'd copy on load, or NULL */
    /* Per model tensor (model order): CRC-32 + 1 of a frozen tensor's float32 values, 0 for a
     * trainable one; written as /train_state attribute frozen_crc32 when frozen tensors are linked
     * to the source model file, so a resume can tell that file changed. NULL: not recorded (on
     * load: a lp_calloc'd array the caller frees, or NULL). */
    uint64_t *frozen_crc;
} lp_train_state;

typedef struct {
    double seconds;          /* wall time of lp_ckpt_save (write, fsync, rename, latest, prune) */
    long long bytes;         /* size of the checkpoint file */
    int linked;              /* frozen tensors stored as external links */
} lp_ckpt_stats;

/* Write checkpoint `st->step` of model m and optimizer o into directory `dir` (created by the
 * caller) as dir/step-N.h5, then point dir/latest at it and delete older step-*.h5 beyond the
 * newest `keep_last` (<= 0 keeps all; never the one `latest` names). Frozen tensors become
 * external links into `frozen_source` when it is non-NULL (it must hold the same frozen weights:
 * the model file training started from), copies otherwise. Collective over comm; tensors whose
 * data is NULL on a rank are written by a rank that holds them. Before the file is closed it
 * calls the test-only lp_test_hook_ckpt_write (test_hook.h), a no-op outside the test suite. Stats into *stats when non-NULL. */
void lp_ckpt_save(const char *dir, const lp_model *m, const lp_adamw *o, const lp_train_state *st,
                  const char *frozen_source, int keep_last, MPI_Comm comm, lp_ckpt_stats *stats);

/* Path of the checkpoint dir/latest names into path (returns 1), or 0 when there is none. A
 * `latest` naming a missing file is a user error. Any rank may call it. */
int lp_ckpt_latest(const char *dir, char *path, size_t n);

/* Restore a checkpoint into a model of the same config (weights of every tensor with data on this
 * rank, through external links where used), the optimizer's moments and step (tensors of o), and
 * *st (config_text is a new lp_calloc'd copy: free it). Each rank reads what it holds, so any
 * layout may resume. Not a checkpoint, another checkpoint_version, a config differing from m's,
 * a missing dataset or a checksum failure: user error naming the file and dataset. Collective. */
void lp_ckpt_load(const char *path, lp_model *m, lp_adamw *o, lp_train_state *st, MPI_Comm comm);

/* Read only step, data cursor and writing layout of checkpoint `path` into *st (no tensors,
 * config_text NULL). Any rank, no communication; user error naming a missing attribute. */
void lp_ckpt_peek_state(const char *path, lp_train_state *st);

/* Is the HDF5 file at path a checkpoint (root attribute checkpoint_version)? Any rank; 0 when it
 * cannot be opened. */
int lp_ckpt_is_checkpoint(const char *path);

/* Delete stale step-*.h5.partial and latest.tmp files in dir (left by a killed job). Rank 0 only. */
void lp_ckpt_clean_partials(const char *dir);

#endif
