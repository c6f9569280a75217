// JSON pipelines: read and write the graph as
//   {"version": 1,
//    "execution": {"tile": [256, 256], "threads": 0, "memory_mb": 0, "cache_mb": 256},
//    "nodes": [{"id": "a", "op": "black", "width": 10, ...},
//              {"id": "b", "op": "insert", "inputs": ["a", ...], ...}]}
// A node's keys besides id, op, inputs and cache are its op's parameters.
// Errors (GraphError) name the node and the key, and say what to do.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tessera/graphs/graph.hpp"

namespace tessera {

inline constexpr int kPipelineVersion = 1;

// Parses and builds a pipeline. `source` names the text in errors (a path).
// Relative "path" parameters are resolved against `base_dir` when not empty.
Graph parse_pipeline(std::string_view json_text, const OpRegistry& registry, const std::string& source = "pipeline",
                     const std::string& base_dir = "");
Graph load_pipeline(const std::string& path, const OpRegistry& registry);

// The pipeline as JSON text that parse_pipeline reads back to the same graph.
std::string to_json(const Graph& g, int indent = 2);

// The "execution" settings (tile, threads, memory_mb, cache_mb, on_error)
// as specs: their types, ranges and choices, read by the parser and by the
// command line's run options, so that the two cannot drift apart.
const std::vector<ParamSpec>& execution_params();

// `tessera ops --json`: every op, its inputs and its parameters.
std::string ops_to_json(const OpRegistry& registry, int indent = 2);

}  // namespace tessera
