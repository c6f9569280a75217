// Shared helpers for the tests: render a node through the real evaluator,
// convert to and from libvips images (the oracle), temporary folders.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vips/vips8>

#include "tessera/tessera.hpp"

namespace tt {

using namespace tessera;

// The whole image of `node`, computed by Evaluator::run with the graph's
// execution settings overridden by tile size and threads.
Buffer render(Graph& g, NodeId node, int tile = 64, int threads = 2, RunStats* stats = nullptr);

// A libvips image holding a copy of the buffer's pixels (and back).
vips::VImage to_vips(const Buffer& b);
Buffer from_vips(vips::VImage im, MemoryAccount* account = nullptr);

// Largest |a - b| over all samples; sizes, bands and formats must agree
// (else returns infinity).
double max_abs_diff(const Buffer& a, vips::VImage b);
double max_abs_diff(const Buffer& a, const Buffer& b);

// A deterministic test image: gradients and a pattern, so that shifts and
// swaps show (w x h, bands, format as libvips format).
vips::VImage pattern(int w, int h, int bands = 3, VipsBandFormat format = VIPS_FORMAT_UCHAR, int seed = 0);

// Saves a libvips image to path (any libvips format) and returns the path.
std::string save(vips::VImage im, const std::filesystem::path& path);

// A fresh empty folder under the system temp dir, removed at destruction.
struct TempDir {
    TempDir();
    ~TempDir();
    std::filesystem::path path;
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

// For op tests: the image saved in dir and loaded as a node.
NodeId load_image(Graph& g, const TempDir& dir, const vips::VImage& im, const std::string& name = "in.v");
// An op built straight from its registered spec, as the graph would.
std::unique_ptr<Op> build_op(const std::string& op, const Params& p, const std::vector<ImageInfo>& in);
// A header with no pixels behind it, for geometry and demand tests.
ImageInfo header(int w, int h, int bands = 1, Format f = Format::u8);
// The node rendered with tiles of 16, 37 and 64 and 1 and 2 threads equals
// `want` exactly, pixels across every tile seam included.
void check_pixels(Graph& g, NodeId n, const vips::VImage& want);

// What f throws (its what()), or "(no error)".
std::string error_of(const std::function<void()>& f);

// The libvips oracle for a stitch: a w x h 3-band black canvas, then one
// vips insert per row of the positions CSV (file,x,y; files relative to it).
vips::VImage vips_insert_loop(const std::filesystem::path& csv, int w, int h);

// The bytes of a file ("" if it cannot be read).
std::string slurp(const std::filesystem::path& p);

// Runs a shell command; returns its exit status, captures stdout+stderr.
int run_command(const std::string& cmd, std::string* output = nullptr);

// Path of the built `tessera` binary and of the source tree.
std::string tessera_binary();
std::filesystem::path source_dir();

// Whether the MPI tests can run: the build has MPI and mpirun is on the
// PATH; if not, says why (a MESSAGE in the calling test) and the test
// returns early.
bool mpi_ready();

// ../shared beside the checkout (real data in data/real, the bench kit).
std::filesystem::path shared_dir();

// Runs ../shared/bench/make_acquisition into `dir` with KEY=VALUE args
// (e.g. "cols=4 rows=3 tile=256x192 overlap=6 bits=16"); throws with its
// output if it fails or was not built.
void make_acquisition(const std::filesystem::path& dir, const std::string& args);

}  // namespace tt
