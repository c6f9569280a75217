// composite: N layers blended in order, input 0 at the bottom, each later
// one over what is below it with a blend mode (libvips composite): over,
// multiply, screen or add. `mode` is one mode, or one per join (N - 1),
// separated by spaces or commas. Demand halo: none (a layer's demand is
// moved by its offset).
//
// As libvips 8.14 (conversion/composite.cpp) for inputs in one colour
// space: an input with 2 or 4 bands has alpha as its last band, one with 1
// or 3 is opaque; all have one colour-band count (grey or RGB: convert
// first, as libvips would by its compositing_space). Without `x` and `y`
// the layers have one size; with them (libvips's x and y arrays, one whole
// position per layer above the first) layer i's top-left is at (x[i - 1],
// y[i - 1]) of input 0, which sets the output's size, and a layer is
// transparent where it does not reach, as libvips embeds each one (its
// alpha 0 there) in input 0's size. (libvips copies input 0 unblended into
// any region of its own that no other layer reaches, so there a pixel of
// alpha 0 keeps its colour; here every pixel is blended, whatever the
// tiles, and such a pixel's colour is 0, as everywhere else.) Each layer is premultiplied inside, in
// double, with its colour c and alpha a scaled to [0, 1] by its max_alpha
// (65535 for 16-bit interpretations, else 255): A = c a. For a layer A over
// what is below, B (libvips's vips_composite_base_blend, whose PDF modes
// take the premultiplied values as they are):
//   over:     aR = aA + aB (1 - aA),  R = A + B (1 - aA)
//   add:      aR = min(1, aA + aB),   R = A + B
//   multiply, screen:
//             aR = aA + aB (1 - aA),
//             R = (1 - aB) A + (1 - aA) B + aA aB f,
//             f = A B (multiply), A + B - A B (screen).
// The result is unpremultiplied (R / aR, 0 where aR is 0) and scaled by the
// output's max_alpha (65535 if any input is 16-bit, else 255: libvips's
// compositing space RGB16/GREY16 or sRGB/B_W); the output always has
// alpha, in the inputs' common format (vips_format_common), integers
// clipped to the format and truncated as libvips writes them back. libvips
// computes 8-bit and 16-bit RGBA in float (its vector path) where this
// computes in double: results differ by at most 1 (where a float lands on
// the other side of an integer; tests/ops_masks_test.cpp).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "arith.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

enum class Mode { over, multiply, screen, add };
const std::vector<std::string> kModes = {"over", "multiply", "screen", "add"};

