#pragma once
// Reading catmerge's YAML configuration files, shared by `run` (job/config.cpp) and `eval`
// (job/eval_config.cpp): loading with --set overrides applied, and typed values whose errors name the
// file and the dotted key.
#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

namespace cm {

class YamlReader {
 public:
  // Loads `file` and applies each "a.b.0.c=value" of `sets` (value parsed as YAML; list elements by index).
  YamlReader(const std::string& file, const std::vector<std::string>& sets);

  const YAML::Node& root() const { return root_; }
  const std::string& file() const { return file_; }

  [[noreturn]] void bad(const std::string& key, const std::string& problem) const;
  std::string text(const YAML::Node& n, const std::string& key) const;
  int integer(const YAML::Node& n, const std::string& key, int lo) const;
  std::string one_of(const YAML::Node& n, const std::string& key, const std::vector<std::string>& allowed) const;
  // Relative paths name files beside the configuration, except those given with --set (working directory).
  std::string path(const YAML::Node& n, const std::string& key) const;
  // Every key of `map` must be in `allowed`; prefix is the map's dotted key ("" at the top).
  void known_keys(const YAML::Node& map, const std::string& prefix, const std::set<std::string>& allowed) const;

 private:
  void apply_set(const std::string& set);

  std::string file_;
  YAML::Node root_;
  std::set<std::string> overridden_;
};

}  // namespace cm
