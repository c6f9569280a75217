#include "tessera/core/op.hpp"

#include <algorithm>

#include "tessera/core/error.hpp"

namespace tessera {

Params complete_params(const OpSpec& spec, const Params& given) {
    Params out = given;
    for (const ParamSpec& p : spec.params) {
        if (given.has(p.name)) {
            std::string why = p.violation(given.values().at(p.name));
            if (!why.empty()) throw ParamError(p.name, why);
        } else if (p.default_value) {
            out.set(p.name, *p.default_value);
        }
    }
    return out;
}

void OpRegistry::add(OpSpec spec) {
    if (find(spec.name)) throw Error("op '" + spec.name + "' is registered twice");
    // a wrong declaration is the op author's bug: it fails at registration,
    // where every test sees it, not in some user's pipeline
    for (ParamSpec& p : spec.params) {
        auto bad = [&](const std::string& why) {
            return Error("op '" + spec.name + "', parameter '" + p.name + "': " + why);
        };
        if (!p.default_value) continue;
        if (p.required) throw bad("a required parameter has no default; remove default_value or required");
        if (param_type_of(*p.default_value) != p.type)
            throw bad(std::string("default_value is a ") + param_type_name(param_type_of(*p.default_value)) +
                      " but the parameter is declared " + param_type_name(p.type));
        std::string why = p.violation(*p.default_value);
        if (!why.empty()) throw bad("its default is not allowed: " + why);
        if (p.default_text.empty()) p.default_text = param_text(*p.default_value);
    }
    specs_.push_back(std::move(spec));
}

const OpSpec* OpRegistry::find(std::string_view name) const {
    auto it = std::find_if(specs_.begin(), specs_.end(), [&](const OpSpec& s) { return s.name == name; });
    return it == specs_.end() ? nullptr : &*it;
}

}  // namespace tessera
