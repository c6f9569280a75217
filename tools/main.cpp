// tessera: the command line. Each subcommand wires the modules together;
// nothing here computes pixels.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <sys/wait.h>
#include <cstring>
#include <unistd.h>

#include "spec_options.hpp"
#include "tessera/core/temporaries.hpp"
#include "tessera/io/formats.hpp"
#include "tessera/io/output_target.hpp"
#include "tessera/flatfield.hpp"
#include "tessera/merge.hpp"
#include "tessera/mosaic.hpp"
#include "tessera/report.hpp"
#include "tessera/stitch.hpp"
#include "tessera/tessera.hpp"

namespace {

using namespace tessera;

std::atomic<bool> g_cancel{false};
// --on-error of run, stitch and merge: "fail", "background", or empty (the
// pipeline's own setting)
std::string g_on_error;
volatile std::sig_atomic_t g_signal = 0;
// Under mpirun/srun with several ranks: the job this process is part of.
std::unique_ptr<Cluster> g_cluster;

// "rank 2 of 3: " under a launcher, else nothing: which process says it.
std::string rank_prefix() {
    return g_cluster ? "rank " + std::to_string(g_cluster->rank()) + " of " + std::to_string(g_cluster->ranks()) + ": "
                     : std::string();
}

// The process that reports for the whole job (progress, registration, what
// was filled) and writes its side files: rank 0, or the only one.
bool speaks_for_job() { return !g_cluster || g_cluster->rank() == 0; }

// Under a launcher, what a rank says when a signal stops it (the launcher
// may kill it before the run unwinds); made before any signal can come.
char g_signal_note[512];
std::size_t g_signal_note_len = 0;

extern "C" void on_signal(int sig) {
    g_signal = sig;
    g_cancel.store(true);
    // the run cleans up as it stops; should the process be killed first
    // (mpirun's SIGKILL follows its SIGTERM within milliseconds), the
    // temporary files are gone already
    remove_temporaries_now();
    // and say so now, while it can (write() is async-signal-safe)
    if (g_signal_note_len) (void)!write(STDERR_FILENO, g_signal_note, g_signal_note_len);
}

// Progress of a run: a one-line bar on stderr when it is a terminal
// ("auto", the default; "bar" forces it), one JSON object per line on stdout
// for other programs ("json"), or nothing ("none", -q).
class ProgressReporter {
public:
    explicit ProgressReporter(const std::string& mode)
        : json_(mode == "json"), bar_(mode == "bar" || (mode == "auto" && isatty(STDERR_FILENO))) {}
    ~ProgressReporter() { end(); }
    bool operator()(const Progress& p) {
        if (!json_ && !bar_) return true;
        if (p.seconds - last_ < 0.25 && p.tiles_done != p.tiles_total) return true;
        last_ = p.seconds;
        double frac = p.tiles_total ? double(p.tiles_done) / p.tiles_total : 1.0;
        double mpx = p.seconds > 0 ? p.pixels_done / p.seconds / 1e6 : 0.0;
        double eta = frac > 0 ? p.seconds * (1 - frac) / frac : 0.0;
        if (json_) {
            std::printf("{\"tiles_done\": %zu, \"tiles_total\": %zu, \"fraction\": %.4f, \"pixels_done\": %zu, "
                        "\"mpx_per_s\": %.2f, \"seconds\": %.2f, \"eta_seconds\": %.1f, \"pixel_memory_bytes\": %zu}\n",
                        p.tiles_done, p.tiles_total, frac, p.pixels_done, mpx, p.seconds, eta, p.pixel_bytes);
            std::fflush(stdout);
            return true;
        }
        std::fprintf(stderr, "\r%5.1f%%  %zu/%zu tiles  %.1f Mpx/s  ETA %d:%02d  pixel memory %.1f MB   ", 100 * frac,
                     p.tiles_done, p.tiles_total, mpx, int(eta) / 60, int(eta) % 60, p.pixel_bytes / 1048576.0);
        shown_ = true;
        return true;
    }
    void end() {
        if (shown_) std::fputc('\n', stderr);
        shown_ = false;
    }

private:
    bool json_, bar_;
    bool shown_ = false;
    double last_ = -1;
};

const char* kProgressHelp =
    "auto (a bar on stderr when it is a terminal), bar, none, or json: one object per line on stdout "
    "{tiles_done, tiles_total, fraction, pixels_done, mpx_per_s, seconds, eta_seconds, pixel_memory_bytes}";

// Every rank's part of a sharded run (rank 0 has them).
void print_ranks(const RunStats& s) {
    for (const RankStats& r : s.ranks)
        std::fprintf(stderr,
                     "tessera: rank %d: %zu tiles, busy %.2f s (thread time), share done at %.2f s, run %.2f s "
                     "(%.2f s in the sink's serial steps, %.2f s of it waiting on other ranks), %.1f MB sent (%.1f KB per "
                     "tile)\n",
                     r.rank, r.tiles, r.busy_seconds, r.share_seconds, r.seconds, r.sink_seconds, r.wait_seconds,
                     r.bytes_sent / 1048576.0,
                     r.tiles ? r.bytes_sent / 1024.0 / double(r.tiles) : 0.0);
}

void print_stats(const RunStats& s) {
    std::fprintf(stderr,
                 "tiles: %zu  seconds: %.2f  peak pixel memory: %.1f MB (evaluator and sink %.1f MB)  tiles in flight: "
                 "%zu  cache hits/misses: %zu/%zu\n",
                 s.tiles, s.seconds, s.peak_process_pixel_bytes / 1048576.0, s.peak_pixel_bytes / 1048576.0, s.tokens,
                 s.cache_hits, s.cache_misses);
    std::fprintf(stderr, "%s\n", io_stats().c_str());
}

// Runs every sink of g with progress; Ctrl-C cancels.
int run_graph(Graph& g, int threads, bool stats, const std::string& progress, int memory_mb = -1) {
    if (threads >= 0) g.execution.threads = threads;
    if (memory_mb >= 0) g.execution.memory_mb = std::size_t(memory_mb);
    if (!g_on_error.empty())
        g.execution.on_error = g_on_error == "background" ? Execution::OnError::background : Execution::OnError::fail;
    Evaluator ev(g);
    // one progress line for the job: rank 0's
    ProgressReporter line(speaks_for_job() ? progress : "none");
    RunOptions opt;
    opt.cancel = &g_cancel;
    opt.cluster = g_cluster.get();
    opt.progress = [&](const Progress& p) { return line(p); };
    RunStats s = ev.run_sinks(opt);
    line.end();
    // what --on-error=background filled, one line each, then a count (in a
    // sharded run rank 0 has every rank's and says it for the job)
    if (!speaks_for_job()) s.filled.clear();
    for (const Filled& f : s.filled)
        std::fprintf(stderr, "tessera: filled with background: node '%s', pixels %d,%d %dx%d: %s\n", f.node.c_str(),
                     f.rect.x, f.rect.y, f.rect.w, f.rect.h, f.message.c_str());
    if (!s.filled.empty()) {
        std::vector<std::string> files;
        for (const Filled& f : s.filled)
            if (std::find(files.begin(), files.end(), f.file) == files.end()) files.push_back(f.file);
        std::fprintf(stderr, "tessera: %zu tile part(s) of %zu file(s) were filled with background; the output is complete otherwise\n",
                     s.filled.size(), files.size());
    }
    print_ranks(s);
    if (stats) print_stats(s);
    return 0;
}

int cmd_run(const std::string& path, int threads, int tile, bool stats, const std::string& progress, int memory_mb) {
    Graph g = load_pipeline(path, standard_registry());
    if (tile > 0) g.execution.tile_w = g.execution.tile_h = tile;
    return run_graph(g, threads, stats, progress, memory_mb);
}

int cmd_ops(bool as_json) {
    const OpRegistry& r = standard_registry();
    if (as_json) {
        std::cout << ops_to_json(r);
        return 0;
    }
    for (const OpSpec& s : r.specs()) {
        std::string ins = s.max_inputs < 0 ? std::to_string(s.min_inputs) + "+"
                          : s.min_inputs == s.max_inputs ? std::to_string(s.min_inputs)
                                                         : std::to_string(s.min_inputs) + "-" + std::to_string(s.max_inputs);
        std::cout << s.name << " (inputs: " << ins << (s.sink ? ", sink" : "") << "): " << s.doc << "\n";
        for (const ParamSpec& p : s.params) {
            std::cout << "    " << p.name << " : " << param_type_name(p.type);
            if (p.required)
                std::cout << ", required";
            else
                std::cout << " = " << p.default_text;
            // what the graph accepts: "[1, 100]", "at least 0", "one of a, b or c"
            if (!p.choices.empty())
                std::cout << ", one of " << p.allowed();
            else if (!p.allowed().empty())
                std::cout << ", " << (p.min && p.max ? "in " : "") << p.allowed();
            std::cout << "  -- " << p.doc << "\n";
        }
    }
    return 0;
}

// True if `prog` is an executable on PATH.
bool on_path(const std::string& prog) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "");
    for (std::string dir; std::getline(ss, dir, ':');)
        if (!dir.empty() && ::access((std::filesystem::path(dir) / prog).c_str(), X_OK) == 0) return true;
    return false;
}

