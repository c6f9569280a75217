// Op parameters as plain values, independent of how a pipeline is written
// down (the JSON layer converts to and from these).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tessera/core/error.hpp"

namespace tessera {

using IntPair = std::array<std::int64_t, 2>;
// A fractional [x, y] (sub-pixel positions).
using NumPair = std::array<double, 2>;
using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>, std::vector<double>,
                                std::vector<IntPair>, std::vector<NumPair>, std::vector<std::string>>;

// The types a parameter can be declared with; index-aligned with ParamValue.
// (strings: a list of names, e.g. save's channel_names; a lone string where
// strings are declared is a one-element list, as a lone number is numbers)
enum class ParamType { boolean, integer, number, string, integers, numbers, points, coords, strings };
const char* param_type_name(ParamType t);
ParamType param_type_of(const ParamValue& v);
// Coords as points when every number in them is whole (and within 2^53, so
// exactly an integer), else nothing: the one form integral positions take
// wherever coords are declared, so a graph reads back from JSON unchanged.
std::optional<std::vector<IntPair>> whole_points(const std::vector<NumPair>& c);

// One parameter of an op: what `tessera ops` shows, and what the graph checks
// before the op is built (type, range, choices) and fills in (the default),
// so an op's constructor reads p.integer("bands") and validates only what no
// spec can say (rules between parameters, or against the inputs).
//
// The first six fields are positional (older specs are written
// {"name", type, required, "default text", "doc"[, is_path]}); the rest are
// best given with designated initialisers:
//   {.name = "bands", .type = ParamType::integer, .doc = "number of bands",
//    .default_value = std::int64_t(1), .min = 1, .max = kMaxBands}
//   {.name = "suffix", .type = ParamType::string, .doc = "dz: tile format",
//    .default_value = std::string("jpeg"), .choices = {"jpeg", "png", "webp"}}
struct ParamSpec {
    // (every field has an initialiser, so designated initialisers may leave
    // any out without -Wmissing-field-initializers)
    std::string name = {};
    ParamType type = ParamType::integer;
    bool required = false;
    // Shown by `tessera ops`; empty when required. Derived from default_value
    // when that is set and this is empty (OpRegistry::add); written by hand
    // only for a default no value can state ("input 0's", "254 (google: 256)").
    std::string default_text = {};
    std::string doc = {};  // one line
    // A file path: pipelines resolve a relative one against their own folder.
    bool is_path = false;
    // The default, of the declared type: the graph sets it when the key is
    // absent. None: the op decides (a default that depends on other
    // parameters or the inputs), the op must know whether the key was given
    // (p.has(key) is then always true), or the parameter is required.
    std::optional<ParamValue> default_value = std::nullopt;
    // Inclusive bounds of an integer or number, or of every element of an
    // array of them.
    std::optional<double> min = std::nullopt;
    std::optional<double> max = std::nullopt;
    // The values a string (or every string of a list) may take; empty: any.
    std::vector<std::string> choices = {};

    // Why `v` (already of the declared type) is not allowed, e.g.
    // "0 is out of range; use a value in [1, 100]"; empty when it is.
    std::string violation(const ParamValue& v) const;
    // What is allowed, for help text: "[1, 100]", "at least 0",
    // "jpeg, png or webp"; empty when anything of the type is.
    std::string allowed() const;
};

// The position of `value` in `choices` (choices.size() if absent): how an op
// turns a string the graph checked against its spec's choices into an enum
// declared in the same order.
std::size_t choice_index(const std::vector<std::string>& choices, const std::string& value);
// "a, b or c": how messages list choices.
std::string or_list(const std::vector<std::string>& items);
// A parameter value as `tessera ops` and messages show it: 3, 0.5, "u8" as
// u8, [1, 2].
std::string param_text(const ParamValue& v);

// A node's parameters. Getters check presence and type and throw ParamError
// naming the key; ranges and choices are the spec's (checked by the graph).
class Params {
public:
    Params() = default;
    Params(std::initializer_list<std::pair<const std::string, ParamValue>> init) : values_(init) {}

    bool has(const std::string& key) const { return values_.count(key) != 0; }
    void set(const std::string& key, ParamValue v) { values_[key] = std::move(v); }
    const std::map<std::string, ParamValue>& values() const { return values_; }

    bool boolean(const std::string& key, bool def) const;
    std::int64_t integer(const std::string& key) const;
    std::int64_t integer(const std::string& key, std::int64_t def) const;
    // An integer in [lo, hi], else a ParamError saying the range.
    int integer_in(const std::string& key, std::int64_t lo, std::int64_t hi) const;
    int integer_in(const std::string& key, std::int64_t lo, std::int64_t hi, std::int64_t def) const;
    double number(const std::string& key) const;  // integers are accepted as numbers
    double number(const std::string& key, double def) const;
    std::string string(const std::string& key) const;
    std::string string(const std::string& key, const std::string& def) const;
    std::vector<std::int64_t> integers(const std::string& key) const;
    std::vector<double> numbers(const std::string& key, std::vector<double> def) const;
    std::vector<IntPair> points(const std::string& key) const;
    // [x, y] number pairs; points (integers) are accepted, as number() takes integers.
    std::vector<NumPair> coords(const std::string& key) const;
    // A list of strings; a lone string is accepted as a list of one.
    std::vector<std::string> strings(const std::string& key) const;
    std::vector<std::string> strings(const std::string& key, std::vector<std::string> def) const;

    friend bool operator==(const Params&, const Params&) = default;

private:
    const ParamValue& get(const std::string& key) const;
    std::map<std::string, ParamValue> values_;
};

}  // namespace tessera
