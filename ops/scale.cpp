// scale: a contrast stretch by the image's own range, two ways.
//
//  - libvips scale (the default; libvips 8.14 conversion/scale.c): the
//    image's min and max over every band (a statistics pre-pass), then
//    u8 = linear1(x, f = 255 / (max - min), a = 0.5 - min * f, uchar), that
//    is, float arithmetic (double for f64 input), clipped to [0, 255] and
//    truncated (the +0.5 rounds); min == max gives black. With `log`:
//    u8 = linear1(log10(1 + pow(x, exp)), 255 / log10(1 + pow(max, exp)),
//    0.5, uchar), each step stored as float like libvips's pow_const1 (pow
//    in double), linear1 and log10 (double all through for f64 input); a
//    NaN (the log of a negative value) gives 0. Both checked pixel for pixel
//    against libvips 8.14 (tests/ops_stats_test.cpp).
//  - GDAL's -scale (gdal_translate -scale src_min src_max dst_min dst_max
//    [-exponent e], GDAL's VRT ComplexSource): chosen by giving any of
//    src_min, src_max, percentiles, dst_min, dst_max, exponent, format.
//    Per band, out = (x - src_min) * (dst_max - dst_min) / (src_max -
//    src_min) + dst_min, in double; with an exponent the source is clamped
//    to [src_min, src_max] first and out = dst_min + (dst_max - dst_min) *
//    ((x - src_min) / (src_max - src_min))^e. A src_min or src_max not
//    given is the band's min or max (as gdal_translate's -scale without
//    values computes it), or with `percentiles` [low, high] the band's
//    low and high percentiles (our addition: u8, u16, i16 input from the
//    exact histogram; other formats from a histogram of 65536 bins over the
//    samples' range, interpolated within the bin, so within a 65536th of
//    the range of the exact value). The result is stored in GDAL's working type (float32,
//    or double when the input or output is a 32-bit integer or f64), then
//    an integer output rounds to nearest (floor(x + 0.5)) and clamps to the
//    format, as GDALCopyWords; src_max == src_min gives dst_min. Output
//    format u8 unless `format` says otherwise. Checked pixel for pixel
//    against gdal_translate (GDAL 3.6).
//
// Demand halo: none. The statistics come from the evaluator's pre-pass
// (Op::statistics): the graph's op is a template, the evaluator computes
// the tiles of the copy with_statistics() makes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops_list.hpp"
#include "tessera/core/error.hpp"

namespace tessera {
namespace {

template <class V>
std::uint8_t clip_uchar(V t) {
    return std::uint8_t(t < V(0) ? V(0) : t > V(255) ? V(255) : t);
}

// GDAL's conversion of a double to an integer sample: nearest, clamped.
template <class O>
O gdal_sample(double v) {
    if constexpr (std::is_floating_point_v<O>) {
        return O(v);
    } else {
        if (std::isnan(v)) return O(0);
        const double r = std::floor(v + 0.5);
        if (r <= double(std::numeric_limits<O>::lowest())) return std::numeric_limits<O>::lowest();
        if (r >= double(std::numeric_limits<O>::max())) return std::numeric_limits<O>::max();
        return O(r);
    }
}

struct Bound {
    // vips mode
    bool black = false;
    double f = 0, a = 0;
    // gdal mode, per band
    std::vector<double> src_min, src_max;
};

class ScaleOp final : public Op {
public:
    ScaleOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        in_format_ = src.format;
        for (const char* k : {"src_min", "src_max", "percentiles", "dst_min", "dst_max", "exponent", "format"})
            gdal_ = gdal_ || p.has(k);
        log_ = p.boolean("log", false);
        exp_ = p.number("exp", 0.25);
        if (gdal_ && log_)
            throw ParamError("log", "is libvips scale's option and cannot be combined with the GDAL-style keys "
                                    "(src_min, src_max, percentiles, dst_min, dst_max, exponent, format); give one or "
                                    "the other");
        info_ = src;
        info_.format = Format::u8;
        if (info_.geo) info_.geo->nodata.clear();
        if (gdal_) {
            dst_min_ = p.number("dst_min", 0.0);
            dst_max_ = p.number("dst_max", 255.0);
            if (p.has("exponent")) {
                exponent_ = p.number("exponent");
                if (!(exponent_ > 0)) throw ParamError("exponent", "must be above 0, as GDAL's -exponent");
            }
            if (p.has("format")) info_.format = *parse_format(p.string("format"));
            if (p.has("src_min")) src_min_ = p.number("src_min");
            if (p.has("src_max")) src_max_ = p.number("src_max");
            if (p.has("percentiles")) {
                percentiles_ = p.numbers("percentiles", {});
                if (percentiles_.size() != 2 ||
                    !(percentiles_[0] >= 0 && percentiles_[0] < percentiles_[1] && percentiles_[1] <= 100))
                    throw ParamError("percentiles", "give two percentages, low then high, in [0, 100], e.g. [2, 98]");
                if (src_min_ || src_max_)
                    throw ParamError("percentiles", "sets src_min and src_max; give either percentiles or them");
            }
        }
        if (info_.format == Format::u8) {
            if (src.interpretation == Interpretation::grey16) info_.interpretation = Interpretation::bw;
            if (src.interpretation == Interpretation::rgb16) info_.interpretation = Interpretation::srgb;
        }
        needs_ = !gdal_ || !src_min_ || !src_max_;
        if (!needs_) {
            bound_.src_min.assign(std::size_t(src.bands), *src_min_);
            bound_.src_max.assign(std::size_t(src.bands), *src_max_);
            ready_ = true;
        }
    }

