// vit_l_merge: a ViT-L/14-shaped CAT merge (24 blocks, width 1024, MLP 4096) of 8 experts with random weights
// and 2 random exemplar images (257 tokens) per task, timed phase by phase on each backend:
//   generate    making the random weights (what reading checkpoints costs in a real run; not the backend's)
//   features    forward passes of every task's exemplars, with the feature Gram matrices
//   Gram        forming CAT's G_k (units the dense solver takes)
//   bases       eigendecompositions and block solves
//   projection  projecting the task vectors off the bases
//   merge       the rest of the merge: norm and shift masks, task arithmetic (CPU code on every backend)
//   write       the HDF5 output
// The CPU row can cover the first --cpu-blocks blocks only (the model cut there); the table says so, and the
// merged tensors both runs share are compared.
//   vit_l_merge [--blocks 24] [--cpu-blocks 2] [--experts 8] [--backends cpu,cuda] [--lambda 5] [--c 3] [--dir /tmp]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "backend/backend.hpp"
#include "comm/reducer.hpp"
#include "common/error.hpp"
#include "features/clip_forward.hpp"
#include "features/feature_store.hpp"
#include "io/hdf5_writer.hpp"
#include "methods/linalg.hpp"
#include "methods/method.hpp"
#include "random_checkpoint.hpp"

namespace cm::bench {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Options {
  int blocks = 24, cpu_blocks = 2, experts = 8;
  std::vector<std::string> backends = {"cpu", "cuda"};
  std::string lambda = "5", c = "3", dir = std::filesystem::temp_directory_path().string();
};

struct Phases {
  double generate = 0, features = 0, gram = 0, bases = 0, project = 0, merge = 0, write = 0, total = 0;
};

using Tensors = std::map<std::string, std::vector<float>>;

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) fail(a, "needs a value");
    const std::string v = argv[++i];
    if (a == "--blocks")
      o.blocks = std::stoi(v);
    else if (a == "--cpu-blocks")
      o.cpu_blocks = std::stoi(v);
    else if (a == "--experts")
      o.experts = std::stoi(v);
    else if (a == "--lambda")
      o.lambda = v;
    else if (a == "--c")
      o.c = v;
    else if (a == "--dir")
      o.dir = v;
    else if (a == "--backends") {
      o.backends.clear();
      std::stringstream ss(v);
      for (std::string b; std::getline(ss, b, ',');) o.backends.push_back(b);
    } else {
      fail(a, "unknown option (--blocks, --cpu-blocks, --experts, --backends, --lambda, --c, --dir)");
    }
  }
  return o;
}

// One backend's merge of a model cut to `blocks` blocks. Tensors of stages <= keep_stage are stored in kept.
Phases run(const std::string& backend_name, const Options& o, int blocks, int keep_stage, Tensors* kept) {
  const auto start = Clock::now();
  Phases t;
  VitShape shape;
  shape.layers = blocks;
  const RandomCheckpoint base(shape, 0);
  std::vector<std::unique_ptr<RandomCheckpoint>> experts;
  for (int k = 1; k <= o.experts; ++k) experts.push_back(std::make_unique<RandomCheckpoint>(shape, k));
  const auto read = [&](const Checkpoint& ck, const std::string& name) {
    const auto t0 = Clock::now();
    std::vector<float> v = ck.read(name);
    t.generate += since(t0);
    return v;
  };
  const ClipVisionConfig cfg = clip_vit_config(base);
  const ModelSpec spec = clip_vit_model(base, cfg);
  const std::unique_ptr<Backend> backend = make_backend(backend_name, 0, "bench: --backends");

  auto phase = Clock::now();
  std::vector<FeatureStore> features;
  ClipForward forward(cfg, *backend);
  for (int k = 0; k < o.experts; ++k) {
    features.emplace_back(std::vector<std::string>{});
    std::vector<float> pixels(static_cast<size_t>(2 * 3 * shape.image * shape.image));
    fill_uniform(pixels, 1000 + static_cast<uint64_t>(k));
    forward.run([&](const std::string& name) { return read(*experts[k], name); }, pixels.data(), 2, &features[k]);
  }
  t.features = since(phase) - t.generate;
  std::fprintf(stderr, "  [%s] features: %.1f s (%.0f s in)\n", backend_name.c_str(), t.features, since(start));

  ConflictStats steps;
  LocalReducer reducer;
  MergeContext ctx;
  ctx.model = &spec;
  ctx.num_tasks = o.experts;
  ctx.features = &features;
  ctx.reducer = &reducer;
  ctx.linalg = &backend->linalg();
  ctx.cat_stats = &steps;
  Params params({{"lambda", o.lambda}, {"c", o.c}}, "bench: method");
  const std::unique_ptr<Method> method = make_method("cat", params, ctx);
  const std::string path = o.dir + "/vit_l_merge-" + backend_name + ".h5";
  double merging = 0;
  {
    Hdf5Writer out(path);
    for (const TensorSpec& ts : spec.tensors) {
      const std::vector<float> b = read(base, ts.name);
      TaskVectors tasks;
      for (const auto& e : experts) {
        tasks.push_back(read(*e, ts.name));
        for (size_t i = 0; i < b.size(); ++i) tasks.back()[i] -= b[i];
      }
      std::vector<float> merged(b.size());
      for (const MergeUnit& u : units_of(ts)) {
        const auto first = static_cast<size_t>(u.offset), last = first + static_cast<size_t>(u.numel());
        const std::vector<float> ub(b.begin() + first, b.begin() + last);
        TaskVectors ut;
        for (const auto& tk : tasks) ut.emplace_back(tk.begin() + first, tk.begin() + last);
        phase = Clock::now();
        const std::vector<float> m = method->merge(u, ub, ut);
        merging += since(phase);
        std::copy(m.begin(), m.end(), merged.begin() + first);
      }
      phase = Clock::now();
      out.write_tensor(ts.name, DType::F32, ts.shape, merged.data());
      t.write += since(phase);
      if (ts.stage <= keep_stage) (*kept)[ts.name] = std::move(merged);
      // Progress after each stage, so that a run stopped by a time limit still tells its pace.
      if (&ts == &spec.tensors.back() || (&ts + 1)->stage != ts.stage)
        std::fprintf(stderr, "  [%s] stage %d/%d merged: Gram %.1f s, bases %.1f s, projection %.1f s (%.0f s in)\n",
                     backend_name.c_str(), ts.stage, spec.num_stages - 1, steps.products, steps.bases, steps.project,
                     since(start));
    }
    phase = Clock::now();
    out.commit();
    t.write += since(phase);
  }
  std::filesystem::remove(path);
  t.gram = steps.products;
  t.bases = steps.bases;
  t.project = steps.project;
  t.merge = merging - steps.products - steps.bases - steps.project;
  t.total = since(start);
  return t;
}

