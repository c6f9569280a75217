// gen_api: writes tessera/ops_api.hpp, the typed C++ builders of every op of
// standard_registry(), from the ops' own specs. Run by CMake at build time
// (tools/CMakeLists.txt); its output lives in the build tree and is
// installed with the package, never committed.
//
//   gen_api OUT.hpp
//
// The compile-time twin of the Python package's functions generated at
// import (tools/python/tessera/__init__.py), and of how libvips generates
// its C++ binding's vips-operators.cpp from the operations' introspection:
// one builder per op, so an op added to the registry is there with its
// documentation without an edit here (a new ParamType needs its C++ type in
// cxx_type and literal, and the build fails naming the op and key until it
// has one).
//
// What each op becomes (all in namespace tessera; option structs and
// choice enums in tessera::op, where names such as MosaicOptions are the
// jobs'):
//   - a struct op::<Op>Options of its optional parameters in spec order, for
//     designated initialisers, each field with the spec's default, or
//     std::optional<T> (std::nullopt) where the spec has none, so "not
//     given" stays not given;
//   - an enum class op::<Op><Param> for each string parameter with choices
//     (enumerators sanitised from the choices, to_string back);
//   - a builder `Image <op>(inputs..., required params in spec order,
//     const op::<Op>Options& = {})`: inputs as one `const Image&` each when
//     the op takes a fixed number, else `const std::vector<Image>&` (and,
//     for ops taking any number, `(const Image& first, const
//     std::vector<Image>& rest, ...)`, e.g. insert(canvas, tiles, at));
//     sinks (save) run and return the run's RunStats.
// A builder sets only the parameters given (a required one, an option that
// differs from its default or an optional that holds a value) and calls
// Image::apply, the one path the untyped build takes: a bad value is the
// same GraphError, and the graph writes the same JSON.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "tessera/tessera.hpp"

using namespace tessera;

namespace {

// C++ keywords and the macros a C++ compiler predefines in its GNU mode (or
// common headers define) that a sanitised name must not be.
const std::set<std::string>& reserved() {
    static const std::set<std::string> r = {
        "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
        "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval", "constexpr",
        "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete",
        "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
        "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
        "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
        "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch",
        "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union",
        "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
        // predefined or common macros
        "linux", "unix", "i386", "NULL", "EOF", "TRUE", "FALSE", "NAN", "INFINITY", "BUFSIZ", "stdin", "stdout",
        "stderr", "errno", "assert", "major", "minor"};
    return r;
}

// The builders' own argument and local names, which a parameter's must not be.
const std::set<std::string>& builder_names() {
    static const std::set<std::string> r = {"in",    "in0",  "in1",     "in2", "in3", "inputs",
                                            "first", "rest", "options", "run", "p_",  "d_"};
    return r;
}

// An identifier from a name, a choice or an op: [A-Za-z0-9_], '_' for
// anything else, "v" before a leading digit, '_' after a keyword.
std::string sanitise(const std::string& s) {
    std::string o;
    for (char c : s) o += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (o.empty()) o = "empty";
    if (std::isdigit(static_cast<unsigned char>(o[0]))) o = "v" + o;
    if (o[0] == '_') o = "v" + o;  // a leading '_' (and '__' anywhere at the front) is the implementation's
    if (reserved().count(o)) o += '_';
    return o;
}

// extract_area -> ExtractArea
std::string camel(const std::string& s) {
    std::string o;
    bool up = true;
    for (char c : s) {
        if (!std::isalnum(static_cast<unsigned char>(c))) {
            up = true;
            continue;
        }
        o += up ? char(std::toupper(static_cast<unsigned char>(c))) : c;
        up = false;
    }
    if (o.empty() || std::isdigit(static_cast<unsigned char>(o[0]))) o = "Op" + o;
    return o;
}

[[noreturn]] void fail(const OpSpec& op, const ParamSpec& p, const std::string& why) {
    throw Error("gen_api: op '" + op.name + "', key '" + p.name + "': " + why);
}

std::string cxx_type(const OpSpec& op, const ParamSpec& p) {
    switch (p.type) {
        case ParamType::boolean: return "bool";
        case ParamType::integer: return "std::int64_t";
        case ParamType::number: return "double";
        case ParamType::string: return "std::string";
        case ParamType::integers: return "std::vector<std::int64_t>";
        case ParamType::numbers: return "std::vector<double>";
        case ParamType::points: return "std::vector<IntPair>";
        case ParamType::coords: return "std::vector<NumPair>";
        case ParamType::strings: return "std::vector<std::string>";
    }
    fail(op, p,
         std::string("no C++ type for parameters of type ") + param_type_name(p.type) +
             ": add one to gen_api's cxx_type and literal");
}

std::string number_literal(double d) {
    if (std::isinf(d))
        return d > 0 ? "std::numeric_limits<double>::infinity()" : "-std::numeric_limits<double>::infinity()";
    if (std::isnan(d)) return "std::numeric_limits<double>::quiet_NaN()";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", d);
    std::string s = buf;
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
}

std::string string_literal(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (c == '\n') {
            o += "\\n";
            continue;
        }
        o += c;
    }
    return o + "\"";
}

