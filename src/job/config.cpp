#include "job/config.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "arch/registry.hpp"
#include "common/error.hpp"
#include "job/yaml_reader.hpp"
#include "methods/method.hpp"

namespace cm {

namespace {

// Keys each section accepts; `method` keys are checked by the method itself (methods/params.hpp).
const std::map<std::string, std::set<std::string>>& sections() {
  static const std::map<std::string, std::set<std::string>> s = {
      {"model", {"arch", "base"}},
      {"experts", {"name", "path", "exemplars", "fisher"}},
      {"method", {}},
      {"features", {"exemplars", "model", "cache"}},
      {"output", {"path", "format", "shard_size", "dtype"}},
      {"runtime", {"backend", "threads"}},
      {"eval", {"heads", "data", "tasks", "batch"}},  // read by `catmerge eval` (job/eval_config.cpp)
      {"sweep", {"dir", "grids", "select", "test", "write", "spread"}},  // read by `catmerge sweep` (job/sweep_config.cpp)
  };
  return s;
}

}  // namespace

JobConfig load_config(const std::string& file, const std::vector<std::string>& sets, bool method_required) {
  const YamlReader r(file, sets);
  const YAML::Node& root = r.root();
  std::set<std::string> section_names;
  for (const auto& [name, keys] : sections()) section_names.insert(name);
  r.known_keys(root, "", section_names);
  for (const char* required : {"model", "experts", "output"})
    if (!root[required]) r.bad(required, "missing section");
  if (method_required && !root["method"]) r.bad("method", "missing section");

  JobConfig c;
  c.source = file;
  const YAML::Node model = root["model"];
  r.known_keys(model, "model", sections().at("model"));
  if (!model["arch"]) r.bad("model.arch", "missing");
  if (!model["base"]) r.bad("model.base", "missing");
  c.arch = r.one_of(model["arch"], "model.arch", arch_names());
  c.base = r.path(model["base"], "model.base");

  const YAML::Node experts = root["experts"];
  if (!experts.IsSequence() || experts.size() == 0) r.bad("experts", "expected a non-empty list of experts");
  for (size_t i = 0; i < experts.size(); ++i) {
    const std::string at = "experts." + std::to_string(i);
    const YAML::Node e = experts[i];
    r.known_keys(e, at, sections().at("experts"));
    if (!e["path"]) r.bad(at + ".path", "missing");
    ExpertConfig x;
    x.name = e["name"] ? r.text(e["name"], at + ".name") : "expert" + std::to_string(i);
    x.path = r.path(e["path"], at + ".path");
    if (e["exemplars"]) {
      const std::string spec = r.text(e["exemplars"], at + ".exemplars");
      const size_t colon = spec.rfind(":/");
      if (colon == std::string::npos) r.bad(at + ".exemplars", "expected FILE.h5:/GROUP, got '" + spec + "'");
      x.exemplars_file = r.path(YAML::Node(spec.substr(0, colon)), at + ".exemplars");
      x.exemplars_group = spec.substr(colon + 1);
    }
    if (e["fisher"]) x.fisher = r.path(e["fisher"], at + ".fisher");
    c.experts.push_back(x);
  }

  const YAML::Node method = root["method"] ? root["method"] : YAML::Node(YAML::Load("{name: weight_average}"));
  if (!method.IsMap()) r.bad("method", "expected a map with at least 'name'");
  if (!method["name"]) r.bad("method.name", "missing");
  c.method = r.text(method["name"], "method.name");
  for (const auto& kv : method) {
    const std::string k = kv.first.Scalar();
    if (k == "name") continue;
    if (kv.second.IsSequence()) {
      std::string list = "[";
      for (size_t i = 0; i < kv.second.size(); ++i)
        list += (i ? ", " : "") + r.text(kv.second[i], "method." + k + "." + std::to_string(i));
      c.method_params[k] = list + "]";
    } else {
      c.method_params[k] = r.text(kv.second, "method." + k);
    }
  }

  const YAML::Node f = root["features"];
  if (f) {
    r.known_keys(f, "features", sections().at("features"));
    if (f["exemplars"]) c.exemplars = r.integer(f["exemplars"], "features.exemplars", 1);
    c.feature_model_given = static_cast<bool>(f["model"]);
    if (f["model"] && r.one_of(f["model"], "features.model", {"expert", "scaled"}) == "scaled")
      c.feature_model = FeatureModel::Scaled;
    if (f["cache"]) c.feature_cache = r.path(f["cache"], "features.cache");
  }
  c.feature_model = feature_model_for(c, c.method, c.method_params);

  const YAML::Node out = root["output"];
  r.known_keys(out, "output", sections().at("output"));
  if (!out["path"]) r.bad("output.path", "missing");
  c.output_path = r.path(out["path"], "output.path");
  const bool h5_path = c.output_path.size() > 3 && (c.output_path.rfind(".h5") == c.output_path.size() - 3 ||
                                                    c.output_path.rfind(".hdf5") == c.output_path.size() - 5);
  if (out["format"] && r.one_of(out["format"], "output.format", {"hdf5", "safetensors"}) == "safetensors") {
    if (h5_path) r.bad("output.format", "safetensors writes a directory, but output.path names an HDF5 file");
    c.output_format = OutputFormat::Safetensors;
  }
  if (out["shard_size"]) {
    if (c.output_format != OutputFormat::Safetensors) r.bad("output.shard_size", "only format: safetensors has shards");
    c.shard_size = parse_byte_size(r.text(out["shard_size"], "output.shard_size"), file + ": output.shard_size");
  }
  if (out["dtype"]) {
    const std::string d = r.one_of(out["dtype"], "output.dtype", {"base", "f32", "f16", "bf16"});
    if (d != "base") c.output_dtype = parse_user_dtype(d);
  }

  if (const YAML::Node rt = root["runtime"]) {
    r.known_keys(rt, "runtime", sections().at("runtime"));
    if (rt["backend"]) c.backend = r.one_of(rt["backend"], "runtime.backend", {"auto", "cpu", "cuda"});
    if (rt["threads"]) c.threads = r.integer(rt["threads"], "runtime.threads", 0);
  }

  YAML::Emitter emit;
  emit << root;
  c.text = emit.c_str();
  return c;
}

uint64_t parse_byte_size(const std::string& text, const std::string& where) {
  static const std::vector<std::pair<std::string, double>> units = {
      {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0},
      {"KB", 1e3},     {"MB", 1e6},        {"GB", 1e9},           {"TB", 1e12},
      {"B", 1.0},      {"", 1.0}};
  for (const auto& [unit, scale] : units) {
    if (text.size() <= unit.size() || text.compare(text.size() - unit.size(), unit.size(), unit) != 0) continue;
    const std::string number = text.substr(0, text.size() - unit.size());
    double v = 0;
    const auto r = std::from_chars(number.data(), number.data() + number.size(), v);
    if (r.ec != std::errc() || r.ptr != number.data() + number.size()) break;
    const double bytes = std::floor(v * scale);
    if (!(bytes >= 1) || bytes > 1e18) break;
    return static_cast<uint64_t>(bytes);
  }
  fail(where, "expected a size such as 5GB, 500MB, 2GiB or a number of bytes, got '" + text + "'");
}

FeatureModel feature_model_for(const JobConfig& cfg, const std::string& name,
                               const std::map<std::string, std::string>& params) {
  if (cfg.feature_model_given) return cfg.feature_model;
  return default_scaled_features(name, params, cfg.source + ": method") ? FeatureModel::Scaled : FeatureModel::Expert;
}

const char* feature_model_name(FeatureModel m) { return m == FeatureModel::Scaled ? "scaled" : "expert"; }

}  // namespace cm
