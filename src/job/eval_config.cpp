#include "job/eval_config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/error.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

std::string scalar(const std::string& file, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) fail(file, key + ": expected a single value");
  return n.Scalar();
}

std::string resolve(const std::string& file, const YAML::Node& n, const std::string& key,
                    const std::set<std::string>& overridden) {
  const fs::path p = scalar(file, n, key);
  if (p.empty()) fail(file, key + ": empty path");
  if (p.is_absolute() || overridden.count(key)) return p.string();
  return (fs::path(file).parent_path() / p).lexically_normal().string();
}

int integer(const std::string& file, const YAML::Node& n, const std::string& key, int lo) {
  const std::string s = scalar(file, n, key);
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v > 1 << 30) fail(file, key + ": expected an integer, got '" + s + "'");
  if (v < lo) fail(file, key + ": must be at least " + std::to_string(lo));
  return static_cast<int>(v);
}

// "a.b.0.c=value": the same syntax as `catmerge run --set`.
std::string apply_set(YAML::Node root, const std::string& set, const std::string& file) {
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
    if (cur.IsSequence()) {
      char* end = nullptr;
      const unsigned long idx = std::strtoul(parts[i].c_str(), &end, 10);
      if (parts[i].empty() || *end != '\0' || idx >= cur.size())
        fail(file, "--set " + key + ": no list element '" + parts[i] + "'");
      chain.push_back(cur[idx]);
    } else {
      chain.push_back(cur[parts[i]]);
    }
  }
  chain.back()[parts.back()] = value;
  return key;
}

}  // namespace

EvalConfig load_eval_config(const std::string& file, const std::vector<std::string>& sets) {
  if (!fs::is_regular_file(file)) fail(file, "no such configuration file");
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    fail(file, "not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) fail(file, "the configuration must be a map of sections");
  std::set<std::string> overridden;
  for (const auto& s : sets) overridden.insert(apply_set(root, s, file));

  EvalConfig c;
  c.source = file;
  const YAML::Node ev = root["eval"];
  if (!ev) fail(file, "eval: missing section (catmerge eval needs eval.heads and eval.data)");
  if (!ev.IsMap()) fail(file, "eval: expected a map of keys");
  const std::set<std::string> allowed = {"heads", "data", "tasks", "batch"};
  for (const auto& kv : ev)
    if (!allowed.count(kv.first.Scalar())) fail(file, "eval." + kv.first.Scalar() + ": unknown key");
  if (!ev["heads"]) fail(file, "eval.heads: missing");
  if (!ev["data"]) fail(file, "eval.data: missing");
  c.heads = resolve(file, ev["heads"], "eval.heads", overridden);
  c.data = resolve(file, ev["data"], "eval.data", overridden);
  if (ev["batch"]) c.batch = integer(file, ev["batch"], "eval.batch", 1);

  if (const YAML::Node tasks = ev["tasks"]) {
    if (!tasks.IsSequence() || tasks.size() == 0) fail(file, "eval.tasks: expected a non-empty list of names");
    for (size_t i = 0; i < tasks.size(); ++i)
      c.tasks.push_back(scalar(file, tasks[i], "eval.tasks." + std::to_string(i)));
  } else {
    const YAML::Node experts = root["experts"];
    if (!experts || !experts.IsSequence() || experts.size() == 0)
      fail(file, "eval.tasks: missing, and there is no experts list to take the task names from");
    for (size_t i = 0; i < experts.size(); ++i) {
      const YAML::Node e = experts[i];
      const std::string at = "experts." + std::to_string(i);
      if (!e.IsMap()) fail(file, at + ": expected a map of keys");
      c.tasks.push_back(e["name"] ? scalar(file, e["name"], at + ".name") : "expert" + std::to_string(i));
    }
  }
  std::set<std::string> seen;
  for (const auto& t : c.tasks) {
    if (t.empty() || t.find('/') != std::string::npos) fail(file, "eval.tasks: '" + t + "' is not a valid task name");
    if (!seen.insert(t).second) fail(file, "eval.tasks: '" + t + "' is listed twice");
  }

  if (const YAML::Node rt = root["runtime"]) {
    if (!rt.IsMap()) fail(file, "runtime: expected a map of keys");
    if (rt["backend"]) {
      c.backend = scalar(file, rt["backend"], "runtime.backend");
      if (c.backend != "auto" && c.backend != "cpu" && c.backend != "cuda")
        fail(file, "runtime.backend: '" + c.backend + "' is not one of auto, cpu, cuda");
    }
    if (rt["threads"]) c.threads = integer(file, rt["threads"], "runtime.threads", 0);
  }
  return c;
}

}  // namespace cm
