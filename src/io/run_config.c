/* run_config.c - INI run configuration with inih (see run_config.h).
 *
 * One table maps every "section.key" to a field and a type, so the file reader, the command-line
 * overrides and the error messages share one definition of what a key is.
 */
#include "llamapro/run_config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"

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

typedef struct {
    lp_run_config *rc;
    const char *path;
    char why[512];
} load_ctx;

static int on_entry(void *user, const char *section, const char *name, const char *value) {
    load_ctx *c = user;
    if (set_field(c->rc, section, name, value, c->why, sizeof c->why) != 0) {
        return 0; /* inih then returns this line's number */
    }
    return 1;
}

void lp_run_config_load(lp_run_config *rc, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) lp_user_error("%s: cannot open run config: %s", path, strerror(errno));
    load_ctx c = {.rc = rc, .path = path};
    int rv = ini_parse_file(f, on_entry, &c);
    if (rv != 0) {
        fclose(f);
        if (c.why[0]) lp_user_error("%s:%d: %s", path, rv, c.why);
        lp_user_error("%s:%d: not valid INI (expected [section] headers and key = value lines)", path, rv);
    }
    rewind(f);
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        append_text(rc, line);
    }
    fclose(f);
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

void lp_run_config_check(const lp_run_config *rc, const char *src) {
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