// A C++ literal of a parameter value (any list: a braced list of its
// elements, so a new list type needs no code here).
struct Literal {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const {
        return i == std::numeric_limits<std::int64_t>::min() ? "std::numeric_limits<std::int64_t>::min()"
                                                             : std::to_string(i);
    }
    std::string operator()(double d) const { return number_literal(d); }
    std::string operator()(const std::string& s) const { return string_literal(s); }
    // any list (of numbers, strings, [x, y] pairs): a braced list of its elements
    template <class T>
    std::string operator()(const std::vector<T>& l) const {
        std::string o = "{";
        for (std::size_t i = 0; i < l.size(); ++i) o += (i ? ", " : "") + (*this)(l[i]);
        return o + "}";
    }
    template <class T, std::size_t N>
    std::string operator()(const std::array<T, N>& a) const {
        std::string o = "{";
        for (std::size_t i = 0; i < N; ++i) o += (i ? ", " : "") + (*this)(a[i]);
        return o + "}";
    }
};

// A C++ expression of the parameter's type for `v` (already of it: the
// registry checked the default's type).
std::string literal(const OpSpec& op, const ParamSpec& p, const ParamValue& v) {
    if (param_type_of(v) != p.type) fail(op, p, "the default is not of the declared type");
    return std::visit(Literal{}, v);
}

// A comment line (no line break can end it early).
std::string comment(const std::string& s) {
    std::string o;
    for (char c : s) o += (c == '\n' || c == '\r') ? ' ' : c;
    return o;
}

struct Param {
    const ParamSpec* spec;
    std::string field;      // the C++ name
    std::string type;       // of the argument or field (the enum for choices)
    std::string enum_name;  // with choices; empty otherwise
    std::vector<std::string> enumerators;
};

std::string param_comment(const ParamSpec& p) {
    std::string c = p.doc;
    std::vector<std::string> extra;
    if (!p.required) extra.push_back("default " + (p.default_text.empty() ? std::string("none") : p.default_text));
    if (const std::string a = p.allowed(); !a.empty() && p.choices.empty()) extra.push_back(a);
    if (p.is_path) extra.push_back("a path");
    for (std::size_t i = 0; i < extra.size(); ++i) c += (i ? "; " : " (") + extra[i];
    if (!extra.empty()) c += ")";
    return comment(c);
}

