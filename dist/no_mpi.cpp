// Stands in for mpi_communicator.cpp in a build without MPI.
#include "dist/backends.h"

namespace gndet::dist::detail {

std::shared_ptr<Communicator> make_mpi_communicator() {
  GNDET_FAIL("gndet was built without MPI (install libopenmpi-dev and rebuild with -Dmpi=enabled)");
}

}  // namespace gndet::dist::detail
