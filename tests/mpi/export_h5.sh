# export_h5.sh - `export --to h5`: f32 copy equals the input, bf16 is about half the size, the same
# under 2 ranks, and bad flags are one-line user errors.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
run "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$T/m.h5" > /dev/null
run "$LLAMAPRO" export --in "$T/m.h5" --to h5 "$T/f32.h5" > /dev/null
h5diff -q "$T/m.h5" "$T/f32.h5" /weights /weights || fail "f32 export differs from its input"
run "$LLAMAPRO" export --in "$T/m.h5" --to h5 "$T/bf16.h5" --dtype bf16 > /dev/null
"$MPIEXEC" -n 2 "$LLAMAPRO" export --in "$T/m.h5" --to h5 "$T/bf16-2.h5" --dtype bf16 > /dev/null || fail "2-rank export"
h5diff -q "$T/bf16.h5" "$T/bf16-2.h5" /weights /weights || fail "2-rank bf16 export differs"
h5dump -H -d /weights/layers/000/wq "$T/bf16.h5" | grep -q 'H5T_STD_U16LE' || fail "bf16 dataset is not uint16"
h5dump -A -d /weights/layers/000/wq "$T/bf16.h5" | grep -q '"bfloat16"' || fail "no dtype attribute"
a=$(stat -c %s "$T/f32.h5"); b=$(stat -c %s "$T/bf16.h5")
python3 -c "import sys; r=$b/$a; sys.exit(0 if 0.4 < r < 0.65 else 1)" || fail "bf16 $b bytes vs f32 $a bytes"
"$LLAMAPRO" info --verify "$T/bf16.h5" > /dev/null || fail "info --verify on bf16"
expect_fail 1 "--dtype must be 'f32' or 'bf16'" "$LLAMAPRO" export --in "$T/m.h5" --to h5 "$T/x.h5" --dtype f16
expect_fail 1 "--to must be 'h5' or 'hf'" "$LLAMAPRO" export --in "$T/m.h5" --to onnx "$T/x.h5"
expect_fail 1 "--in MODEL.h5 is required" "$LLAMAPRO" export --to h5 "$T/x.h5"
expect_fail 1 "nothere.h5: cannot open" "$LLAMAPRO" export --in "$T/nothere.h5" --to h5 "$T/x.h5"
[ ! -e "$T/x.h5" ] && [ ! -e "$T/x.h5.partial" ] || fail "partial output left behind"
echo "export_h5: passed"
