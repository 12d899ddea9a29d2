# import_errors.sh - every defect in an input is refused with exit 1, one line naming the file, and
# no output (nor .partial) left behind. Corrupt inputs are crafted here from the fixtures.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
FX=$LP_FIXTURES
OUT=$T/out.h5

# expect_refused PATTERN ARGS... : import ARGS --out $OUT fails as expect_fail says, leaving nothing.
expect_refused() {
  local pat=$1; shift
  expect_fail 1 "$pat" "$LLAMAPRO" import "$@" --out "$OUT"
  [ ! -e "$OUT" ] || fail "output $OUT left behind by: import $*"
  [ ! -e "$OUT.partial" ] || fail "partial output left behind by: import $*"
}

# A fresh writable copy of the HF fixture directory.
hfcopy() { rm -rf "$T/hf"; cp -r "$FX/tiny-gqa-hf" "$T/hf"; chmod -R u+w "$T/hf"; }
SHARD1=model-00001-of-00002.safetensors
SHARD2=model-00002-of-00002.safetensors

# st_edit FILE PYTHON: run PYTHON on the safetensors header `h` (dict) and data buffer `d`
# (bytearray) of FILE, then write it back with a correct header length.
st_edit() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
path, code = sys.argv[1], sys.argv[2]
b = open(path, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); d = bytearray(b[8 + n:])
exec(code)
hb = json.dumps(h).encode()
open(path, 'wb').write(struct.pack('<Q', len(hb)) + hb + bytes(d))
PY
}
# json_edit FILE PYTHON: edit a JSON file's object `j`.
json_edit() {
  python3 - "$1" "$2" <<'PY'
import json, sys
path, code = sys.argv[1], sys.argv[2]
j = json.load(open(path)); exec(code); json.dump(j, open(path, 'w'), indent=1)
PY
}

# --- the fixtures themselves import (the checks below are not vacuous) ---
run "$LLAMAPRO" import --from llama2c "$FX/tiny-gqa.llama2c.bin" --out "$T/ok.h5" >/dev/null
hfcopy
run "$LLAMAPRO" import --from hf "$T/hf" --out "$T/ok-hf.h5" >/dev/null
rm -f "$T/ok-hf.h5"

# --- llama2.c ---
head -c -4 "$FX/tiny-gqa.llama2c.bin" > "$T/trunc.bin"
expect_refused "trunc\.bin: size is 432856 bytes, but the llama2.c header .* implies 432860 bytes" --from llama2c "$T/trunc.bin"
head -c 10 "$FX/tiny-gqa.llama2c.bin" > "$T/short.bin"
expect_refused "short\.bin: 10 bytes is too short" --from llama2c "$T/short.bin"
# n_heads = 5 does not divide dim = 48 (header field 3)
python3 -c "
import struct,sys; b=bytearray(open(sys.argv[1],'rb').read()); b[12:16]=struct.pack('<i',5); open(sys.argv[2],'wb').write(b)" \
  "$FX/tiny-gqa.llama2c.bin" "$T/heads.bin"
expect_refused "heads\.bin: bad llama2.c header: n_heads \(5\) must divide dim \(48\)" --from llama2c "$T/heads.bin"
expect_refused "nonexistent\.bin: cannot open" --from llama2c "$T/nonexistent.bin"

# --- safetensors structure ---
hfcopy; python3 -c "
import struct,sys; b=bytearray(open(sys.argv[1],'rb').read()); b[:8]=struct.pack('<Q',len(b)); open(sys.argv[1],'wb').write(b)" "$T/hf/$SHARD1"
expect_refused "$SHARD1: header length [0-9]+ goes beyond the end of the file" --from hf "$T/hf"

hfcopy; st_edit "$T/hf/$SHARD2" "
o = h['model.layers.2.self_attn.q_proj.weight']['data_offsets']; o[0] -= 4; o[1] -= 4"
expect_refused "$SHARD2: tensors '.*' and 'model.layers.2.self_attn.q_proj.weight' overlap" --from hf "$T/hf"

hfcopy; st_edit "$T/hf/$SHARD2" "
o = h['model.norm.weight']['data_offsets']; o[0] += 10**6; o[1] += 10**6"
expect_refused "$SHARD2: tensor 'model.norm.weight' data_offsets .* outside" --from hf "$T/hf"

hfcopy; st_edit "$T/hf/$SHARD2" "
o = h['model.norm.weight']['data_offsets']; o[1] -= 4"
expect_refused "$SHARD2: tensor 'model.norm.weight' spans 188 bytes, but shape and dtype F32 need 192" --from hf "$T/hf"

hfcopy; python3 -c "
import struct,sys; b=bytearray(open(sys.argv[1],'rb').read()); b[8]=ord('[')^0; b[9:11]=b'}}'; open(sys.argv[1],'wb').write(b)" "$T/hf/$SHARD1"
expect_refused "$SHARD1: the header is not a valid JSON object" --from hf "$T/hf"

# --- tensors ---
hfcopy; st_edit "$T/hf/$SHARD2" "del h['model.norm.weight']"
expect_refused "$SHARD2: tensor 'model.norm.weight' is missing" --from hf "$T/hf"

