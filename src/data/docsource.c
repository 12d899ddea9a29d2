/* docsource.c - input files and the synthetic generator as batches of records (docsource.h). */
#include "llamapro/docsource.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llamapro/check.h"
#include "llamapro/instream.h"
#include "llamapro/rng.h"

struct lp_docsrc {
    /* files */
    char *const *paths;
    int n_files, cur;       /* cur: file being read, n_files when done */
    lp_in *gz;              /* plain, gzip or zstd (instream.h) */
    char *rbuf;             /* read-ahead of the current file for lines (see read_line) */
    size_t rpos, rlen;
    uint64_t line, recs_in_file;
    double bytes_total, bytes_done; /* on-disk sizes, for progress */
    /* synthetic */
    int synthetic;
    uint64_t n_docs, next_doc, seed;
};

static int is_jsonl(const char *path) {
    size_t n = strlen(path);
    const char *ext[] = {".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".jsonl.zst", ".ndjson.zst"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t m = strlen(ext[i]);
        if (n >= m && strcmp(path + n - m, ext[i]) == 0) return 1;
    }
    return 0;
}

lp_docsrc *lp_docsrc_open_files(char *const *paths, int n) {
    lp_docsrc *s = lp_calloc(1, sizeof *s, "allocating the input reader");
    s->paths = paths;
    s->n_files = n;
    s->cur = -1;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0) s->bytes_total += (double)st.st_size;
    }
    return s;
}

lp_docsrc *lp_docsrc_open_synthetic(const char *kind, uint64_t n_docs, uint64_t seed) {
    if (strcmp(kind, "arithmetic") != 0) return NULL;
    lp_docsrc *s = lp_calloc(1, sizeof *s, "allocating the synthetic generator");
    s->synthetic = 1;
    s->n_docs = n_docs;
    s->seed = seed;
    return s;
}

void lp_docsrc_close(lp_docsrc *s) {
    if (!s) return;
    if (s->gz) lp_in_close(s->gz);
    free(s->rbuf);
    lp_free(s);
}

void lp_batch_free(lp_batch *b) {
    free(b->data);
    free(b->recs);
    memset(b, 0, sizeof *b);
}

static void batch_reserve(lp_batch *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + extra) cap *= 2;
    char *p = realloc(b->data, cap);
    LP_CHECK_SYS(p != NULL, "growing the input batch buffer");
    b->data = p;
    b->cap = cap;
}

static lp_record *batch_add(lp_batch *b) {
    if (b->n == b->ncap) {
        size_t ncap = b->ncap ? 2 * b->ncap : 1024;
        lp_record *p = realloc(b->recs, ncap * sizeof *p);
        LP_CHECK_SYS(p != NULL, "growing the input batch index");
        b->recs = p;
        b->ncap = ncap;
    }
    lp_record *r = &b->recs[b->n++];
    memset(r, 0, sizeof *r);
    r->off = b->len;
    return r;
}

static double file_progress(const lp_docsrc *s) {
    double done = s->bytes_done;
    if (s->gz) {
        long long o = lp_in_offset(s->gz);
        if (o > 0) done += (double)o;
    }
    return done;
}

double lp_docsrc_progress(const lp_docsrc *s) {
    if (s->synthetic) return s->n_docs ? (double)s->next_doc / (double)s->n_docs : 1.0;
    if (s->cur >= s->n_files) return 1.0;
    return s->bytes_total > 0 ? file_progress(s) / s->bytes_total : 0.0;
}

#define LP_READ_AHEAD (1u << 18)

/* Append one line (without its newline) of s->gz to the batch. 1: got a line, 0: end of file,
 * -1: read error (a truncated or corrupt gzip file included). Reads blocks with gzread and splits
 * them with memchr, so a NUL byte inside a line is kept (and reported by the caller) instead of
 * silently ending the line as gzgets would. */
static int read_line(lp_docsrc *s, lp_batch *b, size_t *len) {
    size_t start = b->len;
    int any = 0;
    for (;;) {
        if (s->rpos == s->rlen) {
            if (!s->rbuf) {
                s->rbuf = malloc(LP_READ_AHEAD);
                LP_CHECK_SYS(s->rbuf != NULL, "allocating the input read-ahead");
            }
            int got = lp_in_read(s->gz, s->rbuf, LP_READ_AHEAD);
            /* data before an error is used; the error (Z_BUF_ERROR: truncated gzip; a zstd file
             * ending inside a frame) comes with the next read, which returns nothing */
            if (got < 0 || (got == 0 && lp_in_error(s->gz))) return -1;
            s->rpos = 0;
            s->rlen = (size_t)got;
            if (got == 0) {
                if (!any) return 0;
                break; /* last line without a newline */
            }
        }
        any = 1;
        const char *p = s->rbuf + s->rpos, *nl = memchr(p, '\n', s->rlen - s->rpos);
        size_t n = nl ? (size_t)(nl - p) : s->rlen - s->rpos;
        batch_reserve(b, n + 1);
        memcpy(b->data + b->len, p, n);
        b->len += n;
        s->rpos += n + (nl ? 1 : 0);
        if (nl) break;
    }
    *len = b->len - start;
    return 1;
}

