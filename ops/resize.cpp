// resize: scale an image by a factor (or to a width/height) with a kernel,
// as libvips 8.14's vips_resize (resample/resize.c, reduceh.cpp,
// reducev.cpp), one axis at a time, vertical first:
//   - scale < 1 (a reduce): the output size is round(size * scale) (half
//     up); with the default gap 2, the integer part of the shrink,
//     floor(size / out / gap), is done first as a box shrink (vips_shrinkv/h
//     with ceil, the last box padded by copying the edge; nearest
//     subsamples instead), then the residual reduce by the kernel stretched
//     by the residual factor (2 rint(support x factor) + 1 taps, weights
//     normalised), centre convention: output pixel X samples the input at
//     (X + 0.5) f - 0.5, the output's span centred on the input, edges
//     extended by copying (libvips's reduce).
//   - scale > 1 (an enlargement): libvips resize's affine: X samples the
//     input at X / scale - 0.5 (nearest: floor(X / scale)), linear ->
//     bilinear, cubic and lanczos3 -> bicubic (Catmull-Rom), edges copied.
// Each stage stores samples of the image's format, as libvips's chain of
// operations does, with libvips's arithmetic: the reduce's mask positions
// rounded to 1/64 (all but f64), integer formats summed with 12-bit weights
// each truncated, (sum + 2048) >> 12; the enlargement is the affine op's
// sampler (ops/kernels.hpp). Against vips resize 8.14 that gives u16 and
// f32 bit for bit for every kernel and scale tested, and u8 within 3
// levels where libvips's u8 reduce takes its vector path
// (tests/ops_resize_test.cpp states each tolerance).
// As libvips, enlarging one axis only moves the other by half a pixel (its
// affine's idy = 0.5 with a scale of 1 on that axis).
//
// Demand halo (per axis, in input pixels): nearest 0; otherwise the box
// factor times the taps each side of the sampled position, rint(support x
// residual) (linear 1, cubic 2, lanczos3 3 at a residual of 1: e.g. a 10 %
// lanczos3 reduce reads 5 x 6 = 30 input pixels beyond its tile each side),
// or 1 (bilinear) and 2 (bicubic) for an enlargement.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "ops_list.hpp"
#include "tessera/core/shrink.hpp"

namespace tessera {
namespace {

// How one axis is resampled (see the file comment).
struct Axis {
    enum Mode { copy, reduce, up };
    int in = 0;   // input size
    int box = 1;  // integer shrink first (box mean; nearest: subsample)
    int mid = 0;  // size after the box step
    int out = 0;
    Mode mode = copy;
    double factor = 1;  // reduce: residual shrink; up: scale
    double offset = 0;  // reduce: half the output span's excess (centring)
};

int round_half_up(double v) { return int(std::floor(v + 0.5)); }

// libvips resize.c + reduceh.cpp's sizing, for one axis of `n` pixels.
Axis plan_axis(int n, double s, Kernel k, double gap) {
    Axis a;
    a.in = a.mid = n;
    s = std::max(s, 1.0 / n);  // no axis below 1 px, as libvips
    if (k == Kernel::nearest) {
        // resize.c: nearest subsamples by the integer part first
        int f = gap < 1 ? int(std::floor(1 / s)) : int(std::floor(double(n) / round_half_up(n * s) / gap));
        f = std::max(1, f);
        if (f > 1) {
            a.box = f;
            a.mid = n / f;  // vips_subsample: floor
            s *= f;
        }
    }
    if (s < 1) {
        double shrink = 1 / s;
        const int width = std::max(1, round_half_up(a.mid / shrink));
        double extra = width * shrink - a.mid;
        if (gap > 0 && k != Kernel::nearest) {
            const int f = std::max(1, int(std::floor(double(a.mid) / width / gap)));
            if (f > 1) {
                a.box = f;
                a.mid = (a.mid + f - 1) / f;  // vips_shrinkh/v with ceil
                shrink /= f;
                extra /= f;
            }
        }
        a.out = width;
        if (shrink != 1.0) {
            a.mode = Axis::reduce;
            a.factor = shrink;
            a.offset = extra / 2;
        } else {
            a.out = a.mid;
        }
    } else if (s > 1) {
        a.mode = Axis::up;
        a.factor = s;
        a.out = std::max(1, round_half_up(a.mid * s));
    } else {
        a.out = a.mid;
    }
    return a;
}

class ResizeOp final : public Op {
public:
    ResizeOp(const Params& p, std::span<const ImageInfo> in) {
        const ImageInfo& src = in[0];
        kernel_ = Kernel(choice_index(kKernelNames, p.string("kernel")));
        const double gap = p.number("gap");
        if (gap > 0 && gap < 1)
            throw ParamError("gap", "a gap between 0 and 1 means nothing; use 0 (no box shrink) or >= 1");
        double hs = 0, vs = 0;
        const bool by_size = p.has("width") || p.has("height");
        if (p.has("scale")) {
            if (by_size)
                throw ParamError(p.has("width") ? "width" : "height",
                                 "give either scale (and vscale) or a target width/height, not both");
            hs = p.number("scale");
            vs = p.has("vscale") ? p.number("vscale") : hs;
        } else if (p.has("vscale")) {
            throw ParamError("vscale", "vscale needs scale (the horizontal factor); give both");
        } else if (by_size) {
            // a target size: the factor that gives it (round(size x factor)
            // is the target), the other axis keeping the aspect ratio
            if (p.has("width")) hs = double(p.integer("width")) / src.width;
            if (p.has("height")) vs = double(p.integer("height")) / src.height;
            if (!p.has("width")) hs = vs;
            if (!p.has("height")) vs = hs;
        } else {
            throw ParamError("scale", "resize needs scale (a factor, e.g. 0.1) or a target width and/or height");
        }
        if (std::max(src.width * hs, src.height * vs) > kMaxDimension)
            throw ParamError("scale", "the output would exceed " + std::to_string(kMaxDimension) +
                                          " pixels on a side; use a smaller factor");
        h_ = plan_axis(src.width, hs, kernel_, gap);
        v_ = plan_axis(src.height, vs, kernel_, gap);
        quantise_ = src.format != Format::f64;
        // an enlargement (not nearest) is libvips resize's vips_affine of
        // the reduced image: scale on the enlarged axes, 1 on the other,
        // input offset 0.5 on both (so an axis left at 1 moves by half a
        // pixel, as libvips's does), extend copy, bilinear or bicubic
        affine_ = kernel_ != Kernel::nearest && (h_.mode == Axis::up || v_.mode == Axis::up);
        if (affine_) {
            const double sh = h_.mode == Axis::up ? h_.factor : 1, sv = v_.mode == Axis::up ? v_.factor : 1;
            map_ = {1 / sh, 0, -0.5, 0, 1 / sv, -0.5};
            ip_ = kernel_ == Kernel::linear ? Interpolator::bilinear : Interpolator::bicubic;
            reduced_ = {0, 0, h_.mode == Axis::up ? h_.mid : h_.out, v_.mode == Axis::up ? v_.mid : v_.out};
        }
        info_ = src;
        info_.width = h_.out;
        info_.height = v_.out;
        if (src.geo) info_.geo = src.geo->scaled(double(src.width) / h_.out, double(src.height) / v_.out);
    }

