// shrink: a box-filter downsample by integer factors (libvips shrink with
// integer hshrink and vshrink).
//
// What libvips 8.14 does, and so what this op does (libvips/resample/
// shrink.c, shrinkv.c, shrinkh.c; checked against the installed library for
// every format and factors 1..7 by tests/ops_shrink_test.cpp):
//   - vips_shrink runs shrinkv first and shrinkh on its result, and each pass
//     writes samples of the image's format: the vertical averages are
//     rounded to the format before the horizontal pass averages them. So a
//     u8 2x2 shrink is not the rounded mean of 4 pixels but the rounded mean
//     of two rounded means; we keep the two passes to match bit for bit.
//   - Integer formats round half up: (sum + n/2) / n, with C division (so
//     toward zero for negative sums of i16/i32). Float formats: sum / n in
//     double, stored as the format.
//   - Output size: round to nearest, half up (VIPS_ROUND_UINT(in / shrink),
//     the default "ceil" = false), so 10 / 4 gives 3 and 10 / 3 gives 3.
//     When that rounds up, libvips first extends the input with
//     extend=copy to a multiple of the factor, so the last output pixel
//     averages the real edge pixels with copies of the last one; when it
//     rounds down, the leftover edge pixels are dropped.
// The kernel is core's shrink_box (tessera/core/shrink.hpp), beside the
// pyramid writers' 2x2 mean, whose rounding differs (one pass, not two).
#include <cstdint>
#include <string>

#include "ops_list.hpp"
#include "tessera/core/shrink.hpp"

namespace tessera {
namespace {

constexpr int kMaxShrink = 1'000'000;  // as libvips

class ShrinkOp final : public Op {
public:
    ShrinkOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        hshrink_ = int(p.integer("hshrink"));
        vshrink_ = int(p.integer("vshrink"));
        info_ = src;
        info_.width = shrunk_size(src.width, hshrink_, "hshrink", "width");
        info_.height = shrunk_size(src.height, vshrink_, "vshrink", "height");
        if (src.geo) info_.geo = src.geo->scaled(hshrink_, vshrink_);
        in_rect_ = src.rect();
    }

    // Case analysis for an output rect r:
    //  1. both factors 1: the output is the input, so r is a placed need;
    //  2. otherwise: output pixel (x, y) averages input columns
    //     [x * hshrink, (x + 1) * hshrink) and rows likewise, so r needs the
    //     input box scaled from r, pulled for compute. The part of that box
    //     past the input's right or bottom edge (the copy extension, when the
    //     size rounded up) is dropped here and read as the edge pixel in
    //     compute. Every output pixel has at least one real input pixel
    //     (the size rounds to nearest), so the need is never empty.
    void demand(const Rect& r, Demand& need) const override {
        if (hshrink_ == 1 && vshrink_ == 1) {
            need.push_back({0, r, r.origin()});  // case 1
            return;
        }
        Rect box{r.x * hshrink_, r.y * vshrink_, r.w * hshrink_, r.h * vshrink_};
        need.push_back({0, box.intersect(in_rect_), std::nullopt});  // case 2
    }

    void compute(const Tile& out, std::span<const Pulled> in) const override {
        if (in.empty()) return;  // case 1: the placed need is the output
        // case 2: vips_shrink's two rounded passes, the copy extension read
        // as the input's last row and column
        shrink_box(in[0].tile, out, hshrink_, vshrink_, in_rect_);
    }

private:
    int shrunk_size(int size, int factor, const char* key, const char* what) const {
        // VIPS_ROUND_UINT((double) size / factor), as shrinkv/shrinkh size
        // their output (see the file comment).
        int n = int(double(size) / factor + 0.5);
        if (n < 1)
            throw ParamError(key, "shrinking the " + std::to_string(size) + "-pixel " + what + " by " +
                                      std::to_string(factor) + " leaves nothing; use " + key +
                                      " <= " + std::to_string(2 * std::int64_t(size)));
        return n;
    }

    int hshrink_ = 1;
    int vshrink_ = 1;
    Rect in_rect_;
};

}  // namespace

OpSpec shrink_op_spec() {
    return {"shrink",
            "box-filter downsample by integer factors (as libvips shrink: vertical pass, then horizontal, each "
            "rounded; size rounded to nearest)",
            1,
            1,
            {{.name = "hshrink",
              .type = ParamType::integer,
              .required = true,
              .doc = "horizontal factor",
              .min = 1,
              .max = kMaxShrink},
             {.name = "vshrink",
              .type = ParamType::integer,
              .required = true,
              .doc = "vertical factor",
              .min = 1,
              .max = kMaxShrink}},
            false,
            &make_op<ShrinkOp>,
            false,
            "geometry",
            "0 beyond each output pixel's box"};
}

}  // namespace tessera
