/* Cadence rows of a cube block copied out in table order, with the FITS checksum sum of the copied words.
 *
 * The compiled half of skycut.core.block_rows (which documents it and falls back to numpy when this module is not
 * built). One pass over the block: each pixel's (flux, uncertainty) pairs are read in cadence order and written to
 * the rows of the output, and the big-endian 32-bit words are summed on the way. write_table also writes the rows
 * of a TPF pixel table, chunk by chunk, with pwritev between a template's bytes, without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <limits.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Copy cadences t0 .. t0 + rows of the 4-D block (ny, nx, ntime, planes) into out as rows (rows, 2, ny, nx);
 * return the sum of the copied big-endian words. No Python calls (runs without the GIL). */
static uint64_t copy_rows(const Py_buffer *src, Py_ssize_t t0, Py_ssize_t rows, char *out)
{
    Py_ssize_t ny = src->shape[0], nx = src->shape[1], npix = ny * nx;
    Py_ssize_t sy = src->strides[0], sx = src->strides[1], st = src->strides[2], sp = src->strides[3];
    const char *base = (const char *)src->buf;
    uint64_t sum = 0;
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
                const unsigned char *f = (const unsigned char *)&flux, *e = (const unsigned char *)&err;
                sum += ((uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3]);
                sum += ((uint32_t)e[0] << 24 | (uint32_t)e[1] << 16 | (uint32_t)e[2] << 8 | e[3]);
            }
        }
    }
    return sum;
}

/* Write iov[0 .. n) at offset of fd, resuming short writes; 0, or -1 with errno set. */
static int pwrite_iov(int fd, struct iovec *iov, int n, off_t offset)
{
    while (n > 0) {
        int batch = n < IOV_MAX ? n : IOV_MAX;
        ssize_t wrote = pwritev(fd, iov, batch, offset);
        if (wrote < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        offset += wrote;
        while (n > 0 && (size_t)wrote >= iov->iov_len) {
            wrote -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0 && wrote > 0) {
            iov->iov_base = (char *)iov->iov_base + wrote;
            iov->iov_len -= wrote;
        }
    }
    return 0;
}

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
    uint64_t sum;
    Py_BEGIN_ALLOW_THREADS
    sum = copy_rows(&src, t0, rows, (char *)dst.buf);
    Py_END_ALLOW_THREADS
    result = PyLong_FromUnsignedLongLong(sum);
done:
    PyBuffer_Release(&dst);
    PyBuffer_Release(&src);
    return result;
}


/* write_table(fd, offset, block, template, row_bytes, flux_at, buffer, chunk_rows) -> (bytes written, sum) */
static PyObject *write_table(PyObject *self, PyObject *args)
{
    int fd;
    long long offset;
    PyObject *block_obj, *template_obj, *buffer_obj;
    Py_ssize_t width, flux_at, chunk_rows;
    if (!PyArg_ParseTuple(args, "iLOOnnOn", &fd, &offset, &block_obj, &template_obj, &width, &flux_at,
                          &buffer_obj, &chunk_rows))
        return NULL;
    Py_buffer src, tpl, buf;
    if (PyObject_GetBuffer(block_obj, &src, PyBUF_STRIDED_RO) < 0)
        return NULL;
    if (PyObject_GetBuffer(template_obj, &tpl, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&src);
        return NULL;
    }
    if (PyObject_GetBuffer(buffer_obj, &buf, PyBUF_CONTIG) < 0) {
        PyBuffer_Release(&tpl);
        PyBuffer_Release(&src);
        return NULL;
    }
    PyObject *result = NULL;
    struct iovec *iov = NULL;
    if (src.ndim != 4 || src.itemsize != 4 || src.shape[3] < 2) {
        PyErr_SetString(PyExc_ValueError, "block must be 4-D (ny, nx, ntime, planes >= 2) of 4-byte items");
        goto done;
    }
    Py_ssize_t npix = src.shape[0] * src.shape[1], nt = src.shape[2], pix = 8 * npix;
    if (width <= 0 || chunk_rows <= 0 || flux_at < 0 || flux_at + pix > width || tpl.len != nt * width ||
        buf.len < chunk_rows * pix) {
        PyErr_SetString(PyExc_ValueError, "template, row layout or buffer do not match the block");
        goto done;
    }
    iov = malloc(sizeof(struct iovec) * (2 * chunk_rows + 1));
    if (iov == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const char *tb = (const char *)tpl.buf;
    char *cb = (char *)buf.buf;
    uint64_t sum = 0;
    off_t pos = (off_t)offset;
    int failed = 0, err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t t0 = 0; t0 < nt && !failed; t0 += chunk_rows) {
        Py_ssize_t rows = t0 + chunk_rows < nt ? chunk_rows : nt - t0;
        sum += copy_rows(&src, t0, rows, cb);
        /* the template up to FLUX; then per row: its FLUX and FLUX_ERR, the template to the next row's FLUX */
        int n = 0;
        iov[n].iov_base = (void *)(tb + t0 * width);
        iov[n++].iov_len = flux_at;
        for (Py_ssize_t k = 0; k < rows; k++) {
            Py_ssize_t t = t0 + k, after = t * width + flux_at + pix;
            Py_ssize_t end = k + 1 < rows ? (t + 1) * width + flux_at : (t + 1) * width;
            iov[n].iov_base = cb + k * pix;
            iov[n++].iov_len = pix;
            iov[n].iov_base = (void *)(tb + after);
            iov[n++].iov_len = end - after;
        }
        if (pwrite_iov(fd, iov, n, pos) < 0) {
            failed = 1;
            err = errno;
        }
        pos += rows * width;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    result = Py_BuildValue("LK", (long long)(pos - (off_t)offset), (unsigned long long)sum);
done:
    free(iov);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&tpl);
    PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"rows_sum", rows_sum, METH_VARARGS,
     "rows_sum(block, t0, t1, out) -> int: copy block[:, :, t0:t1, :2] into out as rows (t1 - t0, 2, ny, nx) and "
     "return the sum of the copied big-endian 32-bit words."},
    {"write_table", write_table, METH_VARARGS,
     "write_table(fd, offset, block, template, row_bytes, flux_at, buffer, chunk_rows) -> (bytes, sum): write a "
     "TPF pixel table at offset of fd, chunk_rows rows at a time: each row the template's bytes with the block's "
     "flux and uncertainty of that cadence at flux_at; sum is that of the block's copied words."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_block_rows", NULL, -1, methods};

PyMODINIT_FUNC PyInit__block_rows(void) { return PyModule_Create(&module); }
