/* test_bpe.c - byte-level BPE rules on small tokenizer.json files built here, with the expected ids
 * worked out by hand from Hugging Face tokenizers' definitions (the real Llama 3 / Qwen3 files are
 * checked against the JavaScript reference in tests/mpi/bpe_reference.sh):
 *   merges by rank, ties to the leftmost pair; ignore_merges; the Split regex's piece boundaries
 *   (\p{N}{1,3}); NFC; added tokens leftmost-longest, special ones skipped when decoding; the BOS rule
 *   (config add_bos_token, TemplateProcessing, config bos_token, none -> <|endoftext|>); invalid UTF-8
 *   and unsupported files refused with a reason; a 100,000-byte word merged in one pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "llamapro/bpe.h"
#include "llamapro/tokenizer.h"

/* GPT-2's bytes_to_unicode, written out again here: the character that stands for byte b. */
static void byte_char(int b, char out[3]) {
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = b;
    if (!printable) {
        int k = 0;
        for (int c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

/* ASCII-only token spelling (all test tokens are printable ASCII, which stands for itself) */
typedef struct { const char *l, *r; } merge;

/* A tokenizer.json: bytes 0..255 are ids 0..255; `extra` tokens follow at 256, 257, ...; merges in
 * rank order; added tokens "<s>" (300, special), "<sx>" (301, not special), "<|endoftext|>" (302,
 * special) when with_added. */
static char *make_json(const char *const *extra, int n_extra, const merge *m, int n_m, int ignore_merges,
                       const char *normalizer, const char *split_regex, int with_added, const char *post) {
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateObject();
    for (int b = 0; b < 256; b++) {
        char c[3];
        byte_char(b, c);
        cJSON_AddNumberToObject(vocab, c, b);
    }
    for (int i = 0; i < n_extra; i++) cJSON_AddNumberToObject(vocab, extra[i], 256 + i);
    cJSON *merges = cJSON_CreateArray();
    for (int i = 0; i < n_m; i++) {
        char s[64];
        snprintf(s, sizeof s, "%s %s", m[i].l, m[i].r);
        cJSON_AddItemToArray(merges, cJSON_CreateString(s));
    }
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddBoolToObject(model, "ignore_merges", ignore_merges);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    cJSON_AddItemToObject(root, "model", model);
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    if (with_added) {
        const char *names[] = {"<s>", "<sx>", "<|endoftext|>"};
        for (int i = 0; i < 3; i++) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", 300 + i);
            cJSON_AddStringToObject(a, "content", names[i]);
            cJSON_AddBoolToObject(a, "special", i != 1);
            cJSON_AddItemToArray(added, a);
        }
    }
    if (normalizer) cJSON_AddItemToObject(root, "normalizer", cJSON_Parse(normalizer));
    else cJSON_AddNullToObject(root, "normalizer");
    cJSON *seq = cJSON_CreateObject(), *steps = cJSON_CreateArray();
    cJSON_AddStringToObject(seq, "type", "Sequence");
    if (split_regex) {
        cJSON *sp = cJSON_CreateObject(), *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(sp, "type", "Split");
        cJSON_AddStringToObject(pat, "Regex", split_regex);
        cJSON_AddItemToObject(sp, "pattern", pat);
        cJSON_AddStringToObject(sp, "behavior", "Isolated");
        cJSON_AddFalseToObject(sp, "invert");
        cJSON_AddItemToArray(steps, sp);
    }
    cJSON *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddFalseToObject(bl, "add_prefix_space");
    cJSON_AddFalseToObject(bl, "use_regex");
    cJSON_AddItemToArray(steps, bl);
    cJSON_AddItemToObject(seq, "pretokenizers", steps);
    cJSON_AddItemToObject(root, "pre_tokenizer", seq);
    cJSON *dec = cJSON_CreateObject();
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddItemToObject(root, "decoder", dec);
    if (post) cJSON_AddItemToObject(root, "post_processor", cJSON_Parse(post));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

static lp_bpe *load(const char *json, const char *cfg) {
    char err[400];
    lp_bpe *b = lp_bpe_load(json, strlen(json), cfg, cfg ? strlen(cfg) : 0, err, sizeof err);
    if (!b) fail_msg("load failed: %s", err);
    return b;
}

static void expect_ids(const lp_bpe *b, const char *text, const int *want, int n) {
    int *ids = NULL;
    size_t cap = 0;
    char err[200];
    long k = lp_bpe_encode(b, text, strlen(text), &ids, &cap, err, sizeof err);
    if (k < 0) fail_msg("encode '%s': %s", text, err);
    if (k != n) fail_msg("encode '%s': %ld ids, expected %d (first %d)", text, k, n, k > 0 ? ids[0] : -1);
    for (int i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("encode '%s': id %d is %d, expected %d", text, i, ids[i], want[i]);
    free(ids);
}

static const char *EXTRA[] = {"ab", "bc", "abc", "cc", "cab", "34", "aa", "aaaa"};
static const merge MERGES[] = {{"a", "b"}, {"b", "c"}, {"ab", "c"}, {"c", "c"}, {"3", "4"}, {"a", "a"}, {"aa", "aa"}};
enum { AB = 256, BC, ABC, CC, CAB, T34, AA, AAAA };

static void test_merge_order(void **state) {
    (void)state;
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 0, NULL);
    lp_bpe *b = load(j, NULL);
    expect_ids(b, "abc", (int[]){ABC}, 1);            /* ab (rank 0) before bc (rank 1), then ab+c */
    expect_ids(b, "bcab", (int[]){BC, AB}, 2);
    expect_ids(b, "ccc", (int[]){CC, 'c'}, 2);        /* equal ranks: the leftmost pair first */
    expect_ids(b, "cab", (int[]){'c', AB}, 2);        /* "cab" is in the vocabulary but no merge makes it */
    expect_ids(b, "12345", (int[]){'1', '2', T34, '5'}, 4);
    expect_ids(b, "", NULL, 0);
    assert_int_equal(lp_bpe_vocab_size(b), 256 + 8);
    lp_bpe_free(b);
    free(j);
    j = make_json(EXTRA, 8, MERGES, 7, 1, NULL, NULL, 0, NULL);
    b = load(j, NULL);
    expect_ids(b, "cab", (int[]){CAB}, 1);            /* ignore_merges: a piece in the vocabulary is one id */
    lp_bpe_free(b);
    free(j);
}

static void test_split_regex(void **state) {
    (void)state;
    const char *llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, llama3, 0, NULL);
    lp_bpe *b = load(j, NULL);
    /* "12345" splits into "123" "45": the merge 3+4 cannot cross the boundary */
    expect_ids(b, "12345", (int[]){'1', '2', '3', '4', '5'}, 5);
    expect_ids(b, "34 34", (int[]){T34, ' ', T34}, 3); /* a space never joins digits */
    /* "'S" is one piece (the case-insensitive contraction), "ab" another */
    expect_ids(b, "'Sab", (int[]){'\'', 'S', AB}, 3);
    lp_bpe_free(b);
    free(j);
    /* a String pattern, behavior Removed: the spaces go */
    j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, "\\s", 0, NULL);
    const char *from = "{\"Regex\":\"\\\\s\"},\"behavior\":\"Isolated\"", *to = "{\"String\":\" \"},\"behavior\":\"Removed\"";
    char *p = strstr(j, from);
    if (!p) fail_msg("no '%s' in %s", from, j);
    char *m = malloc(strlen(j) + strlen(to) + 1);
    memcpy(m, j, (size_t)(p - j));
    strcpy(m + (p - j), to);
    strcat(m, p + strlen(from));
    b = load(m, NULL);
    expect_ids(b, "ab ab  c", (int[]){AB, AB, 'c'}, 3);
    lp_bpe_free(b);
    free(m);
    free(j);
}

static void test_nfc(void **state) {
    (void)state;
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, "{\"type\": \"NFC\"}", NULL, 0, NULL);
    lp_bpe *b = load(j, NULL);
    expect_ids(b, "e\xcc\x81", (int[]){0xC3, 0xA9}, 2); /* e + COMBINING ACUTE -> U+00E9 */
    lp_bpe_free(b);
    free(j);
    j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 0, NULL);
    b = load(j, NULL);
    expect_ids(b, "e\xcc\x81", (int[]){'e', 0xCC, 0x81}, 3);
    lp_bpe_free(b);
    free(j);
}

