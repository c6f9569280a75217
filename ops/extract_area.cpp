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
        const int left = int(p.integer("left")), top = int(p.integer("top"));
        const int width = int(p.integer("width")), height = int(p.integer("height"));
        area_ = {left, top, width, height};
        if (!src.rect().contains(area_)) {
            // Name the parameter that pushes the area out, so the message
            // points at the number to change.
            Rect fit = area_.intersect(src.rect());
            std::string key = left >= src.width   ? "left"
                              : top >= src.height ? "top"
                              : fit.w < width     ? "width"
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
            "a width x height rectangle cut from the input at (left, top); it must lie inside the input",
            1,
            1,
            {{.name = "left",
              .type = ParamType::integer,
              .required = true,
              .doc = "column of the area's left edge in the input",
              .min = 0,
              .max = kMaxDimension},
             {.name = "top",
              .type = ParamType::integer,
              .required = true,
              .doc = "row of the area's top edge in the input",
              .min = 0,
              .max = kMaxDimension},
             {.name = "width",
              .type = ParamType::integer,
              .required = true,
              .doc = "width of the area in pixels",
              .min = 1,
              .max = kMaxDimension},
             {.name = "height",
              .type = ParamType::integer,
              .required = true,
              .doc = "height of the area in pixels",
              .min = 1,
              .max = kMaxDimension}},
            false,
            &make_op<ExtractAreaOp>,
            false,
            "geometry",
            "0"};
}

}  // namespace tessera
