#include "arch/hf_config.hpp"

namespace cm {

nlohmann::json parse_config(const Checkpoint& ck) {
  if (ck.config_json().empty()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(ck.config_json());
  } catch (const nlohmann::json::exception& e) {
    fail(ck.path(), std::string("config is not valid JSON: ") + e.what());
  }
}

std::string string_or(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) fail(where, std::string("config key '") + key + "' is not a string");
  return j[key].get<std::string>();
}

}  // namespace cm
