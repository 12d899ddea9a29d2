/* test_mixture.c - the mixture's contract (mixture.h), checked against the weights directly:
 * the [data] train syntax and its errors; for three sources with uneven weights, the sequences
 * each source has given after k steps are non-decreasing in k, sum to k x G, and stay within
 * 1.5 sequences of k x G x weight; within a step, the slots attributed to a source carry exactly
 * its next sequence numbers; [data] replay scales train's weights to the rest. */
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
#include "llamapro/mixture.h"
#include "llamapro/run_config.h"

static char paths[3][300];

static void write_corpus(const char *path, int n) {
    const char *src[] = {"test"}, *splits[] = {"train", "val"};
    lp_corpus_meta meta = {4096, 1, 2, "fnv1a64:0000000000000000", src, 1, "test"};
    lp_corpus_writer *w = lp_corpus_writer_create(path, MPI_COMM_SELF, &meta, splits, 2);
    int *tok = calloc((size_t)n, sizeof *tok);
    uint64_t end = (uint64_t)n;
    lp_corpus_writer_append(w, 0, tok, (uint64_t)n, &end, 1);
    lp_corpus_writer_append(w, 1, tok, 0, &end, 0);
    lp_corpus_writer_close(w);
    free(tok);
}

static int setup(void **state) {
    (void)state;
    int sizes[3] = {900, 300, 5000};
    for (int i = 0; i < 3; i++) {
        snprintf(paths[i], sizeof paths[i], "%.250s/m%d.h5", fx_tmpdir(), i);
        write_corpus(paths[i], sizes[i]);
    }
    return 0;
}

static void test_parse(void **state) {
    (void)state;
    lp_mix_source s[LP_MIX_MAX];
    char why[512];
    assert_int_equal(lp_mix_parse(" a:x/c.h5@0.7 , b:d.h5:val@3", s, LP_MIX_MAX, why, sizeof why), 2);
    assert_string_equal(s[0].name, "a");
    assert_string_equal(s[0].path, "x/c.h5");
    assert_string_equal(s[0].split, "train");
    assert_string_equal(s[1].path, "d.h5");
    assert_string_equal(s[1].split, "val");
    assert_true(s[1].weight == 3);
    const char *bad[] = {"a:c.h5", "c.h5@1", "a:c.h5@-1", "a:c.h5@x", "a:c.h5@1, a:d.h5@1", "a b:c.h5@1", "a:@1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(lp_mix_parse(bad[i], s, LP_MIX_MAX, why, sizeof why), -1);
    assert_non_null(strstr(why, "expected name:path"));
}

static void test_counts(void **state) {
    (void)state;
    lp_run_config rc;
    lp_run_config_defaults(&rc);
    const double w[3] = {0.123, 0.456, 0.421};
    snprintf(rc.train_path, sizeof rc.train_path, "a:%.300s@%g, b:%.300s@%g, c:%.300s@%g", paths[0], w[0], paths[1], w[1], paths[2], w[2]);
    const int G = 7, T = 8;
    lp_mixture *x = lp_mixture_open(rc.train_path, rc.train_split, rc.replay, rc.seed, T, G);
    assert_int_equal(lp_mixture_n_sources(x), 3);
    uint64_t prev[3] = {0};
    for (uint64_t k = 0; k < 400; k++) {
        uint64_t sum = 0, next[3], got[3] = {0};
        for (int s = 0; s < 3; s++) {
            next[s] = lp_mixture_sequences(x, s, k + 1);
            sum += next[s];
            assert_true(next[s] >= prev[s]);
            double want = (double)(k + 1) * G * w[s];
            assert_true(next[s] + 1.5 > want && next[s] < want + 1.5);
        }
        assert_int_equal(sum, (k + 1) * G);
        /* the step's slots of source s carry its sequence numbers prev[s] .. next[s]-1, once each */
        uint64_t seen[3][G];
        for (int j = 0; j < G; j++) {
            uint64_t c;
            int s = lp_mixture_source_of(x, k, j, &c);
            assert_true(c >= prev[s] && c < next[s]);
            for (uint64_t i = 0; i < got[s]; i++) assert_true(seen[s][i] != c);
            seen[s][got[s]++] = c;
        }
        for (int s = 0; s < 3; s++) assert_int_equal(got[s], next[s] - prev[s]);
        memcpy(prev, next, sizeof prev);
    }
    /* epochs = sequences / windows: source b has (300 - 1) / 8 = 37 windows */
    assert_true(lp_mixture_epochs(x, 1, 400) == (double)lp_mixture_sequences(x, 1, 400) / 37.0);
    lp_mixture_close(x);
}

static void test_replay(void **state) {
    (void)state;
    lp_run_config rc;
    lp_run_config_defaults(&rc);
    snprintf(rc.train_path, sizeof rc.train_path, "a:%.300s@2, b:%.300s@2", paths[0], paths[1]);
    snprintf(rc.replay, sizeof rc.replay, "c:%s@0.2", paths[2]);
    lp_mix_source s[LP_MIX_MAX];
    assert_int_equal(lp_mix_sources(rc.train_path, rc.train_split, rc.replay, s, LP_MIX_MAX), 3);
    assert_true(s[0].weight > 0.3999999 && s[0].weight < 0.4000001);
    assert_true(s[2].weight == 0.2);
    snprintf(rc.replay, sizeof rc.replay, "c:%s@0", paths[2]);
    assert_int_equal(lp_mix_sources(rc.train_path, rc.train_split, rc.replay, s, LP_MIX_MAX), 2);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_replay),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    MPI_Finalize();
    return rc;
}
