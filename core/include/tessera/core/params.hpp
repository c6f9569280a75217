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
using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                                std::vector<double>, std::vector<IntPair>, std::vector<NumPair>>;

// The types a parameter can be declared with; index-aligned with ParamValue.
enum class ParamType { boolean, integer, number, string, integers, numbers, points, coords };
const char* param_type_name(ParamType t);
ParamType param_type_of(const ParamValue& v);
// Coords as points when every number in them is whole (and within 2^53, so
// exactly an integer), else nothing: the one form integral positions take
// wherever coords are declared, so a graph reads back from JSON unchanged.
std::optional<std::vector<IntPair>> whole_points(const std::vector<NumPair>& c);

struct ParamSpec {
    std::string name;
    ParamType type = ParamType::integer;
    bool required = false;
    std::string default_text;  // shown by `tessera ops`; empty when required
    std::string doc;           // one line
    // A file path: pipelines resolve a relative one against their own folder.
    bool is_path = false;
};

// A node's parameters. Getters check presence and type and throw ParamError
// naming the key; ops add range checks of their own.
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

    friend bool operator==(const Params&, const Params&) = default;

private:
    const ParamValue& get(const std::string& key) const;
    std::map<std::string, ParamValue> values_;
};

}  // namespace tessera
