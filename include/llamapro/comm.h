/* comm.h - communicators, split once at start-up (PETSc style: llamapro never communicates on
 * MPI_COMM_WORLD itself, only on its duplicate), and the thread budget per rank. */
#ifndef LLAMAPRO_COMM_H
#define LLAMAPRO_COMM_H

#include <mpi.h>

typedef struct {
    MPI_Comm world;   /* duplicate of MPI_COMM_WORLD */
    int rank, size;
    int local_rank, local_size; /* ranks on this node */
    int threads;      /* OpenMP threads of this rank */
} lp_comm;

/* Give this rank cores / (ranks on this node) OpenMP threads, unless OMP_NUM_THREADS says
 * otherwise (then warn once per node when threads x ranks exceed the cores). Called by main for
 * every subcommand, so threads x ranks <= cores everywhere. Collective over MPI_COMM_WORLD. */
void lp_threads_setup(void);

/* Duplicate the world communicator and record this rank's place (node rank, threads).
 * Collective over MPI_COMM_WORLD. */
void lp_comm_init(lp_comm *c);
void lp_comm_free(lp_comm *c);

#endif
