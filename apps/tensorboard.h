// TensorBoard event files without TensorFlow or protobuf: `gndet train` writes
// <work_dir>/tf_logs/events.out.tfevents.<unix time>.<host>.<pid>, which `tensorboard --logdir
// <work_dir>/tf_logs` reads.
//
// File = TFRecords, each:  uint64 length (little endian) | uint32 masked_crc32c(length bytes) |
//                          data | uint32 masked_crc32c(data)
// with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (CRC-32C, Castagnoli polynomial).
// data = a tensorflow.Event protobuf (tensorflow/core/util/event.proto), encoded by hand:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }                      (tensorflow/core/framework/summary.proto)
//   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
//   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
// The first record is an Event with file_version "brain.Event:2"; every record is flushed as it is
// written, so TensorBoard can follow a run live and a crash loses at most the last record.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "tensor/tensor.h"

namespace gndet::app {

uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);  // crc32c("123456789") = 0xE3069283
uint32_t masked_crc32c(const void* data, size_t size);

class TensorBoardWriter {
 public:
  // Creates `dir` if needed and opens a new event file there.
  explicit TensorBoardWriter(const std::string& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void scalar(const std::string& tag, double value, int64_t step);
  // image: (H, W, 3) uint8 RGB, stored as PNG.
  void image(const std::string& tag, const Tensor& image, int64_t step);

  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::FILE* file_ = nullptr;
  std::string path_;
};

}  // namespace gndet::app
