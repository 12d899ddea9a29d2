/* corpus_write.c - collective writer of corpus files with parallel HDF5 (corpus.h).
 *
 * Datasets grow by one collective H5Dset_extent + H5Dwrite per append, so memory stays bounded by
 * what one append holds. Fletcher32 is a filter, and parallel HDF5 writes filtered datasets only
 * collectively: every rank takes part in every write, with an empty selection if it has nothing.
 */
#include "llamapro/corpus.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/test_hook.h"
#include "llamapro/h5util.h"

#define LP_CORPUS_CHUNK 65536 /* tokens per chunk: small enough for cheap random window reads */
#define LP_OFFSETS_CHUNK 4096 /* doc_offsets per chunk: small corpora stay small */
#define LP_MAX_SPLITS 4

struct lp_corpus_writer {
    MPI_Comm comm;
    hid_t file, dxpl;
    hid_t tok_type; /* file type of tokens */
    int n_splits;
    hid_t tokens[LP_MAX_SPLITS], offsets[LP_MAX_SPLITS];
    uint64_t n_tok[LP_MAX_SPLITS], n_doc[LP_MAX_SPLITS];
};

static void attr_string(hid_t obj, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    LP_CHECK_H5(t, "making a string type");
    LP_CHECK_H5(H5Tset_size(t, strlen(value) + 1), "sizing a string attribute");
    LP_CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8), "setting a string attribute's character set");
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(a, "creating a corpus attribute");
    LP_CHECK_H5(H5Awrite(a, t, value), "writing a corpus attribute");
    H5Aclose(a); H5Sclose(sp); H5Tclose(t);
}

static void attr_int(hid_t obj, const char *name, int value) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(a, "creating a corpus attribute");
    LP_CHECK_H5(H5Awrite(a, H5T_NATIVE_INT, &value), "writing a corpus attribute");
    H5Aclose(a); H5Sclose(sp);
}

/* An array of strings as one fixed-length string array attribute (readable by h5py/h5dump). */
static void attr_strings(hid_t obj, const char *name, const char *const *v, int n) {
    size_t w = 1;
    for (int i = 0; i < n; i++) if (strlen(v[i]) + 1 > w) w = strlen(v[i]) + 1;
    char *buf = lp_calloc((size_t)(n ? n : 1), w, "packing the sources attribute");
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * w, v[i], strlen(v[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    LP_CHECK_H5(H5Tset_size(t, w), "sizing a string attribute");
    LP_CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8), "setting a string attribute's character set");
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(a, "creating the sources attribute");
    LP_CHECK_H5(H5Awrite(a, t, buf), "writing the sources attribute");
    H5Aclose(a); H5Sclose(sp); H5Tclose(t);
    lp_free(buf);
}

static hid_t make_dataset(hid_t group, const char *name, hid_t type, hsize_t size, hsize_t chunk) {
    hsize_t dims = size, maxdims = H5S_UNLIMITED;
    hid_t sp = H5Screate_simple(1, &dims, &maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    LP_CHECK_H5(H5Pset_chunk(dcpl, 1, &chunk), "setting the corpus chunk size");
    LP_CHECK_H5(H5Pset_fletcher32(dcpl), "enabling the Fletcher32 checksum");
    LP_CHECK_H5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "disabling fill values");
    hid_t d = H5Dcreate2(group, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    LP_CHECK_H5(d, "creating a corpus dataset");
    H5Pclose(dcpl); H5Sclose(sp);
    return d;
}

/* Collective write of this rank's n elements at [off, off+n) of a 1-D dataset grown to `size`. */
static void write_range(lp_corpus_writer *w, hid_t d, hid_t memtype, hsize_t size, hsize_t off,
                        hsize_t n, const void *buf) {
    LP_CHECK_H5(H5Dset_extent(d, &size), "growing a corpus dataset");
    hid_t fs = H5Dget_space(d);
    LP_CHECK_H5(fs, "getting a corpus dataset's space");
    hsize_t mdim = n ? n : 1;
    hid_t ms = H5Screate_simple(1, &mdim, NULL);
    if (n) {
        LP_CHECK_H5(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL), "selecting the rank's range");
    } else {
        LP_CHECK_H5(H5Sselect_none(fs), "selecting nothing");
        LP_CHECK_H5(H5Sselect_none(ms), "selecting nothing");
    }
    LP_CHECK_H5(H5Dwrite(d, memtype, ms, fs, w->dxpl, buf), "writing corpus data collectively");
    H5Sclose(ms); H5Sclose(fs);
}