class CompositeOp final : public Op {
public:
    CompositeOp(const Params& p, std::span<const ImageInfo> in) {
        std::vector<std::string> words;
        std::string cur;
        for (char c : p.string("mode") + " ") {
            if (c == ',' || std::isspace(static_cast<unsigned char>(c))) {
                if (!cur.empty()) words.push_back(cur);
                cur.clear();
            } else {
                cur += c;
            }
        }
        const std::size_t joins = in.size() - 1;
        if (words.size() != 1 && words.size() != joins)
            throw ParamError("mode", "has " + std::to_string(words.size()) + " modes for " + std::to_string(in.size()) +
                                         " layers; give one, or " + std::to_string(joins) +
                                         " (one per layer above the first)");
        for (const std::string& w : words) {
            const std::size_t i = choice_index(kModes, w);
            if (i == kModes.size()) throw ParamError("mode", "'" + w + "' is no blend mode; use " + or_list(kModes));
            modes_.push_back(Mode(i));
        }
        while (modes_.size() < joins) modes_.push_back(modes_[0]);
        colour_ = in[0].bands <= 2 ? 1 : 3;
        const bool placed = p.has("x") || p.has("y");
        if (placed) {
            for (const char* key : {"x", "y"}) {
                if (!p.has(key))
                    throw ParamError(key, std::string("x and y go together: give both, one position per layer above "
                                                      "the first, or neither"));
                const std::vector<std::int64_t> v = p.integers(key);
                if (v.size() != joins)
                    throw ParamError(key, "has " + std::to_string(v.size()) + " positions for " +
                                              std::to_string(joins) + " layers above the first; give one for each");
                for (std::int64_t o : v)
                    if (o < -(std::int64_t(1) << 30) || o > (std::int64_t(1) << 30))
                        throw ParamError(key, "a position of " + std::to_string(o) + " is too far off; keep it within "
                                                  "+-2^30");
            }
        }
        const std::vector<std::int64_t> xs = placed ? p.integers("x") : std::vector<std::int64_t>(joins, 0);
        const std::vector<std::int64_t> ys = placed ? p.integers("y") : std::vector<std::int64_t>(joins, 0);
        Format fmt = in[0].format;
        bool sixteen = false;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const ImageInfo& im = in[i];
            if (im.bands < 1 || im.bands > 4 || (im.bands <= 2 ? 1 : 3) != colour_)
                throw Error("composite: input " + std::to_string(i) + " has " + std::to_string(im.bands) +
                            " bands and input 0 " + std::to_string(in[0].bands) +
                            "; composite takes grey (1, 2 with alpha) or RGB (3, 4) layers of one kind: convert first");
            if (!placed && (im.width != in[0].width || im.height != in[0].height))
                throw Error("composite: input " + std::to_string(i) + " is " + std::to_string(im.width) + "x" +
                            std::to_string(im.height) + " and input 0 " + std::to_string(in[0].width) + "x" +
                            std::to_string(in[0].height) +
                            "; give layers of one size, or their positions in x and y (or embed them first)");
            fmt = arith::common_format(fmt, im.format);
            sixteen = sixteen || arith::max_alpha(im.interpretation) == 65535;
            const Rect at = i == 0 ? im.rect() : im.rect().translate(int(xs[i - 1]), int(ys[i - 1]));
            layers_.push_back({im.bands, arith::max_alpha(im.interpretation), arith::row_reader(im.format), at});
        }
        info_ = in[0];
        info_.bands = colour_ + 1;
        info_.format = fmt;
        out_max_ = sixteen ? 65535 : 255;
        info_.interpretation = colour_ == 1 ? (sixteen ? Interpretation::grey16 : Interpretation::bw)
                                            : (sixteen ? Interpretation::rgb16 : Interpretation::srgb);
        if (info_.geo) {
            info_.geo->nodata.clear();
            info_.geo->alpha_band = colour_;
        }
    }

    // Case analysis for an output rect r: per layer, the part of r it
    // covers (all of r for input 0 and for layers of its size at 0, 0), in
    // the layer's own frame; a layer that misses r is not pulled. Compute
    // blends bottom to top per pixel, a layer transparent (alpha 0) where it
    // does not reach.
    void demand(const Rect& r, Demand& need) const override {
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            const Rect c = r.intersect(layers_[i].at);
            if (!c.empty()) need.push_back({int(i), c.translate(-layers_[i].at.x, -layers_[i].at.y), std::nullopt});
        }
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        const int w = out.rect.w, nb = colour_ + 1;
        // each layer's pulled tile (none where it misses the tile) and the
        // columns of out it covers
        std::vector<const ConstTile*> tiles(layers_.size(), nullptr);
        for (const Pulled& p : in) tiles[std::size_t(p.input)] = &p.tile;
        std::vector<std::vector<double>> rows(layers_.size());
        for (std::size_t i = 0; i < layers_.size(); ++i) rows[i].resize(std::size_t(w) * std::size_t(layers_[i].bands));
        std::vector<double> result(std::size_t(w) * std::size_t(nb));
        for (int y = out.rect.y; y < out.rect.bottom(); ++y) {
            std::vector<Rect> span(layers_.size());  // the row's part each layer covers, out's frame
            for (std::size_t i = 0; i < layers_.size(); ++i) {
                const Layer& l = layers_[i];
                span[i] = Rect{out.rect.x, y, w, 1}.intersect(l.at);
                if (!tiles[i] || span[i].empty()) continue;
                l.read(*tiles[i], span[i].x - l.at.x, y - l.at.y, span[i].w,
                       rows[i].data() + std::size_t(span[i].x - out.rect.x) * std::size_t(l.bands));
            }
            for (int x = 0; x < w; ++x) {
                double B[3], aB = 0;
                premultiplied(0, rows[0], x, B, aB);
                for (std::size_t i = 1; i < layers_.size(); ++i) {
                    double A[3] = {0, 0, 0}, aA = 0;  // transparent where the layer does not reach
                    if (span[i].contains(Point{out.rect.x + x, y})) premultiplied(i, rows[i], x, A, aA);
                    blend(modes_[i - 1], A, aA, B, aB);
                }
                double* q = &result[std::size_t(x) * std::size_t(nb)];
                for (int k = 0; k < colour_; ++k) q[k] = aB == 0 ? 0.0 : B[k] / aB * out_max_;
                q[colour_] = aB * out_max_;
            }
            dispatch_format(out.format, [&](auto zero) {
                using T = decltype(zero);
                T* q = out.row<T>(y);
                for (std::size_t i = 0; i < result.size(); ++i) q[i] = arith::stored_trunc<T>(result[i]);
            });
        }
    }

