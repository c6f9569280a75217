#include "io_list.hpp"
#include "tessera/io/io.hpp"

namespace tessera {

void register_io_ops(OpRegistry& r) {
    r.add(load_op_spec());
    r.add(save_op_spec());
    r.add(gdal_load_op_spec());
    r.add(reproject_op_spec());
    r.add(zarr_load_op_spec());
    r.add(stats_op_spec());
}

}  // namespace tessera
