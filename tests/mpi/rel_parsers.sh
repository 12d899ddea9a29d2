# rel_parsers.sh - parsers that do not guess (issue 10): INI lines of any length, duplicated keys
# and continuation lines; JSONL with NUL bytes or data after the object; a truncated gzip of a
# whole-file document; HF import with a wrong num_hidden_layers, duplicate tensor names, overflowing
# shapes, weight_map entries outside the directory, and a config far larger than its shards.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
TOK="$LP_SOURCE_DIR/inputs/tokenizer/tokenizer.model"
PY=/usr/bin/python3
long=$(printf 'x%.0s' $(seq 400))
# INI: a 400-character comment holding "key = value" stays a comment; a 400-character path works
seg=$(printf 'd%.0s' $(seq 100)); deep="$seg/$seg/$seg/$seg"   # 400 characters of directories
mkdir -p "$T/$deep"
cat > "$T/long.ini" <<INI
[model]
; $long lr = 5
path = $T/$deep/missing.h5
[data]
train = $T/corpus.h5
INI
expect_fail 1 "$deep/missing.h5: cannot open" "$LLAMAPRO" train --config "$T/long.ini"
printf '[optim]\nlr = 1e-3\nwarmup_steps = 0\n\nlr = 2e-3\n' > "$T/dup.ini"
expect_fail 1 'dup.ini:5: key \[optim\] lr is set twice, on lines 2 and 5' "$LLAMAPRO" train --config "$T/dup.ini"
printf '[optim]\nlr = 1e-3\n   2e-3\n' > "$T/cont.ini"
expect_fail 1 'cont.ini:3: indented line' "$LLAMAPRO" train --config "$T/cont.ini"
printf '[optim]\nlr = 1e-3%s\n' "$long" > "$T/longval.ini"
expect_fail 1 "longval.ini:2: \[optim\] lr: expected a number .* got '1e-3x{400}'" "$LLAMAPRO" train --config "$T/longval.ini"
printf '[optim]\nlr = 1e-3\0\n' > "$T/nul.ini"
expect_fail 1 'nul.ini:2: NUL byte' "$LLAMAPRO" train --config "$T/nul.ini"

# JSONL: NUL inside a line, trailing data after the object; truncated gzip of a whole-file document
prep() { expect_fail 1 "$1" "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/out.h5" "${@:2}"; [ ! -e "$T/out.h5" ] || fail "prepare left out.h5"; ls "$T" | grep -q partial && fail "prepare left a .partial"; true; }
printf '{"text": "fine"}\n{"text": "a\0b"}\n' > "$T/nul.jsonl"
prep 'nul.jsonl:2: NUL byte at column 12' "$T/nul.jsonl"
printf '{"text": "fine"}\n\n{"text": "one"} {"text": "two"}\n' > "$T/trail.jsonl"
prep 'trail.jsonl:3: data after the JSON object at column 17' "$T/trail.jsonl"
printf '{"text": "ab\\u0000cd"}\n' > "$T/esc.jsonl"
prep 'esc.jsonl:1: .u0000 \(a NUL character\) at column 13' "$T/esc.jsonl"
head -c 20000 "$LP_SOURCE_DIR/README.md" | gzip -c | head -c 2000 > "$T/doc.md.gz"
prep 'doc.md.gz: cannot read .*truncated' "$T/doc.md.gz"

# HF import
hf() { rm -rf "$T/hf"; cp -r "$LP_FIXTURES/tiny-gqa-hf" "$T/hf"; [ -z "$1" ] || "$PY" - "$T/hf" "$1" <<'PY' || fail "python edit"
import sys, json, struct, os
d, what = sys.argv[1], sys.argv[2]
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
def save(p, hdr, data, raw=None):
    h = (raw or json.dumps(hdr)).encode(); h += b" " * (-len(h) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h)) + h + data)
idx = json.load(open(d + "/model.safetensors.index.json"))
cfg = json.load(open(d + "/config.json"))
s1 = d + "/model-00001-of-00002.safetensors"
if what == "layers3": cfg["num_hidden_layers"] = 3
if what == "layers5": cfg["num_hidden_layers"] = 5
if what == "huge": cfg["vocab_size"] = 2000000000; cfg["hidden_size"] = 48 * 1000; cfg["num_attention_heads"] = 6000; cfg["num_key_value_heads"] = 2000
if what.startswith("escape"):
    k = next(iter(idx["weight_map"]))
    idx["weight_map"][k] = {"escape1": "../x.safetensors", "escape2": "/etc/passwd", "escape3": ".."}[what]
if what == "dupmap":
    raw = json.dumps(idx["weight_map"])
    k, v = next(iter(idx["weight_map"].items()))
    raw = raw[:-1] + ', "%s": "%s"}' % (k, v)
    t = json.dumps({"metadata": idx.get("metadata", {}), "weight_map": "@"}).replace('"@"', raw)
    open(d + "/model.safetensors.index.json", "w").write(t); idx = None
if what in ("duphdr", "overflow"):
    hdr, data = load(s1)
    k = next(x for x in hdr if x != "__metadata__")
    if what == "overflow":
        hdr[k]["shape"] = [2**40, 2**40, 2**40]; save(s1, hdr, data)
    else:
        raw = json.dumps(hdr); raw = raw[:-1] + ', "%s": %s}' % (k, json.dumps(hdr[k])); save(s1, None, data, raw)
if what == "twoshards":
    hdr, data = load(s1); h2, d2 = load(d + "/model-00002-of-00002.safetensors")
    k = next(x for x in h2 if x != "__metadata__")
    e = dict(h2[k]); n = e["data_offsets"][1] - e["data_offsets"][0]
    e["data_offsets"] = [len(data), len(data) + n]; hdr[k] = e; save(s1, hdr, data + d2[h2[k]["data_offsets"][0]:h2[k]["data_offsets"][1]])
if idx is not None: json.dump(idx, open(d + "/model.safetensors.index.json", "w"))
json.dump(cfg, open(d + "/config.json", "w"))
PY
}
imp() { expect_fail 1 "$1" "$LLAMAPRO" import --from hf "$T/hf" --out "$T/imp.h5"; [ ! -e "$T/imp.h5" ] || fail "import left imp.h5"; }
hf ""; run "$LLAMAPRO" import --from hf "$T/hf" --out "$T/ok.h5" 2>/dev/null
hf layers3; imp 'config.json: num_hidden_layers is 3, but .* holds tensor .model\.layers\.3\..* of layer 3'
hf layers5; imp 'config.json: num_hidden_layers is 5, but the shards hold tensors of 4 layers'
hf huge; imp 'config.json: the shape implies [0-9]+ parameters, but the shards hold only [0-9]+ bytes'
hf escape1; imp "shard name '\.\./x\.safetensors' must be a file in the directory"
hf escape2; imp "shard name '/etc/passwd' must be a file in the directory"
hf escape3; imp "shard name '\.\.' must be a file in the directory"
hf dupmap; imp "appears twice in weight_map"
hf duphdr; imp "model-00001-of-00002\.safetensors: tensor '.*' appears twice in the header"
hf overflow; imp "model-00001-of-00002\.safetensors: tensor '.*' has a shape whose element count overflows"
hf twoshards; imp "tensor '.*' is in both model-00001-of-00002\.safetensors and model-00002-of-00002\.safetensors"
echo "rel_parsers: ok"
