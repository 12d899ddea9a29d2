/* model_file.h - the llamapro model file (DESIGN.md section 4), parallel HDF5.
 *
 *   /            attributes format = "llamapro-model", format_version = 1
 *   /config      attributes dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 *                max_seq_len, norm_eps, rope_theta, tie_embeddings
 *   /tokenizer   uint8 bytes of the tokenizer.model (optional)
 *   /weights/tok_embeddings, /weights/layers/NNN/<attn_norm|wq|...|w3>, /weights/norm,
 *   /weights/output (absent when tied); each layer group has attributes origin and trainable
 *   /expansion   attributes parsed from m->expansion_json (method, blocks, position, source,
 *                new_layers, ...) plus the whole text as `json` (optional)
 *
 * Weights are float32 (or bfloat16, see lp_model_save_as), chunked, Fletcher32-checksummed. Checkpoints are model files with more
 * groups, so the tensor-to-path mapping and the writers are exported for them.
 */
#ifndef LLAMAPRO_MODEL_FILE_H
#define LLAMAPRO_MODEL_FILE_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>

#include "llamapro/model.h"

#define LP_MODEL_FORMAT "llamapro-model"
#define LP_MODEL_FORMAT_VERSION 1

/* Path of tensor t below a weights group: "tok_embeddings", "layers/003/wq", "norm", "output". */
void lp_model_tensor_h5path(const lp_tensor *t, char *buf, size_t n);

/* Write m to `path`. Collective over comm; every rank passes a model of the same config (a tensor
 * whose data is NULL on a rank is written by the lowest rank that holds it). The file is written
 * as PATH.partial (removed if the program dies) and renamed into place once complete, so a
 * reader never sees a half-written model. A layer's `trainable` attribute is the record
 * layers[l].marked_trainable (the blocks `expand` added), not the flags of a training run. */
void lp_model_save(const lp_model *m, const char *path, MPI_Comm comm);

/* Storage type of weight datasets. LP_BF16 stores bfloat16 (h5util.h lp_h5_write_bf16), half the
 * bytes; lp_model_load converts it back to float32, so only shipping and export use it. */
typedef enum { LP_DTYPE_F32, LP_DTYPE_BF16 } lp_dtype;
/* lp_model_save with weights stored as `dtype`. */
void lp_model_save_as(const lp_model *m, const char *path, MPI_Comm comm, lp_dtype dtype);

/* Read the model file `path` into m (allocated here with lp_model_alloc; free with
 * lp_model_free). Collective over comm; every rank reads everything. Restores origins, the
 * tokenizer and the expansion record; trainable flags go to layers[l].marked_trainable and no
 * gradient memory is allocated. A file that is not a model, of another format version, with a
 * missing dataset, a shape contradicting /config or a checksum failure is a user error naming the
 * file and what is wrong. */
void lp_model_load(lp_model *m, const char *path, MPI_Comm comm);
/* The same for a pipeline stage: reads everything but allocates and reads only what
 * lp_model_alloc_range(l0, l1, embed, head) holds. l0 = l1, embed = head = 0 reads the metadata
 * only (a skeleton for planning). Collective over comm. */
void lp_model_load_range(lp_model *m, const char *path, MPI_Comm comm, int l0, int l1, int embed, int head);

/* Pieces of save/load for checkpoint files, which add groups to a model file.
 * Write /config, /tokenizer, the layer groups' records and /expansion into an open file
 * (collective; rank 0 of comm writes the data). */
void lp_model_write_meta(const lp_model *m, hid_t file, MPI_Comm comm);
/* Write one dataset per tensor of m below group `g` at lp_model_tensor_h5path (e.g. the file's
 * /weights, or a checkpoint's /optimizer/m). data[i] is tensor i's buffer, or data == NULL for the
 * tensors' own weights. Each tensor is written by the lowest rank whose buffer is non-NULL;
 * tensors NULL on every rank are skipped. Collective. Returns the number written. */
int lp_model_write_tensors(const lp_model *m, hid_t g, float *const *data, MPI_Comm comm);
/* The same, storing `dtype`. */
int lp_model_write_tensors_as(const lp_model *m, hid_t g, float *const *data, MPI_Comm comm, lp_dtype dtype);
/* Tensor i's fp32 values: its data when in memory; for a released tensor (model.h: a frozen
 * matrix of a bf16 run) read from m->source, the file the model was loaded from, into buf
 * ([numel] floats) and returns buf; NULL when this rank does not hold it. Not collective. The
 * writers above use it when data == NULL, so a model or checkpoint saved from a bf16 run holds its
 * frozen tensors bitwise as in the source file. */
const float *lp_model_tensor_values(const lp_model *m, int i, float *buf);
/* Read the datasets written that way into data[i] (or the tensors' own storage when data is NULL),
 * skipping NULL buffers; shapes are checked against the tensor table (user error naming path). */
void lp_model_read_tensors(const lp_model *m, hid_t g, float *const *data, const char *path);
/* Read and check the /config group of an open file (user error naming path). */
void lp_model_read_config(hid_t file, lp_config *c, const char *path);

#endif