static long long pow10_ll(int d) {
    long long p = 1;
    while (d-- > 0) p *= 10;
    return p;
}

static long next_synthetic(lp_docsrc *s, lp_batch *b, size_t max_bytes) {
    b->len = b->n = 0;
    while (s->next_doc < s->n_docs && (b->len < max_bytes || b->n == 0)) {
        uint64_t i = s->next_doc++;
        lp_rng r;
        lp_rng_seed(&r, lp_rng_mix(s->seed, i, 0x61726974 /* "arit" */));
        long long x[2];
        for (int k = 0; k < 2; k++) {
            int digits = 1 + (int)lp_rng_below(&r, 4);
            long long lo = digits == 1 ? 0 : pow10_ll(digits - 1);
            long long hi = pow10_ll(digits) - 1;
            x[k] = lo + (long long)lp_rng_below(&r, (uint64_t)(hi - lo + 1));
        }
        int op = (int)lp_rng_below(&r, 3);
        const char ops[] = "+-*";
        long long res = op == 0 ? x[0] + x[1] : op == 1 ? x[0] - x[1] : x[0] * x[1];
        batch_reserve(b, 64);
        lp_record *rec = batch_add(b);
        int n = snprintf(b->data + b->len, 64, "Q: %lld%c%lld=? A: %lld", x[0], ops[op], x[1], res);
        rec->len = (size_t)n;
        rec->file = -1;
        rec->kind = LP_REC_TEXT;
        rec->line = i + 1;
        b->len += (size_t)n;
    }
    return (long)b->n;
}

/* Open file s->cur; -1 with a message when it cannot be opened. */
static int open_current(lp_docsrc *s, char *err, size_t errlen) {
    s->gz = lp_in_open(s->paths[s->cur]);
    if (!s->gz) {
        snprintf(err, errlen, "%s: cannot open (%s)", s->paths[s->cur],
                 errno ? strerror(errno) : "out of memory");
        return -1;
    }
    s->rpos = s->rlen = 0;
    s->line = 0;
    s->recs_in_file = 0;
    return 0;
}

static int close_current(lp_docsrc *s, char *err, size_t errlen) {
    struct stat st;
    if (stat(s->paths[s->cur], &st) == 0) s->bytes_done += (double)st.st_size;
    lp_in_close(s->gz);
    s->gz = NULL;
    if (s->recs_in_file == 0) {
        snprintf(err, errlen, "%s: no documents (expected %s)", s->paths[s->cur],
                 is_jsonl(s->paths[s->cur]) ? "JSON lines, one object with the text per line"
                                            : "a non-empty text file");
        return -1;
    }
    return 0;
}

static int all_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') return 0;
    return 1;
}

long lp_docsrc_next(lp_docsrc *s, lp_batch *b, size_t max_bytes, char *err, size_t errlen) {
    if (s->synthetic) return next_synthetic(s, b, max_bytes);
    b->len = b->n = 0;
    while (b->len < max_bytes || b->n == 0) {
        if (!s->gz) {
            if (s->cur + 1 >= s->n_files) {
                s->cur = s->n_files;
                break;
            }
            s->cur++;
            errno = 0;
            if (open_current(s, err, errlen) < 0) return -1;
        }
        const char *path = s->paths[s->cur];
        if (is_jsonl(path)) {
            size_t start = b->len, len = 0;
            errno = 0;
            int rc = read_line(s, b, &len);
            if (rc < 0) {
                snprintf(err, errlen, "%s:%" PRIu64 ": cannot read (%s%s)", path, s->line + 1, lp_in_error(s->gz),
                         lp_in_is_zstd(path) ? "" : ": truncated or damaged");
                return -1;
            }
            if (rc == 0) {
                if (close_current(s, err, errlen) < 0) return -1;
                continue;
            }
            s->line++;
            if (all_blank(b->data + start, len)) {
                b->len = start;
                continue;
            }
            lp_record *r = batch_add(b);
            r->off = start;
            r->len = len;
            r->file = s->cur;
            r->kind = LP_REC_JSONL;
            r->line = s->line;
            s->recs_in_file++;
        } else {
            /* A whole file is one document. */
            size_t start = b->len;
            for (;;) {
                batch_reserve(b, 1 << 20);
                int got = lp_in_read(s->gz, b->data + b->len, (unsigned)(b->cap - b->len > (1u << 30) ? (1u << 30) : b->cap - b->len));
                if (got < 0) {
                    snprintf(err, errlen, "%s: cannot read (%s)", path, lp_in_error(s->gz));
                    return -1;
                }
                if (got == 0) {
                    /* gzread ends a truncated gzip stream with 0 and leaves Z_BUF_ERROR behind */
                    const char *m = lp_in_error(s->gz);
                    if (m) {
                        snprintf(err, errlen, "%s: cannot read (%s%s)", path, m,
                                 lp_in_is_zstd(path) ? "" : ": the gzip file is truncated or damaged");
                        return -1;
                    }
                    break;
                }
                b->len += (size_t)got;
            }
            if (b->len > start) {
                lp_record *r = batch_add(b);
                r->off = start;
                r->len = b->len - start;
                r->file = s->cur;
                r->kind = LP_REC_TEXT;
                s->recs_in_file++;
            }
            if (close_current(s, err, errlen) < 0) return -1;
        }
    }
    return (long)b->n;
}

