/* safetensors.h - reading the safetensors format (Hugging Face weights).
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [r, c], "data_offsets": [begin, end]}, "__metadata__": {...}}
 * then the byte buffer the offsets point into. lp_st_open validates the whole header up front
 * (sizes, offsets in range and not overlapping, byte counts matching shape x dtype), so a bad file
 * is refused before anything is converted or written.
 */
#ifndef LLAMAPRO_SAFETENSORS_H
#define LLAMAPRO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define LP_ST_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[16];   /* "F32", "BF16", ... */
    int ndim;
    int64_t shape[LP_ST_MAX_DIMS];
    size_t begin, end; /* byte range within the data buffer */
} lp_st_tensor;

typedef struct {
    char path[4096];
    const uint8_t *map; /* the whole file, mmap'd read-only */
    size_t size;
    const uint8_t *data; /* start of the byte buffer */
    size_t data_size;
    lp_st_tensor *tensors;
    int n_tensors;
} lp_st_file;

/* Map and validate `path`. Any defect (short file, header length beyond the end, malformed JSON,
 * unknown dtype string, bad or overlapping offsets, size not matching shape x dtype) is a user
 * error naming the file and, where there is one, the tensor. */
void lp_st_open(lp_st_file *f, const char *path);
void lp_st_close(lp_st_file *f);

/* Tensor by name, or NULL. */
const lp_st_tensor *lp_st_find(const lp_st_file *f, const char *name);
size_t lp_st_numel(const lp_st_tensor *t);

/* Convert tensor t to float32 into out[lp_st_numel(t)]. F32, F16 and BF16 are supported; any other
 * dtype is a user error naming the file, the tensor and the dtype. */
void lp_st_read_f32(const lp_st_file *f, const lp_st_tensor *t, float *out);

/* User error unless t's dtype is one lp_st_read_f32 converts (F32, F16, BF16). */
void lp_st_check_float(const lp_st_file *f, const lp_st_tensor *t);

/* Half-precision conversions (exposed for export and tests). */
float lp_f16_to_f32(uint16_t h);
float lp_bf16_to_f32(uint16_t h);

#endif
