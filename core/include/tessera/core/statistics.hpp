// Whole-image statistics: what an op asks of an input before its first tile
// (scale's min and max, hist_equal's histogram), and the result.
//
// The design: ops stay immutable. An op that needs a statistic says so
// (Op::statistics(), asked when the graph is built, so `tessera dot` and the
// plan can show it); the evaluator computes each one first, in a pre-pass
// over that input (a run of a StatisticsSink, statistics_sink.hpp: tile by
// tile, in parallel, sharded and reduced over MPI ranks), then asks the op
// for a copy of itself with the results (Op::with_statistics) and computes
// that copy's tiles. So no op holds a slot that a run fills (which would be
// state shared by every Evaluator of the Graph, and by two runs in turn);
// the graph's op is a template, the evaluator's bound copy is what runs, and
// it is as immutable as any op.
//
// Reproducibility (the result must not depend on tile size, threads or
// ranks): the pre-pass reads the image in a fixed grid of kStatisticsBlock
// blocks from the origin, whatever the run's tile size; each block is
// summed in row-major order (in double), and the blocks are combined in
// row-major block order, on one rank, after every rank's blocks arrived. Min
// and max are order-free, and histograms are exact integer counts.
#pragma once

#include <cstdint>
#include <vector>

#include "tessera/core/format.hpp"

namespace tessera {

// The pre-pass reads this block grid whatever the run's tiles.
inline constexpr int kStatisticsBlock = 256;

// What an op needs of input `input`: the moments of every band, and with
// `histogram` also a histogram of every band: one bin per value for u8,
// u16 and i16 inputs; for any other format (float, 32-bit) 65536 bins of
// equal width over the range of the samples, which a first pre-pass of the
// moments finds.
struct StatisticRequest {
    int input = 0;
    bool histogram = false;
};

// One band's moments (or, in Statistics::all, every band's samples).
struct Moments {
    double min = 0, max = 0, sum = 0, sum2 = 0;
    std::uint64_t count = 0;
    // Where min and max are, as libvips stats' xmin/ymin/xmax/ymax: their
    // first pixel in raster order (smallest y, then smallest x), so that a
    // value found at several places gives one answer whatever the blocks'
    // order (libvips keeps whichever of its threads' finds came first).
    std::int64_t xmin = 0, ymin = 0, xmax = 0, ymax = 0;
    double mean() const { return count ? sum / double(count) : 0.0; }
    // The sample standard deviation, as libvips stats: sqrt(|sum2 -
    // sum^2 / n| / (n - 1)) (0 for a single sample).
    double sigma() const;
    // Adds b's samples after this one's (the order matters for the sums,
    // not for min, max and their positions).
    void add(const Moments& b);
};

struct Statistics {
    std::vector<Moments> bands;
    Moments all;  // every sample of every band, as libvips stats' row 0
    // With a histogram: histograms[band][value - hist_offset] (hist_offset
    // -32768 for i16, 0 otherwise); empty without.
    int hist_offset = 0;
    std::vector<std::vector<std::uint64_t>> histograms;
    // A binned histogram (a format without one bin per value): bin k holds
    // the samples v with floor((v - hist_lo) / hist_width) = k (the last
    // bin also the maximum), the same bins for every band (the range of
    // all of them); not finite samples are not counted.
    bool binned = false;
    double hist_lo = 0, hist_width = 0;

    // The value at or below which `percent` of band `band`'s samples lie
    // (-1: every band's): the smallest v whose cumulative count reaches
    // percent / 100 of the samples (0: the minimum, 100: the maximum).
    // Binned: that point within its bin by linear interpolation of the
    // count, so within one bin's width of the exact order statistic.
    // Needs the histogram.
    double percentile(double percent, int band = -1) const;
};

// Whether this format's histogram has one bin per value (else it is binned).
constexpr bool histogram_format(Format f) { return f == Format::u8 || f == Format::u16 || f == Format::i16; }

}  // namespace tessera
