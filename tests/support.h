// Shared test helpers: skipping (Catch2 2.x has no SKIP), tolerance-checked comparisons.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tensor/backend.h"
#include "tensor/tensor.h"

namespace gndet::test {

// Marks the running test case as skipped, with the reason printed; the summary line counts it
// under "skipped", not "passed".
void skip(const std::string& reason);

// Largest |a - b| over all elements (both converted to double on the host).
double max_abs_diff(const Tensor& a, const Tensor& b);
// The same over two equally long vectors; a NaN on either side gives infinity.
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b);

// Fills a tensor with NaN (floats) or 0x5A bytes (integers), so that a kernel which forgets to
// write an element is caught by the comparison that follows.
void poison(Tensor& t);

}  // namespace gndet::test

// Skips the current test case (with a printed reason) when no CUDA GPU is present.
#define GNDET_REQUIRE_CUDA()                                                                    \
  do {                                                                                          \
    if (!::gndet::cuda::is_available()) {                                                       \
      ::gndet::test::skip(::gndet::cuda::is_built() ? "no CUDA GPU present"                     \
                                                    : "gndet was built without CUDA");          \
      return;                                                                                   \
    }                                                                                           \
  } while (0)
