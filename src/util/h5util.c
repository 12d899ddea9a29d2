/* h5util.c - parallel HDF5 helpers (see h5util.h). */
#include "llamapro/h5util.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/test_hook.h"

/* Chunks of at most this many elements: large enough for fast I/O, small enough that a checksum
 * failure points at a bounded region and the chunk cache stays modest. */
#define LP_H5_CHUNK_ELEMS (1u << 20)

void lp_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static herr_t deepest(unsigned n, const H5E_error2_t *e, void *data) {
    /* Walking upward, entry 0 is where the error was detected: the most specific message. */
    if (n == 0) snprintf((char *)data, 256, "%s", e->desc ? e->desc : "unknown HDF5 error");
    return 0;
}

void lp_h5_last_error(char *buf, size_t n) {
    char tmp[256] = "unknown HDF5 error";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, deepest, tmp);
    snprintf(buf, n, "%s", tmp);
}

static hid_t mpio_fapl(MPI_Comm comm) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    LP_CHECK_H5(fapl, "creating a file-access property list");
    LP_CHECK_H5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "selecting the MPI-IO file driver");
    return fapl;
}

void lp_check_output_path(const char *path) {
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    const char *dir = dirname(dirbuf);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        lp_user_error("%s: cannot create the file: directory '%s' does not exist", path, dir);
    if (access(dir, W_OK) != 0)
        lp_user_error("%s: cannot create the file: directory '%s' is not writable (%s)", path, dir, strerror(errno));
}

hid_t lp_h5_create(const char *path, MPI_Comm comm) {
    lp_h5_quiet();
    lp_check_output_path(path);
    hid_t fapl = mpio_fapl(comm);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    LP_CHECK_H5(f, "creating an HDF5 file");
    LP_CHECK_H5(H5Pclose(fapl), "closing a property list");
    lp_test_hook_output_created();
    return f;
}

hid_t lp_h5_open(const char *path, MPI_Comm comm) {
    lp_h5_quiet();
    struct stat st;
    if (stat(path, &st) != 0) lp_user_error("%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) lp_user_error("%s: is a directory, expected an HDF5 file", path);
    if (H5Fis_hdf5(path) <= 0) lp_user_error("%s: not an HDF5 file", path);
    hid_t fapl = mpio_fapl(comm);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        char e[256];
        lp_h5_last_error(e, sizeof e);
        lp_user_error("%s: cannot open as HDF5: %s", path, e);
    }
    LP_CHECK_H5(H5Pclose(fapl), "closing a property list");
    return f;
}

void lp_h5_close(hid_t file) { LP_CHECK_H5(H5Fclose(file), "closing an HDF5 file"); }

hid_t lp_h5_dxpl_collective(void) {
    hid_t p = H5Pcreate(H5P_DATASET_XFER);
    LP_CHECK_H5(p, "creating a transfer property list");
    LP_CHECK_H5(H5Pset_dxpl_mpio(p, H5FD_MPIO_COLLECTIVE), "requesting collective MPI-IO");
    return p;
}

static void write_any(hid_t loc, const char *name, int ndim, const hsize_t *dims, hid_t filetype,
                      hid_t memtype, const void *data, hid_t dxpl) {
    hsize_t chunk[8], numel = 1;
    LP_ASSERT(ndim >= 1 && ndim <= 8, "writing a dataset");
    for (int i = 0; i < ndim; i++) numel *= dims[i];
    LP_ASSERT(numel > 0, "writing an empty dataset");
    /* Chunk along the leading dimension: whole rows, about LP_H5_CHUNK_ELEMS elements. */
    hsize_t row = numel / dims[0];
    chunk[0] = row >= LP_H5_CHUNK_ELEMS ? 1 : LP_H5_CHUNK_ELEMS / row;
    if (chunk[0] > dims[0]) chunk[0] = dims[0];
    for (int i = 1; i < ndim; i++) chunk[i] = dims[i];

    hid_t space = H5Screate_simple(ndim, dims, NULL);
    LP_CHECK_H5(space, "creating a dataspace");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    LP_CHECK_H5(dcpl, "creating a dataset-creation property list");
    LP_CHECK_H5(H5Pset_chunk(dcpl, ndim, chunk), "setting the chunk shape");
    LP_CHECK_H5(H5Pset_fletcher32(dcpl), "enabling the Fletcher32 checksum filter");
    /* Every element is written: no fill pass over the file. */
    LP_CHECK_H5(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "disabling dataset fill");
    hid_t d = H5Dcreate2(loc, name, filetype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    LP_CHECK_H5(d, "creating a dataset");
    /* Ranks without the data take part in the collective write with an empty selection. */
    hid_t mspace = H5Scopy(space);
    LP_CHECK_H5(mspace, "copying a dataspace");
    if (!data) {
        LP_CHECK_H5(H5Sselect_none(space), "selecting nothing in a dataspace");
        LP_CHECK_H5(H5Sselect_none(mspace), "selecting nothing in a dataspace");
    }
    static const float dummy[1];
    LP_CHECK_H5(H5Dwrite(d, memtype, mspace, space, dxpl, data ? data : (const void *)dummy),
                "writing a dataset");
    LP_CHECK_H5(H5Sclose(mspace), "closing a dataspace");
    LP_CHECK_H5(H5Dclose(d), "closing a dataset");
    LP_CHECK_H5(H5Pclose(dcpl), "closing a property list");
    LP_CHECK_H5(H5Sclose(space), "closing a dataspace");
}

void lp_h5_write_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *data,
                     hid_t dxpl) {
    write_any(loc, name, ndim, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, dxpl);
}

