// embed: the input placed at (x, y) on a width x height canvas, the new
// pixels made by one of six rules (libvips embed).
//
// libvips 8.14 semantics matched here (libvips/conversion/embed.c,
// vips_embed_base_build / vips_embed_base_gen and the repeat/mirror helpers;
// checked against the installed library by tests/ops_embed_test.cpp):
//   - black: every byte 0;
//   - white: every byte 255 for integer formats (so 65535 in u16 but -1 in
//     i16 and i32), and the value 255 for f32 / f64;
//   - background: the given values, one for all bands or one per band,
//     converted the way libvips makes its ink (through a float image and
//     vips_cast): rounded to float, clipped to the format, truncated toward
//     zero (1.6 -> 1 in u8, -1.5 -> -1 in i16). Giving "background" without
//     "extend" selects this rule, as in libvips;
//   - copy: each new pixel is the nearest edge pixel of the input;
//   - repeat: the input tiled, with the tile at (x, y) the input itself;
//   - mirror: the input tiled with every other copy flipped, so the edge
//     pixel repeats across each seam (... c b a | a b c | c b a ...).
// The part of the canvas the input covers is never computed: it is a placed
// need, copied straight from the input into the output tile.
//
// One deviation: libvips refuses ("bad dimensions") any embed whose input
// lies wholly off the canvas, except for repeat and mirror. Here only copy
// refuses (it has no edge to copy from); black, white and background give
// the plain canvas.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "ink.hpp"
#include "ops_list.hpp"

namespace tessera {
namespace {

enum class Extend { black, white, background, copy, repeat, mirror };
// The spec's choices, in the enum's order.
const std::vector<std::string> kExtendNames = {"black", "white", "background", "copy", "repeat", "mirror"};

// `s` is one of kExtendNames: the graph checked it against the spec.
Extend parse_extend(const std::string& s) { return Extend(choice_index(kExtendNames, s)); }

int floor_mod(int a, int m) {
    int r = a % m;
    return r < 0 ? r + m : r;
}

// Writes the one-pixel pattern `ink` over every pixel of t.
void fill_ink(const Tile& t, const std::vector<std::byte>& ink) {
    const std::size_t pb = ink.size();
    for (int y = t.rect.y; y < t.rect.bottom(); ++y) {
        std::byte* q = t.at(t.rect.x, y);
        for (int x = 0; x < t.rect.w; ++x, q += pb) std::memcpy(q, ink.data(), pb);
    }
}

// One axis of the mapping from output to input coordinates used by copy,
// repeat and mirror: the input spans [offset, offset + size) on the output.
struct Axis {
    Extend mode;
    int offset;
    int size;

    int source(int o) const {
        int u = o - offset;
        switch (mode) {
            case Extend::repeat: return floor_mod(u, size);
            case Extend::mirror: {
                u = floor_mod(u, 2 * size);
                return u < size ? u : 2 * size - 1 - u;
            }
            default: return std::clamp(u, 0, size - 1);  // copy
        }
    }

    // The input coordinates that outputs [a, a + n) map to, as one or two
    // [lo, lo + len) runs: never more input than the outputs need.
    std::vector<std::pair<int, int>> runs(int a, int n) const {
        if (mode == Extend::repeat) {
            // Once the span wraps fully, every column is needed; else it is
            // one run, or two when it crosses a seam (the end of the input
            // followed by its start).
            if (n >= size) return {{0, size}};
            int u0 = source(a), u1 = source(a + n - 1);
            if (u0 <= u1) return {{u0, u1 - u0 + 1}};
            return {{u0, size - u0}, {0, u1 + 1}};
        }
        // Copy and mirror map neighbours to equal or adjacent inputs, so the
        // image of a span is one run: [min, max].
        if (mode == Extend::mirror && n >= 2 * size) return {{0, size}};
        int lo = std::numeric_limits<int>::max(), hi = std::numeric_limits<int>::min();
        if (mode == Extend::copy) {
            lo = source(a);  // copy is monotonic
            hi = source(a + n - 1);
        } else {
            for (int o = a; o < a + n; ++o) {
                int s = source(o);
                lo = std::min(lo, s);
                hi = std::max(hi, s);
            }
        }
        return {{lo, hi - lo + 1}};
    }
};

class EmbedOp final : public Op {
public:
    EmbedOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        const int x = int(p.integer("x")), y = int(p.integer("y"));
        const int width = int(p.integer("width")), height = int(p.integer("height"));
        // As libvips: a background with no extend means "use it".
        extend_ = parse_extend(p.string("extend", p.has("background") ? "background" : "black"));
        std::vector<double> background = p.numbers("background", {0.0});
        if (background.size() != 1 && int(background.size()) != src.bands)
            throw ParamError("background", "has " + std::to_string(background.size()) + " values for " +
                                               std::to_string(src.bands) + " bands; give one value, or one per band");