// Largest max|a - b| / max|b| over the tensors both hold, and the tensor where it is.
std::pair<double, std::string> compare(const Tensors& a, const Tensors& b) {
  std::pair<double, std::string> worst{0.0, ""};
  for (const auto& [name, want] : b) {
    const auto it = a.find(name);
    if (it == a.end()) continue;
    double scale = 0, err = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
      err = std::max(err, std::fabs(static_cast<double>(it->second[i]) - want[i]));
    }
    if (err / std::max(scale, 1e-30) >= worst.first) worst = {err / std::max(scale, 1e-30), name};
  }
  return worst;
}

int main_(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they finish, between the progress lines
  const Options o = parse(argc, argv);
  std::printf(
      "ViT-L/14-shaped CAT merge: %d blocks, width 1024, MLP 4096, %d experts, 2 exemplars x 257 tokens, "
      "lambda %s, c %s\n",
      o.blocks, o.experts, o.lambda.c_str(), o.c.c_str());
  std::printf("removal bases: direct eigensolve up to order %lld, shift-invert above\n\n",
              static_cast<long long>(TopEigenOptions{}.dense_max));
  std::printf("%-8s %-7s %9s %9s %9s %9s %11s %9s %9s %9s   (seconds)\n", "backend", "blocks", "generate", "features",
              "Gram", "bases", "projection", "merge", "write", "total");
  std::vector<Tensors> kept;
  for (const std::string& b : o.backends) {
    const int blocks = b == "cpu" ? std::min(o.cpu_blocks, o.blocks) : o.blocks;
    const int keep_stage = std::min(o.cpu_blocks, o.blocks);  // embeddings and the blocks every run has
    try {
      kept.emplace_back();
      const Phases t = run(b, o, blocks, keep_stage, &kept.back());
      std::printf("%-8s %3d/%-3d %9.2f %9.2f %9.2f %9.2f %11.2f %9.2f %9.2f %9.2f%s\n", b.c_str(), blocks, o.blocks,
                  t.generate, t.features, t.gram, t.bases, t.project, t.merge, t.write, t.total,
                  blocks < o.blocks ? "   (model cut to these blocks)" : "");
    } catch (const Error& e) {
      kept.pop_back();
      std::printf("%-8s skipped: %s\n", b.c_str(), e.what());
    }
  }
  if (kept.size() == 2) {
    const auto [diff, name] = compare(kept[1], kept[0]);
    std::printf("\n%s vs %s over the embeddings and blocks 0-%d: max relative difference %.3g (%s)\n",
                o.backends[1].c_str(), o.backends[0].c_str(), std::min(o.cpu_blocks, o.blocks) - 1, diff, name.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace cm::bench

int main(int argc, char** argv) {
  try {
    return cm::bench::main_(argc, argv);
  } catch (const cm::Error& e) {
    std::fprintf(stderr, "vit_l_merge: error: %s\n", e.what());
    return 1;
  }
}