// Renders DOT text to an SVG file with graphviz's `dot`, under a temporary
// name beside the target, renamed when dot succeeded.
void render_svg(const std::string& dot, const std::string& svg) {
    if (!on_path("dot"))
        throw IoError(svg, "cannot be drawn: graphviz's `dot` is not installed (Debian: apt-get install graphviz); "
                           "`tessera dot` without --svg prints the DOT text");
    namespace fs = std::filesystem;
    OutputTarget target(svg);
    const std::string& tmp = target.temp();
    std::string cmd = "dot -Tsvg -o '" + tmp + "'";
    if (tmp.find('\'') != std::string::npos)
        throw IoError(svg, "a path with a single quote cannot be passed to dot; rename it");
    std::FILE* pipe = ::popen(cmd.c_str(), "w");
    if (!pipe) throw IoError(svg, "cannot start graphviz's dot");
    std::fwrite(dot.data(), 1, dot.size(), pipe);
    int status = ::pclose(pipe);
    if (status != 0 || !fs::exists(tmp))
        throw IoError(svg, "graphviz's dot failed (exit status " + std::to_string(WEXITSTATUS(status)) +
                               "); check that the folder exists and is writable");
    target.commit();
}

int cmd_dot(const std::string& path, const std::string& out, const std::string& svg, int collapse) {
    Graph g = load_pipeline(path, standard_registry());
    std::string dot = g.to_dot(std::size_t(collapse));
    if (!svg.empty()) {
        render_svg(dot, svg);
        if (out.empty()) return 0;
    }
    if (out.empty() || out == "-") {
        std::cout << dot;
        return 0;
    }
    std::ofstream f(out);
    if (!(f << dot)) throw IoError(out, "cannot write the DOT file");
    return 0;
}

