/* arch.c - the architectures llamapro runs and their options (see model.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/model.h"

static const struct { const char *cls, *type; } archs[LP_ARCH_COUNT] = {
    [LP_ARCH_LLAMA] = {"LlamaForCausalLM", "llama"},
    [LP_ARCH_QWEN2] = {"Qwen2ForCausalLM", "qwen2"},
    [LP_ARCH_QWEN3] = {"Qwen3ForCausalLM", "qwen3"},
    [LP_ARCH_MISTRAL] = {"MistralForCausalLM", "mistral"},
};

const char *lp_arch_class(int arch) { return arch >= 0 && arch < LP_ARCH_COUNT ? archs[arch].cls : "(unknown)"; }
const char *lp_arch_model_type(int arch) { return arch >= 0 && arch < LP_ARCH_COUNT ? archs[arch].type : "(unknown)"; }

int lp_arch_from_class(const char *name) {
    for (int a = 0; a < LP_ARCH_COUNT; a++)
        if (!strcmp(name, archs[a].cls)) return a;
    return -1;
}

void lp_arch_describe(const lp_config *c, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s (head_dim %d", lp_arch_class(c->arch), lp_head_dim(c));
#define ADD(...) do { if (k < n) k += (size_t)snprintf(buf + k, n - k, __VA_ARGS__); } while (0)
    if (c->qkv_bias) ADD(", q/k/v biases");
    if (c->qk_norm) ADD(", q/k norms");
    if (c->sliding_window) ADD(", sliding window %d", c->sliding_window);
    if (c->rope_scaling == LP_ROPE_LLAMA3)
        ADD(", rope_scaling llama3 factor %g low %g high %g original %d", (double)c->rope_factor,
            (double)c->rope_low_freq_factor, (double)c->rope_high_freq_factor, c->rope_original_max_pos);
    ADD(")");
#undef ADD
}

int lp_config_validate_arch(const lp_config *c, char *err, size_t n) {
#define BAD(...) do { snprintf(err, n, __VA_ARGS__); return -1; } while (0)
    if (c->arch < 0 || c->arch >= LP_ARCH_COUNT) BAD("architecture %d is not known", c->arch);
    if (c->head_dim < 0) BAD("head_dim must be positive (got %d)", c->head_dim);
    if (c->n_heads > 0 && lp_head_dim(c) % 2) BAD("head_dim (%d) must be even for RoPE", lp_head_dim(c));
    if (c->sliding_window < 0) BAD("sliding_window must be positive or 0 for none (got %d)", c->sliding_window);
    /* the options each family has; anything else would be a model transformers cannot load */
    if (c->qkv_bias && c->arch != LP_ARCH_QWEN2) BAD("q/k/v biases are a Qwen2 option, not %s's", lp_arch_class(c->arch));
    if (c->arch == LP_ARCH_QWEN2 && !c->qkv_bias) BAD("Qwen2ForCausalLM has q/k/v biases (qkv_bias must be 1)");
    if (c->qk_norm != (c->arch == LP_ARCH_QWEN3)) BAD("q/k norms are exactly Qwen3's option (qk_norm %d for %s)", c->qk_norm, lp_arch_class(c->arch));
    if (c->sliding_window && c->arch != LP_ARCH_MISTRAL) BAD("sliding_window is a Mistral option, not %s's", lp_arch_class(c->arch));
    if (c->rope_scaling == LP_ROPE_LLAMA3) {
        if (!(c->rope_factor >= 1) || !isfinite(c->rope_factor)) BAD("rope_scaling factor must be >= 1 (got %g)", c->rope_factor);
        if (!(c->rope_low_freq_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
            !isfinite(c->rope_high_freq_factor))
            BAD("rope_scaling needs 0 < low_freq_factor < high_freq_factor (got %g, %g)", c->rope_low_freq_factor,
                c->rope_high_freq_factor);
        if (c->rope_original_max_pos <= 0)
            BAD("rope_scaling original_max_position_embeddings must be positive (got %d)", c->rope_original_max_pos);
    } else if (c->rope_scaling != LP_ROPE_NONE) {
        BAD("rope_scaling %d is not known", c->rope_scaling);
    }
    return 0;
#undef BAD
}

void lp_rope_inv_freq(const lp_config *c, double *inv) {
    int hd = lp_head_dim(c);
    for (int i = 0; i < hd / 2; i++) {
        double f = pow((double)c->rope_theta, -2.0 * i / hd);
        if (c->rope_scaling == LP_ROPE_LLAMA3) {
            /* Llama 3.1: wavelengths longer than original/low are stretched by factor, shorter
             * than original/high kept, those between interpolated smoothly */
            double factor = c->rope_factor, lo = c->rope_low_freq_factor, hi = c->rope_high_freq_factor;
            double old = c->rope_original_max_pos, wl = 2.0 * 3.14159265358979323846 / f;
            if (wl > old / lo) {
                f /= factor;
            } else if (wl >= old / hi) {
                double s = (old / wl - lo) / (hi - lo);
                f = (1.0 - s) * f / factor + s * f;
            }
        }
        inv[i] = f;
    }
}
