#pragma once
// The dense linear algebra that CAT's removal bases and the block eigensolver are written in, behind one
// interface so that every backend runs the same algorithm: HostDenseOps (CBLAS, LAPACKE) and, in the CUDA
// build, DeviceDenseOps (cuBLAS, cuSOLVER). Matrices are column-major in the implementation's memory (host
// memory on the CPU, device memory on a GPU), each given by a pointer and a leading dimension; scalars and
// eigenvalues come back in host memory. Callers own disjoint ranges of the scratch slots: block_eigen 0-15,
// top_eigen 16-31, conflict_bases 32-63.
#include <cstdint>

namespace cm {

class DenseOps {
 public:
  virtual ~DenseOps() = default;

  // Storage in the implementation's memory: slot s is the same memory on every call until a call asks it for
  // more (the contents are then lost), for as long as the ops live. Float and double slots are separate.
  virtual float* floats(int slot, int64_t count) = 0;
  virtual double* doubles(int slot, int64_t count) = 0;
  // Host data in the implementation's memory, valid until clear_inputs(): the host pointer itself where that
  // is the same memory (CPU), else a copy.
  virtual const float* input(const float* host, int64_t count) = 0;
  virtual void clear_inputs() = 0;
  // Host data to update in place: output() gives it in the implementation's memory (the host pointer itself
  // on the CPU, else a copy), finish_output() brings the result back to host.
  virtual float* output(float* host, int64_t count) = 0;
  virtual void finish_output(const float* data, float* host, int64_t count) = 0;
  virtual void upload(const double* host, double* dst, int64_t count) = 0;
  virtual void download(const double* src, double* host, int64_t count) = 0;
  virtual void copy(const double* src, double* dst, int64_t count) = 0;
  // dst = src for a rows x cols block of each (leading dimensions lds, ldd).
  virtual void copy_block(const double* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) = 0;
  // dst = (double) src for a rows x cols block, and the other way round (rounded to nearest).
  virtual void widen(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) = 0;
  virtual void narrow(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols) = 0;
  virtual void fill_zero(double* dst, int64_t count) = 0;

  // c = alpha op(a) op(b) + beta c, op(a) m x k, op(b) k x n.
  virtual void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) = 0;
  virtual void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                     int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) = 0;
  // The lower triangle of the n x n c = alpha op(a) op(a)^T + beta c: op(a) = a (n x k) or, with trans, a^T
  // (a is k x n).
  virtual void ssyrk(bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
                     int64_t ldc) = 0;
  virtual void dsyrk(bool trans, int64_t n, int64_t k, double alpha, const double* a, int64_t lda, double beta,
                     double* c, int64_t ldc) = 0;
  // The lower triangle of the n x n c = alpha L^T L for the lower-triangular n x n l (its strict upper
  // triangle is not read); c and l are different memory.
  virtual void lower_gram(int64_t n, double alpha, const double* l, int64_t ldl, double* c, int64_t ldc) = 0;
  // b <- alpha L^T b for the lower-triangular m x m l (strict upper triangle not read) and m x n b.
  virtual void trmm_lower_trans(int64_t m, int64_t n, double alpha, const double* l, int64_t ldl, double* b,
                                int64_t ldb) = 0;
  // c = a b for the symmetric n x n a (lower triangle read) and n x cols b.
  virtual void symm(int64_t n, int64_t cols, const double* a, int64_t lda, const double* b, int64_t ldb, double* c,
                    int64_t ldc) = 0;
  virtual void ssymm(int64_t n, int64_t cols, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                     int64_t ldc) = 0;
  // y = alpha x + y over count values.
  virtual void axpy(int64_t count, double alpha, const double* x, double* y) = 0;
  // Column j of the rows x cols a times scales[j] (host memory).
  virtual void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) = 0;
  // Each column's Euclidean norm (host memory).
  virtual void column_norms(const double* a, int64_t lda, int64_t rows, int64_t cols, double* norms) = 0;
  // The lower triangle of the n x n a becomes sigma I - a.
  virtual void shift_negate(double* a, int64_t lda, int64_t n, double sigma) = 0;
  // a_jj *= factor for the n x n a.
  virtual void scale_diagonal(double* a, int64_t lda, int64_t n, double factor) = 0;
  // The strict upper triangle of the n x n a becomes 0.
  virtual void zero_upper(double* a, int64_t lda, int64_t n) = 0;

  // Cholesky factor L of the lower triangle of a (in place): false when a is not positive definite.
  virtual bool potrf(int64_t n, double* a, int64_t lda) = 0;
  // b <- (L L^T)^-1 b for n x nrhs b, L from potrf.
  virtual void potrs(int64_t n, int64_t nrhs, const double* l, int64_t lda, double* b, int64_t ldb) = 0;
  // Every eigenpair of the symmetric m x m a (lower triangle read): values ascending into w (host), the unit
  // eigenvector of w[j] into column j of a. False when the solver does not converge.
  virtual bool eigh(int64_t m, double* a, int64_t lda, double* w) = 0;
  // The `count` largest eigenpairs of the symmetric n x n a (lower triangle read, a destroyed): values
  // ascending into w (host), vectors into the columns of v (n x count). False when the solver fails.
  virtual bool top_eigh(int64_t n, double* a, int64_t lda, int64_t count, double* w, double* v, int64_t ldv) = 0;
};

}  // namespace cm
