// The evaluator: pulls tiles of a node through the graph.
//
// Output tiles are produced in parallel (TBB) and handed to a sink in order;
// each tile pulls from its inputs only the rects the ops demand, recursively
// down to the sources. At most `tokens` tiles are in flight, so the pixel
// memory held is about tokens x tile bytes x graph depth plus the tile cache,
// whatever the image size.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/shard.hpp"
#include "tessera/graphs/graph.hpp"

namespace tessera {

struct Progress {
    std::size_t tiles_done = 0;
    std::size_t tiles_total = 0;
    std::size_t pixels_done = 0;
    std::size_t pixel_bytes = 0;  // accounted pixel memory held now
    double seconds = 0;
};

// A part of a tile filled with background because its source failed
// (Execution::on_error = background).
struct Filled {
    std::string node;  // the source node's id
    std::string file;  // the file it could not read (empty if not a file error)
    Rect rect;         // in that node's frame
    std::string message;
};

// One rank's part of a sharded run (Evaluator::run with a cluster).
struct RankStats {
    int rank = 0;
    std::size_t tiles = 0;         // output tiles this rank computed
    double busy_seconds = 0;       // thread time computing and compressing them
    double share_seconds = 0;      // wall time until its last tile was handed on
    double seconds = 0;            // wall time of its whole run (the writer's includes the writing)
    double sink_seconds = 0;       // of that, in the sink's serial steps (writing, sending, receiving)
    double wait_seconds = 0;       // of those, waiting on other ranks
    std::uint64_t bytes_sent = 0;  // to the writer
};

// A statistics pre-pass a run made before a consumer's tiles
// (Op::statistics): `node` asked for the statistics of its input `input`.
struct PrePass {
    std::string node, input;
    bool histogram = false;
    std::size_t tiles = 0;  // blocks read (kStatisticsBlock each), by this rank
    double seconds = 0;
};

struct RunStats {
    std::size_t tiles = 0;
    std::size_t peak_pixel_bytes = 0;  // peak pixel memory of this run's tiles, cache and sink
    // peak of all accounted pixel memory in the process during the run,
    // including the io layer's decode windows
    std::size_t peak_process_pixel_bytes = 0;
    std::size_t cache_hits = 0;
    std::size_t cache_misses = 0;
    std::size_t tokens = 0;  // tiles in flight allowed
    double seconds = 0;
    // what --on-error=background filled, by node then position; in a
    // sharded run rank 0 has every rank's, the others their own
    std::vector<Filled> filled;
    // Sharded runs, on rank 0: every rank's part, in rank order (one entry
    // per rank per sink run).
    std::vector<RankStats> ranks;
    // the statistics pre-passes run first, in the order they ran (their
    // tiles are not in `tiles`; their peaks are in the peaks)
    std::vector<PrePass> prepasses;
};

struct RunOptions {
    // Returns false to cancel the run.
    std::function<bool(const Progress&)> progress;
    // Set from any thread (e.g. a signal handler) to cancel.
    const std::atomic<bool>* cancel = nullptr;
    // Set (and with more than one rank) to run sharded: every rank calls
    // run() on the same graph; each computes a share of the tiles, balanced
    // by the inputs each tile reads, and rank 0 writes the output. A sink
    // that cannot be split (not a ShardedSink) is computed by rank 0 alone.
    Cluster* cluster = nullptr;
};

// One run at a time: run() and run_sinks() keep the run's state (its cancel
// flag, peaks, background fills) in the Evaluator, so a second call while one
// is under way (from another thread), or a render() during a run, throws an
// Error saying so and touches nothing; the run under way goes on unharmed.
// Threads that run at the same time each take an Evaluator of their own; any
// number may share one Graph (parallel_reads does). render() calls may run
// concurrently with one another.
class Evaluator {
public:
    // Borrows g; settings are taken from g.execution.
    explicit Evaluator(const Graph& g);
    ~Evaluator();

    // Computes every tile of `node` and hands them to sink in the order it
    // asks for (sharded: this rank's share of them).
    // On failure or cancellation the sink is aborted and the error rethrown.
    RunStats run(NodeId node, Sink& sink, const RunOptions& options = {});
    // Runs every sink node of the graph (save ops), one after the other.
    RunStats run_sinks(const RunOptions& options = {});
    // Computes one rect of a node into a new buffer (single-threaded). An
    // op under it that needs statistics gets them from a pre-pass at the
    // first render that needs it (kept for later renders; a run computes
    // them afresh).
    Buffer render(NodeId node, const Rect& rect);

    MemoryAccount& account();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Reads through the graph outside a run (registration's strips, a
// flat-field's samples): fn(ev, i) for every i in [0, n), taken in order of i
// as workers become free (so that neighbouring items are read close in
// time), on up to `threads` workers of TBB's scheduler (0: every core), each
// with an Evaluator of g of its own. The first exception stops the workers
// from taking more and is rethrown; a set `cancel` throws Cancelled.
void parallel_reads(const Graph& g, std::size_t n, int threads, const std::atomic<bool>* cancel,
                    const std::function<void(Evaluator& ev, std::size_t i)>& fn);

// The source under a chain of per-pixel ops (flatfield over a load, say):
// following first inputs down to a node with none. The place for a read's
// expect()/release() advice.
NodeId source_of(const Graph& g, NodeId node);

}  // namespace tessera
