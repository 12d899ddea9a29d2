/* hf_config.c - Hugging Face config.json per architecture, and the options as /config attributes
 * (see hf_config.h). */
#include "llamapro/hf_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/h5util.h"
#include "llamapro/import.h"

#define ARCH_LIST "LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM or MistralForCausalLM"

/* A field that is present and not null, else NULL (transformers treats null as absent). */
static const cJSON *field(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int json_int(const cJSON *j, const char *key, int *out, const char *path, int required) {
    const cJSON *v = field(j, key);
    if (!v) {
        if (required) lp_user_error("%s: field '%s' is missing", path, key);
        return -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 2147483647.0)
        lp_user_error("%s: field '%s' must be an integer", path, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int json_float(const cJSON *j, const char *key, float *out, const char *path, int required) {
    const cJSON *v = field(j, key);
    if (!v) {
        if (required) lp_user_error("%s: field '%s' is missing", path, key);
        return -1;
    }
    if (!cJSON_IsNumber(v)) lp_user_error("%s: field '%s' must be a number", path, key);
    *out = (float)v->valuedouble;
    return 0;
}

static int json_true(const cJSON *j, const char *key, const char *path) {
    const cJSON *v = field(j, key);
    if (v && !cJSON_IsBool(v)) lp_user_error("%s: field '%s' must be true or false", path, key);
    return cJSON_IsTrue(v);
}

/* The architecture: "architectures" decides when given; model_type alone otherwise. */
static int parse_arch(const cJSON *j, const char *path) {
    const cJSON *archs = field(j, "architectures"), *a;
    const char *first = NULL;
    if (archs) {
        if (!cJSON_IsArray(archs)) lp_user_error("%s: field 'architectures' must be a list of class names", path);
        cJSON_ArrayForEach(a, archs) {
            if (!cJSON_IsString(a)) continue;
            if (lp_arch_from_class(a->valuestring) >= 0) return lp_arch_from_class(a->valuestring);
            if (!first) first = a->valuestring;
        }
    } else {
        const cJSON *mt = field(j, "model_type");
        if (cJSON_IsString(mt)) {
            for (int k = 0; k < LP_ARCH_COUNT; k++)
                if (!strcmp(mt->valuestring, lp_arch_model_type(k))) return k;
            lp_user_error("%s: model_type '%s' is not supported (expected llama, qwen2, qwen3 or mistral)", path,
                          mt->valuestring);
        }
    }
    lp_user_error("%s: architecture '%s' is not supported (expected " ARCH_LIST ")", path, first ? first : "(none)");
}

static void parse_rope_scaling(const cJSON *j, lp_config *c, const char *path) {
    const cJSON *rs = field(j, "rope_scaling");
    if (!rs) return;
    if (!cJSON_IsObject(rs)) lp_user_error("%s: field 'rope_scaling' must be an object or null", path);
    const cJSON *t = field(rs, "rope_type");
    if (!t) t = field(rs, "type"); /* the older spelling */
    const char *type = cJSON_IsString(t) ? t->valuestring : "(none)";
    if (!strcmp(type, "default")) return;
    if (strcmp(type, "llama3"))
        lp_user_error("%s: field 'rope_scaling' of type '%s' is not supported (expected null or llama3)", path, type);
    c->rope_scaling = LP_ROPE_LLAMA3;
    char p[4200];
    snprintf(p, sizeof p, "%s: rope_scaling", path);
    json_float(rs, "factor", &c->rope_factor, p, 1);
    json_float(rs, "low_freq_factor", &c->rope_low_freq_factor, p, 1);
    json_float(rs, "high_freq_factor", &c->rope_high_freq_factor, p, 1);
    json_int(rs, "original_max_position_embeddings", &c->rope_original_max_pos, p, 1);
}

void lp_hf_config_parse_json(const char *text, size_t n, const char *path, lp_config *c) {
    cJSON *j = cJSON_ParseWithLength(text, n);
    if (!j || !cJSON_IsObject(j)) lp_user_error("%s: not valid JSON (expected a JSON object)", path);
    memset(c, 0, sizeof *c);
    c->arch = parse_arch(j, path);
    const char *cls = lp_arch_class(c->arch);
    /* options our kernels do not implement: refuse rather than import a different model */
    static const char *moe[] = {"num_experts", "num_local_experts", "n_routed_experts", "num_experts_per_tok"};
    for (size_t i = 0; i < sizeof moe / sizeof *moe; i++) {
        const cJSON *v = field(j, moe[i]);
        if (v && (!cJSON_IsNumber(v) || v->valuedouble != 0))
            lp_user_error("%s: field '%s': mixture-of-experts models are not supported", path, moe[i]);
    }
    const cJSON *act = field(j, "hidden_act");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu")))
        lp_user_error("%s: field 'hidden_act' must be \"silu\" (the SwiGLU MLP)", path);
    float prf = 1.0f;
    if (json_float(j, "partial_rotary_factor", &prf, path, 0) == 0 && prf != 1.0f)
        lp_user_error("%s: field 'partial_rotary_factor' = %g is not supported (must be 1)", path, prf);
    if (json_true(j, "mlp_bias", path)) lp_user_error("%s: field 'mlp_bias' = true is not supported", path);
    if (c->arch == LP_ARCH_QWEN2) {
        c->qkv_bias = 1; /* Qwen2 always has q/k/v biases and none on o_proj */
    } else if (json_true(j, "attention_bias", path)) {
        lp_user_error("%s: field 'attention_bias' = true is not supported for %s (it adds an o_proj bias)", path, cls);
    }
    c->qk_norm = c->arch == LP_ARCH_QWEN3;
    if (c->arch == LP_ARCH_MISTRAL) {
        json_int(j, "sliding_window", &c->sliding_window, path, 0);
        if (c->sliding_window <= 0 && field(j, "sliding_window"))
            lp_user_error("%s: field 'sliding_window' must be positive or null", path);
    } else if (json_true(j, "use_sliding_window", path)) {
        lp_user_error("%s: field 'use_sliding_window' = true is not supported for %s", path, cls);
    }
    json_int(j, "hidden_size", &c->dim, path, 1);
    json_int(j, "intermediate_size", &c->hidden_dim, path, 1);
    json_int(j, "num_hidden_layers", &c->n_layers, path, 1);
    json_int(j, "num_attention_heads", &c->n_heads, path, 1);
    if (json_int(j, "num_key_value_heads", &c->n_kv_heads, path, 0) < 0) c->n_kv_heads = c->n_heads;
    json_int(j, "vocab_size", &c->vocab_size, path, 1);
    json_int(j, "max_position_embeddings", &c->max_seq_len, path, 1);
    json_float(j, "rms_norm_eps", &c->norm_eps, path, 1);
    c->rope_theta = 10000.0f;
    json_float(j, "rope_theta", &c->rope_theta, path, 0);
    if (json_int(j, "head_dim", &c->head_dim, path, 0) == 0 && c->head_dim <= 0)
        lp_user_error("%s: field 'head_dim' must be positive (got %d)", path, c->head_dim);
    if (c->head_dim > 0 && c->n_heads > 0 && c->head_dim * c->n_heads == c->dim) c->head_dim = 0; /* the default */
    c->tie_embeddings = json_true(j, "tie_word_embeddings", path);
    parse_rope_scaling(j, c, path);
    char err[256];
    if (lp_config_validate(c, err, sizeof err) != 0 || lp_config_validate_arch(c, err, sizeof err) != 0)
        lp_user_error("%s: %s", path, err);
    cJSON_Delete(j);
}

void lp_hf_config_parse(const char *dir, lp_config *c) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) != 0) lp_user_error("%s: no config.json (expected a Hugging Face model directory)", dir);
    size_t n;
    char *text = lp_read_file(path, &n);
    lp_hf_config_parse_json(text, n, path, c);
    lp_free(text);
}

