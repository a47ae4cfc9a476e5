#pragma once
// The forward oracle check shared by the unit tests (CPU backend) and the GPU tests (CUDA backend): one
// model's forward, through the Forward interface, against a transformers oracle file (data/fixtures/forward/
// from tools/reference/make_fixtures.py, the bert fixtures' from tools/make_random_bert.py, or one a test
// writes at run time: tests/hf/bert_minilm_forward.py): every feature site, the pooled output and, for CLIP
// with a projection, the image embeddings of the first exemplars. Each is EXPECTed within 1e-4 relative
// (max|got - want| / max|want|).
#include <cstdint>
#include <string>

#include "backend/backend.hpp"

namespace cm::testing {

// `model`, `exemplars` and `oracle` are paths relative to data/fixtures/, or absolute; the first `count`
// exemplars of `group` run. Returns the largest relative error seen and prints it with the site where it was.
double expect_forward_matches_oracle(Backend& backend, const std::string& arch, const std::string& model,
                                     const std::string& exemplars, const std::string& group,
                                     const std::string& oracle, int64_t count = 2);

}  // namespace cm::testing
