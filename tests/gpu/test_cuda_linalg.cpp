// The GPU's dense linear algebra against the CPU's: every DenseOps step (DeviceDenseOps against HostDenseOps),
// the block eigensolver and top_positive_eigen on both, CAT's removal bases in both forms, the projections,
// and RegMean's product and solve through the CUDA Linalg.
#include <algorithm>
#include <cmath>

#include "backend/backend.hpp"
#include "backend/cuda/device_dense_ops.hpp"
#include "eigen_testing.hpp"
#include "features/feature_store.hpp"
#include "gpu_testing.hpp"
#include "methods/host_dense_ops.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

using testing::projector_distance;
using testing::random_floats;

double max_rel(const std::vector<double>& got, const std::vector<double>& want) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    err = std::max(err, std::fabs(got[i] - want[i]));
  }
  return err / std::max(scale, 1e-300);
}

std::vector<double> random_doubles(size_t n, uint32_t seed) {
  const std::vector<float> f = random_floats(n, seed);
  return std::vector<double>(f.begin(), f.end());
}

// A symmetric positive definite n x n matrix (column-major = row-major).
std::vector<double> spd(int64_t n, uint32_t seed) {
  const std::vector<double> x = random_doubles(static_cast<size_t>(2 * n * n), seed);
  std::vector<double> a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t r = 0; r < 2 * n; ++r) a[j * n + i] += x[i * 2 * n + r] * x[j * 2 * n + r];
  return a;
}

class CudaLinalgOps : public testing::GpuTest {
 protected:
  // Runs `step` on a device copy of `data` and on a host copy, and returns both results.
  template <class Step>
  std::pair<std::vector<double>, std::vector<double>> both(const std::vector<double>& data, Step step) {
    DeviceDenseOps dev(ctx());
    HostDenseOps host;
    double* d = device(data);
    std::vector<double> h = data;
    step(dev, d);
    step(host, h.data());
    return {this->host(d, data.size()), h};
  }
};

