// black: a constant canvas (libvips black, with an optional fill value).
#include <string>

#include "ops_list.hpp"

namespace tessera {
namespace {

class BlackOp final : public Op {
public:
    BlackOp(const Params& p, std::span<const ImageInfo>) {
        info_.width = int(p.integer("width"));
        info_.height = int(p.integer("height"));
        info_.bands = int(p.integer("bands"));
        info_.format = *parse_format(p.string("format"));  // one of the spec's choices
        info_.interpretation = default_interpretation(info_.bands, info_.format);
        value_ = p.numbers("value", {});
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
    return {"black",
            "a constant canvas of the given size (zero unless value is set)",
            0,
            0,
            {{.name = "width",
              .type = ParamType::integer,
              .required = true,
              .doc = "width in pixels",
              .min = 1,
              .max = kMaxDimension},
             {.name = "height",
              .type = ParamType::integer,
              .required = true,
              .doc = "height in pixels",
              .min = 1,
              .max = kMaxDimension},
             {.name = "bands",
              .type = ParamType::integer,
              .doc = "number of bands",
              .default_value = std::int64_t(1),
              .min = 1,
              .max = kMaxBands},
             {.name = "format",
              .type = ParamType::string,
              .doc = "pixel format: u8 u16 i16 u32 i32 f32 f64",
              .default_value = std::string("u8"),
              .choices = format_spellings()},
             {.name = "value",
              .type = ParamType::numbers,
              .doc = "fill value: one for all bands or one per band",
              .default_value = std::vector<double>{0.0}}},
            false,
            &make_op<BlackOp>,
            false,
            "source",
            "0"};
}

}  // namespace tessera
