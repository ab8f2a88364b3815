// The implementations behind dist/communicator.h, each in its own file so that MPI and NCCL
// headers stay out of every other file: mpi_communicator.cpp (or no_mpi.cpp),
// nccl_communicator.cpp (or no_nccl.cpp).
#pragma once

#include "dist/communicator.h"

namespace gndet::dist::detail {

std::shared_ptr<Communicator> make_mpi_communicator();
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> mpi, int cuda_device);

}  // namespace gndet::dist::detail
