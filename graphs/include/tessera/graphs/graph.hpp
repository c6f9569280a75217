// The pipeline graph: nodes are ops, edges are inputs.
//
// Nodes are added in dependency order (a node's inputs exist before it), and
// each op is built as it is added, so a Graph is always valid: acyclic, with
// the right number of inputs of compatible headers. Pipelines read from JSON
// are checked for cycles and unknown ids before any node is built.
//
// Ownership: the Graph owns its ops; it borrows the registry, which must
// outlive it.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/core/op.hpp"
#include "tessera/core/params.hpp"

namespace tessera {

using NodeId = std::size_t;

// How pixels are produced, never what they are.
struct Execution {
    int tile_w = 256;
    int tile_h = 256;
    int threads = 0;             // 0: every core
    std::size_t memory_mb = 0;   // 0: no budget; else accounted pixel memory must fit
    std::size_t cache_mb = 256;  // budget of the per-node tile caches
    // What a source that cannot deliver its pixels (a truncated or damaged
    // file: an IoError) does to the run: fail it (the default), or fill the
    // tile's part from that source with background (0) and carry on; each
    // such part is listed in RunStats::filled (like libvips's fail_on).
    enum class OnError { fail, background } on_error = OnError::fail;
    friend bool operator==(const Execution&, const Execution&) = default;
};

struct Node {
    std::string id;
    std::string op_name;
    std::vector<NodeId> inputs;
    Params params;
    bool cache = false;  // keep this node's tiles in the tile cache
    const OpSpec* spec = nullptr;
    std::shared_ptr<const Op> op;
};

class Graph {
public:
    explicit Graph(const OpRegistry& registry);
    ~Graph();
    Graph(Graph&&) noexcept;
    Graph& operator=(Graph&&) noexcept;

    // Builds an op and adds it. `id` must be unique; empty picks "OPn".
    // Throws GraphError naming the node, op and key on anything invalid.
    NodeId add(const std::string& op, const std::vector<NodeId>& inputs, const Params& params = {},
               const std::string& id = "");

    std::size_t size() const;
    const Node& node(NodeId n) const;
    const ImageInfo& info(NodeId n) const { return node(n).op->info(); }
    // NodeId of the node with this id; throws GraphError if there is none.
    NodeId find(std::string_view id) const;
    bool contains(std::string_view id) const;
    void set_cache(NodeId n, bool on);
    // How many nodes read this node's output.
    std::size_t consumers(NodeId n) const;
    // Sink nodes (save ops) in the order they were added.
    std::vector<NodeId> sinks() const;
    const OpRegistry& registry() const;

    Execution execution;

    // Graphviz DOT text of the graph; `collapse` folds long runs of inputs of
    // one node (fan-in of thousands of loads) into one summary node.
    std::string to_dot(std::size_t collapse = 16) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// A process-wide cancel flag for building graphs: while it is set, every
// Graph::add throws Cancelled before it builds its op (a source reads its
// file's header there), so a graph of thousands of inputs, on a slow file
// system, stops at the next input. The command line points it at its
// signal flag (SIGINT, SIGTERM); a C++ caller may point it at its own.
// Null (the default): never cancelled.
void set_build_cancel(const std::atomic<bool>* flag);

}  // namespace tessera
