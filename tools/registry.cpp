#include "tessera/tessera.hpp"

namespace tessera {

const OpRegistry& standard_registry() {
    static const OpRegistry registry = [] {
        OpRegistry r;
        register_ops(r);
        register_io_ops(r);
        return r;
    }();
    return registry;
}

}  // namespace tessera
