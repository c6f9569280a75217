// One spec per io op file; register.cpp adds each with one line.
#pragma once

#include "tessera/core/op.hpp"

namespace tessera {

OpSpec load_op_spec();
OpSpec save_op_spec();
OpSpec gdal_load_op_spec();
OpSpec reproject_op_spec();
OpSpec zarr_load_op_spec();
OpSpec stats_op_spec();

}  // namespace tessera
