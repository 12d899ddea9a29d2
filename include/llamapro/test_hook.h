/* test_hook.h - TEST-ONLY hooks: the only places where llamapro changes its behaviour for the test
 * suite. Each is driven by one LLAMAPRO_TEST_* / LP_* environment variable that no user or job
 * sets; with the variable unset every hook is a no-op (or returns the default), so production
 * runs never take a test path. Keep them here, in one file, and nowhere else. */
#ifndef LLAMAPRO_TEST_HOOK_H
#define LLAMAPRO_TEST_HOOK_H
#include <stddef.h>

/* Inside a checkpoint write (called after the data is written and before the file is closed, by
 * every rank): LLAMAPRO_TEST_SLOW_CKPT=SECONDS[@STEP] sleeps SECONDS (of step STEP only, when
 * given), so tests can signal or kill ranks while a checkpoint is half-written. `partial` is the
 * file being written, named in the info line. */
void lp_test_hook_ckpt_write(const char *partial, long step);

/* The byte budget of one `prepare` batch: LP_PREPARE_BATCH_BYTES when set (tests cut the data
 * into many small batches, so batch, rank and chunk boundaries fall inside documents), else
 * `dflt`. */
size_t lp_test_hook_prepare_batch_bytes(size_t dflt);

/* Right after a writer created its partial output (HDF5 model, checkpoint or corpus file, a
 * safetensors shard): LLAMAPRO_TEST_STALL_OUTPUT=SECONDS sleeps that long (a signal ends the
 * sleep), so tests can send a stop signal or fill the disk while the partial output exists. */
void lp_test_hook_output_created(void);

#endif
