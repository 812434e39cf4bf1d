/* Cadence rows of a cube block copied out in table order, with the FITS checksum sum of the copied words.
 *
 * The compiled half of skycut.core.block_rows (which documents it and falls back to numpy when this module is not
 * built). One pass over the block: each pixel's (flux, uncertainty) pairs are read in cadence order and written to
 * the rows of the output, and the big-endian 32-bit words are summed on the way.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *rows_sum(PyObject *self, PyObject *args)
{
    PyObject *block_obj, *out_obj;
    Py_ssize_t t0, t1;
    if (!PyArg_ParseTuple(args, "OnnO", &block_obj, &t0, &t1, &out_obj))
        return NULL;
    Py_buffer src, dst;
    if (PyObject_GetBuffer(block_obj, &src, PyBUF_STRIDED_RO) < 0)
        return NULL;
    if (PyObject_GetBuffer(out_obj, &dst, PyBUF_CONTIG) < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    PyObject *result = NULL;
    if (src.ndim != 4 || src.itemsize != 4 || src.shape[3] < 2) {
        PyErr_SetString(PyExc_ValueError, "block must be 4-D (ny, nx, ntime, planes >= 2) of 4-byte items");
        goto done;
    }
    Py_ssize_t ny = src.shape[0], nx = src.shape[1], nt = src.shape[2];
    if (t0 < 0 || t1 < t0 || t1 > nt) {
        PyErr_SetString(PyExc_ValueError, "cadence range outside the block");
        goto done;
    }
    Py_ssize_t npix = ny * nx, rows = t1 - t0;
    if (dst.len < rows * 2 * npix * 4) {
        PyErr_SetString(PyExc_ValueError, "output buffer too small for the rows");
        goto done;
    }
    Py_ssize_t sy = src.strides[0], sx = src.strides[1], st = src.strides[2], sp = src.strides[3];
    const char *base = (const char *)src.buf;
    char *out = (char *)dst.buf;
    uint64_t sum = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t y = 0; y < ny; y++) {
        for (Py_ssize_t x = 0; x < nx; x++) {
            const char *q = base + y * sy + x * sx + t0 * st;
            char *d = out + 4 * (y * nx + x);
            for (Py_ssize_t t = 0; t < rows; t++, q += st, d += 8 * npix) {
                uint32_t flux, err;
                memcpy(&flux, q, 4);
                memcpy(&err, q + sp, 4);
                memcpy(d, &flux, 4);
                memcpy(d + 4 * npix, &err, 4);
                unsigned char *f = (unsigned char *)&flux, *e = (unsigned char *)&err;
                sum += ((uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3]);
                sum += ((uint32_t)e[0] << 24 | (uint32_t)e[1] << 16 | (uint32_t)e[2] << 8 | e[3]);
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromUnsignedLongLong(sum);
done:
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"rows_sum", rows_sum, METH_VARARGS,
     "rows_sum(block, t0, t1, out) -> int: copy block[:, :, t0:t1, :2] into out as rows (t1 - t0, 2, ny, nx) and "
     "return the sum of the copied big-endian 32-bit words."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_block_rows", NULL, -1, methods};

PyMODINIT_FUNC PyInit__block_rows(void) { return PyModule_Create(&module); }
