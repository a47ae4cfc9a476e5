#include "job/yaml_reader.hpp"

#include <cstdlib>
#include <filesystem>

#include "common/error.hpp"

namespace cm {

namespace fs = std::filesystem;

YamlReader::YamlReader(const std::string& file, const std::vector<std::string>& sets) : file_(file) {
  if (!fs::is_regular_file(file)) fail(file, "no such configuration file");
  try {
    root_ = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    fail(file, "not valid YAML: " + e.msg);
  }
  if (!root_.IsMap()) fail(file, "the configuration must be a map of sections");
  for (const auto& s : sets) apply_set(s);
}

void YamlReader::apply_set(const std::string& set) {
  const size_t eq = set.find('=');
  if (eq == std::string::npos || eq == 0) fail(file_, "--set '" + set + "': expected key=value");
  const std::string key = set.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(set.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    fail(file_, "--set " + key + ": " + e.msg);
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  // yaml-cpp nodes are references: assigning to the last one changes the tree.
  std::vector<YAML::Node> chain{root_};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node cur = chain.back();
    const std::string& p = parts[i];
    if (cur.IsSequence()) {
      char* end = nullptr;
      const unsigned long idx = std::strtoul(p.c_str(), &end, 10);
      if (p.empty() || *end != '\0' || idx >= cur.size()) fail(file_, "--set " + key + ": no list element '" + p + "'");
      chain.push_back(cur[idx]);
    } else {
      chain.push_back(cur[p]);
    }
  }
  chain.back()[parts.back()] = value;
  overridden_.insert(key);
}

void YamlReader::bad(const std::string& key, const std::string& problem) const { fail(file_, key + ": " + problem); }

std::string YamlReader::text(const YAML::Node& n, const std::string& key) const {
  if (!n.IsScalar()) bad(key, "expected a single value");
  return n.Scalar();
}

int YamlReader::integer(const YAML::Node& n, const std::string& key, int lo) const {
  const std::string s = text(n, key);
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v > (1L << 30) || v < -(1L << 30)) bad(key, "expected an integer, got '" + s + "'");
  if (v < lo) bad(key, "must be at least " + std::to_string(lo));
  return static_cast<int>(v);
}

std::string YamlReader::one_of(const YAML::Node& n, const std::string& key,
                               const std::vector<std::string>& allowed) const {
  const std::string s = text(n, key);
  std::string list;
  for (const auto& a : allowed) {
    if (s == a) return s;
    list += (list.empty() ? "" : ", ") + a;
  }
  bad(key, "'" + s + "' is not one of " + list);
}

std::string YamlReader::path(const YAML::Node& n, const std::string& key) const {
  const fs::path p = text(n, key);
  if (p.empty()) bad(key, "empty path");
  if (p.is_absolute() || overridden_.count(key)) return p.string();
  return (fs::path(file_).parent_path() / p).lexically_normal().string();
}

void YamlReader::known_keys(const YAML::Node& map, const std::string& prefix,
                            const std::set<std::string>& allowed) const {
  if (!map.IsMap()) bad(prefix, "expected a map of keys");
  for (const auto& kv : map) {
    const std::string k = kv.first.Scalar();
    if (!allowed.count(k)) bad(prefix.empty() ? k : prefix + "." + k, "unknown key");
  }
}

}  // namespace cm