    // Case analysis for an output rect r:
    //  0. an enlargement other than nearest: r becomes the rect of the
    //     reduced image the affine's interpolator reads (affine_support),
    //     and the cases below apply to that rect, per axis;
    //  1. nearest: every output index reads one input index (through the
    //     subsample), so the need is the span of those;
    //  2. copy (scale 1, an axis the affine enlarges, or a box shrink that
    //     was the whole factor): the box step alone, or nothing;
    //  3. reduce: the taps' span over the box-shrunk axis, scaled back by
    //     the box factor (clipped to the input: the box's copy extension
    //     reads the edge instead).
    // The need is that span in both axes, one unplaced rect; compute runs
    // the stages on it.
    void demand(const Rect& r0, Demand& need) const override {
        const Rect r = affine_ ? affine_support(r0, map_, ip_, reduced_) : r0;
        const Taps tv = taps(v_, r.y, r.h), th = taps(h_, r.x, r.w);
        const int x0 = input_lo(h_, th), y0 = input_lo(v_, tv);
        need.push_back({0, Rect{x0, y0, input_hi(h_, th) - x0, input_hi(v_, tv) - y0}, std::nullopt});
    }

    void compute(const Tile& final_out, std::span<const Pulled> in) const override {
        // an enlargement: the reduce stages fill the part of the reduced
        // image the interpolator reads, then the affine samples it
        Scratch stage;
        const Tile& out =
            affine_ ? stage.make(affine_support(final_out.rect, map_, ip_, reduced_), final_out) : final_out;
        reduce(out, in[0].tile);
        if (affine_) affine_sample(out, reduced_, map_, ip_, true, {0.0}, final_out);
    }

private:
    // The box and kernel stages (vertical, then horizontal) into out.
    void reduce(const Tile& out, const ConstTile& src) const {
        const Rect& r = out.rect;
        const Taps tv = taps(v_, r.y, r.h), th = taps(h_, r.x, r.w);
        const int x0 = src.rect.x, x1 = src.rect.right();
        const Rect bounds{0, 0, h_.in, v_.in};
        // vertical: the box shrink of the rows (case 3), then the taps
        Scratch sv, vv;
        ConstTile rows = src;
        if (kernel_ != Kernel::nearest && v_.box > 1) {
            const Rect mr =
                mode1(v_) == Axis::copy ? Rect{x0, r.y, x1 - x0, r.h} : Rect{x0, tv.lo(), x1 - x0, tv.hi() - tv.lo()};
            shrink_box(src, sv.make(mr, out), 1, v_.box, bounds);
            rows = sv.tile;
        }
        if (mode1(v_) != Axis::copy || kernel_ == Kernel::nearest) {
            resample_rows(rows, tv, vv.make({x0, r.y, x1 - x0, r.h}, out));
            rows = vv.tile;
        }
        // horizontal, on rows r.y .. r.bottom()
        Scratch sh;
        ConstTile cols = rows;
        if (kernel_ != Kernel::nearest && h_.box > 1) {
            const Rect mr = mode1(h_) == Axis::copy ? r : Rect{th.lo(), r.y, th.hi() - th.lo(), r.h};
            shrink_box(rows, sh.make(mr, out), h_.box, 1, Rect{0, r.y, h_.in, r.h});
            cols = sh.tile;
        }
        if (mode1(h_) != Axis::copy || kernel_ == Kernel::nearest)
            resample_columns(cols, th, out);
        else
            copy_pixels(cols, out);
    }

