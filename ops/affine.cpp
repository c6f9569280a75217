// affine: the image through a 2x2 matrix and offsets (libvips 8.14 affine):
// X = a (x + idx) + b (y + idy) + odx, Y = c (x + idx) + d (y + idy) + ody,
// (x, y) input and (X, Y) output coordinates, pixel k's sample at k (the
// corner convention of vips_affine; libvips resize adds idx = idy = 0.5 for
// centre sampling). The output is oarea (left, top, width, height in the
// transformed space), by default the bounding box of the transformed input
// rect [0, w] x [0, h] (matrix only, each edge rounded to nearest, as
// vips__transform_set_area). Every output pixel maps back through the
// inverse and is interpolated: nearest (the sample at floor), bilinear, or
// bicubic (Catmull-Rom), as libvips's interpolators of those names; libvips
// has no Lanczos interpolator (its lanczos3 is a reduce kernel: resize).
// Samples outside the input are the background (extend background, the
// default) or the edge (extend copy); a pixel whose position's floor lies
// outside [-1, size) on either axis is the background, as libvips clips
// (tests/ops_affine_test.cpp checks both against vips affine).
// The interpolators follow libvips's arithmetic (ops/kernels.hpp): u8
// bicubic is bit for bit, bilinear within a level; each pixel's position
// is computed on its own where libvips steps it along a row, so at a
// position that is a whole number libvips may take the previous sample
// (tests/ops_affine_test.cpp states each tolerance).
//
// Demand halo: the input rect the output tile's corners map to, plus the
// interpolator's taps: nearest 0, bilinear 1 (right/below), bicubic 1
// before and 2 after, and one pixel of slack each side for the rounding of
// the corners' positions.
#include <cmath>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class AffineOp final : public Op {
public:
    AffineOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        const std::vector<double> mt = p.numbers("matrix", {});
        if (mt.size() != 4)
            throw ParamError("matrix", "needs 4 numbers [a, b, c, d], has " + std::to_string(mt.size()));
        for (double v : mt)
            if (!std::isfinite(v)) throw ParamError("matrix", "has a number that is not finite");
        const double a = mt[0], b = mt[1], c = mt[2], d = mt[3];
        const double det = a * d - b * c;
        if (!(std::fabs(det) > 1e-12))
            throw ParamError("matrix", "is singular (a d - b c = " + std::to_string(det) +
                                           "): it flattens the image; give an invertible matrix");
        ip_ = Interpolator(choice_index(kInterpolatorNames, p.string("interpolate")));
        copy_edges_ = p.string("extend") == "copy";
        background_ = p.numbers("background", {0.0});
        if (background_.size() != 1 && background_.size() != std::size_t(src.bands))
            throw ParamError("background", "has " + std::to_string(background_.size()) + " numbers for " +
                                               std::to_string(src.bands) + " bands; give 1 or " +
                                               std::to_string(src.bands));
        const double odx = p.number("odx"), ody = p.number("ody"), idx = p.number("idx"), idy = p.number("idy");
        Rect area;
        if (p.has("oarea")) {
            const std::vector<std::int64_t> o = p.integers("oarea");
            if (o.size() != 4 || o[2] < 1 || o[3] < 1 || o[2] > kMaxDimension || o[3] > kMaxDimension)
                throw ParamError("oarea", "needs [left, top, width, height] with width and height in [1, " +
                                              std::to_string(kMaxDimension) + "]");
            area = {int(o[0]), int(o[1]), int(o[2]), int(o[3])};
        } else {
            // vips__transform_set_area: the matrix applied to the input's
            // corners, rounded (VIPS_ROUND_INT: half away from zero)
            double l = 1e300, r = -1e300, t = 1e300, bt = -1e300;
            for (double x : {0.0, double(src.width)})
                for (double y : {0.0, double(src.height)}) {
                    const double X = a * x + b * y, Y = c * x + d * y;
                    l = std::min(l, X), r = std::max(r, X), t = std::min(t, Y), bt = std::max(bt, Y);
                }
            auto rnd = [](double v) { return v > 0 ? std::floor(v + 0.5) : std::ceil(v - 0.5); };
            const double w = rnd(r - l), h = rnd(bt - t);
            if (w < 1 || h < 1 || w > kMaxDimension || h > kMaxDimension || std::fabs(l) > 1e9 || std::fabs(t) > 1e9)
                throw ParamError("matrix", "maps the " + std::to_string(src.width) + "x" + std::to_string(src.height) +
                                               " input to " + std::to_string(w) + "x" + std::to_string(h) +
                                               " pixels; the output must be 1 to " + std::to_string(kMaxDimension) +
                                               " pixels a side (or give oarea)");
            area = {int(rnd(l)), int(rnd(t)), int(w), int(h)};
        }
        const double ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
        const double ox = area.x - odx, oy = area.y - ody;
        map_ = {ia, ib, ia * ox + ib * oy - idx, ic, id, ic * ox + id * oy - idy};
        info_ = src;
        info_.width = area.w;
        info_.height = area.h;
        if (src.geo) info_.geo = mapped_geo(*src.geo, map_);
        in_rect_ = src.rect();
    }

    // Case analysis for an output rect r:
    //  1. r maps to no input sample the interpolator would read: no need,
    //     compute fills the background;
    //  2. otherwise: the input rect r's corner pixels map to, grown by the
    //     interpolator's taps (affine_support), pulled for compute.
    void demand(const Rect& r, Demand& need) const override {
        const Rect s = affine_support(r, map_, ip_, in_rect_);
        if (!s.empty()) need.push_back({0, s, std::nullopt});  // case 2
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (in.empty()) {  // case 1
            fill_pixels(out, background_.data(), int(background_.size()));
            return;
        }
        affine_sample(in[0].tile, in_rect_, map_, ip_, copy_edges_, background_, out);
    }

