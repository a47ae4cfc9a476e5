#include "io/peft_adapter.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <unordered_map>
#include <iterator>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "io/safetensors.hpp"
#include "io/text_file.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";
constexpr const char* kWrapperPrefix = "base_model.model.";

// A rank_pattern or alpha_pattern entry, compiled as peft matches it: re.match(rf"(.*\.)?({key})$", module).
struct Pattern {
  std::string key;
  std::regex re;
  double value;  // a rank (an integer) or an alpha
};

// What adapter_config.json says about the deltas.
struct LoraSettings {
  int64_t r = 0;
  double alpha = 0;
  bool rslora = false, fan_in_fan_out = false;
  std::vector<Pattern> rank_pattern;  // in the file's order, which is the order peft tries them
  std::vector<Pattern> alpha_pattern;

  int64_t rank_of(const std::string& module) const {
    for (const Pattern& p : rank_pattern)
      if (std::regex_match(module, p.re)) return static_cast<int64_t>(p.value);
    return r;
  }
  double alpha_of(const std::string& module) const {
    for (const Pattern& p : alpha_pattern)
      if (std::regex_match(module, p.re)) return p.value;
    return alpha;
  }
};

bool flag(const ordered_json& cfg, const std::string& file, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return false;
  if (!it->is_boolean()) fail(file, std::string(key) + ": expected true or false");
  return it->get<bool>();
}

// `key`'s patterns; each value a positive integer (`ranks`) or any number.
std::vector<Pattern> read_patterns(const ordered_json& cfg, const std::string& file, const char* key, bool ranks) {
  std::vector<Pattern> out;
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return out;
  if (!it->is_object()) fail(file, std::string(key) + ": expected an object of module patterns");
  for (const auto& [pattern, value] : it->items()) {
    if (ranks ? !value.is_number_integer() || value.get<int64_t>() < 1 : !value.is_number())
      fail(file, std::string(key) + "." + pattern + ": expected " + (ranks ? "a positive integer" : "a number"));
    try {
      out.push_back({pattern, std::regex("(.*\\.)?(" + pattern + ")"), value.get<double>()});
    } catch (const std::regex_error&) {
      fail(file, std::string(key) + ": '" + pattern + "' is not a regular expression");
    }
  }
  return out;
}

LoraSettings read_settings(const std::string& file) {
  if (!fs::is_regular_file(file)) fail(file, "missing: a PEFT adapter directory holds adapter_config.json");
  ordered_json cfg;
  try {
    cfg = ordered_json::parse(read_text_file(file));
  } catch (const ordered_json::parse_error&) {
    fail(file, "not valid JSON");
  }
  if (!cfg.is_object()) fail(file, "not a JSON object");
  const auto type = cfg.find("peft_type");
  if (type == cfg.end() || !type->is_string()) fail(file, "no peft_type string: not a PEFT adapter configuration");
  if (type->get<std::string>() != "LORA")
    fail(file, "peft_type " + type->get<std::string>() + ": only LORA adapters are read");
  // Variants whose expert is not base + scale * B A on the targeted weights.
  for (const char* key : {"use_dora", "lora_bias", "use_qalora"})
    if (flag(cfg, file, key)) fail(file, std::string(key) + " is true: only plain LoRA (base + scale * B A) is read");
  for (const char* key : {"layer_replication", "target_parameters", "trainable_token_indices", "alora_invocation_tokens",
                          "use_bdlora"}) {
    const auto it = cfg.find(key);
    if (it != cfg.end() && !it->is_null() && !it->empty())
      fail(file, std::string(key) + " is set: only plain LoRA (base + scale * B A) is read");
  }

  LoraSettings s;
  const auto r = cfg.find("r");
  if (r == cfg.end() || !r->is_number_integer() || r->get<int64_t>() < 1) fail(file, "r: expected a positive integer");
  s.r = r->get<int64_t>();
  const auto alpha = cfg.find("lora_alpha");
  if (alpha == cfg.end() || !alpha->is_number()) fail(file, "lora_alpha: expected a number");
  s.alpha = alpha->get<double>();
  s.rslora = flag(cfg, file, "use_rslora");
  s.fan_in_fan_out = flag(cfg, file, "fan_in_fan_out");
  s.rank_pattern = read_patterns(cfg, file, "rank_pattern", true);
  s.alpha_pattern = read_patterns(cfg, file, "alpha_pattern", false);
  return s;
}

