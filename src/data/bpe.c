/* bpe.c - byte-level BPE from a Hugging Face tokenizer.json (see bpe.h for what is reproduced).
 *
 * Layout after loading: every id has its tokenizer.json spelling (pieces) and, for vocabulary tokens,
 * its raw bytes (the ByteLevel byte-to-unicode mapping undone once here), so pre-tokenized pieces are
 * merged as raw bytes and decoding is a copy. Merges live in an open-addressing table keyed by the
 * id pair, as in tokenizers' BPE (a merge (a, b) -> (rank, id of ab)).
 */
#define _GNU_SOURCE
#include "llamapro/bpe.h"
#include "llamapro/docsource.h" /* lp_utf8_invalid_at */

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_STEPS 8
enum { STEP_SPLIT, STEP_BYTELEVEL };
enum { BEH_ISOLATED, BEH_REMOVED };

typedef struct {
    int kind;
    pcre2_code *re;  /* SPLIT, or BYTELEVEL with use_regex; NULL otherwise */
    int behavior;    /* SPLIT */
    int prefix_space; /* BYTELEVEL add_prefix_space */
} step;

typedef struct {
    char *text;
    size_t len;
    int id, special, lstrip, rstrip, single_word;
} added_tok;

struct lp_bpe {
    int n_ids;
    char **piece;        /* [n_ids] tokenizer.json spelling, NULL for a hole */
    unsigned char **raw; /* [n_ids] raw bytes of a byte-level vocabulary token, NULL otherwise */
    uint32_t *raw_len;
    /* raw bytes -> id (slot holds id + 1, 0 empty) */
    int32_t *vmap;
    size_t vmask;
    /* (a << 32 | b) -> (rank, merged id); key UINT64_MAX empty */
    uint64_t *mkey;
    uint32_t *mrank;
    int32_t *mnew;
    size_t mmask;
    int byte_id[256];
    added_tok *added; /* sorted by first byte, then longest first */
    int n_added;
    int added_lo[256], added_hi[256]; /* per first byte: [lo, hi) in added */
    signed char *added_kind; /* [n_ids] 0 not added, 1 added, 2 added special */
    int nfc, ignore_merges;
    step steps[MAX_STEPS];
    int n_steps;
    int adds_bos, bos, eos, unk;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- hashing ------------------------------------------------------------------------------------ */

static uint64_t mix64(uint64_t x) { /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_bytes(const unsigned char *s, size_t n) { /* FNV-1a, then mixed */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return mix64(h);
}

static size_t table_size(size_t n) {
    size_t s = 16;
    while (s < 2 * n) s <<= 1;
    return s;
}

/* id of a vocabulary token with these raw bytes, or -1 */
static int vocab_find(const lp_bpe *b, const unsigned char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & b->vmask;; i = (i + 1) & b->vmask) {
        int32_t v = b->vmap[i];
        if (!v) return -1;
        int id = v - 1;
        if (b->raw_len[id] == n && !memcmp(b->raw[id], s, n)) return id;
    }
}

static void vocab_insert(lp_bpe *b, int id) {
    size_t i = hash_bytes(b->raw[id], b->raw_len[id]) & b->vmask;
    while (b->vmap[i]) {
        int o = b->vmap[i] - 1;
        if (b->raw_len[o] == b->raw_len[id] && !memcmp(b->raw[o], b->raw[id], b->raw_len[id])) return;
        i = (i + 1) & b->vmask;
    }
    b->vmap[i] = id + 1;
}

/* slot of merge (l, r), or -1 */
static long merge_find(const lp_bpe *b, int l, int r) {
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (size_t i = mix64(k) & b->mmask;; i = (i + 1) & b->mmask) {
        if (b->mkey[i] == k) return (long)i;
        if (b->mkey[i] == UINT64_MAX) return -1;
    }
}

/* ---- UTF-8 and the ByteLevel alphabet ---------------------------------------------------------- */

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 are shifted to
 * U+0100..U+0143 in byte order. Inverse: code point -> byte, -1 outside the alphabet. */
static void byte_alphabet(int cp_to_byte[324]) {
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    int extra = 0;
    for (int c = 0; c < 256; c++) {
        int printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255);
        cp_to_byte[printable ? c : 256 + extra++] = c;
    }
}

