// The Op interface: what every operation in a pipeline implements.
//
// An op is built once, from its parameters and its inputs' headers, when the
// graph is built; that is where it validates (a bad value is a ParamError,
// never a failure later in compute). After construction it is immutable:
// demand() and compute() are const and called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/image_info.hpp"
#include "tessera/core/params.hpp"
#include "tessera/core/rect.hpp"
#include "tessera/core/shard.hpp"
#include "tessera/core/statistics.hpp"

namespace tessera {

class Sink;

// One input rectangle an output rect needs.
struct Need {
    int input = 0;  // index into the op's inputs
    Rect rect;      // in that input's pixel frame
    // When set, the evaluator writes the input pixels straight into the output
    // tile with rect's top-left at `place` (output frame), after compute()
    // ran, in demand order; compute() never sees them. Inputs and output must
    // then have the same bands and format. This is how insert, embed,
    // extract_area and arrayjoin move pixels without a copy of their own.
    std::optional<Point> place;
};
using Demand = std::vector<Need>;

// An input tile handed to compute(): the pixels of need.rect of input
// `input`, for each need without `place`, in demand order.
struct Pulled {
    int input = 0;
    ConstTile tile;
};

class Op {
public:
    virtual ~Op() = default;

    // The output header, fixed at construction.
    const ImageInfo& info() const { return info_; }

    // The input rects needed to compute `out` (output frame, inside info().rect()).
    // Sparse: only inputs that contribute appear. Must not touch pixels.
    virtual void demand(const Rect& out, Demand& need) const = 0;

    // Writes every pixel of out.rect that no placed need covers. `in` holds
    // the unplaced needs of demand(out.rect), in order.
    virtual void compute(const Tile& out, std::span<const Pulled> in) const = 0;

    // The coming requests to this op, until its next release(), lie inside
    // `region` (this op's frame): a source may read just that (e.g. crop a
    // decode to those columns). Only advice, like release(): a request
    // outside it must still be served.
    virtual void expect(const Rect& region) const {}

    // The evaluator has finished the last tile of this segment of its run
    // that needs this op's pixels (the next request, if any, goes back up):
    // a source may drop its decoder, window or open file. Only advice: a
    // later compute() must still work (by reopening).
    virtual void release() const {}

    // Whole-image statistics this op needs of its inputs before its first
    // tile (statistics.hpp): the evaluator computes them in a pre-pass, then
    // computes the tiles of with_statistics(results) instead of this op's.
    // Fixed at construction, like info().
    virtual std::vector<StatisticRequest> statistics() const { return {}; }
    // A copy of this op that computes with `results` (one per request of
    // statistics(), in order); null for an op that asks for none. The copy
    // has the same info() and demand(); this op's own compute() may refuse
    // to run without them.
    virtual std::shared_ptr<const Op> with_statistics(std::span<const Statistics> results) const { return nullptr; }

    // Sinks (save ops) return the writer that consumes this node's tiles.
    virtual std::unique_ptr<Sink> make_sink() const { return nullptr; }

    // The files a source reads and a sink writes (as given; a path that is
    // no file, such as GDAL's /vsimem/, is ignored), so that the graph can
    // refuse an output that would replace one of its own inputs. `folder`:
    // the sink fills that folder (a Deep Zoom pyramid's NAME_files/), so no
    // input may lie inside it.
    struct FileUse {
        std::string path;
        bool folder = false;
    };
    virtual std::vector<std::string> files_read() const { return {}; }
    virtual std::vector<FileUse> files_written() const { return {}; }

