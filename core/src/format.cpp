#include "tessera/core/format.hpp"

#include <iterator>
#include <limits>
#include <utility>

namespace tessera {

namespace {
constexpr std::string_view kFormatNames[] = {"u8", "u16", "i16", "u32", "i32", "f32", "f64"};
constexpr std::string_view kInterpretationNames[] = {"multiband", "b-w", "srgb", "grey16", "rgb16"};
}  // namespace

std::string_view format_name(Format f) { return kFormatNames[int(f)]; }

namespace {
// libvips and numpy spellings, so pipelines written by their users load
constexpr std::pair<std::string_view, Format> kFormatAliases[] = {{"uchar", Format::u8},   {"uint8", Format::u8},
                                                                  {"ushort", Format::u16}, {"uint16", Format::u16},
                                                                  {"short", Format::i16},  {"int16", Format::i16},
                                                                  {"uint", Format::u32},   {"uint32", Format::u32},
                                                                  {"int", Format::i32},    {"int32", Format::i32},
                                                                  {"float", Format::f32},  {"float32", Format::f32},
                                                                  {"double", Format::f64}, {"float64", Format::f64}};
}  // namespace

std::optional<Format> parse_format(std::string_view s) {
    for (int i = 0; i < 7; ++i)
        if (kFormatNames[i] == s) return Format(i);
    for (const auto& [name, f] : kFormatAliases)
        if (name == s) return f;
    return std::nullopt;
}

std::vector<std::string> format_spellings() {
    std::vector<std::string> out(std::begin(kFormatNames), std::end(kFormatNames));
    for (const auto& a : kFormatAliases) out.emplace_back(a.first);
    return out;
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
    if (bands == 1 || bands == 2)
        return wide ? Interpretation::grey16 : (f == Format::u8 ? Interpretation::bw : Interpretation::multiband);
    if (bands == 3 || bands == 4)
        return wide ? Interpretation::rgb16 : (f == Format::u8 ? Interpretation::srgb : Interpretation::multiband);
    return Interpretation::multiband;
}

}  // namespace tessera
