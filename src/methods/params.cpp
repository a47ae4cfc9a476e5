#include "methods/params.hpp"

#include <charconv>
#include <cmath>
#include <limits>

#include "common/error.hpp"

namespace cm {

namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The whole of `text` as a finite number (locale-independent, an optional leading '+'), or false.
bool parse_number(const std::string& text, double* out) {
  std::string t = trim(text);
  if (!t.empty() && t[0] == '+') t.erase(0, 1);
  if (t.empty()) return false;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), *out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size() && std::isfinite(*out);
}

}  // namespace

Params::Params(std::map<std::string, std::string> values, std::string where)
    : values_(std::move(values)), where_(std::move(where)) {}

bool Params::has(const std::string& key) const { return values_.count(key) != 0; }

double Params::number(const std::string& key, double fallback) {
  double v = fallback;
  const auto it = values_.find(key);
  if (it != values_.end() && !parse_number(it->second, &v))
    fail(where_ + "." + key, "expected a number, got '" + it->second + "'");
  used_[key] = v;
  return v;
}

int Params::integer(const std::string& key, int fallback) {
  int v = fallback;
  const auto it = values_.find(key);
  if (it != values_.end()) {
    std::string t = trim(it->second);
    if (!t.empty() && t[0] == '+') t.erase(0, 1);
    const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || r.ec != std::errc() || r.ptr != t.data() + t.size())
      fail(where_ + "." + key, "expected an integer, got '" + it->second + "'");
  }
  used_[key] = v;
  return v;
}

std::string Params::choice(const std::string& key, const std::vector<std::string>& allowed) {
  CM_ASSERT(!allowed.empty());
  std::string v = allowed[0];
  const auto it = values_.find(key);
  if (it != values_.end()) {
    v = trim(it->second);
    bool ok = false;
    std::string list;
    for (const auto& a : allowed) {
      ok = ok || a == v;
      list += (list.empty() ? "" : ", ") + a;
    }
    if (!ok) fail(where_ + "." + key, "expected one of " + list + ", got '" + it->second + "'");
  }
  used_[key] = v;
  return v;
}

std::vector<double> Params::numbers(const std::string& key, size_t count) {
  const auto it = values_.find(key);
  if (it == values_.end()) return {};
  const std::string where = where_ + "." + key;
  const std::string t = trim(it->second);
  if (t.size() < 2 || t.front() != '[' || t.back() != ']')
    fail(where, "expected a list like [0.3, 0.5], got '" + it->second + "'");
  std::vector<double> out;
  const std::string body = t.substr(1, t.size() - 2);
  if (!trim(body).empty()) {
    size_t start = 0;
    while (true) {
      const size_t comma = body.find(',', start);
      const std::string item = body.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      double v = 0;
      if (!parse_number(item, &v)) fail(where, "expected a number, got '" + trim(item) + "'");
      out.push_back(v);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (out.size() != count)
    fail(where, "expected " + std::to_string(count) + " values (one per expert), got " + std::to_string(out.size()));
  used_[key] = out;
  return out;
}

void Params::finish() const {
  for (const auto& [key, value] : values_) {
    if (used_.count(key)) continue;
    std::string known;
    for (const auto& [k, v] : used_) known += (known.empty() ? "" : ", ") + k;
    fail(where_ + "." + key, "unknown hyperparameter for this method (it takes: " +
                                 (known.empty() ? std::string("none") : known) + ")");
  }
}

}  // namespace cm
