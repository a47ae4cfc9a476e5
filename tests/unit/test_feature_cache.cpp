// The feature cache (job/feature_cache.hpp): site files read back bit for bit, what a damaged or foreign file
// gives, keys that follow their inputs, cached_features in process, and end to end through the catmerge binary
// on the zoo: a second run reuses every task and writes the same bytes; a changed expert, a truncated site file
// and a foreign one; two ranks reusing the entries of one.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "backend/backend.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "io/content_hash.hpp"
#include "io/hdf5_writer.hpp"
#include "job/collect_features.hpp"
#include "job/feature_cache.hpp"
#include "plan/shard_plan.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kZooConfig = std::string(CATMERGE_SOURCE_DIR) + "/configs/zoo.yaml";
const std::vector<std::string> kZooTasks = {"digits", "housenum", "letters", "greek",
                                            "fonts",  "arrows",   "chess",   "distort"};

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expect_same_stats(const SiteStats& got, const SiteStats& want) {
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.dim, want.dim);
  EXPECT_EQ(got.rows, want.rows);
  EXPECT_TRUE(same_bits(got.x, want.x));
  EXPECT_TRUE(same_bits(got.gram, want.gram));
  EXPECT_TRUE(same_bits(got.sqsum, want.sqsum));
}

void expect_same_stores(const FeatureStore& got, const FeatureStore& want) {
  ASSERT_EQ(got.sites().size(), want.sites().size());
  for (const auto& [site, s] : want.sites()) {
    SCOPED_TRACE(site);
    ASSERT_TRUE(got.sites().count(site));
    expect_same_stats(got.at(site), s);
  }
}

