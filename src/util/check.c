/* check.c - error reporting and exit paths shared by every module (see check.h). */
#include "llamapro/check.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <signal.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Remove a partial output: a file, or a flat directory of files (an export in progress). */
static void remove_partial(const char *path) {
    if (unlink(path) == 0 || (errno != EISDIR && errno != EPERM)) return;
    DIR *d = opendir(path);
    if (d) {
        char p[4200];
        for (struct dirent *e; (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", path, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(path);
}

static void (*exit_hooks[4])(void);

void lp_exit_hook(void (*fn)(void)) {
    for (int i = 0; i < 4; i++)
        if (!exit_hooks[i]) {
            exit_hooks[i] = fn;
            atexit(fn);
            return;
        }
    LP_ASSERT(0, "registering an exit hook");
}

static void run_exit_hooks(void) {
    for (int i = 0; i < 4; i++)
        if (exit_hooks[i]) exit_hooks[i]();
}

void lp_exit(int code) {
    run_exit_hooks();
    /* Only one rank removes partial files: they are shared between ranks. */
    if (lp_world_rank() == 0)
        for (int i = 0; i < LP_MAX_PARTIALS; i++)
            if (partials[i][0]) remove_partial(partials[i]);
    fflush(stdout);
    fflush(stderr);
    if (world_size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (inited && !fin && code == 0) MPI_Finalize();
    /* On an error, leave without HDF5's atexit handler: it would close files still open on the
     * failed path (flushing metadata to a full or read-only disk, or to a file just removed), which
     * can print a second error or crash. Everything worth keeping is flushed above. */
    if (code != 0) _exit(code);
    exit(code);
}

/* ---- stop signals in commands that do not checkpoint ------------------------------------------ */
static volatile sig_atomic_t stop_rank = -1;

static void on_stop(int sig) {
    /* unlink and _exit are async-signal-safe; a partial directory's listing (opendir) is not
     * strictly, a risk taken once on the way out */
    if (stop_rank == 0)
        for (int i = 0; i < LP_MAX_PARTIALS; i++)
            if (partials[i][0]) remove_partial(partials[i]);
    _exit(128 + sig);
}

void lp_stop_removes_partials(void) {
    stop_rank = lp_world_rank();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigfillset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGINT, SIGUSR1, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        LP_CHECK_SYS(sigaction(sigs[i], &sa, NULL) == 0, "installing a signal handler");
}

/* Open MPI 4.1 has two MPI-IO implementations. Its own, OMPIO, prints every failed write
 * ("mca_fbtl_posix_pwritev: error in (p)write(v): No space left on device") to stderr on top of
 * returning the error, so a full disk would give two lines where the user gets one. ROMIO
 * reports through the return code only; it is also the MPI-IO that HDF5 is tested with and the
 * one that knows Lustre and GPFS hints. Chosen before main (and so before MPI_Init) unless the
 * user chose an io component. */
__attribute__((constructor)) static void prefer_romio(void) {
    if (!getenv("OMPI_MCA_io")) setenv("OMPI_MCA_io", "romio321", 0);
}

/* A full disk, an exceeded quota or a read-only filesystem is not a bug in llamapro: name the
 * output being written (the newest registered partial) and the errno text, exit 1. */
static int env_errno(int e) { return e == ENOSPC || e == EDQUOT || e == EROFS; }

static const char *current_output(void) {
    for (int i = LP_MAX_PARTIALS - 1; i >= 0; i--)
        if (partials[i][0]) return partials[i];
    return NULL;
}

static void env_error(int e, const char *what) __attribute__((noreturn));
static void env_error(int e, const char *what) {
    const char *out = current_output();
    if (out) lp_user_error("%s: %s while %s", out, strerror(e), what);
    lp_user_error("%s while %s", strerror(e), what);
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

/* Which of ENOSPC, EDQUOT, EROFS an HDF5 error stack reports (in the text of the file driver's or
 * MPI-IO's message), or 0. */
static herr_t h5_env_walk(unsigned n, const H5E_error2_t *e, void *data) {
    static const struct { const char *text; int err; } known[] = {
        {"No space left", ENOSPC}, {"MPI_ERR_NO_SPACE", ENOSPC}, {"no space", ENOSPC},
        {"quota", EDQUOT}, {"MPI_ERR_QUOTA", EDQUOT},
        {"Read-only file system", EROFS}, {"MPI_ERR_READ_ONLY", EROFS}, {"read-only", EROFS}};
    int *found = data;
    for (size_t i = 0; !*found && e->desc && i < sizeof known / sizeof *known; i++)
        if (strstr(e->desc, known[i].text)) *found = known[i].err;
    return 0;
}

void lp_check_h5_failed(const char *file, int line, const char *what) {
    int saved = errno, env = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_env_walk, &env);
    if (!env && env_errno(saved)) env = saved;
    if (env) env_error(env, what);
    char detail[512] = "HDF5 call failed";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_walk, detail);
    lp_fatal_at(file, line, what, detail);
}

void lp_check_sys_failed(const char *file, int line, const char *what) {
    int e = errno;
    if (env_errno(e)) env_error(e, what);
    lp_fatal_at(file, line, what, strerror(e));
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