        info_ = src;
        info_.width = width;
        info_.height = height;
        if (src.geo) info_.geo = src.geo->shifted(-x, -y);

        placed_ = Rect{x, y, src.width, src.height};
        sub_ = placed_.intersect(info_.rect());
        if (sub_.empty() && extend_ == Extend::copy)
            // name the coordinate that misses: x when the columns miss
            throw ParamError(Rect{x, 0, src.width, 1}.overlaps({0, 0, width, 1}) ? "y" : "x",
                             "the " + std::to_string(src.width) + "x" + std::to_string(src.height) + " input at (" +
                                 std::to_string(x) + ", " + std::to_string(y) + ") lies wholly outside the " +
                                 std::to_string(width) + "x" + std::to_string(height) +
                                 " output, so extend=copy has no edge to copy; move x / y so they overlap");
        xaxis_ = {extend_, x, src.width};
        yaxis_ = {extend_, y, src.height};
        make_border();
        make_ink(src, background);
    }

    // Case analysis for an output rect r:
    //  1. r inside the sub image (the part of the output the input covers):
    //     one placed need, the input's pixels moved by (x, y), no copy here;
    //  2. r wholly outside it: only border pixels. black / white / background
    //     need no input; copy / repeat / mirror pull, for each border piece
    //     r touches, the input pixels that piece maps to (see plan());
    //  3. both: the inner part placed as in 1, the border as in 2.
    void demand(const Rect& r, Demand& need) const override {
        for (const Piece& pc : plan(r)) need.push_back({0, pc.src, std::nullopt});  // 2, 3: border sources
        Rect inner = r.intersect(sub_);
        if (!inner.empty()) need.push_back({0, inner.translate(-placed_.x, -placed_.y), inner.origin()});  // 1, 3
    }

    // Writes the border part of out (the inner part is the placed need):
    //  - black / white / background: the ink over each border piece;
    //  - copy / repeat / mirror: each border pixel from its source pixel, in
    //    the pulled tile that demand() asked for it (same plan, same order).
    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (!maps()) {
            for (const Rect& b : border_) {
                Rect part = b.intersect(out.rect);
                if (!part.empty()) fill_ink(out.sub(part), ink_);
            }
            return;
        }
        std::vector<Piece> pieces = plan(out.rect);
        const std::size_t pb = out.pixel_bytes();
        std::vector<int> sx;
        for (std::size_t k = 0; k < pieces.size(); ++k) {
            const Piece& pc = pieces[k];
            const ConstTile& t = in[k].tile;
            // Source columns once per piece; -1 marks those another pulled
            // rect of the same piece serves (the two runs of a repeat seam).
            sx.resize(pc.out.w);
            for (int i = 0; i < pc.out.w; ++i) {
                int s = xaxis_.source(pc.out.x + i);
                sx[i] = s >= pc.src.x && s < pc.src.right() ? s : -1;
            }
            for (int oy = pc.out.y; oy < pc.out.bottom(); ++oy) {
                int sy = yaxis_.source(oy);
                if (sy < pc.src.y || sy >= pc.src.bottom()) continue;
                std::byte* q = out.at(pc.out.x, oy);
                for (int i = 0; i < pc.out.w; ++i, q += pb)
                    if (sx[i] >= 0) std::memcpy(q, t.at(sx[i], sy), pb);
            }
        }
    }

private:
    // A part of a border piece and the input rect its pixels come from.
    struct Piece {
        Rect out;  // output frame
        Rect src;  // input frame
    };

    bool maps() const { return extend_ == Extend::copy || extend_ == Extend::repeat || extend_ == Extend::mirror; }

