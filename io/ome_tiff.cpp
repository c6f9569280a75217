// OME-TIFF metadata: the OME-XML of the OME 2016-06 schema
// (https://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd; a copy in
// ../shared/data/schemas/ome-2016-06, which the tests validate against), as
// Bio-Formats 6+ and raw2ometiff write it for a pyramid:
//  - one Image, one Pixels with DimensionOrder XYCZT, SizeZ = SizeT = 1,
//    Type, the physical pixel size and its unit;
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

// OME's UnitsLength symbols (the schema's enumeration, but "reference frame").
const char* const kUnits[] = {"Ym", "Zm", "Em", "Pm",   "Tm",   "Gm", "Mm", "km", "hm", "dam", "m",  "dm",
                              "cm", "mm", "µm", "nm",   "pm",   "fm", "am", "zm", "ym", "Å",   "thou", "li",
                              "in", "ft", "yd", "mi",   "ua",   "ly", "pc", "pt", "pixel"};

std::string trim(const std::string& s) {
    const auto a = s.find_first_not_of(" \t");
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

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

std::vector<std::string> parse_channel_names(const std::string& text, int count) {
    std::vector<std::string> names;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        names.push_back(trim(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (int(names.size()) != count)
        throw ParamError("channel_names", "'" + text + "' names " + std::to_string(names.size()) +
                                              " channel(s), and the image has " + std::to_string(count) +
                                              (count == 1 ? " (an 8-bit RGB image is one RGB channel)" : "") +
                                              "; give one name per channel, separated by commas");
    for (const std::string& n : names)
        if (n.empty()) throw ParamError("channel_names", "'" + text + "' has an empty name; name every channel");
    return names;
}

void parse_pixel_size(const std::string& text_in, OmeOptions& o) {
    const std::string text = trim(text_in);
    const auto space = text.find_last_of(" \t");
    auto bad = [&](const std::string& why) {
        return ParamError("pixel_size", "'" + text_in + "': " + why +
                                            "; give \"X[,Y] UNIT\", e.g. \"0.325 um\" or \"0.5,0.52 µm\"");
    };
    if (space == std::string::npos) throw bad("no unit");
    std::string unit = text.substr(space + 1);
    const std::string sizes = trim(text.substr(0, space));
    if (unit == "um" || unit == "micron" || unit == "microns" || unit == "\xce\xbcm" /* Greek mu */) unit = "µm";
    if (unit == "A" || unit == "angstrom") unit = "Å";
    bool known = false;
    for (const char* u : kUnits) known = known || unit == u;
    if (!known) {
        std::string list;
        for (const char* u : kUnits) list += (list.empty() ? "" : ", ") + std::string(u);
        throw ParamError("pixel_size", "unknown unit '" + unit + "'; use one of OME's: " + list + " (um for µm)");
    }
    std::vector<double> v;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = sizes.find(',', start);
        const std::string part = trim(sizes.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        double d = 0;
        auto r = std::from_chars(part.data(), part.data() + part.size(), d);
        if (part.empty() || r.ec != std::errc() || r.ptr != part.data() + part.size())
            throw bad("'" + part + "' is not a number");
        if (!std::isfinite(d) || d <= 0) throw bad("a pixel size is a number above 0");
        v.push_back(d);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    if (v.size() > 2) throw bad("at most two sizes (X and Y)");
    o.pixel_x = v[0];
    o.pixel_y = v.size() > 1 ? v[1] : v[0];
    o.unit = unit;
}

bool ome_interleaved_rgb(const ImageInfo& info) {
    return info.format == Format::u8 && info.bands == 3 && info.interpretation == Interpretation::srgb;
}

std::string ome_xml(const ImageInfo& info, const OmeOptions& o, int planes, const std::string& file_name,
                    const std::string& uuid) {
    const bool rgb = planes == 1 && info.bands > 1;
    const int channels = rgb ? 1 : info.bands;
    const std::string file = escape(file_name);
    std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x += "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
         "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
         "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
         "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" UUID=\"" + uuid + "\" Creator=\"tessera\">\n";
    x += "  <Image ID=\"Image:0\" Name=\"" + file + "\">\n";
    if (!o.description.empty()) x += "    <Description>" + escape(o.description) + "</Description>\n";
    x += "    <Pixels ID=\"Pixels:0\" DimensionOrder=\"XYCZT\" Type=\"" + std::string(pixel_type(info.format)) +
         "\" SignificantBits=\"" + std::to_string(8 * format_size(info.format)) + "\" Interleaved=\"" +
         (rgb ? "true" : "false") + "\" BigEndian=\"false\" SizeX=\"" + std::to_string(info.width) + "\" SizeY=\"" +
         std::to_string(info.height) + "\" SizeC=\"" + std::to_string(info.bands) + "\" SizeZ=\"1\" SizeT=\"1\"";
    if (o.pixel_x > 0)
        x += " PhysicalSizeX=\"" + number(o.pixel_x) + "\" PhysicalSizeXUnit=\"" + o.unit + "\" PhysicalSizeY=\"" +
             number(o.pixel_y) + "\" PhysicalSizeYUnit=\"" + o.unit + "\"";
    x += ">\n";
    for (int c = 0; c < channels; ++c) {
        const std::string name = o.channel_names.empty() ? (rgb ? "RGB" : "C" + std::to_string(c)) : o.channel_names[c];
        x += "      <Channel ID=\"Channel:0:" + std::to_string(c) + "\" Name=\"" + escape(name) +
             "\" SamplesPerPixel=\"" + std::to_string(rgb ? 3 : 1) + "\"><LightPath/></Channel>\n";
    }
    for (int p = 0; p < planes; ++p)
        x += "      <TiffData IFD=\"" + std::to_string(p) + "\" FirstC=\"" + std::to_string(p) +
             "\" FirstZ=\"0\" FirstT=\"0\" PlaneCount=\"1\"><UUID FileName=\"" + file + "\">" + uuid +
             "</UUID></TiffData>\n";
    for (int p = 0; p < planes; ++p) x += "      <Plane TheC=\"" + std::to_string(p) + "\" TheZ=\"0\" TheT=\"0\"/>\n";
    x += "    </Pixels>\n  </Image>\n</OME>\n";
    return x;
}

std::string ome_uuid(std::uint64_t hi, std::uint64_t lo) {
    hi = (hi & ~std::uint64_t(0xF000)) | 0x4000;                                 // version 4's shape
    lo = (lo & ~(std::uint64_t(0xC) << 60)) | (std::uint64_t(0x8) << 60);       // RFC 4122 variant
    char buf[64];
    std::snprintf(buf, sizeof buf, "urn:uuid:%08x-%04x-%04x-%04x-%012llx", unsigned(hi >> 32),
                  unsigned((hi >> 16) & 0xFFFF), unsigned(hi & 0xFFFF), unsigned(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
    return buf;
}

}  // namespace tessera::io
