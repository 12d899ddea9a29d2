/* test_tokenizer.c - the sentencepiece shim reproduces the ids the sentencepiece library gave for
 * the Llama 2 tokenizer (fixtures/llama2-tokenizer/expected.json) and decodes them back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "fixture.h"
#include "llamapro/tokenizer.h"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void check_cases(lp_tokenizer *t) {
    size_t jlen;
    char *json = slurp(fx_path("llama2-tokenizer/expected.json"), &jlen);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_int_equal(lp_tokenizer_vocab_size(t), cJSON_GetObjectItem(root, "vocab_size")->valueint);
    assert_int_equal(lp_tokenizer_bos_id(t), cJSON_GetObjectItem(root, "bos_id")->valueint);
    assert_int_equal(lp_tokenizer_eos_id(t), cJSON_GetObjectItem(root, "eos_id")->valueint);
    assert_int_equal(lp_tokenizer_unk_id(t), cJSON_GetObjectItem(root, "unk_id")->valueint);
    cJSON *cases = cJSON_GetObjectItem(root, "cases"), *c;
    int ncases = 0;
    int *ids = NULL;
    size_t cap = 0;
    char err[256];
    cJSON_ArrayForEach(c, cases) {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        cJSON *want = cJSON_GetObjectItem(c, "ids");
        long n = lp_tokenizer_encode(t, text, strlen(text), &ids, &cap, err, sizeof err);
        assert_true(n >= 0);
        if (n != cJSON_GetArraySize(want)) fail_msg("'%s': %ld ids, expected %d", text, n, cJSON_GetArraySize(want));
        for (long i = 0; i < n; i++) assert_int_equal(ids[i], cJSON_GetArrayItem(want, (int)i)->valueint);
        char *back = lp_tokenizer_decode(t, ids, (size_t)n, err, sizeof err);
        assert_non_null(back);
        assert_string_equal(back, text);
        free(back);
        ncases++;
    }
    assert_true(ncases >= 8);
    free(ids);
    cJSON_Delete(root);
    free(json);
}

static void test_expected_ids_from_file(void **state) {
    char err[256];
    lp_tokenizer *t = lp_tokenizer_load_file(fx_path("llama2-tokenizer/tokenizer.model"), err, sizeof err);
    assert_non_null(t);
    check_cases(t);
    assert_string_equal(lp_tokenizer_piece(t, 1), "<s>");
    assert_string_equal(lp_tokenizer_piece(t, 13), "<0x0A>");
    assert_null(lp_tokenizer_piece(t, 32000));
    lp_tokenizer_free(t);
}

static void test_expected_ids_from_bytes(void **state) {
    size_t len;
    char *bytes = slurp(fx_path("llama2-tokenizer/tokenizer.model"), &len);
    char err[256];
    lp_tokenizer *t = lp_tokenizer_load_bytes(bytes, len, err, sizeof err);
    free(bytes); /* the tokenizer keeps its own copy */
    assert_non_null(t);
    check_cases(t);
    char sum[26];
    lp_tokenizer_checksum(t, sum);
    assert_int_equal(strlen(sum), 24);
    assert_memory_equal(sum, "fnv1a64:", 8);
    lp_tokenizer_free(t);
}

static void test_errors(void **state) {
    char err[256] = "";
    assert_null(lp_tokenizer_load_file("/nonexistent/tokenizer.model", err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    err[0] = 0;
    assert_null(lp_tokenizer_load_bytes("not a model", 11, err, sizeof err));
    assert_true(strlen(err) > 0);
    lp_tokenizer *t = lp_tokenizer_load_file(fx_path("llama2-tokenizer/tokenizer.model"), err, sizeof err);
    int bad[2] = {5, 32000};
    err[0] = 0;
    assert_null(lp_tokenizer_decode(t, bad, 2, err, sizeof err));
    assert_non_null(strstr(err, "32000"));
    lp_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_ids_from_file),
        cmocka_unit_test(test_expected_ids_from_bytes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