static void test_added_tokens_and_decode(void **state) {
    (void)state;
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 1, NULL);
    lp_bpe *b = load(j, NULL);
    expect_ids(b, "ab<sx>c<s>abc<s", (int[]){AB, 301, 'c', 300, ABC, '<', 's'}, 7); /* longest: <sx> over <s> */
    int ids[] = {AB, 301, 'c', 300, 302, 0xC3, 0xA9};
    size_t n;
    char err[100];
    char *text = lp_bpe_decode(b, ids, 7, &n, err, sizeof err);
    assert_non_null(text);
    assert_string_equal(text, "ab<sx>c\xc3\xa9"); /* special tokens decode to nothing */
    assert_int_equal(n, 9);
    free(text);
    assert_null(lp_bpe_decode(b, (int[]){400}, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "400"));
    assert_string_equal(lp_bpe_piece(b, 301), "<sx>");
    assert_string_equal(lp_bpe_piece(b, ' '), "\xc4\xa0"); /* the space byte is spelled U+0120 */
    assert_null(lp_bpe_piece(b, 303));
    lp_bpe_free(b);
    free(j);
}

static void test_bos_rule(void **state) {
    (void)state;
    const char *tmpl = "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
                       " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\","
                       " \"ids\": [300], \"tokens\": [\"<s>\"]}}}";
    char *plain = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 1, "{\"type\": \"ByteLevel\"}");
    char *templ = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 1, tmpl);
    struct { const char *json, *cfg; int adds, bos, eos; } cases[] = {
        {plain, NULL, 0, 302, 302},                                                  /* Qwen-like: <|endoftext|> */
        {plain, "{\"bos_token\": \"<s>\", \"eos_token\": \"<sx>\"}", 1, 300, 301},   /* Llama 3 copy: config's bos */
        {plain, "{\"bos_token\": null, \"add_bos_token\": false, \"eos_token\": \"<s>\"}", 0, 302, 300},
        {templ, NULL, 1, 300, 302},                                                  /* the template's BOS */
        {templ, "{\"add_bos_token\": false}", 0, 302, 302},                          /* the config turns it off */
        {plain, "{\"add_bos_token\": true, \"bos_token\": {\"content\": \"<s>\"}}", 1, 300, 302},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        lp_bpe *b = load(cases[i].json, cases[i].cfg);
        if (lp_bpe_adds_bos(b) != cases[i].adds || lp_bpe_bos_id(b) != cases[i].bos || lp_bpe_eos_id(b) != cases[i].eos)
            fail_msg("case %zu: adds_bos %d bos %d eos %d, expected %d %d %d", i, lp_bpe_adds_bos(b), lp_bpe_bos_id(b),
                     lp_bpe_eos_id(b), cases[i].adds, cases[i].bos, cases[i].eos);
        lp_bpe_free(b);
    }
    char *none = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 0, NULL);
    lp_bpe *b = load(none, NULL);
    assert_int_equal(lp_bpe_bos_id(b), -1);
    assert_int_equal(lp_bpe_eos_id(b), -1);
    lp_bpe_free(b);
    free(none);
    free(plain);
    free(templ);
}

