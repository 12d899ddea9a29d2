/* layout_walk.h - shared by sampler_layout_main.c and mixture_main.c: fetch global batches the way
 * a PP x DP layout would. World = PP x DP ranks; rank r is stage r / DP, replica r % DP. Replica d
 * takes sequences [d*G/DP, (d+1)*G/DP) of each global batch, MICRO sequences per fill call; every
 * stage fetches (stage 0 needs inputs, the last stage targets). Writes rankR.txt, one line per
 * sequence: "step slot [tag columns] tokens..." (T + 1 tokens). */
#ifndef LP_TEST_LAYOUT_WALK_H
#define LP_TEST_LAYOUT_WALK_H
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* fill: n sequences of global batch `step` from slot `first` into buf[n][T + 1]; tag (may be NULL):
 * extra columns for the sequence in `slot`, each written as " value". */
typedef void (*lw_fill_fn)(void *ctx, uint64_t step, int first, int n, int *buf);
typedef void (*lw_tag_fn)(void *ctx, uint64_t step, int slot, FILE *f);

static void layout_walk(int pp, int dp, int G, int steps, int micro, int T, lw_fill_fn fill, lw_tag_fn tag,
                        void *ctx) {
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != pp * dp) {
        fprintf(stderr, "world %d != pp*dp\n", size);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int d = rank % dp, lo = d * G / dp, hi = (d + 1) * G / dp;
    int *buf = malloc((size_t)micro * (T + 1) * sizeof *buf);
    char path[64];
    snprintf(path, sizeof path, "rank%d.txt", rank);
    FILE *f = fopen(path, "w");
    if (!buf || !f) {
        fprintf(stderr, "cannot write %s\n", path);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (int k = 0; k < steps; k++)
        for (int j = lo; j < hi; j += micro) {
            int n = hi - j < micro ? hi - j : micro;
            fill(ctx, (uint64_t)k, j, n, buf);
            for (int q = 0; q < n; q++) {
                fprintf(f, "%d %d", k, j + q);
                if (tag) tag(ctx, (uint64_t)k, j + q, f);
                for (int i = 0; i <= T; i++) fprintf(f, " %d", buf[q * (T + 1) + i]);
                fputc('\n', f);
            }
        }
    fclose(f);
    free(buf);
}
#endif
