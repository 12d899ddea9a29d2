/* check.c - error reporting and exit paths shared by every module (see check.h). */
#include "llamapro/check.h"

#include <errno.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LP_MAX_PARTIALS 8
static char partials[LP_MAX_PARTIALS][4096];

int lp_world_rank(void) {
    int inited = 0, fin = 0, rank = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

static int world_size(void) {
    int inited = 0, fin = 0, size = 1;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}

void lp_partial_register(const char *path) {
    for (int i = 0; i < LP_MAX_PARTIALS; i++)
        if (!partials[i][0]) {
            snprintf(partials[i], sizeof partials[i], "%s", path);
            return;
        }
}

void lp_partial_unregister(const char *path) {
    for (int i = 0; i < LP_MAX_PARTIALS; i++)
        if (partials[i][0] && strcmp(partials[i], path) == 0) partials[i][0] = 0;
}

void lp_exit(int code) {
    /* Only one rank removes partial files: they are shared between ranks. */
    if (lp_world_rank() == 0)
        for (int i = 0; i < LP_MAX_PARTIALS; i++)
            if (partials[i][0]) unlink(partials[i]);
    fflush(stdout);
    fflush(stderr);
    if (world_size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin && code == 0) MPI_Finalize();
    exit(code);
}

void lp_user_error(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (world_size() > 1)
        fprintf(stderr, "llamapro: [rank %d] %s\n", lp_world_rank(), msg);
    else
        fprintf(stderr, "llamapro: %s\n", msg);
    lp_exit(LP_EXIT_USAGE);
}

void lp_user_error_all(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int rank = lp_world_rank();
    if (rank == 0) {
        fprintf(stderr, "llamapro: %s\n", msg);
        for (int i = 0; i < LP_MAX_PARTIALS; i++)
            if (partials[i][0]) unlink(partials[i]);
    }
    fflush(stdout);
    fflush(stderr);
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin) MPI_Finalize(); /* every rank is here: the barrier inside cannot hang */
    exit(LP_EXIT_USAGE);
}

void lp_fatal_at(const char *file, int line, const char *what, const char *detail) {
    fprintf(stderr, "llamapro: [rank %d] internal error at %s:%d while %s: %s\n", lp_world_rank(),
            file, line, what, detail);
    lp_exit(LP_EXIT_INTERNAL);
}

void lp_warn(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[rank %d] warning: %s\n", lp_world_rank(), msg);
}

void lp_info(const char *fmt, ...) {
    if (lp_world_rank() != 0) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void lp_check_mpi_failed(const char *file, int line, const char *what, int rc) {
    char detail[MPI_MAX_ERROR_STRING + 32];
    int len = 0;
    if (MPI_Error_string(rc, detail, &len) != MPI_SUCCESS) snprintf(detail, sizeof detail, "MPI error %d", rc);
    lp_fatal_at(file, line, what, detail);
}

static herr_t h5_walk(unsigned n, const H5E_error2_t *e, void *data) {
    char *out = data;
    if (n == 0) snprintf(out, 512, "%s (in %s)", e->desc ? e->desc : "?", e->func_name ? e->func_name : "?");
    return 0;
}

void lp_check_h5_failed(const char *file, int line, const char *what) {
    char detail[512] = "HDF5 call failed";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk, detail);
    lp_fatal_at(file, line, what, detail);
}

void lp_check_sys_failed(const char *file, int line, const char *what) {
    lp_fatal_at(file, line, what, strerror(errno));
}

void *lp_calloc(size_t count, size_t size, const char *what) {
    size_t bytes = count * size;
    if (size && bytes / size != count) lp_fatal_at(__FILE__, __LINE__, what, "size overflow");
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0 || !p) {
        char d[96];
        snprintf(d, sizeof d, "out of memory allocating %zu bytes", bytes);
        lp_fatal_at(__FILE__, __LINE__, what, d);
    }
    memset(p, 0, bytes);
    return p;
}

void lp_free(void *p) { free(p); }