/* Raw bytes of a ByteLevel-spelled token into out (at most strlen(s) bytes); -1 when a character is
 * outside the alphabet (the token is not a byte-level one). */
static long bytelevel_to_raw(const char *s, const int cp_to_byte[324], unsigned char *out) {
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, -1, &cp);
        if (k <= 0 || cp < 0 || cp >= 324 || cp_to_byte[cp] < 0) return -1;
        out[n++] = (unsigned char)cp_to_byte[cp];
        p += k;
    }
    return n;
}

/* ---- loading ------------------------------------------------------------------------------------ */

static int json_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A config token may be "text" or {"content": "text", ...} (older tokenizer_config.json files). */
static const char *config_token(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return json_str(v, "content");
    return NULL;
}

static int find_token(const lp_bpe *b, const char *text) {
    if (!text) return -1;
    for (int i = 0; i < b->n_added; i++)
        if (!strcmp(b->added[i].text, text)) return b->added[i].id;
    for (int i = 0; i < b->n_ids; i++)
        if (b->piece[i] && !strcmp(b->piece[i], text)) return i;
    return -1;
}

static pcre2_code *compile_re(const char *pat, int literal, char *err, size_t errlen, const char *what) {
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP); /* LITERAL refuses UCP */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        seterr(err, errlen, "%s: the regex does not compile with PCRE2 at offset %zu: %s", what, (size_t)eo, msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* without JIT support the interpreter runs: same matches */
    return re;
}

/* GPT-2's pre-tokenizer regex, what ByteLevel splits with when use_regex is true */
static const char *GPT2_RE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int add_pretok(lp_bpe *b, const cJSON *p, char *err, size_t errlen) {
    const char *type = json_str(p, "type");
    if (!type) { seterr(err, errlen, "pre_tokenizer: missing \"type\""); return -1; }
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *e;
        if (!cJSON_IsArray(arr)) { seterr(err, errlen, "pre_tokenizer Sequence: missing \"pretokenizers\""); return -1; }
        cJSON_ArrayForEach(e, arr) if (add_pretok(b, e, err, errlen) < 0) return -1;
        return 0;
    }
    if (b->n_steps == MAX_STEPS) { seterr(err, errlen, "pre_tokenizer: more than %d steps", MAX_STEPS); return -1; }
    step *s = &b->steps[b->n_steps];
    memset(s, 0, sizeof *s);
    if (!strcmp(type, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
        const char *rx = json_str(pat, "Regex"), *lit = json_str(pat, "String");
        const char *beh = json_str(p, "behavior");
        if (!rx && !lit) { seterr(err, errlen, "pre_tokenizer Split: expected pattern {\"Regex\": ...} or {\"String\": ...}"); return -1; }
        if (json_bool(p, "invert", 0)) { seterr(err, errlen, "pre_tokenizer Split: invert = true is not supported"); return -1; }
        if (beh && !strcmp(beh, "Isolated")) s->behavior = BEH_ISOLATED;
        else if (beh && !strcmp(beh, "Removed")) s->behavior = BEH_REMOVED;
        else { seterr(err, errlen, "pre_tokenizer Split: behavior '%s' is not supported (expected Isolated or Removed)", beh ? beh : "(none)"); return -1; }
        s->kind = STEP_SPLIT;
        s->re = compile_re(rx ? rx : lit, !rx, err, errlen, "pre_tokenizer Split");
        if (!s->re) return -1;
    } else if (!strcmp(type, "ByteLevel")) {
        s->kind = STEP_BYTELEVEL;
        s->prefix_space = json_bool(p, "add_prefix_space", 1);
        if (json_bool(p, "use_regex", 1)) {
            s->re = compile_re(GPT2_RE, 0, err, errlen, "pre_tokenizer ByteLevel");
            if (!s->re) return -1;
        }
    } else {
        seterr(err, errlen, "pre_tokenizer type '%s' is not supported (expected Split, ByteLevel or a Sequence of them)", type);
        return -1;
    }
    b->n_steps++;
    return 0;
}

