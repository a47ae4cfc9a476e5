#pragma once
// Typed access to a method's hyperparameters (the `method:` map of the configuration, less `name`).
// Each method reads its keys with their METHODS.md defaults; finish() then rejects any key no method
// read, so a misspelt hyperparameter is an error instead of a silently ignored default.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cm {

class Params {
 public:
  // values: key -> scalar text (lists as "[a, b, c]"); where: prefix for errors, e.g. "merge.yaml: method".
  Params(std::map<std::string, std::string> values, std::string where);

  double number(const std::string& key, double fallback);
  int integer(const std::string& key, int fallback);
  std::string choice(const std::string& key, const std::vector<std::string>& allowed);  // default: allowed[0]
  // A per-expert list; empty when the key is absent. Its length must be `count`.
  std::vector<double> numbers(const std::string& key, size_t count);
  bool has(const std::string& key) const;

  // Throws cm::Error for every key present but never read.
  void finish() const;

  // Every hyperparameter actually used, defaults included, as a JSON object whose values have the types the
  // method read them as: numbers, integers, strings and lists of numbers (recorded in the output).
  nlohmann::json used() const { return nlohmann::json(used_); }
  const std::string& where() const { return where_; }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, nlohmann::json> used_;
  std::string where_;
};

}  // namespace cm
