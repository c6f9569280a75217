// hist_equal: histogram equalisation, libvips hist_equal (8.14,
// histogram/hist_equal.c), for u8 and u16 images, pixel for pixel.
//
// libvips: hist_find (per band, or of band `band` alone), hist_cum,
// hist_norm, cast to the input format, maplut. Spelled out:
//   - bins: max + 1, max the largest value of the bands counted
//     (hist_find sizes its histogram to the maximum it saw), except for a u8
//     image counted over every band: 256;
//   - cum[v]: the count of values <= v (u32);
//   - hist_norm: new_max = bins - 1, a = new_max / cum[last] (the same for
//     every band: each counts every pixel), then linear(cum, a, 0) in float
//     (float a times the count as float: libvips 8.14 takes its single
//     constant path even for a several-band histogram, as the installed
//     library shows), then cast to u8 when new_max <= 255, else u16:
//     clipped, truncated;
//   - maplut: each pixel's value looked up in its band's table (or in the
//     one table of `band`, for every band).
// The histogram is the evaluator's statistics pre-pass (exact integer
// counts, so the tables do not depend on tiles, threads or ranks).
// Demand halo: none.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ops_list.hpp"
#include "tessera/core/error.hpp"

namespace tessera {
namespace {

class HistEqualOp final : public Op {
public:
    HistEqualOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        if (src.format != Format::u8 && src.format != Format::u16)
            throw Error("hist_equal takes u8 or u16 images, not " + std::string(format_name(src.format)) +
                        " (as libvips hist_equal); cast or scale first");
        band_ = int(p.integer("band", -1));
        if (band_ < -1 || band_ >= src.bands)
            throw ParamError("band", std::to_string(band_) + " is not a band of this " + std::to_string(src.bands) +
                                         "-band image; give -1 (every band on its own) or 0 to " +
                                         std::to_string(src.bands - 1));
        info_ = src;
    }

    std::vector<StatisticRequest> statistics() const override { return {{0, true}}; }

    std::shared_ptr<const Op> with_statistics(std::span<const Statistics> s) const override {
        auto c = std::make_shared<HistEqualOp>(*this);
        c->bind(s[0]);
        return c;
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, looked up per sample.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (luts_.empty()) throw Error("internal: hist_equal was computed before its statistics pre-pass ran");
        if (info_.format == Format::u8)
            map<std::uint8_t>(in[0].tile, out);
        else
            map<std::uint16_t>(in[0].tile, out);
    }

private:
    void bind(const Statistics& s) {
        const std::size_t nb = s.histograms.size();
        std::vector<std::size_t> counted;  // the bands whose histograms libvips finds
        if (band_ < 0)
            for (std::size_t b = 0; b < nb; ++b) counted.push_back(b);
        else
            counted.push_back(std::size_t(band_));
        std::size_t bins = 256;
        if (info_.format == Format::u16 || band_ >= 0) {
            std::size_t mx = 0;
            for (std::size_t b : counted)
                for (std::size_t v = s.histograms[b].size(); v-- > 0;)
                    if (s.histograms[b][v]) {
                        mx = std::max(mx, v);
                        break;
                    }
            bins = mx + 1;
        }
        const double new_max = double(bins - 1);
        luts_.clear();
        for (std::size_t b : counted) {
            const auto& h = s.histograms[b];
            std::vector<std::uint32_t> cum(bins);
            std::uint32_t c = 0;
            for (std::size_t v = 0; v < bins; ++v) cum[v] = c += std::uint32_t(h[v]);
            const double a = new_max / double(cum[bins - 1]);
            std::vector<std::uint16_t> lut(bins);
            for (std::size_t v = 0; v < bins; ++v) {
                const float t = float(a) * float(cum[v]);
                const double d = double(t);
                const double hi = new_max <= 255 ? 255.0 : 65535.0;
                lut[v] = std::uint16_t(d <= 0 ? 0.0 : d >= hi ? hi : d);
            }
            luts_.push_back(std::move(lut));
        }
    }

    template <class T>
    void map(const ConstTile& src, const Tile& dst) const {
        const int bands = dst.bands;
        for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
            const T* p = reinterpret_cast<const T*>(src.at(dst.rect.x, y));
            T* q = dst.row<T>(y);
            for (int x = 0; x < dst.rect.w; ++x)
                for (int b = 0; b < bands; ++b) {
                    const std::size_t k = std::size_t(x) * bands + b;
                    const auto& lut = luts_[luts_.size() == 1 ? 0 : std::size_t(b)];
                    // a value above the table (a band not counted, with
                    // band >= 0) takes the last entry, as maplut clips
                    q[k] = T(lut[std::min<std::size_t>(p[k], lut.size() - 1)]);
                }
        }
    }

    int band_ = -1;
    std::vector<std::vector<std::uint16_t>> luts_;
};

}  // namespace

OpSpec hist_equal_op_spec() {
    return {"hist_equal",
            "histogram equalisation of u8 and u16 images (libvips hist_equal); statistics pre-pass; halo: none",
            1,
            1,
            {{.name = "band",
              .type = ParamType::integer,
              .doc = "equalise every band by this band's histogram; -1: each band by its own",
              .default_value = std::int64_t(-1),
              .min = -1.0}},
            false,
            &make_op<HistEqualOp>,
            false,
            "statistics",
            "0"};
}

}  // namespace tessera
