// Method names and construction (METHODS.md lists the methods in this order).
#include "common/error.hpp"
#include "methods/method_common.hpp"

namespace cm {

namespace {

using Factory = std::unique_ptr<Method> (*)(Params&, const MergeContext&);

struct Entry {
  const char* name;
  Factory make;
};

const Entry kMethods[] = {
    {"weight_average", make_weight_average}, {"task_arithmetic", make_task_arithmetic},
    {"ties", make_ties},                     {"dare", make_dare},
    {"pcb", make_pcb},                       {"regmean", make_regmean},
    {"fisher", make_fisher},                 {"cat", make_cat},
};

}  // namespace

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Entry& e : kMethods) n.push_back(e.name);
    return n;
  }();
  return names;
}

bool default_scaled_features(const std::string& name, const std::map<std::string, std::string>& params,
                             const std::string& where) {
  if (name != "cat") return false;
  Params p(params, where);
  return read_cat_variant(p) == CatVariant::Released;
}

std::unique_ptr<Method> make_method(const std::string& name, Params& params, const MergeContext& ctx) {
  CM_ASSERT(ctx.num_tasks >= 1);
  for (const Entry& e : kMethods) {
    if (name != e.name) continue;
    std::unique_ptr<Method> method = e.make(params, ctx);
    params.finish();
    return method;
  }
  std::string list;
  for (const std::string& n : method_names()) list += (list.empty() ? "" : ", ") + n;
  fail(params.where() + ".name", "unknown method '" + name + "' (one of " + list + ")");
}

}  // namespace cm