std::vector<std::string> split_name(const std::string& name) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', begin)) {
    parts.push_back(name.substr(begin, dot - begin));
    begin = dot + 1;
  }
  parts.push_back(name.substr(begin));
  return parts;
}

std::string join_name(std::vector<std::string>::const_iterator first, std::vector<std::string>::const_iterator last) {
  std::string out;
  for (auto it = first; it != last; ++it) out += (out.empty() ? "" : ".") + *it;
  return out;
}

enum class Factor { A, B, EmbeddingA, EmbeddingB };

// One tensor of the adapter file, its key read: a LoRA factor of a module, or a whole tensor.
struct AdapterKey {
  bool is_factor = false;
  Factor factor = Factor::A;
  std::string name;     // the module (a factor) or the tensor (whole), as the wrapped model names it
  std::string adapter;  // the adapter name the key carries, "" when none
};

AdapterKey parse_key(const std::string& file, const std::string& key) {
  std::string name = key;
  if (name.rfind(kWrapperPrefix, 0) == 0) name = name.substr(std::char_traits<char>::length(kWrapperPrefix));
  const std::vector<std::string> parts = split_name(name);
  const auto bad = [&](const std::string& why) { fail(file, "tensor '" + key + "': " + why); };
  static const std::map<std::string, Factor> kFactors = {{"lora_A", Factor::A},
                                                         {"lora_B", Factor::B},
                                                         {"lora_embedding_A", Factor::EmbeddingA},
                                                         {"lora_embedding_B", Factor::EmbeddingB}};
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto f = kFactors.find(parts[i]);
    if (f == kFactors.end()) {
      if (parts[i].rfind("lora_", 0) == 0)
        bad("'" + parts[i] + "' is not a LoRA factor (lora_A, lora_B, lora_embedding_A, lora_embedding_B)");
      continue;
    }
    if (i == 0) bad("no module name before " + parts[i]);
    // lora_A[.<adapter>].weight; lora_embedding_A[.<adapter>] (an nn.Parameter, no .weight)
    std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(i) + 1, parts.end());
    const bool embedding = f->second == Factor::EmbeddingA || f->second == Factor::EmbeddingB;
    if (!embedding && !rest.empty() && rest.back() == "bias") bad("a LoRA bias (lora_bias) is not read");
    if (!embedding) {
      if (rest.empty() || rest.back() != "weight") bad("expected " + parts[i] + "[.<adapter>].weight");
      rest.pop_back();
    }
    if (rest.size() > 1) bad("expected " + parts[i] + (embedding ? "[.<adapter>]" : "[.<adapter>].weight"));
    return {true, f->second, join_name(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(i)),
            rest.empty() ? "" : rest[0]};
  }
  // A whole tensor: modules_to_save.<adapter>.X is the trained copy of X, base_layer.X peft's copy of the
  // base's (a targeted embedding).
  AdapterKey whole;
  std::vector<std::string> kept;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "modules_to_save" && i + 1 < parts.size()) {
      whole.adapter = parts[++i];
    } else if (parts[i] != "base_layer") {
      kept.push_back(parts[i]);
    }
  }
  whole.name = join_name(kept.begin(), kept.end());
  return whole;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The base tensor that `name` (a module's weight or a whole tensor, as the wrapped model names it) stands for:
// that name, else the one base tensor ending in ".<name>", else the longest tail of the name the base has.
std::string base_name_of(const Checkpoint& base, const std::string& name, const std::string& file,
                         const std::string& key) {
  if (base.find(name)) return name;
  std::string found;
  for (const TensorInfo& t : base.tensors()) {
    if (t.name.size() <= name.size() || !ends_with(t.name, "." + name)) continue;
    if (!found.empty())
      fail(file, "tensor '" + key + "': '" + name + "' could be the base's '" + found + "' or '" + t.name + "'");
    found = t.name;
  }
  if (!found.empty()) return found;
  for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    const std::string tail = name.substr(dot + 1);
    if (tail.find('.') != std::string::npos && base.find(tail)) return tail;
  }
  fail(file, "tensor '" + key + "': the base " + base.path() + " has no tensor '" + name + "' (nor one ending in it)");
}

