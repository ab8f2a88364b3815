#include "dist/communicator.h"

#include <cstdio>
#include <cstdlib>
#include <unistd.h>

#include "dist/backends.h"
#include "gndet_config.h"

namespace gndet::dist {
namespace {

// One process: the sum over one rank is the tensor itself.
class SingleProcess final : public Communicator {
 public:
  SingleProcess() {
    char name[256] = {};
    ::gethostname(name, sizeof(name) - 1);
    info_.host = name;
  }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(Tensor& t, bool) override { check_float(t); }
  void broadcast(Tensor&, int root) override { check_root(root); }
  std::vector<std::string> gather(const std::string& bytes, int root) override {
    check_root(root);
    return {bytes};
  }
  std::string broadcast_string(const std::string& bytes, int root) override {
    check_root(root);
    return bytes;
  }
  void barrier() override {}
  [[noreturn]] void abort(int code, const std::string& why) override {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::fflush(stderr);
    std::_Exit(code);
  }

 private:
  static void check_float(const Tensor& t) {
    GNDET_CHECK(t.defined() && t.dtype() == kFloat32 && t.is_contiguous(),
                "all_reduce_sum: expected a contiguous float32 tensor");
  }
  static void check_root(int root) { GNDET_CHECK(root == 0, "dist: root rank ", root, " out of range for 1 rank"); }
};

}  // namespace

std::shared_ptr<Communicator> single_process() { return std::make_shared<SingleProcess>(); }

std::shared_ptr<Communicator> init_communicator(const std::string& launcher) {
  if (launcher == "none") return single_process();
  if (launcher == "mpi") {
    GNDET_CHECK(mpi_built(), "--launcher mpi: gndet was built without MPI (install libopenmpi-dev and rebuild with "
                             "-Dmpi=enabled)");
    return detail::make_mpi_communicator();
  }
  GNDET_FAIL("--launcher: unknown launcher '", launcher, "' (expected none or mpi; under Slurm use srun --mpi=pmix "
             "... --launcher mpi)");
}

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> mpi, int cuda_device) {
  GNDET_CHECK(nccl_built(), "dist: gndet was built without NCCL (a CUDA build finds it in the toolkit's folders)");
  return detail::make_nccl_communicator(std::move(mpi), cuda_device);
}

bool mpi_built() { return GNDET_WITH_MPI != 0; }
bool nccl_built() { return GNDET_WITH_NCCL != 0; }

double timeout_seconds() {
  const char* v = std::getenv("GNDET_DIST_TIMEOUT");
  if (v == nullptr || *v == '\0') return 1800.0;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  GNDET_CHECK(end != v && *end == '\0' && s > 0, "GNDET_DIST_TIMEOUT must be a positive number of seconds, got '", v,
              "'");
  return s;
}

}  // namespace gndet::dist
