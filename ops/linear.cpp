// linear: a * x + b per band (libvips linear), a and b one number for every
// band or one per band; a one-band image with n-element vectors becomes n
// bands (libvips's band-up). Demand halo: none.
//
// The output format and arithmetic are libvips 8.14's
// (arithmetic/linear.c), bit for bit:
//   - output f32 for every input but f64 (which gives f64); u8 with
//     "uchar": true;
//   - with a single a and b, the product is in the output type (float: a
//     and b rounded to float, x converted to float); with vectors, in
//     double (x converted to the output type first), stored as the output;
//   - uchar: float arithmetic for single constants, double for vectors,
//     clipped to [0, 255] and truncated toward zero (VIPS_CLIP then the C
//     conversion): 2.9 -> 2, -3 -> 0.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "ops_list.hpp"

namespace tessera {
namespace {

// The uchar rule: clip in the arithmetic's type, then truncate.
template <class V>
std::uint8_t clip_uchar(V t) {
    return std::uint8_t(t < V(0) ? V(0) : t > V(255) ? V(255) : t);
}

template <class I, class O>
void linear_kernel(const ConstTile& src, const Tile& dst, const std::vector<double>& a, const std::vector<double>& b,
                   bool single) {
    const int bands = dst.bands;
    const bool bandup = src.bands == 1 && bands > 1;
    for (int y = dst.rect.y; y < dst.rect.bottom(); ++y) {
        const I* p = reinterpret_cast<const I*>(src.at(dst.rect.x, y));
        O* q = dst.row<O>(y);
        for (int x = 0; x < dst.rect.w; ++x) {
            for (int k = 0; k < bands; ++k) {
                const I v = p[bandup ? x : std::size_t(x) * bands + k];
                if constexpr (std::is_same_v<O, std::uint8_t>) {
                    if (single) {
                        // float a1 = a[0], b1 = b[0]; float t = a1 * p + b1
                        using M = std::conditional_t<std::is_same_v<I, double>, double, float>;
                        const float a1 = float(a[0]), b1 = float(b[0]);
                        const float t = float(M(a1) * M(v) + M(b1));
                        q[std::size_t(x) * bands + k] = clip_uchar(t);
                    } else {
                        q[std::size_t(x) * bands + k] = clip_uchar(a[std::size_t(k)] * double(v) + b[std::size_t(k)]);
                    }
                } else if (single) {
                    const O a1 = O(a[0]), b1 = O(b[0]);
                    q[std::size_t(x) * bands + k] = a1 * O(v) + b1;
                } else {
                    q[std::size_t(x) * bands + k] = O(a[std::size_t(k)] * double(O(v)) + b[std::size_t(k)]);
                }
            }
        }
    }
}

using LinearKernel = void (*)(const ConstTile&, const Tile&, const std::vector<double>&, const std::vector<double>&,
                              bool);

class LinearOp final : public Op {
public:
    LinearOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        a_ = p.numbers("a", {1.0});
        b_ = p.numbers("b", {0.0});
        if (a_.empty()) throw ParamError("a", "a is empty; give one number, or one per band");
        if (b_.empty()) throw ParamError("b", "b is empty; give one number, or one per band");
        single_ = a_.size() == 1 && b_.size() == 1;
        const std::size_t n = std::max(a_.size(), b_.size());
        // libvips: a vector is 1 long or as long as the bands (or the image
        // is one band, which it then repeats)
        for (const char* key : {"a", "b"}) {
            const std::size_t len = std::string(key) == "a" ? a_.size() : b_.size();
            if (len != 1 && len != std::size_t(src.bands) && src.bands != 1)
                throw ParamError(key, "has " + std::to_string(len) + " numbers for an image of " +
                                          std::to_string(src.bands) + " bands; give 1 or " + std::to_string(src.bands));
        }
        if (a_.size() != 1 && b_.size() != 1 && a_.size() != b_.size())
            throw ParamError("b", "has " + std::to_string(b_.size()) + " numbers and a has " +
                                      std::to_string(a_.size()) + "; give the same number, or one");
        const int bands = std::max<int>(src.bands, int(n));
        // up-banded constants: element min(i, n - 1), as libvips
        auto up = [&](std::vector<double> v) {
            std::vector<double> o(static_cast<std::size_t>(bands));
            for (std::size_t i = 0; i < o.size(); ++i) o[i] = v[std::min(i, v.size() - 1)];
            return o;
        };
        a_ = up(a_);
        b_ = up(b_);
        info_ = src;
        info_.bands = bands;
        info_.format = p.boolean("uchar", false) ? Format::u8 : src.format == Format::f64 ? Format::f64 : Format::f32;
        info_.interpretation = bands == src.bands ? src.interpretation : default_interpretation(bands, info_.format);
        if (info_.format == Format::u8 && src.interpretation == Interpretation::grey16)
            info_.interpretation = Interpretation::bw;
        if (info_.format == Format::u8 && src.interpretation == Interpretation::rgb16)
            info_.interpretation = Interpretation::srgb;
        // a nodata value no longer marks the same pixels
        if (info_.geo) info_.geo->nodata.clear();
        kernel_ = dispatch_format(src.format, [&](auto i) {
            return dispatch_format(info_.format, [&](auto o) -> LinearKernel {
                using I = decltype(i);
                using O = decltype(o);
                if constexpr (std::is_same_v<O, std::uint8_t> || std::is_same_v<O, float> || std::is_same_v<O, double>)
                    return &linear_kernel<I, O>;
                else
                    return nullptr;
            });
        });
    }

    // Case analysis for an output rect r: one case, the same rect of the
    // input, pulled and computed per sample (the format changes, so it
    // cannot be placed).
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        kernel_(in[0].tile, out, a_, b_, single_);
    }

private:
    std::vector<double> a_, b_;
    bool single_ = true;
    LinearKernel kernel_ = nullptr;
};

}  // namespace

OpSpec linear_op_spec() {
    return {"linear",
            "a * x + b per band (libvips linear: float output, double for double input, u8 with uchar); halo: none",
            1,
            1,
            {{.name = "a",
              .type = ParamType::numbers,
              .doc = "multiply by: one number, or one per band",
              .default_value = std::vector<double>{1.0}},
             {.name = "b",
              .type = ParamType::numbers,
              .doc = "then add: one number, or one per band",
              .default_value = std::vector<double>{0.0}},
             {.name = "uchar",
              .type = ParamType::boolean,
              .doc = "u8 output: clipped to [0, 255], truncated",
              .default_value = false}},
            false,
            &make_op<LinearOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
