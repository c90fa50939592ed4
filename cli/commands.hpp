// One registration function per command group; each lives in its own file.
#pragma once

#include "cli/context.hpp"

namespace azlb::cli {

void register_vm(CLI::App&, Context&);
void register_service(CLI::App&, Context&);
void register_endpoint(CLI::App&, Context&);
void register_lbset(CLI::App&, Context&);
void register_status(CLI::App&, Context&);
void register_engine(CLI::App&, Context&);
void register_serve(CLI::App& vm_group, Context&);
void register_complete(CLI::App&, Context&);
void register_state(CLI::App&, Context&);

}  // namespace azlb::cli
