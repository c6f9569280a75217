// compare: a relational test per sample, 255 where it holds and 0 where it
// does not, u8 (libvips relational and relational_const): a op b for two
// images, or a op c with c one constant or one per band. op is equal,
// notequal, less, lesseq, more or moreeq (libvips's names). Demand halo:
// none.
//
// As libvips: two images are made alike in bands (one band is repeated to
// the other's count) and must have the same size; a one-band image against
// n constants gives n bands. The test is done on doubles, which hold every
// value of every format exactly: it equals libvips's comparison of two
// images in their common format (vips_format_common), and libvips 8.14's
// comparison with constants as doubles (a u8 120 is less than 120.5; later
// libvips versions convert the constants to the image's format first).
#include <string>
#include <vector>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

enum class Relation { equal, notequal, less, lesseq, more, moreeq };
const std::vector<std::string> kRelations = {"equal", "notequal", "less", "lesseq", "more", "moreeq"};

bool holds(Relation r, double a, double b) {
    switch (r) {
        case Relation::equal: return a == b;
        case Relation::notequal: return a != b;
        case Relation::less: return a < b;
        case Relation::lesseq: return a <= b;
        case Relation::more: return a > b;
        case Relation::moreeq: return a >= b;
    }
    return false;
}

template <class T>
double sample(const ConstTile& t, int x, int y, int band) {
    return double(reinterpret_cast<const T*>(t.at(x, y))[band]);
}
using Sampler = double (*)(const ConstTile&, int, int, int);

Sampler sampler(Format f) {
    return dispatch_format(f, [](auto z) -> Sampler { return &sample<decltype(z)>; });
}

class CompareOp final : public Op {
public:
    CompareOp(const Params& p, std::span<const ImageInfo> in) {
        rel_ = Relation(choice_index(kRelations, p.string("op")));
        if (p.has("c")) {
            if (in.size() != 1)
                throw ParamError("c", "compares one image with constants; compare has " + std::to_string(in.size()) +
                                          " inputs: give one input with c, or two without");
            c_ = p.numbers("c", {});
            if (c_.empty()) throw ParamError("c", "is empty; give one number, or one per band");
            if (c_.size() != 1 && in[0].bands != 1 && c_.size() != std::size_t(in[0].bands))
                throw ParamError("c", "has " + std::to_string(c_.size()) + " numbers for an image of " +
                                          std::to_string(in[0].bands) + " bands; give 1 or " +
                                          std::to_string(in[0].bands));
            bands_a_ = in[0].bands;
            info_ = in[0];
            info_.bands = std::max<int>(in[0].bands, int(c_.size()));
        } else {
            if (in.size() != 2) throw ParamError("c", "is missing: give a second input image, or the constant c");
            if (in[1].width != in[0].width || in[1].height != in[0].height)
                throw Error("compare: input 1 is " + std::to_string(in[1].width) + "x" + std::to_string(in[1].height) +
                            " and input 0 " + std::to_string(in[0].width) + "x" + std::to_string(in[0].height) +
                            "; give images of one size");
            info_ = in[0];
            info_.bands = arith::alike_bands({{"input 0", in[0].bands}, {"input 1", in[1].bands}});
            bands_a_ = in[0].bands;
            bands_b_ = in[1].bands;
            b_ = sampler(in[1].format);
        }
        a_ = sampler(in[0].format);
        info_.format = Format::u8;
        info_.interpretation = default_interpretation(info_.bands, Format::u8);
        if (info_.geo) {
            info_.geo->nodata.clear();
            info_.geo->alpha_band = -1;
        }
        images_ = int(in.size());
    }

    // Case analysis for an output rect r: one case, the same rect of each
    // input, tested per sample.
    void demand(const Rect& r, Demand& need) const override {
        for (int i = 0; i < images_; ++i) need.push_back({i, r, std::nullopt});
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const ConstTile& a = in[0].tile;
        for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
            std::uint8_t* q = out.row<std::uint8_t>(y);
            for (int x = out.rect.x; x < out.rect.right(); ++x)
                for (int k = 0; k < out.bands; ++k) {
                    const double va = a_(a, x, y, bands_a_ == 1 ? 0 : k);
                    const double vb = images_ == 2 ? b_(in[1].tile, x, y, bands_b_ == 1 ? 0 : k)
                                                   : c_[std::min(std::size_t(k), c_.size() - 1)];
                    *q++ = holds(rel_, va, vb) ? 255 : 0;
                }
        }
    }

private:
    Relation rel_ = Relation::equal;
    std::vector<double> c_;
    int images_ = 1, bands_a_ = 1, bands_b_ = 1;
    Sampler a_ = nullptr, b_ = nullptr;
};

}  // namespace

OpSpec compare_op_spec() {
    return {"compare",
            "255 where a op b (or a op c) holds, else 0, u8 (libvips relational: equal, notequal, less, lesseq, more, "
            "moreeq); halo: none",
            1,
            2,
            {{.name = "op", .type = ParamType::string, .required = true, .doc = "the relation", .choices = kRelations},
             {.name = "c",
              .type = ParamType::numbers,
              .default_text = "none (compare with input 1)",
              .doc = "a constant, or one per band, to compare input 0 with"}},
            false,
            &make_op<CompareOp>,
            false,
            "arithmetic",
            "0"};
}

}  // namespace tessera
