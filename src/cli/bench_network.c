/* bench_network.c - `llamapro bench --network`: ping-pong latency and bandwidth between pairs of
 * the ranks it runs on, and all-reduce times over all of them, for message sizes from 8 bytes up;
 * the link figures (latency, bandwidth inside a node and between nodes) are what `llamapro plan`
 * reads (plan.h: lp_net_read_json). */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/plan.h"

#define MAX_SIZES 32

static void usage(FILE *f) {
    fprintf(f,
            "usage: mpirun -n R llamapro bench --network [--max-bytes N] [--reps N] [--json FILE]\n\n"
            "Under MPI with R >= 2 ranks (srun or mpirun, one rank per node or several): for each pair of\n"
            "ranks (every pair up to 16 ranks, else rank 0 with each other rank), the half round-trip\n"
            "time of a ping-pong per message size (8 bytes, x8 up to --max-bytes); then MPI_Allreduce of\n"
            "floats over all ranks per size. Prints a table and, per link kind (inside a node, between\n"
            "nodes, from the ranks' host names), the latency (smallest message) and bandwidth (best of\n"
            "the messages >= 64 KiB, latency removed): the network description `llamapro plan --net FILE` reads.\n\n"
            "  --max-bytes N  largest message (default 16777216)\n"
            "  --reps N       timed repetitions per size (default: 50 for small messages, fewer for large;\n"
            "                 the median counts)\n"
            "  --json FILE    also write every time and the link summary as one JSON object\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *x, int n) {
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return x[n / 2];
}

static int reps_for(size_t bytes, int reps) {
    if (reps > 0) return reps;
    return bytes <= 65536 ? 50 : bytes <= (1 << 20) ? 20 : 5;
}

/* Half round trip of `bytes` between ranks a and b (median of reps, after one warm-up); every rank
 * calls it, the others wait in the broadcast of the result. Returns the time on every rank. */
static double pingpong(char *buf, size_t bytes, int a, int b, int reps, int rank, double *work) {
    LP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD), "synchronising the ping-pong");
    for (int r = -1; r < reps; r++) { /* back to back: a barrier per round trip would be timed too */
        double t = MPI_Wtime();
        if (rank == a) {
            LP_CHECK_MPI(MPI_Send(buf, (int)bytes, MPI_BYTE, b, 1, MPI_COMM_WORLD), "sending a ping");
            LP_CHECK_MPI(MPI_Recv(buf, (int)bytes, MPI_BYTE, b, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "receiving a pong");
        } else if (rank == b) {
            LP_CHECK_MPI(MPI_Recv(buf, (int)bytes, MPI_BYTE, a, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "receiving a ping");
            LP_CHECK_MPI(MPI_Send(buf, (int)bytes, MPI_BYTE, a, 2, MPI_COMM_WORLD), "sending a pong");
        }
        if (r >= 0) work[r] = (MPI_Wtime() - t) / 2;
    }
    double med = rank == a ? median(work, reps) : 0;
    LP_CHECK_MPI(MPI_Bcast(&med, 1, MPI_DOUBLE, a, MPI_COMM_WORLD), "sharing a ping-pong time");
    return med;
}

/* The slowest rank's time of one MPI_Allreduce of `bytes` of floats (median over reps). */
static double allreduce(float *x, size_t bytes, int reps, double *work) {
    int n = (int)(bytes / sizeof(float));
    if (n < 1) n = 1;
    for (int r = -1; r < reps; r++) {
        LP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD), "synchronising the all-reduce");
        double t = MPI_Wtime();
        LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "timing an all-reduce");
        t = MPI_Wtime() - t;
        LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "gathering all-reduce times");
        if (r >= 0) work[r] = t;
    }
    return median(work, reps);
}

typedef struct {
    int a, b, same;
    double t[MAX_SIZES];
} pair_times;

/* Median over the pairs of one kind (same node or not): latency from the smallest size, bandwidth
 * from the large sizes with the latency taken off. Returns 0 when no pair is of that kind. */
