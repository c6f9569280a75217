// black: a constant canvas (libvips black, with an optional fill value).
#include <string>

#include "ops_list.hpp"

namespace tessera {
namespace {

class BlackOp final : public Op {
public:
    BlackOp(const Params& p, std::span<const ImageInfo>) {
        info_.width = p.integer_in("width", 1, kMaxDimension);
        info_.height = p.integer_in("height", 1, kMaxDimension);
        info_.bands = p.integer_in("bands", 1, kMaxBands, 1);
        std::string f = p.string("format", "u8");
        auto fmt = parse_format(f);
        if (!fmt) throw ParamError("format", "unknown format '" + f + "'; use u8, u16, i16, u32, i32, f32 or f64");
        info_.format = *fmt;
        info_.interpretation = default_interpretation(info_.bands, info_.format);
        value_ = p.numbers("value", {0.0});
        if (value_.size() != 1 && int(value_.size()) != info_.bands)
            throw ParamError("value", "give one value, or one per band (" + std::to_string(info_.bands) + ")");
    }

    void demand(const Rect&, Demand&) const override {}  // a source: no inputs

    void compute(const Tile& out, std::span<const Pulled>) const override {
        fill_pixels(out, value_.data(), int(value_.size()));
    }

private:
    std::vector<double> value_;
};

}  // namespace

OpSpec black_op_spec() {
    return {"black", "a constant canvas of the given size (zero unless value is set)", 0, 0,
            {{"width", ParamType::integer, true, "", "width in pixels"},
             {"height", ParamType::integer, true, "", "height in pixels"},
             {"bands", ParamType::integer, false, "1", "number of bands"},
             {"format", ParamType::string, false, "u8", "pixel format: u8 u16 i16 u32 i32 f32 f64"},
             {"value", ParamType::numbers, false, "[0]", "fill value: one for all bands or one per band"}},
            false, &make_op<BlackOp>};
}

}  // namespace tessera