    // Whether its pixels come from a decoder that reads its file from the
    // top (a baseline JPEG, streamed): a rect then costs every row above it
    // too, which a reader planning how deep to read (registration) weighs.
    // Known when the op is built, so nobody reads the file's header again.
    virtual bool decodes_from_top() const { return false; }

protected:
    ImageInfo info_;
};

// What a sink gets at start(): the run's resources, so that it reaches for
// no global (hardware_concurrency, a process-wide account).
struct SinkContext {
    // The tile grid: tiles are tile_w x tile_h except on the right and
    // bottom edges.
    int tile_w = 0, tile_h = 0;
    // The run's thread budget (--threads): threads a sink starts of its own
    // (e.g. to encode what is left in finish()) are at most this many.
    int threads = 1;
    // The account the sink's own pixel buffers (e.g. pyramid strips) are
    // charged to, so reported peaks include them.
    MemoryAccount* account = nullptr;
    // A sharded run of a ShardedSink: this process's share (its courier
    // says its rank); null otherwise.
    const Share* share = nullptr;
};

// Receives the tiles of one image from the evaluator, one at a time, in the
// order tile_order() asks for (row-major by default), in the serial stage of
// the pipeline.
class Sink {
public:
    virtual ~Sink() = default;
    // The tile grid this sink needs (e.g. a TIFF's tile size), asked before
    // start(); none: the pipeline's execution tile size. Either way the
    // pixels are the same; only the pull unit changes.
    virtual std::optional<Point> tile_size() const { return std::nullopt; }
    // The order to produce the tiles of a cols x rows grid in, as indices
    // (row * cols + col), each once; empty: row-major. Tiles reach consume()
    // in this order, one at a time. A writer that can place tiles anywhere
    // picks an order that keeps its working set small (e.g. bands of
    // columns). It must not depend on the thread count: a file's bytes would.
    virtual std::vector<std::uint32_t> tile_order(int cols, int rows) const { return {}; }
    // Called once before the first tile, with the run's resources.
    virtual void start(const ImageInfo& info, const SinkContext& context) = 0;
    // Optional parallel step, called on worker threads in any order as each
    // tile is computed: a sink does its costly per-tile work here (e.g.
    // compression) so that the serial write stays short. What it returns is
    // handed to consume() with the same tile.
    virtual std::shared_ptr<void> prepare(const ConstTile& tile) { return nullptr; }
    // Serial, in tile order, with what prepare() returned for this tile.
    // The evaluator's only way in: a sink driven by hand (a test) calls
    // consume(tile, prepare(tile)).
    virtual void consume(const ConstTile& tile, std::shared_ptr<void> prepared) = 0;
    // All tiles were written: make the output visible at its final path.
    virtual void finish() = 0;
    // The run failed or was cancelled: leave nothing behind.
    virtual void abort() noexcept = 0;
};

// A sink that can be split over the ranks of a sharded run (shard.hpp); a
// sink that is not one is computed and written by rank 0 alone. Its start()
// gets the share (SinkContext::share): only the share's tiles reach
// consume(); a producer's finish() sends what is left and returns, the
// writer's finish() waits for every producer's part, then writes.
class ShardedSink : public Sink {
public:
    // The positions in tile_order() at which a share may begin, 0 first,
    // for a run over `ranks` processes. The output's bytes must not depend
    // on the shares.
    virtual std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const = 0;
    // The work rank 0 does in such a run besides its share (e.g. finishing
    // pyramid levels from the others' blocks), in the evaluator's cost unit
    // (about one per pixel produced): rank 0's share is that much smaller.
    virtual std::uint64_t writer_cost(int cols, int rows, int ranks) const { return 0; }
};

// A spec for `tessera ops` and for validating pipelines before any op is built.
struct OpSpec {
    std::string name;  // the JSON "op"
    std::string doc;   // one line
    int min_inputs = 0;
    int max_inputs = 0;  // -1: any number
    std::vector<ParamSpec> params;
    bool sink = false;
    // Builds the op; throws ParamError (key + message) on a bad value, or
    // Error for input headers it cannot take.
    std::unique_ptr<Op> (*create)(const Params& params, std::span<const ImageInfo> inputs) = nullptr;
    // Its inputs may be sinks: it reads what they wrote, once they have
    // finished (their header is what it will find), never their pixels
    // (gdal_load of a file saved earlier in the same run).
    bool inputs_may_be_sinks = false;
    // The family `tessera ops` and the README's op table list it under:
    // "source", "geometry", "arithmetic", "bands", "colour",
    // "neighbourhood", "statistics", "mosaic" or "sink".
    std::string kind = "other";
    // How far its demand reaches beyond an output rect, in input pixels, for
    // the op table: a number ("0") or a rule ("ceil(3 sigma)", "kernel
    // radius"). Ops state the same in their file header.
    std::string halo = "not stated";
};

// The parameters an op is built from: `given` (keys and types already
// checked against the spec) with each value checked against its spec's range
// and choices, then every declared default_value filled in for a key not
// given. Throws ParamError naming the key, the value and what is allowed.
// The graph calls it before spec.create; so must anything else that builds
// an op from its spec.
Params complete_params(const OpSpec& spec, const Params& given);

// Ops by their JSON name. Modules register theirs with one line each.
class OpRegistry {
public:
    // Checks the spec's own declarations (a default of the declared type and
    // inside its range and choices; throws Error naming the op and key) and
    // derives each default_text left empty from its default_value.
    void add(OpSpec spec);
    const OpSpec* find(std::string_view name) const;
    const std::vector<OpSpec>& specs() const { return specs_; }

private:
    std::vector<OpSpec> specs_;
};

// The common shape of ops whose spec lives in a static member:
//   registry.add(InsertOp::spec());
template <class T>
std::unique_ptr<Op> make_op(const Params& p, std::span<const ImageInfo> in) {
    return std::make_unique<T>(p, in);
}

}  // namespace tessera
