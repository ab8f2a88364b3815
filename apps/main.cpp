// gndet: one program, many subcommands (gndet --help lists them).
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <new>

#include "apps/args.h"
#include "apps/commands.h"
#include "gndet_config.h"
#include "tensor/backend.h"

namespace gndet::app {

std::vector<Command>& commands() {
  static std::vector<Command> cmds;
  return cmds;
}

static void print_help() {
  std::vector<Command> cmds = commands();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return std::string(a.name) < b.name; });
  std::cout << "gndet " << GNDET_VERSION
            << ": Group Normalization (GN) and GN+WS Faster / Mask R-CNN, from scratch in C++20 and CUDA\n\n"
            << "usage: gndet <command> [arguments] [--help]\n\ncommands:\n";
  for (const Command& c : cmds) std::printf("  %-12s %s\n", c.name, c.summary);
  // Counted before anything is written, so the line is whole; the reason only when a CUDA build sees no GPU.
  const int gpus = cuda::device_count();
  const std::string why = GNDET_WITH_CUDA && gpus == 0 ? " (" + cuda::unavailable_reason() + ")" : "";
  std::printf("\nbuilt with CUDA: %s, cuDNN: %s; GPUs visible: %d%s\n",
              GNDET_CUDA_EMULATED ? "the emulated device (a CPU test instrument, docs/emulator.md)"
                                  : GNDET_WITH_CUDA ? "yes" : "no",
              GNDET_WITH_CUDNN ? "yes" : "no", gpus, why.c_str());
  std::fflush(stdout);
}

}  // namespace gndet::app

int main(int argc, char** argv) {
  using namespace gndet::app;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "gndet " << GNDET_VERSION << "\n";
    return 0;
  }
  const std::string name = argv[1];
  for (const Command& c : commands()) {
    if (name != c.name) continue;
    try {
      return c.run(Args(argv + 2, argv + argc));
    } catch (const UsageError& e) {
      std::cerr << "usage error: " << e.what() << "\n";
      return 2;
    } catch (const gndet::Error& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    } catch (const std::bad_alloc&) {
      std::cerr << "error: out of memory: the input asks for more memory than this machine can give "
                   "(check image sizes, counts and batch sizes)\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "gndet: unknown command '" << name << "' (gndet --help lists them)\n";
  return 2;
}
