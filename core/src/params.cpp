#include "tessera/core/params.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tessera {

const char* param_type_name(ParamType t) {
    switch (t) {
        case ParamType::boolean: return "boolean";
        case ParamType::integer: return "integer";
        case ParamType::number: return "number";
        case ParamType::string: return "string";
        case ParamType::integers: return "array of integers";
        case ParamType::numbers: return "array of numbers";
        case ParamType::points: return "array of [x, y] integer pairs";
        case ParamType::coords: return "array of [x, y] number pairs";
        case ParamType::strings: return "array of strings";
    }
    return "?";
}

ParamType param_type_of(const ParamValue& v) { return ParamType(v.index()); }

namespace {

// The shortest text that reads back as d (10000000, not 1e+07).
std::string number_text(double d) {
    // whole numbers as integers: 10000000 rather than to_chars' 1e+07
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(std::int64_t(d));
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

// A bound as the parameter's type shows it: integers without a fraction.
std::string bound_text(double d) { return number_text(d); }

bool is_numeric(ParamType t) {
    return t == ParamType::integer || t == ParamType::number || t == ParamType::integers || t == ParamType::numbers;
}

}  // namespace

std::size_t choice_index(const std::vector<std::string>& choices, const std::string& value) {
    return std::size_t(std::find(choices.begin(), choices.end(), value) - choices.begin());
}

std::string or_list(const std::vector<std::string>& items) {
    std::string s;
    for (std::size_t i = 0; i < items.size(); ++i)
        s += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
    return s;
}

namespace {
template <class L, class F>
std::string list_text(const L& l, F f) {
    std::string s = "[";
    for (std::size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + f(l[i]);
    return s + "]";
}
}  // namespace

std::string param_text(const ParamValue& v) {
    if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    if (auto i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (auto d = std::get_if<double>(&v)) return number_text(*d);
    if (auto s = std::get_if<std::string>(&v)) return *s;
    if (auto l = std::get_if<std::vector<std::int64_t>>(&v))
        return list_text(*l, [](std::int64_t i) { return std::to_string(i); });
    if (auto l = std::get_if<std::vector<double>>(&v)) return list_text(*l, number_text);
    if (auto l = std::get_if<std::vector<NumPair>>(&v))
        return list_text(*l, [](const NumPair& p) { return "[" + number_text(p[0]) + ", " + number_text(p[1]) + "]"; });
    // quoted, as JSON writes them: a name may hold a comma
    if (auto l = std::get_if<std::vector<std::string>>(&v))
        return list_text(*l, [](const std::string& s) { return "\"" + s + "\""; });
    return list_text(std::get<std::vector<IntPair>>(v),
                     [](const IntPair& p) { return "[" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + "]"; });
}

std::string ParamSpec::allowed() const {
    if (!choices.empty()) return or_list(choices);
    if (!is_numeric(type)) return "";
    if (min && max) return "[" + bound_text(*min) + ", " + bound_text(*max) + "]";
    if (min) return "at least " + bound_text(*min);
    if (max) return "at most " + bound_text(*max);
    return "";
}

std::string ParamSpec::violation(const ParamValue& v) const {
    auto outside = [&](double x) { return (min && x < *min) || (max && x > *max); };
    // "use a value in [1, 100]" / "use a value of at least 0"
    auto use = [&](const char* what) {
        return std::string("; use ") + what + (min && max ? " in " : " of ") + allowed();
    };
    if (auto s = std::get_if<std::string>(&v)) {
        if (choices.empty() || std::find(choices.begin(), choices.end(), *s) != choices.end()) return "";
        return "unknown " + name + " '" + *s + "'; use " + or_list(choices);
    }
    if (auto l = std::get_if<std::vector<std::string>>(&v)) {
        if (choices.empty()) return "";
        for (std::size_t k = 0; k < l->size(); ++k)
            if (std::find(choices.begin(), choices.end(), (*l)[k]) == choices.end())
                return "value " + std::to_string(k) + ": unknown " + name + " '" + (*l)[k] + "'; use " +
                       or_list(choices);
        return "";
    }
    if (auto i = std::get_if<std::int64_t>(&v))
        return outside(double(*i)) ? std::to_string(*i) + " is out of range" + use("a value") : "";
    if (auto d = std::get_if<double>(&v))
        return outside(*d) ? number_text(*d) + " is out of range" + use("a value") : "";
    auto each = [&](const auto& list, auto text) -> std::string {
        for (std::size_t k = 0; k < list.size(); ++k)
            if (outside(double(list[k])))
                return "value " + std::to_string(k) + " (" + text(list[k]) + ") is out of range" + use("values");
        return "";
    };
    if (auto l = std::get_if<std::vector<std::int64_t>>(&v))
        return each(*l, [](std::int64_t i) { return std::to_string(i); });
    if (auto l = std::get_if<std::vector<double>>(&v)) return each(*l, number_text);
    return "";
}

std::optional<std::vector<IntPair>> whole_points(const std::vector<NumPair>& c) {
    std::vector<IntPair> out;
    out.reserve(c.size());
    for (const NumPair& p : c) {
        for (double d : p)
            if (!(std::fabs(d) <= 9007199254740992.0) || std::floor(d) != d) return std::nullopt;
        out.push_back({std::int64_t(p[0]), std::int64_t(p[1])});
    }
    return out;
}

const ParamValue& Params::get(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw ParamError(key, "required parameter is missing");
    return it->second;
}

namespace {
template <class T>
const T& as(const std::string& key, const ParamValue& v, ParamType want) {
    if (auto p = std::get_if<T>(&v)) return *p;
    throw ParamError(key,
                     std::string("expected ") + param_type_name(want) + ", got " + param_type_name(param_type_of(v)));
}
}  // namespace

bool Params::boolean(const std::string& key, bool def) const {
    return has(key) ? as<bool>(key, get(key), ParamType::boolean) : def;
}
std::int64_t Params::integer(const std::string& key) const {
    return as<std::int64_t>(key, get(key), ParamType::integer);
}
std::int64_t Params::integer(const std::string& key, std::int64_t def) const { return has(key) ? integer(key) : def; }
int Params::integer_in(const std::string& key, std::int64_t lo, std::int64_t hi) const {
    std::int64_t v = integer(key);
    if (v < lo || v > hi)
        throw ParamError(key, std::to_string(v) + " is out of range; use a value in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
    return int(v);
}
int Params::integer_in(const std::string& key, std::int64_t lo, std::int64_t hi, std::int64_t def) const {
    return has(key) ? integer_in(key, lo, hi) : int(def);
}
double Params::number(const std::string& key) const {
    const ParamValue& v = get(key);
    if (auto i = std::get_if<std::int64_t>(&v)) return double(*i);
    double d = as<double>(key, v, ParamType::number);
    if (!std::isfinite(d)) throw ParamError(key, "must be a finite number");
    return d;
}
double Params::number(const std::string& key, double def) const { return has(key) ? number(key) : def; }
std::string Params::string(const std::string& key) const { return as<std::string>(key, get(key), ParamType::string); }
std::string Params::string(const std::string& key, const std::string& def) const {
    return has(key) ? string(key) : def;
}
std::vector<std::int64_t> Params::integers(const std::string& key) const {
    return as<std::vector<std::int64_t>>(key, get(key), ParamType::integers);
}
std::vector<double> Params::numbers(const std::string& key, std::vector<double> def) const {
    if (!has(key)) return def;
    const ParamValue& v = get(key);
    if (auto i = std::get_if<std::vector<std::int64_t>>(&v)) return {i->begin(), i->end()};
    if (auto i = std::get_if<std::int64_t>(&v)) return {double(*i)};
    if (auto d = std::get_if<double>(&v)) return {*d};
    return as<std::vector<double>>(key, v, ParamType::numbers);
}
std::vector<IntPair> Params::points(const std::string& key) const {
    return as<std::vector<IntPair>>(key, get(key), ParamType::points);
}
std::vector<NumPair> Params::coords(const std::string& key) const {
    const ParamValue& v = get(key);
    if (auto i = std::get_if<std::vector<IntPair>>(&v)) {
        std::vector<NumPair> out;
        out.reserve(i->size());
        for (const IntPair& p : *i) out.push_back({double(p[0]), double(p[1])});
        return out;
    }
    const auto& c = as<std::vector<NumPair>>(key, v, ParamType::coords);
    for (std::size_t k = 0; k < c.size(); ++k)
        if (!std::isfinite(c[k][0]) || !std::isfinite(c[k][1]))
            throw ParamError(key, "pair " + std::to_string(k) + " is not finite; give finite numbers");
    return c;
}
std::vector<std::string> Params::strings(const std::string& key) const {
    const ParamValue& v = get(key);
    if (auto s = std::get_if<std::string>(&v)) return {*s};
    return as<std::vector<std::string>>(key, v, ParamType::strings);
}
std::vector<std::string> Params::strings(const std::string& key, std::vector<std::string> def) const {
    return has(key) ? strings(key) : def;
}

}  // namespace tessera
