// stats: a sink that writes the whole-image statistics of its input to a
// JSON file: per band and over every band, min, max, sum, sum2, mean,
// sigma, xmin, ymin, xmax and ymax, as libvips stats' ten columns (its row 0
// is "all", then a row per band; sigma is the sample deviation sqrt(|sum2 -
// sum^2/n| / (n - 1)) as libvips computes it). The positions are the first
// pixel in raster order that holds the min (max); libvips takes whichever
// its threads found first, so the two agree where the extreme is unique.
//
// It is the evaluator's statistics pre-pass (StatisticsSink) with a file at
// the end, so it shares that pass's reproducibility: the image is read in a
// fixed 256 x 256 block grid, each block summed in row-major order, blocks
// combined in block order on rank 0, whatever the tile size, threads or
// ranks (core/statistics.hpp). Under MPI every rank sums a share and rank 0
// writes the file. Written beside the target under a temporary name and
// renamed, so a failed run leaves the old file (or none).
//
// JSON: {"width", "height", "bands", "format", "count" (samples per band),
//        "all": {min, max, sum, sum2, mean, sigma, xmin, ymin, xmax, ymax},
//        "band": [{min, ...}, ...]}
// Numbers are written with 17 significant digits (they read back exactly).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "io_list.hpp"
#include "tessera/core/error.hpp"
#include "tessera/core/statistics_sink.hpp"
#include "tessera/io/output_target.hpp"

namespace tessera {
namespace {

namespace fs = std::filesystem;

std::string number(double v) {
    if (!std::isfinite(v)) return "null";
    char b[40];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
}

std::string moments_json(const Moments& m) {
    return "{\"min\": " + number(m.min) + ", \"max\": " + number(m.max) + ", \"sum\": " + number(m.sum) +
           ", \"sum2\": " + number(m.sum2) + ", \"mean\": " + number(m.mean()) + ", \"sigma\": " + number(m.sigma()) +
           ", \"xmin\": " + std::to_string(m.xmin) + ", \"ymin\": " + std::to_string(m.ymin) +
           ", \"xmax\": " + std::to_string(m.xmax) + ", \"ymax\": " + std::to_string(m.ymax) + "}";
}

class StatsFileSink final : public StatisticsSink {
public:
    explicit StatsFileSink(std::string path) : StatisticsSink(false), path_(std::move(path)) {}

    void start(const ImageInfo& info, const SinkContext& context) override {
        info_ = info;
        writer_ = !context.share || context.share->writer();
        StatisticsSink::start(info, context);
    }

    void finish() override {
        StatisticsSink::finish();
        if (!writer_) return;
        const Statistics& s = result();
        std::ostringstream os;
        os << "{\"width\": " << info_.width << ", \"height\": " << info_.height << ", \"bands\": " << info_.bands
           << ", \"format\": \"" << format_name(info_.format)
           << "\", \"count\": " << std::uint64_t(info_.width) * std::uint64_t(info_.height)
           << ",\n \"all\": " << moments_json(s.all) << ",\n \"band\": [";
        for (std::size_t b = 0; b < s.bands.size(); ++b) os << (b ? ",\n  " : "\n  ") << moments_json(s.bands[b]);
        os << "]}\n";
        // beside the target under a temporary name, renamed into place
        write_output_file(path_, os.str(), "the statistics JSON");
    }

    void abort() noexcept override {}  // nothing is written before finish()

private:
    std::string path_;
    ImageInfo info_;
    bool writer_ = true;
};

class StatsOp final : public Op {
public:
    StatsOp(const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        path_ = p.string("path");
        if (path_.empty()) throw ParamError("path", "is empty; give the JSON file to write, e.g. \"stats.json\"");
        const fs::path dir = fs::path(path_).parent_path().empty() ? fs::path(".") : fs::path(path_).parent_path();
        std::error_code ec;
        if (!fs::is_directory(dir, ec))
            throw ParamError("path",
                             "'" + path_ + "': the folder '" + dir.string() + "' does not exist; create it first");
        if (fs::is_directory(path_, ec)) throw ParamError("path", "'" + path_ + "' is a folder; give a file's path");
    }

    // A sink's node passes its input through (the statistics need no tile of
    // their own): one case, the same rect placed.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, r.origin()}); }
    void compute(const Tile&, std::span<const Pulled>) const override {}

    std::unique_ptr<Sink> make_sink() const override { return std::make_unique<StatsFileSink>(path_); }
    std::vector<FileUse> files_written() const override { return {{path_, false}}; }

private:
    std::string path_;
};

}  // namespace

OpSpec stats_op_spec() {
    return {"stats",
            "sink: min, max, sum, sum2, mean, sigma and where min and max are (x, y) per band and overall to a JSON "
            "file (libvips stats); halo: none",
            1,
            1,
            {{.name = "path",
              .type = ParamType::string,
              .required = true,
              .doc = "the JSON file to write",
              .is_path = true}},
            true,
            &make_op<StatsOp>,
            false,
            "statistics",
            "0"};
}

}  // namespace tessera
