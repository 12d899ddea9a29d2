/* pipe_check_main.c - the pipeline on the tiny reference model, for tests/mpi/pipe_*.sh.
 *   pipe_check steps PP SCHEDULE M STEPS OUT [PARTITION [TP]]
 *     the fixture model expanded with P = 2 (new layers trainable), STEPS AdamW steps on a global
 *     batch of 4 sequences per step drawn from (seed, step) only; world = PP x DP, each replica
 *     M microbatches of 4 / (M * DP) sequences. Rank 0 writes OUT.txt (one line per step: loss and
 *     grad norm in hex floats) and all ranks OUT.h5 (the final model, written by the stages).
 *     TP > 1: each stage split over TP tensor-parallel ranks (world = PP x TP x DP; PARTITION ""
 *     for the cost model).
 *   pipe_check reference PP SCHEDULE
 *     the fixture's 3-step expanded/train run (2 sequences, 1 microbatch) through PP stages:
 *     losses and grad norms within 1e-4 relative, weights of the new layers within 1e-4 rel. L2.
 * Prints stage memory (weights, gradients, optimizer bytes) per rank. Exit 0 when all is well. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "llamapro/check.h"
#include "llamapro/expand.h"
#include "llamapro/model_file.h"
#include "llamapro/pipeline.h"
#include "llamapro/rng.h"
#include "llamapro/tp.h"

static int bad = 0;
#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "pipe_check [rank %d]: ", lp_world_rank()); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); bad = 1; } } while (0)

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc < 4) {
        fprintf(stderr, "usage: pipe_check steps PP SCHEDULE M STEPS OUT [PARTITION] | reference PP SCHEDULE\n");
        return 2;
    }
    int ref = !strcmp(argv[1], "reference"), pp = atoi(argv[2]), sched = lp_schedule_parse(argv[3]);
    lp_layout ly;
    int tp = !ref && argc > 8 ? atoi(argv[8]) : 1;
    lp_layout_init_tp(&ly, MPI_COMM_WORLD, pp, tp, "pipe_check");
    lp_model base, m;
    fx_load_reference_model(&base);
    int newl[2];
    char err[256];
    if (lp_expand(&base, &m, 2, LP_EXPAND_INTERLEAVE, newl, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 2; }
    lp_model_free(&base);
    for (int k = 0; k < 2; k++) lp_model_set_layer_trainable(&m, newl[k]);
    int T = 16, G = ref ? 2 : 4; /* the reference: 2 sequences of 16 + 1 tokens */
    int M = ref ? 1 : atoi(argv[4]), steps = ref ? 3 : atoi(argv[5]);
    int B = G / (M * ly.dp);
    if (B * M * ly.dp != G) { fprintf(stderr, "M * dp must divide %d\n", G); return 2; }
    lp_partition part;
    lp_partition_plan(&part, &m, pp, B, T, M, sched, NULL, argc > 7 && argv[7][0] ? argv[7] : NULL, "pipe_check");
    lp_partition_print(&part);
    const lp_stage_plan *st = &part.st[ly.stage];
    lp_model_keep_range(&m, st->l0, st->l1, st->embed, st->head);
    lp_tp tpg = {0};
    if (tp > 1) {
        lp_tp_check(&m.cfg, tp, "pipe_check");
        lp_tp_init(&tpg, ly.tp_comm);
        lp_tp_shard(&m, &tpg);
    }
    lp_pipe p;
    lp_pipe_init(&p, &m, &ly, &part, B, T, M, 0.9, 0.95, 1e-8, 0.1, 1.0);
    size_t w, g, o, a;
    lp_pipe_bytes(&p, &w, &g, &o, &a);
    if (tp > 1) printf("tp rank %d: ", ly.tp_rank);
    printf("stage %d replica %d: layers %d-%d weights %zu gradients %zu optimizer %zu activations %zu\n", ly.stage, ly.replica,
           st->l0, st->l1 - 1, w, g, o, a);
    CHECK(st->n_trainable > 0 || (g == 0 && o == 0), "a stage of frozen layers holds %zu gradient and %zu optimizer bytes", g, o);

    int *win = calloc((size_t)G * (T + 1), sizeof(int)), *seq = NULL;
    double *losses = NULL, *norms = NULL;
    size_t n;
    if (ref) {
        seq = fx_read_int(fx_reference(), "/input/sequences", &n);
        CHECK((int)n == G * (T + 1), "reference sequences: %zu tokens", n);
        losses = fx_read(fx_reference(), "/expanded/train/losses", &n);
        norms = fx_read(fx_reference(), "/expanded/train/grad_norms_before_clip", &n);
    }
    FILE *out = NULL;
    char path[4096];
    if (!ref && lp_world_rank() == 0) {
        snprintf(path, sizeof path, "%s.txt", argv[6]);
        out = fopen(path, "w");
    }
    for (int s = 0; s < steps; s++) {
        if (ref) {
            memcpy(win, seq, sizeof(int) * G * (T + 1));
        } else { /* the global batch of step s, a function of (seed, step) only */
            lp_rng r;
            lp_rng_seed(&r, lp_rng_mix(1234, (uint64_t)s, 0));
            for (int i = 0; i < G * (T + 1); i++) win[i] = (int)lp_rng_below(&r, (uint64_t)m.cfg.vocab_size);
        }
        double gn, loss = lp_pipe_step(&p, win + (size_t)ly.replica * B * M * (T + 1), ref ? 1e-2 : 1e-3, &gn);
        if (out) fprintf(out, "%d %a %a\n", s, loss, gn);
        if (ref) {
            if (lp_world_rank() == 0) printf("step %d loss %.7f (ref %.7f) grad norm %.7f (ref %.7f)\n", s, loss, losses[s], gn, norms[s]);
            CHECK(fabs(loss - losses[s]) <= 1e-4 * fabs(losses[s]), "step %d loss %.7f, reference %.7f", s, loss, losses[s]);
            CHECK(fabs(gn - norms[s]) <= 1e-4 * fabs(norms[s]), "step %d grad norm %.7f, reference %.7f", s, gn, norms[s]);
        }
    }
    if (out) fclose(out);
    if (ref) {
        for (int i = 0; i < m.n_tensors; i++) {
            lp_tensor *t = &m.tensors[i];
            if (!t->trainable || !t->data) continue;
            char d[160];
            snprintf(d, sizeof d, "/expanded/train/weights_after/%s", t->name);
            double *want = fx_read(fx_reference(), d, &n);
            double rel = fx_rel_l2_f(t->data, want, n);
            CHECK(rel <= 1e-4, "%s: relative L2 %.3g from the reference", t->name, rel);
            free(want);
        }
    } else {
        snprintf(path, sizeof path, "%s.h5", argv[6]);
        lp_model_save(&m, path, MPI_COMM_WORLD);
    }
    int any = bad;
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    lp_pipe_free(&p);
    lp_partition_free(&part);
    lp_model_free(&m);
    lp_tp_free(&tpg);
    lp_layout_free(&ly);
    free(win), free(seq), free(losses), free(norms);
    MPI_Finalize();
    return any;
}
