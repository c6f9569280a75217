// flatten: the last band taken as alpha and the image composed over a
// background, alpha dropped (libvips flatten): out = x a / m + bg (m - a) /
// m, m the alpha of opaque (max_alpha: 65535 for 16-bit RGB and grey, else
// 255, as libvips picks it from the interpretation), computed in double
// and stored in the input format (integers truncated toward zero, as
// libvips's C conversion; a background outside the format is clipped).
// Demand halo: none.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops_list.hpp"

namespace tessera {
namespace {

template <class T>
T stored(double v) {
    if constexpr (std::is_floating_point_v<T>)
        return T(v);
    else
        return T(
            std::clamp(std::trunc(v), double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max())));
}

class FlattenOp final : public Op {
public:
    FlattenOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        if (src.bands < 2)
            throw Error("flatten: the input has " + std::to_string(src.bands) +
                        " band; flatten takes its last band as alpha, so it needs at least 2");
        const bool sixteen =
            src.interpretation == Interpretation::grey16 || src.interpretation == Interpretation::rgb16;
        max_alpha_ = p.has("max_alpha") ? p.number("max_alpha") : sixteen ? 65535 : 255;
        if (!(max_alpha_ > 0)) throw ParamError("max_alpha", "must be above 0 (the alpha of an opaque pixel)");
        background_ = p.numbers("background", {0.0});
        if (background_.size() != 1 && int(background_.size()) != src.bands - 1)
            throw ParamError("background", "has " + std::to_string(background_.size()) + " numbers for " +
                                               std::to_string(src.bands - 1) + " colour bands; give 1 or " +
                                               std::to_string(src.bands - 1));
        if (background_.size() == 1) background_.assign(std::size_t(src.bands - 1), background_[0]);
        info_ = src;
        info_.bands = src.bands - 1;
        if (info_.geo) {
            info_.geo->alpha_band = -1;
            if (!info_.geo->nodata.empty()) info_.geo->nodata.resize(std::size_t(info_.bands));
        }
    }

    // Case analysis for an output rect r: one case, the same input rect,
    // each pixel composed over the background.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const ConstTile& src = in[0].tile;
        const int nb = out.bands, ib = src.bands;
        dispatch_format(out.format, [&](auto zero) {
            using T = decltype(zero);
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                const T* p = reinterpret_cast<const T*>(src.at(out.rect.x, y));
                T* q = out.row<T>(y);
                for (int x = 0; x < out.rect.w; ++x, p += ib, q += nb) {
                    const double a = double(p[nb]), na = max_alpha_ - a;
                    for (int b = 0; b < nb; ++b)
                        q[b] = stored<T>(double(p[b]) * a / max_alpha_ + background_[std::size_t(b)] * na / max_alpha_);
                }
            }
        });
    }

private:
    double max_alpha_ = 255;
    std::vector<double> background_;
};

}  // namespace

OpSpec flatten_op_spec() {
    return {"flatten",
            "the image over a background by its last band as alpha, alpha dropped (libvips flatten); halo: none",
            1,
            1,
            {{.name = "background",
              .type = ParamType::numbers,
              .doc = "one number, or one per colour band",
              .default_value = std::vector<double>{0.0}},
             {.name = "max_alpha",
              .type = ParamType::number,
              .default_text = "65535 for 16-bit RGB/grey, else 255",
              .doc = "the alpha of an opaque pixel"}},
            false,
            &make_op<FlattenOp>,
            false,
            "bands",
            "0"};
}

}  // namespace tessera
