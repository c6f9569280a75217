// arrayjoin: N images laid out on a grid, left to right then top to bottom
// (libvips arrayjoin).
//
// Layout, as libvips 8.14 computes it (libvips/conversion/arrayjoin.c,
// vips_arrayjoin_build; checked against the installed library by
// tests/ops_arrayjoin_test.cpp):
//   - across defaults to N; down = ceil(N / across);
//   - hspacing / vspacing default to the largest input width / height;
//   - output = hspacing * across + shim * (across - 1) wide, and likewise
//     down;
//   - image i sits in cell (i % across, i / across) at
//     (col * (hspacing + shim), row * (vspacing + shim)); a cell is
//     hspacing x vspacing plus the shim to its right / below, except in the
//     last column / row, and the last image's cell stretches to the right
//     edge of the output;
//   - inside its cell an image is aligned low (0), centre
//     ((spacing - size) / 2, C division, so toward zero when the image is
//     larger than the spacing) or high (spacing - size), and clipped to the
//     cell (libvips embeds each image in its cell with extend=background);
//   - everything else is background, converted as libvips embed does: through
//     float, clipped to the format and truncated toward zero.
//
// Differing inputs: libvips casts all inputs up to a common format and
// replicates 1-band images to the widest band count (and widens to the
// background's band count). Tessera requires every input to have the first
// one's bands and format, and says which input differs: the conversion is
// then explicit in the pipeline (a cast node), and every pixel can be a
// placed need, copied without touching the values.
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
#include "tessera/core/spatial_index.hpp"

namespace tessera {
namespace {

constexpr int kMaxArg = 1'000'000;  // libvips' limit on across, shim and spacing

enum class Align { low, centre, high };

// The spec's choices; "center" is libvips' spelling of centre.
const std::vector<std::string> kAlignNames = {"low", "centre", "center", "high"};

// One of kAlignNames: the graph checked it against the spec.
Align parse_align(const Params& p, const std::string& key) {
    std::string s = p.string(key);
    return s == "low" ? Align::low : s == "high" ? Align::high : Align::centre;
}

// Where an image of `size` starts inside a box of `spacing`: C division, so
// an image larger than its box is shifted toward zero, as libvips does.
int align_offset(Align a, int spacing, int size) {
    switch (a) {
        case Align::centre: return (spacing - size) / 2;
        case Align::high: return spacing - size;
        default: return 0;
    }
}

class ArrayjoinOp final : public Op {
public:
    ArrayjoinOp(const Params& p, std::span<const ImageInfo> in) {
        const int n = int(in.size());
        const ImageInfo& first = in[0];
        for (int i = 1; i < n; ++i)
            if (in[i].bands != first.bands || in[i].format != first.format)
                throw ParamError("inputs", "image " + std::to_string(i) + " has " + std::to_string(in[i].bands) +
                                               " bands of " + std::string(format_name(in[i].format)) +
                                               " but image 0 has " + std::to_string(first.bands) + " bands of " +
                                               std::string(format_name(first.format)) +
                                               "; cast or convert it first so all images match");
        const int across = int(p.integer("across", n));
        const int shim = int(p.integer("shim"));
        int widest = 0, tallest = 0;
        for (const ImageInfo& im : in) {
            widest = std::max(widest, im.width);
            tallest = std::max(tallest, im.height);
        }
        const int hspacing = int(p.integer("hspacing", widest));
        const int vspacing = int(p.integer("vspacing", tallest));
        const Align halign = parse_align(p, "halign");
        const Align valign = parse_align(p, "valign");
        std::vector<double> background = p.numbers("background", {});
        if (background.size() != 1 && int(background.size()) != first.bands)
            throw ParamError("background", "has " + std::to_string(background.size()) + " values for " +
                                               std::to_string(first.bands) + " bands; give one value, or one per band");

        const int down = (n + across - 1) / across;
        const std::int64_t out_w = std::int64_t(hspacing) * across + std::int64_t(shim) * (across - 1);
        const std::int64_t out_h = std::int64_t(vspacing) * down + std::int64_t(shim) * (down - 1);
        if (out_w > kMaxDimension || out_h > kMaxDimension)
            throw ParamError(out_w > kMaxDimension ? "hspacing" : "vspacing",
                             "the grid would be " + std::to_string(out_w) + "x" + std::to_string(out_h) +
                                 " pixels, over the limit of " + std::to_string(kMaxDimension) +
                                 "; use smaller spacing or shim, or change across");

        info_ = first;
        info_.width = int(out_w);
        info_.height = int(out_h);
        const Rect all = info_.rect();

        std::vector<Rect> visible;
        std::vector<Rect> background_parts;
        for (int i = 0; i < n; ++i) {
            const int col = i % across, row = i / across;
            // The cell owns the shim to its right and below, except on the
            // last column / row; the last image's cell runs to the right edge
            // so that the row has no hole after it.
            Rect cell{col * (hspacing + shim), row * (vspacing + shim), hspacing + (col != across - 1 ? shim : 0),
                      vspacing + (row != down - 1 ? shim : 0)};
            if (i == n - 1) cell = all.intersect({cell.x, cell.y, all.w, cell.h});
            Point at{cell.x + align_offset(halign, hspacing, in[i].width),
                     cell.y + align_offset(valign, vspacing, in[i].height)};
            Rect vis = Rect{at.x, at.y, in[i].width, in[i].height}.intersect(cell);
            at_.push_back(at);
            visible.push_back(vis);
            add_outside(cell, vis, background_parts);
        }
        if (first.geo) info_.geo = first.geo->shifted(-at_[0].x, -at_[0].y);  // follows image 0
        images_ = SpatialIndex(all, visible);
        background_ = SpatialIndex(all, background_parts);

        ink_.assign(first.pixel_bytes(), std::byte{0});
        dispatch_format(first.format, [&](auto t) {
            using T = decltype(t);
            for (int b = 0; b < first.bands; ++b) {
                T v = ink_sample<T>(background[background.size() == 1 ? 0 : b]);
                std::memcpy(ink_.data() + std::size_t(b) * sizeof(T), &v, sizeof(T));
            }
        });
    }