private:
    InverseAffine map_{};
    Interpolator ip_ = Interpolator::bilinear;
    bool copy_edges_ = false;
    std::vector<double> background_;
    Rect in_rect_;
};

}  // namespace

OpSpec affine_op_spec() {
    return {"affine",
            "the image through a 2x2 matrix and offsets, interpolated (as libvips affine; rotate for exact right "
            "angles); halo: the mapped rect + 0 (nearest), 1 (bilinear) or 2 (bicubic) px",
            1,
            1,
            {{.name = "matrix",
              .type = ParamType::numbers,
              .required = true,
              .doc = "[a, b, c, d]: X = a x + b y + odx, Y = c x + d y + ody"},
             {.name = "interpolate",
              .type = ParamType::string,
              .doc = "how output pixels sample the input",
              .default_value = std::string("bilinear"),
              .choices = kInterpolatorNames},
             {.name = "odx", .type = ParamType::number, .doc = "output offset, x", .default_value = 0.0},
             {.name = "ody", .type = ParamType::number, .doc = "output offset, y", .default_value = 0.0},
             {.name = "idx",
              .type = ParamType::number,
              .doc = "input offset, x (0.5: centre sampling)",
              .default_value = 0.0},
             {.name = "idy", .type = ParamType::number, .doc = "input offset, y", .default_value = 0.0},
             {.name = "oarea",
              .type = ParamType::integers,
              .default_text = "the transformed input's box",
              .doc = "[left, top, width, height] of the transformed space to output"},
             {.name = "extend",
              .type = ParamType::string,
              .doc = "samples outside the input: background or the edge",
              .default_value = std::string("background"),
              .choices = {"background", "copy"}},
             {.name = "background",
              .type = ParamType::numbers,
              .doc = "the background: one number, or one per band",
              .default_value = std::vector<double>{0.0}}},
            false,
            &make_op<AffineOp>,
            false,
            "geometry",
            "the mapped rect + 0, 1 or 2 (nearest, bilinear, bicubic)"};
}

}  // namespace tessera