// Where the OpenSeadragon the build vendored is: $TESSERA_OPENSEADRAGON_DIR,
// else the build tree, else the install tree beside the binary.
std::filesystem::path find_openseadragon() {
    namespace fs = std::filesystem;
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("TESSERA_OPENSEADRAGON_DIR")) candidates.emplace_back(env);
    candidates.emplace_back(TESSERA_OPENSEADRAGON_BUILD_DIR);
    std::error_code ec;
    fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path().parent_path() / TESSERA_OPENSEADRAGON_INSTALL_DIR);
    for (const fs::path& c : candidates)
        if (fs::exists(c / "openseadragon.min.js", ec)) return c;
    std::string why;
    std::ifstream missing(fs::path(TESSERA_OPENSEADRAGON_BUILD_DIR) / "MISSING.txt");
    std::getline(missing, why);
    throw Error("tessera view needs OpenSeadragon, which this build does not have" +
                (why.empty() ? std::string() : " (" + why + ")") +
                "; or set TESSERA_OPENSEADRAGON_DIR to a folder holding openseadragon.min.js and images/");
}

std::string html_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            default: o += c;
        }
    }
    return o;
}

// --estimate-flatfield of stitch and mosaic: F from a sample of the tiles,
// written to --flatfield-out (by the process that speaks for the job) and
// set as the job's flat-field. Without --flatfield-out (or in a sharded
// run, where every rank estimates the same F from the same tiles) the graph
// reads it from GDAL's /vsimem/: held in memory, nothing left on disk,
// written by the same atomic save. A pipeline printed by --emit-json must
// find its profile in a file, hence needs --flatfield-out.
struct FlatfieldRequest {
    bool estimate = false;
    std::string flat_out;
};

void prepare_illumination(StitchOptions& o, const std::vector<Placement>& tiles, const FlatfieldRequest& r,
                          bool emit_json, int threads, bool say) {
    if (!r.estimate) {
        if (!r.flat_out.empty()) throw Error("--flatfield-out writes what --estimate-flatfield estimates: add it");
        return;
    }
    if (!o.illumination.flatfield.empty())
        throw Error("--estimate-flatfield estimates the profile --flatfield gives: use one or the other");
    if (emit_json && r.flat_out.empty())
        throw Error("--emit-json with --estimate-flatfield needs --flatfield-out F.tif, so that the printed pipeline "
                    "can load the estimate");
    FlatfieldOptions fo;
    fo.darkfield = o.illumination.darkfield;
    fo.threads = std::max(threads, 0);
    fo.source = o.positions;
    fo.cancel = &g_cancel;
    FlatfieldEstimate est = estimate_flatfield(tiles, fo, standard_registry());
    if (say)
        std::fprintf(stderr,
                     "flat-field: estimated from %zu of %zu tiles (degree %d, %.1f%% of the profile was content); "
                     "%.2f s\n",
                     est.tiles, tiles.size(), est.degree, 100 * est.residual, est.seconds);
    const bool sharded = g_cluster && g_cluster->ranks() > 1;
    namespace fs = std::filesystem;
    if (!r.flat_out.empty() && speaks_for_job()) save_profile(est.flatfield, r.flat_out, standard_registry());
    if (!r.flat_out.empty() && !sharded) {
        o.illumination.flatfield = fs::absolute(r.flat_out).lexically_normal().string();
        return;
    }
    o.illumination.flatfield = "/vsimem/tessera-flatfield-" + std::to_string(getpid()) + ".tif";
    save_profile(est.flatfield, o.illumination.flatfield, standard_registry());
}

// --gain-compensation: each tile's exposure from its overlaps at the
// positions the job places it at (after the flat-field), divided out.
void prepare_gains(StitchOptions& o, const std::vector<Placement>& tiles, int threads, bool say) {
    GainOptions go;
    go.threads = std::max(threads, 0);
    go.cancel = &g_cancel;
    GainEstimate est = estimate_gains(tiles, o.illumination, go, standard_registry());
    const auto& [lo, hi] = std::minmax_element(est.gains.gain.begin(), est.gains.gain.end());
    if (say)
        std::fprintf(stderr,
                     "gains: %zu of %zu overlaps used, %zu tiles without one; gains %.3f..%.3f; overlap mismatch "
                     "%.2f%% -> %.2f%% RMS; %.2f s\n",
                     est.gains.used, est.overlaps, est.gains.unlinked, *lo, *hi, 100 * est.gains.rms_before,
                     100 * est.gains.rms_after, est.seconds);
    o.illumination.gains = est.gains.gain;
}

