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
// The same typed (tessera/ops_api.hpp, generated from the op specs; with the
// jobs and position readers: tessera/api.hpp):
//   Image c = tessera::extract_area(tessera::load("a.jpg"), 10, 10, 256, 256);
//   tessera::save(c, "c.tif", {.compression = tessera::op::SaveCompression::deflate});
//
// Ownership, cost and threads. An Image is a node of a graph it shares with
// the Images built from it: apply() appends its node to the graph of its
// first input when it may (below), so a chain of N applies (the typed
// builders of tessera/ops_api.hpp: resize(rotate(load(p), 90), 0.5)) and a
// fan-in over images of one graph cost N nodes, not N x M. An input from
// another graph has its ancestors added to that graph once per apply (by
// op, parameters and inputs: a source reads its header again). The graph
// is only ever appended to, so every Image of it keeps its node and header.
// It is appended to in place only while nothing outside the Images reads
// it: while a region() or save() of an Image of it runs, or once graph() or
// shared_graph() has handed it out (those promise a graph that no longer
// changes), apply() builds a new graph of the ancestors instead. So copies
// are cheap and any number of threads may read, save or build on the same
// Image at once.
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

namespace detail {
struct ImageStore;  // the shared, append-only graph of Images (image.cpp)
}  // namespace detail

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

    // The graph holding this node (and possibly nodes of other Images built
    // from the same inputs): valid as long as this Image, never changed
    // again once handed out (later applies build on a copy).
    const Graph& graph() const;
    std::shared_ptr<const Graph> shared_graph() const;
    NodeId node() const { return node_; }
    // The node's id and op, without handing the graph out.
    std::string id() const;
    std::string op_name() const;
    const ImageInfo& info() const { return op_->info(); }
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
    // Runs the sink op `op` (save, or any sink of `registry`) over `inputs`
    // with `params` in a graph of their ancestors (the first input's
    // execution settings); what the typed sinks of tessera/ops_api.hpp call.
    static RunStats run_sink(const std::string& op, const std::vector<Image>& inputs, const Params& params,
                             const RunOptions& run = {}, const OpRegistry& registry = image_registry());
    // The graph run_sink runs (the sink last): to write down as a pipeline.
    static Graph sink_graph(const std::string& op, const std::vector<Image>& inputs, const Params& params,
                            const OpRegistry& registry = image_registry());

    // A graph of this image's ancestors only, this node last (its id kept):
    // what to_json writes down for it.
    Graph standalone() const;

private:
    Image(std::shared_ptr<detail::ImageStore> store, NodeId node);

    std::shared_ptr<detail::ImageStore> store_;
    NodeId node_ = 0;
    std::shared_ptr<const Op> op_;  // the node's op: its header, whatever the graph does
};

}  // namespace tessera