double lp_float_decimal(float v) {
    char buf[64];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return strtod(buf, NULL);
}

void lp_hf_config_write_arch(cJSON *j, const lp_config *c) {
    cJSON *arch = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(lp_arch_class(c->arch)));
    cJSON_AddStringToObject(j, "model_type", lp_arch_model_type(c->arch));
    cJSON_AddNumberToObject(j, "head_dim", lp_head_dim(c));
    cJSON_AddNumberToObject(j, "rope_theta", lp_float_decimal(c->rope_theta));
    if (c->rope_scaling == LP_ROPE_LLAMA3) {
        cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddNumberToObject(rs, "factor", lp_float_decimal(c->rope_factor));
        cJSON_AddNumberToObject(rs, "low_freq_factor", lp_float_decimal(c->rope_low_freq_factor));
        cJSON_AddNumberToObject(rs, "high_freq_factor", lp_float_decimal(c->rope_high_freq_factor));
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_original_max_pos);
    } else {
        cJSON_AddNullToObject(j, "rope_scaling");
    }
    switch (c->arch) {
    case LP_ARCH_QWEN2: case LP_ARCH_QWEN3: /* transformers' Qwen configs: window off on every layer */
        if (c->arch == LP_ARCH_QWEN3) cJSON_AddBoolToObject(j, "attention_bias", 0);
        cJSON_AddBoolToObject(j, "use_sliding_window", 0);
        cJSON_AddNullToObject(j, "sliding_window");
        cJSON_AddNumberToObject(j, "max_window_layers", c->n_layers);
        break;
    case LP_ARCH_MISTRAL:
        if (c->sliding_window > 0) cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(j, "sliding_window");
        break;
    default:
        cJSON_AddBoolToObject(j, "attention_bias", 0);
        cJSON_AddBoolToObject(j, "mlp_bias", 0);
    }
}

