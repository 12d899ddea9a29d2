/* run_config.c - INI run configuration with inih (see run_config.h).
 *
 * One table maps every "section.key" to a field and a type, so the file reader, the command-line
 * overrides and the error messages share one definition of what a key is.
 */
#include "llamapro/run_config.h"

#include <errno.h>
#include <sys/types.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/mixture.h"
#include "llamapro/checkpoint.h"

typedef enum { T_STR, T_INT, T_U64, T_DBL, T_FLT, T_BOOL, T_VALS } kind;

typedef struct {
    const char *section, *key;
    kind type;
    size_t off;
    size_t size;       /* for strings */
    double lo, hi;     /* accepted range for numbers */
    const char *choices; /* "a|b|c" for enumerated strings */
} field;

#define S(sec, k, f, ch) {sec, k, T_STR, offsetof(lp_run_config, f), sizeof(((lp_run_config *)0)->f), 0, 0, ch}
#define I(sec, k, f, lo, hi) {sec, k, T_INT, offsetof(lp_run_config, f), 0, lo, hi, NULL}
#define D(sec, k, f, lo, hi) {sec, k, T_DBL, offsetof(lp_run_config, f), 0, lo, hi, NULL}
#define SH(k, f, t, lo, hi) {"model", k, t, offsetof(lp_run_config, shape.f), 0, lo, hi, NULL}

static const field fields[] = {
    S("model", "path", model_path, NULL),
    SH("dim", dim, T_INT, 1, 1 << 20), SH("hidden_dim", hidden_dim, T_INT, 1, 1 << 22),
    SH("n_layers", n_layers, T_INT, 1, 4096), SH("n_heads", n_heads, T_INT, 1, 4096),
    SH("n_kv_heads", n_kv_heads, T_INT, 1, 4096), SH("vocab_size", vocab_size, T_INT, 2, 1 << 24),
    SH("max_seq_len", max_seq_len, T_INT, 1, 1 << 20), SH("norm_eps", norm_eps, T_FLT, 1e-12, 1),
    SH("rope_theta", rope_theta, T_FLT, 1, 1e9), SH("tie_embeddings", tie_embeddings, T_BOOL, 0, 1),
    S("method", "name", method, "llama-pro|full|pretrain"),
    S("method", "unfreeze", unfreeze, NULL),
    S("data", "train", train_path, NULL),
    S("data", "replay", replay, NULL),
    {"data", "val", T_VALS, 0, 0, 0, 0, NULL},
    I("data", "seq_len", seq_len, 1, 1 << 20),
    I("batch", "micro_batch", micro_batch, 1, 1 << 20),
    I("batch", "microbatches", microbatches, 1, 1 << 20),
    I("batch", "steps", steps, 0, 1e9),
    D("optim", "lr", lr, -1e9, 1e9), D("optim", "min_lr", min_lr, 0, 1e9),
    I("optim", "warmup_steps", warmup_steps, 0, 1e9),
    S("optim", "schedule", schedule, "cosine|constant"),
    D("optim", "beta1", beta1, 0, 0.999999), D("optim", "beta2", beta2, 0, 0.9999999),
    D("optim", "eps", eps, 0, 1), D("optim", "weight_decay", weight_decay, 0, 10),
    D("optim", "clip", clip, 0, 1e9),
    I("parallel", "pp", pp, 1, 4096),
    I("parallel", "tp", tp, 1, 4096),
    S("parallel", "schedule", pp_schedule, "1f1b|gpipe"),
    S("parallel", "partition", partition, NULL),
    S("run", "dir", dir, NULL),
    {"run", "seed", T_U64, offsetof(lp_run_config, seed), 0, 0, 0, NULL},
    I("run", "eval_every", eval_every, 0, 1e9), I("run", "eval_tokens", eval_tokens, 0, 2e9),
    I("run", "ckpt_every", ckpt_every, 0, 1e9), I("run", "keep_last", keep_last, 1, 1e6),
    S("run", "resume", resume, "auto|never"),
    D("run", "max_minutes", max_minutes, 0, 1e9),
    S("run", "precision", precision, "fp32|bf16"),
};

