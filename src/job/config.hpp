#pragma once
// The job configuration (YAML, README "Configuration"): parsed, checked key by key, paths resolved.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/dtype.hpp"

namespace cm {

// features.model (METHODS.md "Feature model"): the expert theta_k, or theta_0 + alpha_k T_k.
enum class FeatureModel { Expert, Scaled };
const char* feature_model_name(FeatureModel m);  // "expert", "scaled"

// output.format (README "Output format"): one HDF5 file, or a HuggingFace directory of safetensors shards.
enum class OutputFormat { Hdf5, Safetensors };

// "5GB", "500MiB", "1.5GB", "4096" (bytes): decimal units as HuggingFace reads them (KB, MB, GB, TB), binary
// ones with an i (KiB ... TiB). Throws cm::Error naming `where` unless it is a whole positive size.
uint64_t parse_byte_size(const std::string& text, const std::string& where);

struct ExpertConfig {
  std::string name;
  std::string path;
  std::string exemplars_file;   // "" when the expert has no exemplars
  std::string exemplars_group;
  std::string fisher;           // "" unless given
};

struct JobConfig {
  std::string source;  // the configuration file, as named on the command line
  std::string text;    // the effective configuration (after --set), as YAML
  std::string arch;
  std::string base;
  std::vector<ExpertConfig> experts;
  std::string method;
  std::map<std::string, std::string> method_params;  // every method key but `name`, as scalar text
  int exemplars = 2;
  FeatureModel feature_model = FeatureModel::Expert;  // `method`'s: feature_model_for(*this, method, method_params)
  bool feature_model_given = false;                   // features.model is in the file (else each method's default)
  std::string feature_cache;  // features.cache: a directory of per-task features (job/feature_cache.hpp); "" = none
  std::string output_path;
  OutputFormat output_format = OutputFormat::Hdf5;
  uint64_t shard_size = 5'000'000'000;  // output.shard_size: bytes of tensor data per safetensors shard
  std::optional<DType> output_dtype;  // output.dtype; none: each tensor as the base stores it
  std::string backend = "auto";
  int threads = 0;
  int local_rank = 0;  // not from the file: the launcher's rank within the node (picks the GPU)
};

// Reads `path`, applies each "key.path=value" of `sets` (value parsed as YAML; list indices as numbers,
// e.g. experts.0.path=x), checks every key, and resolves relative paths against the configuration's
// folder (paths given with --set: against the working directory). Throws cm::Error naming the file and key.
// A sweep's configuration may leave out `method` (its grids name the methods): method_required false.
JobConfig load_config(const std::string& path, const std::vector<std::string>& sets, bool method_required = true);

// The feature model of method `name` with `params` under `cfg`: features.model when the file gives it, else
// the method's default (METHODS.md: scaled for CAT's released variant), so each point of a sweep gets its own.
FeatureModel feature_model_for(const JobConfig& cfg, const std::string& name,
                               const std::map<std::string, std::string>& params);

}  // namespace cm
