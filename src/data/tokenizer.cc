// tokenizer.cc - the C API of tokenizer.h over libsentencepiece (C++17) or byte-level BPE (bpe.h),
// chosen by the serialized bytes. Exceptions and sentencepiece statuses never cross into C: every
// entry point turns them into an error string.
#include "llamapro/tokenizer.h"

extern "C" {
#include "llamapro/bpe.h"
}

#include <sentencepiece_processor.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

struct lp_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    lp_bpe *bpe = nullptr; // the BPE kind when set, else sentencepiece
    std::string bytes;     // serialized model, kept for the checksum
    ~lp_tokenizer() { lp_bpe_free(bpe); }
};

static bool is_json(const void *bytes, size_t len) {
    const unsigned char *p = static_cast<const unsigned char *>(bytes);
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
    return i < len && p[i] == '{';
}

extern "C" const char *lp_tokenizer_kind_of(const void *bytes, size_t len) {
    if (!bytes || !len) return nullptr;
    return is_json(bytes, len) ? "bpe" : "sentencepiece";
}

static void set_err(char *err, size_t errlen, const std::string &msg) {
    if (err && errlen) std::snprintf(err, errlen, "%s", msg.c_str());
}

extern "C" lp_tokenizer *lp_tokenizer_load_bytes(const void *bytes, size_t len, char *err,
                                                 size_t errlen) {
    try {
        auto *t = new lp_tokenizer;
        t->bytes.assign(static_cast<const char *>(bytes), len);
        if (is_json(bytes, len)) { // tokenizer.json [NUL tokenizer_config.json]
            size_t j = t->bytes.find('\0');
            size_t jl = j == std::string::npos ? len : j;
            const char *cfg = j == std::string::npos ? nullptr : t->bytes.data() + j + 1;
            size_t cl = j == std::string::npos ? 0 : len - j - 1;
            char e[400];
            t->bpe = lp_bpe_load(t->bytes.data(), jl, cfg, cl, e, sizeof e);
            if (!t->bpe) {
                set_err(err, errlen, std::string("not a SentencePiece model, and as a tokenizer.json: ") + e);
                delete t;
                return nullptr;
            }
            return t;
        }
        auto st = t->sp.LoadFromSerializedProto(t->bytes);
        if (!st.ok()) {
            set_err(err, errlen, std::string("not a SentencePiece model (") + st.message() + ")");
            delete t;
            return nullptr;
        }
        return t;
    } catch (const std::exception &e) {
        set_err(err, errlen, std::string("cannot load SentencePiece model: ") + e.what());
        return nullptr;
    }
}

static bool read_whole(const std::string &path, std::string &out, std::string &why) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        why = path + ": cannot open: " + std::strerror(errno);
        return false;
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) {
        why = path + ": cannot read: " + std::strerror(errno);
        return false;
    }
    out = ss.str();
    return true;
}

static bool exists(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0;
}

extern "C" int lp_tokenizer_read_source(const char *path, unsigned char **bytes, size_t *len, char *err,
                                        size_t errlen) {
    try {
        std::string p = path, why, data;
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (exists(p + "/tokenizer.json")) p += "/tokenizer.json";
            else if (exists(p + "/tokenizer.model")) p += "/tokenizer.model";
            else {
                set_err(err, errlen, p + ": no tokenizer.json or tokenizer.model in this directory");
                return -1;
            }
        }
        if (!read_whole(p, data, why)) {
            set_err(err, errlen, why);
            return -1;
        }
        if (data.empty()) {
            set_err(err, errlen, p + ": the tokenizer file is empty");
            return -1;
        }
        if (is_json(data.data(), data.size())) {
            if (data.find('\0') != std::string::npos) {
                set_err(err, errlen, p + ": a NUL byte inside tokenizer.json (expected JSON text)");
                return -1;
            }
            size_t slash = p.rfind('/');
            std::string cfg = (slash == std::string::npos ? std::string() : p.substr(0, slash + 1)) +
                              "tokenizer_config.json", ctext;
            if (exists(cfg)) {
                if (!read_whole(cfg, ctext, why)) {
                    set_err(err, errlen, why);
                    return -1;
                }
                if (ctext.find('\0') != std::string::npos) {
                    set_err(err, errlen, cfg + ": a NUL byte (expected JSON text)");
                    return -1;
                }
                data.push_back('\0');
                data += ctext;
            }
        }
        *bytes = static_cast<unsigned char *>(std::malloc(data.size()));
        if (!*bytes) {
            set_err(err, errlen, "out of memory reading the tokenizer");
            return -1;
        }
        std::memcpy(*bytes, data.data(), data.size());
        *len = data.size();
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, std::string("reading the tokenizer: ") + e.what());
        return -1;
    }
}

extern "C" lp_tokenizer *lp_tokenizer_load_file(const char *path, char *err, size_t errlen) {
    unsigned char *b = nullptr;
    size_t n = 0;
    if (lp_tokenizer_read_source(path, &b, &n, err, errlen) < 0) return nullptr; // err names the file
    std::string why(errlen ? errlen : 1, '\0');
    lp_tokenizer *t = lp_tokenizer_load_bytes(b, n, &why[0], why.size());
    std::free(b);
    if (!t) set_err(err, errlen, std::string(path) + ": " + why.c_str());
    return t;
}

