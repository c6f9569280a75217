#include "ops_list.hpp"
#include "tessera/ops/ops.hpp"

namespace tessera {

void register_ops(OpRegistry& r) {
    r.add(black_op_spec());
    r.add(insert_op_spec());
    r.add(arrayjoin_op_spec());
    r.add(extract_area_op_spec());
    r.add(embed_op_spec());
    r.add(cast_op_spec());
    r.add(shrink_op_spec());
    r.add(merge_op_spec());
    r.add(mosaic_op_spec());
    r.add(flatfield_op_spec());
    r.add(resize_op_spec());
    r.add(rotate_op_spec());
    r.add(flip_op_spec());
    r.add(affine_op_spec());
    r.add(linear_op_spec());
    r.add(extract_band_op_spec());
    r.add(bandjoin_op_spec());
    r.add(invert_op_spec());
    r.add(flatten_op_spec());
    r.add(scale_op_spec());
    r.add(hist_equal_op_spec());
    r.add(normalise_op_spec());
    r.add(calc_op_spec());
    r.add(compare_op_spec());
    r.add(ifthenelse_op_spec());
    r.add(bandmean_op_spec());
    r.add(gamma_op_spec());
    r.add(premultiply_op_spec());
    r.add(unpremultiply_op_spec());
    r.add(composite_op_spec());
    r.add(conv_op_spec());
    r.add(gaussblur_op_spec());
    r.add(median_op_spec());
    r.add(colourspace_op_spec());
    r.add(sharpen_op_spec());
}

}  // namespace tessera