static int set_normalizer(lp_bpe *b, const cJSON *n, char *err, size_t errlen) {
    if (!n || cJSON_IsNull(n)) return 0;
    const char *type = json_str(n, "type");
    if (type && !strcmp(type, "NFC")) { b->nfc = 1; return 0; }
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *e, *arr = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        cJSON_ArrayForEach(e, arr) if (set_normalizer(b, e, err, errlen) < 0) return -1;
        return 0;
    }
    seterr(err, errlen, "normalizer type '%s' is not supported (expected null or NFC)", type ? type : "(none)");
    return -1;
}

/* The BOS the post-processor puts first: a TemplateProcessing (alone or in a Sequence) whose single
 * template starts with a SpecialToken. -1 when none. */
static int template_bos(const lp_bpe *b, const cJSON *pp) {
    if (!pp || cJSON_IsNull(pp)) return -1;
    const char *type = json_str(pp, "type");
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(pp, "processors")) {
            int id = template_bos(b, e);
            if (id >= 0) return id;
        }
        return -1;
    }
    if (!type || strcmp(type, "TemplateProcessing")) return -1;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *first = cJSON_IsArray(single) ? single->child : NULL;
    const cJSON *sp = first ? cJSON_GetObjectItemCaseSensitive(first, "SpecialToken") : NULL;
    const char *name = sp ? json_str(sp, "id") : NULL;
    if (!name) return -1;
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pp, "special_tokens"), name);
    const cJSON *ids = def ? cJSON_GetObjectItemCaseSensitive(def, "ids") : NULL;
    if (cJSON_IsArray(ids) && cJSON_IsNumber(ids->child)) return (int)ids->child->valuedouble;
    return find_token(b, name);
}

static int cmp_added(const void *x, const void *y) {
    const added_tok *a = x, *c = y;
    unsigned char fa = (unsigned char)a->text[0], fc = (unsigned char)c->text[0];
    if (fa != fc) return fa < fc ? -1 : 1;
    if (a->len != c->len) return a->len > c->len ? -1 : 1; /* longest first */
    return a->id - c->id;
}

