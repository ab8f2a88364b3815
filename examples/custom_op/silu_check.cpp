// silu's gradcheck case, in the same registry as gndet's own (autograd::gradcheck_cases(), run by
// `gndet gradcheck` and the test suite): linked into this program, it is listed and run with them.
#include "ops/checks/check_util.h"
#include "silu.h"

namespace custom_op {

// Inputs over [-6, 6]: the curve's minimum near -1.28, its linear tails, and sigmoid saturating.
GNDET_GRADCHECK("silu", "(2,3,4), x in [-6, 6]") {
  // `gndet gradcheck --device cuda` runs every case on the GPU: this op has no kernel there.
  if (!gndet::autograd::gradcheck_device().is_cpu()) return gndet::autograd::gradcheck_skipped("CPU kernel only");
  return gndet::checks::gradcheck([](const gndet::Tensors& in) { return silu(in[0]); },
                                  {gndet::checks::uniform({2, 3, 4}, 7001, -6.0, 6.0)});
}

}  // namespace custom_op
