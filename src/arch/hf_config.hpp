#pragma once
// Reading a checkpoint's HuggingFace (or open_clip) config.json: the parsed object and typed lookups whose
// errors name the file and the key.
#include <string>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "io/checkpoint.hpp"

namespace cm {

// The checkpoint's config as JSON; an empty object when it has none. Throws cm::Error naming the
// checkpoint when the text is not valid JSON.
nlohmann::json parse_config(const Checkpoint& ck);

// A number from the config, or `fallback` when the key is absent or null.
template <class T>
T get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_number()) fail(where, std::string("config key '") + key + "' is not a number");
  return j[key].get<T>();
}

// A string from the config, or `fallback` when the key is absent or null.
std::string string_or(const nlohmann::json& j, const char* key, const std::string& fallback, const std::string& where);

}  // namespace cm
