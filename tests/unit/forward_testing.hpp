#pragma once
// The forward oracle check shared by the unit tests (CPU backend) and the GPU tests (CUDA backend): one
// model's forward, through the Forward interface, against the transformers oracle file of
// data/fixtures/forward/ (tools/reference/make_fixtures.py): every feature site, the pooled output and, for
// CLIP with a projection, the image embeddings of the first two exemplars. Each is EXPECTed within 1e-4
// relative (max|got - want| / max|want|).
#include <string>

#include "backend/backend.hpp"

namespace cm::testing {

// Returns the largest relative error seen and prints it with the site where it was.
double expect_forward_matches_oracle(Backend& backend, const std::string& arch, const std::string& model,
                                     const std::string& exemplars, const std::string& group,
                                     const std::string& oracle_name);

}  // namespace cm::testing
