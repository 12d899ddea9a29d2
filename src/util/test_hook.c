/* test_hook.c - TEST-ONLY hooks (see test_hook.h): every environment variable that exists for the
 * test suite is read here and nowhere else. */
#include "llamapro/test_hook.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llamapro/check.h"

void lp_test_hook_ckpt_write(const char *partial, long step) {
    const char *slow = getenv("LLAMAPRO_TEST_SLOW_CKPT");
    if (!slow) return;
    double secs = atof(slow);
    const char *at = strchr(slow, '@');
    if (secs <= 0 || (at && atol(at + 1) != step)) return;
    lp_info("checkpoint: LLAMAPRO_TEST_SLOW_CKPT (test hook): sleeping %g s inside the write of %s", secs, partial);
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
}

size_t lp_test_hook_prepare_batch_bytes(size_t dflt) {
    const char *bb = getenv("LP_PREPARE_BATCH_BYTES");
    return bb ? (size_t)strtoull(bb, NULL, 10) : dflt;
}

void lp_test_hook_output_created(void) {
    const char *s = getenv("LLAMAPRO_TEST_STALL_OUTPUT");
    if (!s || !*s) return;
    double secs = atof(s);
    fprintf(stderr, "llamapro: LLAMAPRO_TEST_STALL_OUTPUT (test hook): stalling %g s with a partial output open\n", secs);
    struct timespec t = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}
