/* hf_config.h - Hugging Face config.json <-> lp_config, per architecture, and the same options as
 * attributes of a model file's /config group.
 *
 * Supported: LlamaForCausalLM (Llama 2, Llama 3/3.1/3.2 with rope_scaling "llama3"),
 * Qwen2ForCausalLM (q/k/v biases), Qwen3ForCausalLM (q/k norms, explicit head_dim),
 * MistralForCausalLM (sliding window). Anything else, and any option our kernels do not implement
 * (another rope_scaling type, MoE fields, biases elsewhere, another activation), is refused by name
 * with one line, before anything is allocated.
 */
#ifndef LLAMAPRO_HF_CONFIG_H
#define LLAMAPRO_HF_CONFIG_H

#include <cjson/cJSON.h>
#include <hdf5.h>

#include "llamapro/model.h"

/* Parse DIR/config.json into *c (validated). User error naming the file and field on any defect. */
void lp_hf_config_parse(const char *dir, lp_config *c);
/* The same from JSON text already read; `path` names it in messages. */
void lp_hf_config_parse_json(const char *text, size_t n, const char *path, lp_config *c);

/* Add the architecture's fields to an export config.json object: architectures, model_type,
 * head_dim, rope_theta, rope_scaling, attention_bias / sliding_window and the flags transformers
 * reads for that family. The generic sizes are the caller's. */
void lp_hf_config_write_arch(cJSON *j, const lp_config *c);

/* Shortest decimal that reads back as the same float32 (1e-05, not 9.99999975e-06). */
double lp_float_decimal(float v);

/* Model file /config: write the architecture name and options as attributes of group g; read them
 * back (absent attributes mean Llama 2 defaults, so older files load unchanged). */
void lp_config_write_arch_attrs(hid_t g, const lp_config *c);
void lp_config_read_arch_attrs(hid_t g, lp_config *c, const char *path);

#endif
