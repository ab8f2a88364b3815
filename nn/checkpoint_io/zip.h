// A small ZIP archive reader and writer, enough for PyTorch checkpoints (torch.save since 1.6 writes
// a ZIP whose entries are stored, 64-byte aligned; a re-zipped file may hold deflated entries).
//
// Reader: finds the end-of-central-directory record, reads the central directory, and extracts
// entries that are stored (method 0) or deflated (method 8), checking each one's CRC-32.
// ZIP64 archives (> 4 GiB or > 65535 entries), encryption and other methods are refused with an
// error naming the archive and the entry. Every offset and length read from the file is checked
// against the buffer before it is used.
// Writer: stored entries only, data aligned to 64 bytes as torch does (padding in an extra field).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gndet::nn::ckpt {

uint32_t crc32(std::string_view bytes);

// Raw deflate (RFC 1951, no zlib header) into exactly `out_size` bytes; throws gndet::Error naming
// `what` when the stream is corrupt or does not inflate to that size.
std::string inflate_raw(std::string_view compressed, uint64_t out_size, const std::string& what);

struct ZipEntry {
  std::string name;
  uint16_t method = 0;          // 0 stored, 8 deflated
  uint32_t crc = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;            // uncompressed
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // `bytes` must outlive the reader; `what` names the archive in messages (usually its path).
  ZipReader(std::string_view bytes, std::string what);
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // null when absent
  // The entry's uncompressed bytes, CRC-checked.
  std::string read(const ZipEntry& entry) const;
  std::string read(const std::string& name) const;  // throws when absent
  const std::string& what() const { return what_; }

 private:
  std::string_view bytes_;
  std::string what_;
  std::vector<ZipEntry> entries_;
};

// True when `bytes` starts like a ZIP archive (local file header signature).
bool looks_like_zip(std::string_view bytes);

class ZipWriter {
 public:
  void add(const std::string& name, std::string_view data);  // stored, data aligned to 64 bytes
  std::string finish();                                       // the whole archive

 private:
  std::string out_;
  std::vector<ZipEntry> entries_;
};

}  // namespace gndet::nn::ckpt