static int load_model(lp_bpe *b, const cJSON *root, char *err, size_t errlen) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = json_str(model, "type");
    if (!type || strcmp(type, "BPE")) {
        seterr(err, errlen, "model.type is '%s' (expected BPE)", type ? type : "(none)");
        return -1;
    }
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(model, "dropout")) && !cJSON_IsNull(v) && v->valuedouble != 0) {
        seterr(err, errlen, "model.dropout is set (BPE dropout is not supported)"); return -1;
    }
    if (json_bool(model, "byte_fallback", 0)) {
        seterr(err, errlen, "model.byte_fallback = true is not supported (expected a byte-level BPE)"); return -1;
    }
    const char *pre = json_str(model, "continuing_subword_prefix"), *suf = json_str(model, "end_of_word_suffix");
    if ((pre && *pre) || (suf && *suf)) {
        seterr(err, errlen, "model.continuing_subword_prefix / end_of_word_suffix are not supported"); return -1;
    }
    b->ignore_merges = json_bool(model, "ignore_merges", 0);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(vocab)) { seterr(err, errlen, "model.vocab: expected an object"); return -1; }
    if (!cJSON_IsArray(merges)) { seterr(err, errlen, "model.merges: expected an array"); return -1; }

    int max_id = -1, n_vocab = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 16777216) {
            seterr(err, errlen, "model.vocab[\"%s\"]: expected a non-negative id", e->string); return -1;
        }
        if ((int)e->valuedouble > max_id) max_id = (int)e->valuedouble;
        n_vocab++;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 16777216 || !json_str(e, "content")) {
            seterr(err, errlen, "added_tokens: expected {\"id\": N, \"content\": \"...\"} entries"); return -1;
        }
        if ((int)id->valuedouble > max_id) max_id = (int)id->valuedouble;
        b->n_added++;
    }
    b->n_ids = max_id + 1;
    b->piece = calloc((size_t)b->n_ids, sizeof *b->piece);
    b->raw = calloc((size_t)b->n_ids, sizeof *b->raw);
    b->raw_len = calloc((size_t)b->n_ids, sizeof *b->raw_len);
    b->added_kind = calloc((size_t)b->n_ids, 1);
    b->vmask = table_size((size_t)n_vocab) - 1;
    b->vmap = calloc(b->vmask + 1, sizeof *b->vmap);
    b->added = calloc((size_t)b->n_added + 1, sizeof *b->added);
    if (!b->piece || !b->raw || !b->raw_len || !b->added_kind || !b->vmap || !b->added) goto oom;

    int cp_to_byte[324];
    byte_alphabet(cp_to_byte);
    for (int c = 0; c < 256; c++) b->byte_id[c] = -1;
    cJSON_ArrayForEach(e, vocab) {
        int id = (int)e->valuedouble;
        size_t n = strlen(e->string);
        if (!(b->piece[id] = strdup(e->string)) || !(b->raw[id] = malloc(n + 1))) goto oom;
        long k = bytelevel_to_raw(e->string, cp_to_byte, b->raw[id]);
        if (k <= 0) { free(b->raw[id]); b->raw[id] = NULL; continue; } /* not a byte-level token */
        b->raw_len[id] = (uint32_t)k;
        vocab_insert(b, id);
        if (k == 1 && b->byte_id[b->raw[id][0]] < 0) b->byte_id[b->raw[id][0]] = id;
    }
    int na = 0;
    cJSON_ArrayForEach(e, added) {
        added_tok *a = &b->added[na++];
        a->id = (int)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        if (!(a->text = strdup(json_str(e, "content")))) goto oom;
        a->len = strlen(a->text);
        a->special = json_bool(e, "special", 0);
        a->lstrip = json_bool(e, "lstrip", 0);
        a->rstrip = json_bool(e, "rstrip", 0);
        a->single_word = json_bool(e, "single_word", 0);
        b->added_kind[a->id] = a->special ? 2 : 1;
        if (!b->piece[a->id] && !(b->piece[a->id] = strdup(a->text))) goto oom;
        if (a->len == 0) { seterr(err, errlen, "added_tokens: token %d has empty content", a->id); return -1; }
    }
    qsort(b->added, (size_t)b->n_added, sizeof *b->added, cmp_added);
    for (int c = 0; c < 256; c++) b->added_lo[c] = b->added_hi[c] = 0;
    for (int i = b->n_added - 1; i >= 0; i--) b->added_lo[(unsigned char)b->added[i].text[0]] = i;
    for (int i = 0; i < b->n_added; i++) b->added_hi[(unsigned char)b->added[i].text[0]] = i + 1;

    /* merges: "a b" strings (older files) or ["a", "b"] pairs */
    size_t n_merges = (size_t)cJSON_GetArraySize(merges);
    b->mmask = table_size(n_merges) - 1;
    b->mkey = malloc((b->mmask + 1) * sizeof *b->mkey);
    b->mrank = malloc((b->mmask + 1) * sizeof *b->mrank);
    b->mnew = malloc((b->mmask + 1) * sizeof *b->mnew);
    if (!b->mkey || !b->mrank || !b->mnew) goto oom;
    memset(b->mkey, 0xff, (b->mmask + 1) * sizeof *b->mkey);
    uint32_t rank = 0;
    unsigned char *buf = NULL;
    size_t bufcap = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *l = NULL, *r = NULL;
        char *tmp = NULL;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ')) {
                if (!(tmp = strdup(e->valuestring))) goto oom;
                tmp[sp - e->valuestring] = 0;
                l = tmp;
                r = tmp + (sp - e->valuestring) + 1;
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next)) {
            l = e->child->valuestring;
            r = e->child->next->valuestring;
        }
        if (!l) { free(buf); seterr(err, errlen, "model.merges[%u]: expected \"a b\" or [\"a\", \"b\"]", rank); return -1; }
        int li, ri;
        /* vocabulary lookups by spelling: via the raw bytes, which are unique per token */
        size_t ll = strlen(l), rl = strlen(r);
        if (ll + rl + 1 > bufcap) {
            bufcap = 2 * (ll + rl + 1);
            unsigned char *nb = realloc(buf, bufcap);
            if (!nb) { free(tmp); free(buf); goto oom; }
            buf = nb;
        }
        long lk = bytelevel_to_raw(l, cp_to_byte, buf), rk = lk > 0 ? bytelevel_to_raw(r, cp_to_byte, buf + lk) : -1;
        li = lk > 0 ? vocab_find(b, buf, (size_t)lk) : -1;
        ri = rk > 0 ? vocab_find(b, buf + lk, (size_t)rk) : -1;
        int ni = (li >= 0 && ri >= 0) ? vocab_find(b, buf, (size_t)(lk + rk)) : -1;
        if (li < 0 || ri < 0 || ni < 0) {
            seterr(err, errlen, "model.merges[%u] ('%s' '%s'): %s is not in the vocabulary", rank, l, r,
                   li < 0 ? "the left token" : ri < 0 ? "the right token" : "the merged token");
            free(tmp);
            free(buf);
            return -1;
        }
        free(tmp);
        uint64_t k = (uint64_t)(uint32_t)li << 32 | (uint32_t)ri;
        size_t i = mix64(k) & b->mmask;
        while (b->mkey[i] != UINT64_MAX && b->mkey[i] != k) i = (i + 1) & b->mmask;
        if (b->mkey[i] == UINT64_MAX) { /* a repeated pair keeps its first (best) rank */
            b->mkey[i] = k;
            b->mrank[i] = rank;
            b->mnew[i] = ni;
        }
        rank++;
    }
    free(buf);
    return 0;
