// Colour conversions as libvips 8.14's colour/ package computes them, as
// free functions on views, shared by colourspace and sharpen (which works
// in LabS). libvips converts along one chain,
//   sRGB / RGB16 / B_W / GREY16  <->  scRGB  <->  XYZ  <->  LAB  <->  LABS,
// each step a float function of the previous step's float value, and so
// does this: the same formulas, the same constants, the same lookup tables
// (colour.c's 8- and 16-bit gamma tables, XYZ2Lab.c's cube-root table):
//   - sRGB -> scRGB: table of v / max linearised (v <= 0.04045: v / 12.92,
//     else ((v + 0.055) / 1.055)^2.4), in float; B_W and GREY16 read their
//     one band as R = G = B;
//   - scRGB -> XYZ: libvips's D65 matrix x 100; XYZ -> scRGB its inverse;
//   - XYZ -> LAB: the cube root from a 100000-entry table, linearly
//     interpolated (7.787 t + 16 / 116 below 0.008856), D65 white
//     (95.047, 100, 108.8827); LAB -> XYZ: Lab2XYZ.c's closed form;
//   - LAB <-> LABS: L x 32767 / 100, a and b x 256, as signed short;
//   - scRGB -> sRGB / RGB16: the inverse gamma from a table of integer
//     levels, linearly interpolated, rint, the linear value clipped to
//     [0, 1] first; -> B_W / GREY16: Y = 0.2 R + 0.7 G + 0.1 B, then the
//     same table;
//   - B_W -> sRGB (GREY16 -> RGB16): the band copied three times (libvips's
//     BW2sRGB), and back through scRGB.
// Bands beyond the colour ones (alpha) are carried as they are, clipped to
// the output format, scaled by 256 between 8- and 16-bit spaces (as
// libvips's scRGB2sRGB does for 16-bit output; not yet checked against
// libvips for every pair).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tessera/core/buffer.hpp"
#include "tessera/core/image_info.hpp"

namespace tessera {

enum class Space { srgb, rgb16, bw, grey16, scrgb, xyz, lab, labs };
// libvips's names (lower case), in Space's order.
inline const std::vector<std::string> kSpaceNames = {"srgb", "rgb16", "b-w", "grey16",
                                                     "scrgb", "xyz", "lab", "labs"};

// The space an image's header declares (sRGB, RGB16, B_W, GREY16), if any.
std::optional<Space> space_of(Interpretation i);
// How a space's pixels are stored: its colour bands and format.
int space_bands(Space s);
Format space_format(Space s);
// The interpretation tessera carries for a space (multiband for the float
// and Lab spaces, which tessera's headers do not name).
Interpretation space_interpretation(Space s);

// dst (space `to`, space_format(to)) = src (space `from`, any format: read
// as float) converted, pixel by pixel; src covers dst.rect with
// space_bands(from) + e bands, dst has space_bands(to) + e.
void convert_colour(const ConstTile& src, Space from, const Tile& dst, Space to);

}  // namespace tessera
