/* plan.h - predicted step time and memory of a training layout (`llamapro plan`), and the network
 * measurements it takes (`llamapro bench --network`).
 *
 * The compute and memory of each stage are the partitioner's (partition.h: lp_partition_plan with
 * lp_cost_rates, lp_acts_plan_bytes); this module adds what the partitioner leaves out, with the
 * latency-bandwidth (alpha-beta) model of each link:
 *   p2p        per microbatch and stage boundary, the activations (B x T x dim floats) forward and
 *              their gradient backward (when the earlier stage runs a backward); charged to the
 *              sending stage's forward / backward time, so the partitioner's schedule simulation
 *              (lp_schedule_bubble) sees it, and the bubble grows with it;
 *   all-reduce each stage's trainable gradients over its dp replicas, one ring all-reduce per tensor
 *              group the runtime reduces (2 (dp-1) alpha + 2 (dp-1)/dp bytes / bandwidth), plus the
 *              step's small collectives (loss, gradient norm, timings);
 *   optimizer  AdamW, the norm and zeroing: memory-bound, ~36 bytes per trainable parameter;
 *   tp         tensor parallelism (tp.h): a stage's block compute and its blocks' weights, gradients
 *              and optimizer state divide by tp (the embedding, the LM head and the activations
 *              do not: they are replicated); each block adds two all-reduces of the activations
 *              (B x T x dim floats) to its forward and two to its input-gradient backward, on
 *              the link between the group's ranks (neighbours: inside a node when tp <= ranks
 *              per node).
 * Ranks are placed as the runtime does (partition.h): rank r is stage r / (tp dp), replica
 * (r mod tp dp) / tp, and
 * ranks fill nodes in order, so a link is inside a node or between nodes by its two ranks.
 * Step time = pipeline phase (compute + bubble + p2p) + all-reduce + optimizer.
 * Memory per rank = the stage's weights + gradients + optimizer state + activations in flight (the
 * partitioner's figures, which `train` reports as allocated) + the process's runtime (MPI,
 * libraries, I/O buffers), a given constant.
 */
#ifndef LLAMAPRO_PLAN_H
#define LLAMAPRO_PLAN_H

#include <stdio.h>

#include "llamapro/model.h"
#include "llamapro/partition.h"

/* One kind of link: seconds for n bytes = latency_s + n / bandwidth_Bps. */
typedef struct {
    double latency_s, bandwidth_Bps;
} lp_link;
typedef struct {
    lp_link inter, intra; /* between nodes, inside a node */
} lp_net;

static inline double lp_link_seconds(lp_link l, double bytes) { return l.latency_s + bytes / l.bandwidth_Bps; }
/* Ring all-reduce of `bytes` over `ranks` ranks on `link`. 0 for one rank. */
double lp_allreduce_seconds(lp_link link, double bytes, int ranks);
/* Read the "inter" and "intra" links of a `bench --network --json` file into net; a class the
 * file did not measure (one node: no "inter") keeps its value. User error naming the file. */
void lp_net_read_json(lp_net *net, const char *path);

/* Resident memory of a llamapro rank besides model state and activations (MPI, libraries, I/O
 * buffers), measured here for `llamapro train` (34 MB before libdnnl was linked). */
#define LP_RUNTIME_BYTES 41e6

/* Bytes of memory of this node: `given` when > 0, else the Slurm allocation's limit
 * (SLURM_MEM_PER_NODE), else the physical memory. */
double lp_node_memory_bytes(double given);

typedef struct {
    int ranks_per_node;       /* MPI ranks on a node (each with cores / ranks_per_node threads) */
    double mem_bytes;         /* memory of a node */
    lp_cost_rates rates;      /* FLOP/s of one rank, per kind of work (partition.h) */
    double mem_bw_Bps;        /* memory bandwidth of one rank (optimizer) */
    double runtime_bytes;     /* resident memory of a rank besides model state and activations */
} lp_node;

typedef struct {
    int nodes, pp, tp, dp, B, M, schedule, T;
    lp_partition part;        /* stages: layers, FLOPs, seconds, memory (the partitioner's) */
    double t_compute;         /* busy time of the slowest stage (M microbatches) */
    double t_bubble;          /* idle time of the pipeline phase with free communication */
    double t_p2p;             /* what point-to-point messages add to the pipeline phase */
    double t_tp;              /* tensor-parallel all-reduces of the slowest stage (M microbatches; part of
                               * t_compute, as they sit inside each block) */
    double t_allreduce;       /* gradient all-reduce + the step's small collectives */
    double t_optim;           /* AdamW + gradient norm + zeroing */
    double t_step;
    double bubble;            /* idle fraction of the pipeline phase, communication included */
    double *stage_mem;        /* [pp] bytes per rank of each stage, runtime included */
    double mem_peak;          /* max of stage_mem */
    int fits;                 /* mem_peak * ranks_per_node <= node memory */
    double tokens_per_s;
} lp_plan_case;

/* Predict the step of `nodes` nodes x node->ranks_per_node ranks as pp stages x dp replicas,
 * microbatches of B x T, M per replica per step, with `schedule` and `partition` ("" = the cost
 * model's) for model skeleton m (config and trainable flags). User errors as lp_partition_plan. */
void lp_plan_case_eval(lp_plan_case *pc, const lp_model *m, const lp_node *node, const lp_net *net, int nodes, int pp,
                       int B, int T, int M, int schedule, const char *partition, const char *source);
/* The same with tp tensor-parallel ranks per stage (pp x tp divides the ranks; tp divides the
 * model's heads, kv heads and hidden_dim: the caller checks, lp_tp_check). */
void lp_plan_case_eval_tp(lp_plan_case *pc, const lp_model *m, const lp_node *node, const lp_net *net, int nodes, int pp,
                          int tp, int B, int T, int M, int schedule, const char *partition, const char *source);
void lp_plan_case_free(lp_plan_case *pc);
/* One JSON object (no newline) describing pc, for `plan --json` and the scaling-study report. */
void lp_plan_case_json(const lp_plan_case *pc, FILE *f);

#endif