    // For copy / repeat / mirror: the input rects the border part of r reads,
    // one or more per border piece r touches (a repeat seam splits a piece's
    // sources in two along that axis). Empty for the constant rules.
    std::vector<Piece> plan(const Rect& r) const {
        std::vector<Piece> pieces;
        if (!maps()) return pieces;
        for (const Rect& b : border_) {
            Rect part = b.intersect(r);
            if (part.empty()) continue;
            for (auto [x0, w] : xaxis_.runs(part.x, part.w))
                for (auto [y0, h] : yaxis_.runs(part.y, part.h)) pieces.push_back({part, {x0, y0, w, h}});
        }
        return pieces;
    }

    // The output minus the sub image, as up to 8 rects of the 3 x 3 grid the
    // sub image's edges cut the output into (as libvips does): each piece
    // lies wholly beside, above, below or diagonal to the input, so its
    // source pixels are simple to find. With no sub image at all (the input
    // lies off the canvas) the whole output is border.
    void make_border() {
        const Rect all = info_.rect();
        if (sub_.empty()) {
            border_ = {all};
            return;
        }
        // Column bands: left of, over, right of the sub image; rows likewise.
        // Each band is a rect cut from `all`, so no edge is computed by hand.
        const Rect cols[3] = {all.intersect({0, 0, sub_.x, all.h}), all.intersect({sub_.x, 0, sub_.w, all.h}),
                              all.intersect({sub_.right(), 0, all.w, all.h})};
        const Rect rows[3] = {all.intersect({0, 0, all.w, sub_.y}), all.intersect({0, sub_.y, all.w, sub_.h}),
                              all.intersect({0, sub_.bottom(), all.w, all.h})};
        for (int j = 0; j < 3; ++j)
            for (int i = 0; i < 3; ++i) {
                if (i == 1 && j == 1) continue;  // the sub image itself
                Rect cell = cols[i].intersect(rows[j]);
                if (!cell.empty()) border_.push_back(cell);
            }
    }

    void make_ink(const ImageInfo& src, const std::vector<double>& background) {
        ink_.assign(src.pixel_bytes(), std::byte{0});
        if (extend_ == Extend::white && !format_is_float(src.format)) {
            std::memset(ink_.data(), 0xff, ink_.size());  // every bit set, as libvips
            return;
        }
        if (extend_ != Extend::white && extend_ != Extend::background) return;  // black: zeros
        dispatch_format(src.format, [&](auto t) {
            using T = decltype(t);
            for (int b = 0; b < src.bands; ++b) {
                T v = extend_ == Extend::white ? T(255) : ink_sample<T>(background[background.size() == 1 ? 0 : b]);
                std::memcpy(ink_.data() + std::size_t(b) * sizeof(T), &v, sizeof(T));
            }
        });
    }

    Extend extend_ = Extend::black;
    Rect placed_;  // the input's rect on the output, possibly past its edges
    Rect sub_;     // placed_ clipped to the output: the inner part
    std::vector<Rect> border_;
    Axis xaxis_{}, yaxis_{};
    std::vector<std::byte> ink_;  // one pixel, for the constant rules
};

}  // namespace

OpSpec embed_op_spec() {
    return {"embed",
            "places the input at (x, y) on a width x height canvas; extend says how the new pixels are made",
            1,
            1,
            {{.name = "x",
              .type = ParamType::integer,
              .required = true,
              .doc = "column of the input's left edge on the output (may be negative)",
              .min = -kMaxDimension,
              .max = kMaxDimension},
             {.name = "y",
              .type = ParamType::integer,
              .required = true,
              .doc = "row of the input's top edge on the output (may be negative)",
              .min = -kMaxDimension,
              .max = kMaxDimension},
             {.name = "width",
              .type = ParamType::integer,
              .required = true,
              .doc = "output width in pixels",
              .min = 1,
              .max = kMaxDimension},
             {.name = "height",
              .type = ParamType::integer,
              .required = true,
              .doc = "output height in pixels",
              .min = 1,
              .max = kMaxDimension},
             // no default_values: extend's depends on whether background
             // is given, so background's must not be filled in
             {.name = "extend",
              .type = ParamType::string,
              .default_text = "black (background if background is set)",
              .doc = "new pixels: black, white, background, copy (edge pixel), repeat (tile) or mirror",
              .choices = kExtendNames},
             {"background", ParamType::numbers, false, "[0]",
              "colour for extend=background: one value for all bands or one per band"}},
            false,
            &make_op<EmbedOp>,
            false,
            "geometry",
            "0 (edge modes read the nearest edge pixels)"};
}

}  // namespace tessera