hfcopy; json_edit "$T/hf/model.safetensors.index.json" "del j['weight_map']['lm_head.weight']"
expect_refused "model.safetensors.index.json: tensor 'lm_head.weight' is missing from weight_map" --from hf "$T/hf"

# F64 has the right byte count for half the elements, but the dtype itself is refused.
hfcopy; st_edit "$T/hf/$SHARD2" "h['model.norm.weight']['dtype'] = 'F64'; h['model.norm.weight']['shape'] = [24]"
expect_refused "$SHARD2: tensor 'model.norm.weight' has dtype F64; supported are F32, F16 and BF16" --from hf "$T/hf"
hfcopy; st_edit "$T/hf/$SHARD2" "h['model.norm.weight']['dtype'] = 'Q4'"
expect_refused "$SHARD2: tensor 'model.norm.weight' has unknown dtype 'Q4'" --from hf "$T/hf"

# --- config.json ---
hfcopy; json_edit "$T/hf/config.json" "j['intermediate_size'] = 64"
expect_refused "$SHARD1: tensor 'model.layers.0.mlp.gate_proj.weight' has shape \[128, 48\], but config.json implies \[64, 48\]" --from hf "$T/hf"

hfcopy; json_edit "$T/hf/config.json" "j['num_attention_heads'] = 5"
expect_refused "hf/config.json: n_heads \(5\) must divide dim \(48\)" --from hf "$T/hf"

hfcopy; json_edit "$T/hf/config.json" "j['architectures'] = ['GemmaForCausalLM']; j['model_type'] = 'gemma'"
expect_refused "hf/config.json: architecture 'GemmaForCausalLM' is not supported \(expected LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM or MistralForCausalLM\)" --from hf "$T/hf"

hfcopy; printf '{"hidden_size": 48,' > "$T/hf/config.json"
expect_refused "hf/config.json: not valid JSON" --from hf "$T/hf"

hfcopy; json_edit "$T/hf/config.json" "del j['hidden_size']"
expect_refused "hf/config.json: field 'hidden_size' is missing" --from hf "$T/hf"

hfcopy; rm "$T/hf/model.safetensors.index.json"
expect_refused "hf: neither model.safetensors nor model.safetensors.index.json found" --from hf "$T/hf"

expect_refused "nodir: no config.json" --from hf "$T/nodir"

# --- usage ---
expect_fail 1 "import: --out MODEL.h5 is required" "$LLAMAPRO" import --from llama2c "$FX/tiny-gqa.llama2c.bin"
expect_refused "import: --from hf\|llama2c is required" "$FX/tiny-gqa.llama2c.bin"
expect_refused "import: --from must be 'hf' or 'llama2c', got 'gguf'" --from gguf "$FX/tiny-gqa.llama2c.bin"
expect_refused "import: expected one input FILE after the options, got 2" --from llama2c "$FX/tiny-gqa.llama2c.bin" extra
expect_refused "import: unknown option '--bogus'" --bogus --from llama2c "$FX/tiny-gqa.llama2c.bin"
expect_fail 1 "import: option '--out' needs a value" "$LLAMAPRO" import --from llama2c "$FX/tiny-gqa.llama2c.bin" --out
expect_fail 1 "nodir/out\.h5: cannot create the file: directory '.*nodir' does not exist" \
  "$LLAMAPRO" import --from llama2c "$FX/tiny-gqa.llama2c.bin" --out "$T/nodir/out.h5"
"$LLAMAPRO" import --help | grep -q "un-permuted" || fail "import --help does not explain the q/k permutation"
"$LLAMAPRO" info --help | grep -q -- "--verify" || fail "info --help does not describe --verify"

# --- files that are not HDF5, or not a model ---
expect_fail 1 "tiny-gqa\.llama2c\.bin: not an HDF5 file" "$LLAMAPRO" info "$FX/tiny-gqa.llama2c.bin"
expect_fail 1 "missing\.h5: cannot open" "$LLAMAPRO" info "$T/missing.h5"
expect_fail 1 "info: expected one FILE.h5" "$LLAMAPRO" info
# a model file given where a llama2.c file is expected
expect_refused "ok\.h5: is an HDF5 file, not a llama2.c checkpoint" --from llama2c "$T/ok.h5"

# --- a flipped byte in the weights fails its checksum, naming the dataset ---
python3 - "$FX/tiny-gqa.llama2c.bin" "$T/ok.h5" "$T/flip.h5" <<'PY'
import sys
src, ok, out = sys.argv[1:]
pat = open(src, 'rb').read()[28 + 4 * 100:28 + 4 * 116]   # tok_embeddings values 100..115
h = bytearray(open(ok, 'rb').read())
i = h.find(pat)
assert i > 0 and h.find(pat, i + 1) < 0, "pattern not unique"
h[i + 3] ^= 0x10
open(out, 'wb').write(h)
PY
run "$LLAMAPRO" info --verify "$T/ok.h5" >/dev/null
expect_fail 1 "flip\.h5: cannot read dataset /weights/tok_embeddings .*Fletcher32" "$LLAMAPRO" info --verify "$T/flip.h5"
echo "import_errors: all checks passed"
