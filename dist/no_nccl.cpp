// Stands in for nccl_communicator.cpp in a build without CUDA or NCCL.
#include "dist/backends.h"

namespace gndet::dist::detail {

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator>, int) {
  GNDET_FAIL("gndet was built without NCCL (it needs the CUDA build, nccl.h and libnccl)");
}

}  // namespace gndet::dist::detail
