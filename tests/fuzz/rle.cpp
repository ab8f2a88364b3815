// Fuzz target: the compressed RLE string codec. Bytes 0-1: height, width; the rest: the string.
#include "data/mask.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(rle) {
  using namespace gndet::data;
  if (input.size() < 2) return;
  const int64_t h = static_cast<uint8_t>(input[0]), w = static_cast<uint8_t>(input[1]);
  const Rle rle = rle_from_string(input.substr(2), h, w);
  GNDET_FUZZ_ASSERT(rle_from_string(rle_to_string(rle), h, w) == rle);  // the codec round-trips
  uint64_t total = 0;
  for (uint32_t c : rle.counts) total += c;
  if (total != static_cast<uint64_t>(h * w)) return;  // rle_decode refuses these (tested elsewhere)
  const gndet::Tensor bitmap = rle_decode(rle);
  int64_t set = 0;
  for (int64_t i = 0; i < h * w; ++i) set += bitmap.data<uint8_t>()[i];
  GNDET_FUZZ_ASSERT(set == rle_area(rle));
  rle_to_box(rle);
}
