#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "io/hdf5_checkpoint.hpp"
#include "io/peft_adapter.hpp"
#include "io/safetensors.hpp"
#include "io/shape_checkpoint.hpp"
#include "io/text_file.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

// config.json, else open_clip_config.json, in `dir`; "" when neither exists.
std::string find_config(const fs::path& dir) {
  for (const char* name : {"config.json", "open_clip_config.json"})
    if (fs::is_regular_file(dir / name)) return (dir / name).string();
  return "";
}

// Tensors spread over safetensors files: one file, or the shards of an index.
class SafetensorsCheckpoint final : public Checkpoint {
 public:
  SafetensorsCheckpoint(std::string path, std::string config_file, std::string index_file)
      : path_(std::move(path)), config_file_(std::move(config_file)), index_file_(std::move(index_file)) {
    if (!config_file_.empty()) config_ = read_text_file(config_file_);
  }

  // Opens one more file and appends its tensors in data order; a tensor may live in one file only.
  const SafetensorsFile& add(const std::string& file);

  const std::string& path() const override { return path_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const TensorInfo* find(const std::string& name) const override;
  void read_into(const std::string& name, int64_t first, int64_t count, float* out) const override {
    shard(name).read_into(name, first, count, out);
  }
  const std::vector<OtherTensorInfo>& other_tensors() const override { return others_; }
  void read_stored(const std::string& name, uint64_t offset, uint64_t n, void* out) const override {
    shard(name).read_stored(name, offset, n, out);
  }
  void will_need(const std::string& name) const override { shard(name).will_need(name); }
  void release(const std::string& name) const override { shard(name).release(name); }
  std::vector<const SafetensorsFile*> shards() const override;
  std::string file_of(const std::string& name) const override;
  std::vector<std::string> files() const override;
  const std::string& config_json() const override { return config_; }
  std::map<std::string, std::string> metadata() const override {
    return shards_.empty() ? std::map<std::string, std::string>{} : shards_.front()->metadata();
  }

 private:
  const SafetensorsFile& shard(const std::string& name) const;  // cm::Error naming path_ if absent

  std::string path_, config_file_, index_file_, config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<TensorInfo> tensors_;
  std::vector<OtherTensorInfo> others_;
  std::unordered_map<std::string, size_t> shard_of_;  // every listed tensor, float or not
  std::unordered_map<std::string, size_t> float_index_;
};

const SafetensorsFile& SafetensorsCheckpoint::add(const std::string& file) {
  shards_.push_back(std::make_unique<SafetensorsFile>(file));
  const SafetensorsFile& shard = *shards_.back();
  const size_t s = shards_.size() - 1;
  auto claim = [&](const std::string& name) {
    if (!shard_of_.emplace(name, s).second)
      fail(file, "tensor '" + name + "' is also in " + shards_[shard_of_[name]]->path());
  };
  for (const TensorInfo& t : shard.tensors()) {
    claim(t.name);
    float_index_[t.name] = tensors_.size();
    tensors_.push_back(t);
  }
  for (const OtherTensorInfo& t : shard.other_tensors()) {
    claim(t.name);
    others_.push_back(t);
  }
  return shard;
}

const TensorInfo* SafetensorsCheckpoint::find(const std::string& name) const {
  const auto it = float_index_.find(name);
  return it == float_index_.end() ? nullptr : &tensors_[it->second];
}

const SafetensorsFile& SafetensorsCheckpoint::shard(const std::string& name) const {
  const auto it = shard_of_.find(name);
  if (it == shard_of_.end()) fail(path_, "no tensor '" + name + "'");
  return *shards_[it->second];
}

std::vector<const SafetensorsFile*> SafetensorsCheckpoint::shards() const {
  std::vector<const SafetensorsFile*> all;
  for (const auto& s : shards_) all.push_back(s.get());
  return all;
}

std::string SafetensorsCheckpoint::file_of(const std::string& name) const {
  const auto it = shard_of_.find(name);
  return it == shard_of_.end() ? path_ : shards_[it->second]->path();
}

std::vector<std::string> SafetensorsCheckpoint::files() const {
  std::vector<std::string> all;
  for (const std::string* f : {&config_file_, &index_file_})
    if (!f->empty()) all.push_back(*f);
  for (const auto& shard : shards_) all.push_back(shard->path());
  return all;
}

// model.safetensors.index.json: {"weight_map": {tensor: shard file}}. Shards are opened in the order
// they first appear; each must hold exactly the tensors the index assigns to it.
void add_shards(SafetensorsCheckpoint& ck, const fs::path& dir, const std::string& index_file) {
  nlohmann::ordered_json index;
  try {
    index = nlohmann::ordered_json::parse(read_text_file(index_file));
  } catch (const nlohmann::ordered_json::parse_error&) {
    fail(index_file, "not valid JSON");
  }
  const auto map = index.is_object() ? index.find("weight_map") : index.end();
  if (map == index.end() || !map->is_object()) fail(index_file, "no 'weight_map' object");
  std::vector<std::pair<std::string, std::string>> assigned;  // (tensor, shard file) in index order
  std::unordered_map<std::string, std::string> shard_of;
  std::vector<std::string> order;
  for (const auto& [name, shard] : map->items()) {
    if (!shard.is_string()) fail(index_file, "weight_map entry of tensor '" + name + "' is not a string");
    const std::string file = shard.get<std::string>();
    // Shards live beside the index; a path elsewhere is a broken or hostile index.
    if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
      fail(index_file, "weight_map entry of tensor '" + name + "' is not a file name: '" + file + "'");
    if (std::find(order.begin(), order.end(), file) == order.end()) order.push_back(file);
    assigned.emplace_back(name, file);
    shard_of[name] = file;
  }
  for (const std::string& file : order) {
    const std::string shard_path = (dir / file).string();
    if (!fs::exists(shard_path)) fail(shard_path, "shard listed in " + index_file + " does not exist");
    const SafetensorsFile& shard = ck.add(shard_path);
    for (const auto& [name, in_file] : assigned)
      if (in_file == file && !shard.contains(name))
        fail(shard_path, "tensor '" + name + "' listed in " + index_file + " is not in this shard");
    const auto check_assigned = [&](const std::string& name) {
      const auto it = shard_of.find(name);
      if (it == shard_of.end() || it->second != file)
        fail(shard_path, "tensor '" + name + "' is not assigned to this shard by " + index_file);
    };
    for (const TensorInfo& t : shard.tensors()) check_assigned(t.name);
    for (const OtherTensorInfo& t : shard.other_tensors()) check_assigned(t.name);
  }
}

std::unique_ptr<Checkpoint> open_directory(const std::string& path) {
  const fs::path dir(path);
  if (is_peft_adapter(path))
    fail(path, "a PEFT adapter (adapter_config.json) is read against a base model: give it as an expert's path, "
               "or to eval --model with the configuration's model.base");
  const std::string config = find_config(dir);
  const auto exists = [&](const char* name) { return fs::is_regular_file(dir / name); };
  if (exists("model.safetensors") || exists("open_clip_model.safetensors")) {
    const char* name = exists("model.safetensors") ? "model.safetensors" : "open_clip_model.safetensors";
    auto ck = std::make_unique<SafetensorsCheckpoint>(path, config, "");
    ck->add((dir / name).string());
    return ck;
  }
  if (exists("model.safetensors.index.json")) {
    const std::string index = (dir / "model.safetensors.index.json").string();
    auto ck = std::make_unique<SafetensorsCheckpoint>(path, config, index);
    add_shards(*ck, dir, index);
    return ck;
  }
  if (exists("adapter_model.safetensors"))
    fail(path, "has adapter_model.safetensors but no adapter_config.json: a PEFT adapter needs its config");
  fail(path, "directory has no model.safetensors, model.safetensors.index.json or open_clip_model.safetensors");
}

bool has_hdf5_signature(const std::string& path) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  char head[8] = {};
  std::ifstream in(path, std::ios::binary);
  return in.read(head, sizeof head) && std::equal(head, head + 8, kSignature);
}

}  // namespace

std::unique_ptr<Checkpoint> open_checkpoint(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) fail(path, "no such file or directory");
  if (fs::is_directory(st)) return open_directory(path);
  const std::string ext = fs::path(path).extension().string();
  if (fs::is_regular_file(st) && ext == ".safetensors") {
    auto ck = std::make_unique<SafetensorsCheckpoint>(path, find_config(fs::path(path).parent_path()), "");
    ck->add(path);
    return ck;
  }
  if (fs::is_regular_file(st) && (ext == ".h5" || ext == ".hdf5" || has_hdf5_signature(path)))
    return open_hdf5_checkpoint(path);
  if (fs::is_regular_file(st) && is_shape_file(path)) return open_shape_file(path);
  fail(path, "not a safetensors file, HuggingFace model directory, catmerge HDF5 file or shape file");
}

std::unique_ptr<Checkpoint> open_expert_checkpoint(const std::string& path, std::shared_ptr<const Checkpoint> base) {
  if (base && is_peft_adapter(path)) return open_peft_adapter(path, std::move(base));
  return open_checkpoint(path);
}

}  // namespace cm
