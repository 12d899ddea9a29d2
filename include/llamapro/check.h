/* check.h - errors, exit codes, checked calls and aligned allocation.
 *
 * Two kinds of failure, never mixed:
 *  - a user's mistake (bad file, flag, field): lp_user_error() prints ONE line naming the file, field
 *    or flag and what was expected, removes registered partial outputs, exits 1;
 *  - an internal failure (MPI, HDF5, system call, allocation): the LP_CHECK_* macros print file:line
 *    and what was being done, and exit 2. Except when the failure is the environment's: a system
 *    or HDF5 call failing with ENOSPC, EDQUOT or EROFS is a user error (exit 1) naming the output
 *    being written (the newest registered partial) and the errno text.
 * Under MPI with more than one rank both end in MPI_Abort, so no rank is left waiting in a collective.
 */
#ifndef LLAMAPRO_CHECK_H
#define LLAMAPRO_CHECK_H

#include <stddef.h>
#include <stdarg.h>

/* Longest path llamapro keeps in a fixed buffer (run config values, corpus sources). */
#define LP_PATH_MAX 1024

enum {
    LP_EXIT_OK = 0,
    LP_EXIT_USAGE = 1,    /* bad input or usage */
    LP_EXIT_INTERNAL = 2, /* internal error */
    LP_EXIT_SIGNAL = 75   /* stopped cleanly on a signal after a checkpoint (EX_TEMPFAIL) */
};

/* Print "llamapro: <message>" and exit 1 (user error). Partial outputs registered with
 * lp_partial_register are removed first. Never returns. */
void lp_user_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Collective variant for mistakes every rank detects alike (a bad [parallel] layout): every rank
 * of MPI_COMM_WORLD must call it with the same message. Rank 0 prints the one line, all ranks
 * finalize MPI and exit 1 (no MPI_Abort, so no abort banner and no rank left waiting). */
void lp_user_error_all(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* Print "llamapro: internal error at FILE:LINE while WHAT: DETAIL" and exit 2. Never returns. */
void lp_fatal_at(const char *file, int line, const char *what, const char *detail)
    __attribute__((noreturn));

/* Exit with `code` after removing partial outputs; MPI_Abort when several ranks are running. */
void lp_exit(int code) __attribute__((noreturn));

/* "[rank r] warning: ..." on stderr, from any rank. */
void lp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Rank-0 informational line on stderr (progress); silent on other ranks. */
void lp_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Register a temporary output (e.g. "out.h5.partial") to delete if the program dies; unregister
 * once it has been renamed into place. At most a handful at a time. */
void lp_partial_register(const char *path);
void lp_partial_unregister(const char *path);

/* Run fn on every exit path of this process that goes through lp_exit (errors included, which
 * skip atexit handlers) and on normal exit (atexit). For releasing what other processes wait on,
 * like a run directory's lock. At most a few. */
void lp_exit_hook(void (*fn)(void));

/* For commands that write outputs but do not checkpoint (prepare, expand, export, import, eval,
 * ...): SIGTERM, SIGINT, SIGUSR1 and SIGHUP remove the registered partial outputs (files, or flat
 * directories) and exit with 128 + the signal number, as a shell reports a killed program. Call
 * once, after MPI_Init. (train handles these signals itself: checkpoint, then exit 75.) */
void lp_stop_removes_partials(void);

/* Rank of this process in MPI_COMM_WORLD, 0 before MPI_Init. */
int lp_world_rank(void);

/* 64-byte aligned, zero-filled allocation; internal error (exit 2) naming `what` on failure. */
void *lp_calloc(size_t count, size_t size, const char *what);
void lp_free(void *p);

/* Checked calls. `what` is a short phrase: "opening model file", "all-reducing gradients". */
#define LP_CHECK_MPI(call, what)                                                                \
    do {                                                                                        \
        int lp_rc_ = (call);                                                                    \
        if (lp_rc_ != 0) lp_check_mpi_failed(__FILE__, __LINE__, (what), lp_rc_);               \
    } while (0)
/* HDF5 calls return a negative herr_t/hid_t on failure. */
#define LP_CHECK_H5(call, what)                                                                 \
    do {                                                                                        \
        if ((long long)(call) < 0) lp_check_h5_failed(__FILE__, __LINE__, (what));              \
    } while (0)
/* A system call that returns -1 (or NULL for pointer-returning calls wrapped by the caller). */
#define LP_CHECK_SYS(cond_ok, what)                                                             \
    do {                                                                                        \
        if (!(cond_ok)) lp_check_sys_failed(__FILE__, __LINE__, (what));                        \
    } while (0)
#define LP_ASSERT(cond, what)                                                                   \
    do {                                                                                        \
        if (!(cond)) lp_fatal_at(__FILE__, __LINE__, (what), "assertion failed: " #cond);     \
    } while (0)

void lp_check_mpi_failed(const char *file, int line, const char *what, int rc)
    __attribute__((noreturn));
void lp_check_h5_failed(const char *file, int line, const char *what) __attribute__((noreturn));
void lp_check_sys_failed(const char *file, int line, const char *what) __attribute__((noreturn));

#endif
