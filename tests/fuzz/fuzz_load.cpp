// libFuzzer target: the libvips-backed `load` op (JPEG through the streaming
// decoder, PNG, TIFF, WebP, anything libvips sniffs) on the fuzz input written
// to a file, built through the Graph (header at build, decode-size guard) and
// rendered through the evaluator. Built once per format (TESSERA_FUZZ_EXT is
// the file's extension; libvips sniffs the bytes, so it only names the file)
// so that each format's seed corpus gets its own run.
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    tessera_fuzz::init();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tessera;
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