void lp_run_config_defaults(lp_run_config *rc) {
    memset(rc, 0, sizeof *rc);
    rc->shape = (lp_config){.norm_eps = 1e-5f, .rope_theta = 10000.0f, .max_seq_len = 256};
    snprintf(rc->method, sizeof rc->method, "llama-pro");
    snprintf(rc->train_split, sizeof rc->train_split, "train");
    rc->seq_len = 256;
    rc->micro_batch = 4;
    rc->microbatches = 8;
    rc->steps = 1000;
    rc->lr = 2e-4;
    rc->min_lr = 2e-5;
    rc->warmup_steps = 60;
    snprintf(rc->schedule, sizeof rc->schedule, "cosine");
    rc->beta1 = 0.9;
    rc->beta2 = 0.95;
    rc->eps = 1e-8;
    rc->weight_decay = 0.1;
    rc->clip = 1.0;
    rc->pp = 1;
    rc->tp = 1;
    snprintf(rc->pp_schedule, sizeof rc->pp_schedule, "1f1b");
    snprintf(rc->dir, sizeof rc->dir, "run");
    rc->seed = 1;
    rc->eval_every = 100;
    rc->eval_tokens = 65536;
    rc->ckpt_every = 200;
    rc->keep_last = 3;
    snprintf(rc->resume, sizeof rc->resume, "auto");
    snprintf(rc->precision, sizeof rc->precision, "fp32");
}

static const field *find(const char *section, const char *key) {
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (!strcmp(fields[i].section, section) && !strcmp(fields[i].key, key)) return &fields[i];
    return NULL;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) *--e = 0;
    return s;
}

/* "name:path[:split], ..." -> val sets. */
static int parse_vals(lp_run_config *rc, const char *value, char *why, size_t n) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", value);
    rc->n_val = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (!*item) continue;
        if (rc->n_val >= LP_MAX_VAL_SETS) {
            snprintf(why, n, "at most %d validation sets", LP_MAX_VAL_SETS);
            return -1;
        }
        lp_val_set *v = &rc->val[rc->n_val];
        char *c1 = strchr(item, ':');
        if (!c1 || c1 == item) {
            snprintf(why, n, "expected name:path[:split] entries, got '%s'", item);
            return -1;
        }
        *c1 = 0;
        char *path = c1 + 1, *c2 = strrchr(path, ':');
        snprintf(v->split, sizeof v->split, "val");
        if (c2) {
            *c2 = 0;
            snprintf(v->split, sizeof v->split, "%s", c2 + 1);
        }
        snprintf(v->name, sizeof v->name, "%s", trim(item));
        snprintf(v->path, sizeof v->path, "%s", trim(path));
        rc->n_val++;
    }
    return 0;
}