oom:
    seterr(err, errlen, "out of memory loading the tokenizer");
    return -1;
}

lp_bpe *lp_bpe_load(const char *json, size_t json_len, const char *cfg, size_t cfg_len, char *err,
                    size_t errlen) {
    lp_bpe *b = calloc(1, sizeof *b);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, json_len, &end, 0), *conf = NULL;
    while (root && end < json + json_len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (!b || !root || end != json + json_len) {
        seterr(err, errlen, b ? "not a JSON object (JSONL or trailing text?)" : "out of memory");
        goto fail;
    }
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "model"))) {
        seterr(err, errlen, "no \"model\" object (not a Hugging Face tokenizer.json)");
        goto fail;
    }
    if (cfg && cfg_len && !(conf = cJSON_ParseWithLength(cfg, cfg_len))) {
        seterr(err, errlen, "tokenizer_config.json is not valid JSON");
        goto fail;
    }
    if (load_model(b, root, err, errlen) < 0) goto fail;
    if (set_normalizer(b, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err, errlen) < 0) goto fail;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!pt || cJSON_IsNull(pt) || add_pretok(b, pt, err, errlen) < 0) {
        if (!pt || cJSON_IsNull(pt)) seterr(err, errlen, "pre_tokenizer is null (expected ByteLevel: a byte-level BPE)");
        goto fail;
    }
    int has_bytelevel = 0;
    for (int i = 0; i < b->n_steps; i++) has_bytelevel |= b->steps[i].kind == STEP_BYTELEVEL;
    const char *dec = json_str(cJSON_GetObjectItemCaseSensitive(root, "decoder"), "type");
    if (!has_bytelevel || !dec || strcmp(dec, "ByteLevel")) {
        seterr(err, errlen, "not a byte-level BPE (expected a ByteLevel pre_tokenizer and decoder; got decoder '%s')",
               dec ? dec : "(none)");
        goto fail;
    }
    for (int c = 0; c < 256; c++)
        if (b->byte_id[c] < 0) {
            seterr(err, errlen, "model.vocab has no token for byte 0x%02X (a byte-level vocabulary has all 256)", c);
            goto fail;
        }
    const char *unk = json_str(cJSON_GetObjectItemCaseSensitive(root, "model"), "unk_token");
    b->unk = find_token(b, unk);

    /* BOS / EOS: see bpe.h */
    const cJSON *abt = conf ? cJSON_GetObjectItemCaseSensitive(conf, "add_bos_token") : NULL;
    int cfg_bos = find_token(b, conf ? config_token(conf, "bos_token") : NULL);
    int tmpl_bos = template_bos(b, cJSON_GetObjectItemCaseSensitive(root, "post_processor"));
    int bos = -1;
    if (cJSON_IsBool(abt)) bos = cJSON_IsTrue(abt) ? (cfg_bos >= 0 ? cfg_bos : tmpl_bos) : -1;
    else bos = tmpl_bos >= 0 ? tmpl_bos : cfg_bos;
    b->adds_bos = bos >= 0;
    int eot = find_token(b, "<|endoftext|>");
    b->bos = bos >= 0 ? bos : eot;
    int cfg_eos = find_token(b, conf ? config_token(conf, "eos_token") : NULL);
    b->eos = cfg_eos >= 0 ? cfg_eos : eot;
    cJSON_Delete(root);
    cJSON_Delete(conf);
    return b;
