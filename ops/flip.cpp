// flip: the image mirrored left-right or top-bottom (libvips flip,
// direction horizontal or vertical); pixel for pixel, any format. A
// georeference is mirrored with it (the same ground, the pixel axes
// reversed). Demand halo: none.
#include <string>

#include "kernels.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class FlipOp final : public Op {
public:
    FlipOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        horizontal_ = p.string("direction") == "horizontal";
        info_ = src;
        const int w = src.width, h = src.height;
        // pixel map (X, Y) -> input pixel, and the same for pixel corners
        map_ =
            horizontal_ ? InverseAffine{-1, 0, double(w - 1), 0, 1, 0} : InverseAffine{1, 0, 0, 0, -1, double(h - 1)};
        if (src.geo)
            info_.geo = mapped_geo(*src.geo, horizontal_ ? InverseAffine{-1, 0, double(w), 0, 1, 0}
                                                         : InverseAffine{1, 0, 0, 0, -1, double(h)});
    }

    // Case analysis for an output rect r: one case; r's mirror image in the
    // input (columns [w - r.right(), w - r.x) for horizontal, rows likewise
    // for vertical), reversed in compute. A vertical flip could be placed
    // row by row, but a need places one rect, so compute copies the rows.
    void demand(const Rect& r, Demand& need) const override {
        const Rect m =
            horizontal_ ? Rect{info_.width - r.right(), r.y, r.w, r.h} : Rect{r.x, info_.height - r.bottom(), r.w, r.h};
        need.push_back({0, m, std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override { remap_pixels(in[0].tile, map_, out); }

private:
    bool horizontal_ = true;
    InverseAffine map_{};
};

}  // namespace

OpSpec flip_op_spec() {
    return {"flip",
            "mirrors the image left-right or top-bottom (libvips flip); halo: none",
            1,
            1,
            {{.name = "direction",
              .type = ParamType::string,
              .doc = "horizontal: left-right; vertical: top-bottom",
              .default_value = std::string("horizontal"),
              .choices = {"horizontal", "vertical"}}},
            false,
            &make_op<FlipOp>,
            false,
            "geometry",
            "0"};
}

}  // namespace tessera
