#pragma once
// The llama architecture family (LLaMA, Mistral, Qwen2: HF LlamaForCausalLM naming) for roles, stages and
// sites. Its forward pass is not implemented yet, so methods that need features reject it (job/inputs).
#include "arch/model_spec.hpp"
#include "io/checkpoint.hpp"

namespace cm {

ModelSpec llama_model(const Checkpoint& base);

}  // namespace cm