    // Case analysis for an output rect r (cells tile the output, and each
    // image is clipped to its cell, so images never overlap):
    //  1. r inside one image: that image alone, one placed need;
    //  2. otherwise: each image r overlaps, its part of r placed; compute
    //     paints the background around them.
    // Either way every need is placed: the pixels go straight from the
    // inputs into the output tile, and only images r touches are pulled.
    void demand(const Rect& r, Demand& need) const override {
        std::vector<int> hits;
        images_.query(r, hits);
        const auto& vis = images_.rects();
        for (int i : hits) {
            Rect part = vis[i].intersect(r);
            need.push_back({i, part.translate(-at_[i].x, -at_[i].y), part.origin()});
        }
    }

    // Paints the background parts (cells minus their images) that meet the
    // tile: case 1 meets none, so it does nothing.
    void compute(const Tile& out, std::span<const Pulled>) const override {
        std::vector<int> hits;
        background_.query(out.rect, hits);
        const std::size_t pb = ink_.size();
        for (int k : hits) {
            Rect part = background_.rects()[k].intersect(out.rect);
            for (int y = part.y; y < part.bottom(); ++y) {
                std::byte* q = out.at(part.x, y);
                for (int x = 0; x < part.w; ++x, q += pb) std::memcpy(q, ink_.data(), pb);
            }
        }
    }

private:
    // Adds the parts of `cell` outside `hole` (which lies inside it): the
    // bands above and below the hole, and the pieces left and right of it.
    // Each is cut from the cell by a rect anchored at the output's origin or
    // running past its far edge, so no edge is computed by hand.
    void add_outside(const Rect& cell, const Rect& hole, std::vector<Rect>& parts) const {
        const Rect all = info_.rect();
        const Rect pieces[4] = {
            cell.intersect({0, 0, all.w, hole.y}),                  // above
            cell.intersect({0, hole.bottom(), all.w, all.h}),       // below
            cell.intersect({0, hole.y, hole.x, hole.h}),            // left
            cell.intersect({hole.right(), hole.y, all.w, hole.h}),  // right
        };
        for (const Rect& piece : pieces)
            if (!piece.empty()) parts.push_back(piece);
    }

    std::vector<Point> at_;  // each image's top-left on the output (may lie outside its cell)
    SpatialIndex images_;    // the visible part of each image, by input index
    SpatialIndex background_;
    std::vector<std::byte> ink_;  // one background pixel
};

}  // namespace

OpSpec arrayjoin_op_spec() {
    return {"arrayjoin",
            "lays N images (same bands and format) out on a grid, left to right then top to bottom, as libvips "
            "arrayjoin",
            1,
            -1,
            // across and the spacings default to what the inputs give
            {{.name = "across",
              .type = ParamType::integer,
              .default_text = "number of inputs",
              .doc = "images per row",
              .min = 1,
              .max = kMaxArg},
             {.name = "shim",
              .type = ParamType::integer,
              .doc = "pixels of background between cells",
              .default_value = std::int64_t(0),
              .min = 0,
              .max = kMaxArg},
             {.name = "hspacing",
              .type = ParamType::integer,
              .default_text = "widest input",
              .doc = "cell width; wider images are clipped",
              .min = 1,
              .max = kMaxArg},
             {.name = "vspacing",
              .type = ParamType::integer,
              .default_text = "tallest input",
              .doc = "cell height; taller images are clipped",
              .min = 1,
              .max = kMaxArg},
             {.name = "halign",
              .type = ParamType::string,
              .doc = "position in the cell: low (left), centre or high (right)",
              .default_value = std::string("low"),
              .choices = kAlignNames},
             {.name = "valign",
              .type = ParamType::string,
              .doc = "position in the cell: low (top), centre or high (bottom)",
              .default_value = std::string("low"),
              .choices = kAlignNames},
             {.name = "background",
              .type = ParamType::numbers,
              .doc = "colour between and around images: one value for all bands or one per band",
              .default_value = std::vector<double>{0.0}}},
            false,
            &make_op<ArrayjoinOp>,
            false,
            "mosaic",
            "0"};
}

}  // namespace tessera
