#pragma once
// The feature cache (`features.cache: DIR`): each task's per-site statistics (features/feature_store.hpp), kept
// on disk so that a later run or sweep whose task has the same inputs skips that task's forward pass.
//
// Key. A task's key is the hex XXH3-128 of: the format version (kFeatureCacheFormat), the arch, the content hash
// (io/content_hash.hpp, the one the output's `inputs` attribute records) of every file of the base and of the
// task's expert, the exemplars file's hash with its group and features.exemplars, the feature model ("expert",
// or "scaled" with alpha_k as text of 17 significant digits) and the backend's name (CPU and CUDA need not give
// the same bits). Paths, expert names and the order of the experts are not in it. The cache takes the backend's
// statistics not to depend on the thread count or the number of ranks (as the merge's output does not).
//
// Layout.
//   DIR/catmerge-features.json      marks DIR as a cache (a non-empty DIR without it is refused)
//   DIR/<key>/<site>.h5             one site's SiteStats: datasets x (float32 [rows, dim]), gram (float64
//                                   [dim, dim]) or sqsum (float64 [dim]); root attributes format, key, site,
//                                   task, catmerge_version, kind, dim, rows and checksum (XXH3-128 of kind,
//                                   dim, rows and the values' bytes). <site> is the site's name with every byte
//                                   but [A-Za-z0-9._-] (and a leading '.') written %XX; a name longer than 200
//                                   bytes becomes ~<XXH3-128 of the name>; the site attribute says which it is.
//   DIR/tasks/<task>.json           the key a task of that name last stored or reused, with its inputs (what,
//                                   path, hash or value), so that a run whose inputs changed can say which
// Every file is written as <name>.tmp-<host>-<pid>, registered with io/temp_files, and renamed when complete,
// so a killed writer leaves no entry. Each rank reads and writes only the sites its own shard's tensors use;
// a task is reused only when every rank finds every site it needs (decided together), else every rank runs
// it through the pipeline and stores it again. Entries are never deleted: a sweep may come back to them.
//
// What a run does with an entry, task by task (rank 0 prints one line per task on stderr):
//   reused:      catmerge: features.cache: task 'T': reused (no forward pass) from DIR/<key>
//   new:         catmerge: features.cache: task 'T': computed and stored in DIR/<key>
//   recomputed:  (the line says why, and ends "recomputed and stored in DIR/<key>")
//     - stale:     no entry for the key, and DIR/tasks/T.json records another one: "its entry was made from
//                  another expert (experts.3.path, <file>: hash <old> now <new>)" (or base, exemplars, feature
//                  model, ... naming every input that changed);
//     - incomplete: DIR/<key> lacks a site file a rank needs (a run killed between ranks' writes);
//     - truncated: "DIR/<key>/<site>.h5 is truncated or unreadable" (an HDF5 file HDF5 cannot open or read);
//     - damaged:   "DIR/<key>/<site>.h5 is damaged" (its values do not match its checksum, or its kind or
//                  dimension not the model's site).
//   refused (cm::Error "DIR/<key>/<site>.h5: not an entry of this cache (...)", exit 1), for a file this cache
//   did not write there, which a recomputation would overwrite: not an HDF5 file, an HDF5 file without
//   catmerge's format attribute, another format version, or a key or site attribute other than where it lies
//   (a file copied or moved in). Likewise DIR itself when it is neither empty nor marked as a cache.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "features/feature_store.hpp"
#include "job/collect_features.hpp"
#include "job/config.hpp"
#include "job/inputs.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

constexpr const char* kFeatureCacheFormat = "catmerge-features-1";

// The content hash of every file the features depend on: the base's, every expert's and the exemplars files.
// Collective: each rank hashes a share of the 256 KiB pieces (a safetensors file's as io/provenance.hpp assigns
// them, completing the leaves it would compute there anyway; other files' round robin) and one all-reduce gives
// every rank every hash; a file is hashed once per process (a later call, for a sweep's next feature model, takes
// the earlier hash of the same path). path -> 32 hex digits.
std::map<std::string, std::string> hash_feature_files(const JobConfig& cfg, const JobInputs& in,
                                                      const ShardPlan& plan, Communicator& comm);

// One thing a task's key depends on.
struct FeatureInput {
  std::string role;   // format, arch, base, expert, exemplars, group, count, model, backend
  std::string what;   // the configuration key that names it: model.base, experts.3.path, features.exemplars, ...
  std::string path;   // a file's path ("" for values)
  std::string value;  // a file's content hash, else the value as text
};

// Task k's inputs, in key order. `hashes` from hash_feature_files; `scales` as collect_features takes them.
std::vector<FeatureInput> feature_inputs_of(const JobConfig& cfg, const JobInputs& in, size_t k,
                                            const std::vector<double>& scales, const std::string& backend,
                                            const std::map<std::string, std::string>& hashes);
// The key of those inputs: 32 hex digits. Depends on roles and values only.
std::string feature_key(const std::vector<FeatureInput>& inputs);

// What changed from `before` to `now` (the inputs a task record holds, and this run's): "another expert
// (experts.3.path, /x/model.safetensors: hash <a> now <b>)"; "other inputs" when nothing it can name differs.
std::string describe_change(const std::vector<FeatureInput>& before, const std::vector<FeatureInput>& now);

// A site's or task's name as a file name (the layout above).
std::string cache_file_name(const std::string& name);

// The state of one site's file.
enum class CachedSite { Found = 0, NoEntry, Missing, Truncated, Damaged };

class FeatureCache {
 public:
  explicit FeatureCache(std::string dir);  // no I/O
  const std::string& dir() const { return dir_; }
  std::string entry_dir(const std::string& key) const;
  std::string site_path(const std::string& key, const std::string& site) const;
  std::string task_record_path(const std::string& task) const;

  // Creates DIR and its mark, or checks that an existing DIR is a cache (or empty); cm::Error naming DIR.
  void open_or_create() const;

  // Writes DIR/<key>/<site>.h5 (creating DIR/<key>); cm::Error naming the file when it cannot.
  void store(const std::string& key, const std::string& site, const std::string& task, const SiteStats& s) const;
  // Reads DIR/<key>/<site>.h5 into `out` (Found), or says what is wrong with it; throws cm::Error for a file
  // that is not an entry of this cache (see above). `expected`: the model's site, checked when given.
  CachedSite load(const std::string& key, const std::string& site, const Site* expected, SiteStats& out) const;

  // DIR/tasks/<task>.json: the key and inputs it records (false when absent or unreadable), and writing it.
  bool read_task_record(const std::string& task, std::string& key, std::vector<FeatureInput>& inputs) const;
  void write_task_record(const std::string& task, const std::string& key, const std::vector<FeatureInput>& inputs) const;

 private:
  std::string dir_;
};

// The features of every task (what collect_features returns), through the cache: with cfg.feature_cache empty,
// exactly collect_features of every task; else each task's entry is looked up on every rank, the tasks some rank
// lacks go through the pipeline (collect_features of those) and are stored, and rank 0 says what it did with each
// task. Collective. Throws cm::Error for a refused entry (see above).
std::vector<FeatureStore> cached_features(const JobConfig& cfg, const FeatureInputs& fin, const JobInputs& in,
                                          Backend& backend, const std::vector<double>& scales, const ShardPlan& plan,
                                          Communicator& comm);

}  // namespace cm
