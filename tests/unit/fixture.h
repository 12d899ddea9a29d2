/* fixture.h - reading the reference numbers in tests/fixtures (tests only). */
#ifndef LP_TEST_FIXTURE_H
#define LP_TEST_FIXTURE_H
#include <stddef.h>

/* Path of a file in the fixtures folder ($LP_FIXTURES); static buffer. */
const char *fx_path(const char *name);
/* Read dataset `dset` of HDF5 file `file` as float64 (converted); returns a malloc'd array and its
 * element count in *n; aborts the test program if missing. */
double *fx_read(const char *file, const char *dset, size_t *n);
/* The same, as int. */
int *fx_read_int(const char *file, const char *dset, size_t *n);
/* max |a - b| and ||a - b|| / ||b|| over n elements. */
double fx_max_abs_diff_f(const float *a, const double *b, size_t n);
double fx_rel_l2_f(const float *a, const double *b, size_t n);
/* A fresh empty temporary directory for this test; static buffer. */
const char *fx_tmpdir(void);

/* Path of tiny-gqa.reference.h5 (its own static buffer). */
const char *fx_reference(void);
/* The tiny-gqa model (config from the reference file's attributes) with the weights of
 * /base/weights; defined only for programs that link llamapro (every unit test does). */
#include "llamapro/model.h"
void fx_load_reference_model(lp_model *m);

/* The fixture's LLaMA Pro run (/expanded/train): the reference model expanded by 2 interleaved
 * blocks, the new ones trainable, and the training engine on one stage (pp = 1, dp = 1) with the
 * fixture's recipe (AdamW betas 0.9/0.95, eps 1e-8, weight decay 0.1, clip 1.0; the caller steps
 * lp_pipe_step(&r->t, r->seq, 1e-2, ...)) on its 2 sequences of T + 1 tokens. With `bf16`, the
 * model is set to precision bf16 first. before[i] is a copy of tensor i before training. */
#include "llamapro/partition.h"
#include "llamapro/pipeline.h"
typedef struct {
    lp_model base, m;
    int new_layers[2];
    float **before;
    int *seq, T;
    lp_layout ly;
    lp_partition part;
    lp_pipe t;
} fx_expanded_run;
void fx_expanded_run_init(fx_expanded_run *r, int bf16);
/* The model's forward as it is now on the first T tokens of both sequences: logits in
 * r->t.acts[0].logits. */
void fx_expanded_run_forward(fx_expanded_run *r);
void fx_expanded_run_free(fx_expanded_run *r);
#endif