float f32(uint32_t bits) {
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
double f64(uint64_t bits) {
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Values a conversion would change: a NaN with a payload, -0, infinities, subnormals, extremes.
std::vector<float> odd_floats(size_t n, std::mt19937& rng) {
  std::vector<float> v(n);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (float& x : v) x = nd(rng);
  const float odd[] = {f32(0x7fc12345u), -0.0f, std::numeric_limits<float>::infinity(), f32(1u),
                       -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()};
  for (size_t i = 0; i < std::min(n, std::size(odd)); ++i) v[i * 3 % n] = odd[i];
  return v;
}

std::vector<double> odd_doubles(size_t n, std::mt19937& rng) {
  std::vector<double> v(n);
  std::normal_distribution<double> nd(0.0, 1e3);
  for (double& x : v) x = nd(rng);
  const double odd[] = {f64(0x7ff8000000abcdefull), -0.0, -std::numeric_limits<double>::infinity(), f64(1ull),
                        std::numeric_limits<double>::max()};
  for (size_t i = 0; i < std::min(n, std::size(odd)); ++i) v[i * 5 % n] = odd[i];
  return v;
}

// One of each form a FeatureStore holds.
std::map<std::string, SiteStats> every_form() {
  std::mt19937 rng(7);
  std::map<std::string, SiteStats> all;
  SiteStats rows;  // rows < dim: the rows themselves
  rows.kind = SiteKind::LinearInput;
  rows.dim = 13;
  rows.rows = 5;
  rows.x = odd_floats(5 * 13, rng);
  all["layers.0.attn_in"] = rows;
  SiteStats none = rows;  // no rows at all
  none.rows = 0;
  none.x.clear();
  all["layers.0.attn_out"] = none;
  SiteStats gram;  // rows >= dim: S
  gram.kind = SiteKind::LinearInput;
  gram.dim = 11;
  gram.rows = 40;
  gram.gram = odd_doubles(11 * 11, rng);
  all["layers.1/mlp_in"] = gram;  // a name no file may carry as it is
  SiteStats norm;
  norm.kind = SiteKind::NormInput;
  norm.dim = 17;
  norm.rows = 9;
  norm.sqsum = odd_doubles(17, rng);
  all["layers.1.ln1"] = norm;
  return all;
}

// Lines of `err` that start with `prefix`.
std::vector<std::string> lines_with(const std::string& err, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream s(err);
  for (std::string line; std::getline(s, line);)
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  return out;
}

const std::string kKey = "0123456789abcdef0123456789abcdef";
const std::string kOtherKey = "fedcba9876543210fedcba9876543210";

TEST(FeatureCache, StoresAndLoadsEveryFormBitForBit) {
  const test::ScratchDir dir;
  const FeatureCache cache((dir / "cache").string());
  cache.open_or_create();
  const auto all = every_form();
  for (const auto& [site, s] : all) cache.store(kKey, site, "digits", s);
  for (const auto& [site, s] : all) {
    SCOPED_TRACE(site);
    SiteStats got;
    ASSERT_EQ(cache.load(kKey, site, nullptr, got), CachedSite::Found);
    expect_same_stats(got, s);
  }
  // One file per site, nothing else (no temporary).
  std::vector<std::string> files = test::list_dir(cache.entry_dir(kKey));
  EXPECT_EQ(files.size(), all.size());
  for (const std::string& f : files) EXPECT_EQ(f.size() - f.rfind(".h5"), 3u) << f;
  EXPECT_EQ(fs::path(cache.site_path(kKey, "layers.1/mlp_in")).filename(), "layers.1%2Fmlp_in.h5");
  // Storing again replaces the file.
  SiteStats twice = all.at("layers.1.ln1");
  twice.sqsum[0] = 42.0;
  cache.store(kKey, "layers.1.ln1", "digits", twice);
  SiteStats got;
  ASSERT_EQ(cache.load(kKey, "layers.1.ln1", nullptr, got), CachedSite::Found);
  expect_same_stats(got, twice);
  EXPECT_EQ(test::list_dir(cache.entry_dir(kKey)).size(), all.size());
}

TEST(FeatureCache, StoresWhatAFeatureStoreRecords) {
  // The forms come from FeatureStore itself: rows, then S once there are as many rows as dimensions.
  std::mt19937 rng(3);
  FeatureStore store;
  const auto a = odd_floats(4 * 6, rng), b = odd_floats(9 * 6, rng);
  std::vector<float> c(7 * 5);
  for (float& v : c) v = std::normal_distribution<float>(0.0f, 1.0f)(rng);
  store.record("rows", SiteKind::LinearInput, a.data(), 4, 6);
  store.record("gram", SiteKind::LinearInput, c.data(), 7, 5);
  store.record("norm", SiteKind::NormInput, b.data(), 9, 6);
  ASSERT_TRUE(store.at("rows").has_rows());
  ASSERT_FALSE(store.at("gram").has_rows());
  const test::ScratchDir dir;
  const FeatureCache cache(dir.path().string());
  for (const auto& [site, s] : store.sites()) cache.store(kKey, site, "t", s);
  for (const auto& [site, s] : store.sites()) {
    SCOPED_TRACE(site);
    SiteStats got;
    ASSERT_EQ(cache.load(kKey, site, nullptr, got), CachedSite::Found);
    expect_same_stats(got, s);
  }
}

void resize(const std::string& path, uintmax_t size) { fs::resize_file(path, size); }

// Overwrites the first value of a site file's dataset, as a disk error might.
void scribble(const std::string& path, const char* dataset) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  const hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  const hid_t space = H5Dget_space(d);
  const hsize_t start[2] = {0, 0}, count[2] = {1, 1};
  const hsize_t one = 1;
  ASSERT_LE(H5Sget_simple_extent_ndims(space), 2);
  ASSERT_GE(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr), 0);
  const hid_t mem = H5Screate_simple(1, &one, nullptr);
  const double v = 12345.0;
  EXPECT_GE(H5Dwrite(d, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, &v), 0);
  H5Sclose(mem);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
}

void set_string_attr(const std::string& path, const char* name, const std::string& value) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Adelete(f, name), 0);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* text = value.c_str();
  EXPECT_GE(H5Awrite(a, type, &text), 0);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(f);
}

