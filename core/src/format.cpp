#include "tessera/core/format.hpp"

#include <limits>

namespace tessera {

namespace {
constexpr std::string_view kFormatNames[] = {"u8", "u16", "i16", "u32", "i32", "f32", "f64"};
constexpr std::string_view kInterpretationNames[] = {"multiband", "b-w", "srgb", "grey16", "rgb16"};
}  // namespace

std::string_view format_name(Format f) { return kFormatNames[int(f)]; }

std::optional<Format> parse_format(std::string_view s) {
    for (int i = 0; i < 7; ++i)
        if (kFormatNames[i] == s) return Format(i);
    // libvips and numpy spellings, so pipelines written by their users load
    if (s == "uchar" || s == "uint8") return Format::u8;
    if (s == "ushort" || s == "uint16") return Format::u16;
    if (s == "short" || s == "int16") return Format::i16;
    if (s == "uint" || s == "uint32") return Format::u32;
    if (s == "int" || s == "int32") return Format::i32;
    if (s == "float" || s == "float32") return Format::f32;
    if (s == "double" || s == "float64") return Format::f64;
    return std::nullopt;
}

double format_min(Format f) {
    return dispatch_format(f, [](auto t) { return double(std::numeric_limits<decltype(t)>::lowest()); });
}
double format_max(Format f) {
    return dispatch_format(f, [](auto t) { return double(std::numeric_limits<decltype(t)>::max()); });
}

std::string_view interpretation_name(Interpretation i) { return kInterpretationNames[int(i)]; }

std::optional<Interpretation> parse_interpretation(std::string_view s) {
    for (int i = 0; i < 5; ++i)
        if (kInterpretationNames[i] == s) return Interpretation(i);
    if (s == "bw") return Interpretation::bw;
    if (s == "rgb") return Interpretation::srgb;
    return std::nullopt;
}

Interpretation default_interpretation(int bands, Format f) {
    bool wide = f == Format::u16;
    if (bands == 1 || bands == 2) return wide ? Interpretation::grey16 : (f == Format::u8 ? Interpretation::bw : Interpretation::multiband);
    if (bands == 3 || bands == 4) return wide ? Interpretation::rgb16 : (f == Format::u8 ? Interpretation::srgb : Interpretation::multiband);
    return Interpretation::multiband;
}

}  // namespace tessera