fail:
    cJSON_Delete(root);
    cJSON_Delete(conf);
    lp_bpe_free(b);
    return NULL;
}

void lp_bpe_free(lp_bpe *b) {
    if (!b) return;
    for (int i = 0; i < b->n_ids; i++) {
        free(b->piece[i]);
        free(b->raw[i]);
    }
    for (int i = 0; i < b->n_added; i++) free(b->added[i].text);
    for (int i = 0; i < b->n_steps; i++) pcre2_code_free(b->steps[i].re);
    free(b->piece);
    free(b->raw);
    free(b->raw_len);
    free(b->added_kind);
    free(b->vmap);
    free(b->added);
    free(b->mkey);
    free(b->mrank);
    free(b->mnew);
    free(b);
}

/* ---- encoding ----------------------------------------------------------------------------------- */

typedef struct { /* one symbol of a word being merged: a doubly linked list over the word's bytes */
    int id, prev, next, alive;
} sym;

typedef struct { /* a candidate merge: lowest rank first, then leftmost, as tokenizers' Word */
    uint64_t key; /* rank << 32 | pos */
    int new_id;
} cand;

typedef struct {
    const lp_bpe *b;
    int **ids;
    size_t *cap;
    long n;
    pcre2_match_data *md[MAX_STEPS];
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    sym *syms;
    cand *heap;
    size_t wcap; /* syms: wcap, heap: 3 * wcap */
    char *err;
    size_t errlen;
} enc_ctx;

static int emit(enc_ctx *c, int id) {
    if ((size_t)c->n == *c->cap || !*c->ids) {
        size_t ncap = *c->cap ? 2 * *c->cap : 256;
        int *p = realloc(*c->ids, ncap * sizeof *p);
        if (!p) { seterr(c->err, c->errlen, "out of memory encoding text"); return -1; }
        *c->ids = p;
        *c->cap = ncap;
    }
    (*c->ids)[c->n++] = id;
    return 0;
}

static void heap_push(cand *h, size_t *n, cand x) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h[p].key <= x.key) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static cand heap_pop(cand *h, size_t *n) {
    cand top = h[0], x = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < *n && h[l].key < x.key) m = l;
        if (l + 1 < *n && h[l + 1].key < (m == i ? x.key : h[m].key)) m = l + 1;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = x;
    return top;
}

static void push_pair(const lp_bpe *b, cand *h, size_t *nh, const sym *s, int pos) {
    long slot = merge_find(b, s[pos].id, s[s[pos].next].id);
    if (slot >= 0) heap_push(h, nh, (cand){(uint64_t)b->mrank[slot] << 32 | (uint32_t)pos, b->mnew[slot]});
}

