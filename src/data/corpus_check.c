/* corpus_check.c - validating a corpus split before it reaches a model (corpus.h). */
#include <inttypes.h>
#include <stdio.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"

/* tokens per read: the writer's chunk (corpus_write.c), so each read decodes whole chunks; 256 KB of
 * int32, small beside a training run's memory (a bigger buffer shows in its peak resident size) */
#define LP_SCAN_CHUNK 65536u

/* First index i in [0, n) with v[i] outside [0, vocab), or n. */
static size_t first_bad(const int *v, size_t n, int vocab) {
    size_t bad = n;
    for (size_t i = 0; i < n; i++)
        if ((unsigned)v[i] >= (unsigned)vocab) { /* negative ids wrap to huge unsigned values */
            bad = i;
            break;
        }
    return bad;
}

void lp_corpus_check_ids(const char *path, const char *split, int vocab, MPI_Comm comm) {
    int rank, size;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &rank), "checking corpus ids");
    LP_CHECK_MPI(MPI_Comm_size(comm, &size), "checking corpus ids");
    lp_corpus *c = lp_corpus_open(path, split);
    uint64_t n = lp_corpus_n_tokens(c), docs = lp_corpus_n_docs(c);
    int *buf = lp_calloc(LP_SCAN_CHUNK, sizeof(int), "scanning corpus tokens"); /* also LP_SCAN_CHUNK / 2 offsets */
    /* chunk k goes to rank k mod P; each rank stops at its first bad token, and the minimum over
     * ranks is the first bad position of the whole split, whatever the rank count */
    uint64_t bad = UINT64_MAX;
    for (uint64_t k = (uint64_t)rank; k * LP_SCAN_CHUNK < n; k += (uint64_t)size) {
        uint64_t start = k * LP_SCAN_CHUNK;
        size_t len = (size_t)(n - start < LP_SCAN_CHUNK ? n - start : LP_SCAN_CHUNK);
        lp_corpus_read(c, start, len, buf);
        size_t i = first_bad(buf, len, vocab);
        if (i < len) {
            bad = start + i;
            break;
        }
    }
    /* doc_offsets: 0 first, n last, never decreasing (a reader indexes tokens with them) */
    uint64_t bad_off = UINT64_MAX;
    uint64_t *off = (uint64_t *)(void *)buf, per = LP_SCAN_CHUNK / 2 - 1; /* + 1 overlap fits */
    for (uint64_t k = (uint64_t)rank; k * per < docs + 1; k += (uint64_t)size) {
        uint64_t first = k * per;
        size_t len = (size_t)(docs + 1 - first < per + 1 ? docs + 1 - first : per + 1); /* one overlap */
        lp_corpus_read_doc_offsets(c, first, len, off);
        for (size_t i = 0; i < len && bad_off == UINT64_MAX; i++) {
            uint64_t g = first + i;
            int wrong = off[i] > n || (g == 0 && off[i] != 0) || (g == docs && off[i] != n) ||
                        (i > 0 && off[i] < off[i - 1]);
            if (wrong) bad_off = g;
        }
        if (bad_off != UINT64_MAX) break;
    }
    uint64_t worst[2] = {bad, bad_off};
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, worst, 2, MPI_UINT64_T, MPI_MIN, comm), "agreeing on corpus errors");
    if (worst[0] != UINT64_MAX) {
        int v;
        lp_corpus_read(c, worst[0], 1, &v);
        lp_free(buf);
        lp_user_error_all("%s: split '%s': token %d at position %" PRIu64 " is outside the model's vocabulary "
                          "[0, %d) (a corpus made with another tokenizer, or damaged)",
                          path, split, v, worst[0], vocab);
    }
    if (worst[1] != UINT64_MAX) {
        uint64_t v;
        lp_corpus_read_doc_offsets(c, worst[1], 1, &v);
        lp_free(buf);
        lp_user_error_all("%s: split '%s': doc_offsets[%" PRIu64 "] = %" PRIu64 " (expected offsets rising from 0 "
                          "to the %" PRIu64 " tokens of the split)", path, split, worst[1], v, n);
    }
    lp_free(buf);
    lp_corpus_close(c);
}
