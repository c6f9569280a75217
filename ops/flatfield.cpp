// flatfield: flat-field (and dark-field) correction of an image,
//     out = (I - D) / (F gain)   per band,
// the correction a microscope's vignetting and camera offset need before
// tiles are stitched (BaSiC's profiles applied as ASHLAR's --ffp/--dfp do,
// and as BaSiC's own "corrected = (raw - darkfield) / flatfield"); `gain`
// (default 1) is the tile's own exposure, as measured from its overlaps
// with its neighbours (tools/flatfield.cpp, estimate_gains).
//
// Inputs: [image], [image, flat] or [image, flat, dark] (no flat: F = 1,
// no dark: D = 0). The flat and the dark are
// one-band images of the image's size, any format (in practice float: BaSiC
// writes float TIFFs with the flat normalised to mean 1); the one band
// corrects every band of the image. The output has the image's header:
// integer formats are rounded to nearest (half away from zero, libvips's
// VIPS_ROUND) and clipped to the format's range, as a libvips linear to an
// integer format does; float formats are unrounded.
//
// A flat sample that is not a finite number above 0 (a masked or dead
// pixel, a NaN in a fitted profile), or a dark sample that is not finite,
// has no defined correction: the output sample is 0 there, in every band,
// rather than an infinity or a wrapped integer. A NaN image sample gives 0
// in integer formats (as cast does) and stays NaN in float ones.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ops_list.hpp"
#include "tessera/core/error.hpp"

namespace tessera {
namespace {

// One output sample from the double result (see the file comment).
template <class O>
O to_sample(double v) {
    if constexpr (std::is_floating_point_v<O>) {
        return static_cast<O>(v);
    } else {
        if (std::isnan(v)) return O(0);
        if (v <= double(std::numeric_limits<O>::lowest())) return std::numeric_limits<O>::lowest();
        if (v >= double(std::numeric_limits<O>::max())) return std::numeric_limits<O>::max();
        // std::round without the libm call (a third of the op's time): in
        // range, so the truncation and the fraction are exact
        // (branch-free: the fraction is a coin toss for the predictor)
        std::int64_t t = static_cast<std::int64_t>(v);
        const double frac = v - double(t);
        t += std::int64_t(frac >= 0.5) - std::int64_t(frac <= -0.5);
        // clipping before rounding is the same as after: the bounds are integers
        return static_cast<O>(t);
    }
}

// Row y of a one-band tile (of any format) as doubles.
void row_as_double(const ConstTile& t, int x0, int y, int w, double* out) {
    dispatch_format(t.format, [&](auto s) {
        using S = decltype(s);
        const S* p = reinterpret_cast<const S*>(t.at(x0, y));
        for (int i = 0; i < w; ++i) out[i] = double(p[i]);
    });
}

class FlatfieldOp final : public Op {
public:
    FlatfieldOp(const Params& p, std::span<const ImageInfo> in) {
        info_ = in[0];
        gain_ = p.number("gain");  // the spec's range and default
        if (!(gain_ > 0))          // (a range's bounds are inclusive: "above 0" is said here)
            throw ParamError("gain", "must be a number above 0 (the tile's exposure relative to the others)");
        const char* names[] = {"image", "flat", "dark"};
        for (std::size_t k = 1; k < in.size(); ++k) {
            const std::string what = "input " + std::to_string(k) + " (the " + names[k] + ")";
            if (in[k].bands != 1)
                throw Error(what + " has " + std::to_string(in[k].bands) + " bands; a " + names[k] +
                            "-field is one band (extract the band, or average them)");
            if (in[k].width != in[0].width || in[k].height != in[0].height)
                throw Error(what + " is " + std::to_string(in[k].width) + "x" + std::to_string(in[k].height) +
                            ", the image (input 0) " + std::to_string(in[0].width) + "x" +
                            std::to_string(in[0].height) + "; a " + names[k] +
                            "-field must be the size of the tiles it corrects");
        }
        flat_ = in.size() >= 2;
        dark_ = in.size() == 3;
    }

    // The same rect of every input, pulled for compute to combine.
    void demand(const Rect& r, Demand& need) const override {
        need.push_back({0, r, std::nullopt});
        if (flat_) need.push_back({1, r, std::nullopt});
        if (dark_) need.push_back({2, r, std::nullopt});
    }

    // Case analysis, per pixel:
    //  1. flat sample (if any) finite and > 0 and dark sample (if any)
    //     finite: (I - D) / (F gain) in double, then rounded and clipped to
    //     the format (floats: converted only);
    //  2. otherwise: 0 in every band (no defined correction; see the file
    //     comment).
    // Pixel for pixel, so a tile's output depends only on that tile's inputs:
    // tile size and threads cannot change the bits.
    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const int w = out.rect.w;
        std::vector<double> flat(std::size_t(w), gain_), dark(std::size_t(w), 0.0);
        dispatch_format(out.format, [&](auto o) {
            using T = decltype(o);
            for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
                if (flat_) {
                    row_as_double(in[1].tile, out.rect.x, y, w, flat.data());
                    // the same product the reference forms; a bad F stays bad
                    if (gain_ != 1.0)
                        for (double& f : flat) f *= gain_;
                }
                if (dark_) row_as_double(in[2].tile, out.rect.x, y, w, dark.data());
                const T* p = reinterpret_cast<const T*>(in[0].tile.at(out.rect.x, y));
                T* q = out.row<T>(y);
                for (int i = 0; i < w; ++i) {
                    const double f = flat[std::size_t(i)], d = dark[std::size_t(i)];
                    const bool ok = std::isfinite(f) && f > 0 && std::isfinite(d);  // case 1, else case 2
                    for (int b = 0; b < out.bands; ++b, ++p, ++q) *q = ok ? to_sample<T>((double(*p) - d) / f) : T(0);
                }
            }
        });
    }

private:
    double gain_ = 1.0;
    bool flat_ = false;
    bool dark_ = false;
};

}  // namespace

OpSpec flatfield_op_spec() {
    return {"flatfield",
            "flat-field correction (I - D) / (F gain) per band; inputs image[, flat[, dark]] (one-band, the image's "
            "size); format kept (rounded, clipped); 0 where the flat is not > 0",
            1,
            3,
            {{.name = "gain",
              .type = ParamType::number,
              .doc = "the image's exposure relative to its neighbours': divided out too",
              .default_value = 1.0,
              .min = 0.0,
              .max = 1e6}},
            false,
            &make_op<FlatfieldOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