static void test_refusals(void **state) {
    (void)state;
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 0, NULL);
    lp_bpe *b = load(j, NULL);
    int *ids = NULL;
    size_t cap = 0;
    char err[200];
    assert_int_equal(lp_bpe_encode(b, "a\xc3(b", 4, &ids, &cap, err, sizeof err), -1);
    assert_non_null(strstr(err, "invalid UTF-8 at byte 1"));
    assert_int_equal(lp_bpe_encode(b, "\xed\xa0\x80", 3, &ids, &cap, err, sizeof err), -1); /* a surrogate */
    free(ids);
    lp_bpe_free(b);
    struct { const char *from, *to, *msg; } bad[] = {
        {"\"BPE\"", "\"WordPiece\"", "model.type is 'WordPiece' (expected BPE)"},
        {"\"ignore_merges\":false", "\"ignore_merges\":false,\"byte_fallback\":true", "byte_fallback"},
        {"\"type\":\"ByteLevel\",\"add_prefix_space\"", "\"type\":\"Metaspace\",\"add_prefix_space\"", "pre_tokenizer type 'Metaspace'"},
        {"\"normalizer\":null", "\"normalizer\":{\"type\":\"Lowercase\"}", "normalizer type 'Lowercase'"},
        {"\"a b\"", "\"a zz\"", "model.merges[0] ('a' 'zz'): the right token is not in the vocabulary"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *p = strstr(j, bad[i].from);
        if (!p) fail_msg("case %zu: '%s' not in the test json", i, bad[i].from);
        size_t lf = strlen(bad[i].from), lt = strlen(bad[i].to);
        char *m = malloc(strlen(j) + lt + 1);
        memcpy(m, j, (size_t)(p - j));
        memcpy(m + (p - j), bad[i].to, lt);
        strcpy(m + (p - j) + lt, p + lf);
        err[0] = 0;
        assert_null(lp_bpe_load(m, strlen(m), NULL, 0, err, sizeof err));
        if (!strstr(err, bad[i].msg)) fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].msg);
        free(m);
    }
    free(j);
}

