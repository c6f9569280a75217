// Resampling kernels for scale and affine ops, as free functions on views
// (dst's rect says what to compute; src must cover what it needs), kept free
// of any op so that resize, affine and a writer's thumbnail can share them.
// (resample.hpp's shifts are translations only: one weight per axis for a
// whole tile, which a scale or a rotation does not have.)
//
// Separable resampling: one axis at a time. An output index i along an axis
// reads the source indices first[i] .. first[i] + n - 1, each clamped into
// [0, size) (libvips's copy extension at the edges, as its reduce and
// resize's affine use), with weights w[i * n ..]; the taps of an index
// depend only on the index, never on the tile, so tile size changes no bit.
// Sums are in double; integer formats are rounded half up and clipped, or
// summed in libvips reduce's fixed point (Taps::fixed); floats are stored
// as they are.
//
// The 2-D affine sampler maps every output pixel through an inverse affine
// (libvips's vips_affine: x = ia (X - odx) + ib (Y - ody) - idx, ...) and
// interpolates nearest (floor), bilinear or bicubic (Catmull-Rom) with
// libvips 8.14's arithmetic (resample/interpolate.c, bicubic.cpp):
// bilinear weights in float from the exact offsets, 12-bit fixed point for
// u8; bicubic weights from tables of offsets rounded to 1/64, 12-bit fixed
// point for u8, each row then the column in double for other formats
// (exact offsets for f64). Samples outside the input read as the
// background (or the edge, extend copy).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/image_info.hpp"
#include "tessera/core/rect.hpp"

// A hot loop's function built twice on x86-64 with GCC, for the baseline
// and for AVX2, the loader picking one by the CPU (target_clones, an ifunc):
// the build assumes no more than baseline x86-64, and AVX2 brings no fused
// multiply-add, so both clones compute the same bits. (Not under the
// sanitizers: their run-time and ifunc resolvers run in an order that is
// not guaranteed.)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define TESSERA_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TESSERA_VECTOR_CLONES
#endif

namespace tessera {

// The reduce kernels of libvips's VipsKernel that resize offers.
enum class Kernel { nearest, linear, cubic, lanczos3 };
// libvips's names, in Kernel's order.
inline const std::vector<std::string> kKernelNames = {"nearest", "linear", "cubic", "lanczos3"};
// The kernel's half-width at scale 1 (nearest 0, linear 1, cubic 2, lanczos3 3).
double kernel_support(Kernel k);
// The kernel's value at distance d (in output pixels, so a reduce by s
// evaluates it at d / s): triangle, Catmull-Rom (B = 0, C = 0.5), Lanczos a = 3.
double kernel_weight(Kernel k, double d);

// One axis of a separable resampling: output index d0 + i reads source
// indices first[i] + j, j < n, clamped into [0, size), weighted by
// w[i * n + j].
struct Taps {
    int n = 1;
    int size = 0;  // the source axis length (for the clamp)
    std::vector<int> first;
    std::vector<double> w;
    // Integer formats sum as libvips's reduce does: each weight truncated to
    // 12 fractional bits (VIPS_INTERPOLATE_SCALE), sum + 2048 shifted down
    // by 12 (half away from zero for signed), clipped. Off: double sums,
    // rounded half up.
    bool fixed = false;
    // The clamped source range [lo, hi) the taps read.
    int lo() const;
    int hi() const;
};

// A libvips reduce along one axis (vips_reduceh/vips_reducev, centre
// convention): output index X samples the source at
// u = (X + 0.5) * shrink - 0.5 - offset, with kernel k stretched by shrink
// (2 rint(support * shrink) + 1 taps, weights normalised to sum 1);
// nearest takes the sample nearest u. The taps are fixed-point (above).
// quantise: the position within its pixel rounded to 1/64 first, as
// libvips's mask tables do for every format but double.
Taps reduce_taps(Kernel k, double shrink, double offset, int size, int d0, int count, bool quantise);
// An enlargement along one axis as libvips resize's affine does it: output
// index X samples the source at u = X / scale - offset (offset 0.5 for
// linear and cubic, libvips's centre shift; 0 for nearest), nearest
// (floor), linear (two taps) or cubic (Catmull-Rom, four; also lanczos3,
// as libvips resize upsizes every kernel above linear with bicubic).
Taps upscale_taps(Kernel k, double scale, double offset, int size, int d0, int count);

// dst rows = taps over src rows (columns kept): dst.rect.y + i reads source
// rows taps.first[i] + j (clamped); src covers those rows and dst's columns.
void resample_rows(const ConstTile& src, const Taps& taps, const Tile& dst);
// The same along columns: src covers dst's rows and the taps' columns.
void resample_columns(const ConstTile& src, const Taps& taps, const Tile& dst);

// libvips's affine interpolators.
enum class Interpolator { nearest, bilinear, bicubic };
inline const std::vector<std::string> kInterpolatorNames = {"nearest", "bilinear", "bicubic"};

// The inverse map of an affine, output pixel -> input position:
// x = m[0] X + m[1] Y + m[2], y = m[3] X + m[4] Y + m[5].
using InverseAffine = std::array<double, 6>;

// The input rect (inside bounds) that affine_sample reads to write dst:
// every sample the interpolator touches for a pixel of dst. Empty if none.
Rect affine_support(const Rect& dst, const InverseAffine& m, Interpolator ip, const Rect& bounds);

// Writes every pixel of dst: the input at the mapped position, interpolated.
// As libvips 8.14: a pixel whose position has floor(x) outside [-1, width)
// or floor(y) outside [-1, height) is the background; otherwise samples
// outside bounds read as the background (copy_edges false: libvips's
// default extend) or the nearest edge sample (copy_edges true: extend
// copy). background: one value per band. src must hold affine_support.
void affine_sample(const ConstTile& src, const Rect& bounds, const InverseAffine& m, Interpolator ip, bool copy_edges,
                   const std::vector<double>& background, const Tile& dst);

}  // namespace tessera