unsigned short lp_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1); /* round half to even on the 16 dropped bits */
    return (unsigned short)(u >> 16);
}

void lp_h5_write_bf16(hid_t loc, const char *name, int ndim, const hsize_t *dims, const float *data,
                      hid_t dxpl) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    uint16_t *bits = NULL;
    if (data) {
        bits = lp_calloc(n, sizeof *bits, "converting a tensor to bfloat16");
        for (size_t i = 0; i < n; i++) bits[i] = lp_f32_to_bf16(data[i]);
    }
    write_any(loc, name, ndim, dims, H5T_STD_U16LE, H5T_NATIVE_UINT16, bits, dxpl);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    LP_CHECK_H5(d, "opening a bfloat16 dataset");
    lp_h5_attr_write_str(d, "dtype", "bfloat16");
    LP_CHECK_H5(H5Dclose(d), "closing a dataset");
    lp_free(bits);
}

void lp_h5_write_u8(hid_t loc, const char *name, size_t n, const void *data, hid_t dxpl) {
    hsize_t dims[1] = {n};
    write_any(loc, name, 1, dims, H5T_STD_U8LE, H5T_NATIVE_UCHAR, data, dxpl);
}

static char *obj_name(hid_t loc, const char *name, char *buf, size_t n) {
    char base[1024] = "";
    H5Iget_name(loc, base, sizeof base);
    snprintf(buf, n, "%s/%s", strcmp(base, "/") ? base : "", name);
    return buf;
}

hid_t lp_h5_dopen(hid_t loc, const char *name) {
    /* By default HDF5 opens an external link's target with the access list of the file holding
     * the link: for a file opened with MPI-IO, a collective open on that file's communicator. Only
     * the ranks that read the tensor get here (pipeline stages read different layers), so that
     * open would wait forever for the others. The target is read, never written, through a link:
     * this process opens it alone with the POSIX driver. */
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS), fapl = H5Pcreate(H5P_FILE_ACCESS);
    LP_CHECK_H5(dapl, "creating a dataset-access property list");
    LP_CHECK_H5(fapl, "creating a file-access property list");
    LP_CHECK_H5(H5Pset_fapl_sec2(fapl), "selecting the POSIX driver for external links");
    LP_CHECK_H5(H5Pset_elink_fapl(dapl, fapl), "setting the external-link file access");
    hid_t d = H5Dopen2(loc, name, dapl);
    LP_CHECK_H5(H5Pclose(fapl), "closing a property list");
    LP_CHECK_H5(H5Pclose(dapl), "closing a property list");
    return d;
}

/* Open dataset `name` of a file the user gave; user error naming the dataset if it is missing or
 * not a dataset. `full` receives its full path for later messages. */
static hid_t open_dataset(hid_t loc, const char *name, const char *file, char *full, size_t n) {
    obj_name(loc, name, full, n);
    if (!lp_h5_exists(loc, name)) lp_user_error("%s: dataset %s is missing", file, full);
    hid_t d = lp_h5_dopen(loc, name);
    if (d < 0) lp_user_error("%s: %s is not a dataset", file, full);
    return d;
}

