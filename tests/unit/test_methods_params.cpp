// Hyperparameter parsing (methods/params.hpp) and the per-method checks of make_method.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "method_testing.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using test::error_of;

TEST(ParamsNumber, ParsesStrictly) {
  Params p({{"a", "0.3"}, {"b", "1e-4"}, {"c", "+2"}, {"d", "abc"}, {"e", "0.3x"}, {"f", "nan"}, {"g", ""}}, "m.yaml: method");
  EXPECT_DOUBLE_EQ(p.number("a", 0), 0.3);
  EXPECT_DOUBLE_EQ(p.number("b", 0), 1e-4);
  EXPECT_DOUBLE_EQ(p.number("c", 0), 2.0);
  EXPECT_DOUBLE_EQ(p.number("absent", 0.25), 0.25);
  EXPECT_EQ(error_of([&] { p.number("d", 0); }), "m.yaml: method.d: expected a number, got 'abc'");
  EXPECT_EQ(error_of([&] { p.number("e", 0); }), "m.yaml: method.e: expected a number, got '0.3x'");
  EXPECT_EQ(error_of([&] { p.number("f", 0); }), "m.yaml: method.f: expected a number, got 'nan'");
  EXPECT_EQ(error_of([&] { p.number("g", 0); }), "m.yaml: method.g: expected a number, got ''");
}

TEST(ParamsInteger, RejectsFractions) {
  Params p({{"c", "4"}, {"d", "2.5"}}, "w");
  EXPECT_EQ(p.integer("c", 3), 4);
  EXPECT_EQ(p.integer("x", 3), 3);
  EXPECT_EQ(error_of([&] { p.integer("d", 3); }), "w.d: expected an integer, got '2.5'");
}

TEST(ParamsList, ParsesPerExpertValues) {
  Params p({{"alphas", "[0.2, 0.5,1]"}, {"short", "[0.2]"}, {"bad", "[0.2, x]"}, {"flat", "0.2"}, {"empty", "[]"}}, "w");
  EXPECT_EQ(p.numbers("alphas", 3), (std::vector<double>{0.2, 0.5, 1.0}));
  EXPECT_TRUE(p.numbers("absent", 3).empty());
  EXPECT_EQ(error_of([&] { p.numbers("short", 2); }), "w.short: expected 2 values (one per expert), got 1");
  EXPECT_EQ(error_of([&] { p.numbers("bad", 2); }), "w.bad: expected a number, got 'x'");
  EXPECT_EQ(error_of([&] { p.numbers("flat", 1); }), "w.flat: expected a list like [0.3, 0.5], got '0.2'");
  EXPECT_EQ(error_of([&] { p.numbers("empty", 1); }), "w.empty: expected 1 values (one per expert), got 0");
  EXPECT_EQ(p.used().at("alphas").dump(), "[0.2,0.5,1.0]");
}

TEST(ParamsChoice, ListsTheAllowedValues) {
  Params p({{"scope", "layer"}}, "w");
  EXPECT_EQ(p.choice("combine", {"task_arithmetic", "ties"}), "task_arithmetic");
  EXPECT_EQ(error_of([&] { p.choice("scope", {"model", "tensor"}); }),
            "w.scope: expected one of model, tensor, got 'layer'");
}

TEST(ParamsFinish, NamesTheUnknownKey) {
  MergeContext ctx;
  ctx.num_tasks = 2;
  const std::string e = error_of([&] { testing::make("ties", {{"alpha", "0.5"}, {"densty", "0.3"}}, ctx); });
  EXPECT_EQ(e, "test.yaml: method.densty: unknown hyperparameter for this method (it takes: alpha, density, disjoint, "
               "scope)");
  EXPECT_EQ(error_of([&] { testing::make("weight_average", {{"alpha", "1"}}, ctx); }),
            "test.yaml: method.alpha: unknown hyperparameter for this method (it takes: none)");
}

