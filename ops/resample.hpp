// Sub-pixel shifts by separable bilinear interpolation: what mosaic uses to
// place an image at a fractional position, kept free of any op so that an
// affine or resize op, or registration's check of a sub-pixel offset, can
// reuse it.
//
// Convention: pixel i of an image is its sample at i (the pixel's centre),
// as in libvips' affine and GDAL's warper. Shifting by (dx, dy) gives the
// image whose pixel (X, Y) is the source sampled at (X - dx, Y - dy): with
// u = X - dx, i = floor(u), t = u - i, the value is (1 - t) s[i] + t s[i+1],
// columns first, then rows, the same arithmetic in the same order for a
// pixel whatever tile it falls in (so tile size never changes a bit).
//
// Why bilinear and not a cubic (Catmull-Rom, libvips' bicubic): a weighted
// mean of the two neighbours never leaves their range, so it does not ring
// at the sharp edges of a tile or next to saturated pixels, integer
// samples need no clamping beyond the last ulp, and its support is one
// pixel, so a tile needs one more column and row of its source (the halo).
// It softens the finest detail a little (a half-pixel shift is a [1 1]/2
// filter); the shift is at most a pixel and only where registration found
// a fraction, which beats being up to half a pixel off.
//
// The edge: samples outside `bounds` (the source image's extent) do not
// exist; where u lies between the last sample and one beyond it, only one
// sample has weight and the value is that sample (the interpolation
// normalised by the weight of the samples that exist). Further out the
// nearest edge sample stands in; callers decide where an image covers.
//
// Integer formats are rounded to nearest (half away from zero); floats keep
// the interpolated value. float arithmetic for samples of up to 16 bits,
// double for wider ones and for f32/f64.
#pragma once

#include "tessera/core/buffer.hpp"
#include "tessera/core/rect.hpp"

namespace tessera {

// The source rect (its frame, inside bounds) that shift_bilinear reads to
// write dst (destination frame): dst moved back by the shift, grown to the
// samples each side of a fractional position. Empty if dst samples nothing
// within a pixel of bounds.
Rect bilinear_support(const Rect& dst, double dx, double dy, const Rect& bounds);

// Writes every pixel of dst: the source shifted by (dx, dy), bilinear.
// src must hold bilinear_support(dst.rect, dx, dy, bounds) and have dst's
// bands and format; dx and dy must be finite.
void shift_bilinear(const ConstTile& src, const Rect& bounds, double dx, double dy, const Tile& dst);

// The same with a Catmull-Rom cubic (libvips' bicubic): sharper (on a
// textured specimen about half bilinear's error against the truth), but
// its negative lobes overshoot next to sharp edges (clamped to the
// format's range) and it reads two samples each side. Samples past
// `bounds` are the edge sample repeated (libvips' extend), so the value
// near an edge is no longer the weighted mean of the samples that exist.
Rect cubic_support(const Rect& dst, double dx, double dy, const Rect& bounds);
void shift_cubic(const ConstTile& src, const Rect& bounds, double dx, double dy, const Tile& dst);

}  // namespace tessera