TEST(FeatureCache, SaysWhatIsWrongWithAnEntry) {
  const test::ScratchDir dir;
  const FeatureCache cache(dir.path().string());
  const auto all = every_form();
  for (const auto& [site, s] : all) cache.store(kKey, site, "digits", s);
  SiteStats got;
  EXPECT_EQ(cache.load(kOtherKey, "layers.1.ln1", nullptr, got), CachedSite::NoEntry);
  EXPECT_EQ(cache.load(kKey, "layers.7.ln1", nullptr, got), CachedSite::Missing);

  const std::string gram = cache.site_path(kKey, "layers.1/mlp_in");
  resize(gram, fs::file_size(gram) / 2);
  EXPECT_EQ(cache.load(kKey, "layers.1/mlp_in", nullptr, got), CachedSite::Truncated);
  resize(gram, 5);
  EXPECT_EQ(cache.load(kKey, "layers.1/mlp_in", nullptr, got), CachedSite::Truncated);
  resize(gram, 0);
  EXPECT_EQ(cache.load(kKey, "layers.1/mlp_in", nullptr, got), CachedSite::Truncated);

  const std::string norm = cache.site_path(kKey, "layers.1.ln1");
  scribble(norm, "sqsum");
  EXPECT_EQ(cache.load(kKey, "layers.1.ln1", nullptr, got), CachedSite::Damaged);

  // The model's site has another dimension.
  Site other{"layers.0.attn_in", SiteKind::LinearInput, 14, 1, 0};
  EXPECT_EQ(cache.load(kKey, "layers.0.attn_in", &other, got), CachedSite::Damaged);
  other.dim = 13;
  EXPECT_EQ(cache.load(kKey, "layers.0.attn_in", &other, got), CachedSite::Found);
  other.kind = SiteKind::NormInput;
  EXPECT_EQ(cache.load(kKey, "layers.0.attn_in", &other, got), CachedSite::Damaged);
}

TEST(FeatureCache, RefusesAFileItDidNotWrite) {
  const test::ScratchDir dir;
  const FeatureCache cache(dir.path().string());
  const auto all = every_form();
  for (const auto& [site, s] : all) cache.store(kKey, site, "digits", s);
  const auto error_loading = [&](const std::string& key, const std::string& site) {
    SiteStats got;
    return test::error_of([&] { cache.load(key, site, nullptr, got); });
  };
  const std::string here = cache.site_path(kKey, "layers.1.ln1");

  // Another entry's file, copied in.
  fs::create_directories(cache.entry_dir(kOtherKey));
  const std::string there = cache.site_path(kOtherKey, "layers.1.ln1");
  fs::copy_file(here, there);
  EXPECT_EQ(error_loading(kOtherKey, "layers.1.ln1"),
            there + ": not an entry of this cache (its key is " + kKey + ", not " + kOtherKey +
                " where it lies): remove it, or name another features.cache");
  // Another site's file, renamed.
  fs::copy_file(cache.site_path(kKey, "layers.0.attn_in"), cache.site_path(kKey, "layers.5.attn_in"));
  EXPECT_NE(error_loading(kKey, "layers.5.attn_in").find("not an entry of this cache (it holds site 'layers.0.attn_in', not 'layers.5.attn_in')"),
            std::string::npos);
  // Not HDF5 at all.
  std::ofstream(cache.site_path(kKey, "layers.6.ln1")) << "site statistics, trust me\n";
  EXPECT_EQ(error_loading(kKey, "layers.6.ln1"), cache.site_path(kKey, "layers.6.ln1") +
                                                    ": not an entry of this cache (not an HDF5 file): remove it, or "
                                                    "name another features.cache");
  // HDF5, but not catmerge's.
  {
    Hdf5Writer w(cache.site_path(kKey, "layers.6.ln2"));
    w.write_tensor("sqsum", DType::F32, {2}, std::vector<float>{1, 2}.data());
    w.commit();
  }
  EXPECT_NE(error_loading(kKey, "layers.6.ln2").find("without catmerge's 'format' attribute"), std::string::npos);
  // Another format version.
  set_string_attr(here, "format", "catmerge-features-0");
  EXPECT_NE(error_loading(kKey, "layers.1.ln1")
                .find("not an entry of this cache (format catmerge-features-0; this catmerge writes catmerge-features-1)"),
            std::string::npos);
}

