/* corpus_read.c - reading one split of a corpus file, per process (corpus.h). */
#include "llamapro/corpus.h"

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/h5util.h"

struct lp_corpus {
    hid_t file, tokens, offsets;
    uint64_t n_tokens, n_docs;
    int vocab_size, bos_id, eos_id;
    char checksum[64];
    char path[4096], split[64];
};

static uint64_t extent(hid_t d) {
    hid_t s = H5Dget_space(d);
    LP_CHECK_H5(s, "getting a corpus dataset's size");
    hsize_t n = 0;
    LP_CHECK_H5(H5Sget_simple_extent_dims(s, &n, NULL), "getting a corpus dataset's size");
    H5Sclose(s);
    return (uint64_t)n;
}

/* A split's dataset must be one-dimensional integers: anything else would be read as garbage. */
static void check_dataset(const lp_corpus *c, hid_t d, const char *name, H5T_class_t cls) {
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int ok = t >= 0 && s >= 0 && H5Tget_class(t) == cls && H5Sget_simple_extent_ndims(s) == 1;
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (!ok)
        lp_user_error("%s: dataset /splits/%s/%s is not a one-dimensional integer array (expected a corpus file)",
                      c->path, c->split, name);
}

lp_corpus *lp_corpus_open(const char *path, const char *split) {
    /* A missing or foreign file is the user's mistake: probe quietly, report in one line. */
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        FILE *probe = fopen(path, "rb");
        if (probe) fclose(probe);
        lp_user_error("%s: %s (expected a corpus file made by llamapro prepare)", path,
                      probe ? "not an HDF5 file" : "cannot open");
    }
    /* the shared attribute helpers read fixed-length and variable-length strings (h5py's default) */
    char fmt[64] = "";
    if (lp_h5_attr_read_str(f, "format", fmt, sizeof fmt) < 0 || strcmp(fmt, LP_CORPUS_FORMAT) != 0)
        lp_user_error("%s: format is '%s' (expected a corpus file, format \"%s\")", path, fmt, LP_CORPUS_FORMAT);
    lp_corpus *c = lp_calloc(1, sizeof *c, "allocating a corpus reader");
    c->file = f;
    snprintf(c->path, sizeof c->path, "%s", path);
    snprintf(c->split, sizeof c->split, "%s", split);
    int version = 0;
    if (lp_h5_attr_read_int(f, "format_version", &version) < 0 || version != LP_CORPUS_FORMAT_VERSION)
        lp_user_error("%s: corpus format_version %d (expected %d)", path, version, LP_CORPUS_FORMAT_VERSION);
    if (lp_h5_attr_read_int(f, "vocab_size", &c->vocab_size) < 0 || lp_h5_attr_read_int(f, "bos_id", &c->bos_id) < 0 ||
        lp_h5_attr_read_int(f, "eos_id", &c->eos_id) < 0)
        lp_user_error("%s: missing vocab_size/bos_id/eos_id attributes (expected a corpus file)", path);
    if (c->vocab_size < 1 || c->bos_id < 0 || c->bos_id >= c->vocab_size || c->eos_id < 0 || c->eos_id >= c->vocab_size)
        lp_user_error("%s: vocab_size %d, bos_id %d, eos_id %d (expected ids inside the vocabulary)", path,
                      c->vocab_size, c->bos_id, c->eos_id);
    if (lp_h5_attr_read_str(f, "tokenizer_checksum", c->checksum, sizeof c->checksum) < 0) c->checksum[0] = 0;
    char name[256];
    snprintf(name, sizeof name, "/splits/%s", split);
    if (H5Lexists(f, "/splits", H5P_DEFAULT) <= 0 || H5Lexists(f, name, H5P_DEFAULT) <= 0)
        lp_user_error("%s: no split '%s' (expected one of the groups under /splits, e.g. train, val)", path, split);
    snprintf(name, sizeof name, "/splits/%s/tokens", split);
    c->tokens = H5Dopen2(f, name, H5P_DEFAULT);
    snprintf(name, sizeof name, "/splits/%s/doc_offsets", split);
    c->offsets = H5Dopen2(f, name, H5P_DEFAULT);
    if (c->tokens < 0 || c->offsets < 0)
        lp_user_error("%s: split '%s' lacks tokens or doc_offsets (expected a corpus file)", path, split);
    check_dataset(c, c->tokens, "tokens", H5T_INTEGER);
    check_dataset(c, c->offsets, "doc_offsets", H5T_INTEGER);
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    c->n_tokens = extent(c->tokens);
    uint64_t n_off = extent(c->offsets);
    c->n_docs = n_off ? n_off - 1 : 0;
    return c;
}

void lp_corpus_close(lp_corpus *c) {
    if (!c) return;
    H5Dclose(c->tokens);
    H5Dclose(c->offsets);
    LP_CHECK_H5(H5Fclose(c->file), "closing a corpus file");
    lp_free(c);
}

uint64_t lp_corpus_n_tokens(const lp_corpus *c) { return c->n_tokens; }
uint64_t lp_corpus_n_docs(const lp_corpus *c) { return c->n_docs; }
int lp_corpus_vocab_size(const lp_corpus *c) { return c->vocab_size; }
int lp_corpus_bos_id(const lp_corpus *c) { return c->bos_id; }
int lp_corpus_eos_id(const lp_corpus *c) { return c->eos_id; }
const char *lp_corpus_tokenizer_checksum(const lp_corpus *c) { return c->checksum; }

/* A read that fails is a damaged file (a Fletcher32 checksum mismatch, a truncated file), the
 * user's problem to fix: one line naming the file and the dataset, never an internal error. */
static void read_range(const lp_corpus *c, hid_t d, const char *name, hid_t memtype, uint64_t start, size_t n,
                       void *out, const char *what) {
    if (n == 0) return;
    hid_t fs = H5Dget_space(d);
    LP_CHECK_H5(fs, what);
    hsize_t off = start, cnt = n;
    LP_CHECK_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &cnt, NULL), what);
    hid_t ms = H5Screate_simple(1, &cnt, NULL);
    LP_CHECK_H5(ms, what);
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (H5Dread(d, memtype, ms, fs, H5P_DEFAULT, out) < 0) {
        char e[256];
        lp_h5_last_error(e, sizeof e);
        lp_user_error("%s: cannot read dataset /splits/%s/%s at [%llu, %llu) (checksum mismatch or truncated: the file "
                      "is damaged; make it again with llamapro prepare): %s", c->path, c->split, name,
                      (unsigned long long)start, (unsigned long long)(start + n), e);
    }
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    H5Sclose(ms);
    H5Sclose(fs);
}

void lp_corpus_read(lp_corpus *c, uint64_t start, size_t n, int *out) {
    LP_ASSERT(start + n <= c->n_tokens, "reading a token range inside the split");
    read_range(c, c->tokens, "tokens", H5T_NATIVE_INT, start, n, out, "reading corpus tokens");
}

void lp_corpus_read_doc_offsets(lp_corpus *c, uint64_t first, size_t n, uint64_t *out) {
    LP_ASSERT(first + n <= c->n_docs + 1, "reading document offsets inside the split");
    read_range(c, c->offsets, "doc_offsets", H5T_NATIVE_UINT64, first, n, out, "reading document offsets");
}
