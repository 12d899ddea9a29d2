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
#endif
