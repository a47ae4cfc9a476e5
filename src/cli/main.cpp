// catmerge command line: `run`, `inspect`, `version`. Every error is one line on stderr and exit code 1.
#include <iostream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "job/config.hpp"
#include "job/inspect.hpp"
#include "job/merge_job.hpp"

namespace {

const char* const kUsage =
    "usage: catmerge run CONFIG.yaml [--set key=value ...]   merge the experts the configuration names\n"
    "       catmerge inspect PATH                            list tensors, dtypes, shapes and roles\n"
    "       catmerge version\n";

int run(const std::vector<std::string>& args) {
  if (args.empty()) throw cm::Error("run: missing CONFIG.yaml (catmerge run CONFIG.yaml [--set key=value ...])");
  std::vector<std::string> sets;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--set" && i + 1 < args.size()) {
      sets.push_back(args[++i]);
    } else if (args[i].rfind("--set=", 0) == 0) {
      sets.push_back(args[i].substr(6));
    } else {
      throw cm::Error("run: unexpected argument '" + args[i] + "'");
    }
  }
  const cm::JobConfig cfg = cm::load_config(args[0], sets);
  const cm::MergeTimings t = cm::run_merge(cfg);
  std::cout << "catmerge: wrote " << cfg.output_path << " (" << cfg.method << ", " << cfg.experts.size()
            << " experts) in " << t.total << " s [open " << t.open << ", features " << t.features << ", prepare "
            << t.prepare << ", merge+write " << t.merge_write << "]\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + (argc > 1 ? 2 : 1), argv + argc);
  const std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "run") return run(args);
    if (command == "inspect" && args.size() == 1) {
      cm::inspect_checkpoint(args[0], std::cout);
      return 0;
    }
    if (command == "version") {
      std::cout << "catmerge " << CATMERGE_VERSION << "\n";
      return 0;
    }
    if (command == "help" || command == "--help" || command == "-h") {
      std::cout << kUsage;
      return 0;
    }
    std::cerr << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "catmerge: error: " << e.what() << "\n";
  }
  return 1;
}
