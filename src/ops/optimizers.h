// Every optimizer nnfast runs: the one list the engine dispatches over. Each
// optimizer is one file of ops/optimizers/: its operands (names and roles), its
// hyperparameters, the scalars derived from them (make_scalars), its formula as a
// functor (run by the CPU tile loop and the CUDA apply loop alike), and with_op,
// which picks the functor variant for a call's scalars.
#pragma once

#include <variant>

#include "ops/optimizers/adagrad.h"
#include "ops/optimizers/adam.h"
#include "ops/optimizers/rmsprop.h"
#include "ops/optimizers/sgd.h"
#include "ops/optimizers/sgdm.h"

namespace nnfast::ops {

// The scalars of one tensor of an optimizer call, computed in S.
template <class S>
using OptimizerScalars = std::variant<SgdScalars<S>, SgdmScalars<S>, AdagradScalars<S>,
                                      RmspropScalars<S>, AdamScalars<S>>;

}  // namespace nnfast::ops
