// Shared by the libFuzzer targets: process setup (small io limits, one
// libvips thread, a scratch folder) and a bounded render through the real
// evaluator. A tessera::Error is an expected outcome of a hostile input;
// anything else thrown, a crash, a sanitizer report, a hang (-timeout) or
// memory past -rss_limit_mb is a finding.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tessera/io/io.hpp"
#include "tessera/tessera.hpp"

namespace tessera_fuzz {

using namespace tessera;

// Pixels an exec may compute at most (a 256x256 window, twice, plus a whole
// image up to this size): a header may claim anything, an exec stays cheap.
inline constexpr int kWindow = 256;
inline constexpr long long kWholeImagePixels = 256LL * 256;

// A folder of this process's own under the temp dir, removed at exit.
inline const std::string& scratch_dir() {
    static const std::string dir = [] {
        const char* t = std::getenv("TMPDIR");
        std::string tmpl = std::string(t && *t ? t : "/tmp") + "/tessera-fuzz-XXXXXX";
        if (!::mkdtemp(tmpl.data())) std::abort();
        static std::string keep = tmpl;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(keep, ec);
        });
        return tmpl;
    }();
    return dir;
}

inline void init() {
    ::setenv("VIPS_CONCURRENCY", "1", 0);  // before libvips starts (on the first load)
    ::setenv("VIPS_WARNING", "0", 0);      // libvips warnings on stderr would drown libFuzzer's output
    IoLimits limits;
    limits.max_open_files = 4;
    limits.save_memory_mb = 16;
    limits.max_decode_mb = 16;  // a decompression bomb must be refused at build, not tried
    set_io_limits(limits);
    (void)scratch_dir();
}

// Writes the fuzz input to a fresh name in the scratch folder (a new path per
// exec: the io layer's caches are keyed by path), removed at destruction.
struct InputFile {
    std::string path;
    InputFile(const std::uint8_t* data, std::size_t size, const std::string& ext) {
        static unsigned long counter = 0;
        path = scratch_dir() + "/in" + std::to_string(counter++) + ext;
        std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data), std::streamsize(size));
    }
    ~InputFile() { ::unlink(path.c_str()); }
};

// An expected error: printed when TESSERA_FUZZ_VERBOSE is set (to check that
// the seeds get past the errors, e.g. fuzz_pipeline corpus/pipeline/x.json).
inline void expected(const Error& e) {
    static const bool verbose = std::getenv("TESSERA_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "tessera error: %s\n", e.what());
}

class NullSink final : public Sink {
public:
    void start(const ImageInfo&, const SinkContext&) override {}
    void consume(const ConstTile&, std::shared_ptr<void>) override {}
    void finish() override {}
    void abort() noexcept override {}
};

// Pulls a bounded part of `n` through the evaluator: the whole image when it
// is small, else the top-left window (as a run, with expect/release) and the
// bottom-right window (render) when the image is not huge.
inline void render_bounded(Graph& g, NodeId n) {
    g.execution.threads = 1;
    g.execution.tile_w = g.execution.tile_h = 64;
    g.execution.cache_mb = 16;
    const ImageInfo info = g.info(n);
    const long long pixels = 1LL * info.width * info.height;
    NodeId top_left = n;
    if (pixels > kWholeImagePixels)
        top_left = g.add("extract_area", {n},
                         {{"left", 0},
                          {"top", 0},
                          {"width", std::min(info.width, kWindow)},
                          {"height", std::min(info.height, kWindow)}});
    // Sources keep per-file state (a JPEG's decoder and its window) until
    // released; a failed render does not release them, and every exec reads
    // a new path: without this, memory grows exec by exec up to the
    // decoders' budget (1 GB).
    struct Release {
        Graph& g;
        ~Release() {
            for (NodeId i = 0; i < g.size(); ++i) g.node(i).op->release();
        }
    } release{g};
    Evaluator ev(g);
    NullSink sink;
    ev.run(top_left, sink);
    if (pixels > kWholeImagePixels && pixels <= 16 * kWholeImagePixels) {
        const int w = std::min(info.width, kWindow), h = std::min(info.height, kWindow);
        ev.render(n, Rect{info.width - w, info.height - h, w, h});
    }
}

}  // namespace tessera_fuzz