/* Set one field; on failure writes why into `why` and returns -1 (-2: unknown key). */
static int set_field(lp_run_config *rc, const char *section, const char *key, const char *value,
                     char *why, size_t n) {
    const field *f = find(section, key);
    if (!f) {
        snprintf(why, n, "unknown key [%s] %s", section, key);
        return -2;
    }
    char *p = (char *)rc + f->off, *end;
    errno = 0;
    switch (f->type) {
    case T_STR:
        if (strlen(value) >= f->size) {
            snprintf(why, n, "[%s] %s: value longer than %zu characters", section, key, f->size - 1);
            return -1;
        }
        if (f->choices) {
            char opts[128], *save = NULL;
            int ok = 0;
            snprintf(opts, sizeof opts, "%s", f->choices);
            for (char *o = strtok_r(opts, "|", &save); o; o = strtok_r(NULL, "|", &save)) ok |= !strcmp(o, value);
            if (!ok) {
                snprintf(why, n, "[%s] %s: '%s' is not one of %s", section, key, value, f->choices);
                return -1;
            }
        }
        snprintf(p, f->size, "%s", value);
        if (!strcmp(section, "data") && ((!strcmp(key, "train") && lp_mix_is_mixture(p)) || (!strcmp(key, "replay") && *p))) {
            lp_mix_source src[LP_MIX_MAX]; /* a mixture (mixture.h): checked here, opened by train */
            char w[512];
            if (lp_mix_parse(p, src, LP_MIX_MAX, w, sizeof w) >= 0) return 0;
            snprintf(why, n, "[data] %s: %.400s", key, w);
            return -1;
        }
        if (!strcmp(section, "data") && !strcmp(key, "train")) {
            /* "path[:split]" */
            char *colon = strrchr(p, ':');
            if (colon && !strchr(colon, '/')) {
                snprintf(rc->train_split, sizeof rc->train_split, "%s", colon + 1);
                *colon = 0;
            }
        }
        return 0;
    case T_INT: case T_BOOL: {
        long v = strtol(value, &end, 10);
        if (f->type == T_BOOL && (!strcmp(value, "true") || !strcmp(value, "false"))) v = value[0] == 't', end = (char *)"";
        if (errno || end == value || *trim(end) || v < f->lo || v > f->hi) {
            snprintf(why, n, "[%s] %s: expected an integer in [%g, %g], got '%s'", section, key, f->lo, f->hi, value);
            return -1;
        }
        *(int *)p = (int)v;
        return 0;
    }
    case T_U64: {
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *trim(end) || value[0] == '-') {
            snprintf(why, n, "[%s] %s: expected a non-negative integer, got '%s'", section, key, value);
            return -1;
        }
        *(unsigned long long *)p = v;
        return 0;
    }
    case T_DBL: case T_FLT: {
        double v = strtod(value, &end);
        if (errno || end == value || *trim(end) || !isfinite(v) || v < f->lo || v > f->hi) {
            snprintf(why, n, "[%s] %s: expected a number in [%g, %g], got '%s'", section, key, f->lo, f->hi, value);
            return -1;
        }
        if (f->type == T_DBL) *(double *)p = v;
        else *(float *)p = (float)v;
        return 0;
    }
    case T_VALS:
        return parse_vals(rc, value, why, n);
    }
    return -1;
}

static void append_text(lp_run_config *rc, const char *line) {
    size_t old = rc->text ? strlen(rc->text) : 0, add = strlen(line);
    char *t = realloc(rc->text, old + add + 2);
    LP_CHECK_SYS(t != NULL, "growing the run config text");
    memcpy(t + old, line, add);
    t[old + add] = '\n';
    t[old + add + 1] = 0;
    rc->text = t;
}

/* inih reads at most INI_MAX_LINE bytes of a line (200 in Debian's build, fixed when the library
 * was compiled) and silently parses the rest as a new line: a long comment could turn into a
 * setting, a long path would be cut. And inih reports a key set twice, or an indented line (its
 * multi-line continuation), as two ordinary assignments. So the file is read here first, line by
 * line at any length, and every line is classified: comments and blank lines reach inih as empty
 * lines (keeping line numbers), a duplicated key or a continuation line is an error naming the
 * lines, and a value too long for inih is replaced by a short placeholder that on_entry swaps back.
 * inih still does the parsing proper (sections, key = value, inline comments). */
#define LP_INI_LINE_MAX (INI_MAX_LINE - 2) /* room for the newline and terminator inih needs */

typedef struct {
    char section[64], key[64];
    int line;
} seen_key;

typedef struct {
    lp_run_config *rc;
    const char *path;
    char why[512];
    char **longval; /* values replaced by "\x01<index>" placeholders */
    int n_long;
} load_ctx;

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    load_ctx *c = user;
    if (value[0] == '\x01') value = c->longval[atoi(value + 1)];
    if (set_field(c->rc, section, name, value, c->why, sizeof c->why) != 0) {
        return 0; /* inih then returns this line's number */
    }
    return 1;
}

static void append_buf(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        char *p = realloc(*buf, *cap);
        LP_CHECK_SYS(p != NULL, "reading the run config");
        *buf = p;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[(*len)++] = '\n';
    (*buf)[*len] = 0;
}