static void test_long_word(void **state) {
    (void)state;
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 0, NULL);
    lp_bpe *b = load(j, NULL);
    size_t n = 100000;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = 0;
    int *ids = NULL;
    size_t cap = 0;
    char err[200];
    /* a+a merges pair by pair from the left (50,000 "aa"), then aa+aa (25,000 "aaaa") */
    long k = lp_bpe_encode(b, text, n, &ids, &cap, err, sizeof err);
    assert_int_equal(k, 25000);
    for (long i = 0; i < k; i++) assert_int_equal(ids[i], AAAA);
    text[n - 2] = 0; /* 99,998: 24,999 "aaaa" and one "aa" */
    k = lp_bpe_encode(b, text, n - 2, &ids, &cap, err, sizeof err);
    assert_int_equal(k, 25000);
    assert_int_equal(ids[24998], AAAA);
    assert_int_equal(ids[24999], AA);
    free(ids);
    free(text);
    lp_bpe_free(b);
    free(j);
}

/* The shim picks the kind from the bytes and keeps tokenizer_config.json after a NUL. */
static void test_shim_kind(void **state) {
    (void)state;
    char *j = make_json(EXTRA, 8, MERGES, 7, 0, NULL, NULL, 1, NULL);
    const char *cfg = "{\"bos_token\": \"<s>\", \"eos_token\": \"<sx>\"}";
    size_t lj = strlen(j), lc = strlen(cfg);
    char *blob = malloc(lj + 1 + lc);
    memcpy(blob, j, lj);
    blob[lj] = 0;
    memcpy(blob + lj + 1, cfg, lc);
    char err[200];
    lp_tokenizer *t = lp_tokenizer_load_bytes(blob, lj + 1 + lc, err, sizeof err);
    if (!t) fail_msg("%s", err);
    assert_string_equal(lp_tokenizer_kind(t), "bpe");
    assert_string_equal(lp_tokenizer_kind_of(blob, lj + 1 + lc), "bpe");
    assert_string_equal(lp_tokenizer_kind_of("\x0a\x0b", 2), "sentencepiece");
    assert_int_equal(lp_tokenizer_bos_id(t), 300);
    assert_int_equal(lp_tokenizer_eos_id(t), 301);
    int *ids = NULL;
    size_t cap = 0;
    assert_int_equal(lp_tokenizer_encode(t, "abc", 3, &ids, &cap, err, sizeof err), 1);
    assert_int_equal(ids[0], ABC);
    free(ids);
    lp_tokenizer_free(t);
    free(blob);
    free(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_order),    cmocka_unit_test(test_split_regex),
        cmocka_unit_test(test_nfc),            cmocka_unit_test(test_added_tokens_and_decode),
        cmocka_unit_test(test_bos_rule),       cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_long_word),      cmocka_unit_test(test_shim_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