std::string weights_file(const std::string& dir) {
  const fs::path weights = fs::path(dir) / kWeightsFile;
  if (fs::is_regular_file(weights)) return weights.string();
  if (fs::exists(fs::path(dir) / "adapter_model.bin"))
    fail((fs::path(dir) / "adapter_model.bin").string(),
         "PyTorch pickles are not read: save the adapter with safe_serialization (adapter_model.safetensors)");
  fail(weights.string(), "missing: a PEFT adapter directory holds adapter_model.safetensors");
}

// Rounds float32 values to `dtype` and back: the values a checkpoint of that dtype holds.
void round_to(DType dtype, float* values, size_t n) {
  if (dtype == DType::F32) return;
  std::vector<uint16_t> stored(n);
  from_f32(dtype, values, stored.data(), n);
  to_f32(dtype, stored.data(), values, n);
}

// The delta of one base tensor [rows, columns]: scale * P Q, P [rows, rank] and Q [rank, columns] the factors:
// P = B, Q = A; or, transposed (fan_in_fan_out, embeddings), P = A^T, Q = B^T.
struct LoraPair {
  std::string a, b;  // adapter tensors lora_A / lora_B (or lora_embedding_A / _B)
  int64_t rank = 0;
  float scale = 0;
  bool transposed = false;
};

class PeftAdapterCheckpoint final : public Checkpoint {
 public:
  PeftAdapterCheckpoint(const std::string& dir, std::shared_ptr<const Checkpoint> base);

  const std::string& path() const override { return dir_; }
  const std::vector<TensorInfo>& tensors() const override { return base_->tensors(); }
  const TensorInfo* find(const std::string& name) const override { return base_->find(name); }
  void read_into(const std::string& name, int64_t first, int64_t count, float* out) const override;
  const std::vector<OtherTensorInfo>& other_tensors() const override { return base_->other_tensors(); }
  void read_stored(const std::string& name, uint64_t offset, uint64_t n, void* out) const override {
    base_->read_stored(name, offset, n, out);
  }
  void will_need(const std::string& name) const override;
  void release(const std::string& name) const override;
  std::vector<const SafetensorsFile*> shards() const override { return {&weights_}; }
  std::string file_of(const std::string& name) const override;
  std::vector<std::string> files() const override { return {config_file_, weights_.path()}; }
  const std::string& config_json() const override { return base_->config_json(); }
  std::map<std::string, std::string> metadata() const override { return weights_.metadata(); }

 private:
  // The adapter tensors that make the expert's tensor `name`.
  std::vector<std::string> adapter_tensors_of(const std::string& name) const;
  void add_delta(const LoraPair& pair, int64_t columns, int64_t first, int64_t count, float* out) const;

  std::string dir_, config_file_;
  std::shared_ptr<const Checkpoint> base_;
  SafetensorsFile weights_;
  std::unordered_map<std::string, LoraPair> pairs_;     // base tensor -> its factors
  std::unordered_map<std::string, std::string> whole_;  // base tensor -> the adapter tensor that replaces it
};

