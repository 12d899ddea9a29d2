#!/bin/bash
# train-tokenizer.sh - rebuild inputs/tokenizer/tokenizer.model, the tokenizer of the embedded base
# model, from the general corpus only (Brown, inputs/corpora/brown.jsonl.gz).
#
# Debian's sentencepiece 0.1.97 (apt-get install sentencepiece jq). Settings follow Llama 2's
# tokenizer (BPE, byte fallback so that any UTF-8 text - e.g. Python code - is encodable, digits
# split, no normalization, whitespace kept) at a small vocabulary. One thread and a fixed seed:
# the same input gives the same model, byte for byte.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus="$here/../corpora/brown.jsonl.gz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One training sentence per line of each document's text.
# The model records its training paths: relative names inside the temporary directory keep them
# (and so the file) the same on every run.
gzip -dc "$corpus" | jq -r '.text' > "$tmp/brown.txt"
cd "$tmp"
spm_train --input=brown.txt --model_prefix=tokenizer \
  --model_type=bpe --vocab_size=4096 --character_coverage=1.0 --byte_fallback=true \
  --split_digits=true --normalization_rule_name=identity --remove_extra_whitespaces=false \
  --allow_whitespace_only_pieces=true --max_sentence_length=16384 \
  --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 \
  --input_sentence_size=0 --shuffle_input_sentence=false --num_threads=1 --random_seed=1 \
  --minloglevel=1
cp tokenizer.model "$here/tokenizer.model"
echo "wrote $here/tokenizer.model"
