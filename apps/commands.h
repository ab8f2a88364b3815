// The subcommands of `gndet`. Each returns the process exit code; gndet::Error escaping one is
// printed as a single "error: ..." line by main.
#pragma once

#include <string>
#include <vector>

namespace gndet::app {

using Args = std::vector<std::string>;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

// The registry; every cmd_*.cpp adds itself with GNDET_COMMAND.
std::vector<Command>& commands();
struct CommandRegistrar {
  CommandRegistrar(const char* name, const char* summary, int (*run)(const Args&)) {
    commands().push_back({name, summary, run});
  }
};

}  // namespace gndet::app

#define GNDET_COMMAND(name, summary, fn) \
  static const ::gndet::app::CommandRegistrar command_registrar_##fn(name, summary, fn)
