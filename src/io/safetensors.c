/* safetensors.c - safetensors reader (see safetensors.h). */
#include "llamapro/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamapro/check.h"

/* Element sizes of every dtype the format defines; only the float ones can be converted, but all
 * are validated so that a file is judged as a whole. */
static int dtype_size(const char *d) {
    static const struct { const char *name; int size; } t[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
        {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (!strcmp(d, t[i].name)) return t[i].size;
    return 0;
}

size_t lp_st_numel(const lp_st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static int by_begin(const void *a, const void *b) {
    const lp_st_tensor *x = *(const lp_st_tensor *const *)a, *y = *(const lp_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Non-negative integer from a JSON number (exactly integral, below 2^53). */
static int json_uint(const cJSON *j, int64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (v < 0 || v > 9007199254740992.0 || v != (double)(int64_t)v) return -1;
    *out = (int64_t)v;
    return 0;
}

static void parse_entry(lp_st_file *f, const cJSON *e, lp_st_tensor *t) {
    const char *p = f->path, *n = e->string;
    if (!cJSON_IsObject(e)) lp_user_error("%s: header entry '%s' is not an object", p, n);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) lp_user_error("%s: tensor '%s' has no string 'dtype'", p, n);
    if (!dtype_size(dt->valuestring))
        lp_user_error("%s: tensor '%s' has unknown dtype '%.15s'", p, n, dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > LP_ST_MAX_DIMS)
        lp_user_error("%s: tensor '%s' has no valid 'shape' list", p, n);
    t->ndim = cJSON_GetArraySize(sh);
    for (int i = 0; i < t->ndim; i++)
        if (json_uint(cJSON_GetArrayItem(sh, i), &t->shape[i]) < 0 || t->shape[i] > (1ll << 40))
            lp_user_error("%s: tensor '%s' has a bad 'shape' entry", p, n);
    int64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || json_uint(cJSON_GetArrayItem(of, 0), &b) < 0 ||
        json_uint(cJSON_GetArrayItem(of, 1), &en) < 0)
        lp_user_error("%s: tensor '%s' has no valid 'data_offsets' [begin, end]", p, n);
    if (b > en || (uint64_t)en > f->data_size)
        lp_user_error("%s: tensor '%s' data_offsets [%lld, %lld] lie outside the %zu-byte data buffer",
                      p, n, (long long)b, (long long)en, f->data_size);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    /* each dimension is below 2^40, but their product (and the byte count) may still overflow */
    uint64_t numel = 1, want;
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[i], &numel))
            lp_user_error("%s: tensor '%s' has a shape whose element count overflows 64 bits", p, n);
    if (__builtin_mul_overflow(numel, (uint64_t)dtype_size(t->dtype), &want))
        lp_user_error("%s: tensor '%s' has a shape whose byte count overflows 64 bits", p, n);
    if (t->end - t->begin != want)
        lp_user_error("%s: tensor '%s' spans %zu bytes, but shape and dtype %s need %llu", p, n,
                      t->end - t->begin, t->dtype, (unsigned long long)want);
    t->name = strdup(n);
    LP_CHECK_SYS(t->name, "copying a tensor name");
}

void lp_st_open(lp_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) lp_user_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    LP_CHECK_SYS(fstat(fd, &st) == 0, "reading a safetensors file's size");
    if (!S_ISREG(st.st_mode)) lp_user_error("%s: not a regular file (expected a safetensors file)", path);
    f->size = (size_t)st.st_size;
    if (f->size < 8) lp_user_error("%s: %zu bytes is too short for a safetensors file", path, f->size);
    void *map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    LP_CHECK_SYS(map != MAP_FAILED, "mapping a safetensors file");
    close(fd);
    f->map = map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | f->map[i];
    if (n > f->size - 8)
        lp_user_error("%s: header length %llu goes beyond the end of the file (%zu bytes)", path,
                      (unsigned long long)n, f->size);
    f->data = f->map + 8 + n;
    f->data_size = f->size - 8 - (size_t)n;
    cJSON *root = cJSON_ParseWithLength((const char *)f->map + 8, (size_t)n);
    if (!root || !cJSON_IsObject(root)) lp_user_error("%s: the header is not a valid JSON object", path);
    int cnt = 0;
    for (cJSON *e = root->child; e; e = e->next) cnt += strcmp(e->string, "__metadata__") != 0;
    f->tensors = lp_calloc((size_t)cnt + 1, sizeof(lp_st_tensor), "safetensors tensor table");
    for (cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__")) {
            /* JSON allows a key twice and cJSON keeps both: which one would be "the" tensor? */
            if (lp_st_find(f, e->string)) lp_user_error("%s: tensor '%s' appears twice in the header", path, e->string);
            parse_entry(f, e, &f->tensors[f->n_tensors++]);
        }
    cJSON_Delete(root);
    /* Overlap check: sorted by begin, each tensor must end before the next begins. */
    lp_st_tensor **order = lp_calloc((size_t)cnt + 1, sizeof *order, "safetensors order");
    for (int i = 0; i < cnt; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)cnt, sizeof *order, by_begin);
    for (int i = 1; i < cnt; i++)
        if (order[i]->begin < order[i - 1]->end)
            lp_user_error("%s: tensors '%s' and '%s' overlap in the data buffer", path, order[i - 1]->name,
                          order[i]->name);
    lp_free(order);
}

void lp_st_close(lp_st_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    lp_free(f->tensors);
    if (f->map) munmap((void *)f->map, f->size);
    memset(f, 0, sizeof *f);
}

const lp_st_tensor *lp_st_find(const lp_st_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

float lp_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

float lp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp) {
        u = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man) { /* subnormal: renormalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    } else {
        u = sign;
    }
    float x;
    memcpy(&x, &u, 4);
    return x;
}

void lp_st_check_float(const lp_st_file *f, const lp_st_tensor *t) {
    if (strcmp(t->dtype, "F32") && strcmp(t->dtype, "F16") && strcmp(t->dtype, "BF16"))
        lp_user_error("%s: tensor '%s' has dtype %s; supported are F32, F16 and BF16", f->path, t->name, t->dtype);
}

void lp_st_read_f32(const lp_st_file *f, const lp_st_tensor *t, float *out) {
    lp_st_check_float(f, t);
    const uint8_t *src = f->data + t->begin;
    size_t n = lp_st_numel(t);
    /* Little-endian host assumed (x86/ARM HPC); memcpy because offsets need not be aligned. */
    if (!strcmp(t->dtype, "F32")) {
        memcpy(out, src, n * 4);
    } else if (!strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16")) {
        int bf = t->dtype[0] == 'B';
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = bf ? lp_bf16_to_f32(h) : lp_f16_to_f32(h);
        }
    }
}