TEST(FeatureCache, FileNamesKeepNamesApart) {
  EXPECT_EQ(cache_file_name("vision_model.layers.0.attn_in"), "vision_model.layers.0.attn_in");
  EXPECT_EQ(cache_file_name("a/b"), "a%2Fb");
  EXPECT_EQ(cache_file_name("a%2Fb"), "a%252Fb");
  EXPECT_EQ(cache_file_name(".."), "%2E.");
  EXPECT_EQ(cache_file_name("t\xc3\xa9 x"), "t%C3%A9%20x");
  const std::string longer(300, 'a');
  const std::string name = cache_file_name(longer);
  EXPECT_EQ(name.size(), 33u);
  EXPECT_EQ(name[0], '~');
  EXPECT_NE(name, cache_file_name(std::string(301, 'a')));
}

TEST(FeatureCache, ADirectoryThatIsNotACacheIsRefused) {
  const test::ScratchDir dir;
  std::ofstream(dir / "notes.txt") << "mine\n";
  const FeatureCache busy(dir.path().string());
  EXPECT_NE(test::error_of([&] { busy.open_or_create(); }).find("not a catmerge feature cache"), std::string::npos);
  const FeatureCache fresh((dir / "new" / "cache").string());
  fresh.open_or_create();
  EXPECT_TRUE(fs::exists(dir / "new" / "cache" / "catmerge-features.json"));
  fs::create_directories(fresh.entry_dir(kKey));
  fresh.open_or_create();  // marked: fine however full
  fs::create_directories(dir / "empty");
  FeatureCache((dir / "empty").string()).open_or_create();
}

// The zoo's configuration, its inputs and a one-rank plan.
struct Zoo {
  explicit Zoo(const std::vector<std::string>& sets = {}) : cfg(load_config(kZooConfig, sets)), in(cfg, false) {
    plan = make_plan(in.model(), 1);
  }
  JobConfig cfg;
  JobInputs in;
  ShardPlan plan;
};

TEST(FeatureCache, KeysFollowTheirInputs) {
  Zoo zoo;
  SoloCommunicator solo;
  const auto hashes = hash_feature_files(zoo.cfg, zoo.in, zoo.plan, solo);
  EXPECT_EQ(hashes.size(), 2 + 8 * 2 + 1u);  // base and experts (config.json, model.safetensors), exemplars
  for (const auto& [path, hash] : hashes) EXPECT_EQ(hash, content_hash_file(path)) << path;

  const auto inputs = [&](size_t k, const std::vector<double>& scales = {}, const std::string& backend = "cpu") {
    return feature_inputs_of(zoo.cfg, zoo.in, k, scales, backend, hashes);
  };
  const std::string key0 = feature_key(inputs(0));
  EXPECT_EQ(key0.size(), 32u);
  EXPECT_EQ(key0, feature_key(inputs(0)));
  EXPECT_NE(key0, feature_key(inputs(1)));
  EXPECT_NE(key0, feature_key(inputs(0, {}, "cuda")));
  const std::vector<double> a(8, 0.3), b(8, 0.30000000000000004);
  EXPECT_NE(feature_key(inputs(0, a)), key0);
  EXPECT_NE(feature_key(inputs(0, a)), feature_key(inputs(0, b)));
  EXPECT_EQ(feature_key(inputs(0, a)), feature_key(inputs(0, std::vector<double>(8, 0.3))));

  // What changed, by the configuration key that names it.
  const std::string expert = describe_change(inputs(0), inputs(1));
  // Task 1 has another expert and another group of the same exemplars file.
  EXPECT_EQ(expert.rfind("another expert and other exemplars (experts.1.path, ", 0), 0u) << expert;
  EXPECT_NE(expert.find("; experts.1.exemplars: /digits now /housenum)"), std::string::npos) << expert;
  EXPECT_NE(expert.find("experts/housenum/model.safetensors: hash " + hashes.at(zoo.cfg.experts[0].path + "/model.safetensors") + " now "),
            std::string::npos) << expert;
  EXPECT_EQ(expert.find("base"), std::string::npos) << expert;
  EXPECT_EQ(describe_change(inputs(0), inputs(0, a)), "another feature model (features.model: expert now scaled 0.29999999999999999)");
  EXPECT_EQ(describe_change(inputs(0), inputs(0, {}, "cuda")), "another backend (runtime.backend: cpu now cuda)");
  EXPECT_EQ(describe_change(inputs(0), inputs(0)), "other inputs");
  Zoo three({"features.exemplars=3"});
  const auto fewer = feature_inputs_of(three.cfg, three.in, 0, {}, "cpu", hashes);
  EXPECT_EQ(describe_change(inputs(0), fewer), "another exemplar count (features.exemplars: 8 now 3)");
}

