# rel_integrity.sh - integrity end to end (issue 10): a flipped byte in a corpus chunk is exit 1
# naming file and dataset (checksum mismatch) for eval and train; `info --verify` reads every
# dataset of a checkpoint, optimizer state included; a checkpoint records the CRC-32 of each frozen
# tensor it links to, and resume (and info --verify) refuse a model file whose frozen tensors
# changed, naming tensor and file; a missing linked file is named as such.
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
# flip(FILE DATASET): one byte in the middle of the dataset's first chunk (h5py locates it)
flip() {
  "$PY" - "$1" "$2" <<'PY' || fail "flip $2"
import sys, h5py
f, name = sys.argv[1], sys.argv[2]
with h5py.File(f, "r") as h:
    info = h[name].id.get_chunk_info(0)
    off = info.byte_offset + info.size // 2
with open(f, "r+b") as fh:
    fh.seek(off); b = fh.read(1); fh.seek(off); fh.write(bytes([b[0] ^ 0x5A]))
PY
}
cp "$T/corpus.h5" "$T/bad.h5"; flip "$T/bad.h5" splits/val/tokens
expect_fail 1 "bad\.h5: cannot read dataset /splits/val/tokens at \[[0-9]+, [0-9]+\) \(checksum mismatch.*Fletcher32" \
  "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/bad.h5:val" --seq-len 16
cp "$T/corpus.h5" "$T/bad2.h5"; flip "$T/bad2.h5" splits/train/tokens
expect_fail 1 "bad2\.h5: cannot read dataset /splits/train/tokens .*checksum mismatch" \
  "$LLAMAPRO" train --config "$T/run.ini" data.train="$T/bad2.h5"
[ ! -e "$T/run/ckpt/latest" ] || fail "a run on a damaged corpus wrote a checkpoint"
# a checkpoint whose optimizer state is damaged: info --verify names the dataset
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=2 2>/dev/null
C="$T/run/ckpt/step-2.h5"
run "$LLAMAPRO" info --verify "$C" > /dev/null
cp "$C" "$T/opt.h5"; flip "$T/opt.h5" optimizer/v/layers/001/w2
expect_fail 1 "opt\.h5: cannot read dataset /optimizer/v/layers/001/w2 \(checksum mismatch.*Fletcher32" "$LLAMAPRO" info --verify "$T/opt.h5"
# frozen tensors changed in the linked model file: resume and info --verify refuse, naming both
cp "$T/exp.h5" "$T/exp.orig.h5"
"$PY" - "$T/exp.h5" <<'PY' || fail "edit exp.h5"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    d = f["weights/tok_embeddings"]; row = d[5]; row[3] += 1.0; d[5] = row
PY
expect_fail 1 "exp\.h5: frozen tensor /weights/tok_embeddings changed since .*step-2\.h5 was written \(CRC-32 [0-9a-f]{8}, now [0-9a-f]{8}\)" \
  "$LLAMAPRO" train --config "$T/run.ini" batch.steps=4
expect_fail 1 "exp\.h5: frozen tensor /weights/tok_embeddings changed since .*step-2\.h5 was written" \
  $MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" batch.steps=4 batch.micro_batch=1
expect_fail 1 "exp\.h5: frozen tensor /weights/tok_embeddings changed since" "$LLAMAPRO" info --verify "$C"
[ "$(cat "$T/run/ckpt/latest")" = step-2.h5 ] || fail "latest changed"
# the linked model file is gone
mv "$T/exp.h5" "$T/elsewhere.h5"
expect_fail 1 "step-2\.h5: its frozen tensors are linked to .*exp\.h5, which is missing" \
  "$LLAMAPRO" train --config "$T/run.ini" batch.steps=4 model.path="$T/elsewhere.h5"
expect_fail 1 "step-2\.h5: /weights/tok_embeddings links to /weights/tok_embeddings in .*exp\.h5, which cannot be opened" \
  "$LLAMAPRO" info --verify "$C"
# restored: the run resumes and the checkpoint verifies
cp "$T/exp.orig.h5" "$T/exp.h5"
run "$LLAMAPRO" info --verify "$C" > /dev/null
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=4 2>/dev/null
echo "rel_integrity: ok"
