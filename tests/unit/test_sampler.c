/* test_sampler.c - the corpus writer/reader round trip and the training sampler's contract:
 * epochs are permutations of all windows, windows hold the right tokens, batches depend on
 * (seed, step) only. The corpus is written from a known token pattern, and checked with plain
 * HDF5 reads (fixture.c), not with llamapro's reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <mpi.h>

#include "fixture.h"
#include "llamapro/corpus.h"
#include "llamapro/docsource.h"
#include "llamapro/prepare.h"
#include "llamapro/sampler.h"

#define NTOK 10007 /* prime: windows never tile it exactly */
static char corpus_path[512];

static int pattern(uint64_t i) { return (int)((i * 7919) % 4000); }

static int setup(void **state) {
    snprintf(corpus_path, sizeof corpus_path, "%s/c.h5", fx_tmpdir());
    const char *src[] = {"pattern"};
    lp_corpus_meta meta = {4096, 1, 2, "fnv1a64:0000000000000000", src, 1, "test"};
    const char *splits[] = {"train", "val"};
    lp_corpus_writer *w = lp_corpus_writer_create(corpus_path, MPI_COMM_WORLD, &meta, splits, 2);
    /* Two appends of documents of 1000 tokens (the last one shorter). */
    int *tok = malloc(NTOK * sizeof *tok);
    for (uint64_t i = 0; i < NTOK; i++) tok[i] = pattern(i);
    uint64_t ends[16], nd = 0;
    for (uint64_t e = 1000; e < 6000; e += 1000) ends[nd++] = e;
    ends[nd++] = 6000;
    lp_corpus_writer_append(w, 0, tok, 6000, ends, nd);
    nd = 0;
    for (uint64_t e = 1000; e < NTOK - 6000; e += 1000) ends[nd++] = e;
    ends[nd++] = NTOK - 6000;
    lp_corpus_writer_append(w, 0, tok + 6000, NTOK - 6000, ends, nd);
    uint64_t vend = 3;
    lp_corpus_writer_append(w, 1, tok, 3, &vend, 1);
    lp_corpus_writer_close(w);
    free(tok);
    return 0;
}

static void test_written_file(void **state) {
    size_t n;
    int *t = fx_read_int(corpus_path, "/splits/train/tokens", &n);
    assert_int_equal(n, NTOK);
    for (size_t i = 0; i < n; i++) assert_int_equal(t[i], pattern(i));
    free(t);
    int *off = fx_read_int(corpus_path, "/splits/train/doc_offsets", &n);
    assert_int_equal(n, 12); /* 6 + 5 documents, plus the leading 0 */
    int want[] = {0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, NTOK};
    for (size_t i = 0; i < n; i++) assert_int_equal(off[i], want[i]);
    free(off);
}

static void test_reader(void **state) {
    lp_corpus *c = lp_corpus_open(corpus_path, "train");
    assert_int_equal(lp_corpus_n_tokens(c), NTOK);
    assert_int_equal(lp_corpus_n_docs(c), 11);
    assert_int_equal(lp_corpus_vocab_size(c), 4096);
    assert_int_equal(lp_corpus_bos_id(c), 1);
    assert_string_equal(lp_corpus_tokenizer_checksum(c), "fnv1a64:0000000000000000");
    int buf[300];
    lp_corpus_read(c, 9900, 107, buf);
    for (int i = 0; i < 107; i++) assert_int_equal(buf[i], pattern(9900 + (uint64_t)i));
    uint64_t offs[3];
    lp_corpus_read_doc_offsets(c, 10, 2, offs);
    assert_int_equal(offs[0], 10000);
    assert_int_equal(offs[1], NTOK);
    lp_corpus_close(c);
    c = lp_corpus_open(corpus_path, "val");
    assert_int_equal(lp_corpus_n_tokens(c), 3);
    assert_int_equal(lp_corpus_n_docs(c), 1);
    lp_corpus_close(c);
}

static void test_permutation(void **state) {
    uint64_t sizes[] = {1, 2, 3, 5, 17, 64, 1000, 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t n = sizes[k];
        char *seen = calloc(n, 1);
        int fixed = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t p = lp_permute_index(i, n, 42);
            assert_true(p < n);
            assert_false(seen[p]);
            seen[p] = 1;
            fixed += p == i;
        }
        if (n >= 64) assert_true(fixed < (int)n / 8); /* it does shuffle */
        free(seen);
    }
}

