#include "job/provenance.hpp"

#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>

#include "io/content_hash.hpp"
#include "io/safetensors.hpp"

namespace cm {
namespace {

struct InputFile {
  std::string role, path, shown;
  const SafetensorsFile* shard = nullptr;  // hashed by leaves across ranks; else whole, on rank 0
};

std::vector<InputFile> input_files(const JobConfig& cfg, const JobInputs& in, bool used_features) {
  std::vector<InputFile> files;
  const auto add = [&](const std::string& role, const Checkpoint& ck) {
    std::unordered_map<std::string, const SafetensorsFile*> shards;
    for (const SafetensorsFile* s : ck.shards()) shards[s->path()] = s;
    for (const std::string& f : ck.files()) {
      const auto it = shards.find(f);
      files.push_back({role, f, f, it == shards.end() ? nullptr : it->second});
    }
  };
  add("base", in.base());
  for (size_t k = 0; k < in.num_experts(); ++k) {
    const ExpertConfig& e = cfg.experts[k];
    add("expert:" + e.name, in.expert(k));
    if (in.has_fisher()) add("fisher:" + e.name, in.fisher(k));
    if (used_features && !e.exemplars_file.empty())
      files.push_back({"exemplars:" + e.name, e.exemplars_file, e.exemplars_file + ":" + e.exemplars_group, nullptr});
  }
  return files;
}

}  // namespace

nlohmann::json describe_inputs(const JobConfig& cfg, const JobInputs& in, const ShardPlan& plan, Communicator& comm,
                               bool used_features) {
  const std::vector<InputFile> files = input_files(cfg, in, used_features);
  std::unordered_map<std::string, int> owner;  // model tensor -> rank
  for (size_t r = 0; r < plan.ranks.size(); ++r)
    for (int t = plan.ranks[r].first_tensor; t < plan.ranks[r].end_tensor; ++t)
      owner[in.model().tensors[t].name] = static_cast<int>(r);

  // Every shard's leaves, laid end to end: 2 words each, this rank's own filled in.
  std::vector<uint64_t> words;
  std::vector<size_t> first_word;
  for (const InputFile& f : files) {
    first_word.push_back(words.size());
    if (!f.shard) continue;
    ChunkDigests& leaves = f.shard->digests();
    const size_t at = words.size();
    words.resize(at + 2 * leaves.chunks(), 0);
    for (uint64_t c = 0; c < leaves.chunks(); ++c) {
      const auto it = owner.find(f.shard->tensor_at(leaves.chunk_end(c) - 1));
      if ((it == owner.end() ? 0 : it->second) != comm.rank()) continue;
      if (!leaves.done(c)) {
        leaves.hash(c, f.shard->bytes());
        f.shard->release_bytes(c * kHashChunkBytes, leaves.chunk_end(c) - c * kHashChunkBytes);
      }
      leaves.words(c, &words[at + 2 * c]);
    }
  }
  comm.sum(words.data(), words.size());
  if (comm.rank() != 0) return nullptr;

  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < files.size(); ++i) {
    const InputFile& f = files[i];
    std::string digest;
    if (f.shard) {
      const auto first = words.begin() + static_cast<std::ptrdiff_t>(first_word[i]);
      digest = content_hash_root(std::vector<uint64_t>(first, first + static_cast<std::ptrdiff_t>(2 * f.shard->digests().chunks())));
    } else {
      digest = content_hash_file(f.path);
    }
    list.push_back({{"role", f.role},
                    {"path", f.shown},
                    {"size", std::filesystem::file_size(f.path)},
                    {kContentHashName, digest}});
  }
  return list;
}

}  // namespace cm