TEST_F(CudaLinalgOps, EveryDenseOpMatchesTheHost) {
  const int64_t m = 37, n = 29, k = 23;
  const std::vector<float> af = random_floats(m * k, 1), bf = random_floats(k * n, 2);
  DeviceDenseOps dev(ctx());
  HostDenseOps host;
  const float* da = dev.input(af.data(), m * k);
  const float* db = dev.input(bf.data(), k * n);
  for (const bool ta : {false, true}) {
    float* dc = device_zeros<float>(m * n);
    std::vector<float> hc(static_cast<size_t>(m * n), 0.0f);
    dev.sgemm(ta, false, m, n, k, 1.5f, da, ta ? k : m, db, k, 0.0f, dc, m);
    host.sgemm(ta, false, m, n, k, 1.5f, af.data(), ta ? k : m, bf.data(), k, 0.0f, hc.data(), m);
    const auto got = this->host(dc, hc.size());
    for (size_t i = 0; i < hc.size(); ++i) ASSERT_TRUE(testing::near_ulps(got[i], hc[i], 64, 1e-6f)) << i;
  }
  {
    float* dc = device_zeros<float>(m * m);
    std::vector<float> hc(static_cast<size_t>(m * m), 0.0f);
    dev.ssyrk(false, m, k, 2.0f, da, m, 0.0f, dc, m);
    host.ssyrk(false, m, k, 2.0f, af.data(), m, 0.0f, hc.data(), m);
    const auto got = this->host(dc, hc.size());
    for (int64_t j = 0; j < m; ++j)
      for (int64_t i = j; i < m; ++i) ASSERT_TRUE(testing::near_ulps(got[j * m + i], hc[j * m + i], 64, 1e-6f));
  }
  const std::vector<double> a = random_doubles(static_cast<size_t>(m * m), 3), b = random_doubles(m * n, 4);
  auto [g1, h1] = both(a, [&](DenseOps& o, double* x) {
    o.shift_negate(x, m, m, 2.5);
    o.scale_diagonal(x, m, m, 1.25);
    o.zero_upper(x, m, m);
    const std::vector<double> s(static_cast<size_t>(m), 0.5);
    o.scale_columns(x, m, m, m / 2, s.data());
  });
  EXPECT_EQ(g1, h1);
  auto [g2, h2] = both(a, [&](DenseOps& o, double* x) {
    double* y = o.doubles(0, m * n);
    o.fill_zero(y, m * n);
    o.dsyrk(true, m, m, 0.5, x, m, 0.0, o.doubles(1, m * m), m);
    o.dgemm(true, true, m, m, m, 1.0, x, m, x, m, 0.0, o.doubles(2, m * m), m);
    o.axpy(m * m, -0.25, o.doubles(2, m * m), x);
    o.copy_block(x, m, y, m, m / 2, n);
  });
  EXPECT_LE(max_rel(g2, h2), 1e-14);
  // widen, symm, norms and the factorisations, on an SPD matrix.
  const std::vector<double> s = spd(m, 5);
  auto [g3, h3] = both(s, [&](DenseOps& o, double* x) {
    double* v = o.doubles(3, m * n);
    std::vector<double> vb = b;
    o.upload(vb.data(), v, m * n);
    double* y = o.doubles(4, m * n);
    o.symm(m, n, x, m, v, m, y, m);
    std::vector<double> norms(static_cast<size_t>(n));
    o.column_norms(y, m, m, n, norms.data());
    ASSERT_TRUE(o.potrf(m, x, m));
    o.potrs(m, n, x, m, y, m);  // back to v
    std::vector<double> back(static_cast<size_t>(m * n));
    o.download(y, back.data(), m * n);
    for (size_t i = 0; i < back.size(); ++i) ASSERT_NEAR(back[i], b[i], 1e-9);
    for (double nrm : norms) ASSERT_GT(nrm, 0.0);
  });
  EXPECT_LE(max_rel(g3, h3), 1e-12);  // the Cholesky factors
  std::vector<double> wd(static_cast<size_t>(m)), wh(static_cast<size_t>(m));
  auto [g4, h4] = both(s, [&](DenseOps& o, double* x) {
    std::vector<double>& w = dynamic_cast<HostDenseOps*>(&o) ? wh : wd;
    ASSERT_TRUE(o.eigh(m, x, m, w.data()));
  });
  EXPECT_LE(max_rel(wd, wh), 1e-12);
  std::vector<double> td(3), th(3), vd, vh;
  auto [g5, h5] = both(s, [&](DenseOps& o, double* x) {
    const bool on_host = dynamic_cast<HostDenseOps*>(&o) != nullptr;
    double* v = o.doubles(5, m * 3);
    ASSERT_TRUE(o.top_eigh(m, x, m, 3, (on_host ? th : td).data(), v, m));
    std::vector<double>& out = on_host ? vh : vd;
    out.resize(static_cast<size_t>(m * 3));
    o.download(v, out.data(), m * 3);
  });
  EXPECT_LE(max_rel(td, th), 1e-12);
  for (int j = 0; j < 3; ++j) {
    double dot = 0;
    for (int64_t i = 0; i < m; ++i) dot += vd[j * m + i] * vh[j * m + i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-10) << j;
  }
  // output: a host array updated in the ops' memory and brought back.
  std::vector<float> updated = af;
  float* o = dev.output(updated.data(), m * k);
  dev.sgemm(false, false, m, 1, 1, 0.0f, da, m, db, 1, 2.0f, o, m);  // first column doubled
  dev.finish_output(o, updated.data(), m * k);
  for (int64_t i = 0; i < m; ++i) ASSERT_EQ(updated[i], 2.0f * af[i]);
  for (int64_t i = m; i < m * k; ++i) ASSERT_EQ(updated[i], af[i]);
  double* w64 = device_zeros<double>(m * n);
  dev.widen(da, m, w64, m, m, n > k ? k : n);
  const auto widened = this->host(w64, m * n);
  for (int64_t i = 0; i < m * std::min(n, k); ++i) ASSERT_EQ(widened[i], static_cast<double>(af[i]));
}

// A CAT unit of K tasks [out, in] with `rows` feature rows each.
struct Unit {
  std::vector<std::vector<float>> t, x;
  ConflictProblem p;
  Unit(int K, int64_t out, int64_t in, int64_t rows, double lambda) {
    for (int k = 0; k < K; ++k) {
      t.push_back(random_floats(out * in, 100 + k, -0.1f, 0.1f));
      x.push_back(random_floats(rows * in, 200 + k));
    }
    p.where = "unit";
    p.out = out;
    p.in = in;
    p.lambda = lambda;
    for (int k = 0; k < K; ++k) {
      p.tasks.push_back(t[k].data());
      p.rows.push_back({x[k].data(), rows});
    }
  }
};