PeftAdapterCheckpoint::PeftAdapterCheckpoint(const std::string& dir, std::shared_ptr<const Checkpoint> base)
    : dir_(dir),
      config_file_((fs::path(dir) / kConfigFile).string()),
      base_(std::move(base)),
      weights_(weights_file(dir)) {
  const LoraSettings settings = read_settings(config_file_);
  const std::string& file = weights_.path();
  if (!weights_.other_tensors().empty())
    fail(file, "tensor '" + weights_.other_tensors().front().name + "' is " + weights_.other_tensors().front().dtype +
                   ": an adapter's tensors are F32, F16 or BF16");
  if (weights_.tensors().empty()) fail(file, "holds no tensors");

  struct Factors {
    const TensorInfo* of[4] = {};  // by Factor
  };
  std::map<std::string, Factors> modules;
  std::set<std::string> adapters;
  for (const TensorInfo& t : weights_.tensors()) {
    const AdapterKey key = parse_key(file, t.name);
    if (!key.adapter.empty()) adapters.insert(key.adapter);
    if (key.is_factor) {
      const TensorInfo*& slot = modules[key.name].of[static_cast<int>(key.factor)];
      if (slot) fail(file, "tensors '" + slot->name + "' and '" + t.name + "' are the same factor");
      slot = &t;
      continue;
    }
    const std::string target = base_name_of(*base_, key.name, file, t.name);
    const TensorInfo& b = *base_->find(target);
    if (t.shape != b.shape)
      fail(file, "tensor '" + t.name + "' has shape " + shape_string(t.shape) + ", the base's '" + target + "' " +
                     shape_string(b.shape));
    if (!whole_.emplace(target, t.name).second)
      fail(file, "tensors '" + whole_[target] + "' and '" + t.name + "' both hold the base's '" + target + "'");
  }
  if (adapters.size() > 1)
    fail(file, "holds the adapters '" + *adapters.begin() + "' and '" + *std::next(adapters.begin()) +
                   "': one adapter per file");

  for (const auto& [module, f] : modules) {
    const TensorInfo* linear[2] = {f.of[static_cast<int>(Factor::A)], f.of[static_cast<int>(Factor::B)]};
    const TensorInfo* embedding[2] = {f.of[static_cast<int>(Factor::EmbeddingA)],
                                      f.of[static_cast<int>(Factor::EmbeddingB)]};
    const bool is_embedding = embedding[0] || embedding[1];
    if (is_embedding && (linear[0] || linear[1]))
      fail(file, "module '" + module + "' has both lora_A/lora_B and lora_embedding_A/lora_embedding_B");
    const TensorInfo* a = is_embedding ? embedding[0] : linear[0];
    const TensorInfo* b = is_embedding ? embedding[1] : linear[1];
    const std::string a_name = is_embedding ? "lora_embedding_A" : "lora_A";
    const std::string b_name = is_embedding ? "lora_embedding_B" : "lora_B";
    if (!a || !b)
      fail(file, "module '" + module + "' has " + (a ? a_name : b_name) + " but no " + (a ? b_name : a_name));
    if (a->shape.size() != 2 || b->shape.size() != 2)
      fail(file, "module '" + module + "': " + a_name + " " + shape_string(a->shape) + " and " + b_name + " " +
                     shape_string(b->shape) + " are not both 2-D (only linear and embedding LoRA is read)");
    const int64_t rank = settings.rank_of(module);
    if (a->shape[0] != b->shape[1])
      fail(file, "module '" + module + "': " + a_name + " " + shape_string(a->shape) + " and " + b_name + " " +
                     shape_string(b->shape) + " do not share a rank");
    if (a->shape[0] != rank)
      fail(file, "module '" + module + "': its factors have rank " + std::to_string(a->shape[0]) + ", " + kConfigFile +
                     " gives r = " + std::to_string(rank));
    LoraPair pair;
    pair.a = a->name;
    pair.b = b->name;
    pair.rank = rank;
    pair.transposed = is_embedding || settings.fan_in_fan_out;
    const double alpha = settings.alpha_of(module);
    pair.scale = static_cast<float>(settings.rslora ? alpha / std::sqrt(static_cast<double>(rank))
                                                    : alpha / static_cast<double>(rank));
    const std::string target = base_name_of(*base_, module + ".weight", file, a->name);
    const TensorInfo& t = *base_->find(target);
    const std::vector<int64_t> delta = pair.transposed ? std::vector<int64_t>{a->shape[1], b->shape[0]}
                                                       : std::vector<int64_t>{b->shape[0], a->shape[1]};
    if (t.shape != delta)
      fail(file, "module '" + module + "': " + a_name + " " + shape_string(a->shape) + " and " + b_name + " " +
                     shape_string(b->shape) + " make a " + shape_string(delta) + " delta" +
                     (pair.transposed ? " (transposed)" : "") + ", the base's '" + target + "' is " +
                     shape_string(t.shape));
    if (!pairs_.emplace(target, pair).second)
      fail(file, "two modules' factors target the base's '" + target + "' (one is '" + module + "')");
  }
}