void lp_corpus_writer_provenance(lp_corpus_writer *w, const char *name, const uint64_t *docs, int n) {
    attr_string(w->file, "source_name", name);
    hsize_t dim = (hsize_t)(n > 0 ? n : 0);
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    LP_CHECK_H5(sp, "making the source_docs dataspace");
    hid_t a = H5Acreate2(w->file, "source_docs", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(a, "creating the source_docs attribute");
    LP_CHECK_H5(H5Awrite(a, H5T_NATIVE_UINT64, docs), "writing the source_docs attribute");
    H5Aclose(a);
    H5Sclose(sp);
}

lp_corpus_writer *lp_corpus_writer_create(const char *path, MPI_Comm comm, const lp_corpus_meta *meta,
                                          const char *const *splits, int n_splits) {
    LP_ASSERT(n_splits >= 1 && n_splits <= LP_MAX_SPLITS, "checking the number of splits");
    lp_corpus_writer *w = lp_calloc(1, sizeof *w, "allocating the corpus writer");
    w->comm = comm;
    w->n_splits = n_splits;
    lp_h5_quiet(); /* failures are reported once, by LP_CHECK_H5 */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    LP_CHECK_H5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "selecting MPI-IO for the corpus file");
    /* 1.8 format or later: attributes over 64 KiB (a long sources list) go to dense storage. */
    LP_CHECK_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST), "setting the file format");
    w->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    LP_CHECK_H5(w->file, "creating the corpus file");
    H5Pclose(fapl);
    lp_test_hook_output_created();
    w->dxpl = H5Pcreate(H5P_DATASET_XFER);
    LP_CHECK_H5(H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE), "requesting collective writes");

    attr_string(w->file, "format", LP_CORPUS_FORMAT);
    attr_int(w->file, "format_version", LP_CORPUS_FORMAT_VERSION);
    attr_int(w->file, "vocab_size", meta->vocab_size);
    attr_int(w->file, "bos_id", meta->bos_id);
    attr_int(w->file, "eos_id", meta->eos_id);
    attr_string(w->file, "tokenizer_checksum", meta->tokenizer_checksum);
    attr_strings(w->file, "sources", meta->sources, meta->n_sources);
    attr_string(w->file, "split_rule", meta->split_rule ? meta->split_rule : "");

    w->tok_type = meta->vocab_size <= 65535 ? H5T_STD_U16LE : H5T_STD_U32LE;
    hid_t g = H5Gcreate2(w->file, "splits", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(g, "creating /splits");
    int rank;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &rank), "getting the rank");
    for (int s = 0; s < n_splits; s++) {
        hid_t sg = H5Gcreate2(g, splits[s], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        LP_CHECK_H5(sg, "creating a split group");
        w->tokens[s] = make_dataset(sg, "tokens", w->tok_type, 0, LP_CORPUS_CHUNK);
        w->offsets[s] = make_dataset(sg, "doc_offsets", H5T_STD_U64LE, 1, LP_OFFSETS_CHUNK);
        uint64_t zero = 0;
        write_range(w, w->offsets[s], H5T_NATIVE_UINT64, 1, 0, rank == 0 ? 1 : 0, &zero);
        H5Gclose(sg);
    }
    H5Gclose(g);
    return w;
}

void lp_corpus_writer_append(lp_corpus_writer *w, int split, const int *tokens, uint64_t n_tokens,
                             const uint64_t *doc_ends, uint64_t n_docs) {
    uint64_t mine[2] = {n_tokens, n_docs}, before[2] = {0, 0}, total[2];
    int rank;
    LP_CHECK_MPI(MPI_Comm_rank(w->comm, &rank), "getting the rank");
    LP_CHECK_MPI(MPI_Exscan(mine, before, 2, MPI_UINT64_T, MPI_SUM, w->comm), "agreeing on corpus offsets");
    if (rank == 0) before[0] = before[1] = 0; /* MPI_Exscan leaves rank 0's result undefined */
    LP_CHECK_MPI(MPI_Allreduce(mine, total, 2, MPI_UINT64_T, MPI_SUM, w->comm), "summing corpus sizes");
    if (total[0] == 0 && total[1] == 0) return;

    /* Tokens, converted to the file's type here: conversion inside a collective filtered write is
     * best avoided. */
    size_t esz = w->tok_type == H5T_STD_U16LE ? 2 : 4;
    void *buf = lp_calloc(n_tokens ? n_tokens : 1, esz, "converting tokens");
    if (esz == 2) for (uint64_t i = 0; i < n_tokens; i++) ((uint16_t *)buf)[i] = (uint16_t)tokens[i];
    else for (uint64_t i = 0; i < n_tokens; i++) ((uint32_t *)buf)[i] = (uint32_t)tokens[i];
    uint64_t tok0 = w->n_tok[split];
    write_range(w, w->tokens[split], esz == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32,
                tok0 + total[0], tok0 + before[0], n_tokens, buf);
    lp_free(buf);

    uint64_t *ends = lp_calloc(n_docs ? n_docs : 1, sizeof *ends, "computing document offsets");
    for (uint64_t i = 0; i < n_docs; i++) ends[i] = tok0 + before[0] + doc_ends[i];
    uint64_t doc0 = w->n_doc[split];
    write_range(w, w->offsets[split], H5T_NATIVE_UINT64, 1 + doc0 + total[1], 1 + doc0 + before[1],
                n_docs, ends);
    lp_free(ends);
    w->n_tok[split] += total[0];
    w->n_doc[split] += total[1];
}

uint64_t lp_corpus_writer_tokens(const lp_corpus_writer *w, int split) { return w->n_tok[split]; }
uint64_t lp_corpus_writer_docs(const lp_corpus_writer *w, int split) { return w->n_doc[split]; }

void lp_corpus_writer_close(lp_corpus_writer *w) {
    for (int s = 0; s < w->n_splits; s++) {
        LP_CHECK_H5(H5Dclose(w->tokens[s]), "closing a tokens dataset");
        LP_CHECK_H5(H5Dclose(w->offsets[s]), "closing a doc_offsets dataset");
    }
    H5Pclose(w->dxpl);
    LP_CHECK_H5(H5Fclose(w->file), "closing the corpus file");
    lp_free(w);
}