namespace tessera {

// The georeference of an image whose pixel corner (X, Y) is the input's
// corner (m[0] X + m[1] Y + m[2], m[3] X + m[4] Y + m[5]) (a flip, a
// rotation, an affine's inverse).
GeoRef mapped_geo(const GeoRef& g, const InverseAffine& m);

// dst(X, Y) = src(m(X, Y)) for an exact pixel map (a flip or a right-angle
// rotation): m's entries are whole and src holds every mapped pixel.
void remap_pixels(const ConstTile& src, const InverseAffine& m, const Tile& dst);

}  // namespace tessera

namespace tessera {

// A convolution mask as libvips's matrix images: w x h coefficients, row
// major, with a scale and an offset; the output is
// sum(mask x input) / scale + offset, the mask's centre (w / 2, h / 2) over
// the output pixel.
struct Mask {
    int w = 1, h = 1;
    std::vector<double> c;
    double scale = 1, offset = 0;
    // How far the mask reaches from its centre: left/up w / 2 (h / 2),
    // right/down the rest.
    int left() const { return w / 2; }
    int up() const { return h / 2; }
    int right() const { return w - 1 - w / 2; }
    int down() const { return h - 1 - h / 2; }
    // out grown by the mask's reach, clipped to bounds: what convolve reads.
    Rect support(const Rect& out, const Rect& bounds) const {
        return Rect{out.x - left(), out.y - up(), out.w + w - 1, out.h + h - 1}.intersect(bounds);
    }
};

// The mask libvips's integer convolution (convolution/convi.c, its C
// path) applies: each coefficient rint (vips__image_intize), and the scale
// and the offset of the mask as given, rint (vips_convi_gen reads them off
// the original mask, not intize's gain-corrected scale); a scale that
// rounds to 0 becomes 1.
Mask intize(const Mask& m);

// dst = src convolved with m. src holds m.support(dst.rect, bounds);
// samples outside bounds read the nearest edge pixel (libvips's conv embeds
// its input with extend copy, so the output keeps the input's size).
// integer (libvips convi's C path): m must be intized; integer formats sum
// in integers, (sum + scale / 2) / scale + offset with C's truncating
// division, clipped to dst's format; float formats sum in double.
// Otherwise (libvips convf) every format sums in double and stores
// sum / scale + offset in dst's format. src and dst formats may differ
// (an integer image convolved in float precision writes f32).
void convolve(const ConstTile& src, const Rect& bounds, const Mask& m, bool integer, const Tile& dst);

}  // namespace tessera
