// azlb state export|import: the whole state as one TOML document (the state
// file's format), to move a state between a file and etcd, or back it up.
#include <iostream>
#include <memory>

#include "cli/commands.hpp"
#include "model/text.hpp"
#include "cli/change.hpp"
#include "cli/table.hpp"
#include "store/files.hpp"
#include "store/history.hpp"
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
    std::cout << "State " << ctx.location().display() << " written to " << file << " ("
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

std::string when(std::time_t t) {
  if (!t) return "-";
  char buf[32];
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::size_t endpoints_of(const State& s) {
  std::size_t n = 0;
  for (auto& vm : s.vms) n += vm.endpoints.size();
  return n;
}

std::size_t sets_of(const State& s) {
  std::size_t n = 0;
  for (auto& svc : s.services) n += svc.lbsets.size();
  return n;
}

Status history(const Context& ctx) {
  AZLB_ASSIGN(entries, store::history(ctx.location()));
  if (ctx.json()) {
    Json out = Json::array();
    for (auto& e : entries)
      out.push_back({{"id", e.id}, {"current", e.id == 0}, {"written", e.written ? Json(when(e.written)) : Json(nullptr)},
                     {"where", e.where}, {"cloud_services", e.state.services.size()}, {"vms", e.state.vms.size()},
                     {"endpoints", endpoints_of(e.state)}, {"lbsets", sets_of(e.state)}});
    ctx.print_json({{"history", out}});
    return ok();
  }
  Table t({"ID", "WRITTEN", "CLOUD SERVICES", "VMS", "ENDPOINTS", "SETS", "WHERE"});
  for (auto& e : entries)
    t.add({e.id == 0 ? "0 (now)" : std::to_string(e.id), when(e.written), std::to_string(e.state.services.size()),
           std::to_string(e.state.vms.size()), std::to_string(endpoints_of(e.state)), std::to_string(sets_of(e.state)),
           e.where});
  t.print(std::cout);
  if (entries.size() == 1) std::cout << "No earlier state kept: the next change keeps this one.\n";
  return ok();
}

// Puts back the state before the last write, as a change of its own: undo
// twice and the undone change is back.
Status undo(const Context& ctx) {
  AZLB_ASSIGN(entries, store::history(ctx.location(), 2));
  if (entries.size() < 2) return runtime_error("nothing to undo: no earlier state of " + ctx.location().display() + " is kept");
  const auto& previous = entries[1];
  State current;
  AZLB_TRY(ctx.change([&](State& s) -> Status {
    current = s;
    s = previous.state;
    return ok();
  }));
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size() && i < 10; ++i) out += (i ? ", " : "") + v[i];
    if (v.size() > 10) out += " and " + std::to_string(v.size() - 10) + " more";
    return out;
  };
  const auto back = removed_objects(previous.state, current), gone = removed_objects(current, previous.state);
  std::string what;
  if (!back.empty()) what += "; brings back " + list(back);
  if (!gone.empty()) what += "; removes " + list(gone);
  if (back.empty() && gone.empty()) what += "; changes settings only";
  ctx.confirm("Restored the state written " + when(previous.written) + " (" + previous.where + ")" + what +
                  "; 'azlb state undo' again puts back what was undone",
              {{"restored", {{"written", previous.written ? Json(when(previous.written)) : Json(nullptr)},
                             {"where", previous.where}}}});
  return ok();
}

}  // namespace state_cmd

void register_state(CLI::App& app, Context& ctx) {
  using namespace state_cmd;
  auto* st = group(app, ctx, "state", "Export, import, list the history of or undo a change to the whole state");
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
  command(*st, ctx, "history", "The state now and the ones before its last writes (up to 20)",
          [&ctx] { return history(ctx); });
  command(*st, ctx, "undo", "Put back the state before the last write (itself undoable)", [&ctx] { return undo(ctx); });
}

}  // namespace azlb::cli