    std::vector<StatisticRequest> statistics() const override {
        if (!needs_) return {};
        return {{0, !percentiles_.empty()}};
    }

    std::shared_ptr<const Op> with_statistics(std::span<const Statistics> s) const override {
        if (!needs_) return nullptr;
        auto c = std::make_shared<ScaleOp>(*this);
        c->bind(s[0]);
        return c;
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, computed per sample (the format changes: nothing is placed).
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (!ready_) throw Error("internal: scale was computed before its statistics pre-pass ran");
        if (!gdal_ && bound_.black) {
            const double zero = 0;
            fill_pixels(out, &zero, 1);
            return;
        }
        dispatch_format(in_format_, [&](auto i) {
            using I = decltype(i);
            if (!gdal_) {
                vips_kernel<I>(in[0].tile, out);
            } else {
                dispatch_format(info_.format, [&](auto o) { gdal_kernel<I, decltype(o)>(in[0].tile, out); });
            }
        });
    }

private:
    void bind(const Statistics& s) {
        if (!gdal_) {
            const double mn = s.all.min, mx = s.all.max;
            if (mn == mx) {
                bound_.black = true;
            } else if (log_) {
                bound_.f = 255.0 / std::log10(1.0 + std::pow(mx, exp_));
            } else {
                bound_.f = 255.0 / (mx - mn);
                bound_.a = -(mn * bound_.f) + 0.5;
            }
        } else {
            const std::size_t bands = s.bands.size();
            bound_.src_min.resize(bands);
            bound_.src_max.resize(bands);
            for (std::size_t b = 0; b < bands; ++b) {
                double lo = s.bands[b].min, hi = s.bands[b].max;
                if (!percentiles_.empty()) {
                    lo = s.percentile(percentiles_[0], int(b));
                    hi = s.percentile(percentiles_[1], int(b));
                }
                bound_.src_min[b] = src_min_ ? *src_min_ : lo;
                bound_.src_max[b] = src_max_ ? *src_max_ : hi;
            }
        }
        ready_ = true;
    }

    template <class I>
    void vips_kernel(const ConstTile& src, const Tile& dst) const {
        // libvips computes in float unless the input is double
        using M = std::conditional_t<std::is_same_v<I, double>, double, float>;
        const std::size_t n = std::size_t(dst.rect.w) * dst.bands;
        const M f = M(float(bound_.f)), a = M(float(bound_.a));
        for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
            const I* p = reinterpret_cast<const I*>(src.at(dst.rect.x, y));
            std::uint8_t* q = dst.row<std::uint8_t>(y);
            if (!log_) {
                for (std::size_t k = 0; k < n; ++k) q[k] = clip_uchar(M(f * M(p[k]) + a));
            } else {
                for (std::size_t k = 0; k < n; ++k) {
                    const M pw = M(std::pow(double(p[k]), exp_));  // pow_const1: pow in double
                    const M one = M(M(1) * pw + M(1));             // linear1(1, 1)
                    const M lg = M(std::log10(double(one)));       // log10
                    const M t = M(f * lg + M(0.5));                // linear1(f, 0.5, uchar): rounds
                    q[k] = std::isnan(t) ? std::uint8_t(0) : clip_uchar(t);
                }
            }
        }
    }

