// normalise: maps the image's range onto [min, max] (default [0, 1]) by its
// own min and max over every band, as OpenCV's cv::normalize with
// NORM_MINMAX over a whole (multi-channel) array:
//   out = (x - lo) * (max - min) / (hi - lo) + min,   lo, hi the image's
// computed in double; lo == hi gives min. Output f32 unless `format` names
// another; an integer format rounds to nearest, halves to even (OpenCV's
// saturate_cast through cvRound), and saturates. The image's min and max
// come from the evaluator's statistics pre-pass. Demand halo: none.
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "ops_list.hpp"
#include "tessera/core/error.hpp"

namespace tessera {
namespace {

template <class O>
O cv_saturate(double v) {
    if constexpr (std::is_floating_point_v<O>) {
        return O(v);
    } else {
        if (std::isnan(v)) return O(0);
        const double r = std::nearbyint(v);  // the default rounding mode: to nearest, halves to even
        if (r <= double(std::numeric_limits<O>::lowest())) return std::numeric_limits<O>::lowest();
        if (r >= double(std::numeric_limits<O>::max())) return std::numeric_limits<O>::max();
        return O(r);
    }
}

class NormaliseOp final : public Op {
public:
    NormaliseOp(const Params& p, std::span<const ImageInfo> in) {
        in_format_ = in[0].format;
        min_ = p.number("min", 0.0);
        max_ = p.number("max", 1.0);
        info_ = in[0];
        info_.format = p.has("format") ? *parse_format(p.string("format")) : Format::f32;
        if (info_.geo) info_.geo->nodata.clear();
        if (info_.format == Format::u8 && in[0].interpretation == Interpretation::grey16)
            info_.interpretation = Interpretation::bw;
        if (info_.format == Format::u8 && in[0].interpretation == Interpretation::rgb16)
            info_.interpretation = Interpretation::srgb;
    }

    std::vector<StatisticRequest> statistics() const override { return {{0, false}}; }

    std::shared_ptr<const Op> with_statistics(std::span<const Statistics> s) const override {
        auto c = std::make_shared<NormaliseOp>(*this);
        const double lo = s[0].all.min, hi = s[0].all.max;
        c->ratio_ = hi == lo ? 0.0 : (c->max_ - c->min_) / (hi - lo);
        c->offset_ = c->min_ - lo * c->ratio_;
        c->ready_ = true;
        return c;
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, computed per sample.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (!ready_) throw Error("internal: normalise was computed before its statistics pre-pass ran");
        dispatch_format(in_format_, [&](auto i) {
            dispatch_format(info_.format, [&](auto o) {
                using I = decltype(i);
                using O = decltype(o);
                const std::size_t n = std::size_t(out.rect.w) * out.bands;
                for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                    const I* p = reinterpret_cast<const I*>(in[0].tile.at(out.rect.x, y));
                    O* q = out.row<O>(y);
                    for (std::size_t k = 0; k < n; ++k) q[k] = cv_saturate<O>(double(p[k]) * ratio_ + offset_);
                }
            });
        });
    }

private:
    Format in_format_ = Format::u8;
    double min_ = 0, max_ = 1, ratio_ = 0, offset_ = 0;
    bool ready_ = false;
};

}  // namespace

OpSpec normalise_op_spec() {
    return {"normalise",
            "maps the image's min..max (over every band) onto [min, max] as OpenCV normalize NORM_MINMAX; f32 "
            "unless format; statistics pre-pass; halo: none",
            1,
            1,
            {{.name = "min", .type = ParamType::number, .doc = "the output's low end", .default_value = 0.0},
             {.name = "max", .type = ParamType::number, .doc = "the output's high end", .default_value = 1.0},
             {.name = "format",
              .type = ParamType::string,
              .default_text = "f32",
              .doc = "the output format",
              .choices = format_spellings()}},
            false,
            &make_op<NormaliseOp>,
            false,
            "statistics",
            "0"};
}

}  // namespace tessera
