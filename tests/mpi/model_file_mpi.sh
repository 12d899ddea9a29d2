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

# F16 and BF16 shards convert to float32: equal to the F32 import within half-precision rounding
for dt in F16 BF16; do
  cp -r "$FX/tiny-gqa-hf" "$T/hf-$dt"; chmod -R u+w "$T/hf-$dt"
  for f in "$T/hf-$dt"/*.safetensors; do
    python3 - "$f" "$dt" <<'PY'
import json, struct, sys
path, dt = sys.argv[1:]
b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = b[8 + n:]
out, off = bytearray(), 0
for k, v in h.items():
    if k == '__metadata__': continue
    s, e = v['data_offsets']; xs = struct.unpack('<%df' % ((e - s) // 4), d[s:e])
    if dt == 'F16': raw = struct.pack('<%de' % len(xs), *xs)
    else: raw = b''.join(struct.pack('<f', x)[2:] for x in xs)  # truncate to the high 16 bits
    v['dtype'] = dt; v['data_offsets'] = [len(out), len(out) + len(raw)]; out += raw
hb = json.dumps(h).encode()
open(path, 'wb').write(struct.pack('<Q', len(hb)) + hb + bytes(out))
PY
  done
  run "$LLAMAPRO" import --from hf "$T/hf-$dt" --out "$T/$dt.h5" >/dev/null
done
# |w| < 8.2 here: F16 rounds to half an ulp (2^-7 / 2 near 8), BF16 truncates by under an ulp (2^-7 * 8).
h5diff -d 0.005 "$T/one.h5" "$T/F16.h5" /weights /weights >/dev/null || fail "F16 import differs from F32 beyond rounding"
h5diff -d 0.07 "$T/one.h5" "$T/BF16.h5" /weights /weights >/dev/null || fail "BF16 import differs from F32 beyond rounding"
! h5diff "$T/one.h5" "$T/BF16.h5" /weights /weights >/dev/null || fail "BF16 import suspiciously exact"

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
