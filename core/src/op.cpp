#include "tessera/core/op.hpp"

#include <algorithm>

#include "tessera/core/error.hpp"

namespace tessera {

void OpRegistry::add(OpSpec spec) {
    if (find(spec.name)) throw Error("op '" + spec.name + "' is registered twice");
    specs_.push_back(std::move(spec));
}

const OpSpec* OpRegistry::find(std::string_view name) const {
    auto it = std::find_if(specs_.begin(), specs_.end(), [&](const OpSpec& s) { return s.name == name; });
    return it == specs_.end() ? nullptr : &*it;
}

}  // namespace tessera
