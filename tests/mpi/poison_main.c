/* poison_main.c - for tests/mpi/train_nonfinite.sh: overwrite element INDEX of dataset DATASET
 * of an HDF5 model file with NaN or Inf, in place, through HDF5 itself (so the Fletcher32 checksum
 * is recomputed and only the value is wrong).   poison FILE DATASET INDEX nan|inf */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: poison FILE DATASET INDEX nan|inf\n");
        return 2;
    }
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, argv[2], H5P_DEFAULT);
    if (d < 0) return 2;
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    long i = atol(argv[3]);
    if (i < 0 || i >= n) return 2;
    float *x = malloc(sizeof(float) * (size_t)n);
    if (!x || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) return 2;
    x[i] = strcmp(argv[4], "inf") ? NAN : INFINITY;
    if (H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) return 2;
    free(x);
    H5Sclose(sp), H5Dclose(d);
    return H5Fclose(f) < 0 ? 2 : 0;
}
