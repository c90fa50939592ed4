// azlb __complete KIND [VM]: names from the state, one per line, for the
// shell completions. Hidden: it is an interface for scripts, not for people.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "model/rules.hpp"
#include "store/state_store.hpp"

namespace azlb::cli {

using namespace azlb::model;

void register_complete(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto* c = command(app, ctx, "__complete", "", [&ctx, args]() -> Status {
    auto s = store::load(ctx.location());
    if (!s || args->empty()) return ok();  // completion stays quiet on a broken state
    const auto& kind = (*args)[0];
    auto out = [](const std::string& n) { std::cout << n << "\n"; };
    if (kind == "vms") {
      for (auto& vm : s->vms) out(vm.name);
    } else if (kind == "services") {
      for (auto& svc : s->services) out(svc.name);
    } else if (kind == "lbsets") {
      for (auto& svc : s->services)
        for (auto& set : svc.lbsets) out(set.name);
    } else if (kind == "endpoints" && args->size() > 1) {
      if (auto* vm = find_vm(*s, (*args)[1]))
        for (auto& e : vm->endpoints) out(e.name);
    }
    return ok();
  });
  c->add_option("ARGS", *args);
  c->group("");  // hidden from --help
}

}  // namespace azlb::cli