private:
    struct Layer {
        int bands = 1;
        double max_alpha = 255;
        arith::RowReader read = nullptr;
        Rect at;  // where it lies in input 0's frame
    };

    // Layer i's pixel x as premultiplied colours in [0, 1] and its alpha.
    void premultiplied(std::size_t i, const std::vector<double>& row, int x, double* c, double& a) const {
        const Layer& l = layers_[i];
        const double* p = &row[std::size_t(x) * std::size_t(l.bands)];
        a = l.bands > colour_ ? p[colour_] / l.max_alpha : 1.0;  // unclipped, as libvips
        for (int k = 0; k < colour_; ++k) c[k] = p[k] / l.max_alpha * a;
    }

    // A (premultiplied, alpha aA) over B, in place in B.
    void blend(Mode m, const double* A, double aA, double* B, double& aB) const {
        switch (m) {
            case Mode::over:
                for (int k = 0; k < colour_; ++k) B[k] = A[k] + B[k] * (1 - aA);
                aB = aA + aB * (1 - aA);
                return;
            case Mode::add:
                for (int k = 0; k < colour_; ++k) B[k] = A[k] + B[k];
                aB = std::min(1.0, aA + aB);
                return;
            case Mode::multiply:
            case Mode::screen:
                for (int k = 0; k < colour_; ++k) {
                    const double f = m == Mode::multiply ? A[k] * B[k] : A[k] + B[k] - A[k] * B[k];
                    B[k] = (1 - aB) * A[k] + (1 - aA) * B[k] + aA * aB * f;
                }
                aB = aA + aB * (1 - aA);
                return;
        }
    }

    std::vector<Layer> layers_;
    std::vector<Mode> modes_;
    int colour_ = 3;
    double out_max_ = 255;
};

}  // namespace

OpSpec composite_op_spec() {
    return {"composite",
            "layers blended bottom (input 0) to top: over, multiply, screen or add, premultiplied inside (libvips "
            "composite); halo: none",
            2,
            -1,
            {{.name = "mode",
              .type = ParamType::string,
              .doc = "blend mode: one, or one per layer above the first (over, multiply, screen, add)",
              .default_value = std::string("over")},
             {.name = "x",
              .type = ParamType::integers,
              .default_text = "(layers of one size at 0, 0)",
              .doc = "each layer's left edge above the first, in input 0's pixels (libvips composite's x)"},
             {.name = "y",
              .type = ParamType::integers,
              .default_text = "(layers of one size at 0, 0)",
              .doc = "each layer's top edge above the first (libvips composite's y)"}},
            false,
            &make_op<CompositeOp>,
            false,
            "mosaic",
            "0"};
}

}  // namespace tessera