long lp_utf8_invalid_at(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return (long)i;
        if (i + (size_t)len > n) return (long)i;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += (size_t)len;
    }
    return -1;
}

/* Where the record is, for messages: "FILE:LINE" or "FILE". */
static void where(const lp_docsrc *s, const lp_record *r, char *out, size_t n) {
    if (r->file < 0) snprintf(out, n, "synthetic document %" PRIu64, r->line);
    else if (r->kind == LP_REC_JSONL) snprintf(out, n, "%s:%" PRIu64, s->paths[r->file], r->line);
    else snprintf(out, n, "%s", s->paths[r->file]);
}

int lp_record_text(const lp_docsrc *s, const lp_batch *b, size_t i, const char *text_key,
                   const char **text, size_t *len, char **owned, char *err, size_t errlen) {
    const lp_record *r = &b->recs[i];
    const char *p = b->data + r->off;
    char loc[4200];
    where(s, r, loc, sizeof loc);
    *owned = NULL;
    if (r->kind == LP_REC_TEXT) {
        long bad = lp_utf8_invalid_at(p, r->len);
        if (bad >= 0) {
            uint64_t line = 1;
            for (long k = 0; k < bad; k++) line += p[k] == '\n';
            snprintf(err, errlen, "%s:%" PRIu64 ": invalid UTF-8 at byte %ld of the file (expected UTF-8 text)",
                     loc, line, bad);
            return -1;
        }
        *text = p;
        *len = r->len;
        return 0;
    }
    const void *nul = memchr(p, 0, r->len);
    if (nul) {
        snprintf(err, errlen, "%s: NUL byte at column %zu (expected one JSON object per line)", loc,
                 (size_t)((const char *)nul - p) + 1);
        return -1;
    }
    /* an escaped NUL (\u0000) would end cJSON's C string early and silently cut the document */
    for (size_t i = 0, bs = 0; i < r->len; i++) {
        if (p[i] == '\\' && bs % 2 == 0 && r->len - i >= 6 && !memcmp(p + i, "\\u0000", 6)) {
            snprintf(err, errlen, "%s: \\u0000 (a NUL character) at column %zu (expected text without NUL characters)",
                     loc, i + 1);
            return -1;
        }
        bs = p[i] == '\\' ? bs + 1 : 0; /* backslashes in a row before p[i + 1] */
    }
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(p, r->len, &end, 0);
    if (obj && end && !all_blank(end, r->len - (size_t)(end - p))) {
        while (*end == ' ' || *end == '\t') end++;
        snprintf(err, errlen, "%s: data after the JSON object at column %zu (expected one JSON object per line)", loc,
                 (size_t)(end - p) + 1);
        cJSON_Delete(obj);
        return -1;
    }
    if (!obj || !cJSON_IsObject(obj)) {
        snprintf(err, errlen, "%s: invalid JSON (expected one JSON object per line)", loc);
        cJSON_Delete(obj);
        return -1;
    }
    cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, text_key);
    if (!t || !cJSON_IsString(t)) {
        snprintf(err, errlen, "%s: %s string field \"%s\" (expected the document text there; "
                 "choose the field with --text-key)", loc, t ? "not a" : "no", text_key);
        cJSON_Delete(obj);
        return -1;
    }
    size_t n = strlen(t->valuestring);
    long bad = lp_utf8_invalid_at(t->valuestring, n);
    if (bad >= 0) {
        snprintf(err, errlen, "%s: invalid UTF-8 in field \"%s\" at byte %ld (expected UTF-8 text)",
                 loc, text_key, bad);
        cJSON_Delete(obj);
        return -1;
    }
    /* Keep the string, drop the tree: detach the value so cJSON_Delete does not free it. */
    *owned = t->valuestring;
    t->valuestring = NULL;
    cJSON_Delete(obj);
    *text = *owned;
    *len = n;
    return 0;
}