TEST(FeatureCache, CollectsOnlyTheTasksAsked) {
  Zoo zoo;
  SoloCommunicator solo;
  const auto backend = make_backend("cpu", 0, "test");
  FeatureInputs all_in = open_feature_inputs(zoo.cfg, zoo.in.arch(), *backend);
  const std::vector<FeatureStore> all = collect_features(all_in, zoo.in, *backend, {}, zoo.plan, solo);
  FeatureInputs some_in = open_feature_inputs(zoo.cfg, zoo.in.arch(), *backend);
  const std::vector<FeatureStore> some = collect_features(some_in, zoo.in, *backend, {}, zoo.plan, solo, {1, 6});
  ASSERT_EQ(some.size(), 8u);
  for (size_t k = 0; k < 8; ++k) {
    SCOPED_TRACE(k);
    if (k == 1 || k == 6) {
      EXPECT_FALSE(some[k].sites().empty());
      expect_same_stores(some[k], all[k]);
    } else {
      EXPECT_TRUE(some[k].sites().empty());
    }
  }
  FeatureInputs none_in = open_feature_inputs(zoo.cfg, zoo.in.arch(), *backend);
  for (const FeatureStore& s : collect_features(none_in, zoo.in, *backend, {}, zoo.plan, solo, {}))
    EXPECT_TRUE(s.sites().empty());
}

TEST(FeatureCache, CachedFeaturesAreTheCollectedOnes) {
  const test::ScratchDir dir;
  Zoo zoo;
  SoloCommunicator solo;
  const auto backend = make_backend("cpu", 0, "test");
  FeatureInputs ref_in = open_feature_inputs(zoo.cfg, zoo.in.arch(), *backend);
  const std::vector<FeatureStore> want = collect_features(ref_in, zoo.in, *backend, {}, zoo.plan, solo);

  zoo.cfg.feature_cache = (dir / "cache").string();
  for (int pass = 0; pass < 2; ++pass) {
    SCOPED_TRACE(pass);
    FeatureInputs fin = open_feature_inputs(zoo.cfg, zoo.in.arch(), *backend);
    testing::internal::CaptureStderr();
    const std::vector<FeatureStore> got = cached_features(zoo.cfg, fin, zoo.in, *backend, {}, zoo.plan, solo);
    const std::string err = testing::internal::GetCapturedStderr();
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size(); ++k) expect_same_stores(got[k], want[k]);
    for (const std::string& task : kZooTasks) {
      const std::string said = "catmerge: features.cache: task '" + task + "': " +
                               (pass == 0 ? "computed and stored in " : "reused (no forward pass) from ") +
                               zoo.cfg.feature_cache + "/";
      EXPECT_NE(err.find(said), std::string::npos) << said << "\n" << err;
    }
    EXPECT_EQ(lines_with(err, "catmerge: features.cache: ").size(), 8u) << err;
  }
  // Without a cache: collect_features itself.
  zoo.cfg.feature_cache.clear();
  FeatureInputs fin = open_feature_inputs(zoo.cfg, zoo.in.arch(), *backend);
  const std::vector<FeatureStore> plain = cached_features(zoo.cfg, fin, zoo.in, *backend, {}, zoo.plan, solo);
  for (size_t k = 0; k < plain.size(); ++k) expect_same_stores(plain[k], want[k]);
}

// --- end to end (the run's features come from cached_features: job/merge_job.cpp) ----------------------------

// The line the run said about `task`.
std::string said_of(const std::string& err, const std::string& task) {
  const auto l = lines_with(err, "catmerge: features.cache: task '" + task + "': ");
  return l.size() == 1 ? l[0] : "(" + std::to_string(l.size()) + " lines about " + task + ")";
}

