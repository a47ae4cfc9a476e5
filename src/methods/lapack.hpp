#pragma once
// Float64 dense linear algebra on the host: thin wrappers over CBLAS and LAPACKE with dimension and
// error checks, used by the CPU Linalg (methods/cpu_linalg.cpp). Matrices are row-major and packed
// (leading dimension = number of columns).
#include <cstdint>
#include <vector>

namespace cm {

// c[m, n] = alpha * op(a) * op(b) + beta * c, op(x) = x or x^T; op(a) is [m, k], op(b) is [k, n].
void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
           const double* b, double beta, double* c);

// Eigendecomposition of the symmetric a[n, n] (its lower triangle is read), by divide and conquer
// (dsyevd): w gets the n eigenvalues ascending and row j of a the unit eigenvector of w[j].
// False when the solver does not converge.
bool symmetric_eigen(int64_t n, double* a, double* w);

// Solves a x = b for the symmetric positive definite a[n, n] (Cholesky, dposv) for the nrhs right-hand
// sides given as the rows of b[nrhs, n]; the rows of b become the solutions and a its factor.
// False when a is not positive definite (a is then clobbered; b unchanged).
bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b);

// Rows R [rank, n] (row-major float32) with R^T R = S for the symmetric positive semidefinite s[n, n], from a
// Cholesky factorisation with pivoting (dpstrf) that stops at S's numerical rank: rows equivalent to feature
// rows X with X^T X = S, at most n of them.
std::vector<float> gram_factor_rows(const double* s, int64_t n, int64_t* rank);

}  // namespace cm
