/* instream.c - plain, gzip and zstd input files as one byte stream (instream.h). */
#include "llamapro/instream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "llamapro/check.h"

struct lp_in {
    gzFile gz;               /* plain or gzip; NULL for zstd */
    FILE *fp;                /* zstd: the compressed file */
    ZSTD_DStream *ds;
    unsigned char *ibuf, *obuf;
    ZSTD_inBuffer in;
    size_t icap, ocap, opos, olen; /* decoded bytes obuf[opos, olen) not yet handed out */
    size_t frame_left;       /* last ZSTD_decompressStream result: 0 = between frames */
    long long consumed;      /* compressed bytes read from fp */
    int started, draining;
    char err[160];
};

int lp_in_is_zstd(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && !strcmp(path + n - 4, ".zst");
}

lp_in *lp_in_open(const char *path) {
    lp_in *f = lp_calloc(1, sizeof *f, "allocating an input stream");
    if (!lp_in_is_zstd(path)) {
        f->gz = gzopen(path, "rb");
        if (!f->gz) {
            int e = errno;
            lp_free(f);
            errno = e;
            return NULL;
        }
        gzbuffer(f->gz, 1 << 18);
        return f;
    }
    f->fp = fopen(path, "rb");
    if (!f->fp) {
        int e = errno;
        lp_free(f);
        errno = e;
        return NULL;
    }
    f->ds = ZSTD_createDStream();
    LP_CHECK_SYS(f->ds != NULL, "creating a zstd decompression stream");
    ZSTD_initDStream(f->ds);
    f->icap = ZSTD_DStreamInSize();
    f->ocap = ZSTD_DStreamOutSize();
    f->ibuf = lp_calloc(f->icap, 1, "allocating the zstd input buffer");
    f->obuf = lp_calloc(f->ocap, 1, "allocating the zstd output buffer");
    f->in = (ZSTD_inBuffer){f->ibuf, 0, 0};
    return f;
}

void lp_in_close(lp_in *f) {
    if (!f) return;
    if (f->gz) gzclose(f->gz);
    if (f->fp) fclose(f->fp);
    ZSTD_freeDStream(f->ds);
    lp_free(f->ibuf);
    lp_free(f->obuf);
    lp_free(f);
}

/* Decode more bytes into obuf (which is empty). 1: some bytes, 0: end of input, -1: error. */
static int refill(lp_in *f) {
    f->opos = f->olen = 0;
    for (;;) {
        /* a full output buffer may leave decoded bytes inside the decoder: drain before reading */
        if (f->in.pos == f->in.size && !f->draining) {
            size_t got = fread(f->ibuf, 1, f->icap, f->fp);
            if (got == 0) {
                if (ferror(f->fp)) {
                    snprintf(f->err, sizeof f->err, "%s", strerror(errno ? errno : EIO));
                    return -1;
                }
                if (f->started && f->frame_left != 0) {
                    snprintf(f->err, sizeof f->err, "truncated zstd data: the file ends inside a frame");
                    return -1;
                }
                return 0;
            }
            f->in = (ZSTD_inBuffer){f->ibuf, got, 0};
            f->consumed += (long long)got;
        }
        ZSTD_outBuffer out = {f->obuf, f->ocap, 0};
        size_t r = ZSTD_decompressStream(f->ds, &out, &f->in);
        if (ZSTD_isError(r)) {
            snprintf(f->err, sizeof f->err, "corrupt zstd data (%s)", ZSTD_getErrorName(r));
            return -1;
        }
        f->started = 1;
        f->frame_left = r;
        f->draining = out.pos == out.size;
        if (out.pos) {
            f->olen = out.pos;
            return 1;
        }
    }
}

int lp_in_read(lp_in *f, void *buf, unsigned n) {
    if (f->gz) return gzread(f->gz, buf, n);
    if (f->err[0]) return -1;
    unsigned k = 0;
    while (k < n) {
        if (f->opos == f->olen) {
            int r = refill(f);
            if (r < 0) return k > 0 ? (int)k : -1; /* the bytes before the error first; then -1 */
            if (r == 0) break;
        }
        size_t take = f->olen - f->opos < n - k ? f->olen - f->opos : n - k;
        memcpy((char *)buf + k, f->obuf + f->opos, take);
        k += (unsigned)take;
        f->opos += take;
    }
    return (int)k;
}

long long lp_in_offset(lp_in *f) { return f->gz ? (long long)gzoffset(f->gz) : f->consumed; }

const char *lp_in_error(lp_in *f) {
    if (!f->gz) return f->err[0] ? f->err : NULL;
    int zerr;
    const char *m = gzerror(f->gz, &zerr);
    if (zerr == Z_OK) return NULL;
    if (zerr == Z_ERRNO) snprintf(f->err, sizeof f->err, "%s", strerror(errno));
    else snprintf(f->err, sizeof f->err, "%s", m);
    return f->err;
}
