// azlb state export|import: the whole state as one TOML document (the state
// file's format), to move a state between a file and etcd, or back it up.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "model/text.hpp"
#include "store/files.hpp"
#include "store/state_store.hpp"
#include "store/toml_codec.hpp"

namespace azlb::cli {

using namespace azlb::model;

// Named, not anonymous: the CLI's files are compiled together (a unity build).
namespace state_cmd {

struct ImportFlags {
  std::string file;
  bool replace = false;
};

Status export_state(const Context& ctx, const std::string& file) {
  AZLB_ASSIGN(s, store::load(ctx.location()));
  const auto text = store::format_state(s);
  if (file.empty() || file == "-") {
    std::cout << text;
    return ok();
  }
  // Never written through a link or into another user's file at that name.
  AZLB_TRY(store::replace_file(file, text, 0600));
  if (!ctx.quiet && !ctx.json())
    std::cerr << "State " << ctx.location().display() << " written to " << file << " ("
              << count(s.services.size(), "cloud service", "cloud services") << ", " << count(s.vms.size(), "VM", "VMs")
              << ")\n";
  if (ctx.json())
    ctx.print_json({{"file", file}, {"cloud_services", s.services.size()}, {"vms", s.vms.size()}});
  return ok();
}

Status import_state(const Context& ctx, const ImportFlags& f) {
  AZLB_ASSIGN(text, store::read_regular_file(f.file, store::kMaxStateBytes));
  if (!text) return runtime_error("no file " + quote(f.file));
  AZLB_ASSIGN(incoming, store::parse_state(*text, f.file));
  std::size_t replaced_services = 0, replaced_vms = 0;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    if (!f.replace && (!s.services.empty() || !s.vms.empty()))
      return conflict("the state at " + ctx.location().display() + " is not empty (" +
                      count(s.services.size(), "cloud service", "cloud services") + ", " +
                      count(s.vms.size(), "VM", "VMs") + "): import into an empty one, or give --replace");
    replaced_services = s.services.size();
    replaced_vms = s.vms.size();
    s = incoming;
    return ok();
  }));
  std::string msg = "Imported " + f.file + " into " + ctx.location().display() + ": " +
                    count(incoming.services.size(), "cloud service", "cloud services") + ", " +
                    count(incoming.vms.size(), "VM", "VMs");
  if (f.replace) msg += " (replacing " + count(replaced_services, "cloud service", "cloud services") + ", " +
                        count(replaced_vms, "VM", "VMs") + ")";
  ctx.confirm(msg, {{"file", f.file}, {"cloud_services", incoming.services.size()}, {"vms", incoming.vms.size()}});
  return ok();
}

}  // namespace state_cmd

void register_state(CLI::App& app, Context& ctx) {
  using namespace state_cmd;
  auto* st = group(app, ctx, "state", "Export or import the whole state (to move it between a file and etcd)");
  auto file = std::make_shared<std::string>();
  command(*st, ctx, "export", "Write the whole state as one TOML document (the state file's format)",
          [&ctx, file] { return export_state(ctx, *file); })
      ->add_option("--file", *file, "Write it to this file (0600) instead of stdout")
      ->type_name("PATH");
  auto f = std::make_shared<ImportFlags>();
  auto* imp = command(*st, ctx, "import", "Load a state from a TOML document into an empty location, atomically",
                      [&ctx, f] { return import_state(ctx, *f); });
  imp->add_option("FILE", f->file, "A state file (as 'state export' writes it)")->required();
  imp->add_flag("--replace", f->replace, "Replace what the location holds");
}

}  // namespace azlb::cli
