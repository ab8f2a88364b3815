#include "apps/profile_session.h"

#include <filesystem>

#include "tensor/safetensors.h"

namespace gndet::app {

ProfileSession::ProfileSession(const nn::Module& model)
    : profiler_(/*sync_cuda=*/true),
      trace_(std::make_unique<autograd::TraceGuard>()),
      names_(std::make_unique<nn::ModuleNames>(model)) {}

std::string ProfileSession::finish(const std::string& dir, const std::string& title, int top) {
  names_.reset();
  trace_.reset();
  const std::vector<autograd::profiler::Range> ranges = profiler_.ranges();
  const std::string table = title + "\n" + autograd::profiler::summary_table(ranges, top);
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/profile.txt", table);
  write_file_atomic(dir + "/trace.json", autograd::profiler::chrome_trace_json(ranges));
  return table + "wrote " + dir + "/profile.txt and " + dir + "/trace.json (" + std::to_string(ranges.size()) +
         " ranges; open the trace in https://ui.perfetto.dev or chrome://tracing)\n";
}

}  // namespace gndet::app
