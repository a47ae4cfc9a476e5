#include "job/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "arch/registry.hpp"
#include "common/error.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

// Keys each section accepts; `method` keys are checked by the method itself (methods/params.hpp).
const std::map<std::string, std::set<std::string>>& sections() {
  static const std::map<std::string, std::set<std::string>> s = {
      {"model", {"arch", "base"}},
      {"experts", {"name", "path", "exemplars", "fisher"}},
      {"method", {}},
      {"features", {"exemplars", "model"}},
      {"output", {"path", "dtype"}},
      {"runtime", {"backend", "threads"}},
  };
  return s;
}

class Reader {
 public:
  Reader(std::string file, std::set<std::string> overridden)
      : file_(std::move(file)), overridden_(std::move(overridden)) {}

  [[noreturn]] void bad(const std::string& key, const std::string& problem) const {
    fail(file_, key + ": " + problem);
  }

  std::string text(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) bad(key, "expected a single value");
    return n.Scalar();
  }

  int integer(const YAML::Node& n, const std::string& key, int lo) const {
    const std::string s = text(n, key);
    size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || s.empty()) bad(key, "expected an integer, got '" + s + "'");
    if (v < lo) bad(key, "must be at least " + std::to_string(lo));
    return v;
  }

  std::string one_of(const YAML::Node& n, const std::string& key, const std::vector<std::string>& allowed) const {
    const std::string s = text(n, key);
    std::string list;
    for (const auto& a : allowed) {
      if (s == a) return s;
      list += (list.empty() ? "" : ", ") + a;
    }
    bad(key, "'" + s + "' is not one of " + list);
  }

  // Relative paths name files beside the configuration, except those given with --set.
  std::string path(const YAML::Node& n, const std::string& key) const {
    const fs::path p = text(n, key);
    if (p.empty()) bad(key, "empty path");
    if (p.is_absolute() || overridden_.count(key)) return p.string();
    return (fs::path(file_).parent_path() / p).lexically_normal().string();
  }

  void known_keys(const YAML::Node& map, const std::string& prefix, const std::set<std::string>& allowed) const {
    if (!map.IsMap()) bad(prefix, "expected a map of keys");
    for (const auto& kv : map) {
      const std::string k = kv.first.Scalar();
      if (!allowed.count(k)) bad(prefix.empty() ? k : prefix + "." + k, "unknown key");
    }
  }

 private:
  std::string file_;
  std::set<std::string> overridden_;
};

// Applies "a.b.0.c=value" to the tree; list elements are addressed by index.
void apply_set(YAML::Node root, const std::string& set, const std::string& file, std::string* key_out) {
  const size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) fail(file, "--set '" + set + "': expected key=value");
  const std::string key = set.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(set.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    fail(file, "--set " + key + ": " + e.msg);
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node cur = chain.back();
    const std::string& p = parts[i];
    if (cur.IsSequence()) {
      char* end = nullptr;
      const unsigned long idx = std::strtoul(p.c_str(), &end, 10);
      if (p.empty() || *end != '\0' || idx >= cur.size()) fail(file, "--set " + key + ": no list element '" + p + "'");
      chain.push_back(cur[idx]);
    } else {
      chain.push_back(cur[p]);
    }
  }
  chain.back()[parts.back()] = value;
  *key_out = key;
}

}  // namespace

JobConfig load_config(const std::string& file, const std::vector<std::string>& sets) {
  if (!fs::is_regular_file(file)) fail(file, "no such configuration file");
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    fail(file, "not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) fail(file, "the configuration must be a map of sections");
  std::set<std::string> overridden;
  for (const auto& s : sets) {
    std::string key;
    apply_set(root, s, file, &key);
    overridden.insert(key);
  }
  const Reader r(file, overridden);
  std::set<std::string> section_names;
  for (const auto& [name, keys] : sections()) section_names.insert(name);
  r.known_keys(root, "", section_names);
  for (const char* required : {"model", "experts", "method", "output"})
    if (!root[required]) r.bad(required, "missing section");

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

  const YAML::Node method = root["method"];
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

  if (const YAML::Node f = root["features"]) {
    r.known_keys(f, "features", sections().at("features"));
    if (f["exemplars"]) c.exemplars = r.integer(f["exemplars"], "features.exemplars", 1);
    if (f["model"]) c.feature_model = r.one_of(f["model"], "features.model", {"expert", "scaled"});
  }

  const YAML::Node out = root["output"];
  r.known_keys(out, "output", sections().at("output"));
  if (!out["path"]) r.bad("output.path", "missing");
  c.output_path = r.path(out["path"], "output.path");
  if (out["dtype"]) c.output_dtype = r.one_of(out["dtype"], "output.dtype", {"base", "f32", "f16", "bf16"});

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

}  // namespace cm
