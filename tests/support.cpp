#include "support.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <limits>
#include <random>
#include <sys/wait.h>
#include <unistd.h>

namespace tt {

namespace {
// Collects the tiles of one run into a single buffer.
class CollectSink final : public Sink {
public:
    explicit CollectSink(Buffer& out) : out_(out) {}
    void start(const ImageInfo& info, const SinkContext&) override {
        out_ = Buffer(nullptr, info.rect(), info.bands, info.format);
    }
    void consume(const ConstTile& t, std::shared_ptr<void>) override { copy_pixels(t, out_.tile()); }
    void finish() override {}
    void abort() noexcept override {}

private:
    Buffer& out_;
};

VipsBandFormat vips_format(Format f) {
    switch (f) {
        case Format::u8: return VIPS_FORMAT_UCHAR;
        case Format::u16: return VIPS_FORMAT_USHORT;
        case Format::i16: return VIPS_FORMAT_SHORT;
        case Format::u32: return VIPS_FORMAT_UINT;
        case Format::i32: return VIPS_FORMAT_INT;
        case Format::f32: return VIPS_FORMAT_FLOAT;
        case Format::f64: return VIPS_FORMAT_DOUBLE;
    }
    return VIPS_FORMAT_UCHAR;
}
Format our_format(VipsBandFormat f) {
    switch (f) {
        case VIPS_FORMAT_UCHAR: return Format::u8;
        case VIPS_FORMAT_USHORT: return Format::u16;
        case VIPS_FORMAT_SHORT: return Format::i16;
        case VIPS_FORMAT_UINT: return Format::u32;
        case VIPS_FORMAT_INT: return Format::i32;
        case VIPS_FORMAT_FLOAT: return Format::f32;
        case VIPS_FORMAT_DOUBLE: return Format::f64;
        default: throw std::runtime_error("test support: unsupported libvips format");
    }
}
}  // namespace

Buffer render(Graph& g, NodeId node, int tile, int threads, RunStats* stats) {
    Execution saved = g.execution;
    g.execution.tile_w = g.execution.tile_h = tile;
    g.execution.threads = threads;
    Buffer out;
    CollectSink sink(out);
    Evaluator ev(g);
    RunStats s;
    try {
        s = ev.run(node, sink);
    } catch (...) {
        g.execution = saved;
        throw;
    }
    g.execution = saved;
    if (stats) *stats = s;
    return out;
}

vips::VImage to_vips(const Buffer& b) {
    ConstTile t = b.view();
    // new_from_memory borrows the bytes; copy_memory makes the image own a copy
    return vips::VImage::new_from_memory(const_cast<std::byte*>(t.data), b.size(), t.rect.w, t.rect.h, t.bands,
                                         vips_format(t.format))
        .copy_memory();
}

Buffer from_vips(vips::VImage im, MemoryAccount* account) {
    Buffer b(account, {0, 0, im.width(), im.height()}, im.bands(), our_format(im.format()));
    im = im.copy_memory();
    size_t n = 0;
    const void* p = im.data();
    n = VIPS_IMAGE_SIZEOF_IMAGE(im.get_image());
    if (n != b.size()) throw std::runtime_error("test support: size mismatch");
    std::memcpy(b.tile().data, p, n);
    return b;
}

double max_abs_diff(const Buffer& a, vips::VImage b) {
    if (!a.valid()) return std::numeric_limits<double>::infinity();
    ConstTile t = a.view();
    if (t.rect.w != b.width() || t.rect.h != b.height() || t.bands != b.bands() || vips_format(t.format) != b.format())
        return std::numeric_limits<double>::infinity();
    return max_abs_diff(a, from_vips(b));
}

double max_abs_diff(const Buffer& a, const Buffer& b) {
    ConstTile x = a.view(), y = b.view();
    if (!a.valid() || !b.valid() || x.rect != y.rect || x.bands != y.bands || x.format != y.format)
        return std::numeric_limits<double>::infinity();
    double worst = 0;
    dispatch_format(x.format, [&](auto t) {
        using T = decltype(t);
        for (int r = x.rect.y; r < x.rect.bottom(); ++r) {
            const T* p = x.row<T>(r);
            const T* q = y.row<T>(r);
            for (std::size_t i = 0; i < std::size_t(x.rect.w) * x.bands; ++i) {
                double d = std::fabs(double(p[i]) - double(q[i]));
                if (!(d <= worst)) worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
            }
        }
    });
    return worst;
}

vips::VImage pattern(int w, int h, int bands, VipsBandFormat format, int seed) {
    using vips::VImage;
    VImage xy = VImage::xyz(w, h);
    std::vector<VImage> bs;
    for (int b = 0; b < bands; ++b) {
        VImage v = xy[0] * (3 + b + seed) + xy[1] * (5 + 2 * b) + (xy[0] * xy[1]) % (17 + b + seed) * 7 + 11 * seed;
        bs.push_back(v % 251);
    }
    VImage im = bs.size() == 1 ? bs[0] : VImage::bandjoin(bs);
    return im.cast(format).copy_memory();
}

std::string save(vips::VImage im, const std::filesystem::path& path) {
    im.write_to_file(path.c_str());
    return path.string();
}

TempDir::TempDir() {
    static std::mt19937_64 rng(std::random_device{}());
    path = std::filesystem::temp_directory_path() /
           ("tessera-test-" + std::to_string(getpid()) + "-" + std::to_string(rng() % 100000000));
    std::filesystem::create_directories(path);
}
TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

NodeId load_image(Graph& g, const TempDir& dir, const vips::VImage& im, const std::string& name) {
    return g.add("load", {}, {{"path", save(im, dir / name)}});
}

std::unique_ptr<Op> build_op(const std::string& op, const Params& p, const std::vector<ImageInfo>& in) {
    const OpSpec& spec = *standard_registry().find(op);
    return spec.create(complete_params(spec, p), in);
}

ImageInfo header(int w, int h, int bands, Format f) {
    ImageInfo i;
    i.width = w;
    i.height = h;
    i.bands = bands;
    i.format = f;
    return i;
}

void check_pixels(Graph& g, NodeId n, const vips::VImage& want) {
    for (int tile : {16, 37, 64})
        for (int threads : {1, 2}) {
            CAPTURE(tile);
            CAPTURE(threads);
            CHECK(max_abs_diff(render(g, n, tile, threads), want) == 0);
        }
}

vips::VImage vips_insert_loop(const std::filesystem::path& csv, int w, int h) {
    std::ifstream in(csv);
    std::string line;
    std::getline(in, line);
    vips::VImage out = vips::VImage::black(w, h, vips::VImage::option()->set("bands", 3));
    while (std::getline(in, line)) {
        std::stringstream ss(line);
        std::string f, x, y;
        std::getline(ss, f, ',');
        std::getline(ss, x, ',');
        std::getline(ss, y, ',');
        out = out.insert(vips::VImage::new_from_file((csv.parent_path() / f).c_str()), std::stoi(x), std::stoi(y));
    }
    return out.copy_memory();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int run_command(const std::string& cmd, std::string* output) {
    std::string full = cmd + " 2>&1";
    FILE* p = popen(full.c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf;
    std::string out;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    int status = pclose(p);
    if (output) *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string tessera_binary() { return TESSERA_BINARY; }

std::filesystem::path shared_dir() { return TESSERA_SHARED_DIR; }

bool mpi_ready() {
    if (!mpi_available()) {
        MESSAGE("skipped: this build has no MPI (configure with -DTESSERA_MPI=ON)");
        return false;
    }
    if (run_command("command -v mpirun >/dev/null") != 0) {
        MESSAGE("skipped: no mpirun (apt install openmpi-bin)");
        return false;
    }
    return true;
}

void make_acquisition(const std::filesystem::path& dir, const std::string& args) {
#ifdef TESSERA_MAKE_ACQUISITION
    std::string out;
    if (run_command(std::string(TESSERA_MAKE_ACQUISITION) + " '" + dir.string() + "' " + args, &out) != 0)
        throw std::runtime_error("make_acquisition " + args + " failed: " + out);
#else
    (void)dir;
    throw std::runtime_error("make_acquisition was not built: ../shared/bench/make_acquisition.cpp is missing (" +
                             args + ")");
#endif
}
std::filesystem::path source_dir() { return TESSERA_SOURCE_DIR; }

}  // namespace tt
