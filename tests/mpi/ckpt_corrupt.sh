# ckpt_corrupt.sh - damaged checkpoints are refused with one line naming the problem (exit 1):
# a flipped byte inside a weight dataset (Fletcher32, names the dataset), a truncated file, a missing
# dataset, a wrong checkpoint_version; a stale .partial is ignored by resume.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
source "$LP_SOURCE_DIR/tests/mpi/ckpt_common.sh" || exit 1
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=3 run.dir="$T/a" 2> /dev/null
CK="$T/a/ckpt/step-3.h5"
mk() { rm -rf "$T/$1"; mkdir -p "$T/$1/ckpt"; cp "$CK" "$T/$1/ckpt/step-3.h5"; echo step-3.h5 > "$T/$1/ckpt/latest"; }
# flipped byte in the data of /weights/layers/002/wq: find its bytes (dumped by h5dump) in the file
mk flip
h5dump -d /weights/layers/002/wq -b LE -o "$T/wq.bin" "$CK" > /dev/null || fail "h5dump"
python3 - "$T/flip/ckpt/step-3.h5" "$T/wq.bin" <<'PY' || fail "cannot locate the dataset's bytes"
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); d = open(sys.argv[2], "rb").read()
o = b.find(d[:256]); assert o > 0 and b.find(d[:256], o + 1) < 0
b[o + 100] ^= 0x01; open(p, "wb").write(b)
PY
expect_fail 1 "step-3.h5: cannot read dataset /weights/layers/002/wq .*Fletcher32" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/flip"
# truncated
mk trunc
truncate -s 200000 "$T/trunc/ckpt/step-3.h5"
expect_fail 1 "step-3.h5: (cannot open as HDF5|cannot read).*" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/trunc"
# missing datasets (deleted with h5py): a weight of a new block, and its AdamW moment
for d in /weights/layers/002/w1 /optimizer/m/layers/002/w1; do
  mk missing
  /usr/bin/python3 - "$T/missing/ckpt/step-3.h5" "$d" <<'PY' || fail "cannot delete $d"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    assert sys.argv[2] in f, sorted(f["optimizer/m"].keys() if "optimizer/m" in f else f.keys())
    del f[sys.argv[2]]
PY
  expect_fail 1 "step-3.h5: dataset $d is missing" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/missing"
done
# wrong checkpoint_version
mk ver
# set the root attribute to 7: try each little-endian 1 after its name until h5dump reads 7
python3 - "$T/ver/ckpt/step-3.h5" <<'PY' || fail "cannot patch checkpoint_version"
import subprocess, sys
p = sys.argv[1]; orig = open(p, "rb").read()
i = orig.find(b"checkpoint_version"); assert i > 0
j = i
while True:
    j = orig.find(b"\x01\x00\x00\x00", j + 1)
    assert 0 < j < i + 200, "not found"
    b = bytearray(orig); b[j] = 7; open(p, "wb").write(b)
    out = subprocess.run(["h5dump", "-a", "/checkpoint_version", p], capture_output=True, text=True).stdout
    if "(0): 7" in out:
        break
PY
expect_fail 1 "checkpoint_version is 7, this llamapro reads version 1" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/ver"
# a stale .partial beside a good checkpoint is ignored and cleaned
mk stale
cp "$CK" "$T/stale/ckpt/step-6.h5.partial"
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=4 run.dir="$T/stale" 2> "$T/stale.log"
grep -q 'resuming from .*step-3.h5 at step 3' "$T/stale.log" || fail "stale: $(cat "$T/stale.log")"
[ ! -e "$T/stale/ckpt/step-6.h5.partial" ] || fail "stale .partial kept"
echo "ckpt_corrupt: passed"
