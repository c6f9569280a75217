// colourspace: converts between colour spaces as libvips 8.14's
// vips_colourspace does, along its chain
//   srgb / rgb16 / b-w / grey16  <->  scrgb  <->  xyz  <->  lab  <->  labs
// with libvips's formulas, constants and tables (ops/colour.hpp says each
// step). Every pair of those is offered; the source space is the input
// header's (sRGB, RGB16, B_W, GREY16) unless `source` names it (tessera's
// headers carry the float and Lab spaces as multiband). The output is the
// target's storage: srgb and b-w u8, rgb16 and grey16 u16, scrgb, xyz and
// lab f32, labs i16; bands past the colour ones (alpha) are carried
// (scaled by 256 between 8- and 16-bit spaces). Against vips colourspace
// 8.14 (tests/ops_colour_test.cpp): every pair tested (from sRGB and
// GREY16 to each space, from LAB, XYZ, scRGB and LABS to the others) bit
// for bit, but GREY16 -> sRGB within 1 level (libvips shortcuts 16 to 8
// bits there; this goes through scRGB).
//
// Demand halo: none (pixel by pixel).
#include <string>

#include "colour.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

class ColourspaceOp final : public Op {
public:
    ColourspaceOp(const Params& p, std::span<const ImageInfo> in) {
        to_ = Space(choice_index(kSpaceNames, p.string("space")));
        if (p.has("source")) {
            from_ = Space(choice_index(kSpaceNames, p.string("source")));
        } else if (auto s = space_of(in[0].interpretation)) {
            from_ = *s;
        } else {
            throw ParamError("source", "the input's header names no colour space (" +
                                           std::string(interpretation_name(in[0].interpretation)) +
                                           "); say which it is in, e.g. \"source\": \"lab\"");
        }
        const int nf = space_bands(from_);
        if (in[0].bands < nf)
            throw ParamError("source", "a " + kSpaceNames[std::size_t(from_)] + " image has at least " +
                                           std::to_string(nf) + " bands; the input has " +
                                           std::to_string(in[0].bands));
        info_ = in[0];
        info_.bands = space_bands(to_) + (in[0].bands - nf);
        info_.format = space_format(to_);
        info_.interpretation = space_interpretation(to_);
        if (info_.geo) info_.geo->nodata.clear();
    }

    // Case analysis for an output rect r: one case, the same input rect,
    // each pixel converted along the chain.
    void demand(const Rect& r, Demand& need) const override { need.push_back({0, r, std::nullopt}); }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        convert_colour(in[0].tile, from_, out, to_);
    }

private:
    Space from_ = Space::srgb, to_ = Space::lab;
};

}  // namespace

OpSpec colourspace_op_spec() {
    return {"colourspace",
            "converts between srgb, rgb16, b-w, grey16, scrgb, xyz, lab and labs with libvips colourspace's "
            "formulas; halo: none",
            1,
            1,
            {{.name = "space",
              .type = ParamType::string,
              .required = true,
              .doc = "the target space (srgb, b-w: u8; rgb16, grey16: u16; scrgb, xyz, lab: f32; labs: i16)",
              .choices = kSpaceNames},
             {.name = "source",
              .type = ParamType::string,
              .default_text = "the input header's",
              .doc = "the input's space (needed for scrgb, xyz, lab, labs: headers carry those as multiband)",
              .choices = kSpaceNames}},
            false,
            &make_op<ColourspaceOp>,
            false,
            "colour",
            "0"};
}

}  // namespace tessera
