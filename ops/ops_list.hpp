// One spec per op file; registry.cpp adds each with one line.
#pragma once

#include "tessera/core/op.hpp"

namespace tessera {

OpSpec black_op_spec();
OpSpec insert_op_spec();
OpSpec arrayjoin_op_spec();
OpSpec extract_area_op_spec();
OpSpec embed_op_spec();
OpSpec cast_op_spec();
OpSpec shrink_op_spec();
OpSpec merge_op_spec();
OpSpec mosaic_op_spec();
OpSpec flatfield_op_spec();
OpSpec resize_op_spec();
OpSpec rotate_op_spec();
OpSpec flip_op_spec();
OpSpec affine_op_spec();
OpSpec linear_op_spec();
OpSpec extract_band_op_spec();
OpSpec bandjoin_op_spec();
OpSpec invert_op_spec();
OpSpec flatten_op_spec();
OpSpec scale_op_spec();
OpSpec hist_equal_op_spec();
OpSpec normalise_op_spec();
OpSpec calc_op_spec();
OpSpec compare_op_spec();
OpSpec ifthenelse_op_spec();
OpSpec bandmean_op_spec();
OpSpec gamma_op_spec();
OpSpec premultiply_op_spec();
OpSpec unpremultiply_op_spec();
OpSpec composite_op_spec();
OpSpec conv_op_spec();
OpSpec gaussblur_op_spec();
OpSpec median_op_spec();
OpSpec colourspace_op_spec();
OpSpec sharpen_op_spec();

}  // namespace tessera
