// Fuzz target: the image decoder (stb_image: PNG, JPEG, BMP, GIF, ...), then what the loader does next.
#include "data/image.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(image) {
  const gndet::Tensor img = gndet::data::decode_image(std::string(input), "fuzz input");
  GNDET_FUZZ_ASSERT(img.dim() == 3 && img.size(2) == 3);
}
