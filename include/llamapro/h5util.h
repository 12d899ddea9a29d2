/* h5util.h - small helpers over parallel HDF5 shared by model, checkpoint and corpus files.
 *
 * Files are opened through the MPI-IO driver on a communicator; every call below that creates or
 * opens something is collective over it and all ranks must pass identical arguments. Datasets are
 * chunked with the Fletcher32 checksum filter, so a flipped byte in a file is reported as a
 * checksum error on read instead of silently loading garbage. HDF5's own error printing is turned
 * off (lp_h5_quiet); failures go through LP_CHECK_H5 or, for a bad file, lp_user_error.
 */
#ifndef LLAMAPRO_H5UTIL_H
#define LLAMAPRO_H5UTIL_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

/* Silence HDF5's automatic error stack printing (idempotent). */
void lp_h5_quiet(void);

/* User error naming `path` unless its directory exists and is writable: lets a command refuse a
 * bad --out before doing any work. */
void lp_check_output_path(const char *path);

/* Create (truncate) `path` for writing on `comm`. Collective. A missing or unwritable directory is
 * a user error naming the path. */
hid_t lp_h5_create(const char *path, MPI_Comm comm);
/* Open `path` read-only on `comm`. Collective. A missing file or one that is not HDF5 is a user
 * error naming the path. */
hid_t lp_h5_open(const char *path, MPI_Comm comm);
/* Close a file opened by the two above (collective). */
void lp_h5_close(hid_t file);

/* A dataset-transfer property list for collective MPI-IO, as filtered (checksummed) datasets
 * require for writing. Close with H5Pclose. */
hid_t lp_h5_dxpl_collective(void);

/* Create dataset `name` under `loc` (float32, chunked, Fletcher32) of shape dims[ndim] and write
 * `data` into it. Collective: every rank calls it; ranks passing data == NULL contribute nothing,
 * so exactly one rank (or several with identical data) should pass the buffer. `dxpl` must be
 * collective (lp_h5_dxpl_collective). */
void lp_h5_write_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *data,
                     hid_t dxpl);
/* The same in bfloat16: float32 rounded to nearest (ties to even) and stored as H5T_STD_U16LE with
 * a string attribute dtype = "bfloat16" (HDF5 has no bf16 type; the bits are bf16's, so h5py users
 * shift them left by 16 and view as float32). Halves the file. NaN stays NaN. */
void lp_h5_write_bf16(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *data,
                      hid_t dxpl);
/* bfloat16 bits of x, round to nearest even (the conversion lp_h5_write_bf16 uses). */
unsigned short lp_f32_to_bf16(float x);
/* The same for a 1-D uint8 byte array (tokenizer blobs, config text). */
void lp_h5_write_u8(hid_t loc, const char *name, size_t n, const void *data, hid_t dxpl);

/* H5Dopen2 for reading: an external link (a checkpoint's frozen tensor) opens its target file on
 * this process alone (POSIX driver), never collectively, so ranks may read different tensors of a
 * file opened with MPI-IO. Returns a negative id when `name` is not a dataset or cannot be opened. */
hid_t lp_h5_dopen(hid_t loc, const char *name);
/* Read float32 dataset `name` under `loc` whose shape must be dims[ndim]; a bfloat16 dataset (see
 * lp_h5_write_bf16) is converted to float32 exactly. `file` is the file's path
 * for messages. Missing dataset, wrong shape or a failed read (checksum) are user errors naming
 * the file and the dataset path. Every rank may call it independently. */
void lp_h5_read_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims, float *data,
                    const char *file);
/* Read a 1-D uint8 dataset of any length into a new lp_calloc'd buffer; length in *n. */
void *lp_h5_read_u8(hid_t loc, const char *name, size_t *n, const char *file);

/* Attributes on an object (file, group or dataset). Writes are collective metadata operations. */
void lp_h5_attr_write_int(hid_t obj, const char *name, int v);
void lp_h5_attr_write_ints(hid_t obj, const char *name, const int *v, size_t n);
void lp_h5_attr_write_u64s(hid_t obj, const char *name, const uint64_t *v, size_t n);
void lp_h5_attr_write_f32(hid_t obj, const char *name, float v);
void lp_h5_attr_write_f64(hid_t obj, const char *name, double v);
void lp_h5_attr_write_str(hid_t obj, const char *name, const char *s);
/* Reads return 0, or -1 when the attribute does not exist (nothing else is reported). A string is
 * copied into buf (truncated to n-1 characters); lp_h5_attr_read_strdup returns a lp_calloc'd copy
 * or NULL. Integer and float reads convert from whatever numeric type is stored. */
int lp_h5_attr_read_int(hid_t obj, const char *name, int *v);
int lp_h5_attr_read_f32(hid_t obj, const char *name, float *v);
int lp_h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t n);
char *lp_h5_attr_read_strdup(hid_t obj, const char *name);

/* Does link `path` (relative to loc, may contain '/') exist? */
int lp_h5_exists(hid_t loc, const char *path);
/* Open group `path` under loc, creating it (and its parents) when absent. Collective when it
 * creates. Close with H5Gclose. */
hid_t lp_h5_group(hid_t loc, const char *path);

/* Describe the most recent HDF5 error into buf (e.g. "data error detected by Fletcher32 checksum"). */
void lp_h5_last_error(char *buf, size_t n);

#endif
