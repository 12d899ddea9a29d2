/* hf_export.h - writing safetensors and Hugging Face LlamaForCausalLM directories.
 *
 * The directory holds model-0000k-of-0000n.safetensors shards (tensors in table order, a new shard
 * when the next tensor would pass the shard size), model.safetensors.index.json, config.json with
 * the LlamaForCausalLM fields (bos_token_id / eos_token_id from the embedded tokenizer, null
 * without one), tokenizer.model (the model's embedded bytes, when present) and a
 * README.md stating the block expansion. q_proj/k_proj rows are permuted back to transformers'
 * rotate_half layout (lp_hf_permute), so `llamapro import --from hf` of the export restores the
 * model bit for bit (f32).
 */
#ifndef LLAMAPRO_HF_EXPORT_H
#define LLAMAPRO_HF_EXPORT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "llamapro/model.h"
#include "llamapro/model_file.h"

typedef struct {
    const char *name;  /* "model.norm.weight" */
    const char *dtype; /* "F32" or "BF16" */
    int ndim;
    int64_t shape[2];
    const void *data;  /* little-endian bytes */
    size_t bytes;
} lp_st_out;

/* Write a safetensors file at `path`: 8-byte header length, the JSON header (tensors in the given
 * order, contiguous, plus "__metadata__": {"format": "pt"}) padded with spaces to a multiple of 8,
 * then the bytes. Written by the calling process alone; system errors are internal errors. */
void lp_st_write(const char *path, const lp_st_out *t, int n);

/* User error unless `dir` can be created: it must not exist and its parent must be writable. */
void lp_hf_export_check_dir(const char *dir);

/* Export m to `dir` as described above, tensors stored as `dtype`, shards of at most shard_bytes
 * (a larger tensor gets a shard of its own). Collective over comm: shard k is converted and
 * written by rank k mod size; rank 0 writes the JSON files. Everything goes to DIR.partial, which
 * is renamed to DIR once complete. */
void lp_hf_export(const lp_model *m, const char *dir, lp_dtype dtype, unsigned long long shard_bytes, MPI_Comm comm);

#endif