static hid_t open_checked(hid_t loc, const char *name, int ndim, const hsize_t *dims, const char *file) {
    char full[1200];
    hid_t d = open_dataset(loc, name, file, full, sizeof full);
    hid_t s = H5Dget_space(d);
    LP_CHECK_H5(s, "getting a dataset's shape");
    hsize_t got[8];
    int nd = H5Sget_simple_extent_ndims(s);
    LP_CHECK_H5(nd, "getting a dataset's rank");
    int ok = nd == ndim;
    if (nd >= 0 && nd <= 8) H5Sget_simple_extent_dims(s, got, NULL);
    for (int i = 0; ok && i < nd; i++) ok = got[i] == dims[i];
    if (!ok) {
        char want[128] = "", have[128] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        for (int i = 0; i < nd && i < 8; i++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%llu", i ? ", " : "", (unsigned long long)got[i]);
        lp_user_error("%s: dataset %s has shape [%s], expected [%s] from /config", file, full, have, want);
    }
    LP_CHECK_H5(H5Sclose(s), "closing a dataspace");
    return d;
}

static void read_checked(hid_t d, hid_t memtype, void *buf, const char *file, hid_t loc, const char *name) {
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        char e[256], full[1200];
        lp_h5_last_error(e, sizeof e);
        lp_user_error("%s: cannot read dataset %s (checksum mismatch or truncated: the file is damaged): %s", file,
                      obj_name(loc, name, full, sizeof full), e);
    }
}

/* A dataset written by lp_h5_write_bf16: 16-bit integers tagged dtype = "bfloat16". */
static int is_bf16(hid_t d) {
    hid_t t = H5Dget_type(d);
    LP_CHECK_H5(t, "getting a dataset's type");
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 2;
    H5Tclose(t);
    char dt[32];
    return ok && lp_h5_attr_read_str(d, "dtype", dt, sizeof dt) == 0 && !strcmp(dt, "bfloat16");
}

void lp_h5_read_f32(hid_t loc, const char *name, int ndim, const hsize_t *dims, float *data,
                    const char *file) {
    hid_t d = open_checked(loc, name, ndim, dims, file);
    if (is_bf16(d)) {
        /* Read the 16-bit words into the front of the float buffer, then widen in place from the
         * end: float i covers words 2i and 2i+1, which are already consumed when i >= 1. */
        size_t n = 1;
        for (int i = 0; i < ndim; i++) n *= dims[i];
        uint16_t *bits = (uint16_t *)(void *)data;
        read_checked(d, H5T_NATIVE_UINT16, bits, file, loc, name);
        for (size_t i = n; i-- > 0;) {
            uint32_t u = (uint32_t)bits[i] << 16;
            memcpy(&data[i], &u, 4);
        }
    } else {
        read_checked(d, H5T_NATIVE_FLOAT, data, file, loc, name);
    }
    LP_CHECK_H5(H5Dclose(d), "closing a dataset");
}

void *lp_h5_read_u8(hid_t loc, const char *name, size_t *n, const char *file) {
    char full[1200];
    hid_t d = open_dataset(loc, name, file, full, sizeof full);
    hid_t s = H5Dget_space(d);
    LP_CHECK_H5(s, "getting a dataset's shape");
    hssize_t cnt = H5Sget_simple_extent_npoints(s);
    LP_CHECK_H5(cnt, "counting a dataset's elements");
    if (H5Sget_simple_extent_ndims(s) != 1) lp_user_error("%s: dataset %s must be one-dimensional", file, full);
    uint8_t *buf = lp_calloc((size_t)cnt, 1, "allocating a byte dataset");
    read_checked(d, H5T_NATIVE_UCHAR, buf, file, loc, name);
    LP_CHECK_H5(H5Sclose(s), "closing a dataspace");
    LP_CHECK_H5(H5Dclose(d), "closing a dataset");
    *n = (size_t)cnt;
    return buf;
}

/* ---- attributes ------------------------------------------------------------------------------ */

/* A scalar attribute (list = 0) or a list of n values (list = 1; n may be 0: an empty list). */
static void attr_write(hid_t obj, const char *name, hid_t filetype, hid_t memtype, int list, hsize_t n, const void *v) {
    if (H5Aexists(obj, name) > 0) LP_CHECK_H5(H5Adelete(obj, name), "replacing an attribute");
    hid_t space = list ? H5Screate_simple(1, &n, &n) : H5Screate(H5S_SCALAR);
    LP_CHECK_H5(space, "creating an attribute dataspace");
    hid_t a = H5Acreate2(obj, name, filetype, space, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(a, "creating an attribute");
    LP_CHECK_H5(H5Awrite(a, memtype, v), "writing an attribute");
    LP_CHECK_H5(H5Aclose(a), "closing an attribute");
    LP_CHECK_H5(H5Sclose(space), "closing a dataspace");
}

void lp_h5_attr_write_int(hid_t obj, const char *name, int v) {
    attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, 0, 0, &v);
}
void lp_h5_attr_write_ints(hid_t obj, const char *name, const int *v, size_t n) {
    static const int none[1];
    attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT, 1, n, n ? v : none);
}
void lp_h5_attr_write_u64s(hid_t obj, const char *name, const uint64_t *v, size_t n) {
    static const uint64_t none[1];
    attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, n, n ? v : none);
}
void lp_h5_attr_write_f32(hid_t obj, const char *name, float v) {
    attr_write(obj, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, 0, &v);
}
void lp_h5_attr_write_f64(hid_t obj, const char *name, double v) {
    attr_write(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, 0, &v);
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    LP_CHECK_H5(t, "creating a string type");
    LP_CHECK_H5(H5Tset_size(t, H5T_VARIABLE), "creating a string type");
    LP_CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8), "creating a string type");
    return t;
}

