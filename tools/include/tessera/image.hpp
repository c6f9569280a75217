// tessera::Image: one node of a graph as a value, the way pyvips and the
// Python package (tools/python) see an image: its header at once, its
// pixels only when a window is asked for or it is saved.
//
//   using tessera::Image;
//   Image a = Image::apply("load", {}, {{"path", std::string("a.jpg")}});
//   Image c = Image::apply("extract_area", {a}, {{"left", 10}, {"top", 10}, {"width", 256}, {"height", 256}});
//   tessera::Buffer px = c.region(c.info().rect());  // computed in parallel, only this window
//   c.save("c.tif", {{"compression", std::string("deflate")}});
//
// Ownership and threads. An Image holds its graph (shared, never changed
// after the Image is made) and a node of it, so copies are cheap and any
// number of threads may read, save or build on the same Image at once.
// apply() builds a new graph holding the ancestors of every input (their
// nodes added again, by op, parameters and inputs: a source reads its header
// again) plus the new node; the inputs keep theirs. So a chain of N applies
// on a graph of M nodes adds nodes N x M times: build a large fan-in (an
// insert of thousands of loads) with one apply of all of them, or take the
// graph of a job or pipeline as it is (Image(graph, node)).
//
// Pixels from memory: from_memory() makes a source node over caller-owned
// pixels (no copy), which the node keeps alive through `owner` (the Python
// binding passes the numpy array there). Such a node's JSON ("op":
// "memory", "handle": N) is valid only in the process that made it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "tessera/graphs/evaluator.hpp"
#include "tessera/graphs/graph.hpp"

namespace tessera {

// Every op of standard_registry() plus "memory" (from_memory's source): the
// registry Images are built with. Built on first use, after every module
// has registered its ops, so an op added to the standard registry is here
// without a change to this file.
const OpRegistry& image_registry();

struct RegionOptions {
    int threads = 0;  // 0: the graph's execution.threads (0 there: every core)
    // Set from any thread to stop: Cancelled is thrown.
    const std::atomic<bool>* cancel = nullptr;
};

class Image {
public:
    // Node `node` of `graph` (which must hold it): e.g. the input of a job's
    // save node. Throws Error for a node outside the graph or a sink node
    // (a save has no pixels to read).
    Image(std::shared_ptr<const Graph> graph, NodeId node);

    // Op `op` of `registry` over `inputs` (each from any graph) with
    // `params`, checked against the op's spec as Graph::add checks them
    // (GraphError naming the node, op and key). The new graph takes the
    // execution settings of the first input's (or the defaults).
    static Image apply(const std::string& op, const std::vector<Image>& inputs, const Params& params = {},
                       const OpRegistry& registry = image_registry());

    // A source over `info.height` rows of `stride` bytes from `data`, each
    // row info.width x info.bands samples of info.format, band-interleaved
    // (info.geo: its georeference, if any). Not copied: `owner` keeps the
    // memory alive as long as any graph holds the node, and the memory must
    // not change meanwhile (the output would depend on when tiles were read).
    static Image from_memory(std::shared_ptr<const void> owner, const std::byte* data, const ImageInfo& info,
                             std::size_t stride);

    const Graph& graph() const { return *graph_; }
    std::shared_ptr<const Graph> shared_graph() const { return graph_; }
    NodeId node() const { return node_; }
    const ImageInfo& info() const { return graph_->info(node_); }
    int width() const { return info().width; }
    int height() const { return info().height; }
    int bands() const { return info().bands; }
    Format format() const { return info().format; }
    const std::optional<GeoRef>& georef() const { return info().geo; }

    // The pixels of `rect` (inside the image; GraphError naming the node
    // otherwise) in a new buffer of exactly that rect, rows contiguous.
    // Computed through the evaluator on parallel workers, a tile of the
    // graph's execution tile grid at a time (only the tiles the window
    // touches); the bits do not depend on the threads or the tile size.
    Buffer region(const Rect& rect, const RegionOptions& options = {}) const;
    // The same into caller-owned pixels: dst.rect (inside the image) with
    // dst's stride; its bands and format must be the image's.
    void read_into(const Tile& dst, const RegionOptions& options = {}) const;

    // Writes the image with the save op: `path` and `options` are its
    // parameters (tessera ops lists them; checked by its spec), the run's
    // progress and cancel flag from `run`. On failure or cancellation
    // nothing is left at `path`.
    RunStats save(const std::string& path, const Params& options = {}, const RunOptions& run = {}) const;

    // A graph of this image's ancestors only, this node last (its id kept):
    // what to_json writes down for it.
    Graph standalone() const;

private:
    std::shared_ptr<const Graph> graph_;
    NodeId node_ = 0;
};

}  // namespace tessera
