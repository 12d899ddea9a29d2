/* instream.h - a compressed or plain input file read as a byte stream: zlib's gz* functions for
 * plain and gzip files, libzstd's streaming decompressor for NAME.zst. Memory is two fixed
 * buffers whatever the file's size. The calls mirror zlib's (gzread, gzoffset, gzerror),
 * so that docsource.c reads every format through one path.
 *
 * A .zst file that ends inside a frame (truncated) or whose data does not decode (corrupt, or not
 * zstd at all) is a read error: lp_in_error then says which.
 */
#ifndef LLAMAPRO_INSTREAM_H
#define LLAMAPRO_INSTREAM_H

#include <stddef.h>

typedef struct lp_in lp_in;

/* Is `path` a zstd file by its name (ends in .zst)? */
int lp_in_is_zstd(const char *path);
/* Open for reading; NULL with errno set when it cannot be opened. */
lp_in *lp_in_open(const char *path);
void lp_in_close(lp_in *f);
/* As gzread: bytes read (0 at the end or on an error: lp_in_error tells them apart), or -1 on
 * an error. */
int lp_in_read(lp_in *f, void *buf, unsigned n);
/* Bytes of the file consumed so far (compressed), for progress; -1 when unknown. */
long long lp_in_offset(lp_in *f);
/* NULL when no error has happened, else what went wrong (a system error's strerror, or the
 * decompressor's message). */
const char *lp_in_error(lp_in *f);

#endif
