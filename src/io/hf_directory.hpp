#pragma once
// The files of a HuggingFace model directory around its safetensors shards (README "Output format"): the
// shard index, config.json with the output's dtype, and every other file of the base directory (tokenizer,
// generation and preprocessor configs, chat templates), copied unchanged. The directory is built under a
// temporary name beside the final one and renamed only when complete.
#include <map>
#include <string>

#include "common/dtype.hpp"
#include "io/safetensors_writer.hpp"

namespace cm {

// "<final>.tmp-<id>": the directory a job builds, in the final one's folder (so the rename stays in one
// filesystem). `id` is the same on every rank of the job.
std::string hf_temp_dir(const std::string& final_dir, uint64_t id);

// Refuses, before anything is written, a final path that exists and is neither an empty directory nor an
// earlier catmerge output (whose index records catmerge_version): the commit replaces only those.
void check_hf_output_path(const std::string& final_dir);

// Whether a base directory's file is weights (not copied): safetensors, PyTorch, TensorFlow, Flax, GGUF or ONNX
// files and their shard indexes.
bool is_weight_file(const std::string& name);

// Copies every regular file (symbolic links followed, as a HuggingFace cache snapshot has them) under `base_dir`
// to the same relative path under `out_dir`, except weights, hidden entries, the top-level config.json
// (written by write_hf_config), `out_dir` itself and earlier catmerge outputs, where they lie inside the base.
void copy_base_files(const std::string& base_dir, const std::string& out_dir);

// `config_text` (the base's config.json) with torch_dtype, and dtype where it has that key, set to the output's
// ("float32", "float16", "bfloat16"), at the top and in every sub-config that names one, written to
// out_dir/config.json. An open_clip configuration (it has model_cfg) is not HuggingFace's: it goes unchanged
// to out_dir/open_clip_config.json. `source` names the config for errors.
void write_hf_config(const std::string& config_text, DType dtype, const std::string& source,
                     const std::string& out_dir);

// out_dir/model.safetensors.index.json: metadata (total_size and `metadata`) and the weight map, by tensor name.
void write_hf_index(const ShardLayout& layout, const std::vector<StoredTensor>& tensors,
                    const std::map<std::string, std::string>& metadata, const std::string& out_dir);

// Renames the finished `temp_dir` to `final_dir`, replacing an earlier output there (check_hf_output_path).
void commit_hf_directory(const std::string& temp_dir, const std::string& final_dir);

// Removes a directory and everything in it; quietly does nothing if it is absent.
void remove_directory(const std::string& dir);

}  // namespace cm