void lp_config_write_arch_attrs(hid_t g, const lp_config *c) {
    lp_h5_attr_write_str(g, "architecture", lp_arch_class(c->arch));
    if (c->head_dim > 0) lp_h5_attr_write_int(g, "head_dim", c->head_dim); /* absent: dim / n_heads */
    lp_h5_attr_write_int(g, "qkv_bias", c->qkv_bias);
    lp_h5_attr_write_int(g, "qk_norm", c->qk_norm);
    lp_h5_attr_write_int(g, "sliding_window", c->sliding_window);
    lp_h5_attr_write_str(g, "rope_scaling", c->rope_scaling == LP_ROPE_LLAMA3 ? "llama3" : "none");
    if (c->rope_scaling == LP_ROPE_LLAMA3) {
        lp_h5_attr_write_f32(g, "rope_factor", c->rope_factor);
        lp_h5_attr_write_f32(g, "rope_low_freq_factor", c->rope_low_freq_factor);
        lp_h5_attr_write_f32(g, "rope_high_freq_factor", c->rope_high_freq_factor);
        lp_h5_attr_write_int(g, "rope_original_max_position", c->rope_original_max_pos);
    }
}

void lp_config_read_arch_attrs(hid_t g, lp_config *c, const char *path) {
    char name[64];
    c->arch = LP_ARCH_LLAMA;
    if (lp_h5_attr_read_str(g, "architecture", name, sizeof name) == 0) {
        c->arch = lp_arch_from_class(name);
        if (c->arch < 0)
            lp_user_error("%s: /config attribute 'architecture' = '%s' is not supported (expected " ARCH_LIST ")",
                          path, name);
    }
    c->head_dim = c->qkv_bias = c->qk_norm = c->sliding_window = 0;
    lp_h5_attr_read_int(g, "head_dim", &c->head_dim);
    lp_h5_attr_read_int(g, "qkv_bias", &c->qkv_bias);
    lp_h5_attr_read_int(g, "qk_norm", &c->qk_norm);
    lp_h5_attr_read_int(g, "sliding_window", &c->sliding_window);
    c->rope_scaling = LP_ROPE_NONE;
    if (lp_h5_attr_read_str(g, "rope_scaling", name, sizeof name) == 0 && strcmp(name, "none")) {
        if (strcmp(name, "llama3"))
            lp_user_error("%s: /config attribute 'rope_scaling' = '%s' is not supported (expected none or llama3)", path,
                          name);
        c->rope_scaling = LP_ROPE_LLAMA3;
        if (lp_h5_attr_read_f32(g, "rope_factor", &c->rope_factor) < 0 ||
            lp_h5_attr_read_f32(g, "rope_low_freq_factor", &c->rope_low_freq_factor) < 0 ||
            lp_h5_attr_read_f32(g, "rope_high_freq_factor", &c->rope_high_freq_factor) < 0 ||
            lp_h5_attr_read_int(g, "rope_original_max_position", &c->rope_original_max_pos) < 0)
            lp_user_error("%s: /config: rope_scaling llama3 needs rope_factor, rope_low_freq_factor, "
                          "rope_high_freq_factor and rope_original_max_position", path);
    }
    char err[256];
    if (lp_config_validate_arch(c, err, sizeof err) != 0) lp_user_error("%s: /config: %s", path, err);
}
