// The norm a grad_norm call computes, as every backend's driver takes it (the
// per-element math is in ops/norms.h).
#pragma once

namespace nnfast {

// The order of a norm: 1, 2 and inf are special cases of the general p.
enum class NormOrder { one, two, inf, p };

// The p-norm of scale * g (ops::norm_spec builds it from p).
struct NormSpec {
  NormOrder order = NormOrder::two;
  double p = 2.0;      // the exponent (inf for NormOrder::inf)
  double scale = 1.0;
};

}  // namespace nnfast