void write_op(std::ostream& types, std::ostream& fns, const OpSpec& op) {
    const std::string Op = camel(op.name), base_fn = sanitise(op.name);
    std::vector<Param> required, optional;
    for (const ParamSpec& s : op.params) {
        std::string field = sanitise(s.name);
        if (builder_names().count(field)) field += '_';
        Param p{&s, field, cxx_type(op, s), "", {}};
        // (choices of another type, say a list of strings, keep the plain
        // type: the graph checks them)
        if (!s.choices.empty() && s.type == ParamType::string) {
            p.enum_name = "op::" + Op + camel(s.name);
            std::set<std::string> seen;
            for (const std::string& c : s.choices) {
                std::string e = sanitise(c);
                while (!seen.insert(e).second) e += '_';
                p.enumerators.push_back(e);
            }
            p.type = p.enum_name;
        }
        (s.required ? required : optional).push_back(std::move(p));
    }

    // the enums and the options struct
    for (const auto* group : {&required, &optional})
        for (const Param& p : *group) {
            if (p.enum_name.empty()) continue;
            const std::string name = p.enum_name.substr(4);
            types << "// " << op.name << "'s " << p.spec->name << ": " << comment(p.spec->doc) << "\n";
            types << "enum class " << name << " {";
            for (std::size_t i = 0; i < p.enumerators.size(); ++i) types << (i ? ", " : " ") << p.enumerators[i];
            types << " };\n";
            types << "// The choice as the spec spells it.\ninline const char* to_string(" << name << " v) {\n"
                  << "    static constexpr const char* names[] = {";
            for (std::size_t i = 0; i < p.spec->choices.size(); ++i)
                types << (i ? ", " : "") << string_literal(p.spec->choices[i]);
            types << "};\n    return names[static_cast<std::size_t>(v)];\n}\n\n";
        }
    types << "// The optional parameters of " << op.name << " (" << comment(op.doc) << ").\n";
    types << "struct " << Op << "Options {\n";
    for (const Param& p : optional) {
        const ParamSpec& s = *p.spec;
        types << "    // " << param_comment(s) << "\n";
        if (!s.default_value) {
            types << "    std::optional<" << p.type << "> " << p.field << " = std::nullopt;\n";
        } else if (!p.enum_name.empty()) {
            const std::string& d = std::get<std::string>(*s.default_value);
            const std::size_t i = choice_index(s.choices, d);
            if (i == s.choices.size()) fail(op, s, "the default is not one of the choices");
            types << "    " << p.type << " " << p.field << " = " << p.type << "::" << p.enumerators[i] << ";\n";
        } else {
            types << "    " << p.type << " " << p.field << " = " << literal(op, s, *s.default_value) << ";\n";
        }
    }
    types << "};\n\n";

    // the builder(s)
    const bool variable = op.max_inputs < 0 || op.max_inputs != op.min_inputs;
    auto arg_type = [](const Param& p) {
        return p.enum_name.empty() && p.type != "bool" && p.type != "std::int64_t" && p.type != "double"
                   ? "const " + p.type + "&"
                   : p.type;
    };
    std::string req_args, set_required;
    for (const Param& p : required) {
        req_args += arg_type(p) + " " + p.field + ", ";
        set_required += "    p_.set(" + string_literal(p.spec->name) + ", " +
                        (p.enum_name.empty() ? p.field : "std::string(op::to_string(" + p.field + "))") + ");\n";
    }
    std::string set_optional;
    for (const Param& p : optional) {
        const std::string key = string_literal(p.spec->name), f = "options." + p.field;
        if (!p.spec->default_value)
            set_optional += "    if (" + f + ") p_.set(" + key + ", " +
                            (p.enum_name.empty() ? "*" + f : "std::string(op::to_string(*" + f + "))") + ");\n";
        else
            set_optional += "    if (" + f + " != d_." + p.field + ") p_.set(" + key + ", " +
                            (p.enum_name.empty() ? f : "std::string(op::to_string(" + f + "))") + ");\n";
    }
    const std::string opts = "const op::" + Op + "Options& options = {}";
    std::string doc = "// " + op.name + ": " + comment(op.doc) + ".\n";
    if (!required.empty()) {
        doc += "// Required, in order:";
        for (const Param& p : required) doc += "\n//   " + p.spec->name + ": " + param_comment(*p.spec);
        doc += "\n";
    }
    std::string ins_doc;
    if (op.max_inputs == 0)
        ins_doc = "no inputs";
    else if (!variable)
        ins_doc = std::to_string(op.min_inputs) + (op.min_inputs == 1 ? " input" : " inputs");
    else
        ins_doc = op.max_inputs < 0
                      ? "at least " + std::to_string(op.min_inputs) + " inputs"
                      : std::to_string(op.min_inputs) + " to " + std::to_string(op.max_inputs) + " inputs";
    doc += "// Takes " + ins_doc + (op.sink ? "; a sink: writes, returns the run's statistics" : "") + ".\n";

    auto body = [&](const std::string& inputs_expr, int mode) {
        std::string b = "    Params p_;\n";
        if (optional.empty()) b += "    (void)options;  // " + op.name + " has no optional parameters\n";
        if (set_optional.find(" d_.") != std::string::npos) b += "    const op::" + Op + "Options d_{};\n";
        b += set_required + set_optional;
        if (mode == 1)
            b += "    return Image::run_sink(" + string_literal(op.name) + ", " + inputs_expr + ", p_, run);\n";
        else if (mode == 2)
            b += "    return Image::sink_graph(" + string_literal(op.name) + ", " + inputs_expr + ", p_);\n";
        else
            b += "    return Image::apply(" + string_literal(op.name) + ", " + inputs_expr + ", p_);\n";
        return b;
    };
    for (int pass = 0; pass < (op.sink ? 2 : 1); ++pass) {
        // a sink's second builder: <op>_graph, the graph its run would run
        const bool as_graph = pass == 1;
        const std::string ret = as_graph ? "inline Graph " : op.sink ? "inline RunStats " : "inline Image ";
        const std::string tail = opts + (op.sink && !as_graph ? ", const RunOptions& run = {}" : "");
        const std::string fn = as_graph ? base_fn + "_graph" : base_fn;
        const int mode = as_graph ? 2 : op.sink ? 1 : 0;
        fns << (as_graph ? "// The graph " + base_fn +
                               "() runs, this sink last: to write down as a pipeline (to_json) or run later.\n"
                         : doc);
        if (!variable) {
            std::string ins_args, ins_list;
            for (int i = 0; i < op.min_inputs; ++i) {
                const std::string n = op.min_inputs == 1 ? "in" : "in" + std::to_string(i);
                ins_args += "const Image& " + n + ", ";
                ins_list += (i ? ", " : "") + n;
            }
            fns << ret << fn << "(" << ins_args << req_args << tail << ") {\n"
                << body("std::vector<Image>{" + ins_list + "}", mode) << "}\n";
        } else {
            if (op.min_inputs == 0) {
                fns << "// The same without inputs.\n";
                fns << ret << fn << "(" << req_args << tail << ") {\n" << body("std::vector<Image>{}", mode) << "}\n";
            }
            fns << ret << fn << "(const std::vector<Image>& inputs, " << req_args << tail << ") {\n"
                << body("inputs", mode) << "}\n";
            if (op.max_inputs < 0 && op.min_inputs >= 1) {
                fns << "// The same with the first input apart (" << op.name << "(canvas, tiles, ...)).\n";
                fns << ret << fn << "(const Image& first, const std::vector<Image>& rest, " << req_args << tail
                    << ") {\n"
                    << "    std::vector<Image> inputs;\n    inputs.reserve(rest.size() + 1);\n"
                    << "    inputs.push_back(first);\n    inputs.insert(inputs.end(), rest.begin(), rest.end());\n"
                    << body("inputs", mode) << "}\n";
            }
        }
    }
    fns << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: gen_api OUT.hpp\n";
        return 2;
    }
    try {
        std::ostringstream types, fns;
        std::string names;
        std::set<std::string> seen;
        for (const OpSpec& op : standard_registry().specs()) {
            if (!seen.insert(sanitise(op.name)).second)
                throw Error("gen_api: two ops sanitise to '" + sanitise(op.name) + "'");
            write_op(types, fns, op);
            names += "    " + string_literal(op.name) + ",\n";
        }
        std::ostringstream out;
        out << "// Generated by tools/gen_api.cpp from the op specs of standard_registry() at build time: do not\n"
               "// edit. The typed builders of every op (see gen_api.cpp for what each op becomes):\n"
               "//\n"
               "//   tessera::Image canvas = tessera::black(1000, 700, {.bands = 3});\n"
               "//   tessera::Image m = tessera::insert(canvas, tiles, at);\n"
               "//   tessera::save(m, \"out.tif\", {.compression = tessera::op::SaveCompression::deflate, .tile = "
               "true});\n"
               "#pragma once\n\n"
               "#include <array>\n#include <cstddef>\n#include <cstdint>\n#include <limits>\n#include <optional>\n"
               "#include <string>\n#include <string_view>\n#include <vector>\n\n"
               "#include \"tessera/image.hpp\"\n\n"
               "namespace tessera {\n\n"
               "namespace op {\n\n"
            << types.str()
            << "// The ops these builders were generated for, in the registry's order.\n"
               "inline constexpr std::array<std::string_view, "
            << seen.size() << "> generated_ops = {\n"
            << names
            << "};\n\n"
               "}  // namespace op\n\n"
            << fns.str() << "}  // namespace tessera\n";
        const std::string path = argv[1];
        std::ofstream f(path, std::ios::binary);
        f << out.str();
        if (!f.flush()) throw IoError(path, "cannot write the generated header");
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "gen_api: error: " << e.what() << "\n";
        return 1;
    }
}
