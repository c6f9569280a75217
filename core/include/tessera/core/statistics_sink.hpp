// The sink of a statistics pre-pass (statistics.hpp): it receives the tiles
// of an image in the kStatisticsBlock grid and reduces them to Statistics.
// The evaluator runs one before a consumer that asked (Op::statistics);
// the `stats` op writes one to JSON.
//
// Sharded over ranks like any ShardedSink: each rank sums its share of the
// blocks (a per-block partial, kept: a few doubles per band and block); in
// finish() the producers send theirs to rank 0, which combines every block
// in block order and broadcasts the result, so that every rank holds the
// same bits as a run in one process.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "tessera/core/op.hpp"
#include "tessera/core/statistics.hpp"

namespace tessera {

class StatisticsSink : public ShardedSink {
public:
    // For a histogram of a format without one bin per value, `range` is the
    // samples' [min, max] (from a pre-pass of the moments).
    explicit StatisticsSink(bool histogram, std::optional<std::pair<double, double>> range = std::nullopt)
        : histogram_(histogram), range_(range) {}

    std::optional<Point> tile_size() const override { return Point{kStatisticsBlock, kStatisticsBlock}; }
    std::vector<std::size_t> share_starts(int cols, int rows, int ranks) const override;
    void start(const ImageInfo& info, const SinkContext& context) override;
    // the block's moments, on a worker thread
    std::shared_ptr<void> prepare(const ConstTile& tile) override;
    // kept at its position; the histogram counted (serial)
    void consume(const ConstTile& tile, std::shared_ptr<void> prepared) override;
    // combines (sharded: every rank's blocks, on rank 0, then broadcast)
    void finish() override;
    void abort() noexcept override {}

    // After finish(): the image's statistics (on every rank).
    const Statistics& result() const { return result_; }
    // The statistics of one tile alone (in the sink's own order).
    static std::vector<Moments> moments_of(const ConstTile& tile);

private:
    bool histogram_;
    std::optional<std::pair<double, double>> range_;
    int bands_ = 0;
    Format format_ = Format::u8;
    const Share* share_ = nullptr;
    std::size_t first_ = 0;                       // the position of partials_[0]
    std::vector<std::vector<Moments>> partials_;  // per block of this share, in order
    std::vector<std::vector<std::uint64_t>> hist_;
    Statistics result_;
};

}  // namespace tessera
