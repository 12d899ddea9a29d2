# family_refuse.sh - config.json options llamapro does not implement are refused by name, with one
# line and exit 1, before anything is allocated or written: an unknown architecture, a rope_scaling
# type other than llama3, mixture-of-experts fields, Qwen's use_sliding_window, an o_proj bias.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
FX="$LP_FIXTURES/tiny-qwen2-hf"
PY=/usr/bin/python3
variant() { # NAME PYTHON-EXPR-ON-c : a copy of tiny-F-hf ($2 picks F) with config.json edited
  local d="$T/$1"; mkdir -p "$d"; cp "$LP_FIXTURES/tiny-$2-hf/model.safetensors" "$d/"
  "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); $3; json.dump(c, open(sys.argv[2],'w'))" \
    "$LP_FIXTURES/tiny-$2-hf/config.json" "$d/config.json" || fail "making $1"
  echo "$d"
}
check() { # DIR PATTERN
  expect_fail 1 "$2" "$LLAMAPRO" import --from hf "$1" --out "$T/out.h5"
  [ ! -e "$T/out.h5" ] || fail "an output file was written for $1"
}
check "$(variant mixtral mistral 'c["architectures"]=["MixtralForCausalLM"]')" "config.json: architecture 'MixtralForCausalLM' is not supported"
check "$(variant yarn llama3 'c["rope_scaling"]={"rope_type":"yarn","factor":4.0}')" "config.json: field 'rope_scaling' of type 'yarn' is not supported"
check "$(variant linear llama3 'c["rope_scaling"]={"type":"linear","factor":2.0}')" "field 'rope_scaling' of type 'linear'"
check "$(variant moe qwen2 'c["num_experts"]=8')" "config.json: field 'num_experts': mixture-of-experts"
check "$(variant moe2 mistral 'c["num_local_experts"]=8')" "field 'num_local_experts': mixture-of-experts"
check "$(variant swa qwen3 'c["use_sliding_window"]=True')" "field 'use_sliding_window' = true is not supported for Qwen3ForCausalLM"
check "$(variant obias llama3 'c["attention_bias"]=True')" "field 'attention_bias' = true is not supported for LlamaForCausalLM"
check "$(variant gelu qwen3 'c["hidden_act"]="gelu"')" "field 'hidden_act'"
check "$(variant noarch qwen3 'del c["architectures"]; c["model_type"]="gemma"')" "model_type 'gemma' is not supported"
check "$(variant r3 llama3 'del c["rope_scaling"]["low_freq_factor"]')" "rope_scaling: field 'low_freq_factor' is missing"
echo "family refusals: ok"
