/* safetensors_write.c - writing one safetensors file (see hf_export.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/test_hook.h"
#include "llamapro/hf_export.h"

void lp_st_write(const char *path, const lp_st_out *t, int n) {
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", t[i].dtype);
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t[i].ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t[i].bytes)));
        off += t[i].bytes;
    }
    char *json = cJSON_PrintUnformatted(h);
    LP_ASSERT(json != NULL, "printing a safetensors header");
    size_t len = strlen(json), padded = (len + 7) / 8 * 8; /* the buffer starts 8-byte aligned */
    FILE *f = fopen(path, "wb");
    LP_CHECK_SYS(f != NULL, "creating a safetensors file");
    unsigned char hdr[8];
    for (int b = 0; b < 8; b++) hdr[b] = (unsigned char)((uint64_t)padded >> (8 * b));
    LP_CHECK_SYS(fwrite(hdr, 1, 8, f) == 8 && fwrite(json, 1, len, f) == len, "writing a safetensors header");
    for (size_t p = len; p < padded; p++) LP_CHECK_SYS(fputc(' ', f) != EOF, "writing a safetensors header");
    lp_test_hook_output_created();
    for (int i = 0; i < n; i++)
        LP_CHECK_SYS(fwrite(t[i].data, 1, t[i].bytes, f) == t[i].bytes, "writing safetensors data");
    LP_CHECK_SYS(fclose(f) == 0, "closing a safetensors file");
    cJSON_free(json);
    cJSON_Delete(h);
}
