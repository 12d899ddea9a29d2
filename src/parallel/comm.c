/* comm.c - see comm.h. */
#include "llamapro/comm.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "llamapro/check.h"

static void node_place(MPI_Comm world, int *local_rank, int *local_size) {
    int rank;
    MPI_Comm node;
    LP_CHECK_MPI(MPI_Comm_rank(world, &rank), "querying the rank");
    LP_CHECK_MPI(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
                 "finding the ranks of this node");
    LP_CHECK_MPI(MPI_Comm_rank(node, local_rank), "querying the node rank");
    LP_CHECK_MPI(MPI_Comm_size(node, local_size), "querying the node size");
    LP_CHECK_MPI(MPI_Comm_free(&node), "freeing the node communicator");
}

void lp_threads_setup(void) {
    int local_rank, local_size;
    node_place(MPI_COMM_WORLD, &local_rank, &local_size);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (!getenv("OMP_NUM_THREADS")) {
        int t = (int)(cores / local_size);
        omp_set_num_threads(t < 1 ? 1 : t);
    }
    int threads = omp_get_max_threads();
    if ((long)threads * local_size > cores && local_rank == 0)
        lp_warn("%d ranks x %d threads on this node exceed its %ld cores: set OMP_NUM_THREADS=%ld",
                local_size, threads, cores, cores / local_size > 0 ? cores / local_size : 1);
}

void lp_comm_init(lp_comm *c) {
    LP_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c->world), "duplicating the world communicator");
    LP_CHECK_MPI(MPI_Comm_rank(c->world, &c->rank), "querying the rank");
    LP_CHECK_MPI(MPI_Comm_size(c->world, &c->size), "querying the world size");
    node_place(c->world, &c->local_rank, &c->local_size);
    c->threads = omp_get_max_threads();
}

void lp_comm_free(lp_comm *c) { LP_CHECK_MPI(MPI_Comm_free(&c->world), "freeing the world duplicate"); }
