#include "job/export.hpp"

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include "comm/communicator.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "job/config.hpp"
#include "job/hf_output.hpp"

namespace cm {

namespace {

struct ExportArgs {
  std::string model, out, base;
  uint64_t shard_size = JobConfig{}.shard_size;
  std::optional<DType> dtype;
};

ExportArgs parse_export_args(const std::vector<std::string>& args) {
  ExportArgs a;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    const bool has_value = i + 1 < args.size();
    if (s == "--base" && has_value) {
      a.base = args[++i];
    } else if (s == "--shard-size" && has_value) {
      a.shard_size = parse_byte_size(args[++i], "export: --shard-size");
    } else if (s == "--dtype" && has_value) {
      const std::string d = args[++i];
      if (d != "base") {
        a.dtype = parse_user_dtype(d);
        if (!a.dtype) throw Error("export: --dtype expects base, f32, f16 or bf16, got '" + d + "'");
      }
    } else if (s.rfind("--", 0) != 0 && positional.size() < 2) {
      positional.push_back(s);
    } else {
      throw Error("export: unexpected argument '" + s + "'");
    }
  }
  if (positional.size() != 2) throw Error("export: expected MERGED.h5 OUT_DIR");
  a.model = positional[0];
  a.out = positional[1];
  return a;
}

}  // namespace

int export_command(const std::vector<std::string>& args) {
  const auto start = std::chrono::steady_clock::now();
  const ExportArgs a = parse_export_args(args);
  const std::unique_ptr<Checkpoint> model = open_checkpoint(a.model);
  const std::unique_ptr<Checkpoint> base = a.base.empty() ? nullptr : open_checkpoint(a.base);
  std::vector<TensorInfo> merged;
  for (TensorInfo t : model->tensors()) {
    if (base) {
      const TensorInfo* b = base->find(t.name);
      if (!b) fail(a.base, "has no tensor '" + t.name + "' of " + a.model + ": not the base of that merge");
      if (b->shape != t.shape)
        fail(a.base, "tensor '" + t.name + "' has shape " + shape_string(b->shape) + " but " + shape_string(t.shape) +
                         " in " + a.model);
    }
    t.dtype = a.dtype.value_or(t.dtype);
    merged.push_back(t);
  }
  if (merged.empty()) fail(a.model, "holds no float32, float16 or bfloat16 tensor to export");
  std::map<std::string, std::string> made = model->metadata();
  const auto recorded = [&](const char* key) { return made.count(key) ? made[key] : std::string("unknown"); };
  SoloCommunicator solo;
  HfOutput out(a.out, output_tensors(merged, std::vector<int>(merged.size(), 0), base.get(), a.dtype), a.shard_size,
               output_metadata(recorded("catmerge_version"), recorded("arch"), recorded("method"),
                               recorded("hyperparameters")),
               solo);
  out.copy_tensors(*model, 0, out.tensors().merged);
  if (base) out.copy_tensors(*base, out.tensors().merged, out.tensors().stored.size());
  out.commit(base_files(a.base, base.get(), model->config_json()), {{"exported_from", a.model}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("catmerge: wrote %s (%zu tensors of %s, %zu from the base) in %.3g s\n", a.out.c_str(),
              out.tensors().merged, a.model.c_str(), out.tensors().stored.size() - out.tensors().merged, seconds);
  return 0;
}

}  // namespace cm