TEST_F(CudaLinalgOps, RemovalBasesInBothFormsMatchTheCpu) {
  for (const auto pin : {ConflictOptions::Pin::Formed, ConflictOptions::Pin::Reduced})
    for (const int64_t dense_max : {int64_t{1024}, int64_t{0}}) {
      SCOPED_TRACE(std::to_string(static_cast<int>(pin)) + " " + std::to_string(dense_max));
      const Unit u(4, 400, 96, 20, 5.0);
      LinalgOptions o;
      o.conflict.pin = pin;
      o.conflict.eigen.dense_max = dense_max;
      const std::unique_ptr<Backend> cuda = make_backend("cuda", 0, "test");
      ConflictStats gpu_stats, cpu_stats;
      const auto got = cuda->linalg().top_eigvecs(u.p, 3, &gpu_stats);
      const auto want = make_cpu_linalg(o)->top_eigvecs(u.p, 3, &cpu_stats);
      // The backend's Linalg has default options: compare the pinned CPU run with a pinned GPU one too.
      DeviceDenseOps ops(ctx());
      const ConflictBases solver(ops, u.p, o.conflict, nullptr);
      for (size_t k = 0; k < want.size(); ++k) {
        const Basis pinned = solver.basis(ops, k, 3, nullptr);
        ASSERT_EQ(pinned.cols, want[k].cols);
        EXPECT_LE(projector_distance(pinned, want[k], u.p.out), 1e-8) << k;
        ASSERT_EQ(got[k].cols, want[k].cols);
        EXPECT_LE(projector_distance(got[k], want[k], u.p.out), 1e-6) << k;
      }
    }
}

TEST_F(CudaLinalgOps, ProjectionMatchesCpu) {
  const Unit u(3, 200, 90, 30, 0.5);
  const auto bases = cpu_linalg().top_eigvecs(u.p, 4, nullptr);
  const std::unique_ptr<Backend> cuda = make_backend("cuda", 0, "test");
  TaskVectors got = u.t, want = u.t;
  cuda->linalg().project(bases, u.p.out, u.p.in, got);
  cpu_linalg().project(bases, u.p.out, u.p.in, want);
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t j = 0; j < want[i].size(); ++j) ASSERT_NEAR(got[i][j], want[i][j], 1e-7f) << i << "," << j;
}

TEST_F(CudaLinalgOps, RegMeanStepsMatchCpu) {
  const std::unique_ptr<Backend> cuda = make_backend("cuda", 0, "test");
  Linalg& gpu = cuda->linalg();
  const int64_t m = 70, n = 90, k = 50;
  std::vector<double> a(m * k), b(k * n), c(m * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.1 * static_cast<double>(i));
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.07 * static_cast<double>(i));
  for (size_t i = 0; i < c.size(); ++i) c[i] = 0.01 * static_cast<double>(i);
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      std::vector<double> got = c, want = c;
      gpu.dgemm(ta, tb, m, n, k, 0.5, a.data(), b.data(), 2.0, got.data());
      cpu_linalg().dgemm(ta, tb, m, n, k, 0.5, a.data(), b.data(), 2.0, want.data());
      EXPECT_LE(max_rel(got, want), 1e-14) << ta << tb;
    }
  const int64_t d = 60, nrhs = 7;
  FeatureStore store;
  const auto x = random_floats(100 * d, 3);
  store.record("s", SiteKind::LinearInput, x.data(), 100, d);
  const std::vector<double> s = store.at("s").gram_matrix();
  std::vector<double> rhs(nrhs * d);
  for (size_t i = 0; i < rhs.size(); ++i) rhs[i] = std::sin(static_cast<double>(i));
  std::vector<double> a1 = s, a2 = s, got = rhs, want = rhs;
  ASSERT_TRUE(gpu.solve_spd(d, a1.data(), nrhs, got.data()));
  ASSERT_TRUE(cpu_linalg().solve_spd(d, a2.data(), nrhs, want.data()));
  EXPECT_LE(max_rel(got, want), 1e-10);
  std::vector<double> singular(d * d, -1.0), keep = rhs;  // rank 1: not positive definite
  EXPECT_FALSE(gpu.solve_spd(d, singular.data(), nrhs, keep.data()));
  EXPECT_EQ(keep, rhs);
}

}  // namespace
}  // namespace cm
