// Inside graphs/: the check of the build cancel flag (set_build_cancel,
// graph.hpp), for Graph::add and for the pipeline parser's own loops.
#pragma once

namespace tessera {

// Throws Cancelled while the flag set by set_build_cancel is set.
void throw_if_build_cancelled();

}  // namespace tessera