static int summarise(const pair_times *p, int np, int same, int ns, const size_t *sizes, lp_link *out) {
    double lat[1024], bw[1024];
    int k = 0;
    for (int i = 0; i < np && k < 1024; i++) {
        if (p[i].same != same) continue;
        lat[k] = p[i].t[0];
        /* the best of the large messages (>= 64 KiB, or the largest): a machine shared with other
         * work slows some transfers down, none speeds up */
        bw[k] = 0;
        for (int j = 0; j < ns; j++) {
            if (sizes[j] < 65536 && j < ns - 1) continue;
            /* latency larger than the transfer (ranks sharing a core): no latency to take off */
            double dt = p[i].t[j] - p[i].t[0], b = sizes[j] / (dt > 0.1 * p[i].t[j] ? dt : p[i].t[j]);
            if (b > bw[k]) bw[k] = b;
        }
        k++;
    }
    if (!k) return 0;
    out->latency_s = median(lat, k);
    out->bandwidth_Bps = median(bw, k);
    return k;
}

int lp_cmd_bench_network(int argc, char **argv) {
    static const struct option opts[] = {{"network", no_argument, 0, 'n'},     {"max-bytes", required_argument, 0, 'm'},
                                         {"reps", required_argument, 0, 'r'},  {"json", required_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    long max_bytes = 1 << 24;
    int reps = 0, o;
    const char *json = NULL;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:r:j:h", opts, NULL)) != -1) {
        switch (o) {
        case 'n': break;
        case 'm': max_bytes = atol(optarg); if (max_bytes < 8 || max_bytes > (1L << 30)) lp_user_error("--max-bytes: expected 8 to 1073741824, got '%s'", optarg); break;
        case 'r': reps = atoi(optarg); if (reps < 1) lp_user_error("--reps: expected a positive count, got '%s'", optarg); break;
        case 'j': json = optarg; break;
        case 'h': usage(stdout); return 0;
        default: lp_user_error("bench --network: unknown option (see llamapro bench --network --help)");
        }
    }
    if (optind < argc) lp_user_error("bench --network: unexpected argument '%s' (see llamapro bench --network --help)", argv[optind]);
    int rank, size;
    LP_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "bench --network");
    LP_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size), "bench --network");
    if (size < 2)
        lp_user_error_all("bench --network: runs on %d MPI rank; expected at least 2 (mpirun -n 2 or srun -N 2 llamapro bench --network)",
                          size);
    char host[MPI_MAX_PROCESSOR_NAME] = {0}, *hosts = lp_calloc((size_t)size, MPI_MAX_PROCESSOR_NAME, "naming the hosts");
    int hl;
    LP_CHECK_MPI(MPI_Get_processor_name(host, &hl), "naming this host");
    LP_CHECK_MPI(MPI_Allgather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD),
                 "gathering host names");
    size_t sizes[MAX_SIZES];
    int ns = 0;
    for (size_t s = 8; s <= (size_t)max_bytes && ns < MAX_SIZES; s *= 8) sizes[ns++] = s;
    if (sizes[ns - 1] != (size_t)max_bytes && ns < MAX_SIZES) sizes[ns++] = (size_t)max_bytes;
    char *buf = lp_calloc((size_t)max_bytes, 1, "allocating message buffers");
    double *work = lp_calloc(reps > 50 ? (size_t)reps : 50, sizeof(double), "allocating timings");
    int all_pairs = size <= 16, np = all_pairs ? size * (size - 1) / 2 : size - 1, k = 0;
    pair_times *pairs = lp_calloc((size_t)np, sizeof *pairs, "allocating timings");
    for (int a = 0; a < size; a++)
        for (int b = a + 1; b < size; b++) {
            if (!all_pairs && a > 0) break;
            pair_times *p = &pairs[k++];
            p->a = a, p->b = b;
            p->same = !strcmp(hosts + (size_t)a * MPI_MAX_PROCESSOR_NAME, hosts + (size_t)b * MPI_MAX_PROCESSOR_NAME);
            for (int i = 0; i < ns; i++) p->t[i] = pingpong(buf, sizes[i], a, b, reps_for(sizes[i], reps), rank, work);
        }
    double ar[MAX_SIZES];
    for (int i = 0; i < ns; i++) ar[i] = allreduce((float *)buf, sizes[i], reps_for(sizes[i], reps), work);
    lp_link intra = {0, 1}, inter = {0, 1};
    int n_intra = summarise(pairs, np, 1, ns, sizes, &intra), n_inter = summarise(pairs, np, 0, ns, sizes, &inter);
    if (rank == 0) {
        printf("bench --network: %d ranks on", size);
        for (int r = 0; r < size; r++) printf(" %s", hosts + (size_t)r * MPI_MAX_PROCESSOR_NAME);
        printf("\nbench --network: ping-pong, half round trip in microseconds (bandwidth GB/s)\n%-14s", "bytes");
        for (int i = 0; i < ns; i++) printf(" %10zu", sizes[i]);
        printf("\n");
        for (int i = 0; i < np; i++) {
            char name[32];
            snprintf(name, sizeof name, "%d-%d %s", pairs[i].a, pairs[i].b, pairs[i].same ? "node" : "net");
            printf("%-14s", name);
            for (int j = 0; j < ns; j++) printf(" %10.2f", pairs[i].t[j] * 1e6);
            printf("\n%-14s", "");
            for (int j = 0; j < ns; j++) printf(" %10.3f", sizes[j] / pairs[i].t[j] * 1e-9);
            printf("\n");
        }
        printf("%-14s", "allreduce");
        for (int j = 0; j < ns; j++) printf(" %10.2f", ar[j] * 1e6);
        printf("\n");
        if (n_intra)
            printf("bench --network: inside a node (%d pairs): latency %.2f us, bandwidth %.3f GB/s\n", n_intra,
                   intra.latency_s * 1e6, intra.bandwidth_Bps * 1e-9);
        if (n_inter)
            printf("bench --network: between nodes (%d pairs): latency %.2f us, bandwidth %.3f GB/s\n", n_inter,
                   inter.latency_s * 1e6, inter.bandwidth_Bps * 1e-9);
        if (json) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.partial", json);
            lp_partial_register(tmp);
            FILE *f = fopen(tmp, "w");
            if (!f) lp_user_error("--json: cannot write %s", tmp);
            fprintf(f, "{\"ranks\": %d, \"hosts\": [", size);
            for (int r = 0; r < size; r++) fprintf(f, "%s\"%s\"", r ? ", " : "", hosts + (size_t)r * MPI_MAX_PROCESSOR_NAME);
            fprintf(f, "], \"sizes\": [");
            for (int j = 0; j < ns; j++) fprintf(f, "%s%zu", j ? ", " : "", sizes[j]);
            fprintf(f, "],\n \"pingpong\": [");
            for (int i = 0; i < np; i++) {
                fprintf(f, "%s{\"a\": %d, \"b\": %d, \"same_node\": %s, \"seconds\": [", i ? ",\n  " : "", pairs[i].a, pairs[i].b,
                        pairs[i].same ? "true" : "false");
                for (int j = 0; j < ns; j++) fprintf(f, "%s%.9g", j ? ", " : "", pairs[i].t[j]);
                fprintf(f, "]}");
            }
            fprintf(f, "],\n \"allreduce\": {\"ranks\": %d, \"seconds\": [", size);
            for (int j = 0; j < ns; j++) fprintf(f, "%s%.9g", j ? ", " : "", ar[j]);
            fprintf(f, "]},\n \"intra\": ");
            if (n_intra) fprintf(f, "{\"latency_s\": %.9g, \"bandwidth_Bps\": %.6g, \"pairs\": %d}", intra.latency_s, intra.bandwidth_Bps, n_intra);
            else fprintf(f, "null");
            fprintf(f, ",\n \"inter\": ");
            if (n_inter) fprintf(f, "{\"latency_s\": %.9g, \"bandwidth_Bps\": %.6g, \"pairs\": %d}", inter.latency_s, inter.bandwidth_Bps, n_inter);
            else fprintf(f, "null");
            fprintf(f, "}\n");
            LP_CHECK_SYS(fclose(f) == 0, "writing the network measurements");
            LP_CHECK_SYS(rename(tmp, json) == 0, "renaming the network measurements into place");
            lp_partial_unregister(tmp);
        }
    }
    lp_free(pairs), lp_free(work), lp_free(buf), lp_free(hosts);
    return 0;
}
