// extract_area: a rectangle cut out of the input (libvips extract_area).
//
// The area must lie inside the input, as libvips requires ("bad extract
// area"): a crop that runs off the edge is almost always a mistake in the
// numbers, and embed is the op for growing an image. The output georeference
// is the input's, moved to the area's top-left pixel.
#include <string>

#include "ops_list.hpp"

namespace tessera {
namespace {

class ExtractAreaOp final : public Op {
public:
    ExtractAreaOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        int left = p.integer_in("left", 0, kMaxDimension);
        int top = p.integer_in("top", 0, kMaxDimension);
        int width = p.integer_in("width", 1, kMaxDimension);
        int height = p.integer_in("height", 1, kMaxDimension);
        area_ = {left, top, width, height};
        if (!src.rect().contains(area_)) {
            // Name the parameter that pushes the area out, so the message
            // points at the number to change.
            Rect fit = area_.intersect(src.rect());
            std::string key = left >= src.width ? "left" : top >= src.height ? "top"
                              : fit.w < width    ? "width"
                                                 : "height";
            throw ParamError(key, "the area [" + std::to_string(left) + ", " + std::to_string(top) + "] " +
                                      std::to_string(width) + "x" + std::to_string(height) +
                                      " does not fit inside the " + std::to_string(src.width) + "x" +
                                      std::to_string(src.height) +
                                      " input; make left + width <= input width and top + height <= input "
                                      "height (use embed to grow an image)");
        }
        info_ = src;
        info_.width = width;
        info_.height = height;
        if (src.geo) info_.geo = src.geo->shifted(left, top);
    }

    // Case analysis for an output rect r: there is only one case, because
    // the area lies wholly inside the input (checked at construction), so r
    // is always inside the sub image: one placed need, the input's pixels
    // moved by the area's origin, and no copy of our own.
    void demand(const Rect& r, Demand& need) const override {
        need.push_back({0, r.translate(area_.x, area_.y), r.origin()});
    }

    // Nothing to compute: the single placed need covers every pixel.
    void compute(const Tile&, std::span<const Pulled>) const override {}

private:
    Rect area_;  // in the input's frame
};

}  // namespace

OpSpec extract_area_op_spec() {
    return {"extract_area",
            "a width x height rectangle cut from the input at (left, top); it must lie inside the input", 1, 1,
            {{"left", ParamType::integer, true, "", "column of the area's left edge in the input (>= 0)"},
             {"top", ParamType::integer, true, "", "row of the area's top edge in the input (>= 0)"},
             {"width", ParamType::integer, true, "", "width of the area in pixels (>= 1)"},
             {"height", ParamType::integer, true, "", "height of the area in pixels (>= 1)"}},
            false, &make_op<ExtractAreaOp>};
}

}  // namespace tessera