    template <class I, class O>
    void gdal_kernel(const ConstTile& src, const Tile& dst) const {
        const int bands = dst.bands;
        std::vector<double> ratio(static_cast<std::size_t>(bands)), off(static_cast<std::size_t>(bands));
        for (int b = 0; b < bands; ++b) {
            const double range = bound_.src_max[std::size_t(b)] - bound_.src_min[std::size_t(b)];
            ratio[b] = range == 0 ? 0.0 : (dst_max_ - dst_min_) / range;
            off[b] = -bound_.src_min[std::size_t(b)] * ratio[b] + dst_min_;
        }
        constexpr bool wide = (sizeof(I) == 4 && !std::is_same_v<I, float>) ||  // u32, i32
                              std::is_same_v<I, double> || std::is_same_v<O, double> ||
                              (sizeof(O) == 4 && !std::is_same_v<O, float>);
        for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
            const I* p = reinterpret_cast<const I*>(src.at(dst.rect.x, y));
            O* q = dst.row<O>(y);
            for (int x = 0; x < dst.rect.w; ++x)
                for (int b = 0; b < bands; ++b) {
                    const std::size_t k = std::size_t(x) * bands + b;
                    const double v = double(p[k]);
                    double r;
                    if (exponent_) {
                        const double lo = bound_.src_min[std::size_t(b)], hi = bound_.src_max[std::size_t(b)];
                        double t = hi == lo ? 0.0 : (v - lo) / (hi - lo);
                        t = t < 0 ? 0 : t > 1 ? 1 : t;
                        r = dst_min_ + (dst_max_ - dst_min_) * std::pow(t, *exponent_);
                    } else {
                        r = v * ratio[b] + off[b];
                    }
                    // GDAL's VRT works in float32 for these formats (a
                    // value a float's rounding from .5 rounds as GDAL's)
                    q[k] = gdal_sample<O>(wide ? r : double(float(r)));
                }
        }
    }

    Format in_format_ = Format::u8;
    bool gdal_ = false, log_ = false, needs_ = true, ready_ = false;
    double exp_ = 0.25, dst_min_ = 0, dst_max_ = 255;
    std::optional<double> src_min_, src_max_, exponent_;
    std::vector<double> percentiles_;
    Bound bound_;
};

}  // namespace

OpSpec scale_op_spec() {
    return {
        "scale",
        "contrast stretch by the image's range: to u8 as libvips scale (log, exp), or to a range as GDAL -scale "
        "(src/dst min/max, percentiles, exponent, format); statistics pre-pass; halo: none",
        1,
        1,
        {{.name = "log", .type = ParamType::boolean, .doc = "libvips: log scale", .default_value = false},
         {.name = "exp",
          .type = ParamType::number,
          .doc = "libvips: the exponent of the log scale",
          .default_value = 0.25,
          .min = 0.00001,
          .max = 10000.0},
         {.name = "src_min",
          .type = ParamType::number,
          .default_text = "the band's min",
          .doc = "GDAL: the source value that maps to dst_min"},
         {.name = "src_max",
          .type = ParamType::number,
          .default_text = "the band's max",
          .doc = "GDAL: the source value that maps to dst_max"},
         {.name = "percentiles",
          .type = ParamType::numbers,
          .default_text = "none",
          .doc = "GDAL: src_min and src_max at these percentiles of each band, e.g. [2, 98] (exact for u8, u16, i16; "
                 "other formats within 1/65536 of the range)"},
         {.name = "dst_min", .type = ParamType::number, .default_text = "0", .doc = "GDAL: the output's low end"},
         {.name = "dst_max", .type = ParamType::number, .default_text = "255", .doc = "GDAL: the output's high end"},
         {.name = "exponent",
          .type = ParamType::number,
          .default_text = "none (linear)",
          .doc = "GDAL: out = dst_min + (dst_max - dst_min) * t^exponent, t the clamped source in [0, 1]"},
         {.name = "format",
          .type = ParamType::string,
          .default_text = "u8",
          .doc = "GDAL: the output format",
          .choices = format_spellings()}},
        false,
        &make_op<ScaleOp>,
        false,
        "statistics",
        "0"};
}

}  // namespace tessera