/* One pre-tokenized piece (raw bytes) through the BPE model. */
static int bpe_piece(enc_ctx *c, const unsigned char *s, size_t n) {
    const lp_bpe *b = c->b;
    if (n == 0) return 0;
    if (n == 1) return emit(c, b->byte_id[s[0]]);
    if (b->ignore_merges) {
        int id = vocab_find(b, s, n);
        if (id >= 0) return emit(c, id);
    }
    if (n > c->wcap) {
        size_t nc = n > 2 * c->wcap ? n : 2 * c->wcap;
        sym *ns = realloc(c->syms, nc * sizeof *ns);
        if (ns) c->syms = ns;
        cand *nh = realloc(c->heap, 3 * nc * sizeof *nh);
        if (nh) c->heap = nh;
        if (!ns || !nh) { seterr(c->err, c->errlen, "out of memory encoding text"); return -1; }
        c->wcap = nc;
    }
    sym *y = c->syms;
    cand *h = c->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) y[i] = (sym){b->byte_id[s[i]], (int)i - 1, i + 1 < n ? (int)i + 1 : -1, 1};
    for (size_t i = 0; i + 1 < n; i++) push_pair(b, h, &nh, y, (int)i);
    while (nh) {
        cand t = heap_pop(h, &nh);
        int pos = (int)(uint32_t)t.key;
        if (!y[pos].alive || y[pos].next < 0) continue;
        int nx = y[pos].next;
        long slot = merge_find(b, y[pos].id, y[nx].id);
        if (slot < 0 || b->mnew[slot] != t.new_id) continue; /* stale: the pair changed since */
        y[pos].id = t.new_id;
        y[nx].alive = 0;
        y[pos].next = y[nx].next;
        if (y[pos].next >= 0) y[y[pos].next].prev = pos;
        if (y[pos].prev >= 0) push_pair(b, h, &nh, y, y[pos].prev);
        if (y[pos].next >= 0) push_pair(b, h, &nh, y, pos);
    }
    for (int i = 0; i >= 0; i = y[i].next)
        if (emit(c, y[i].id) < 0) return -1;
    return 0;
}

static int pretok(enc_ctx *c, int k, const char *s, size_t n);

/* Split s by the step's regex: matches and the stretches between them (Isolated), or only the
 * stretches (Removed), each passed on to step k + 1. */
static int split_re(enc_ctx *c, int k, const step *st, const char *s, size_t n) {
    size_t at = 0, last = 0;
    while (at <= n) {
        int rc = pcre2_match(st->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, c->md[k], c->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            seterr(c->err, c->errlen, "pre-tokenizer regex failed: %s", msg);
            return -1;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md[k]);
        size_t ms = ov[0], me = ov[1];
        if (me == ms) { /* an empty match splits nothing: step over one character */
            if (ms >= n) break;
            at = ms + 1;
            while (at < n && ((unsigned char)s[at] & 0xC0) == 0x80) at++;
            continue;
        }
        if (ms > last && pretok(c, k + 1, s + last, ms - last) < 0) return -1;
        if (st->behavior == BEH_ISOLATED && pretok(c, k + 1, s + ms, me - ms) < 0) return -1;
        last = at = me;
    }
    if (n > last) return pretok(c, k + 1, s + last, n - last);
    return 0;
}

static int pretok(enc_ctx *c, int k, const char *s, size_t n) {
    if (n == 0) return 0;
    if (k == c->b->n_steps) return bpe_piece(c, (const unsigned char *)s, n);
    const step *st = &c->b->steps[k];
    if (st->kind == STEP_BYTELEVEL && st->prefix_space && s[0] != ' ') {
        char *t = malloc(n + 1);
        if (!t) { seterr(c->err, c->errlen, "out of memory encoding text"); return -1; }
        t[0] = ' ';
        memcpy(t + 1, s, n);
        int rc = st->re ? split_re(c, k, st, t, n + 1) : pretok(c, k + 1, t, n + 1);
        free(t);
        return rc;
    }
    if (st->re) return split_re(c, k, st, s, n);
    return pretok(c, k + 1, s, n);
}

/* A stretch of text between added tokens: normalize, then pre-tokenize and merge. */
static int encode_stretch(enc_ctx *c, const char *s, size_t n) {
    if (n == 0) return 0;
    if (c->b->nfc) {
        size_t i = 0;
        while (i < n && (unsigned char)s[i] < 0x80) i++;
        if (i < n) { /* ASCII is its own NFC; anything else goes through utf8proc */
            utf8proc_uint8_t *out = NULL;
            utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out,
                                              UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (m < 0) {
                seterr(c->err, c->errlen, "NFC normalization failed: %s", utf8proc_errmsg(m));
                return -1;
            }
            int rc = pretok(c, 0, (const char *)out, (size_t)m);
            free(out);
            return rc;
        }
    }
    return pretok(c, 0, s, n);
}

static int is_word_byte(unsigned char ch) { return ch >= 0x80 || ch == '_' || (ch >= '0' && ch <= '9') || ((ch | 32) >= 'a' && (ch | 32) <= 'z'); }
static int is_space_byte(unsigned char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); }

