/* sampler_layout_main.c - fetch global batches the way a PP x DP layout would (layout_walk.h), for
 * tests/mpi/sampler_layouts.sh.
 *   sampler_layout CORPUS PP DP G STEPS MICRO
 * Writes rankR.txt: "step seq tokens..." per sequence. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "layout_walk.h"
#include "llamapro/sampler.h"

static void fill(void *s, uint64_t step, int first, int n, int *buf) { lp_sampler_fill(s, step, first, n, buf); }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 7) {
        fprintf(stderr, "usage: sampler_layout CORPUS PP DP G STEPS MICRO\n");
        return 1;
    }
    int pp = atoi(argv[2]), dp = atoi(argv[3]), G = atoi(argv[4]), steps = atoi(argv[5]), micro = atoi(argv[6]);
    const int T = 32;
    lp_sampler *s = lp_sampler_open(argv[1], "train", T, G, 1234);
    layout_walk(pp, dp, G, steps, micro, T, fill, NULL, s);
    lp_sampler_close(s);
    MPI_Finalize();
    return 0;
}
