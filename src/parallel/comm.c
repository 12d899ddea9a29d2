/* comm.c - see comm.h. */
#include "llamapro/comm.h"

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "llamapro/check.h"

void lp_comm_init(lp_comm *c) {
    LP_CHECK_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c->world), "duplicating the world communicator");
    LP_CHECK_MPI(MPI_Comm_rank(c->world, &c->rank), "querying the rank");
    LP_CHECK_MPI(MPI_Comm_size(c->world, &c->size), "querying the world size");
    MPI_Comm node;
    LP_CHECK_MPI(MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node),
                 "finding the ranks of this node");
    LP_CHECK_MPI(MPI_Comm_rank(node, &c->local_rank), "querying the node rank");
    LP_CHECK_MPI(MPI_Comm_size(node, &c->local_size), "querying the node size");
    LP_CHECK_MPI(MPI_Comm_free(&node), "freeing the node communicator");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (!getenv("OMP_NUM_THREADS")) {
        int t = (int)(cores / c->local_size);
        omp_set_num_threads(t < 1 ? 1 : t);
    }
    c->threads = omp_get_max_threads();
    if ((long)c->threads * c->local_size > cores && c->local_rank == 0)
        lp_warn("%d ranks x %d threads on this node exceed its %ld cores: set OMP_NUM_THREADS=%ld",
                c->local_size, c->threads, cores, cores / c->local_size > 0 ? cores / c->local_size : 1);
}

void lp_comm_free(lp_comm *c) { LP_CHECK_MPI(MPI_Comm_free(&c->world), "freeing the world duplicate"); }