long lp_bpe_encode(const lp_bpe *b, const char *text, size_t len, int **ids, size_t *cap, char *err,
                   size_t errlen) {
    long bad = lp_utf8_invalid_at(text, len);
    if (bad >= 0) {
        seterr(err, errlen, "invalid UTF-8 at byte %ld (byte 0x%02X): the tokenizer takes UTF-8 text only", bad,
               (unsigned char)text[bad]);
        return -1;
    }
    enc_ctx c = {.b = b, .ids = ids, .cap = cap, .err = err, .errlen = errlen};
    long rc = -1;
    /* a long run of one class (whitespace, digits) can outgrow the JIT's default 32 KiB stack */
    c.mctx = pcre2_match_context_create(NULL);
    c.jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!c.mctx || !c.jstack) goto oom;
    pcre2_jit_stack_assign(c.mctx, NULL, c.jstack);
    for (int k = 0; k < b->n_steps; k++)
        if (b->steps[k].re && !(c.md[k] = pcre2_match_data_create_from_pattern(b->steps[k].re, NULL))) goto oom;

    size_t start = 0, i = 0;
    while (i < len) {
        unsigned char ch = (unsigned char)text[i];
        const added_tok *hit = NULL;
        for (int a = b->added_lo[ch]; a < b->added_hi[ch]; a++) {
            const added_tok *t = &b->added[a];
            if (t->len > len - i || memcmp(text + i, t->text, t->len)) continue;
            if (t->single_word && ((i > 0 && is_word_byte((unsigned char)text[i - 1])) ||
                                   (i + t->len < len && is_word_byte((unsigned char)text[i + t->len]))))
                continue;
            hit = t; /* longest first */
            break;
        }
        if (!hit) { i++; continue; }
        size_t end = i, next = i + hit->len;
        if (hit->lstrip) while (end > start && is_space_byte((unsigned char)text[end - 1])) end--;
        if (hit->rstrip) while (next < len && is_space_byte((unsigned char)text[next])) next++;
        if (encode_stretch(&c, text + start, end - start) < 0 || emit(&c, hit->id) < 0) goto done;
        start = i = next;
    }
    if (encode_stretch(&c, text + start, len - start) < 0) goto done;
    rc = c.n;
    goto done;
oom:
    seterr(err, errlen, "out of memory encoding text");
done:
    for (int k = 0; k < b->n_steps; k++) pcre2_match_data_free(c.md[k]);
    pcre2_match_context_free(c.mctx);
    pcre2_jit_stack_free(c.jstack);
    free(c.syms);
    free(c.heap);
    return rc;
}

/* ---- decoding and queries ----------------------------------------------------------------------- */

char *lp_bpe_decode(const lp_bpe *b, const int *ids, size_t n, size_t *out_len, char *err, size_t errlen) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= b->n_ids || !b->piece[id]) {
            seterr(err, errlen, "token id %d out of range [0, %d)", id, b->n_ids);
            return NULL;
        }
        if (b->added_kind[id] == 2) continue;
        total += b->added_kind[id] || !b->raw[id] ? strlen(b->piece[id]) : b->raw_len[id];
    }
    char *out = malloc(total + 1), *p = out;
    if (!out) { seterr(err, errlen, "out of memory decoding ids"); return NULL; }
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (b->added_kind[id] == 2) continue;
        if (b->added_kind[id] || !b->raw[id]) {
            size_t k = strlen(b->piece[id]);
            memcpy(p, b->piece[id], k);
            p += k;
        } else {
            memcpy(p, b->raw[id], b->raw_len[id]);
            p += b->raw_len[id];
        }
    }
    *p = 0;
    if (out_len) *out_len = total;
    return out;
}

int lp_bpe_vocab_size(const lp_bpe *b) { return b->n_ids; }
int lp_bpe_adds_bos(const lp_bpe *b) { return b->adds_bos; }
int lp_bpe_bos_id(const lp_bpe *b) { return b->bos; }
int lp_bpe_eos_id(const lp_bpe *b) { return b->eos; }
int lp_bpe_unk_id(const lp_bpe *b) { return b->unk; }
const char *lp_bpe_piece(const lp_bpe *b, int id) { return id >= 0 && id < b->n_ids ? b->piece[id] : NULL; }