void PeftAdapterCheckpoint::read_into(const std::string& name, int64_t first, int64_t count, float* out) const {
  const auto whole = whole_.find(name);
  if (whole != whole_.end()) {
    weights_.read_into(whole->second, first, count, out);
  } else {
    base_->read_into(name, first, count, out);
  }
  const auto pair = pairs_.find(name);
  if (pair != pairs_.end()) add_delta(pair->second, base_->find(name)->shape[1], first, count, out);
  if (whole != whole_.end() || pair != pairs_.end()) round_to(base_->find(name)->dtype, out, static_cast<size_t>(count));
}

void PeftAdapterCheckpoint::add_delta(const LoraPair& pair, int64_t columns, int64_t first, int64_t count,
                                      float* out) const {
  if (count <= 0) return;
  const int64_t r = pair.rank, row0 = first / columns, rows = (first + count - 1) / columns + 1 - row0;
  const auto at = [](int64_t i) { return static_cast<size_t>(i); };
  std::vector<float> p(at(rows * r)), q(at(r * columns));
  if (!pair.transposed) {
    weights_.read_into(pair.b, row0 * r, rows * r, p.data());  // B [rows, r]
    weights_.read_into(pair.a, 0, r * columns, q.data());      // A [r, columns]
  } else {
    const int64_t all_rows = weights_.find(pair.a)->shape[1];
    std::vector<float> run(at(rows));
    for (int64_t k = 0; k < r; ++k) {  // A [r, all rows]: P's column k is row k of A, from row0 on
      weights_.read_into(pair.a, k * all_rows + row0, rows, run.data());
      for (int64_t i = 0; i < rows; ++i) p[at(i * r + k)] = run[at(i)];
    }
    std::vector<float> b(at(columns * r));
    weights_.read_into(pair.b, 0, columns * r, b.data());  // B [columns, r]
    for (int64_t j = 0; j < columns; ++j)
      for (int64_t k = 0; k < r; ++k) q[at(k * columns + j)] = b[at(j * r + k)];
  }
  std::vector<float> sum(at(columns));
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t row = row0 + i;
    const int64_t begin = std::max(first, row * columns) - row * columns;
    const int64_t end = std::min(first + count, (row + 1) * columns) - row * columns;
    std::fill(sum.begin() + begin, sum.begin() + end, 0.0f);
    for (int64_t k = 0; k < r; ++k) {
      const float pk = p[at(i * r + k)];
      const float* qk = q.data() + k * columns;
      for (int64_t j = begin; j < end; ++j) sum[at(j)] += pk * qk[j];
    }
    float* dst = out + (row * columns - first);
    for (int64_t j = begin; j < end; ++j) dst[j] += pair.scale * sum[at(j)];
  }
}

std::vector<std::string> PeftAdapterCheckpoint::adapter_tensors_of(const std::string& name) const {
  std::vector<std::string> names;
  if (const auto w = whole_.find(name); w != whole_.end()) names.push_back(w->second);
  if (const auto p = pairs_.find(name); p != pairs_.end()) {
    names.push_back(p->second.a);
    names.push_back(p->second.b);
  }
  return names;
}

void PeftAdapterCheckpoint::will_need(const std::string& name) const {
  base_->will_need(name);
  for (const std::string& t : adapter_tensors_of(name)) weights_.will_need(t);
}

void PeftAdapterCheckpoint::release(const std::string& name) const {
  base_->release(name);
  for (const std::string& t : adapter_tensors_of(name)) weights_.release(t);
}

std::string PeftAdapterCheckpoint::file_of(const std::string& name) const {
  return adapter_tensors_of(name).empty() ? base_->file_of(name) : weights_.path();
}

}  // namespace

bool is_peft_adapter(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / kConfigFile, ec);
}

std::unique_ptr<Checkpoint> open_peft_adapter(const std::string& dir, std::shared_ptr<const Checkpoint> base) {
  CM_ASSERT(base != nullptr);
  return std::make_unique<PeftAdapterCheckpoint>(dir, std::move(base));
}

}  // namespace cm
