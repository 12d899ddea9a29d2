# model_file_mpi.sh - import under mpiexec -n 2 writes the same model file as one rank, and the
# file has the layout of DESIGN.md section 4 (checked with the HDF5 tools, not with llamapro).
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
FX=$LP_FIXTURES
: "${MPIEXEC:?run through ctest}"

run "$LLAMAPRO" import --from hf "$FX/tiny-gqa-hf" --tokenizer "$FX/llama2-tokenizer/tokenizer.model" --out "$T/one.h5" >/dev/null
run "$MPIEXEC" -n 2 "$LLAMAPRO" import --from hf "$FX/tiny-gqa-hf" \
  --tokenizer "$FX/llama2-tokenizer/tokenizer.model" --out "$T/two.h5" > "$T/two.out"
[ "$(grep -c imported "$T/two.out")" = 1 ] || fail "expected one summary line from rank 0, got: $(cat "$T/two.out")"
[ ! -e "$T/two.h5.partial" ] || fail "partial file left behind"
h5diff "$T/one.h5" "$T/two.h5" || fail "1-rank and 2-rank model files differ"
h5diff -c "$T/one.h5" "$T/two.h5" >/dev/null || fail "1-rank and 2-rank model files differ in structure"

# llama2c and HF imports of the same weights agree bitwise on every weight
run "$MPIEXEC" -n 2 "$LLAMAPRO" import --from llama2c "$FX/tiny-gqa.llama2c.bin" --out "$T/l2c.h5" >/dev/null
h5diff "$T/one.h5" "$T/l2c.h5" /weights /weights || fail "HF and llama2.c imports differ"

# F16 and BF16 shards convert to float32 bitwise: the shards are encoded here with numpy (float16:
# IEEE round to nearest even; bfloat16: round to nearest even on the float32 bits, written out
# below), and every imported weight must be, bit for bit, numpy's decoding of that encoding of
# the F32 import (rows permuted by the importer; rounding is elementwise, so it commutes).
PY=/usr/bin/python3   # Debian's, with python3-numpy and python3-h5py (LP_DEBS)
for dt in F16 BF16; do
  cp -r "$FX/tiny-gqa-hf" "$T/hf-$dt"; chmod -R u+w "$T/hf-$dt"
  for f in "$T/hf-$dt"/*.safetensors; do
    "$PY" - "$f" "$dt" <<'PY' || fail "writing $dt shards"
import json, struct, sys
import numpy as np
path, dt = sys.argv[1:]
b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
out = bytearray()
for k, v in h.items():
    if k == '__metadata__': continue
    s, e = v['data_offsets']; x = np.frombuffer(d[s:e], dtype='<f4')
    if dt == 'F16':
        raw = x.astype('<f2').tobytes()
    else:  # bfloat16, round to nearest, ties to even
        u = x.view('<u4').astype(np.uint64)
        raw = (((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype('<u2')).tobytes()
    v['dtype'] = dt; v['data_offsets'] = [len(out), len(out) + len(raw)]; out += raw
hb = json.dumps(h).encode()
open(path, 'wb').write(struct.pack('<Q', len(hb)) + hb + bytes(out))
PY
  done
  run "$LLAMAPRO" import --from hf "$T/hf-$dt" --out "$T/$dt.h5" >/dev/null
done
"$PY" - "$T/one.h5" "$T/F16.h5" "$T/BF16.h5" <<'PY' || fail "F16/BF16 imports are not the half-precision rounding of the F32 import"
import sys, h5py, numpy as np
one, f16, bf16 = (h5py.File(p, "r") for p in sys.argv[1:])
names = []
one["weights"].visititems(lambda k, o: names.append(k) if isinstance(o, h5py.Dataset) else None)
assert len(names) == 39, names
def bf(x):  # float32 -> bfloat16 (round to nearest even) -> float32
    u = x.view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
moved = {"F16": 0, "BF16": 0}
for k in names:
    w = np.asarray(one["weights"][k], dtype=np.float32)
    for dt, f, want in (("F16", f16, w.astype(np.float16).astype(np.float32)), ("BF16", bf16, bf(w))):
        got = np.asarray(f["weights"][k])
        assert got.dtype == np.float32, (dt, k, got.dtype)
        bad = got.view(np.uint32) != want.view(np.uint32)
        assert not bad.any(), f"{dt} {k}: {bad.sum()} weights differ, first {got[bad][:3]} vs {want[bad][:3]}"
        moved[dt] += int((want != w).sum())
total = sum(one["weights"][k].size for k in names)
print(f"F16 and BF16 imports bitwise equal to numpy's rounding; rounded weights: {moved} of {total}")
assert moved["F16"] > total // 2 and moved["BF16"] > total // 2, "the shards were not really rounded"
PY

# layout: root attributes, config, layer groups with origin/trainable, checksummed float32 data
h5dump -a /format "$T/two.h5" | grep -q '"llamapro-model"' || fail "format attribute"
h5dump -a /format_version "$T/two.h5" | grep -q '(0): 1' || fail "format_version attribute"
h5dump -a /config/n_kv_heads "$T/two.h5" | grep -q '(0): 2' || fail "config n_kv_heads"
h5dump -a /weights/layers/003/origin "$T/two.h5" | grep -q '"base:3"' || fail "origin of layer 3"
h5dump -a /weights/layers/003/trainable "$T/two.h5" | grep -q '(0): 0' || fail "trainable of layer 3"
h5dump -p -H -d /weights/layers/001/wk "$T/two.h5" > "$T/wk.txt"
grep -q 'FLETCHER32' "$T/wk.txt" || fail "wk is not checksummed"
grep -q 'H5T_IEEE_F32LE' "$T/wk.txt" || fail "wk is not float32"
grep -q '( 16, 48 )' "$T/wk.txt" || fail "wk shape"
h5dump -H -d /tokenizer "$T/two.h5" | grep -q '( 499723 )' || fail "tokenizer size"

# v_proj is not permuted: HF shard bytes of layer 0 v_proj equal /weights/layers/000/wv
python3 - "$FX/tiny-gqa-hf/model-00001-of-00002.safetensors" "$T/v.bin" <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
s, e = h['model.layers.0.self_attn.v_proj.weight']['data_offsets']
open(sys.argv[2], 'wb').write(b[8 + n + s:8 + n + e])
PY
h5dump -b LE -d /weights/layers/000/wv -o "$T/wv.bin" "$T/two.h5" >/dev/null
cmp -s "$T/v.bin" "$T/wv.bin" || fail "v_proj bytes differ from /weights/layers/000/wv"

# info describes the model, on 2 ranks too (output from rank 0 only)
"$MPIEXEC" -n 2 "$LLAMAPRO" info --verify "$T/two.h5" > "$T/info.txt" || fail "info failed"
grep -q "config: dim 48, hidden_dim 128, n_layers 4, n_heads 6, n_kv_heads 2, vocab_size 96" "$T/info.txt" || fail "info config"
grep -q "tensors: 39, parameters: 107952" "$T/info.txt" || fail "info tensor count"
grep -q "tokenizer: 499723 bytes" "$T/info.txt" || fail "info tokenizer"
[ "$(grep -c '^file:' "$T/info.txt")" = 1 ] || fail "info printed on more than one rank"
echo "model_file_mpi: all checks passed"
