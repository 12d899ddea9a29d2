/* ckpt_bench_main.c - checkpoint write/read time and bytes with and without external links for
 * frozen tensors: ckpt_bench MODEL.h5 DIR. Marks the model's trainable layers (llama-pro), writes
 * one checkpoint each way into DIR/link and DIR/copy, reads each back, prints one line per mode. */
#include <mpi.h>
#include <stdio.h>
#include <sys/stat.h>

#include "llamapro/checkpoint.h"
#include "llamapro/model_file.h"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc != 3) return fprintf(stderr, "usage: ckpt_bench MODEL.h5 DIR\n"), 1;
    lp_model m;
    lp_model_load(&m, argv[1], MPI_COMM_WORLD);
    for (int l = 0; l < m.cfg.n_layers; l++)
        if (m.layers[l].marked_trainable) lp_model_set_layer_trainable(&m, l);
    lp_adamw o;
    lp_adamw_init(&o, &m, 0.9, 0.95, 1e-8, 0.1);
    lp_train_state st = {.step = 1, .dp = 1, .pp = 1, .ranks = 1, .config_text = "[run]\n"};
    for (int link = 1; link >= 0; link--) {
        char dir[2048], path[2200];
        snprintf(dir, sizeof dir, "%s/%s", argv[2], link ? "link" : "copy");
        mkdir(dir, 0777);
        lp_ckpt_stats s;
        lp_ckpt_save(dir, &m, &o, &st, link ? argv[1] : NULL, 0, MPI_COMM_WORLD, &s);
        snprintf(path, sizeof path, "%s/step-1.h5", dir);
        double t0 = MPI_Wtime();
        lp_train_state r;
        lp_ckpt_load(path, &m, &o, &r, MPI_COMM_WORLD);
        double rd = MPI_Wtime() - t0;
        printf("%-5s bytes %lld write %.3f s read %.3f s\n", link ? "link" : "copy", s.bytes, s.seconds, rd);
    }
    MPI_Finalize();
    return 0;
}
