// What data parallelism does to a model: the same weights on every rank at the start, and after
// every backward the mean of the ranks' gradients (PyTorch DistributedDataParallel's semantics:
// each rank's loss is its own batch's loss; gradients are averaged).
//
// Only what requires a gradient is reduced: frozen layers have nothing to synchronise, and
// GroupNorm has no batch statistics to synchronise (no SyncBN is needed).
#pragma once

#include "dist/communicator.h"
#include "nn/module.h"

namespace gndet::dist {

// Every parameter and buffer of `model` takes root's values.
void broadcast_module(Communicator& comm, const nn::Module& model, int root = 0);

class GradientAverager {
 public:
  // `params`: the trainable parameters, all on one device. Buckets of about bucket_bytes each
  // (DDP's 25 MB) are filled in reverse registration order, about the order backward produces
  // gradients in, so that a GPU communicator reduces one bucket while the next one is packed.
  GradientAverager(std::shared_ptr<Communicator> comm, Tensors params, int64_t bucket_bytes = 25ll << 20);

  // After backward: every gradient becomes its mean over the ranks. A parameter whose gradient
  // no rank produced keeps no gradient (the optimizer then skips it, as in one process); one that
  // only some ranks produced counts as zero on the others (DDP with find_unused_parameters).
  // With one rank this does nothing. The averaged gradients are views of this object's buckets,
  // valid until the next average(): the training loop's zero_grad + backward replace them first
  // (a caller that keeps a gradient across steps must clone it).
  void average();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t num_floats() const { return num_floats_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t floats = 0;          // gradient elements, followed by one "produced" count per parameter
    Tensor flat;
  };
  std::shared_ptr<Communicator> comm_;
  Tensors params_;
  std::vector<Bucket> buckets_;
  int64_t num_floats_ = 0;
};

}  // namespace gndet::dist
