// Every optimizer nnfast runs: the one list the engine dispatches over. Each
// optimizer is one file of ops/optimizers/: its operands (names and roles), its
// hyperparameters, the scalars derived from them (make_scalars), its formula as a
// functor (run by the CPU tile loop and the CUDA apply loop alike), and with_op,
// which picks the functor variant for a call's scalars.
#pragma once

#include <type_traits>
#include <variant>

#include "ops/optimizers/adadelta.h"
#include "ops/optimizers/adagrad.h"
#include "ops/optimizers/adam.h"
#include "ops/optimizers/nadam.h"
#include "ops/optimizers/radam.h"
#include "ops/optimizers/lamb.h"
#include "ops/optimizers/adamax.h"
#include "ops/optimizers/lion.h"
#include "ops/optimizers/rmsprop.h"
#include "ops/optimizers/sgd.h"
#include "ops/optimizers/sgdm.h"

namespace nnfast::ops {

// The scalars of one tensor of an optimizer call, computed in S.
template <class S>
using OptimizerScalars = std::variant<SgdScalars<S>, SgdmScalars<S>, AdagradScalars<S>,
                                      RmspropScalars<S>, AdamScalars<S>,
                                      NadamScalars<S>, RadamScalars<S>, LambScalars<S>,
                                      LionScalars<S>, AdamaxScalars<S>, AdadeltaScalars<S>>;

NNFAST_ISA_NAMESPACE_BEGIN

// f(the functor of one tensor's scalars), storing the scaled gradients back too when
// stores_scaled_grads (OptimizerCall).
template <class S, class F>
void with_step_op(const OptimizerScalars<S>& scalars, bool stores_scaled_grads, const F& f) {
  std::visit([&](const auto& s) {
    with_op(s, [&](const auto& op) {
      using Op = std::decay_t<decltype(op)>;
      if (stores_scaled_grads) f(StoresScaledGrads<Op>{op});
      else f(op);
    });
  }, scalars);
}

NNFAST_ISA_NAMESPACE_END

}  // namespace nnfast::ops