static bool write_file(const std::string &path, const char *p, size_t n, std::string &why) {
    FILE *f = std::fopen(path.c_str(), "wb");
    bool ok = f && std::fwrite(p, 1, n, f) == n;
    if (f && std::fclose(f) != 0) ok = false;
    if (!ok) why = path + ": cannot write: " + std::strerror(errno);
    return ok;
}

extern "C" int lp_tokenizer_write_hf(const void *bytes, size_t len, const char *dir, char *err, size_t errlen) {
    try {
        const char *p = static_cast<const char *>(bytes);
        std::string d = dir, why;
        if (!is_json(bytes, len)) {
            if (write_file(d + "/tokenizer.model", p, len, why)) return 0;
            set_err(err, errlen, why);
            return -1;
        }
        const char *nul = static_cast<const char *>(std::memchr(p, 0, len));
        size_t jl = nul ? static_cast<size_t>(nul - p) : len;
        if (!write_file(d + "/tokenizer.json", p, jl, why) ||
            (nul && !write_file(d + "/tokenizer_config.json", nul + 1, len - jl - 1, why))) {
            set_err(err, errlen, why);
            return -1;
        }
        return 0;
    } catch (const std::exception &e) {
        set_err(err, errlen, std::string("writing the tokenizer: ") + e.what());
        return -1;
    }
}

extern "C" void lp_tokenizer_free(lp_tokenizer *t) { delete t; }

extern "C" long lp_tokenizer_encode(const lp_tokenizer *t, const char *text, size_t len, int **ids,
                                    size_t *cap, char *err, size_t errlen) {
    if (t->bpe) return lp_bpe_encode(t->bpe, text, len, ids, cap, err, errlen);
    try {
        std::vector<int> v;
        auto st = t->sp.Encode(std::string_view(text, len), &v);
        if (!st.ok()) {
            set_err(err, errlen, std::string("encoding failed: ") + st.message());
            return -1;
        }
        if (v.size() > *cap || !*ids) {
            size_t ncap = v.size() > 2 * *cap ? v.size() : 2 * *cap;
            if (ncap == 0) ncap = 16;
            int *p = static_cast<int *>(std::realloc(*ids, ncap * sizeof(int)));
            if (!p) {
                set_err(err, errlen, "out of memory encoding text");
                return -1;
            }
            *ids = p;
            *cap = ncap;
        }
        if (!v.empty()) std::memcpy(*ids, v.data(), v.size() * sizeof(int));
        return static_cast<long>(v.size());
    } catch (const std::exception &e) {
        set_err(err, errlen, std::string("encoding failed: ") + e.what());
        return -1;
    }
}

extern "C" char *lp_tokenizer_decode(const lp_tokenizer *t, const int *ids, size_t n, char *err,
                                     size_t errlen) {
    if (t->bpe) return lp_bpe_decode(t->bpe, ids, n, nullptr, err, errlen);
    try {
        int V = t->sp.GetPieceSize();
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V) {
                set_err(err, errlen, "token id " + std::to_string(ids[i]) + " out of range [0, " +
                                         std::to_string(V) + ")");
                return nullptr;
            }
        std::string out;
        auto st = t->sp.Decode(std::vector<int>(ids, ids + n), &out);
        if (!st.ok()) {
            set_err(err, errlen, std::string("decoding failed: ") + st.message());
            return nullptr;
        }
        char *s = static_cast<char *>(std::malloc(out.size() + 1));
        if (!s) {
            set_err(err, errlen, "out of memory decoding ids");
            return nullptr;
        }
        std::memcpy(s, out.data(), out.size());
        s[out.size()] = 0;
        return s;
    } catch (const std::exception &e) {
        set_err(err, errlen, std::string("decoding failed: ") + e.what());
        return nullptr;
    }
}

extern "C" int lp_tokenizer_vocab_size(const lp_tokenizer *t) {
    return t->bpe ? lp_bpe_vocab_size(t->bpe) : t->sp.GetPieceSize();
}
extern "C" int lp_tokenizer_bos_id(const lp_tokenizer *t) { return t->bpe ? lp_bpe_bos_id(t->bpe) : t->sp.bos_id(); }
extern "C" int lp_tokenizer_eos_id(const lp_tokenizer *t) { return t->bpe ? lp_bpe_eos_id(t->bpe) : t->sp.eos_id(); }
extern "C" int lp_tokenizer_unk_id(const lp_tokenizer *t) { return t->bpe ? lp_bpe_unk_id(t->bpe) : t->sp.unk_id(); }
extern "C" const char *lp_tokenizer_kind(const lp_tokenizer *t) { return t->bpe ? "bpe" : "sentencepiece"; }

extern "C" const char *lp_tokenizer_piece(const lp_tokenizer *t, int id) {
    if (t->bpe) return lp_bpe_piece(t->bpe, id);
    if (id < 0 || id >= t->sp.GetPieceSize()) return nullptr;
    return t->sp.IdToPiece(id).c_str();
}

extern "C" void lp_tokenizer_checksum(const lp_tokenizer *t, char out[26]) {
    uint64_t h = 0xcbf29ce484222325ULL; // FNV-1a 64 offset basis
    for (unsigned char c : t->bytes) {
        h ^= c;
        h *= 0x100000001b3ULL; // FNV 64 prime
    }
    std::snprintf(out, 26, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
}
