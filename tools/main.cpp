// tessera: the command line. Each subcommand is a pair of functions, add_X
// (its options) and cmd_X (what it does); options several share are
// declared once in a group (add_run_options, add_tile_inputs,
// add_output_options, add_illumination_options). The jobs themselves are
// library functions (tessera/jobs.hpp, merge.hpp, view.hpp): what is here
// is options, messages and exit codes. Nothing here computes pixels.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
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
#include "tessera/jobs.hpp"
#include "tessera/mosaic.hpp"
#include "tessera/report.hpp"
#include "tessera/stitch.hpp"
#include "tessera/tessera.hpp"
#include "tessera/view.hpp"

namespace {

using namespace tessera;

std::atomic<bool> g_cancel{false};
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
        std::fprintf(
            stderr,
            "tessera: rank %d: %zu tiles, busy %.2f s (thread time), share done at %.2f s, run %.2f s "
            "(%.2f s in the sink's serial steps, %.2f s of it waiting on other ranks), %.1f MB sent (%.1f KB per "
            "tile)\n",
            r.rank, r.tiles, r.busy_seconds, r.share_seconds, r.seconds, r.sink_seconds, r.wait_seconds,
            r.bytes_sent / 1048576.0, r.tiles ? r.bytes_sent / 1024.0 / double(r.tiles) : 0.0);
}

void print_stats(const RunStats& s) {
    std::fprintf(stderr,
                 "tiles: %zu  seconds: %.2f  peak pixel memory: %.1f MB (evaluator and sink %.1f MB)  tiles in flight: "
                 "%zu  cache hits/misses: %zu/%zu\n",
                 s.tiles, s.seconds, s.peak_process_pixel_bytes / 1048576.0, s.peak_pixel_bytes / 1048576.0, s.tokens,
                 s.cache_hits, s.cache_misses);
    for (const PrePass& p : s.prepasses)
        std::fprintf(stderr, "statistics pre-pass: '%s' for '%s' (%s): %zu blocks, %.2f s\n", p.input.c_str(),
                     p.node.c_str(), p.histogram ? "histogram" : "min/max/mean", p.tiles, p.seconds);
    std::fprintf(stderr, "%s\n", io_stats().c_str());
}

// The options of every subcommand that runs a graph (run, stitch, mosaic,
// merge), declared once by add_run_options.
struct RunFlags {
    int threads = -1;  // -1: the pipeline's setting
    bool stats = false, quiet = false;
    std::string progress = "auto";
    // "fail", "background", or empty (the pipeline's own setting)
    std::string on_error;
    int memory_mb = -1;  // run's --memory-mb; -1: the pipeline's setting
};

// Runs every sink of g with progress; Ctrl-C cancels.
int run_graph(Graph& g, const RunFlags& r) {
    if (r.threads >= 0) g.execution.threads = r.threads;
    if (r.memory_mb >= 0) g.execution.memory_mb = std::size_t(r.memory_mb);
    if (!r.on_error.empty())
        g.execution.on_error = r.on_error == "background" ? Execution::OnError::background : Execution::OnError::fail;
    Evaluator ev(g);
    // one progress line for the job: rank 0's
    ProgressReporter line(speaks_for_job() ? r.progress : "none");
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
        std::fprintf(
            stderr,
            "tessera: %zu tile part(s) of %zu file(s) were filled with background; the output is complete otherwise\n",
            s.filled.size(), files.size());
    }
    print_ranks(s);
    if (r.stats) print_stats(s);
    return 0;
}

// The graph as a pipeline on stdout (--emit-json), or run.
int emit_or_run(Graph& g, bool emit_json, const RunFlags& r) {
    if (emit_json) {
        std::cout << to_json(g);
        return 0;
    }
    return run_graph(g, r);
}