/* The value part of "key = value ; comment" as inih would return it. */
static char *value_of(char *eq) {
    char *v = eq + 1;
    for (char *p = v; *p; p++)
        if (*p == ';' && p > v && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = 0;
            break;
        }
    return trim(v);
}

void lp_run_config_load(lp_run_config *rc, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) lp_user_error("%s: cannot open run config: %s", path, strerror(errno));
    load_ctx c = {.rc = rc, .path = path};
    seen_key *seen = NULL;
    int n_seen = 0;
    char *buf = NULL, *line = NULL, section[64] = "";
    size_t len = 0, cap = 0, lcap = 0;
    ssize_t got;
    for (int no = 1; (got = getline(&line, &lcap, f)) >= 0; no++) {
        if ((size_t)got != strlen(line)) lp_user_error("%s:%d: NUL byte in the line (expected INI text)", path, no);
        line[strcspn(line, "\r\n")] = 0;
        append_text(rc, line);
        char *s = line;
        if (no == 1 && !strncmp(s, "\xEF\xBB\xBF", 3)) s += 3; /* UTF-8 byte-order mark */
        char *t = trim(s);
        if (!*t || *t == ';' || *t == '#') { /* blank or comment: any length */
            append_buf(&buf, &len, &cap, "", 0);
            continue;
        }
        if (t != s)
            lp_user_error("%s:%d: indented line '%.40s' (continuation lines are not supported: put the whole "
                          "value on the key's line)", path, no, t);
        if (*t == '[') {
            char *e = strchr(t, ']');
            if (!e || e - t - 1 >= (long)sizeof section)
                lp_user_error("%s:%d: malformed section header '%.60s' (expected [name])", path, no, t);
            snprintf(section, sizeof section, "%.*s", (int)(e - t - 1), t + 1);
            append_buf(&buf, &len, &cap, t, strlen(t));
            continue;
        }
        char *eq = t + strcspn(t, "=:");
        if (!*eq) lp_user_error("%s:%d: '%.60s' is not a key = value line (expected [section] headers and "
                                "key = value lines)", path, no, t);
        char keybuf[64], key[64];
        snprintf(keybuf, sizeof keybuf, "%.*s", (int)(eq - t), t);
        snprintf(key, sizeof key, "%s", trim(keybuf));
        for (int i = 0; i < n_seen; i++)
            if (!strcmp(seen[i].section, section) && !strcmp(seen[i].key, key))
                lp_user_error("%s:%d: key [%s] %s is set twice, on lines %d and %d (keep one)", path, no, section,
                              key, seen[i].line, no);
        seen_key *ns = realloc(seen, (size_t)(n_seen + 1) * sizeof *seen);
        LP_CHECK_SYS(ns != NULL, "reading the run config");
        seen = ns;
        snprintf(seen[n_seen].section, sizeof seen->section, "%s", section);
        snprintf(seen[n_seen].key, sizeof seen->key, "%s", key);
        seen[n_seen++].line = no;
        if (strlen(t) <= LP_INI_LINE_MAX) {
            append_buf(&buf, &len, &cap, t, strlen(t));
            continue;
        }
        /* too long for inih: keep the value here, give inih "key = \x01<index>" */
        char **nl = realloc(c.longval, (size_t)(c.n_long + 1) * sizeof *nl);
        LP_CHECK_SYS(nl != NULL, "reading the run config");
        c.longval = nl;
        c.longval[c.n_long] = strdup(value_of(eq));
        LP_CHECK_SYS(c.longval[c.n_long] != NULL, "reading the run config");
        char ph[160];
        int n = snprintf(ph, sizeof ph, "%s = \x01%d", key, c.n_long++);
        append_buf(&buf, &len, &cap, ph, (size_t)n);
    }
    fclose(f);
    free(line);
    free(seen);
    int rv = buf ? ini_parse_string(buf, on_entry, &c) : 0;
    for (int i = 0; i < c.n_long; i++) free(c.longval[i]);
    free(c.longval);
    free(buf);
    if (rv != 0) {
        if (c.why[0]) lp_user_error("%s:%d: %s", path, rv, c.why);
        lp_user_error("%s:%d: not valid INI (expected [section] headers and key = value lines)", path, rv);
    }
}

