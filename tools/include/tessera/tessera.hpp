// The whole C++ API in one include: build a Graph from ops by name, run it.
//
//   #include <tessera/tessera.hpp>
//   tessera::Graph g(tessera::standard_registry());
//   auto canvas = g.add("black", {}, {{"width", 1000}, {"height", 800}, {"bands", 3}});
//   ...
//   tessera::Evaluator(g).run_sinks();
#pragma once

#include "tessera/core/error.hpp"
#include "tessera/core/op.hpp"
#include "tessera/graphs/cluster.hpp"
#include "tessera/graphs/evaluator.hpp"
#include "tessera/graphs/graph.hpp"
#include "tessera/graphs/pipeline.hpp"
#include "tessera/io/io.hpp"
#include "tessera/ops/ops.hpp"

namespace tessera {

// Every op of every module (ops and io), built once on first use.
const OpRegistry& standard_registry();

}  // namespace tessera
