// The activations, as every layer names them.
#pragma once

namespace nnfast {

enum class Activation { sigmoid, tanh, relu, leaky_relu };

}  // namespace nnfast