void lp_run_config_override(lp_run_config *rc, const char *assignment) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", assignment);
    char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq)
        lp_user_error("override '%s': expected section.key=value (e.g. optim.lr=1e-4)", assignment);
    *eq = 0;
    *dot = 0;
    char why[512];
    if (set_field(rc, trim(buf), trim(dot + 1), trim(eq + 1), why, sizeof why) != 0)
        lp_user_error("override '%s': %s", assignment, why);
    char line[2100];
    snprintf(line, sizeof line, "; override: %s", assignment);
    append_text(rc, line);
}

/* The global batch (sequences per optimizer step, micro_batch x microbatches x data-parallel
 * replicas) is a property of the run, fixed by its first launch: the sampler's windows, the
 * learning-rate schedule and the loss all depend on it. A run resumed on another replica count
 * keeps it by changing the gradient accumulation: microbatches = global batch / (micro_batch x
 * replicas), which must divide exactly. */
static void keep_global_batch(lp_run_config *rc, const char *src) {
    char dir[LP_CKPT_PATH], latest[LP_CKPT_PATH];
    snprintf(dir, sizeof dir, "%.1100s/ckpt", rc->dir);
    if (strcmp(rc->resume, "auto") || !lp_ckpt_latest(dir, latest, sizeof latest)) return;
    int size = 1;
    LP_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size), "counting ranks");
    if (rc->pp < 1 || rc->tp < 1 || size % (rc->pp * rc->tp)) return; /* the layout check names this mistake */
    long dp = size / (rc->pp * rc->tp), per = (long)rc->micro_batch * dp;
    lp_train_state st;
    lp_ckpt_peek_state(latest, &st);
    long G = (long)st.data.global_batch, now = per * rc->microbatches;
    if (G == now || G <= 0) return;
    if (G % per)
        lp_user_error_all("%s: cannot resume %s on %ld data-parallel replicas: its global batch of %ld sequences (written by "
                      "%d replicas) is not a multiple of micro_batch %d x %ld replicas; choose a rank count or "
                      "batch.micro_batch that divides it, or run.resume=never", src, latest, dp, G, st.dp, rc->micro_batch, dp);
    int old = rc->microbatches;
    rc->microbatches = (int)(G / per);
    lp_info("train: %s has a global batch of %ld sequences (written by %d data-parallel replicas); on %ld replicas "
            "[batch] microbatches %d -> %d keeps it", latest, G, st.dp, dp, old, rc->microbatches);
}

void lp_run_config_check(lp_run_config *rc, const char *src) {
    keep_global_batch(rc, src);
    if (!(rc->lr > 0)) lp_user_error("%s: [optim] lr must be > 0 (got %g)", src, rc->lr);
    if (rc->min_lr > rc->lr) lp_user_error("%s: [optim] min_lr (%g) must not exceed lr (%g)", src, rc->min_lr, rc->lr);
    if (rc->warmup_steps > rc->steps && rc->steps > 0)
        lp_user_error("%s: [optim] warmup_steps (%d) exceeds [batch] steps (%d)", src, rc->warmup_steps, rc->steps);
}

void lp_run_config_free(lp_run_config *rc) {
    free(rc->text);
    rc->text = NULL;
}

void lp_run_config_read(lp_run_config *rc, const char *path, char **overrides, int n) {
    lp_run_config_defaults(rc);
    lp_run_config_load(rc, path);
    for (int i = 0; i < n; i++) lp_run_config_override(rc, overrides[i]);
}

lp_config lp_run_config_shape(const lp_run_config *rc, const char *source) {
    char err[256];
    if (lp_config_validate(&rc->shape, err, sizeof err)) lp_user_error("%s: [model] %s", source, err);
    return rc->shape;
}
