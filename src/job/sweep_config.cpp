#include "job/sweep_config.hpp"

#include <algorithm>
#include <filesystem>

#include "common/error.hpp"
#include "job/yaml_reader.hpp"
#include "methods/method.hpp"

namespace cm {

namespace {

// The combinations of `axes` (key, values) in order, the first axis varying slowest.
std::vector<std::vector<std::pair<std::string, std::string>>> combinations(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& axes) {
  std::vector<std::vector<std::pair<std::string, std::string>>> out(1);
  for (const auto& [key, values] : axes) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& partial : out)
      for (const std::string& v : values) {
        next.push_back(partial);
        next.back().emplace_back(key, v);
      }
    out = std::move(next);
  }
  return out;
}

std::string default_dir(const std::string& output_path) {
  std::string p = output_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::filesystem::path path(p);
  if (path.extension() == ".h5" || path.extension() == ".hdf5") p = (path.parent_path() / path.stem()).string();
  return p + ".sweep";
}

}  // namespace

SweepConfig load_sweep_config(const std::string& file, const std::vector<std::string>& sets, const JobConfig& job) {
  const YamlReader r(file, sets);
  const YAML::Node& root = r.root();
  const YAML::Node sw = root["sweep"];
  if (!sw) r.bad("sweep", "missing section (catmerge sweep needs sweep.grids)");
  if (!sw.IsMap()) r.bad("sweep", "expected a map of keys");
  r.known_keys(sw, "sweep", {"dir", "grids", "select", "test", "write", "spread"});
  SweepConfig c;
  c.dir = sw["dir"] ? r.path(sw["dir"], "sweep.dir") : default_dir(job.output_path);

  const YAML::Node grids = sw["grids"];
  if (!grids || !grids.IsSequence() || grids.size() == 0)
    r.bad("sweep.grids", "expected a non-empty list of grids, e.g. - {method: cat, alpha: [0.1, 0.2]}");
  for (size_t g = 0; g < grids.size(); ++g) {
    const std::string at = "sweep.grids." + std::to_string(g);
    const YAML::Node grid = grids[g];
    if (!grid.IsMap()) r.bad(at, "expected a map with 'method' and the hyperparameters to sweep");
    if (!grid["method"]) r.bad(at + ".method", "missing");
    const std::string method = r.one_of(grid["method"], at + ".method", method_names());
    std::string name = method;
    if (grid["name"]) {
      name = r.text(grid["name"], at + ".name");
      // It names a plot file (alpha-<name>.png), so it stays a plain word.
      if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
                              std::string::npos)
        r.bad(at + ".name", "expected letters, digits, '_' or '-', got '" + name + "'");
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> axes;
    for (const auto& kv : grid) {
      const std::string key = kv.first.Scalar();
      if (key == "method" || key == "name") continue;
      std::vector<std::string> values;
      if (kv.second.IsSequence()) {
        if (kv.second.size() == 0) r.bad(at + "." + key, "an empty list sweeps nothing");
        for (size_t i = 0; i < kv.second.size(); ++i)
          values.push_back(r.text(kv.second[i], at + "." + key + "." + std::to_string(i)));
      } else {
        values.push_back(r.text(kv.second, at + "." + key));
      }
      axes.emplace_back(key, values);
    }
    for (const auto& combination : combinations(axes)) {
      SweepPoint p;
      p.index = static_cast<int>(c.points.size());
      p.method = method;
      p.name = name;
      for (const auto& [k, v] : combination) {
        p.params[k] = v;
        p.setting += (p.setting.empty() ? "" : " ") + k + "=" + v;
      }
      if (p.setting.empty()) p.setting = "-";
      c.points.push_back(p);
    }
  }

  if (const YAML::Node sel = sw["select"]) {
    r.known_keys(sel, "sweep.select", {"split", "metric"});
    if (sel["split"]) c.select_split = r.one_of(sel["split"], "sweep.select.split", {"val", "test"});
    if (sel["metric"]) c.select_metric = r.text(sel["metric"], "sweep.select.metric");
  }
  if (sw["test"]) c.test = r.one_of(sw["test"], "sweep.test", {"true", "false"}) == "true";
  if (sw["write"]) c.write = r.one_of(sw["write"], "sweep.write", {"selected", "all"}) == "all" ? SweepWrite::All
                                                                                                  : SweepWrite::Selected;
  if (sw["spread"] && r.one_of(sw["spread"], "sweep.spread", {"layers", "points"}) == "points")
    c.spread = SweepSpread::Points;
  // The journal's scores depend on these sections only: a new output path or selection keeps them.
  YAML::Node key;
  for (const char* section : {"model", "experts", "features", "eval"})
    if (root[section]) key[section] = root[section];
  if (root["output"] && root["output"]["dtype"]) key["output"]["dtype"] = root["output"]["dtype"];
  if (root["runtime"] && root["runtime"]["backend"]) key["runtime"]["backend"] = root["runtime"]["backend"];
  key["grids"] = grids;
  YAML::Emitter emit;
  emit << key;
  c.key_text = emit.c_str();
  return c;
}

JobConfig point_config(const JobConfig& cfg, const SweepPoint& p, const std::string& output_path) {
  JobConfig c = cfg;
  c.method = p.method;
  c.method_params = p.params;
  c.feature_model = feature_model_for(cfg, p.method, p.params);
  c.output_path = output_path;
  return c;
}

}  // namespace cm
