// tessera: the command line. Each subcommand wires the modules together;
// nothing here computes pixels.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "tessera/merge.hpp"
#include "tessera/mosaic.hpp"
#include "tessera/stitch.hpp"
#include "tessera/tessera.hpp"

namespace {

using namespace tessera;

std::atomic<bool> g_cancel{false};
// --on-error of run, stitch and merge: "fail", "background", or empty (the
// pipeline's own setting)
std::string g_on_error;
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_signal(int sig) {
    g_signal = sig;
    g_cancel.store(true);
}

// A one-line progress display on a terminal; nothing otherwise.
class ProgressLine {
public:
    explicit ProgressLine(bool enabled) : enabled_(enabled && isatty(STDERR_FILENO)) {}
    ~ProgressLine() { end(); }
    bool operator()(const Progress& p) {
        if (!enabled_) return true;
        if (p.seconds - last_ < 0.25 && p.tiles_done != p.tiles_total) return true;
        last_ = p.seconds;
        double frac = p.tiles_total ? double(p.tiles_done) / p.tiles_total : 1.0;
        double mpx = p.seconds > 0 ? p.pixels_done / p.seconds / 1e6 : 0.0;
        double eta = frac > 0 ? p.seconds * (1 - frac) / frac : 0.0;
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
    bool enabled_;
    bool shown_ = false;
    double last_ = -1;
};

void print_stats(const RunStats& s) {
    std::fprintf(stderr,
                 "tiles: %zu  seconds: %.2f  peak pixel memory: %.1f MB (evaluator and sink %.1f MB)  tiles in flight: "
                 "%zu  cache hits/misses: %zu/%zu\n",
                 s.tiles, s.seconds, s.peak_process_pixel_bytes / 1048576.0, s.peak_pixel_bytes / 1048576.0, s.tokens,
                 s.cache_hits, s.cache_misses);
    std::fprintf(stderr, "%s\n", io_stats().c_str());
}

// Runs every sink of g with a progress line; Ctrl-C cancels.
int run_graph(Graph& g, int threads, bool stats, bool quiet, int memory_mb = -1) {
    if (threads >= 0) g.execution.threads = threads;
    if (memory_mb >= 0) g.execution.memory_mb = std::size_t(memory_mb);
    if (!g_on_error.empty())
        g.execution.on_error = g_on_error == "background" ? Execution::OnError::background : Execution::OnError::fail;
    Evaluator ev(g);
    ProgressLine line(!quiet);
    RunOptions opt;
    opt.cancel = &g_cancel;
    opt.progress = [&](const Progress& p) { return line(p); };
    RunStats s = ev.run_sinks(opt);
    line.end();
    // what --on-error=background filled, one line each, then a count
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
    if (stats) print_stats(s);
    return 0;
}

int cmd_run(const std::string& path, int threads, int tile, bool stats, bool quiet, int memory_mb) {
    Graph g = load_pipeline(path, standard_registry());
    if (tile > 0) g.execution.tile_w = g.execution.tile_h = tile;
    return run_graph(g, threads, stats, quiet, memory_mb);
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
            std::cout << "  -- " << p.doc << "\n";
        }
    }
    return 0;
}

