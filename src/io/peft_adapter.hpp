#pragma once
// A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors, as peft's save_pretrained
// writes it) read as the full checkpoint it makes from a base: every tensor is the base's plus the adapter's
// task vector, built on request for the elements asked, so nothing the size of the model is ever held.
//
//   - A LoRA pair (lora_A.weight [r, in], lora_B.weight [out, r]) on module M adds (alpha / r) B A to the base
//     tensor M.weight (alpha / sqrt(r) with use_rslora; (B A)^T with fan_in_fan_out, and always for an
//     embedding's lora_embedding_A [r, rows] and lora_embedding_B [columns, r]). r and alpha are the config's,
//     or those of the first rank_pattern / alpha_pattern key that matches M as peft matches them (the regular
//     expression (.*\.)?(KEY) against the whole module name, in the file's order).
//   - Any other tensor of the adapter (modules_to_save, trained biases, peft's copy of a targeted embedding,
//     M.base_layer.weight) is the expert's tensor there, whole.
//   - Every other tensor is the base's (task vector zero).
// The sum is float32 (B A summed in rank order, times the scale, plus the base), then, where the base tensor is
// 16-bit, rounded to that dtype (nearest even): the expert is the checkpoint merge_and_unload() saves in the base's
// dtype, so the job reads it as it reads any expert of that dtype.
//
// Key names: a leading `base_model.model.` (peft's wrappers) is dropped, and so is an adapter name
// (`lora_A.<name>.weight`, `modules_to_save.<name>.`; one adapter per file). The module name then finds its base
// tensor with no architecture knowledge: the base tensor of that name, else the one base tensor whose name ends in
// `.<name>` (peft applied to an inner module: bert's `encoder.layer.0...` under `bert.encoder.layer.0...`), else the
// name less leading components (peft applied to a CausalLM, a bare base model).
#include <memory>
#include <string>

#include "io/checkpoint.hpp"

namespace cm {

// A directory holding adapter_config.json.
bool is_peft_adapter(const std::string& path);

// Opens and checks the adapter in `dir` against `base` (kept alive by the result). Throws a cm::Error naming the
// file for an adapter that is not LoRA (peft_type, use_dora and the other variants that are no weight delta), a
// missing or malformed config or weights file, factors whose shapes do not fit each other, the rank or the base
// tensor, and a target the base does not have.
std::unique_ptr<Checkpoint> open_peft_adapter(const std::string& dir, std::shared_ptr<const Checkpoint> base);

}  // namespace cm