    // An axis's mode in the reduce stages: an enlargement the affine does
    // is a copy there.
    Axis::Mode mode1(const Axis& a) const { return a.mode == Axis::up && affine_ ? Axis::copy : a.mode; }

    // A scratch tile of the output's bands and format.
    struct Scratch {
        std::vector<std::byte> bytes;
        Tile tile;
        const Tile& make(const Rect& r, const Tile& like) {
            const std::size_t stride = std::size_t(r.w) * like.pixel_bytes();
            bytes.resize(stride * std::size_t(r.h));
            tile = {r, like.bands, like.format, bytes.data(), stride};
            return tile;
        }
    };

    // The taps of output indices [d0, d0 + n) over the box-shrunk axis (for
    // nearest: over the input, through the subsample). Copy: the identity.
    Taps taps(const Axis& a, int d0, int n) const {
        Taps t;
        if (mode1(a) == Axis::reduce)
            t = reduce_taps(kernel_, a.factor, a.offset, a.mid, d0, n, quantise_);
        else if (mode1(a) == Axis::up)
            t = upscale_taps(kernel_, a.factor, kernel_ == Kernel::nearest ? 0.0 : 0.5, a.mid, d0, n);
        else {
            t.size = a.mid;
            t.first.resize(std::size_t(n));
            t.w.assign(std::size_t(n), 1.0);
            for (int i = 0; i < n; ++i) t.first[std::size_t(i)] = d0 + i;
        }
        if (kernel_ == Kernel::nearest) {
            // one tap each; the subsample takes index m x box
            for (int& f : t.first) f = std::clamp(f, 0, a.mid - 1) * a.box;
            t.size = a.in;
        }
        return t;
    }
    int input_lo(const Axis& a, const Taps& t) const {
        return kernel_ == Kernel::nearest ? t.lo() : (mode1(a) == Axis::copy ? t.first.front() : t.lo()) * a.box;
    }
    int input_hi(const Axis& a, const Taps& t) const {
        if (kernel_ == Kernel::nearest) return t.hi();
        const int hi = mode1(a) == Axis::copy ? t.first.back() + 1 : t.hi();
        return std::min(hi * a.box, a.in);
    }

    Kernel kernel_ = Kernel::lanczos3;
    bool quantise_ = true;  // libvips's 1/64 mask positions (all but f64)
    Axis h_, v_;
    // the enlargement's affine (see the constructor)
    bool affine_ = false;
    InverseAffine map_{};
    Interpolator ip_ = Interpolator::bicubic;
    Rect reduced_;
};

}  // namespace

OpSpec resize_op_spec() {
    return {"resize",
            "scale by a factor or to a width/height with a kernel (as libvips resize: box shrink by the integer "
            "part, then reduce; enlarge by interpolation); halo: box x rint(support x residual) px (nearest 0), "
            "enlarging 1 (linear) or 2 (cubic)",
            1,
            1,
            {{.name = "scale",
              .type = ParamType::number,
              .default_text = "(from width/height)",
              .doc = "the factor (horizontal, and vertical unless vscale): 0.1 makes a tenth",
              .min = 1e-7,
              .max = 1e7},
             {.name = "vscale",
              .type = ParamType::number,
              .default_text = "scale",
              .doc = "the vertical factor",
              .min = 1e-7,
              .max = 1e7},
             {.name = "width",
              .type = ParamType::integer,
              .default_text = "(from scale)",
              .doc = "target width (instead of scale; the height follows the aspect ratio unless given)",
              .min = 1,
              .max = kMaxDimension},
             {.name = "height",
              .type = ParamType::integer,
              .default_text = "(from scale)",
              .doc = "target height (instead of scale)",
              .min = 1,
              .max = kMaxDimension},
             {.name = "kernel",
              .type = ParamType::string,
              .doc = "the reduce kernel (enlarging: nearest, bilinear, "
                     "or bicubic above linear)",
              .default_value = std::string("lanczos3"),
              .choices = kKernelNames},
             {.name = "gap",
              .type = ParamType::number,
              .doc = "box-shrink by floor(in / out / gap) first (0: reduce alone, slower, as libvips's gap)",
              .default_value = 2.0,
              .min = 0,
              .max = 1e6}},
            false,
            &make_op<ResizeOp>,
            false,
            "geometry",
            "box x rint(support x residual) (nearest 0; enlarging 1 linear, 2 cubic)"};
}

}  // namespace tessera
