// tessera._tessera: the engine for Python (pybind11). Kept thin: the op
// functions, their docstrings and keyword checks are generated at import
// by tessera/__init__.py from op_specs() (so a new op needs no code here);
// this file converts values, owns buffers and runs the engine with the GIL
// released, cancellable from Python (progress returning False, Ctrl-C).
//
// Pixels out: a window is computed into a tessera::Buffer that the ndarray
// then owns through a capsule (no copy after computing). Pixels in: an
// ndarray is the memory of a "memory" source node (tessera::Image::
// from_memory), kept alive by the node through a reference taken here.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "tessera/image.hpp"
#include "tessera/jobs.hpp"
#include "tessera/tessera.hpp"

namespace py = pybind11;
using namespace tessera;

namespace {

// ---- errors ---------------------------------------------------------------

// The Python classes (tessera.Error and its subclasses), set at import.
struct ErrorTypes {
    py::object error, param, graph, io, cancelled;
};
ErrorTypes& error_types() {
    static ErrorTypes* t = new ErrorTypes();  // never destroyed: outlives the interpreter's teardown
    return *t;
}

void raise(const py::object& type, const std::string& message, const std::string& key = "",
           const std::string& node = "", const std::string& op = "", const std::string& path = "") {
    py::object e = type(message);
    e.attr("key") = key.empty() ? py::object(py::none()) : py::str(key);
    e.attr("node") = node.empty() ? py::object(py::none()) : py::str(node);
    e.attr("op") = op.empty() ? py::object(py::none()) : py::str(op);
    e.attr("path") = path.empty() ? py::object(py::none()) : py::str(path);
    PyErr_SetObject(type.ptr(), e.ptr());
}

// A GraphError about one of the node's parameters is a ParamError (a
// subclass of GraphError in Python); about its inputs, id or the graph, a
// GraphError.
bool is_param_key(const std::string& key) { return !key.empty() && key != "inputs" && key != "op" && key != "id"; }

void translate(std::exception_ptr p) {
    const ErrorTypes& t = error_types();
    try {
        if (p) std::rethrow_exception(p);
    } catch (const Cancelled& e) {
        raise(t.cancelled, e.what());
    } catch (const GraphError& e) {
        // a file that failed while a node was computed is an IoError naming
        // the file and the node
        if (!e.path().empty())
            raise(t.io, e.what(), "", e.node(), e.op(), e.path());
        else
            raise(is_param_key(e.key()) ? t.param : t.graph, e.what(), e.key(), e.node(), e.op());
    } catch (const ParamError& e) {
        raise(t.param, e.what(), e.key());
    } catch (const IoError& e) {
        raise(t.io, e.what(), "", "", "", e.path());
    } catch (const Error& e) {
        raise(t.error, e.what());
    }
}

// ---- values ---------------------------------------------------------------

const OpSpec& spec_of(const std::string& op) {
    const OpSpec* s = image_registry().find(op);
    if (!s) throw GraphError("", op, "op", "unknown op '" + op + "'; tessera.ops lists the ops");
    return *s;
}

py::object value_to_py(const ParamValue& v) {
    return std::visit([](const auto& x) -> py::object { return py::cast(x); }, v);
}

bool is_int(const py::handle& h) {
    if (py::isinstance<py::bool_>(h)) return false;
    return PyIndex_Check(h.ptr());
}
bool is_number(const py::handle& h) {
    return !py::isinstance<py::bool_>(h) && (is_int(h) || PyFloat_Check(h.ptr()) || py::hasattr(h, "__float__"));
}
std::int64_t to_int(const py::handle& h) {
    return py::int_(py::reinterpret_borrow<py::object>(h)).cast<std::int64_t>();
}
double to_num(const py::handle& h) { return py::float_(py::reinterpret_borrow<py::object>(h)).cast<double>(); }

[[noreturn]] void bad_value(const std::string& op, const std::string& key, const std::string& want,
                            const py::handle& got) {
    throw ParamError(key, op + ": key '" + key + "': expected " + want + ", got " +
                              std::string(py::str(py::type::of(got).attr("__name__"))) + " " +
                              std::string(py::repr(got)));
}

// A Python value as the ParamValue of the type `spec` declares (ints where
// numbers are, a lone number where a list is, numpy scalars and arrays);
// the graph then checks ranges and choices against the same spec.
ParamValue to_param(const std::string& op, const ParamSpec& spec, const py::handle& v) {
    auto seq = [&](const char* want) {
        if (py::isinstance<py::str>(v) || !py::isinstance<py::sequence>(v)) {
            if (py::hasattr(v, "tolist")) return py::list(v.attr("tolist")());
            bad_value(op, spec.name, want, v);
        }
        return py::list(py::reinterpret_borrow<py::object>(v));
    };
    switch (spec.type) {
        case ParamType::boolean:
            if (py::isinstance<py::bool_>(v) || py::type::of(v).attr("__name__").cast<std::string>() == "bool_")
                return bool(py::bool_(py::reinterpret_borrow<py::object>(v)));
            bad_value(op, spec.name, "True or False", v);
        case ParamType::integer:
            if (is_int(v)) return to_int(v);
            bad_value(op, spec.name, "an integer", v);
        case ParamType::number:
            if (is_number(v)) return to_num(v);
            bad_value(op, spec.name, "a number", v);
        case ParamType::string:
            if (py::isinstance<py::str>(v)) return v.cast<std::string>();
            if (py::hasattr(v, "__fspath__")) return py::str(v.attr("__fspath__")()).cast<std::string>();
            if (spec.name == "dtype" || spec.name == "format")
                if (py::hasattr(v, "name") && py::hasattr(v, "itemsize"))  // a numpy dtype
                    return py::str(v.attr("name")).cast<std::string>();
            bad_value(op, spec.name, "a string", v);
        case ParamType::integers: {
            if (is_int(v)) return std::vector<std::int64_t>{to_int(v)};
            std::vector<std::int64_t> out;
            for (auto x : seq("a list of integers")) {
                if (!is_int(x)) bad_value(op, spec.name, "a list of integers", v);
                out.push_back(to_int(x));
            }
            return out;
        }
        case ParamType::numbers: {
            if (is_number(v)) return std::vector<double>{to_num(v)};
            std::vector<double> out;
            for (auto x : seq("a list of numbers")) {
                if (!is_number(x)) bad_value(op, spec.name, "a list of numbers", v);
                out.push_back(to_num(x));
            }
            return out;
        }
        case ParamType::strings: {
            // a lone str is a list of one (not a sequence of characters)
            if (py::isinstance<py::str>(v)) return std::vector<std::string>{v.cast<std::string>()};
            std::vector<std::string> out;
            for (auto x : seq("a list of strings")) {
                if (!py::isinstance<py::str>(x)) bad_value(op, spec.name, "a list of strings", v);
                out.push_back(x.cast<std::string>());
            }
            return out;
        }
        case ParamType::points:
        case ParamType::coords: {
            std::vector<NumPair> c;
            bool whole = true;
            for (auto p : seq("a list of [x, y] pairs")) {
                py::list xy;
                if (py::isinstance<py::sequence>(p) && !py::isinstance<py::str>(p))
                    xy = py::list(py::reinterpret_borrow<py::object>(p));
                else if (py::hasattr(p, "tolist"))
                    xy = py::list(p.attr("tolist")());
                if (xy.size() != 2 || !is_number(xy[0]) || !is_number(xy[1]))
                    bad_value(op, spec.name, "a list of [x, y] pairs", p);
                whole = whole && is_int(xy[0]) && is_int(xy[1]);
                c.push_back({to_num(xy[0]), to_num(xy[1])});
            }
            // fractions where points are declared: the graph refuses them, saying what to do
            if (!whole) return c;
            std::vector<IntPair> pts;
            for (const auto& [x, y] : c) pts.push_back({std::int64_t(x), std::int64_t(y)});
            return pts;
        }
    }
    bad_value(op, spec.name, "a value", v);
}

Params to_params(const std::string& op, const py::dict& kwargs) {
    const OpSpec& spec = spec_of(op);
    Params p;
    for (auto [k, v] : kwargs) {
        const std::string key = py::str(k);
        auto it =
            std::find_if(spec.params.begin(), spec.params.end(), [&](const ParamSpec& s) { return s.name == key; });
        if (it == spec.params.end()) {
            std::string names;
            for (const ParamSpec& s : spec.params) names += (names.empty() ? "" : ", ") + s.name;
            throw ParamError(key, op + ": key '" + key + "': unknown parameter; " + op + " takes " +
                                      (names.empty() ? "no parameters" : names));
        }
        if (v.is_none()) continue;  // None: the default
        p.set(key, to_param(op, *it, v));
    }
    return p;
}

// A path parameter naming no file is an IoError naming the file (the graph
// would report it as the node's error); GDAL's /vsi paths and subdatasets
// are GDAL's to judge.
void check_paths(const OpSpec& spec, const Params& p) {
    if (spec.sink) return;
    for (const ParamSpec& s : spec.params) {
        if (!s.is_path || !p.has(s.name)) continue;
        const auto* path = std::get_if<std::string>(&p.values().at(s.name));
        if (!path || path->empty() || path->starts_with("/vsi") || path->find(':') != std::string::npos) continue;
        if (!std::filesystem::exists(*path))
            throw IoError(*path, "no such file (key '" + s.name + "' of " + spec.name + ")");
    }
}

py::dict progress_dict(const Progress& p) {
    py::dict d;
    d["tiles_done"] = p.tiles_done;
    d["tiles_total"] = p.tiles_total;
    d["pixels_done"] = p.pixels_done;
    d["pixel_bytes"] = p.pixel_bytes;
    d["seconds"] = p.seconds;
    return d;
}

py::dict stats_dict(const RunStats& s) {
    py::dict d;
    d["tiles"] = s.tiles;
    d["peak_pixel_bytes"] = s.peak_pixel_bytes;
    d["peak_process_pixel_bytes"] = s.peak_process_pixel_bytes;
    d["cache_hits"] = s.cache_hits;
    d["cache_misses"] = s.cache_misses;
    d["seconds"] = s.seconds;
    py::list filled;
    for (const Filled& f : s.filled) {
        py::dict x;
        x["node"] = f.node;
        x["file"] = f.file;
        x["rect"] = py::make_tuple(f.rect.x, f.rect.y, f.rect.w, f.rect.h);
        x["message"] = f.message;
        filled.append(x);
    }
    d["filled"] = filled;
    return d;
}

py::object georef_dict(const std::optional<GeoRef>& g) {
    if (!g) return py::none();
    py::dict d;
    const auto& t = g->transform;
    d["transform"] = py::make_tuple(t[0], t[1], t[2], t[3], t[4], t[5]);
    d["crs_wkt"] = g->crs_wkt;
    py::list nd;
    for (const auto& v : g->nodata) nd.append(v ? py::object(py::float_(*v)) : py::object(py::none()));
    d["nodata"] = nd;
    d["alpha_band"] = g->alpha_band >= 0 ? py::object(py::int_(g->alpha_band)) : py::object(py::none());
    return d;
}

GeoRef georef_from(const py::dict& d, int bands) {
    GeoRef g;
    if (d.contains("transform")) {
        py::list t(d["transform"]);
        if (t.size() != 6)
            throw ParamError("georef", "georef['transform']: give GDAL's 6 numbers (x0, dx, rx, y0, ry, dy)");
        for (std::size_t i = 0; i < 6; ++i) g.transform[i] = to_num(t[i]);
    }
    if (d.contains("crs_wkt") && !d["crs_wkt"].is_none()) g.crs_wkt = py::str(d["crs_wkt"]);
    if (d.contains("nodata") && !d["nodata"].is_none()) {
        py::object nd = d["nodata"];
        if (is_number(nd))
            g.nodata.assign(std::size_t(bands), to_num(nd));
        else
            for (auto v : py::list(nd))
                g.nodata.push_back(v.is_none() ? std::nullopt : std::optional<double>(to_num(v)));
    }
    if (d.contains("alpha_band") && !d["alpha_band"].is_none()) g.alpha_band = int(to_int(d["alpha_band"]));
    return g;
}

// ---- formats and arrays ---------------------------------------------------

py::dtype dtype_of(Format f) {
    switch (f) {
        case Format::u8: return py::dtype::of<std::uint8_t>();
        case Format::u16: return py::dtype::of<std::uint16_t>();
        case Format::i16: return py::dtype::of<std::int16_t>();
        case Format::u32: return py::dtype::of<std::uint32_t>();
        case Format::i32: return py::dtype::of<std::int32_t>();
        case Format::f32: return py::dtype::of<float>();
        case Format::f64: return py::dtype::of<double>();
    }
    return py::dtype::of<std::uint8_t>();
}

std::optional<Format> format_of(const py::dtype& d) {
    for (Format f : {Format::u8, Format::u16, Format::i16, Format::u32, Format::i32, Format::f32, Format::f64})
        if (d.is(dtype_of(f)) || (d.kind() == dtype_of(f).kind() && d.itemsize() == dtype_of(f).itemsize())) return f;
    return std::nullopt;
}

// The buffer as an (H, W, bands) ndarray that owns it (a capsule deletes it
// with the array): no copy.
py::array to_array(Buffer&& b, Format f) {
    auto* owned = new Buffer(std::move(b));
    py::capsule owner(owned, [](void* p) { delete static_cast<Buffer*>(p); });
    const Tile t = owned->tile();
    const std::size_t item = format_size(f);
    return py::array(dtype_of(f), {std::size_t(t.rect.h), std::size_t(t.rect.w), std::size_t(t.bands)},
                     {t.stride, t.pixel_bytes(), item}, t.data, owner);
}

// ---- running the engine ----------------------------------------------------

// The thread that runs the engine for one Python thread: made at its first
// run and kept for the next ones (thread_local), not a thread per run. With
// a thread per run the RSS of 20 000 small runs crept 89 -> 93 MB (and
// 90 -> 106 in another mix), each new thread taking a glibc arena and
// leaving there what libvips, GDAL and TBB keep past a run (their caches),
// so freed memory was spread over ten arenas none could return (mallinfo2:
// 7.4 MB in use throughout, 15 -> 18 MB free and kept); one thread kept:
// see run_engine. A forked child (multiprocessing) makes its own: the
// parent's thread is not in it.
class EngineThread {
public:
    EngineThread() : thread_([this] { loop(); }) {}
    ~EngineThread() {
        {
            std::lock_guard lock(mu_);
            quit_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    EngineThread(const EngineThread&) = delete;
    EngineThread& operator=(const EngineThread&) = delete;
    // Runs job there; returns at once (the caller waits for its end).
    void post(std::function<void()> job) {
        {
            std::lock_guard lock(mu_);
            job_ = std::move(job);
        }
        cv_.notify_all();
    }
    const pid_t pid = ::getpid();

private:
    void loop() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait(lock, [&] { return quit_ || job_; });
            if (!job_) return;
            std::function<void()> job = std::move(job_);
            job_ = nullptr;
            lock.unlock();
            job();
            lock.lock();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::function<void()> job_;
    bool quit_ = false;
    std::thread thread_;
};

EngineThread& engine_thread() {
    thread_local std::unique_ptr<EngineThread> t;
    if (t && t->pid != ::getpid()) (void)t.release();  // forked: not joinable here, let it go
    if (!t) t = std::make_unique<EngineThread>();
    return *t;
}

// Runs body(cancel flag, progress hook) on the calling thread's engine
// thread (engine_thread) with the GIL released, so other Python threads go
// on; the calling thread waits,
// taking the GIL every 50 ms to let Python run its signal handlers: a
// KeyboardInterrupt (or any exception a handler raises) sets the cancel
// flag, the engine stops and cleans up (sinks leave nothing at the target),
// and the exception is raised here. `progress` (None or a callable taking
// a dict with the fields of tessera::Progress) returning False cancels;
// the run then raises tessera.Cancelled.
template <class R>
R run_engine(const py::object& progress, const std::function<R(const std::atomic<bool>*, const RunOptions&)>& body) {
    std::atomic<bool> cancel{false};
    std::optional<py::error_already_set> py_error;  // raised by the callback or a signal handler
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    RunOptions ro;
    ro.cancel = &cancel;
    if (!progress.is_none())
        ro.progress = [&](const Progress& p) {
            py::gil_scoped_acquire gil;
            try {
                py::object r = progress(progress_dict(p));
                if (!r.is_none() && !r.cast<bool>()) return false;
            } catch (py::error_already_set& e) {
                if (!py_error) py_error.emplace(std::move(e));
                cancel = true;
                return false;
            }
            return true;
        };
    std::optional<R> result;
    std::exception_ptr error;
    {
        py::gil_scoped_release release;
        engine_thread().post([&] {
            try {
                result.emplace(body(&cancel, ro));
            } catch (...) {
                error = std::current_exception();
            }
            std::lock_guard lock(mu);
            done = true;
            cv.notify_all();
        });
        std::unique_lock lock(mu);
        while (!cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return done; })) {
            lock.unlock();
            {
                py::gil_scoped_acquire gil;
                if (PyErr_CheckSignals() != 0) {
                    py::error_already_set e;
                    if (!py_error) py_error.emplace(std::move(e));
                    cancel = true;
                }
            }
            lock.lock();
        }
    }
    if (py_error) throw std::move(*py_error);
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

// ---- jobs -------------------------------------------------------------------

template <class T>
T take(py::dict& d, const char* key, T def) {
    if (!d.contains(key)) return def;
    py::object v = d[key];
    PyDict_DelItemString(d.ptr(), key);
    if (v.is_none()) return def;
    try {
        return v.cast<T>();
    } catch (const py::cast_error&) {
        throw ParamError(key, std::string("key '") + key + "': expected " + py::type_id<T>() + ", got " +
                                  std::string(py::repr(v)));
    }
}

void stitch_options(StitchOptions& o, py::dict& d) {
    auto canvas = take<std::vector<int>>(d, "canvas", {});
    if (!canvas.empty() && canvas.size() != 2) throw ParamError("canvas", "key 'canvas': give (width, height)");
    if (canvas.size() == 2) o.canvas_w = canvas[0], o.canvas_h = canvas[1];
    o.format = take<std::string>(d, "format", o.format);
    o.tile_size = take<int>(d, "tile_size", o.tile_size);
    o.compression = take<std::string>(d, "compression", o.compression);
    o.quality = take<int>(d, "quality", o.quality);
    o.pyramid = take<bool>(d, "pyramid", o.pyramid);
    o.bigtiff = take<std::string>(d, "bigtiff", o.bigtiff);
    o.background = take<std::vector<double>>(d, "background", o.background);
    o.overlap = take<int>(d, "overlap", o.overlap);
    o.suffix = take<std::string>(d, "suffix", o.suffix);
    o.layout = take<std::string>(d, "layout", o.layout);
    o.illumination.flatfield = take<std::string>(d, "flatfield", "");
    o.illumination.darkfield = take<std::string>(d, "darkfield", "");
    o.estimate_flatfield = take<bool>(d, "estimate_flatfield", false);
    o.flatfield_out = take<std::string>(d, "flatfield_out", "");
    o.gain_compensation = take<bool>(d, "gain_compensation", false);
}

void refuse_leftovers(const py::dict& d, const std::string& job, const std::string& takes) {
    for (auto [k, v] : d)
        throw ParamError(py::str(k),
                         job + ": key '" + std::string(py::str(k)) + "': unknown option; " + job + " takes " + takes);
}

const char* kStitchKeys =
    "canvas, format, tile_size, compression, quality, pyramid, bigtiff, background, overlap, suffix, layout, "
    "flatfield, darkfield, estimate_flatfield, flatfield_out, gain_compensation, threads, progress";
const char* kMosaicKeys =
    "the stitch's options and blend, blend_width, register, stage_error, min_score, register_band, "
    "integer_positions";

// A planned job: its graph runs, or (no output) the image its save reads.
py::object job(bool is_mosaic, const std::string& positions, const std::string& output, py::dict kw) {
    MosaicOptions o;
    o.positions = positions;
    // no output: the lazy image; the plan's save node (to a name nothing
    // writes) is never run
    o.output = output.empty() ? "lazy.tif" : output;
    stitch_options(o, kw);
    const int threads = take<int>(kw, "threads", 0);
    py::object progress = kw.contains("progress") ? py::object(kw["progress"]) : py::object(py::none());
    if (kw.contains("progress")) PyDict_DelItemString(kw.ptr(), "progress");
    if (is_mosaic) {
        o.blend = take<std::string>(kw, "blend", o.blend);
        o.blend_width = take<int>(kw, "blend_width", o.blend_width);
        o.register_tiles = take<bool>(kw, "register", o.register_tiles);
        o.registration.stage_error = take<int>(kw, "stage_error", 0);
        o.registration.min_score = take<double>(kw, "min_score", o.registration.min_score);
        o.registration.band = take<int>(kw, "register_band", o.registration.band);
        o.integer_positions = take<bool>(kw, "integer_positions", false);
        refuse_leftovers(kw, "mosaic", std::string(kStitchKeys) + "; " + kMosaicKeys);
    } else {
        refuse_leftovers(kw, "stitch", kStitchKeys);
    }
    const bool lazy = output.empty();
    using Out = std::pair<std::shared_ptr<Graph>, RunStats>;
    auto [graph, stats] = run_engine<Out>(progress, [&](const std::atomic<bool>* cancel, const RunOptions& ro) {
        JobContext c{.threads = threads, .cancel = cancel};
        auto tiles = read_positions(o.positions);
        PlannedJob planned = is_mosaic ? plan_mosaic(o, std::move(tiles), image_registry(), c)
                                       : plan_stitch(o, std::move(tiles), image_registry(), c);
        auto g = std::make_shared<Graph>(std::move(planned.graph));
        g->execution.threads = std::max(threads, 0);
        if (lazy) return Out{g, {}};
        return Out{g, Evaluator(*g).run_sinks(ro)};
    });
    if (!lazy) return stats_dict(stats);
    const NodeId save = graph->sinks().front();
    return py::cast(Image(graph, graph->node(save).inputs.front()));
}

// ---- the pipeline -----------------------------------------------------------

struct Pipeline {
    std::shared_ptr<Graph> graph;
};

}  // namespace

PYBIND11_MODULE(_tessera, m) {
    m.doc() = "The Tessera engine (C++); use the tessera package, which wraps this module.";

    m.def("_set_error_types",
          [](py::object error, py::object param, py::object graph, py::object io, py::object cancelled) {
              error_types() = {error, param, graph, io, cancelled};
          });
    py::register_exception_translator(&translate);

    m.def(
        "op_specs",
        [] {
            py::list out;
            for (const OpSpec& s : image_registry().specs()) {
                py::dict d;
                d["name"] = s.name;
                d["doc"] = s.doc;
                d["min_inputs"] = s.min_inputs;
                d["max_inputs"] = s.max_inputs;
                d["sink"] = s.sink;
                py::list params;
                for (const ParamSpec& p : s.params) {
                    py::dict q;
                    q["name"] = p.name;
                    q["type"] = param_type_name(p.type);
                    q["required"] = p.required;
                    q["default"] = p.default_value ? value_to_py(*p.default_value) : py::object(py::none());
                    q["default_text"] = p.default_text;
                    q["allowed"] = p.allowed();
                    q["choices"] = p.choices;
                    q["doc"] = p.doc;
                    q["is_path"] = p.is_path;
                    params.append(q);
                }
                d["params"] = params;
                out.append(d);
            }
            return out;
        },
        "Every op of the registry: name, doc, inputs, parameters (type, default, allowed values, doc).");

    py::class_<Image>(m, "Image", "A lazy image: a node of an engine graph (see tessera.Image).")
        .def_property_readonly("width", &Image::width)
        .def_property_readonly("height", &Image::height)
        .def_property_readonly("bands", &Image::bands)
        .def_property_readonly("format", [](const Image& i) { return std::string(format_name(i.format())); })
        .def_property_readonly("dtype", [](const Image& i) { return dtype_of(i.format()); })
        .def_property_readonly("interpretation",
                               [](const Image& i) { return std::string(interpretation_name(i.info().interpretation)); })
        .def_property_readonly("georef", [](const Image& i) { return georef_dict(i.georef()); })
        .def_property_readonly("node_id", [](const Image& i) { return i.id(); })
        .def_property_readonly("op", [](const Image& i) { return i.op_name(); })
        .def_property_readonly("graph_size", [](const Image& i) { return i.graph().size(); })
        .def(
            "_read",
            [](const Image& img, int x, int y, int w, int h, int threads) {
                Buffer b = run_engine<Buffer>(py::none(), [&](const std::atomic<bool>* cancel, const RunOptions&) {
                    return img.region(Rect{x, y, w, h}, {.threads = threads, .cancel = cancel});
                });
                return to_array(std::move(b), img.format());
            },
            py::arg("x"), py::arg("y"), py::arg("w"), py::arg("h"), py::arg("threads") = 0)
        .def("_save",
             [](const Image& img, const std::string& path, py::dict kwargs, py::object progress) {
                 const Params p = to_params("save", kwargs);
                 RunStats s = run_engine<RunStats>(progress, [&](const std::atomic<bool>*, const RunOptions& ro) {
                     return img.save(path, p, ro);
                 });
                 return stats_dict(s);
             })
        .def("_with_execution",
             [](const Image& img, py::dict kw) {
                 Graph g = img.standalone();
                 for (auto [k, v] : kw) {
                     const std::string key = py::str(k);
                     if (key == "tile") {
                         auto t = v.cast<std::vector<int>>();
                         if (t.size() != 2 || t[0] < 1 || t[1] < 1)
                             throw ParamError("tile", "key 'tile': give (width, height), each at least 1");
                         g.execution.tile_w = t[0], g.execution.tile_h = t[1];
                     } else if (key == "threads")
                         g.execution.threads = std::max(0, v.cast<int>());
                     else if (key == "cache_mb")
                         g.execution.cache_mb = v.cast<std::size_t>();
                     else if (key == "memory_mb")
                         g.execution.memory_mb = v.cast<std::size_t>();
                     else
                         throw ParamError(
                             key,
                             "key '" + key + "': unknown execution setting; give tile, threads, cache_mb or memory_mb");
                 }
                 const NodeId n = g.size() - 1;
                 return Image(std::make_shared<const Graph>(std::move(g)), n);
             })
        .def(
            "to_json", [](const Image& img, int indent) { return to_json(img.standalone(), indent); },
            py::arg("indent") = 2, "This image's graph (its ancestors, this node last) as a pipeline's JSON.")
        .def("__repr__", [](const Image& i) {
            return "<tessera.Image " + std::to_string(i.width()) + "x" + std::to_string(i.height()) + " " +
                   std::to_string(i.bands()) + " band(s) " + std::string(format_name(i.format())) + ", op " +
                   i.op_name() + ">";
        });

    m.def(
        "apply",
        [](const std::string& op, std::vector<Image> inputs, py::dict kwargs) {
            const OpSpec& spec = spec_of(op);
            if (spec.sink) throw GraphError("", op, "op", op + " is a sink: use Image.save");
            const Params p = to_params(op, kwargs);
            check_paths(spec, p);
            py::gil_scoped_release release;  // a source reads its header
            return Image::apply(op, inputs, p);
        },
        "apply(op, inputs, params): the op over the inputs (Images), params checked by its spec.");

    m.def(
        "from_array",
        [](py::array a, py::object georef) {
            if (a.ndim() != 2 && a.ndim() != 3)
                throw ParamError("array",
                                 "from_array: give an array of shape (height, width) or (height, width, bands), not " +
                                     std::to_string(a.ndim()) + "-D");
            const auto f = format_of(a.dtype());
            if (!f)
                throw ParamError("array",
                                 "from_array: dtype " + std::string(py::str(a.dtype())) +
                                     " is not one the engine computes in; use uint8, uint16, int16, uint32, int32, "
                                     "float32 or float64 (astype)");
            ImageInfo info;
            info.height = int(a.shape(0));
            info.width = int(a.shape(1));
            info.bands = a.ndim() == 3 ? int(a.shape(2)) : 1;
            info.format = *f;
            info.interpretation = default_interpretation(info.bands, info.format);
            const auto item = py::ssize_t(format_size(*f));
            const bool rows_dense = a.strides(1) == item * info.bands && (a.ndim() == 2 || a.strides(2) == item);
            if (!rows_dense || a.strides(0) < item * info.bands * info.width ||
                !a.dtype().attr("isnative").cast<bool>())
                throw ParamError("array", "from_array: each row must hold its pixels contiguously and in native byte "
                                          "order (numpy.ascontiguousarray(a) makes such a copy)");
            if (!georef.is_none()) info.geo = georef_from(georef.cast<py::dict>(), info.bands);
            // the node holds a reference to the array; dropped with the GIL held
            auto* ref = new py::object(a);
            std::shared_ptr<const void> owner(ref, [](py::object* o) {
                if (!Py_IsInitialized()) return;
                py::gil_scoped_acquire gil;
                delete o;
            });
            return Image::from_memory(owner, static_cast<const std::byte*>(a.data()), info, std::size_t(a.strides(0)));
        },
        py::arg("array"), py::arg("georef") = py::none());

    py::class_<Pipeline>(m, "Pipeline", "A pipeline: a whole graph, as a JSON file holds it.")
        .def_static(
            "from_json",
            [](const std::string& text, const std::string& base_dir) {
                py::gil_scoped_release release;
                return Pipeline{std::make_shared<Graph>(parse_pipeline(text, image_registry(), "pipeline", base_dir))};
            },
            py::arg("text"), py::arg("base_dir") = "",
            "The pipeline in JSON text; relative paths are resolved against base_dir when given.")
        .def_static(
            "load",
            [](const std::string& path) {
                py::gil_scoped_release release;
                return Pipeline{std::make_shared<Graph>(load_pipeline(path, image_registry()))};
            },
            "The pipeline in a JSON file (relative paths against its folder).")
        .def(
            "to_json", [](const Pipeline& p, int indent) { return to_json(*p.graph, indent); }, py::arg("indent") = 2)
        .def_property_readonly("ids",
                               [](const Pipeline& p) {
                                   std::vector<std::string> ids;
                                   for (NodeId n = 0; n < p.graph->size(); ++n) ids.push_back(p.graph->node(n).id);
                                   return ids;
                               })
        .def(
            "__getitem__", [](const Pipeline& p, const std::string& id) { return Image(p.graph, p.graph->find(id)); },
            "The image of the node with this id (a lazy Image).")
        .def(
            "run",
            [](const Pipeline& p, py::object progress, int threads) {
                if (threads > 0) p.graph->execution.threads = threads;
                RunStats s = run_engine<RunStats>(progress, [&](const std::atomic<bool>*, const RunOptions& ro) {
                    return Evaluator(*p.graph).run_sinks(ro);
                });
                return stats_dict(s);
            },
            py::arg("progress") = py::none(), py::arg("threads") = 0);

    m.def(
        "stitch",
        [](const std::string& positions, const std::string& output, py::kwargs kw) {
            return job(false, positions, output, py::dict(kw));
        },
        py::arg("positions"), py::arg("output") = "");
    m.def(
        "mosaic",
        [](const std::string& positions, const std::string& output, py::kwargs kw) {
            return job(true, positions, output, py::dict(kw));
        },
        py::arg("positions"), py::arg("output") = "");

    m.def("formats", [] { return std::vector<std::string>{"u8", "u16", "i16", "u32", "i32", "f32", "f64"}; });
}
