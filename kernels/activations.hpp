#pragma once
// Activations of the transformer MLPs, element by element, exactly as PyTorch writes them in float32
// (transformers' QuickGELUActivation, nn.GELU's exact erf form, and LLaMA's SiLU-gated MLP); quick_gelu's exp is
// a polynomial (as PyTorch's own vectorised CPU kernels use one), within 2 ulp of expf.
#include <math.h>

#include "exp_poly.hpp"
#include "host_device.hpp"

namespace cm {

// x * sigmoid(1.702 x)
CM_HD float quick_gelu(float x) { return x * (1.0f / (1.0f + exp_poly(-1.702f * x))); }

// 0.5 x (1 + erf(x / sqrt(2)))
CM_HD float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

// x * sigmoid(x)
CM_HD float silu(float x) { return x * (1.0f / (1.0f + expf(-x))); }

// LLaMA's MLP gate: silu(gate_proj(x)) * up_proj(x), one element.
CM_HD float silu_gate(float gate, float up) { return silu(gate) * up; }

}  // namespace cm
