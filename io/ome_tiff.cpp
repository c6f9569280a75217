// OME-TIFF metadata: the OME-XML of the OME 2016-06 schema
// (https://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd; a copy in
// ../shared/data/schemas/ome-2016-06, which the tests validate against), as
// Bio-Formats 6+ and raw2ometiff write it for a pyramid:
//  - one Image, one Pixels with DimensionOrder XYCZT, SizeC/Z/T as the
//    save's size_z and size_t split the bands (pixel_size.hpp; both 1 by
//    default), Type, the physical pixel size (and z spacing) and its unit;
//  - a Channel per channel (Name, SamplesPerPixel), a TiffData per plane
//    naming its main IFD (the full-resolution plane; its reduced levels are
//    its SubIFDs, which OME-XML does not list: readers find them in the
//    TIFF) and the file by UUID, and a Plane per plane;
//  - the OME element's UUID, which the TiffData's UUID repeat with the
//    file's name (tifffile and Bio-Formats resolve multi-file sets by it).
// The UUID is made from a digest of the file's tile bytes by the writer, so
// the same image gives the same file (output bits never depend on the run).
//
// Channels. 8-bit RGB (3 bands, sRGB) is one interleaved plane with
// SamplesPerPixel 3, as Bio-Formats writes RGB and raw2ometiff --rgb does:
// QuPath then opens it as a brightfield RGB image, and JPEG compresses it as
// YCbCr (a third of the bytes of three grey planes at the same quality).
// Every other image, RGB of 16 bits and float included, is one plane per
// band (PlanarConfiguration contig with one sample: each channel its own
// IFD), raw2ometiff's default, which fluorescence viewers expect.
#include "ome_tiff.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "tessera/core/error.hpp"

namespace tessera::io {

namespace {

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string number(double d) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

const char* pixel_type(Format f) {
    switch (f) {
        case Format::u8: return "uint8";
        case Format::u16: return "uint16";
        case Format::i16: return "int16";
        case Format::u32: return "uint32";
        case Format::i32: return "int32";
        case Format::f32: return "float";
        case Format::f64: return "double";
    }
    return "uint8";
}

}  // namespace

bool ome_interleaved_rgb(const ImageInfo& info, const PlaneSizes& planes) {
    return info.format == Format::u8 && info.bands == 3 && info.interpretation == Interpretation::srgb &&
           planes.planes() == 1;
}

std::string ome_xml(const ImageInfo& info, const OmeOptions& o, int planes, const std::string& file_name,
                    const std::string& uuid) {
    const bool rgb = planes == 1 && info.bands > 1;
    const PlaneSizes& zt = o.planes;
    const int size_c = zt.channels(info.bands);
    const int channels = rgb ? 1 : size_c;
    const std::string file = escape(file_name);
    std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x += "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
         "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
         "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
         "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" UUID=\"" +
         uuid + "\" Creator=\"tessera\">\n";
    x += "  <Image ID=\"Image:0\" Name=\"" + file + "\">\n";
    if (!o.description.empty()) x += "    <Description>" + escape(o.description) + "</Description>\n";
    x += "    <Pixels ID=\"Pixels:0\" DimensionOrder=\"XYCZT\" Type=\"" + std::string(pixel_type(info.format)) +
         "\" SignificantBits=\"" + std::to_string(8 * format_size(info.format)) + "\" Interleaved=\"" +
         (rgb ? "true" : "false") + "\" BigEndian=\"false\" SizeX=\"" + std::to_string(info.width) + "\" SizeY=\"" +
         std::to_string(info.height) + "\" SizeC=\"" + std::to_string(size_c) + "\" SizeZ=\"" + std::to_string(zt.z) +
         "\" SizeT=\"" + std::to_string(zt.t) + "\"";
    if (o.pixel_x > 0)
        x += " PhysicalSizeX=\"" + number(o.pixel_x) + "\" PhysicalSizeXUnit=\"" + o.unit + "\" PhysicalSizeY=\"" +
             number(o.pixel_y) + "\" PhysicalSizeYUnit=\"" + o.unit + "\"";
    if (o.pixel_z > 0) x += " PhysicalSizeZ=\"" + number(o.pixel_z) + "\" PhysicalSizeZUnit=\"" + o.unit + "\"";
    x += ">\n";
    for (int c = 0; c < channels; ++c) {
        const std::string name = o.channel_names.empty() ? (rgb ? "RGB" : "C" + std::to_string(c)) : o.channel_names[c];
        x += "      <Channel ID=\"Channel:0:" + std::to_string(c) + "\" Name=\"" + escape(name) +
             "\" SamplesPerPixel=\"" + std::to_string(rgb ? 3 : 1) + "\"><LightPath/></Channel>\n";
    }
    // IFD p holds plane p of the XYCZT order: channel fastest, then z, then
    // t; `attr` is TiffData's First or Plane's The
    auto coordinates = [&](int p, const std::string& attr) {
        const int c = p % channels, z = (p / channels) % zt.z, t = p / (channels * zt.z);
        return attr + "C=\"" + std::to_string(c) + "\" " + attr + "Z=\"" + std::to_string(z) + "\" " + attr + "T=\"" +
               std::to_string(t) + "\"";
    };
    for (int p = 0; p < planes; ++p)
        x += "      <TiffData IFD=\"" + std::to_string(p) + "\" " + coordinates(p, "First") +
             " PlaneCount=\"1\"><UUID FileName=\"" + file + "\">" + uuid + "</UUID></TiffData>\n";
    for (int p = 0; p < planes; ++p) x += "      <Plane " + coordinates(p, "The") + "/>\n";
    x += "    </Pixels>\n  </Image>\n</OME>\n";
    return x;
}

std::string ome_uuid(std::uint64_t hi, std::uint64_t lo) {
    hi = (hi & ~std::uint64_t(0xF000)) | 0x4000;                           // version 4's shape
    lo = (lo & ~(std::uint64_t(0xC) << 60)) | (std::uint64_t(0x8) << 60);  // RFC 4122 variant
    char buf[64];
    std::snprintf(buf, sizeof buf, "urn:uuid:%08x-%04x-%04x-%04x-%012llx", unsigned(hi >> 32),
                  unsigned((hi >> 16) & 0xFFFF), unsigned(hi & 0xFFFF), unsigned(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
    return buf;
}

}  // namespace tessera::io