static void test_sampler_epochs(void **state) {
    const int T = 64, G = 6; /* W = 10006 / 64 = 156 windows; 156 is not a multiple of 6 */
    lp_sampler *s = lp_sampler_open(corpus_path, "train", T, G, 7);
    uint64_t W = lp_sampler_n_windows(s);
    assert_int_equal(W, (NTOK - 1) / T);
    /* Two epochs' worth of sequences: each window exactly twice, once per epoch. */
    int *count = calloc(W, sizeof *count);
    uint64_t steps = (2 * W + G - 1) / G;
    for (uint64_t k = 0; k < steps; k++)
        for (int j = 0; j < G; j++) {
            uint64_t p = k * G + (uint64_t)j;
            if (p >= 2 * W) break;
            uint64_t w = lp_sampler_window(s, k, j);
            assert_true(w < W);
            count[w] += p < W ? 1 : 100;
        }
    for (uint64_t w = 0; w < W; w++) assert_int_equal(count[w], 101);
    free(count);
    /* Tokens of sequences 2..4 of step 31 (crosses into epoch 1) are their windows' tokens. */
    int *buf = malloc(3 * (T + 1) * sizeof *buf);
    lp_sampler_fill(s, 31, 2, 3, buf);
    for (int j = 0; j < 3; j++) {
        uint64_t w = lp_sampler_window(s, 31, 2 + j);
        for (int i = 0; i <= T; i++) assert_int_equal(buf[j * (T + 1) + i], pattern(w * T + (uint64_t)i));
    }
    /* The last window W-1 is read through to its last token (T+1 tokens, the last of them at
     * (W-1)*T+T = W*T <= NTOK-1), and no further window would fit: (W+1)*T+1 > NTOK. */
    assert_true((W + 1) * T + 1 > NTOK);
    int found = 0;
    for (uint64_t k = 0; k < (W + G - 1) / G && !found; k++)
        for (int j = 0; j < G && !found; j++) {
            if (k * G + (uint64_t)j >= W || lp_sampler_window(s, k, j) != W - 1) continue;
            int *last = malloc((T + 1) * sizeof *last);
            lp_sampler_fill(s, k, j, 1, last);
            for (int i = 0; i <= T; i++) assert_int_equal(last[i], pattern((W - 1) * T + (uint64_t)i));
            free(last);
            found = 1;
        }
    assert_true(found); /* window W-1 is in epoch 0 */
    lp_sampler_state st;
    lp_sampler_get_state(s, &st);
    char err[128];
    assert_int_equal(lp_sampler_check_state(s, &st, err, sizeof err), 0);
    lp_sampler *s2 = lp_sampler_open(corpus_path, "train", T, G, 8);
    assert_int_equal(lp_sampler_check_state(s2, &st, err, sizeof err), -1);
    assert_non_null(strstr(err, "seed"));
    /* Same (seed, step): same windows, whoever asks; another seed: another order. */
    int differ = 0;
    for (int j = 0; j < G; j++) {
        lp_sampler *s3 = lp_sampler_open(corpus_path, "train", T, G, 7);
        assert_int_equal(lp_sampler_window(s3, 5, j), lp_sampler_window(s, 5, j));
        lp_sampler_close(s3);
        differ += lp_sampler_window(s2, 5, j) != lp_sampler_window(s, 5, j);
    }
    assert_true(differ > 0);
    lp_sampler_close(s2);
    free(buf);
    lp_sampler_close(s);
}

static void test_utf8_and_split(void **state) {
    assert_int_equal(lp_utf8_invalid_at("plain ascii", 11), -1);
    assert_int_equal(lp_utf8_invalid_at("caf\xc3\xa9 \xe6\x9d\xb1 \xf0\x9f\x9a\x80", 14), -1);
    assert_int_equal(lp_utf8_invalid_at("ab\xff", 3), 2);
    assert_int_equal(lp_utf8_invalid_at("ab\xc3", 3), 2);             /* truncated */
    assert_int_equal(lp_utf8_invalid_at("\xc0\xaf", 2), 0);           /* overlong '/' */
    assert_int_equal(lp_utf8_invalid_at("x\xed\xa0\x80", 4), 1);      /* surrogate U+D800 */
    assert_int_equal(lp_utf8_invalid_at("\xf4\x90\x80\x80", 4), 0);   /* above U+10FFFF */
    /* The split of a text is a function of the text; fractions are respected roughly. */
    int val = 0, test = 0;
    char doc[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(doc, sizeof doc, "document %d", i);
        int s = lp_split_of_text(doc, (size_t)n, 0.1, 0.05);
        assert_int_equal(s, lp_split_of_text(doc, (size_t)n, 0.1, 0.05));
        val += s == 1;
        test += s == 2;
    }
    assert_true(val > 1800 && val < 2200);
    assert_true(test > 850 && test < 1150);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_file),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_sampler_epochs),
        cmocka_unit_test(test_utf8_and_split),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    MPI_Finalize();
    return rc;
}