void lp_h5_attr_write_str(hid_t obj, const char *name, const char *s) {
    /* Variable-length UTF-8: h5py reads it back as a Python str. */
    hid_t t = vlen_str_type();
    attr_write(obj, name, t, t, 0, 0, &s);
    LP_CHECK_H5(H5Tclose(t), "closing a string type");
}

static hid_t attr_open_scalar(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    LP_CHECK_H5(a, "opening an attribute");
    hid_t s = H5Aget_space(a);
    LP_CHECK_H5(s, "getting an attribute's shape");
    hssize_t n = H5Sget_simple_extent_npoints(s);
    LP_CHECK_H5(H5Sclose(s), "closing a dataspace");
    if (n != 1) {
        H5Aclose(a);
        return -1;
    }
    return a;
}

static int attr_read_num(hid_t obj, const char *name, hid_t memtype, void *v) {
    hid_t a = attr_open_scalar(obj, name);
    if (a < 0) return -1;
    hid_t t = H5Aget_type(a);
    LP_CHECK_H5(t, "getting an attribute's type");
    H5T_class_t cls = H5Tget_class(t);
    int ok = (cls == H5T_INTEGER || cls == H5T_FLOAT) && H5Aread(a, memtype, v) >= 0;
    H5Tclose(t);
    LP_CHECK_H5(H5Aclose(a), "closing an attribute");
    return ok ? 0 : -1;
}

int lp_h5_attr_read_int(hid_t obj, const char *name, int *v) {
    return attr_read_num(obj, name, H5T_NATIVE_INT, v);
}
int lp_h5_attr_read_f32(hid_t obj, const char *name, float *v) {
    return attr_read_num(obj, name, H5T_NATIVE_FLOAT, v);
}

char *lp_h5_attr_read_strdup(hid_t obj, const char *name) {
    hid_t a = attr_open_scalar(obj, name);
    if (a < 0) return NULL;
    hid_t t = H5Aget_type(a);
    LP_CHECK_H5(t, "getting an attribute's type");
    char *out = NULL;
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            hid_t mt = vlen_str_type();
            char *s = NULL;
            LP_CHECK_H5(H5Aread(a, mt, &s), "reading a string attribute");
            size_t len = s ? strlen(s) : 0;
            out = lp_calloc(len + 1, 1, "copying a string attribute");
            if (s) memcpy(out, s, len);
            H5free_memory(s);
            H5Tclose(mt);
        } else {
            /* Fixed-length strings (as h5py writes np.bytes_): read with the stored size. */
            size_t len = H5Tget_size(t);
            out = lp_calloc(len + 1, 1, "copying a string attribute");
            hid_t mt = H5Tcopy(t);
            LP_CHECK_H5(mt, "copying a string type");
            LP_CHECK_H5(H5Aread(a, mt, out), "reading a string attribute");
            H5Tclose(mt);
        }
    }
    H5Tclose(t);
    LP_CHECK_H5(H5Aclose(a), "closing an attribute");
    return out;
}

int lp_h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t n) {
    char *s = lp_h5_attr_read_strdup(obj, name);
    if (!s) return -1;
    snprintf(buf, n, "%s", s);
    lp_free(s);
    return 0;
}

/* ---- links and groups ------------------------------------------------------------------------ */

int lp_h5_exists(hid_t loc, const char *path) {
    /* H5Lexists fails on a missing intermediate group: test each prefix in turn. */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + (buf[0] == '/');; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0) return 0;
            if (!c) return 1;
            *p = c;
        }
    }
}

hid_t lp_h5_group(hid_t loc, const char *path) {
    if (lp_h5_exists(loc, path)) {
        hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
        LP_CHECK_H5(g, "opening a group");
        return g;
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    LP_CHECK_H5(lcpl, "creating a link-creation property list");
    LP_CHECK_H5(H5Pset_create_intermediate_group(lcpl, 1), "allowing intermediate groups");
    hid_t g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    LP_CHECK_H5(g, "creating a group");
    LP_CHECK_H5(H5Pclose(lcpl), "closing a property list");
    return g;
}