class FeatureCacheRun : public ::testing::Test {
 protected:
  std::vector<std::string> args(const std::vector<std::string>& more = {}) const {
    std::vector<std::string> a{"run", kZooConfig, "--set", "features.cache=" + cache(), "--set", "output.path=" + out()};
    for (const std::string& s : more) {
      a.push_back("--set");
      a.push_back(s);
    }
    return a;
  }
  test::CliResult run(const std::vector<std::string>& more = {}) const { return test::run_catmerge(args(more)); }
  std::string cache() const { return (dir_ / "cache").string(); }
  std::string out() const { return (dir_ / "merged.h5").string(); }
  // A task's entry, from its record.
  std::string entry_of(const std::string& task) const {
    const json record = json::parse(test::file_bytes(fs::path(cache()) / "tasks" / (task + ".json")));
    return cache() + "/" + record["key"].get<std::string>();
  }
  void expect_every_task(const std::string& err, const std::string& what) const {
    for (const std::string& task : kZooTasks)
      EXPECT_EQ(said_of(err, task).rfind("catmerge: features.cache: task '" + task + "': " + what, 0), 0u)
          << said_of(err, task);
  }

  test::ScratchDir dir_;
};

TEST_F(FeatureCacheRun, ASecondRunReusesEveryTaskAndWritesTheSameBytes) {
  const test::CliResult first = run();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  expect_every_task(first.err, "computed and stored in " + cache() + "/");
  const std::string bytes = test::file_bytes(out());
  const test::CliResult second = run();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  expect_every_task(second.err, "reused (no forward pass) from " + cache() + "/");
  EXPECT_EQ(lines_with(second.err, "catmerge: features ").size(), 0u) << "a forward pass ran:\n" << second.err;
  EXPECT_TRUE(test::file_bytes(out()) == bytes) << "the outputs differ";
  EXPECT_EQ(said_of(second.err, "greek"), "catmerge: features.cache: task 'greek': reused (no forward pass) from " +
                                              entry_of("greek"));
}

TEST_F(FeatureCacheRun, AChangedExpertIsRecomputedAndNamed) {
  const fs::path greek = dir_ / "greek";
  fs::copy(fs::path(CATMERGE_SOURCE_DIR) / "data/zoo/experts/greek", greek);
  const std::string set_greek = "experts.3.path=" + greek.string();
  const test::CliResult first = run({set_greek});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string old_entry = entry_of("greek");

  // One bit of one weight of the expert.
  const std::string weights = (greek / "model.safetensors").string();
  const std::string old_hash = content_hash_file(weights);
  {
    std::fstream f(weights, std::ios::binary | std::ios::in | std::ios::out);
    uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), sizeof n);
    std::string header(n, '\0');
    f.read(header.data(), static_cast<std::streamsize>(n));
    const uint64_t at = 8 + n + json::parse(header)["vision_model.encoder.layers.0.mlp.fc1.weight"]["data_offsets"][0].get<uint64_t>();
    f.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    f.read(&c, 1);
    c ^= 1;
    f.seekp(static_cast<std::streamoff>(at));
    f.write(&c, 1);
  }
  const std::string new_hash = content_hash_file(weights);
  ASSERT_NE(old_hash, new_hash);

  const test::CliResult second = run({set_greek});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(said_of(second.err, "greek"),
            "catmerge: features.cache: task 'greek': its entry was made from another expert (experts.3.path, " + weights +
                ": hash " + old_hash + " now " + new_hash + "): recomputed and stored in " + entry_of("greek"));
  EXPECT_NE(entry_of("greek"), old_entry);
  for (const std::string& task : kZooTasks) {
    if (task != "greek") {
      EXPECT_NE(said_of(second.err, task).find("reused (no forward pass)"), std::string::npos) << task;
    }
  }

  // The merge of reused and recomputed features is the merge without the cache.
  const std::string merged = test::file_bytes(out());
  const std::string plain = (dir_ / "plain.h5").string();
  const test::CliResult ref =
      test::run_catmerge({"run", kZooConfig, "--set", set_greek, "--set", "output.path=" + plain});
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  const auto got = test::read_all(out()), want = test::read_all(plain);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_TRUE(same_bits(got[i].values, want[i].values)) << got[i].name;
  }
  // And a third run reuses the new entry.
  const test::CliResult third = run({set_greek});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  expect_every_task(third.err, "reused (no forward pass)");
  EXPECT_TRUE(test::file_bytes(out()) == merged);
}

