#include "dist/grad_sync.h"

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"

namespace gndet::dist {

void broadcast_module(Communicator& comm, const nn::Module& model, int root) {
  if (comm.world_size() == 1) return;
  autograd::NoGradGuard no_grad;
  for (const auto& [name, t] : model.state_dict()) {
    GNDET_CHECK(t.is_contiguous(), "broadcast_module: ", name, " is not contiguous");
    Tensor data = t.detach();  // same storage: written in place, the module keeps its handle
    comm.broadcast(data, root);
  }
}

GradientAverager::GradientAverager(std::shared_ptr<Communicator> comm, Tensors params, int64_t bucket_bytes)
    : comm_(std::move(comm)), params_(std::move(params)) {
  GNDET_CHECK(comm_ != nullptr, "GradientAverager: no communicator");
  GNDET_CHECK(bucket_bytes > 0, "GradientAverager: bucket_bytes must be positive, got ", bucket_bytes);
  const int64_t bucket_floats = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    GNDET_CHECK(p.dtype() == kFloat32, "GradientAverager: parameters must be float32, parameter ", k, " is ",
                dtype_name(p.dtype()));
    GNDET_CHECK(p.device() == params_.front().device(), "GradientAverager: parameters on several devices (",
                p.device().str(), " and ", params_.front().device().str(), ")");
    if (buckets_.empty() || (buckets_.back().floats + p.numel() > bucket_floats && !buckets_.back().params.empty())) {
      buckets_.emplace_back();
    }
    buckets_.back().params.push_back(k);
    buckets_.back().floats += p.numel();
    num_floats_ += p.numel();
  }
  if (comm_->world_size() == 1) return;  // nothing to reduce: no buffers
  for (Bucket& b : buckets_) {
    b.flat = zeros({b.floats + static_cast<int64_t>(b.params.size())}, TensorOptions{kFloat32, params_.front().device()});
  }
}

void GradientAverager::average() {
  if (comm_->world_size() == 1) return;
  autograd::NoGradGuard no_grad;
  // Pack every bucket and queue its sum; a GPU communicator reduces bucket k while k + 1 is packed.
  for (Bucket& b : buckets_) {
    int64_t at = 0;
    const int64_t flags = b.floats;
    std::vector<float> produced(b.params.size(), 0.0f);
    for (size_t j = 0; j < b.params.size(); ++j) {
      const Tensor& p = params_[b.params[j]];
      Tensor slot = b.flat.narrow(0, at, p.numel());
      const Tensor g = p.grad();
      if (g.defined()) {
        slot.copy_(g.reshape({-1}));
        produced[j] = 1.0f;
      } else {
        slot.zero_();
      }
      at += p.numel();
    }
    Tensor flag_slots = b.flat.narrow(0, flags, static_cast<int64_t>(b.params.size()));
    flag_slots.copy_(from_data(produced, {static_cast<int64_t>(produced.size())}));
    comm_->all_reduce_sum(b.flat, /*queued=*/true);
  }
  comm_->wait_queued();
  const double inv_world = 1.0 / comm_->world_size();
  for (Bucket& b : buckets_) {
    // Counts of small integers: exact in float32.
    const std::vector<float> produced =
        b.flat.narrow(0, b.floats, static_cast<int64_t>(b.params.size())).to_vector<float>();
    Tensor sums = b.flat.narrow(0, 0, b.floats);
    mul_(sums, inv_world);  // DDP divides the sum by the world size
    // The gradients become views of the bucket (DDP's gradient_as_bucket_view): no copy back.
    // The next average() overwrites the bucket only after zero_grad and backward have replaced
    // these gradients with new tensors.
    int64_t at = 0;
    for (size_t j = 0; j < b.params.size(); ++j) {
      Tensor p = params_[b.params[j]];
      const int64_t n = p.numel();
      if (produced[j] > 0.0f) p.set_grad(b.flat.narrow(0, at, n).view(p.shape()));
      at += n;
    }
  }
}

}  // namespace gndet::dist