int cmd_ops(bool as_json) {
    const OpRegistry& r = standard_registry();
    if (as_json) {
        std::cout << ops_to_json(r);
        return 0;
    }
    // grouped by kind, in the README's order; kinds not listed (an op that
    // set none is "other") follow in the order they first appear
    std::vector<std::string> kinds = {"source",        "geometry",   "arithmetic", "bands", "colour",
                                      "neighbourhood", "statistics", "mosaic",     "sink"};
    for (const OpSpec& s : r.specs())
        if (std::find(kinds.begin(), kinds.end(), s.kind) == kinds.end()) kinds.push_back(s.kind);
    std::vector<const OpSpec*> order;
    for (const std::string& kind : kinds)
        for (const OpSpec& s : r.specs())
            if (s.kind == kind) order.push_back(&s);
    std::string last_kind;
    for (const OpSpec* sp : order) {
        const OpSpec& s = *sp;
        if (s.kind != last_kind) std::cout << (last_kind.empty() ? "" : "\n") << "[" << s.kind << "]\n";
        last_kind = s.kind;
        std::string ins = s.max_inputs < 0 ? std::to_string(s.min_inputs) + "+"
                          : s.min_inputs == s.max_inputs
                              ? std::to_string(s.min_inputs)
                              : std::to_string(s.min_inputs) + "-" + std::to_string(s.max_inputs);
        std::cout << s.name << " (inputs: " << ins << (s.sink ? ", sink" : "") << ", halo: " << s.halo << "): " << s.doc
                  << "\n";
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

// ---- option groups: each declared once, bound to the struct it fills

// An empty value would otherwise be taken as 0 (every core): under a
// scheduler, `--threads "$SLURM_CPUS_PER_TASK"` with the variable unset
// then quietly takes every core of a shared node.
// The range is the pipeline's "threads" setting's (execution_params).
CLI::Validator thread_count() {
    const ParamSpec& spec = param_spec(execution_params(), "threads");
    const int lo = int(*spec.min), hi = int(*spec.max);
    return CLI::Validator(
        [lo, hi](std::string& s) -> std::string {
            int v = -1;
            if (s.empty()) return "is empty; give a number of threads (0: every core)";
            if (!CLI::detail::lexical_cast(s, v) || v < lo || v > hi)
                return "'" + s + "' is not a number of threads from 0 (every core) to " + std::to_string(hi);
            return {};
        },
        std::to_string(lo) + ".." + std::to_string(hi));
}

// An option that sets `op`'s parameter `key` is checked by its spec.
CLI::Validator spec(const std::string& op, const std::string& key) {
    return spec_validator(standard_registry(), op, key);
}

// An option that sets a registration option is checked by its spec.
CLI::Validator register_spec(const std::string& key) { return spec_validator(param_spec(register_params(), key)); }

const char* kOnErrorHelp = "a file that cannot be read: fail the run (default), or fill its part with background, "
                           "finish, and list each part filled";

// --threads, --stats, -q, --progress and --on-error.
// (--threads' text is the pipeline's "threads" setting's, plus `more`)
void add_run_options(CLI::App* cmd, RunFlags& r, const std::string& more = "") {
    cmd->add_option("--threads", r.threads, param_spec(execution_params(), "threads").doc + more)
        ->check(thread_count());
    cmd->add_flag("--stats", r.stats, "print tiles, time and peak pixel memory when done");
    cmd->add_flag("-q,--quiet", r.quiet, "no progress line (--progress none)");
    cmd->add_option("--progress", r.progress, kProgressHelp)->check(CLI::IsMember({"auto", "bar", "json", "none"}));
    cmd->add_option("--on-error", r.on_error, kOnErrorHelp)->check(CLI::IsMember({"fail", "background"}));
}

// Where the tiles of stitch and mosaic come from and go: a positions file
// or a grid, the canvas, and the positions written back.
struct TileInputs {
    std::vector<int> canvas;
    std::string grid, positions_out;
    GridOptions grid_o;
    double overlap = -1;  // --overlap: the grid's percentage, or the .dzi's pixels
};

void add_tile_inputs(CLI::App* cmd, StitchOptions& o, TileInputs& in) {
    cmd->add_option("POSITIONS", o.positions,
                    "CSV with header file,x,y, Fiji TileConfiguration.txt or MIST global positions (x,y the tiles' "
                    "top-left, fractional "
                    "ones placed at the nearest whole pixel; paths relative to its folder; later rows on top); "
                    "with --grid a file pattern, e.g. 'tile_{iiii}.tif' or 'r{rrr}_c{ccc}.jpg'")
        ->required();
    cmd->add_option("--canvas", in.canvas,
                    "canvas width and height (default: the tiles' bounding box, shifted to start at 0,0)")
        ->expected(2);
    cmd->add_option("--grid", in.grid,
                    "COLSxROWS: no positions file; POSITIONS is a file pattern ({i..}: acquisition index, {r..}/{c..} "
                    "or Fiji's {y..}/{x..}: "
                    "row/column, zero-padded to the letters' count), tiles on a grid at --overlap percent");
    cmd->add_option("--order", in.grid_o.order,
                    "--grid acquisition order: row, column, snake (row by row, every other row right to left) or "
                    "column-snake")
        ->check(CLI::IsMember({"row", "column", "snake", "column-snake"}));
    cmd->add_option("--first-index", in.grid_o.first_index,
                    "--grid: number of the first tile, row and column in the file names (default: 0 if that file "
                    "exists, else 1)")
        ->check(CLI::Range(0, 1000000000));
    cmd->add_option("--positions-out", in.positions_out,
                    "write the positions used (on the output canvas): NAME.txt as a Fiji TileConfiguration, else a "
                    "CSV file,x,y");
}

// The OME outputs' --channel-names and --pixel-size X[,Y] UNIT (the save
// keys channel_names and pixel_size), for stitch, mosaic and merge; the size
// as two words (0.325 um) or one ('0.325 um').
void add_ome_options(CLI::App* cmd, std::string& names, std::string& pixel_size) {
    cmd->add_option("--channel-names", names,
                    "OME-TIFF, OME-Zarr: a name per channel, separated by commas (an 8-bit RGB OME-TIFF is one)");
    cmd->add_option_function<std::vector<std::string>>(
           "--pixel-size",
           [&pixel_size](const std::vector<std::string>& v) { pixel_size = v.size() == 1 ? v[0] : v[0] + " " + v[1]; },
           "OME-TIFF, OME-Zarr: physical pixel size X[,Y] UNIT, e.g. 0.325 um")
        ->expected(1, 2);
}

// The output of stitch and mosaic: the file and its format's options.
void add_output_options(CLI::App* cmd, StitchOptions& o, TileInputs& in) {
    const OpRegistry& reg = standard_registry();
    cmd->add_option("-o,--output", o.output, "output; its extension picks the format: " + supported_extensions())
        ->required();
    cmd->add_option("--format", o.format,
                    "the output's format, overriding its extension (e.g. cog for a .tif): " + supported_format_names() +
                        "; `tessera formats` lists them");
    // checked after parsing against save's tile_width or tile_size,
    // whichever the output uses (check_tile_size)
    cmd->add_option("--tile-size", o.tile_size,
                    "tile size (TIFF: " + param_spec(reg, "save", "tile_width").allowed() +
                        ", a multiple of 16, default 256; .dzi: " + param_spec(reg, "save", "tile_size").allowed() +
                        ", default 254, google 256)");
    cmd->add_option(
           "--compression", o.compression,
           "TIFF: none, deflate, lzw, zstd or jpeg; OME-Zarr: blosc (default), blosc-zstd, zstd, deflate or none")
        ->check(spec("save", "compression"));
    cmd->add_option("--level", o.level,
                    "compression effort: TIFF deflate 1-12 (default 6), zstd 1-22 (default 9); OME-Zarr zstd (default "
                    "3), blosc and deflate 1-9")
        ->check(spec("save", "level"));
    cmd->add_option("--quality", o.quality, "JPEG (and .dzi webp) quality")->check(spec("save", "quality"));
    // (as a .dzi's overlap it is checked by the save's spec when the
    // graph is built, like a pipeline's)
    cmd->add_option("--overlap", in.overlap,
                    "with --grid: percent of a tile its neighbours share, as Fiji's and MIST's grids (required); "
                    "else .dzi: pixels each tile reaches beyond its step (default 1, google 0)")
        ->check(CLI::Range(0.0, 8192.0));
    cmd->add_option("--suffix", o.suffix,
                    ".dzi: tile format, jpeg (jpg), png or webp (default jpeg, other layouts jpg)")
        ->check(spec("save", "suffix"));
    cmd->add_option(
           "--layout", o.layout,
           ".dzi: dz (NAME.dzi + NAME_files/LEVEL/COL_ROW), google (NAME/Z/Y/X), iiif or iiif3 (NAME/info.json "
           "+ IIIF level-0 tiles)")
        ->check(spec("save", "layout"));
    cmd->add_option(
           "--container", o.container,
           ".dzi: fs (files), zip (NAME.zip) or szi (NAME.szi); default: by the extension (.zip, .szi), else fs")
        ->check(spec("save", "container"));
    cmd->add_option("--skip-blanks", o.skip_blanks,
                    ".dzi: tiles whose every sample is within this of the background (255) are not written; -1: none "
                    "(default; google 5)")
        ->check(spec("save", "skip_blanks"));
    cmd->add_option("--id", o.id, ".dzi with --layout iiif/iiif3: the base URL info.json names the image by (ID/NAME)");
    cmd->add_flag("--pyramid", o.pyramid, "write every 2x smaller level down to one tile");
    cmd->add_option("--bigtiff", o.bigtiff, "auto, yes or no")->check(spec("save", "bigtiff"));
    cmd->add_option("--background", o.background, "canvas value: one, or one per band");
    add_ome_options(cmd, o.channel_names, o.pixel_size);
}

// Flat-field, dark-field and gains (prepared by the jobs, tessera/jobs.hpp).
void add_illumination_options(CLI::App* cmd, StitchOptions& o) {
    cmd->add_option("--flatfield", o.illumination.flatfield,
                    "correct every tile as (I - D) / F: F a one-band image of the tile size (BaSiC's, ASHLAR's --ffp)");
    cmd->add_option("--darkfield", o.illumination.darkfield,
                    "the D of --flatfield (BaSiC's dark-field, ASHLAR's --dfp)");
    cmd->add_flag("--estimate-flatfield", o.estimate_flatfield,
                  "estimate F from a sample of the tiles (up to 200, spread evenly) and correct with it (with "
                  "--darkfield: as (I - D) / F)");
    cmd->add_option("--flatfield-out", o.flatfield_out,
                    "write the estimated F as a one-band float TIFF (for --flatfield)");
    cmd->add_flag("--gain-compensation", o.gain_compensation,
                  "divide each tile by its exposure gain, solved from the means of its overlaps with its neighbours");
}

// Everything stitch and mosaic share, in the order --help lists it.
void add_job_options(CLI::App* cmd, StitchOptions& o, TileInputs& in, bool& emit_json, RunFlags& r) {
    add_tile_inputs(cmd, o, in);
    add_output_options(cmd, o, in);
    cmd->add_flag("--emit-json", emit_json, "print the equivalent pipeline instead of running it");
    add_run_options(cmd, r);
    add_illumination_options(cmd, o);
}

// --tile-size of stitch and mosaic feeds a TIFF's tile_width or a .dzi's
// tile_size, whose ranges differ: the one the output uses, after parsing.
void check_tile_size(const CLI::App* cmd, const StitchOptions& o) {
    if (!*cmd || cmd->get_option("--tile-size")->count() == 0) return;
    check_option_value(standard_registry(), "save", stitch_tile_key(o), "--tile-size", std::int64_t(o.tile_size));
}

// The tiles and where they go: a positions file or a grid; and the canvas.
std::vector<Placement> read_tiles(StitchOptions& o, TileInputs& in) {
    if (!in.canvas.empty()) {
        o.canvas_w = in.canvas[0];
        o.canvas_h = in.canvas[1];
    }
    if (in.grid.empty()) {
        if (in.grid_o.order != "row" || in.grid_o.first_index >= 0)
            throw Error("--order and --first-index describe a --grid; a positions file gives the positions");
        if (in.overlap >= 0) {
            if (in.overlap != std::floor(in.overlap))
                throw Error("--overlap " + std::to_string(in.overlap) +
                            ": a .dzi's overlap is whole pixels (a percentage needs --grid)");
            o.overlap = int(in.overlap);
        }
        return read_positions(o.positions);
    }
    if (in.overlap < 0)
        throw Error("--grid " + in.grid + " needs --overlap PCT: the percent of a tile its neighbours share");
    const auto [cols, rows] = parse_grid(in.grid);
    in.grid_o.cols = cols;
    in.grid_o.rows = rows;
    in.grid_o.overlap = in.overlap;
    return grid_positions(o.positions, in.grid_o, standard_registry());
}

// The job's context: this run's threads, Ctrl-C and cluster, and what the
// CLI says as the steps end (the process that speaks for the job; -q keeps
// it quiet unless --stats).
JobContext job_context(const RunFlags& r, bool emit_json) {
    JobContext c;
    c.threads = std::max(r.threads, 0);
    c.cancel = &g_cancel;
    c.cluster = g_cluster.get();
    c.for_pipeline = emit_json;
    const bool say = speaks_for_job() && (!r.quiet || r.stats);
    c.flatfield_estimated = [say](const FlatfieldEstimate& est, std::size_t tiles) {
        if (say)
            std::fprintf(stderr,
                         "flat-field: estimated from %zu of %zu tiles (degree %d, %.1f%% of the profile was content); "
                         "%.2f s\n",
                         est.tiles, tiles, est.degree, 100 * est.residual, est.seconds);
    };
    c.gains_estimated = [say](const GainEstimate& est) {
        const auto& [lo, hi] = std::minmax_element(est.gains.gain.begin(), est.gains.gain.end());
        if (say)
            std::fprintf(stderr,
                         "gains: %zu of %zu overlaps used, %zu tiles without one; gains %.3f..%.3f; overlap mismatch "
                         "%.2f%% -> %.2f%% RMS; %.2f s\n",
                         est.gains.used, est.overlaps, est.gains.unlinked, *lo, *hi, 100 * est.gains.rms_before,
                         100 * est.gains.rms_after, est.seconds);
    };
    c.canvas_fitted = [quiet = r.quiet](const CanvasFit& fit) {
        if (!quiet && speaks_for_job())
            std::fprintf(stderr, "canvas: %dx%d, the tiles' bounding box; positions shifted by %s,%s to start at 0,0\n",
                         fit.width, fit.height, std::to_string(std::int64_t(fit.shift[0])).c_str(),
                         std::to_string(std::int64_t(fit.shift[1])).c_str());
    };
    return c;
}

// ---- the subcommands: each its options and what it does

struct RunCmd {
    std::string pipeline;
    int tile = 0;
};

CLI::App* add_run(CLI::App& app, RunCmd& c, RunFlags& r) {
    auto* run = app.add_subcommand("run", "run a JSON pipeline: compute and write every save node");
    run->add_option("PIPELINE", c.pipeline, "pipeline .json file")->required();
    add_run_options(run, r, "; default: the pipeline's setting");
    // (ranges: the pipeline's execution settings)
    run->add_option("--tile-size", c.tile, "tile width and height in pixels (default: the pipeline's setting)")
        ->check(spec_validator(param_spec(execution_params(), "tile")));
    run->add_option(
           "--memory-mb", r.memory_mb,
           "budget for the tiles in flight (fewer tiles at once, or an error before starting if one does not fit)")
        ->check(spec_validator(param_spec(execution_params(), "memory_mb")));
    return run;
}

int cmd_run(const RunCmd& c, const RunFlags& r) {
    Graph g = load_pipeline(c.pipeline, standard_registry());
    if (c.tile > 0) g.execution.tile_w = g.execution.tile_h = c.tile;
    return run_graph(g, r);
}

struct DotCmd {
    std::string pipeline, out, svg;
    int collapse = 16;
};

CLI::App* add_dot(CLI::App& app, DotCmd& c) {
    auto* dot = app.add_subcommand("dot", "print a pipeline's graph in Graphviz DOT");
    dot->add_option("PIPELINE", c.pipeline, "pipeline .json file")->required();
    dot->add_option("-o,--output", c.out, "write to this file instead of stdout");
    dot->add_option("--svg", c.svg, "draw the graph into this SVG file with graphviz's dot (must be installed)");
    dot->add_option("--collapse", c.collapse, "fold a node's inputs into one box beyond this many (0: never)");
    return dot;
}

struct StitchCmd {
    StitchOptions o;
    TileInputs in;
    bool emit_json = false;
};

CLI::App* add_stitch(CLI::App& app, StitchCmd& c, RunFlags& r) {
    auto* stitch = app.add_subcommand("stitch", "place scanned tiles on a canvas at their positions and write a tiled "
                                                "(pyramid) TIFF or a Deep Zoom pyramid (.dzi)");
    add_job_options(stitch, c.o, c.in, c.emit_json, r);
    return stitch;
}

int cmd_stitch(StitchCmd& c, const RunFlags& r) {
    std::vector<Placement> rows = read_tiles(c.o, c.in);
    check_side_outputs(c.o, rows, {{"--positions-out", c.in.positions_out}});
    PlannedJob job = plan_stitch(c.o, std::move(rows), standard_registry(), job_context(r, c.emit_json));
    if (!c.in.positions_out.empty() && speaks_for_job()) write_positions(c.in.positions_out, job.tiles);
    return emit_or_run(job.graph, c.emit_json, r);
}

struct MosaicCmd {
    MosaicOptions o;
    TileInputs in;
    bool emit_json = false;
    std::string pairs_out, report_out;
};

CLI::App* add_mosaic(CLI::App& app, MosaicCmd& c, RunFlags& r) {
    auto* mosaic = app.add_subcommand(
        "mosaic", "like stitch, with positions refined by registering neighbouring tiles and feathered overlaps");
    add_job_options(mosaic, c.o, c.in, c.emit_json, r);
    RegisterOptions& ro = c.o.registration;
    mosaic->add_flag("--register,!--no-register", c.o.register_tiles,
                     "refine the positions by registration (default) or take them as they are");
    mosaic
        ->add_option("--stage-error,--search", ro.stage_error,
                     "largest error of a position relative to a neighbour's, pixels per axis (default: a tenth of "
                     "the tile's width and height, at least 8)")
        ->check(register_spec("stage_error"));
    mosaic
        ->add_option("--register-band", ro.band,
                     "the band registered (0-based; default: the mean of the bands); every band uses its positions")
        ->check(register_spec("band"));
    mosaic
        ->add_option("--min-score", ro.min_score,
                     "lowest trust threshold: a pair is used when its correlation is above this and above what "
                     "tiles that cannot overlap score")
        ->check(register_spec("min_score"));
    mosaic->add_flag("--integer-positions", c.o.integer_positions,
                     "round the solved positions to whole pixels (no resampling)");
    mosaic
        ->add_option("--blend", c.o.blend,
                     "feather (each tile fades in over --blend-width from its edges, later ones on top) or none (hard "
                     "edges, as stitch)")
        ->check(spec("mosaic", "blend"));
    mosaic->add_option("--blend-width", c.o.blend_width, "pixels over which a tile fades in from its edge")
        ->check(spec("mosaic", "blend_width"));
    mosaic->add_option("--report", c.report_out,
                       "draw the registration into NAME.svg: tiles at their solved places, pairs coloured by score, "
                       "outliers, untrusted pairs and tiles no trusted pair placed marked");
    mosaic->add_option("--pairs-out", c.pairs_out,
                       "write every registered pair as a CSV: the two files, measured offset, score (confidence), "
                       "found, used, residual, why not");
    mosaic
        ->add_option("--deep-share", ro.plan.deep_share,
                     "share of the tiles read down to their overlap below (top-down JPEG decode makes those reads "
                     "cost most of a decode); 1: register every overlapping pair")
        ->check(register_spec("deep_share"));
    return mosaic;
}

// What the CLI makes of a registration: the picture and the pairs CSV
// (rank 0 writes them), a summary line, with --stats the pairs not used.
void report_registration(const MosaicCmd& c, const RunFlags& r, const RegisterReport& rep,
                         const std::vector<Placement>& tiles) {
    if (!speaks_for_job()) return;
    if (!c.report_out.empty()) write_registration_svg(c.report_out, tiles, rep);
    if (!r.quiet || r.stats)
        std::fprintf(stderr,
                     "registration: %zu of %zu overlapping pairs registered (%zu tiles read deep; %zu "
                     "neighbours overlap too thinly), %zu aligned (%zu strips tried again elsewhere), "
                     "%zu trusted (score above %.3f, learned from %zu pairs that cannot overlap), %zu "
                     "dropped as outliers; tiles placed: %zu by their pairs, %zu as smaller groups and "
                     "%zu by the stage model alone; stage error %dx%d px; %.2f s, %.1f Mpx read\n",
                     rep.registered, rep.candidates, rep.deep_reads, rep.thin.size(), rep.matched, rep.retried,
                     rep.trusted, rep.threshold, rep.null_scored, rep.rejected, rep.by_pairs, rep.by_group,
                     rep.by_model, rep.stage_error.x, rep.stage_error.y, rep.seconds, rep.pixels_read / 1e6);
    if (r.stats)
        for (const std::string& p : rep.problems) std::fprintf(stderr, "  not used: %s\n", p.c_str());
    if (!c.pairs_out.empty()) write_pairs_csv(c.pairs_out, tiles, rep);
}

int cmd_mosaic(MosaicCmd& c, const RunFlags& r) {
    // in a sharded run every rank registers (its share of the pairs) and
    // builds the graph; rank 0 alone reports and writes the side files
    std::vector<Placement> tiles = read_tiles(c.o, c.in);
    check_side_outputs(c.o, tiles,
                       {{"--positions-out", c.in.positions_out},
                        {"--pairs-out", c.pairs_out},
                        {"--report", c.report_out}});
    if (!c.report_out.empty() && !c.o.register_tiles)
        throw Error("--report draws the registration; it needs --register");
    JobContext ctx = job_context(r, c.emit_json);
    ctx.registered = [&](const RegisterReport& rep, const std::vector<Placement>& at) {
        report_registration(c, r, rep, at);
    };
    PlannedJob job = plan_mosaic(c.o, std::move(tiles), standard_registry(), ctx);
    if (!c.in.positions_out.empty() && speaks_for_job()) write_positions(c.in.positions_out, job.tiles);
    return emit_or_run(job.graph, c.emit_json, r);
}

struct MergeCmd {
    MergeOptions o;
    double nodata = 0;
    CLI::Option* nodata_given = nullptr;
    bool emit_json = false;
};

CLI::App* add_merge(CLI::App& app, MergeCmd& c, RunFlags& r) {
    MergeOptions& mo = c.o;
    auto* merge =
        app.add_subcommand("merge", "merge georeferenced rasters like rasterio.merge and write a tiled GeoTIFF");
    merge->add_option("INPUTS", mo.inputs, "rasters GDAL opens, in merge order")->required();
    merge->add_option("-o,--output", mo.output, "output GeoTIFF")->required();
    merge->add_option("--method", mo.method, "first, last, min, max, sum or count")->check(spec("merge", "method"));
    c.nodata_given = merge->add_option("--nodata", c.nodata, "output nodata (default: the first input's)");
    merge->add_option("--res", mo.res, "output resolution: R, or RX RY")->expected(1, 2);
    merge->add_option("--bounds", mo.bounds, "output bounds: W S E N")->expected(4);
    merge->add_flag("--tap", mo.tap, "align the bounds to multiples of the resolution");
    merge->add_option("--dtype", mo.dtype, "output type: uint8, uint16, int16, uint32, int32, float32, float64")
        ->check(spec("merge", "dtype"));
    merge->add_option("--resampling", mo.resampling, "nearest, bilinear or cubic (for inputs at another resolution)")
        ->check(spec("merge", "resampling"));
    merge->add_option(
        "--format", mo.format,
        "tiff or gtiff (tiled GeoTIFF) or cog (Cloud Optimized GeoTIFF, with overviews); default: the -o extension's");
    merge->add_option("--tile-size", mo.tile_size, "tile size, a multiple of 16 (default 256; cog 512)")
        ->check(spec("save", "tile_width"));
    merge->add_option("--compression", mo.compression, "none, deflate, lzw, zstd or jpeg")
        ->check(spec("save", "compression"));
    merge->add_option("--level", mo.level, "deflate 1-12 (default 6) or zstd 1-22 (default 9) compression effort")
        ->check(spec("save", "level"));
    merge->add_option(
        "--co", mo.creation_options,
        "creation option KEY=VALUE, as GDAL's: BLOCKSIZE, COMPRESS, PREDICTOR, QUALITY, LEVEL (ZLEVEL, ZSTD_LEVEL), "
        "OVERVIEWS, BIGTIFF");
    add_ome_options(merge, mo.channel_names, mo.pixel_size);
    merge->add_flag("--emit-json", c.emit_json, "print the equivalent pipeline instead of running it");
    add_run_options(merge, r);
    return merge;
}

int cmd_merge(MergeCmd& c, const RunFlags& r) {
    if (c.nodata_given->count() > 0) c.o.nodata = c.nodata;
    Graph g = merge_graph(c.o, standard_registry());
    return emit_or_run(g, c.emit_json, r);
}

struct ViewCmd {
    std::string dzi;
    ViewOptions o;
};

CLI::App* add_view(CLI::App& app, ViewCmd& c) {
    auto* view = app.add_subcommand("view", "write NAME.html beside NAME.dzi (.zip, .szi, or a google or IIIF folder): "
                                            "the pyramid in OpenSeadragon (copied beside it; no CDN)");
    view->add_option("PYRAMID", c.dzi,
                     "a .dzi, .zip or .szi, or a google or IIIF folder, written by tessera (or vips dzsave); a zip is "
                     "unpacked into NAME_unzipped/ beside the page")
        ->required();
    view->add_option("-o,--output", c.o.output, "the page to write (default: NAME.html beside the .dzi)");
    return view;
}

int cmd_view(const ViewCmd& c) {
    const std::string page = write_view_page(c.dzi, c.o);
    std::fprintf(stderr, "wrote %s (open it in a browser, or serve the folder: python3 -m http.server)\n",
                 page.c_str());
    return 0;
}

// ---- the command line as a whole

struct Cli {
    CLI::App app{"tessera: a lazy, tiled image-pipeline engine"};
    RunFlags flags;  // shared: one subcommand runs
    RunCmd run_o;
    bool as_json = false;
    std::string file;
    DotCmd dot_o;
    StitchCmd stitch_o;
    MosaicCmd mosaic_o;
    MergeCmd merge_o;
    ViewCmd view_o;
    bool allow_untrusted = false;
    bool loaders = false;
    CLI::App *run = nullptr, *ops = nullptr, *formats = nullptr, *info = nullptr, *dot = nullptr, *stitch = nullptr,
             *mosaic = nullptr, *merge = nullptr, *view = nullptr;

    Cli() {
        app.require_subcommand(1);
        run = add_run(app, run_o, flags);
        ops = app.add_subcommand("ops", "list every op with its parameters, types and defaults");
        ops->add_flag("--json", as_json, "machine-readable output");
        formats = app.add_subcommand("formats", "list the output formats: names, extensions, keys, what each holds");
        formats->add_flag("--json", as_json, "machine-readable output");
        info = app.add_subcommand("info", "print the header of an image file, or the file loaders of libvips");
        CLI::Option* info_file = info->add_option("FILE", file, "image file");
        info->add_flag("--loaders", loaders, "list libvips's file loaders and which tessera blocks as untrusted")
            ->excludes(info_file);
        dot = add_dot(app, dot_o);
        stitch = add_stitch(app, stitch_o, flags);
        mosaic = add_mosaic(app, mosaic_o, flags);
        merge = add_merge(app, merge_o, flags);
        view = add_view(app, view_o);
        // libvips's untrusted loaders (ImageMagick) stay blocked unless asked for
        for (CLI::App* sub : {run, info, stitch, mosaic, merge})
            sub->add_flag(
                "--allow-untrusted-loaders", allow_untrusted,
                "let libvips read files with its untrusted loaders (ImageMagick's magickload); off by default: "
                "use it only for files you trust");
    }

    // What parsing leaves to check and settle.
    void settle() {
        if (flags.quiet) flags.progress = "none";
        if (allow_untrusted) allow_untrusted_loaders(true);
        if (*info && !loaders && file.empty()) throw CLI::RequiredError("FILE (or --loaders)");
        check_tile_size(stitch, stitch_o.o);
        check_tile_size(mosaic, mosaic_o.o);
    }

    int dispatch() {
        if (*run) return cmd_run(run_o, flags);
        if (*ops) return cmd_ops(as_json);
        if (*formats) {
            std::cout << describe_output_formats(as_json);
            return 0;
        }
        if (*info) {
            std::cout << (loaders ? describe_loaders() : describe_image(file));
            return 0;
        }
        if (*dot) return cmd_dot(dot_o.pipeline, dot_o.out, dot_o.svg, dot_o.collapse);
        if (*view) return cmd_view(view_o);
        if (*stitch) return cmd_stitch(stitch_o, flags);
        if (*mosaic) return cmd_mosaic(mosaic_o, flags);
        if (*merge) return cmd_merge(merge_o, flags);
        return 0;
    }
};

// Joins the job under mpirun/srun (nothing without a launcher); what a
// rank will say if a signal stops it is made now.
void join_job(int& argc, char**& argv) {
    g_cluster = join_cluster(&argc, &argv);
    if (!g_cluster) return;
    g_cluster->watch(&g_cancel);
    const std::string note = "\ntessera: " + rank_prefix() +
                             "stopped by a signal (the launcher ends the job: another rank failed or was "
                             "killed, or it was cancelled); no output written; temporary files removed (a Deep Zoom "
                             "folder goes with the next run to the same target)\n";
    g_signal_note_len = std::min(note.size(), sizeof g_signal_note);
    std::memcpy(g_signal_note, note.data(), g_signal_note_len);
}

// A failed rank tells the others, which stop, clean up and answer, and
// then ends the job; a rank stopped by a signal ends without MPI_Finalize,
// which would wait for ranks that are gone.
int fail(int code, const std::string& message = {}) {
    std::fflush(stderr);
    if (g_cluster && code == 1) g_cluster->fail(code, message);
    if (g_cluster && !g_cluster->failure().empty()) g_cluster->acknowledge();
    if (g_cluster) std::_Exit(code);
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    // First of all, so that a signal during the parsing below (slow on a
    // loaded machine) cancels the job as it starts instead of killing the
    // process unannounced; building the graph (the headers of thousands of
    // inputs) stops too.
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    set_build_cancel(&g_cancel);

    Cli cli;
    CLI11_PARSE(cli.app, argc, argv);
    try {
        cli.settle();
    } catch (const CLI::ParseError& e) {
        return cli.app.exit(e);
    }
    try {
        join_job(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: error: %s\n", e.what());
        return 1;
    }
    try {
        return cli.dispatch();
    } catch (const Cancelled&) {
        if (g_cluster && !g_cluster->failure().empty())
            std::fprintf(stderr, "tessera: %sstopped, no output was written: %s\n", rank_prefix().c_str(),
                         g_cluster->failure().c_str());
        else if (!g_cluster)  // (under a launcher the signal handler has said it)
            std::fprintf(stderr, "\ntessera: cancelled; no output was written\n");
        return fail(g_signal == SIGTERM ? 143 : 130);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: %serror: %s\n", rank_prefix().c_str(), e.what());
        return fail(1, rank_prefix() + "failed: " + e.what());
    }
}