TEST_F(FeatureCacheRun, ATruncatedFileIsRecomputedAndAForeignOneRefused) {
  const test::CliResult first = run();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string bytes = test::file_bytes(out());
  const std::string digits = entry_of("digits"), housenum = entry_of("housenum");
  const std::vector<std::string> files = test::list_dir(digits);
  ASSERT_GT(files.size(), 10u);
  const std::string cut = digits + "/" + files[3];
  fs::resize_file(cut, fs::file_size(cut) * 2 / 3);

  const test::CliResult second = run();
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(said_of(second.err, "digits"), "catmerge: features.cache: task 'digits': " + cut +
                                               " is truncated or unreadable: recomputed and stored in " + digits);
  EXPECT_NE(said_of(second.err, "housenum").find("reused (no forward pass)"), std::string::npos);
  EXPECT_TRUE(test::file_bytes(out()) == bytes) << "the outputs differ";
  EXPECT_EQ(test::list_dir(digits), files) << "the entry was not made whole again";

  // Another task's file in its place: refused, nothing overwritten, no output.
  fs::remove(out());
  const std::string foreign = digits + "/" + files[5];
  fs::copy_file(housenum + "/" + files[5], foreign, fs::copy_options::overwrite_existing);
  const std::string planted = test::file_bytes(foreign);
  const test::CliResult third = run();
  EXPECT_EQ(third.exit_code, 1);
  EXPECT_EQ(third.err.rfind("catmerge: error: " + foreign + ": not an entry of this cache (its key is " +
                                housenum.substr(housenum.size() - 32) + ", not " + digits.substr(digits.size() - 32),
                            0),
            0u)
      << third.err;
  EXPECT_EQ(std::count(third.err.begin(), third.err.end(), '\n'), 1) << third.err;
  EXPECT_FALSE(fs::exists(out()));
  EXPECT_TRUE(test::file_bytes(foreign) == planted);
  for (const std::string& f : test::list_dir(dir_.path())) EXPECT_EQ(f.find(".tmp-"), std::string::npos) << f;
}

TEST_F(FeatureCacheRun, TwoRanksReuseTheEntriesOfOneAndAgreeWithIt) {
  const test::CliResult one = run();
  ASSERT_EQ(one.exit_code, 0) << one.err;
  const std::string bytes = test::file_bytes(out());
  fs::remove(out());
  const test::CliResult two = test::run_catmerge_mpi(2, args());
  ASSERT_EQ(two.exit_code, 0) << two.err;
  expect_every_task(two.err, "reused (no forward pass) from " + cache() + "/");
  EXPECT_EQ(lines_with(two.err, "catmerge: features.cache:").size(), 8u) << "rank 0 alone speaks:\n" << two.err;
  EXPECT_TRUE(test::file_bytes(out()) == bytes) << "2 ranks differ from 1";

  // And the other way: the entries two ranks store (each its own shard's sites) make a whole one-rank entry.
  const std::string other = "features.cache=" + (dir_ / "cache2").string();
  std::vector<std::string> two_args = args({other});
  const test::CliResult stored = test::run_catmerge_mpi(2, two_args);
  ASSERT_EQ(stored.exit_code, 0) << stored.err;
  expect_every_task(stored.err, "computed and stored in " + (dir_ / "cache2").string() + "/");
  const std::string bytes2 = test::file_bytes(out());  // its `config` attribute names the other cache
  const test::CliResult reused = test::run_catmerge(two_args);
  ASSERT_EQ(reused.exit_code, 0) << reused.err;
  expect_every_task(reused.err, "reused (no forward pass) from " + (dir_ / "cache2").string() + "/");
  EXPECT_TRUE(test::file_bytes(out()) == bytes2) << "the one-rank run on two ranks' entries differs";
  std::ofstream(dir_ / "first.h5", std::ios::binary) << bytes;
  const auto got = test::read_all(out()), want = test::read_all((dir_ / "first.h5").string());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same_bits(got[i].values, want[i].values)) << got[i].name;
}

}  // namespace
}  // namespace cm