TEST(ParamsUsed, RecordsDefaultsWithTheirTypes) {
  MergeContext ctx;
  ctx.num_tasks = 2;
  Params p({{"density", "0.5"}}, "w");
  make_method("ties", p, ctx);
  EXPECT_EQ(p.used().dump(), R"({"alpha":0.3,"density":0.5,"disjoint":"mean","scope":"model"})");
  Params c({}, "w");
  make_method("cat", c, ctx);
  EXPECT_EQ(c.used().dump(),
            R"({"alpha":0.3,"c":3,"c_norm":3,"c_shift":3,"lambda":5.0,"lambda_norm":5.0,"variant":"paper"})");
}

TEST(ParamsMethods, RangeChecks) {
  MergeContext ctx;
  ctx.num_tasks = 2;
  const auto err = [&](const std::string& method, std::map<std::string, std::string> p) {
    return error_of([&] { testing::make(method, std::move(p), ctx); });
  };
  EXPECT_EQ(err("ties", {{"density", "0"}}), "test.yaml: method.density: must be in (0, 1], got 0");
  EXPECT_EQ(err("ties", {{"density", "1.5"}}), "test.yaml: method.density: must be in (0, 1], got 1.5");
  EXPECT_EQ(err("ties", {{"density", "1"}}), "(no error)");
  EXPECT_EQ(err("dare", {{"p", "1"}}), "test.yaml: method.p: must be in [0, 1), got 1");
  EXPECT_EQ(err("dare", {{"p", "-0.1"}}), "test.yaml: method.p: must be in [0, 1), got -0.1");
  EXPECT_EQ(err("dare", {{"seed", "-1"}}), "test.yaml: method.seed: expected an integer in [0, 4294967295], got -1");
  EXPECT_EQ(err("dare", {{"seed", "4294967295"}}), "(no error)");
  EXPECT_EQ(err("dare", {{"combine", "ties"}, {"alphas", "[1, 2]"}}),
            "test.yaml: method.alphas: unknown hyperparameter for this method (it takes: alpha, combine, disjoint, p, "
            "seed)");
  EXPECT_EQ(err("ties", {{"disjoint", "max"}}), "test.yaml: method.disjoint: expected one of mean, sum, got 'max'");
  EXPECT_EQ(err("dare", {{"combine", "ties"}, {"disjoint", "sum"}}), "(no error)");
  EXPECT_EQ(err("cat", {{"variant", "github"}}),
            "test.yaml: method.variant: expected one of paper, released, got 'github'");
  EXPECT_EQ(err("pcb", {{"ratio", "0"}}), "test.yaml: method.ratio: must be in (0, 1], got 0");
  EXPECT_EQ(err("pcb", {{"scope", "global"}}), "test.yaml: method.scope: expected one of model, tensor, got 'global'");
  EXPECT_EQ(err("regmean", {{"reduction", "1.1"}}), "test.yaml: method.reduction: must be in [0, 1], got 1.1");
  EXPECT_EQ(err("cat", {{"c", "-1"}}), "test.yaml: method.c: must be >= 0, got -1");
  EXPECT_EQ(err("cat", {{"lambda", "-2"}}), "test.yaml: method.lambda: must be >= 0, got -2");
  EXPECT_EQ(err("cat", {{"c_shift", "1.5"}}), "test.yaml: method.c_shift: expected an integer, got '1.5'");
  EXPECT_EQ(err("task_arithmetic", {{"alpha", "0.3"}, {"alphas", "[1, 2]"}}),
            "test.yaml: method.alphas: give either alpha or alphas, not both");
  EXPECT_EQ(err("cat", {{"alphas", "[1, 2, 3]"}}), "test.yaml: method.alphas: expected 2 values (one per expert), got 3");
  EXPECT_EQ(err("merge_all", {}),
            "test.yaml: method.name: unknown method 'merge_all' (one of weight_average, task_arithmetic, ties, dare, "
            "pcb, regmean, fisher, cat)");
}

TEST(ParamsMethods, NamesInMethodsOrder) {
  EXPECT_EQ(method_names(), (std::vector<std::string>{"weight_average", "task_arithmetic", "ties", "dare", "pcb",
                                                      "regmean", "fisher", "cat"}));
}

}  // namespace
}  // namespace cm
