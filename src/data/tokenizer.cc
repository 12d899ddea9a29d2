// tokenizer.cc - the C API of tokenizer.h over libsentencepiece (C++17). Exceptions and
// sentencepiece statuses never cross into C: every entry point turns them into an error string.
#include "llamapro/tokenizer.h"

#include <sentencepiece_processor.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

struct lp_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    std::string bytes; // serialized model, kept for the checksum
};

static void set_err(char *err, size_t errlen, const std::string &msg) {
    if (err && errlen) std::snprintf(err, errlen, "%s", msg.c_str());
}

extern "C" lp_tokenizer *lp_tokenizer_load_bytes(const void *bytes, size_t len, char *err,
                                                 size_t errlen) {
    try {
        auto *t = new lp_tokenizer;
        t->bytes.assign(static_cast<const char *>(bytes), len);
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

extern "C" lp_tokenizer *lp_tokenizer_load_file(const char *path, char *err, size_t errlen) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        set_err(err, errlen, std::string("cannot open: ") + std::strerror(errno));
        return nullptr;
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) {
        set_err(err, errlen, std::string("cannot read: ") + std::strerror(errno));
        return nullptr;
    }
    std::string s = ss.str();
    return lp_tokenizer_load_bytes(s.data(), s.size(), err, errlen);
}

extern "C" void lp_tokenizer_free(lp_tokenizer *t) { delete t; }

extern "C" long lp_tokenizer_encode(const lp_tokenizer *t, const char *text, size_t len, int **ids,
                                    size_t *cap, char *err, size_t errlen) {
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

extern "C" int lp_tokenizer_vocab_size(const lp_tokenizer *t) { return t->sp.GetPieceSize(); }
extern "C" int lp_tokenizer_bos_id(const lp_tokenizer *t) { return t->sp.bos_id(); }
extern "C" int lp_tokenizer_eos_id(const lp_tokenizer *t) { return t->sp.eos_id(); }
extern "C" int lp_tokenizer_unk_id(const lp_tokenizer *t) { return t->sp.unk_id(); }

extern "C" const char *lp_tokenizer_piece(const lp_tokenizer *t, int id) {
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
