# export_hf.sh - `export --to hf` against the Hugging Face fixture (written independently by
# transformers): same tensor names, shapes and bytes (q_proj/k_proj included: the RoPE permutation),
# config.json fields equal, index and __metadata__ well formed; import of the export is bitwise the
# model (same greedy tokens); 2 ranks and small shards give the same tensors; bf16 bytes equal the
# round-to-nearest-even of the fixture's float32 computed here in Python; config.json's bos/eos ids
# are the embedded tokenizer's.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
FX="$LP_FIXTURES/tiny-gqa-hf"
run "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --tokenizer "$LP_FIXTURES/llama2-tokenizer/tokenizer.model" --out "$T/m.h5" > /dev/null
run "$LLAMAPRO" export --in "$T/m.h5" --to hf "$T/hf" > /dev/null
[ ! -e "$T/hf.partial" ] || fail "hf.partial left behind"
for f in config.json model.safetensors.index.json tokenizer.model README.md; do [ -s "$T/hf/$f" ] || fail "missing $f"; done
cmp -s "$T/hf/tokenizer.model" "$LP_FIXTURES/llama2-tokenizer/tokenizer.model" || fail "tokenizer.model differs"
"$MPIEXEC" -n 2 "$LLAMAPRO" export --in "$T/m.h5" --to hf "$T/hf2" --shard-size 100K > /dev/null || fail "2-rank export"
run "$LLAMAPRO" export --in "$T/m.h5" --to hf "$T/hfb" --dtype bf16 > /dev/null
cat > "$T/st.py" <<'PY'
import json, struct, sys, os
def load(d):
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    out = {}
    for shard in sorted(set(idx["weight_map"].values())):
        b = open(os.path.join(d, shard), "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        assert n % 8 == 0, "header not padded to 8"
        assert h.pop("__metadata__") == {"format": "pt"}, shard
        for k, v in h.items():
            s, e = v["data_offsets"]
            assert idx["weight_map"][k] == shard, k
            out[k] = (v["dtype"], v["shape"], b[8 + n + s:8 + n + e])
    assert set(out) == set(idx["weight_map"]), "index and shards disagree"
    return out, idx
def bf16(raw):  # float32 bytes -> bfloat16 bytes, round to nearest, ties to even
    res = bytearray()
    for (u,) in struct.iter_unpack("<I", raw):
        r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        res += struct.pack("<H", r & 0xFFFF)
    return bytes(res)
fx, _ = load(sys.argv[1]); ex, idx = load(sys.argv[2]); ex2, idx2 = load(sys.argv[3]); exb, _ = load(sys.argv[4])
assert set(fx) == set(ex), (sorted(set(fx) ^ set(ex)))
for k in fx:
    assert fx[k][:2] == ex[k][:2], (k, fx[k][:2], ex[k][:2])
    assert fx[k][2] == ex[k][2], "bytes differ: " + k
    assert ex2[k] == ex[k], "2-rank sharded export differs: " + k
    assert exb[k][0] == "BF16" and exb[k][1] == fx[k][1], k
    assert exb[k][2] == bf16(fx[k][2]), "bf16 bytes differ: " + k
assert len(set(idx2["weight_map"].values())) > 1, "--shard-size 100K made one shard"
assert idx["metadata"]["total_size"] == sum(len(v[2]) for v in ex.values())
cf = json.load(open(os.path.join(sys.argv[1], "config.json"))); ce = json.load(open(os.path.join(sys.argv[2], "config.json")))
for k, v in cf.items():
    assert ce.get(k) == v, (k, v, ce.get(k))
assert json.load(open(os.path.join(sys.argv[4], "config.json")))["torch_dtype"] == "bfloat16"
PY
python3 "$T/st.py" "$FX" "$T/hf" "$T/hf2" "$T/hfb" || fail "export does not match the HF fixture"
# round trips through import: f32 bitwise, bf16 = the bf16 file export of the same model
run "$LLAMAPRO" import --from hf "$T/hf" --out "$T/back.h5" > /dev/null
h5diff -q "$T/m.h5" "$T/back.h5" /weights /weights || fail "f32 hf round trip is not bitwise"
a=$("$LLAMAPRO" generate --model "$T/m.h5" --prompt-ids 1,5,9 --print-ids --tokens 8 --temperature 0) || fail "generate"
b=$("$LLAMAPRO" generate --model "$T/back.h5" --prompt-ids 1,5,9 --print-ids --tokens 8 --temperature 0) || fail "generate"
[ "$a" = "$b" ] || fail "greedy tokens differ after the round trip: $a / $b"
run "$LLAMAPRO" import --from hf "$T/hfb" --out "$T/backb.h5" > /dev/null
run "$LLAMAPRO" export --in "$T/m.h5" --to h5 "$T/mb.h5" --dtype bf16 > /dev/null
run "$LLAMAPRO" export --in "$T/mb.h5" --to h5 "$T/mb32.h5" > /dev/null
h5diff -q "$T/backb.h5" "$T/mb32.h5" /weights /weights || fail "bf16 hf round trip differs from bf16 rounding"
grep -q 'No block expansion' "$T/hf/README.md" || fail "README of an unexpanded model"
# an expanded model: README states the expansion, config has the new layer count
run "$LLAMAPRO" expand --in "$T/m.h5" --out "$T/e.h5" --blocks 2 2> /dev/null
run "$LLAMAPRO" export --in "$T/e.h5" --to hf "$T/hfe" > /dev/null
grep -Eq '"num_hidden_layers":[[:space:]]*6' "$T/hfe/config.json" || fail "expanded num_hidden_layers"
grep -q 'New (trained) layers: 2 5' "$T/hfe/README.md" || fail "README expansion: $(cat "$T/hfe/README.md")"
# config.json's bos/eos ids are the embedded tokenizer's: Llama 2's (expected.json, from the
# sentencepiece library), and a tokenizer trained here with other ids (asked of spm_encode, which
# wraps every text in BOS ... EOS with --extra_options=bos:eos); null without a tokenizer
python3 - "$T/hf/config.json" "$LP_FIXTURES/llama2-tokenizer/expected.json" <<'PY' || fail "bos/eos of the Llama 2 export"
import json, sys
c, e = (json.load(open(p)) for p in sys.argv[1:])
assert (c["bos_token_id"], c["eos_token_id"]) == (e["bos_id"], e["eos_id"]), (c, e)
PY
gzip -dc "$LP_FIXTURES/brown-60.jsonl.gz" | head -c 30000 | python3 -c 'import sys, json
for l in sys.stdin:
    try: print(json.loads(l)["text"])
    except Exception: pass' > "$T/text.txt"
(cd "$T" && spm_train --input=text.txt --model_prefix=odd --model_type=bpe --vocab_size=300 \
   --unk_id=0 --pad_id=1 --eos_id=4 --bos_id=7 --minloglevel=2 >/dev/null 2>&1) || fail "spm_train"
ids=$(echo hello | spm_encode --model="$T/odd.model" --output_format=id --extra_options=bos:eos)
bos=${ids%% *}; eos=${ids##* }
[ "$bos" = 7 ] && [ "$eos" = 4 ] || fail "spm_encode gives bos/eos '$bos'/'$eos' for the trained tokenizer"
lp_model_ini "" 32 64 2 2 2 300 16 > "$T/odd.ini"
run "$LLAMAPRO" init --config "$T/odd.ini" --out "$T/odd.h5" --tokenizer "$T/odd.model" 2>/dev/null
run "$LLAMAPRO" export --in "$T/odd.h5" --to hf "$T/hfodd" > /dev/null
run "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$T/notok.h5" > /dev/null
run "$LLAMAPRO" export --in "$T/notok.h5" --to hf "$T/hfnotok" > /dev/null
python3 - "$T/hfodd/config.json" "$bos" "$eos" "$T/hfnotok/config.json" <<'PY' || fail "bos/eos ids in config.json"
import json, sys
c = json.load(open(sys.argv[1]))
assert (c["bos_token_id"], c["eos_token_id"]) == (int(sys.argv[2]), int(sys.argv[3])), c
n = json.load(open(sys.argv[4]))
assert n["bos_token_id"] is None and n["eos_token_id"] is None, n
PY
expect_fail 1 "already exists" "$LLAMAPRO" export --in "$T/m.h5" --to hf "$T/hf"
expect_fail 1 "--shard-size 'abc' is not a size" "$LLAMAPRO" export --in "$T/m.h5" --to hf "$T/hfx" --shard-size abc
echo "export_hf: passed"
