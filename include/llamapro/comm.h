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

/* Duplicate the world communicator, find the ranks sharing this node, and give each rank
 * cores / local ranks OpenMP threads unless OMP_NUM_THREADS says otherwise (warns when threads x
 * ranks exceed the cores). Collective over MPI_COMM_WORLD. */
void lp_comm_init(lp_comm *c);
void lp_comm_free(lp_comm *c);

#endif
