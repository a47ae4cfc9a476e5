#include "io/hf_directory.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

const char* const kIndexFile = "model.safetensors.index.json";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) fail(path.string(), "cannot write");
}

// What an index records of the run that wrote it: catmerge_version marks an output the next run may replace.
bool is_catmerge_output(const fs::path& dir) {
  std::ifstream in(dir / kIndexFile, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json index = nlohmann::json::parse(text.str(), nullptr, false);
  return index.is_object() && index.contains("metadata") && index["metadata"].is_object() &&
         index["metadata"].contains("catmerge_version");
}

// "out/merged/" names the directory "out/merged": what the temporary and the renamed directory sit beside.
std::string without_trailing_slash(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace

std::string hf_temp_dir(const std::string& final_dir, uint64_t id) {
  return without_trailing_slash(final_dir) + ".tmp-" + std::to_string(id);
}

void check_hf_output_path(const std::string& final_dir) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(final_dir, ec);
  if (!fs::exists(st)) return;
  if (!fs::is_directory(st))
    fail(final_dir, "output.path exists and is not a directory; a safetensors output is a directory");
  if (fs::is_empty(final_dir, ec) || is_catmerge_output(final_dir)) return;
  fail(final_dir, "output.path is a directory that is not an earlier catmerge output; remove it or choose another path");
}

bool is_weight_file(const std::string& name) {
  std::string stem = name;
  if (ends_with(stem, ".index.json")) stem.resize(stem.size() - std::strlen(".index.json"));
  for (const char* ext : {".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx"})
    if (ends_with(stem, ext)) return true;
  return false;
}

void copy_base_files(const std::string& base_dir, const std::string& out_dir) {
  std::error_code ec;
  const auto hidden = [](const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; };
  fs::recursive_directory_iterator it(base_dir, fs::directory_options::follow_directory_symlink, ec);
  if (ec) fail(base_dir, "cannot list the base directory: " + ec.message());
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) fail(base_dir, "cannot list the base directory: " + ec.message());
    const fs::path& from = it->path();
    const fs::path rel = from.lexically_relative(base_dir);  // not fs::relative, which resolves symbolic links
    const bool dir = fs::is_directory(from, ec);
    // An output written inside the base directory (this one, or an earlier one) is not part of the base.
    if (hidden(from) || (dir && (fs::equivalent(from, out_dir, ec) || is_catmerge_output(from)))) {
      if (dir) it.disable_recursion_pending();
      continue;
    }
    if (!fs::is_regular_file(from, ec) || is_weight_file(from.filename().string()) || rel == "config.json") continue;
    const fs::path to = fs::path(out_dir) / rel;
    fs::create_directories(to.parent_path(), ec);
    if (!fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec))
      fail(to.string(), "cannot copy " + from.string() + ": " + ec.message());
  }
}

void write_hf_config(const std::string& config_text, DType dtype, const std::string& source,
                     const std::string& out_dir) {
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(config_text, nullptr, false);
  if (!config.is_object()) fail(source, "not a JSON object");
  if (config.contains("model_cfg")) return write_text(fs::path(out_dir) / "open_clip_config.json", config_text);
  const char* name = torch_dtype_name(dtype);
  config["torch_dtype"] = name;
  if (config.contains("dtype")) config["dtype"] = name;
  for (auto& [key, sub] : config.items()) {
    if (!sub.is_object()) continue;
    for (const char* k : {"torch_dtype", "dtype"})
      if (sub.contains(k)) sub[k] = name;
  }
  write_text(fs::path(out_dir) / "config.json", config.dump(2) + "\n");
}

void write_hf_index(const ShardLayout& layout, const std::vector<StoredTensor>& tensors,
                    const std::map<std::string, std::string>& metadata, const std::string& out_dir) {
  nlohmann::ordered_json meta = {{"total_size", layout.total_bytes}};
  for (const auto& [k, v] : metadata) meta[k] = v;
  std::map<std::string, std::string> weight_map;
  for (const ShardLayout::Shard& s : layout.shards)
    for (size_t t : s.tensors) weight_map[tensors[t].name] = s.file;
  const nlohmann::ordered_json index = {{"metadata", meta}, {"weight_map", weight_map}};
  write_text(fs::path(out_dir) / kIndexFile, index.dump(2) + "\n");
}

void commit_hf_directory(const std::string& temp_dir, const std::string& final_dir) {
  std::error_code ec;
  const fs::path final_path = without_trailing_slash(final_dir);
  if (!fs::exists(fs::symlink_status(final_path, ec))) {
    fs::rename(temp_dir, final_path, ec);
    if (ec) fail(final_dir, "cannot rename " + temp_dir + " to it: " + ec.message());
    return;
  }
  check_hf_output_path(final_dir);
  const std::string old = final_path.string() + ".old-" + std::to_string(getpid());
  fs::rename(final_path, old, ec);
  if (ec) fail(final_dir, "cannot move the earlier output aside: " + ec.message());
  fs::rename(temp_dir, final_path, ec);
  if (ec) {
    std::error_code back;
    fs::rename(old, final_path, back);
    fail(final_dir, "cannot rename " + temp_dir + " to it: " + ec.message());
  }
  remove_directory(old);
}

void remove_directory(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace cm
