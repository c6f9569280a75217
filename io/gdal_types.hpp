// Tessera's pixel formats as GDAL data types and back, for the .cpp files of
// io/ that call GDAL (this header includes gdal.h: keep it out of headers
// the rest of io/ includes).
#pragma once

#include <gdal.h>

#include <optional>

#include "tessera/core/format.hpp"

namespace tessera::io {

// The format of a GDAL data type; none for types Tessera has no format for
// (complex, 64-bit integers, ...).
inline std::optional<Format> format_of(GDALDataType t) {
    switch (t) {
        case GDT_Byte: return Format::u8;
        case GDT_UInt16: return Format::u16;
        case GDT_Int16: return Format::i16;
        case GDT_UInt32: return Format::u32;
        case GDT_Int32: return Format::i32;
        case GDT_Float32: return Format::f32;
        case GDT_Float64: return Format::f64;
        default: return std::nullopt;
    }
}

inline GDALDataType gdal_type(Format f) {
    switch (f) {
        case Format::u8: return GDT_Byte;
        case Format::u16: return GDT_UInt16;
        case Format::i16: return GDT_Int16;
        case Format::u32: return GDT_UInt32;
        case Format::i32: return GDT_Int32;
        case Format::f32: return GDT_Float32;
        case Format::f64: return GDT_Float64;
    }
    return GDT_Byte;
}

}  // namespace tessera::io
