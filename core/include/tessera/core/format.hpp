// Pixel formats and interpretations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tessera {

// Band sample formats. Pixels are band-interleaved (RGBRGB...), rows are
// contiguous within a tile buffer.
enum class Format : std::uint8_t { u8, u16, i16, u32, i32, f32, f64 };

constexpr std::size_t format_size(Format f) {
    switch (f) {
        case Format::u8: return 1;
        case Format::u16:
        case Format::i16: return 2;
        case Format::u32:
        case Format::i32:
        case Format::f32: return 4;
        case Format::f64: return 8;
    }
    return 0;
}
constexpr bool format_is_float(Format f) { return f == Format::f32 || f == Format::f64; }

std::string_view format_name(Format f);
std::optional<Format> parse_format(std::string_view s);
// Every name parse_format takes: u8 ... f64, then the libvips and numpy
// spellings (the choices of a format parameter).
std::vector<std::string> format_spellings();
// Lowest and highest value a sample of this format can hold.
double format_min(Format f);
double format_max(Format f);

// How bands are meant to be seen. Carried through the pipeline and handed to
// writers (e.g. a 3-band u8 image saved as RGB rather than as 3 planes).
enum class Interpretation : std::uint8_t { multiband, bw, srgb, grey16, rgb16 };
std::string_view interpretation_name(Interpretation i);
std::optional<Interpretation> parse_interpretation(std::string_view s);
// The interpretation a fresh image of this many bands and format gets.
Interpretation default_interpretation(int bands, Format f);

// Calls fn(T{}) with T the C++ type of format f: the single place where
// kernels are dispatched on the pixel type.
template <class Fn>
decltype(auto) dispatch_format(Format f, Fn&& fn) {
    switch (f) {
        case Format::u8: return fn(std::uint8_t{});
        case Format::u16: return fn(std::uint16_t{});
        case Format::i16: return fn(std::int16_t{});
        case Format::u32: return fn(std::uint32_t{});
        case Format::i32: return fn(std::int32_t{});
        case Format::f32: return fn(float{});
        case Format::f64: return fn(double{});
    }
    return fn(std::uint8_t{});
}

}  // namespace tessera
