// rotate: a right-angle rotation, clockwise, exact (libvips rot d90, d180,
// d270): 90 and 270 swap width and height. Any other angle is an affine
// (ops/affine.cpp) with the interpolation that implies. A georeference is
// rotated with the pixels (its transform gains rotation terms, as GDAL
// allows). Demand halo: none.
#include <string>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class RotateOp final : public Op {
public:
    RotateOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        angle_ = int(p.integer("angle"));
        if (angle_ % 90 != 0)
            throw ParamError("angle", std::to_string(angle_) +
                                          " is not a right angle; use 0, 90, 180 or 270 (another angle: the affine "
                                          "op with matrix [cos, -sin, sin, cos])");
        const double w = src.width, h = src.height;
        info_ = src;
        if (angle_ == 90 || angle_ == 270) std::swap(info_.width, info_.height);
        // output pixel (X, Y) -> input pixel, and the same for pixel
        // corners (a corner at X is the pixel at X - 1 seen from the far side)
        InverseAffine corners{};
        switch (angle_) {
            case 0: map_ = corners = {1, 0, 0, 0, 1, 0}; break;
            case 90: map_ = {0, 1, 0, -1, 0, h - 1}, corners = {0, 1, 0, -1, 0, h}; break;
            case 180: map_ = {-1, 0, w - 1, 0, -1, h - 1}, corners = {-1, 0, w, 0, -1, h}; break;
            default: map_ = {0, -1, w - 1, 1, 0, 0}, corners = {0, -1, w, 1, 0, 0}; break;
        }
        if (src.geo) info_.geo = mapped_geo(*src.geo, corners);
    }

    // Case analysis for an output rect r:
    //  1. angle 0: the input itself, a placed need (no copy);
    //  2. otherwise: the input rect r maps onto (for 90 and 270 with the
    //     axes swapped), copied pixel by pixel in compute.
    void demand(const Rect& r, Demand& need) const override {
        if (angle_ == 0) {
            need.push_back({0, r, r.origin()});  // case 1
            return;
        }
        // case 2: the map is exact and affine, so r's corner pixels bound it
        const auto at = [&](int X, int Y) {
            return Point{int(map_[0] * X + map_[1] * Y + map_[2]), int(map_[3] * X + map_[4] * Y + map_[5])};
        };
        const Point a = at(r.x, r.y), b = at(r.right() - 1, r.bottom() - 1);
        const int x0 = std::min(a.x, b.x), y0 = std::min(a.y, b.y);
        need.push_back({0, {x0, y0, std::max(a.x, b.x) + 1 - x0, std::max(a.y, b.y) + 1 - y0}, std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (in.empty()) return;  // case 1
        remap_pixels(in[0].tile, map_, out);
    }

private:
    int angle_ = 0;
    InverseAffine map_{};
};

}  // namespace

OpSpec rotate_op_spec() {
    return {"rotate",
            "rotates by a right angle, clockwise, exactly (libvips rot); other angles through affine; halo: none",
            1,
            1,
            {{.name = "angle",
              .type = ParamType::integer,
              .required = true,
              .doc = "degrees clockwise: 0, 90, 180 or 270",
              .min = 0,
              .max = 270}},
            false,
            &make_op<RotateOp>,
            false,
            "geometry",
            "0"};
}

}  // namespace tessera