int cmd_dot(const std::string& path, const std::string& out, int collapse) {
    Graph g = load_pipeline(path, standard_registry());
    std::string dot = g.to_dot(std::size_t(collapse));
    if (out.empty() || out == "-") {
        std::cout << dot;
        return 0;
    }
    std::ofstream f(out);
    if (!(f << dot)) throw IoError(out, "cannot write the DOT file");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tessera: a lazy, tiled image-pipeline engine"};
    app.require_subcommand(1);

    std::string pipeline, file, out;
    int threads = -1, tile = 0, collapse = 16, memory_mb = -1;
    bool ro_register = true;
    bool stats = false, quiet = false, as_json = false;

    auto* run = app.add_subcommand("run", "run a JSON pipeline: compute and write every save node");
    run->add_option("PIPELINE", pipeline, "pipeline .json file")->required();
    run->add_option("--threads", threads, "worker threads (0: every core; default: the pipeline's setting)");
    run->add_option("--tile-size", tile, "tile width and height in pixels (default: the pipeline's setting)")
        ->check(CLI::Range(16, 8192));
    run->add_flag("--stats", stats, "print tiles, time and peak pixel memory when done");
    run->add_option("--memory-mb", memory_mb, "budget for the tiles in flight (fewer tiles at once, or an error before starting if one does not fit)")
        ->check(CLI::Range(0, 1 << 30));
    run->add_flag("-q,--quiet", quiet, "no progress line");
    const auto on_error_help = "a file that cannot be read: fail the run (default), or fill its part with background, "
                               "finish, and list each part filled";
    run->add_option("--on-error", g_on_error, on_error_help)->check(CLI::IsMember({"fail", "background"}));

    auto* ops = app.add_subcommand("ops", "list every op with its parameters, types and defaults");
    ops->add_flag("--json", as_json, "machine-readable output");

    auto* info = app.add_subcommand("info", "print the header of an image file");
    info->add_option("FILE", file, "image file")->required();

    auto* dot = app.add_subcommand("dot", "print a pipeline's graph in Graphviz DOT");
    dot->add_option("PIPELINE", pipeline, "pipeline .json file")->required();
    dot->add_option("-o,--output", out, "write to this file instead of stdout");
    dot->add_option("--collapse", collapse, "fold a node's inputs into one box beyond this many (0: never)");

    // stitch and mosaic share the CSV, the canvas and the output options
    std::vector<int> canvas;
    bool emit_json = false;
    auto add_stitch_options = [&](CLI::App* cmd, StitchOptions& o) {
        cmd->add_option("POSITIONS", o.positions, "CSV with header file,x,y; paths relative to its folder; later rows on top")
            ->required();
        cmd->add_option("--canvas", canvas, "canvas width and height")->expected(2)->required();
        cmd->add_option("-o,--output", o.output, "output .tif")->required();
        cmd->add_option("--tile-size", o.tile_size, "TIFF tile size (a multiple of 16)")->check(CLI::Range(16, 8192));
        cmd->add_option("--compression", o.compression, "none, deflate, lzw, zstd or jpeg")
            ->check(CLI::IsMember({"none", "deflate", "lzw", "zstd", "jpeg"}));
        cmd->add_option("--quality", o.quality, "JPEG quality")->check(CLI::Range(1, 100));
        cmd->add_flag("--pyramid", o.pyramid, "write every 2x smaller level down to one tile");
        cmd->add_option("--bigtiff", o.bigtiff, "auto, yes or no")->check(CLI::IsMember({"auto", "yes", "no"}));
        cmd->add_option("--background", o.background, "canvas value: one, or one per band");
        cmd->add_flag("--emit-json", emit_json, "print the equivalent pipeline instead of running it");
        cmd->add_option("--threads", threads, "worker threads (0: every core)");
        cmd->add_flag("--stats", stats, "print tiles, time and peak pixel memory when done");
        cmd->add_flag("-q,--quiet", quiet, "no progress line");
        cmd->add_option("--on-error", g_on_error, on_error_help)->check(CLI::IsMember({"fail", "background"}));
    };

    StitchOptions so;
    auto* stitch = app.add_subcommand("stitch", "place scanned tiles on a canvas at their positions and write a tiled (pyramid) TIFF");
    add_stitch_options(stitch, so);

    MosaicOptions mso;
    RegisterOptions ro;
    std::string positions_out, pairs_out;
    auto* mosaic = app.add_subcommand(
        "mosaic", "like stitch, with positions refined by registering neighbouring tiles and feathered overlaps");
    add_stitch_options(mosaic, mso);
    mosaic->add_flag("--register,!--no-register", ro_register, "refine the positions by registration (default) or take them as they are");
    mosaic->add_option("--search", ro.plan.search, "largest error of a position relative to a neighbour's, pixels per axis")
        ->check(CLI::Range(1, 4096));
    mosaic->add_option("--blend", mso.blend, "feather (each tile fades in over --blend-width from its edges, later ones on top) or none (hard edges, as stitch)")
        ->check(CLI::IsMember({"feather", "none"}));
    mosaic->add_option("--blend-width", mso.blend_width, "pixels over which a tile fades in from its edge")
        ->check(CLI::Range(1, 100000));
    mosaic->add_option("--positions-out", positions_out, "write the positions used (solved) as a CSV file,x,y");
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
    merge->add_option("--method", mo.method, "first, last, min, max, sum or count")
        ->check(CLI::IsMember({"first", "last", "min", "max", "sum", "count"}));
    auto* nodata_opt = merge->add_option("--nodata", merge_nodata, "output nodata (default: the first input's)");
    merge->add_option("--res", mo.res, "output resolution: R, or RX RY")->expected(1, 2);
    merge->add_option("--bounds", mo.bounds, "output bounds: W S E N")->expected(4);
    merge->add_flag("--tap", mo.tap, "align the bounds to multiples of the resolution");
    merge->add_option("--dtype", mo.dtype, "output type: uint8, uint16, int16, uint32, int32, float32, float64");
    merge->add_option("--resampling", mo.resampling, "nearest, bilinear or cubic (for inputs at another resolution)");
    merge->add_option("--format", mo.format, "gtiff (tiled GeoTIFF) or cog (Cloud Optimized GeoTIFF, with overviews)")
        ->check(CLI::IsMember({"gtiff", "cog"}));
    merge->add_option("--tile-size", mo.tile_size, "tile size, a multiple of 16 (default 256; cog 512)")
        ->check(CLI::Range(16, 8192));
    merge->add_option("--compression", mo.compression, "none, deflate, lzw, zstd or jpeg")
        ->check(CLI::IsMember({"none", "deflate", "lzw", "zstd", "jpeg"}));
    merge->add_option("--co", mo.creation_options,
                      "creation option KEY=VALUE, as GDAL's: BLOCKSIZE, COMPRESS, PREDICTOR, QUALITY, OVERVIEWS, BIGTIFF");
    merge->add_flag("--emit-json", emit_json, "print the equivalent pipeline instead of running it");
    merge->add_option("--threads", threads, "worker threads (0: every core)");
    merge->add_flag("--stats", stats, "print tiles, time and peak pixel memory when done");
    merge->add_flag("-q,--quiet", quiet, "no progress line");
    merge->add_option("--on-error", g_on_error, on_error_help)->check(CLI::IsMember({"fail", "background"}));

    CLI11_PARSE(app, argc, argv);

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    try {
        if (*run) return cmd_run(pipeline, threads, tile, stats, quiet, memory_mb);
        if (*ops) return cmd_ops(as_json);
        if (*info) {
            std::cout << describe_image(file);
            return 0;
        }
        if (*dot) return cmd_dot(pipeline, out, collapse);
        if (*stitch) {
            so.canvas_w = canvas[0];
            so.canvas_h = canvas[1];
            Graph g = stitch_graph(so, standard_registry());
            if (emit_json) {
                std::cout << to_json(g);
                return 0;
            }
            return run_graph(g, threads, stats, quiet);
        }
        if (*mosaic) {
            mso.canvas_w = canvas[0];
            mso.canvas_h = canvas[1];
            std::vector<Placement> tiles = read_positions_csv(mso.positions);
            // the whole job is checked (tiles, canvas, output options) before
            // registration spends any time on pixels
            mosaic_graph(mso, tiles, standard_registry());
            if (ro_register) {
                ro.threads = std::max(threads, 0);
                ro.source = mso.positions;
                ro.cancel = &g_cancel;
                RegisterReport rep = register_positions(tiles, ro, standard_registry());
                for (std::size_t i = 0; i < tiles.size(); ++i) tiles[i].at = rep.positions[i];
                if (!quiet || stats)
                    std::fprintf(stderr,
                                 "registration: %zu of %zu overlapping pairs registered (%zu tiles read deep), %zu "
                                 "aligned (%zu windows tried again elsewhere), %zu dropped as outliers, %zu tiles left "
                                 "at their given position; %.2f s, %.1f Mpx read\n",
                                 rep.registered, rep.candidates, rep.deep_reads, rep.matched, rep.retried,
                                 rep.rejected, rep.unlinked, rep.seconds, rep.pixels_read / 1e6);
                if (stats)
                    for (const std::string& p : rep.problems) std::fprintf(stderr, "  not used: %s\n", p.c_str());
                if (!pairs_out.empty()) write_pairs_csv(pairs_out, tiles, rep);
            }
            if (!positions_out.empty()) write_positions_csv(positions_out, tiles);
            Graph g = mosaic_graph(mso, tiles, standard_registry());
            if (emit_json) {
                std::cout << to_json(g);
                return 0;
            }
            return run_graph(g, threads, stats, quiet);
        }
        if (*merge) {
            if (nodata_opt->count() > 0) mo.nodata = merge_nodata;
            Graph g = merge_graph(mo, standard_registry());
            if (emit_json) {
                std::cout << to_json(g);
                return 0;
            }
            return run_graph(g, threads, stats, quiet);
        }
    } catch (const Cancelled&) {
        std::fprintf(stderr, "\ntessera: cancelled; no output was written\n");
        return g_signal == SIGTERM ? 143 : 130;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tessera: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