// `tessera view NAME.dzi`: NAME.html beside it (or at `out`), showing the
// pyramid with OpenSeadragon, which is copied beside the page. The .dzi's
// fields are written into the page, so it also works opened as a file
// (browsers refuse to fetch a .dzi from file://; tile images load anyway).
int cmd_view(const std::string& dzi, std::string out) {
    namespace fs = std::filesystem;
    std::ifstream in(dzi);
    if (!in) throw IoError(dzi, "cannot be read; give the .dzi a Deep Zoom save wrote");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string xml = ss.str();
    auto attr = [&](const std::string& name) {
        std::smatch m;
        if (!std::regex_search(xml, m, std::regex("\\b" + name + "\\s*=\\s*\"([^\"]*)\"")))
            throw IoError(dzi, "is not a Deep Zoom descriptor: it has no " + name + " attribute");
        return m[1].str();
    };
    const std::string format = attr("Format"), overlap = attr("Overlap"), tile = attr("TileSize"),
                      width = attr("Width"), height = attr("Height");
    for (const std::string* v : {&overlap, &tile, &width, &height})
        if (v->empty() || v->find_first_not_of("0123456789") != std::string::npos)
            throw IoError(dzi, "has a size or tile field that is not a whole number ('" + *v + "')");
    if (format.find_first_not_of("abcdefghijklmnopqrstuvwxyz") != std::string::npos)
        throw IoError(dzi, "names the tile format '" + format + "', which is not jpeg, png or webp");
    fs::path src(dzi);
    fs::path files = src.parent_path() / (src.stem().string() + "_files");
    if (!fs::is_directory(files)) throw IoError(dzi, "has no tile folder '" + files.string() + "' beside it");
    if (out.empty()) out = (src.parent_path() / (src.stem().string() + ".html")).string();
    fs::path page(out);
    fs::path page_dir = page.parent_path().empty() ? fs::path(".") : page.parent_path();
    const fs::path osd = find_openseadragon();
    std::string url = fs::relative(fs::absolute(files), fs::absolute(page_dir)).generic_string() + "/";

    std::string html =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
        html_escape(src.stem().string()) +
        "</title>\n<style>html, body { margin: 0; height: 100%; background: #202020; } "
        "#view { width: 100%; height: 100%; }</style>\n"
        "<script src=\"openseadragon/openseadragon.min.js\"></script>\n</head>\n<body>\n"
        "<div id=\"view\"></div>\n<script>\n"
        "// written by tessera view from " + html_escape(src.filename().string()) + "\n"
        "OpenSeadragon({\n  id: \"view\",\n  prefixUrl: \"openseadragon/images/\",\n  showNavigator: true,\n"
        "  tileSources: {Image: {xmlns: \"http://schemas.microsoft.com/deepzoom/2008\", Url: \"" + html_escape(url) +
        "\",\n    Format: \"" + format + "\", Overlap: \"" + overlap + "\", TileSize: \"" + tile +
        "\",\n    Size: {Width: \"" + width + "\", Height: \"" + height + "\"}}}\n});\n</script>\n</body>\n</html>\n";

    // OpenSeadragon beside the page, then the page (under a temporary name,
    // renamed when complete)
    std::error_code ec;
    fs::create_directories(page_dir / "openseadragon", ec);
    fs::copy(osd, page_dir / "openseadragon",
             fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(out, "cannot copy OpenSeadragon beside it: " + ec.message());
    write_output_file(page.string(), html, "the page");
    std::fprintf(stderr, "wrote %s (open it in a browser, or serve the folder: python3 -m http.server)\n", out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tessera: a lazy, tiled image-pipeline engine"};
    app.require_subcommand(1);

    std::string pipeline, file, out, svg, progress = "auto";
    int threads = -1, tile = 0, collapse = 16, memory_mb = -1;
    // An empty value would otherwise be taken as 0 (every core): under a
    // scheduler, `--threads "$SLURM_CPUS_PER_TASK"` with the variable unset
    // then quietly takes every core of a shared node.
    const CLI::Validator thread_count(
        [](std::string& s) -> std::string {
            int v = -1;
            if (s.empty()) return "is empty; give a number of threads (0: every core)";
            if (!CLI::detail::lexical_cast(s, v) || v < 0 || v > 4096)
                return "'" + s + "' is not a number of threads from 0 (every core) to 4096";
            return {};
        },
        "0..4096");
    bool ro_register = true;
    bool stats = false, quiet = false, as_json = false;

    auto* run = app.add_subcommand("run", "run a JSON pipeline: compute and write every save node");
    run->add_option("PIPELINE", pipeline, "pipeline .json file")->required();
    run->add_option("--threads", threads, "worker threads (0: every core; default: the pipeline's setting)")
        ->check(thread_count);
    run->add_option("--tile-size", tile, "tile width and height in pixels (default: the pipeline's setting)")
        ->check(CLI::Range(16, 8192));
    run->add_flag("--stats", stats, "print tiles, time and peak pixel memory when done");
    run->add_option("--memory-mb", memory_mb, "budget for the tiles in flight (fewer tiles at once, or an error before starting if one does not fit)")
        ->check(CLI::Range(0, 1 << 30));
    run->add_flag("-q,--quiet", quiet, "no progress line (--progress none)");
    run->add_option("--progress", progress, kProgressHelp)->check(CLI::IsMember({"auto", "bar", "json", "none"}));
    const auto on_error_help = "a file that cannot be read: fail the run (default), or fill its part with background, "
                               "finish, and list each part filled";
    run->add_option("--on-error", g_on_error, on_error_help)->check(CLI::IsMember({"fail", "background"}));

    auto* ops = app.add_subcommand("ops", "list every op with its parameters, types and defaults");
    ops->add_flag("--json", as_json, "machine-readable output");
    auto* formats = app.add_subcommand("formats", "list the output formats: names, extensions, keys, what each holds");
    formats->add_flag("--json", as_json, "machine-readable output");

    auto* info = app.add_subcommand("info", "print the header of an image file");
    info->add_option("FILE", file, "image file")->required();

    auto* dot = app.add_subcommand("dot", "print a pipeline's graph in Graphviz DOT");
    dot->add_option("PIPELINE", pipeline, "pipeline .json file")->required();
    dot->add_option("-o,--output", out, "write to this file instead of stdout");
    dot->add_option("--svg", svg, "draw the graph into this SVG file with graphviz's dot (must be installed)");
    dot->add_option("--collapse", collapse, "fold a node's inputs into one box beyond this many (0: never)");

    // options that set an op parameter are checked by its spec
    const OpRegistry& reg = standard_registry();
    auto spec = [&](const std::string& op, const std::string& key) { return spec_validator(reg, op, key); };

    // stitch and mosaic share the positions (or grid), the canvas and the
    // output options
    std::vector<int> canvas;
    bool emit_json = false;
    std::string grid, positions_out;
    GridOptions grid_o;
    double overlap_arg = -1;  // --overlap: the grid's percentage, or the .dzi's pixels
    FlatfieldRequest ffr;
    bool gain_compensation = false;
    auto add_stitch_options = [&](CLI::App* cmd, StitchOptions& o) {
        cmd->add_option("POSITIONS", o.positions,
                        "CSV with header file,x,y or Fiji TileConfiguration.txt (x,y the tiles' top-left, fractional "
                        "ones placed at the nearest whole pixel; paths relative to its folder; later rows on top); "
                        "with --grid a file pattern, e.g. 'tile_{iiii}.tif' or 'r{rrr}_c{ccc}.jpg'")
            ->required();
        cmd->add_option("--canvas", canvas,
                        "canvas width and height (default: the tiles' bounding box, shifted to start at 0,0)")
            ->expected(2);
        cmd->add_option("--grid", grid,
                        "COLSxROWS: no positions file; POSITIONS is a file pattern ({i..}: acquisition index, {r..}/{c..} or Fiji's {y..}/{x..}: "
                        "row/column, zero-padded to the letters' count), tiles on a grid at --overlap percent");
        cmd->add_option("--order", grid_o.order,
                        "--grid acquisition order: row, column, snake (row by row, every other row right to left) or "
                        "column-snake")
            ->check(CLI::IsMember({"row", "column", "snake", "column-snake"}));
        cmd->add_option("--first-index", grid_o.first_index,
                        "--grid: number of the first tile, row and column in the file names (default: 0 if that file "
                        "exists, else 1)")
            ->check(CLI::Range(0, 1000000000));
        cmd->add_option("--positions-out", positions_out,
                        "write the positions used (on the output canvas): NAME.txt as a Fiji TileConfiguration, else a "
                        "CSV file,x,y");
        cmd->add_option("-o,--output", o.output, "output; its extension picks the format: " + supported_extensions())
            ->required();
        cmd->add_option("--format", o.format, "the output's format, overriding its extension (e.g. cog for a .tif): " +
                                                  supported_format_names() + "; `tessera formats` lists them");
        // checked after parsing against save's tile_width or tile_size,
        // whichever the output uses
        cmd->add_option("--tile-size", o.tile_size,
                        "tile size (TIFF: " + param_spec(reg, "save", "tile_width").allowed() +
                            ", a multiple of 16, default 256; .dzi: " + param_spec(reg, "save", "tile_size").allowed() +
                            ", default 254, google 256)");
        cmd->add_option("--compression", o.compression, "none, deflate, lzw, zstd or jpeg")
            ->check(spec("save", "compression"));
        cmd->add_option("--quality", o.quality, "JPEG (and .dzi webp) quality")->check(spec("save", "quality"));
        // (as a .dzi's overlap it is checked by the save's spec when the
        // graph is built, like a pipeline's)
        cmd->add_option("--overlap", overlap_arg,
                        "with --grid: percent of a tile its neighbours share, as Fiji's and MIST's grids (required); "
                        "else .dzi: pixels each tile reaches beyond its step (default 1, google 0)")
            ->check(CLI::Range(0.0, 8192.0));
        cmd->add_option("--suffix", o.suffix, ".dzi: tile format, jpeg, png or webp")->check(spec("save", "suffix"));
        cmd->add_option("--layout", o.layout, ".dzi: dz (NAME.dzi + NAME_files/LEVEL/COL_ROW) or google (NAME/Z/Y/X)")
            ->check(spec("save", "layout"));
        cmd->add_flag("--pyramid", o.pyramid, "write every 2x smaller level down to one tile");
        cmd->add_option("--bigtiff", o.bigtiff, "auto, yes or no")->check(spec("save", "bigtiff"));
        cmd->add_option("--background", o.background, "canvas value: one, or one per band");
        cmd->add_flag("--emit-json", emit_json, "print the equivalent pipeline instead of running it");
        cmd->add_option("--threads", threads, "worker threads (0: every core)")->check(thread_count);
        cmd->add_flag("--stats", stats, "print tiles, time and peak pixel memory when done");
        cmd->add_flag("-q,--quiet", quiet, "no progress line (--progress none)");
        cmd->add_option("--progress", progress, kProgressHelp)->check(CLI::IsMember({"auto", "bar", "json", "none"}));
        cmd->add_option("--on-error", g_on_error, on_error_help)->check(CLI::IsMember({"fail", "background"}));
        cmd->add_option("--flatfield", o.illumination.flatfield,
                        "correct every tile as (I - D) / F: F a one-band image of the tile size (BaSiC's, ASHLAR's --ffp)");
        cmd->add_option("--darkfield", o.illumination.darkfield, "the D of --flatfield (BaSiC's dark-field, ASHLAR's --dfp)");
        cmd->add_flag("--estimate-flatfield", ffr.estimate,
                      "estimate F from a sample of the tiles (up to 200, spread evenly) and correct with it (with --darkfield: as (I - D) / F)");
        cmd->add_option("--flatfield-out", ffr.flat_out, "write the estimated F as a one-band float TIFF (for --flatfield)");
        cmd->add_flag("--gain-compensation", gain_compensation,
                      "divide each tile by its exposure gain, solved from the means of its overlaps with its neighbours");
    };

    StitchOptions so;
    auto* stitch = app.add_subcommand(
        "stitch", "place scanned tiles on a canvas at their positions and write a tiled (pyramid) TIFF or a Deep Zoom pyramid (.dzi)");
    add_stitch_options(stitch, so);

    MosaicOptions mso;
    RegisterOptions ro;
    std::string pairs_out, report_out;
    bool integer_positions = false;
    auto* mosaic = app.add_subcommand(
        "mosaic", "like stitch, with positions refined by registering neighbouring tiles and feathered overlaps");
    add_stitch_options(mosaic, mso);
    mosaic->add_flag("--register,!--no-register", ro_register, "refine the positions by registration (default) or take them as they are");
    mosaic->add_option("--stage-error,--search", ro.stage_error,
                       "largest error of a position relative to a neighbour's, pixels per axis (default: a tenth of "
                       "the tile's width and height, at least 8)")
        ->check(CLI::Range(1, 4096));
    mosaic->add_option("--register-band", ro.band, "the band registered (0-based; default: the mean of the bands); every band uses its positions")
        ->check(CLI::Range(0, 1 << 16));
    mosaic->add_option("--min-score", ro.min_score,
                       "lowest trust threshold: a pair is used when its correlation is above this and above what "
                       "tiles that cannot overlap score")
        ->check(CLI::Range(-1.0, 1.0));
    mosaic->add_flag("--integer-positions", integer_positions, "round the solved positions to whole pixels (no resampling)");
    mosaic->add_option("--blend", mso.blend, "feather (each tile fades in over --blend-width from its edges, later ones on top) or none (hard edges, as stitch)")
        ->check(spec("mosaic", "blend"));
    mosaic->add_option("--blend-width", mso.blend_width, "pixels over which a tile fades in from its edge")
        ->check(spec("mosaic", "blend_width"));
    mosaic->add_option("--report", report_out,
                       "draw the registration into NAME.svg: tiles at their solved places, pairs coloured by score, "
                       "outliers, untrusted pairs and tiles no trusted pair placed marked");
    mosaic->add_option("--pairs-out", pairs_out,
                       "write every registered pair as a CSV: the two files, measured offset, score (confidence), "
                       "found, used, residual, why not");
    mosaic->add_option("--deep-share", ro.plan.deep_share,
                       "share of the tiles read down to their overlap below (top-down JPEG decode makes those reads "
                       "cost most of a decode); 1: register every overlapping pair")
        ->check(CLI::Range(0.0, 1.0));

    MergeOptions mo;
    double merge_nodata = 0;
    auto* merge = app.add_subcommand("merge", "merge georeferenced rasters like rasterio.merge and write a tiled GeoTIFF");
    merge->add_option("INPUTS", mo.inputs, "rasters GDAL opens, in merge order")->required();
    merge->add_option("-o,--output", mo.output, "output GeoTIFF")->required();
    merge->add_option("--method", mo.method, "first, last, min, max, sum or count")->check(spec("merge", "method"));
    auto* nodata_opt = merge->add_option("--nodata", merge_nodata, "output nodata (default: the first input's)");
    merge->add_option("--res", mo.res, "output resolution: R, or RX RY")->expected(1, 2);
    merge->add_option("--bounds", mo.bounds, "output bounds: W S E N")->expected(4);
    merge->add_flag("--tap", mo.tap, "align the bounds to multiples of the resolution");
    merge->add_option("--dtype", mo.dtype, "output type: uint8, uint16, int16, uint32, int32, float32, float64")
        ->check(spec("merge", "dtype"));
    merge->add_option("--resampling", mo.resampling, "nearest, bilinear or cubic (for inputs at another resolution)")
        ->check(spec("merge", "resampling"));
    merge->add_option("--format", mo.format, "tiff or gtiff (tiled GeoTIFF) or cog (Cloud Optimized GeoTIFF, with overviews); default: the -o extension's");
    merge->add_option("--tile-size", mo.tile_size, "tile size, a multiple of 16 (default 256; cog 512)")
        ->check(spec("save", "tile_width"));
    merge->add_option("--compression", mo.compression, "none, deflate, lzw, zstd or jpeg")
        ->check(spec("save", "compression"));
    merge->add_option("--co", mo.creation_options,
                      "creation option KEY=VALUE, as GDAL's: BLOCKSIZE, COMPRESS, PREDICTOR, QUALITY, OVERVIEWS, BIGTIFF");
    merge->add_flag("--emit-json", emit_json, "print the equivalent pipeline instead of running it");
    merge->add_option("--threads", threads, "worker threads (0: every core)")->check(thread_count);
    merge->add_flag("--stats", stats, "print tiles, time and peak pixel memory when done");
    merge->add_flag("-q,--quiet", quiet, "no progress line (--progress none)");
    merge->add_option("--progress", progress, kProgressHelp)->check(CLI::IsMember({"auto", "bar", "json", "none"}));
    merge->add_option("--on-error", g_on_error, on_error_help)->check(CLI::IsMember({"fail", "background"}));

    std::string view_dzi, view_out;
    auto* view = app.add_subcommand("view", "write NAME.html beside NAME.dzi: the pyramid in OpenSeadragon (copied beside it; no CDN)");
    view->add_option("DZI", view_dzi, "a .dzi written by tessera (or vips dzsave)")->required();
    view->add_option("-o,--output", view_out, "the page to write (default: NAME.html beside the .dzi)");

    // libvips's untrusted loaders (ImageMagick) stay blocked unless asked for
    bool allow_untrusted = false;
    for (CLI::App* sub : {run, info, stitch, mosaic, merge})
        sub->add_flag("--allow-untrusted-loaders", allow_untrusted,
                      "let libvips read files with its untrusted loaders (ImageMagick's magickload); off by default: "
                      "use it only for files you trust");

    CLI11_PARSE(app, argc, argv);
    if (quiet) progress = "none";
    if (allow_untrusted) allow_untrusted_loaders(true);
    // --tile-size of stitch and mosaic feeds a TIFF's tile_width or a
    // .dzi's tile_size, whose ranges differ: check the one the output uses
    for (auto [cmd, o] : {std::pair{stitch, static_cast<StitchOptions*>(&so)}, std::pair{mosaic, static_cast<StitchOptions*>(&mso)}}) {
        if (!*cmd || cmd->get_option("--tile-size")->count() == 0) continue;
        try {
            check_option_value(reg, "save", stitch_tile_key(*o), "--tile-size", std::int64_t(o->tile_size));
        } catch (const CLI::ParseError& e) {
            return app.exit(e);
        }
    }

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    // building the graph (the headers of thousands of inputs) stops too
    set_build_cancel(&g_cancel);
    try {
        g_cluster = join_cluster(&argc, &argv);
        if (g_cluster) {
            g_cluster->watch(&g_cancel);
            const std::string note = "\ntessera: " + rank_prefix() +
                                     "stopped by a signal (the launcher ends the job: another rank failed or was "
                                     "killed, or it was cancelled); no output written; temporary files removed (a Deep Zoom "
                                     "folder goes with the next run to the same target)\n";
            g_signal_note_len = std::min(note.size(), sizeof g_signal_note);
            std::memcpy(g_signal_note, note.data(), g_signal_note_len);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: error: %s\n", e.what());
        return 1;
    }
    // A failed rank tells the others, which stop, clean up and answer, and
    // then ends the job; a rank stopped by a signal ends without
    // MPI_Finalize, which would wait for ranks that are gone.
    auto fail = [&](int code, const std::string& message = {}) {
        std::fflush(stderr);
        if (g_cluster && code == 1) g_cluster->fail(code, message);
        if (g_cluster && !g_cluster->failure().empty()) g_cluster->acknowledge();
        if (g_cluster) std::_Exit(code);
        return code;
    };
    try {
        if (*run) return cmd_run(pipeline, threads, tile, stats, progress, memory_mb);
        if (*ops) return cmd_ops(as_json);
        if (*formats) {
            std::cout << describe_output_formats(as_json);
            return 0;
        }
        if (*info) {
            std::cout << describe_image(file);
            return 0;
        }
        if (*dot) return cmd_dot(pipeline, out, svg, collapse);
        if (*view) return cmd_view(view_dzi, view_out);
        // the tiles and where they go: a positions file or a grid
        auto read_tiles = [&](StitchOptions& o) {
            if (grid.empty()) {
                if (grid_o.order != "row" || grid_o.first_index >= 0)
                    throw Error("--order and --first-index describe a --grid; a positions file gives the positions");
                if (overlap_arg >= 0) {
                    if (overlap_arg != std::floor(overlap_arg))
                        throw Error("--overlap " + std::to_string(overlap_arg) +
                                    ": a .dzi's overlap is whole pixels (a percentage needs --grid)");
                    o.overlap = int(overlap_arg);
                }
                return read_positions(o.positions);
            }
            if (overlap_arg < 0)
                throw Error("--grid " + grid + " needs --overlap PCT: the percent of a tile its neighbours share");
            const auto [cols, rows] = parse_grid(grid);
            grid_o.cols = cols;
            grid_o.rows = rows;
            grid_o.overlap = overlap_arg;
            return grid_positions(o.positions, grid_o, standard_registry());
        };
        auto say_fit = [&](const CanvasFit& fit) {
            if (!quiet && speaks_for_job())
                std::fprintf(stderr, "canvas: %dx%d, the tiles' bounding box; positions shifted by %s,%s to start at 0,0\n",
                             fit.width, fit.height, std::to_string(std::int64_t(fit.shift[0])).c_str(),
                             std::to_string(std::int64_t(fit.shift[1])).c_str());
        };
        if (*stitch) {
            if (!canvas.empty()) {
                so.canvas_w = canvas[0];
                so.canvas_h = canvas[1];
            }
            std::vector<Placement> rows = read_tiles(so);
            if (ffr.estimate) {  // the job checked before any pixel is read
                StitchOptions check = so;
                check.illumination = {};
                stitch_graph(check, rows, standard_registry());
            }
            prepare_illumination(so, rows, ffr, emit_json, threads, speaks_for_job() && (!quiet || stats));
            if (gain_compensation) prepare_gains(so, rows, threads, speaks_for_job() && (!quiet || stats));
            CanvasFit fit;
            Graph g = stitch_graph(so, rows, standard_registry(), &fit);
            if (canvas.empty()) {
                say_fit(fit);
                shift_positions(rows, fit.shift);
            }
            if (!positions_out.empty() && speaks_for_job()) write_positions(positions_out, rows);
            if (emit_json) {
                std::cout << to_json(g);
                return 0;
            }
            return run_graph(g, threads, stats, progress);
        }
        if (*mosaic) {
            // in a sharded run every rank registers (its share of the pairs)
            // and builds the graph; rank 0 alone reports and writes the CSVs
            const bool lead = speaks_for_job();
            std::vector<Placement> tiles = read_tiles(mso);
            // without --canvas: the bounding box of the given positions for
            // the check, of the solved ones for the mosaic
            std::array<double, 2> shifted{0, 0};
            std::vector<std::array<int, 2>> sizes;  // read once, for both fits
            auto fit_tiles = [&] {
                if (sizes.empty()) sizes = tile_sizes(tiles, standard_registry());
                const CanvasFit fit = fit_canvas(tiles, sizes, !integer_positions);
                shift_positions(tiles, fit.shift);
                shifted = {shifted[0] + fit.shift[0], shifted[1] + fit.shift[1]};
                mso.canvas_w = fit.width;
                mso.canvas_h = fit.height;
            };
            if (!canvas.empty()) {
                mso.canvas_w = canvas[0];
                mso.canvas_h = canvas[1];
            } else {
                fit_tiles();
            }
            // the whole job is checked (tiles, canvas, output options) before
            // registration spends any time on pixels
            {
                MosaicOptions check = mso;
                if (ffr.estimate) check.illumination = {};  // checked by the estimate
                mosaic_graph(check, tiles, standard_registry());
            }
            prepare_illumination(mso, tiles, ffr, emit_json, threads, lead && (!quiet || stats));
            ro.illumination = mso.illumination;  // registration sees the corrected tiles
            if (ro_register) {
                ro.threads = std::max(threads, 0);
                ro.source = mso.positions;
                ro.cancel = &g_cancel;
                ro.cluster = g_cluster.get();
                RegisterReport rep = register_positions(tiles, ro, standard_registry());
                if (lead && !report_out.empty()) write_registration_svg(report_out, tiles, rep);
                for (std::size_t i = 0; i < tiles.size(); ++i)
                    for (int k = 0; k < 2; ++k)
                        tiles[i].at[std::size_t(k)] = integer_positions
                                                          ? std::floor(rep.positions[i][std::size_t(k)] + 0.5)
                                                          : rep.positions[i][std::size_t(k)];
                if (lead && (!quiet || stats))
                    std::fprintf(stderr,
                                 "registration: %zu of %zu overlapping pairs registered (%zu tiles read deep; %zu "
                                 "neighbours overlap too thinly), %zu aligned (%zu strips tried again elsewhere), "
                                 "%zu trusted (score above %.3f, learned from %zu pairs that cannot overlap), %zu "
                                 "dropped as outliers; tiles placed: %zu by their pairs, %zu as smaller groups and "
                                 "%zu by the stage model alone; stage error %dx%d px; %.2f s, %.1f Mpx read\n",
                                 rep.registered, rep.candidates, rep.deep_reads, rep.thin.size(), rep.matched,
                                 rep.retried, rep.trusted, rep.threshold, rep.null_scored, rep.rejected, rep.by_pairs,
                                 rep.by_group, rep.by_model, rep.stage_error.x, rep.stage_error.y, rep.seconds,
                                 rep.pixels_read / 1e6);
                if (lead && stats)
                    for (const std::string& p : rep.problems) std::fprintf(stderr, "  not used: %s\n", p.c_str());
                if (lead && !pairs_out.empty()) write_pairs_csv(pairs_out, tiles, rep);
            }
            if (!report_out.empty() && !ro_register)
                throw Error("--report draws the registration; it needs --register");
            // the gains at the positions used
            if (gain_compensation) prepare_gains(mso, tiles, threads, lead && (!quiet || stats));
            if (canvas.empty()) {
                fit_tiles();
                say_fit({mso.canvas_w, mso.canvas_h, shifted});
            }
            if (lead && !positions_out.empty()) write_positions(positions_out, tiles);
            Graph g = mosaic_graph(mso, tiles, standard_registry());
            if (emit_json) {
                std::cout << to_json(g);
                return 0;
            }
            return run_graph(g, threads, stats, progress);
        }
        if (*merge) {
            if (nodata_opt->count() > 0) mo.nodata = merge_nodata;
            Graph g = merge_graph(mo, standard_registry());
            if (emit_json) {
                std::cout << to_json(g);
                return 0;
            }
            return run_graph(g, threads, stats, progress);
        }
    } catch (const Cancelled&) {
        if (g_cluster && !g_cluster->failure().empty())
            std::fprintf(stderr, "tessera: %sstopped, no output was written: %s\n", rank_prefix().c_str(),
                         g_cluster->failure().c_str());
        else if (g_cluster)
            ;  // the signal handler has said it
        else
            std::fprintf(stderr, "\ntessera: cancelled; no output was written\n");
        return fail(g_signal == SIGTERM ? 143 : 130);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: %serror: %s\n", rank_prefix().c_str(), e.what());
        return fail(1, rank_prefix() + "failed: " + e.what());
    }
    return 0;
}
