#include "job/eval.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

#include "arch/registry.hpp"
#include "backend/backend.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"
#include "io/peft_adapter.hpp"
#include "job/eval_config.hpp"
#include "job/eval_score.hpp"
#include "job/eval_table.hpp"

namespace cm {

namespace {

// Default output prefix: next to the model, "<model without .h5 or trailing slash>.eval-<split>".
std::string default_prefix(const std::string& model, const std::string& split) {
  std::string p = model;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const std::filesystem::path path(p);
  if (path.extension() == ".h5" || path.extension() == ".safetensors") p = (path.parent_path() / path.stem()).string();
  return p + ".eval-" + split;
}

}  // namespace

int eval_command(const std::vector<std::string>& args, Communicator& comm) {
  const std::string usage =
      "eval: usage: catmerge eval CONFIG.yaml --model PATH [--split test|val] [--task NAME ...] [--out PREFIX] "
      "[--set key=value ...]";
  if (args.empty() || args[0].rfind("--", 0) == 0) throw Error(usage);
  std::string model_path, split = "test", prefix;
  std::vector<std::string> only, sets;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
      if (i + 1 >= args.size()) throw Error("eval: " + flag + " needs a value");
      return args[++i];
    };
    auto is = [&](const std::string& flag) { return a == flag || a.rfind(flag + "=", 0) == 0; };
    if (is("--model")) {
      model_path = value("--model");
    } else if (is("--split")) {
      split = value("--split");
    } else if (is("--task")) {
      only.push_back(value("--task"));
    } else if (is("--out")) {
      prefix = value("--out");
    } else if (is("--set")) {
      sets.push_back(value("--set"));
    } else {
      throw Error("eval: unexpected argument '" + a + "'\n" + usage);
    }
  }
  if (model_path.empty())
    throw Error("eval: --model PATH is required (a merged .h5, an HF directory, .safetensors or a PEFT adapter)");
  if (split != "test" && split != "val") throw Error("eval: --split must be test or val, got '" + split + "'");
  const EvalConfig cfg = load_eval_config(args[0], sets);
  std::vector<std::string> tasks = cfg.tasks;
  if (!only.empty()) {
    for (const auto& t : only)
      if (std::find(cfg.tasks.begin(), cfg.tasks.end(), t) == cfg.tasks.end())
        throw Error("eval: --task '" + t + "' is not a task of " + cfg.source);
    tasks = only;
  }
  if (prefix.empty()) prefix = default_prefix(model_path, split);

  const auto start = std::chrono::steady_clock::now();
  // A PEFT adapter is scored as the expert it makes from the configuration's base.
  std::shared_ptr<const Checkpoint> base;
  if (is_peft_adapter(model_path)) {
    if (cfg.base.empty()) fail(cfg.source, "model.base: missing (--model " + model_path + " is a PEFT adapter of it)");
    base = open_checkpoint(cfg.base);
  }
  const std::unique_ptr<Checkpoint> model = open_expert_checkpoint(model_path, base);
  const std::unique_ptr<Backend> backend = make_backend(cfg.backend, cfg.threads, cfg.source + ": runtime.backend");
  EvalScorer scorer(cfg, describe_model(cfg.arch, *model), *backend, tasks, split, comm.rank(), comm.size());
  const auto scoring = std::chrono::steady_clock::now();
  EvalReport report;
  report.tasks = score_model(scorer, checkpoint_weights(*model), comm);
  const auto end = std::chrono::steady_clock::now();
  double flops = scorer.flops();
  comm.sum(&flops, 1);
  if (comm.rank() != 0) return 0;

  report.model = model_path;
  report.config = cfg.source;
  report.split = split;
  report.backend = backend->name();
  report.ranks = comm.size();
  report.seconds = std::chrono::duration<double>(end - start).count();
  report.gflop_per_s = flops / std::chrono::duration<double>(end - scoring).count() * 1e-9;
  std::cout << eval_table(report) << std::flush;
  write_eval_files(report, prefix);
  std::cout << "catmerge eval: wrote " << prefix << ".csv and " << prefix << ".json\n";
  return 0;
}

}  // namespace cm
