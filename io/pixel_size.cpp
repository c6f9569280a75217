#include "pixel_size.hpp"

#include <cmath>
#include <cstdlib>
#include <utility>
#include <vector>

#include "tessera/core/error.hpp"

namespace tessera::io {

namespace {

std::string trim(const std::string& s) {
    const auto a = s.find_first_not_of(" \t");
    if (a == std::string::npos) return {};
    return s.substr(a, s.find_last_not_of(" \t") + 1 - a);
}

double size_of(const std::string& text, const std::string& value) {
    const std::string t = trim(text);
    char* end = nullptr;
    const double v = t.empty() ? 0 : std::strtod(t.c_str(), &end);
    if (t.empty() || *end != '\0' || !std::isfinite(v) || v <= 0)
        throw ParamError("pixel_size", "'" + value + "': '" + t +
                                           "' is not a size above 0; write \"X[,Y[,Z]] UNIT\", "
                                           "e.g. \"0.325 um\" or \"0.5,0.52 micrometer\"");
    return v;
}

}  // namespace

PixelSize parse_pixel_size(const std::string& value) {
    const std::string v = trim(value);
    const auto space = v.find_last_of(" \t");
    if (space == std::string::npos)
        throw ParamError("pixel_size", "'" + value + "' has no unit; write \"X[,Y[,Z]] UNIT\", e.g. \"0.325 um\"");
    const std::string numbers = trim(v.substr(0, space)), unit = v.substr(space + 1);
    PixelSize p;
    std::vector<std::string> sizes{""};
    for (char c : numbers)
        if (c == ',')
            sizes.emplace_back();
        else
            sizes.back().push_back(c);
    if (sizes.size() > 3)
        throw ParamError("pixel_size",
                         "'" + value + "' gives more sizes than X, Y and Z: at most three, \"X[,Y[,Z]] UNIT\"");
    p.x = size_of(sizes[0], value);
    p.y = sizes.size() > 1 ? size_of(sizes[1], value) : p.x;
    if (sizes.size() > 2) p.z = size_of(sizes[2], value);
    // NGFF 0.4's space units (the common ones; the schema lists the SI
    // prefixes from yocto to yotta), with OME-XML's symbol for each
    static const std::pair<const char*, std::pair<const char*, const char*>> kUnits[] = {
        {"angstrom", {"angstrom", "Å"}},
        {"A", {"angstrom", "Å"}},
        {"Å", {"angstrom", "Å"}},
        {"picometer", {"picometer", "pm"}},
        {"pm", {"picometer", "pm"}},
        {"nanometer", {"nanometer", "nm"}},
        {"nm", {"nanometer", "nm"}},
        {"micrometer", {"micrometer", "µm"}},
        {"um", {"micrometer", "µm"}},
        {"µm", {"micrometer", "µm"}},
        {"μm", {"micrometer", "µm"}},  // (Greek mu)
        {"micron", {"micrometer", "µm"}},
        {"millimeter", {"millimeter", "mm"}},
        {"mm", {"millimeter", "mm"}},
        {"centimeter", {"centimeter", "cm"}},
        {"cm", {"centimeter", "cm"}},
        {"meter", {"meter", "m"}},
        {"m", {"meter", "m"}},
        {"kilometer", {"kilometer", "km"}},
        {"km", {"kilometer", "km"}},
        {"inch", {"inch", "in"}},
        {"in", {"inch", "in"}},
        {"foot", {"foot", "ft"}},
        {"ft", {"foot", "ft"}},
    };
    for (const auto& [name, u] : kUnits)
        if (unit == name) {
            p.unit = u.first;
            p.symbol = u.second;
            return p;
        }
    throw ParamError("pixel_size", "unknown unit '" + unit + "' in '" + value +
                                       "'; use nm, um (micrometer), mm, cm, m, pm, angstrom, inch or foot");
}

std::vector<std::string> check_channel_names(const std::vector<std::string>& names, int bands) {
    if (names.empty()) return names;
    auto shown = [&] {
        std::string t = "[";
        for (std::size_t k = 0; k < names.size(); ++k) t += (k ? ", \"" : "\"") + names[k] + "\"";
        return t + "]";
    };
    if (int(names.size()) != bands) {
        // "a,b" as one name: last round's comma-separated string, or a
        // command line's list passed through whole
        const bool commas = names.size() == 1 && names[0].find(',') != std::string::npos;
        throw ParamError("channel_names",
                         shown() + " gives " + std::to_string(names.size()) + " name" + (names.size() == 1 ? "" : "s") +
                             " for an image of " + std::to_string(bands) +
                             " channels (an 8-bit RGB OME-TIFF is one RGB channel); give one name per channel" +
                             (commas ? ", as a list of strings ([\"A\", \"B\"], not \"A,B\")" : ""));
    }
    for (const std::string& n : names)
        if (trim(n).empty()) throw ParamError("channel_names", shown() + " has an empty name; name every channel");
    return names;
}

PlaneSizes check_plane_sizes(int size_z, int size_t_, int bands) {
    PlaneSizes s{size_z, size_t_};
    if (size_z < 1) throw ParamError("size_z", "is " + std::to_string(size_z) + "; give 1 or more focal planes");
    if (size_t_ < 1) throw ParamError("size_t", "is " + std::to_string(size_t_) + "; give 1 or more time points");
    if (bands % s.planes() != 0)
        throw ParamError(size_z > 1 ? "size_z" : "size_t",
                         "the image's " + std::to_string(bands) + " bands do not split into " + std::to_string(size_z) +
                             " focal planes x " + std::to_string(size_t_) +
                             " time points of the same channels (the bands are channel c of plane z, time t at c + C "
                             "(z + Z t)); bandjoin every plane's channels, or give sizes whose product divides " +
                             std::to_string(bands));
    return s;
}

}  // namespace tessera::io
