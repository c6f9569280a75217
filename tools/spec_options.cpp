#include "spec_options.hpp"

#include <algorithm>

namespace tessera {

const ParamSpec& param_spec(const OpRegistry& registry, const std::string& op, const std::string& key) {
    const OpSpec* spec = registry.find(op);
    if (!spec) throw Error("command line: no op '" + op + "' is registered");
    auto it = std::find_if(spec->params.begin(), spec->params.end(), [&](const ParamSpec& p) { return p.name == key; });
    if (it == spec->params.end()) throw Error("command line: op '" + op + "' has no parameter '" + key + "'");
    return *it;
}

namespace {

// The option's text as the parameter's type; empty optional: it is not one.
std::optional<ParamValue> parse_as(ParamType type, const std::string& text) {
    switch (type) {
        case ParamType::integer: {
            std::int64_t v = 0;
            if (!CLI::detail::lexical_cast(text, v)) return std::nullopt;
            return v;
        }
        case ParamType::number: {
            double v = 0;
            if (!CLI::detail::lexical_cast(text, v)) return std::nullopt;
            return v;
        }
        case ParamType::string: return text;
        default: return std::nullopt;  // no option sets a list parameter
    }
}

}  // namespace

const ParamSpec& param_spec(const std::vector<ParamSpec>& params, const std::string& key) {
    auto it = std::find_if(params.begin(), params.end(), [&](const ParamSpec& p) { return p.name == key; });
    if (it == params.end()) throw Error("command line: no parameter '" + key + "' is declared");
    return *it;
}

CLI::Validator spec_validator(const OpRegistry& registry, const std::string& op, const std::string& key) {
    return spec_validator(param_spec(registry, op, key));
}

CLI::Validator spec_validator(const ParamSpec& spec_in) {
    const ParamSpec spec = spec_in;  // a copy: validators outlive nothing, but be safe
    std::string allowed = spec.allowed();
    return CLI::Validator(
        [spec](std::string& text) -> std::string {
            auto v = parse_as(spec.type, text);
            if (!v) return "'" + text + "' is not " + (spec.type == ParamType::integer ? "an integer" : "a number");
            return spec.violation(*v);
        },
        allowed.empty() ? std::string(param_type_name(spec.type)) : allowed);
}

void check_option_value(const OpRegistry& registry, const std::string& op, const std::string& key,
                        const std::string& option, const ParamValue& value) {
    std::string why = param_spec(registry, op, key).violation(value);
    if (!why.empty()) throw CLI::ValidationError(option, why);
}

}  // namespace tessera
