// Raw deflate through stb_image's zlib decoder (stb is already a dependency for images).
// data/image.cpp compiles stb with STB_IMAGE_STATIC (its functions are static there, so they cannot
// clash with a system libstb), which keeps them out of reach of other files; this translation unit
// therefore compiles its own static copy, limited to the PNG path (the one that carries zlib).
#include <climits>
#include <cstdlib>
#include <memory>

#include "nn/checkpoint_io/zip.h"
#include "tensor/error.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace gndet::nn::ckpt {

std::string inflate_raw(std::string_view compressed, uint64_t out_size, const std::string& what) {
  // stb's decoder takes int lengths.
  GNDET_CHECK(compressed.size() < static_cast<uint64_t>(INT_MAX) && out_size < static_cast<uint64_t>(INT_MAX), what,
              ": deflated entry of ", out_size, " bytes is too large for the inflater (limit 2 GiB); store it "
              "uncompressed (torch.save does)");
  // Deflate cannot expand more than 1032:1 (a 258-byte match in at most 2 bits, RFC 1951), so a
  // directory claiming more is corrupt or hostile: refuse it before allocating (a 2 KB file asked
  // for 1 GiB; found by the checkpoint fuzz target).
  GNDET_CHECK(out_size <= 1032 * static_cast<uint64_t>(compressed.size()) + 64, what, ": the directory says ", out_size,
              " bytes inflate from only ", compressed.size(), ", more than deflate can expand (corrupt archive)");
  // One spare byte: a stream longer than the directory says fills it (or fails) instead of growing.
  std::string out(out_size + 1, '\0');
  // stb 2.27 (Debian's libstb-dev) refuses to decode a symbol once fewer than 16 bits are left in
  // the input ("bad huffman code"), which a raw deflate stream always reaches at its end (in a PNG
  // the zlib checksum follows). Zero bytes after the stream avoid it: the decoder stops at the final
  // block, and a stream that is really truncated still fails the size and CRC checks.
  std::string padded(compressed);
  padded.append(8, '\0');
  const int n = stbi_zlib_decode_noheader_buffer(out.data(), static_cast<int>(out_size + 1), padded.data(),
                                                 static_cast<int>(padded.size()));
  GNDET_CHECK(n >= 0, what, ": corrupt deflate stream");
  GNDET_CHECK(static_cast<uint64_t>(n) == out_size, what, ": deflate stream gives ", n, " bytes, the directory says ",
              out_size);
  out.resize(out_size);
  return out;
}

}  // namespace gndet::nn::ckpt
