#include "tessera/core/stop.hpp"

#include "tessera/core/error.hpp"

namespace tessera {

namespace {
thread_local const StopScope* t_scope = nullptr;
}  // namespace

StopScope::StopScope(std::function<bool()> stop) : stop_(std::move(stop)), outer_(t_scope) { t_scope = this; }

StopScope::~StopScope() { t_scope = outer_; }

void throw_if_stopped() {
    if (t_scope && t_scope->stop_ && t_scope->stop_()) throw Cancelled();
}

}  // namespace tessera
