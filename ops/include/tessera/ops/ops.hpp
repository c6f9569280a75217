// The pixel ops: everything that knows neither files nor codecs.
#pragma once

#include "tessera/core/op.hpp"

namespace tessera {

// Adds every op of this module to the registry.
void register_ops(OpRegistry& registry);

}  // namespace tessera
