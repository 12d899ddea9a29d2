/* sampler_layout_main.c - fetch global batches the way a PP x DP layout would, for
 * tests/mpi/sampler_layouts.sh.
 *   sampler_layout CORPUS PP DP G STEPS MICRO
 * World = PP x DP ranks; rank r is stage r / DP, replica r % DP. Replica d takes sequences
 * [d*G/DP, (d+1)*G/DP) of each global batch, MICRO sequences per fill call; every stage fetches
 * (stage 0 needs inputs, the last stage targets). Prints "step seq tokens..." per sequence. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "llamapro/sampler.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 7) {
        fprintf(stderr, "usage: sampler_layout CORPUS PP DP G STEPS MICRO\n");
        return 1;
    }
    int pp = atoi(argv[2]), dp = atoi(argv[3]), G = atoi(argv[4]), steps = atoi(argv[5]), micro = atoi(argv[6]);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != pp * dp) {
        fprintf(stderr, "world %d != pp*dp\n", size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const int T = 32;
    int d = rank % dp;
    lp_sampler *s = lp_sampler_open(argv[1], "train", T, G, 1234);
    int lo = d * G / dp, hi = (d + 1) * G / dp;
    int *buf = malloc((size_t)micro * (T + 1) * sizeof *buf);
    char path[64];
    snprintf(path, sizeof path, "rank%d.txt", rank);
    FILE *f = fopen(path, "w");
    for (int k = 0; k < steps; k++)
        for (int j = lo; j < hi; j += micro) {
            int n = hi - j < micro ? hi - j : micro;
            lp_sampler_fill(s, (uint64_t)k, j, n, buf);
            for (int q = 0; q < n; q++) {
                fprintf(f, "%d %d", k, j + q);
                for (int i = 0; i <= T; i++) fprintf(f, " %d", buf[q * (T + 1) + i]);
                fputc('\n', f);
            }
        }
    fclose(f);
    free(buf);
    lp_sampler_close(s);
    MPI_Finalize();
    return 0;
}
