#include "io/shape_checkpoint.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.hpp"

namespace cm {

namespace {

using json = nlohmann::json;

class ShapeCheckpoint final : public Checkpoint {
 public:
  ShapeCheckpoint(std::string path, std::vector<TensorInfo> tensors, std::string config)
      : path_(std::move(path)), tensors_(std::move(tensors)), config_(std::move(config)) {}
  const std::string& path() const override { return path_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const TensorInfo* find(const std::string& name) const override {
    for (const auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  void read_into(const std::string& name, int64_t, int64_t, float*) const override {
    fail(path_, "a shape file holds no weights: tensor '" + name + "' cannot be read");
  }
  std::string file_of(const std::string&) const override { return path_; }
  std::vector<std::string> files() const override { return {path_}; }
  const std::string& config_json() const override { return config_; }

 private:
  std::string path_;
  std::vector<TensorInfo> tensors_;
  std::string config_;
};

json parse(const std::string& path) {
  std::ifstream in(path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(path, std::string("not valid JSON: ") + e.what());
  }
}

}  // namespace

bool is_shape_file(const std::string& path) {
  if (std::filesystem::path(path).extension() != ".json") return false;
  std::ifstream in(path);
  char head[256] = {};
  in.read(head, sizeof head - 1);
  return std::string(head).find("\"catmerge_shapes\"") != std::string::npos;
}

std::unique_ptr<Checkpoint> open_shape_file(const std::string& path) {
  const json j = parse(path);
  if (!j.is_object() || !j.contains("tensors") || !j["tensors"].is_array())
    fail(path, "a shape file needs a 'tensors' list");
  std::vector<TensorInfo> tensors;
  for (const auto& t : j["tensors"]) {
    TensorInfo info;
    try {
      info.name = t.at("name").get<std::string>();
      const auto dtype = parse_dtype(t.at("dtype").get<std::string>());
      if (!dtype) fail(path, "tensor '" + info.name + "': dtype must be F32, F16 or BF16");
      info.dtype = *dtype;
      info.shape = t.at("shape").get<std::vector<int64_t>>();
    } catch (const json::exception& e) {
      fail(path, "bad tensor entry " + t.dump() + ": " + e.what());
    }
    for (int64_t d : info.shape)
      if (d < 0) fail(path, "tensor '" + info.name + "' has a negative dimension");
    tensors.push_back(std::move(info));
  }
  return std::make_unique<ShapeCheckpoint>(path, std::move(tensors), j.contains("config") ? j["config"].dump() : "");
}

}  // namespace cm
