// libFuzzer target: the libvips-backed `load` op (JPEG through the streaming
// decoder, PNG, TIFF, WebP, anything libvips sniffs) on the fuzz input written
// to a file, built through the Graph (header at build, decode-size guard) and
// rendered through the evaluator. Built once per format (TESSERA_FUZZ_EXT is
// the file's extension; libvips sniffs the bytes, so it only names the file)
// so that each format's seed corpus gets its own run.
//
// Each target only takes inputs that start with its format's signature:
// libvips sniffs every loader it has, and mutated bytes soon become a PBM or
// an ASCII PGM, whose libvips decode is legitimately slow (a 28-byte PBM
// claiming 1 x 7698698 pixels takes about 40 s in `vips copy` too), which
// would be reported as hangs of this target and say nothing about the
// formats it is for.
#include <cstring>

#include "fuzz_common.hpp"

namespace {

bool starts_with(const std::uint8_t* data, std::size_t size, const char* magic, std::size_t n, std::size_t at = 0) {
    return size >= at + n && std::memcmp(data + at, magic, n) == 0;
}

bool is_target_format(const std::uint8_t* d, std::size_t n) {
    const std::string ext = TESSERA_FUZZ_EXT;
    if (ext == ".jpg") return starts_with(d, n, "\xFF\xD8\xFF", 3);
    if (ext == ".png") return starts_with(d, n, "\x89PNG\r\n\x1A\n", 8);
    if (ext == ".tif")
        return starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4) || starts_with(d, n, "II+\0", 4) ||
               starts_with(d, n, "MM\0+", 4);
    if (ext == ".webp") return starts_with(d, n, "RIFF", 4) && starts_with(d, n, "WEBP", 4, 8);
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tessera_fuzz::init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tessera;
    if (!is_target_format(data, size)) return -1;  // -1: not added to the corpus
    tessera_fuzz::InputFile file(data, size, TESSERA_FUZZ_EXT);
    try {
        Graph g(standard_registry());
        NodeId n = g.add("load", {}, {{"path", file.path}}, "in");
        tessera_fuzz::render_bounded(g, n);
    } catch (const Error& e) {
        tessera_fuzz::expected(e);
        // a clear error is the expected outcome of a broken file
    }
    return 0;
}
