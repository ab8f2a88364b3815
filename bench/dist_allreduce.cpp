// Data-parallel costs on CPU ranks; run under mpirun (bench/dist_scaling.sh runs every part).
//
//   dist_allreduce allreduce [CONFIG] [--reps N]
//       gradients of CONFIG's model (default: R-50 GN Mask R-CNN, 45.7 M trainable floats) filled
//       with random numbers and averaged by dist::GradientAverager (25 MB buckets, as in
//       training), against one MPI_Allreduce of a float buffer of the same size in the same run
//   dist_allreduce throughput CONFIG ITERS [KEY=VALUE...]
//       ITERS training steps per rank (after 2 warm-up steps) with averaged gradients: images/s
//       over all ranks
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "apps/experiment.h"
#include "dist/grad_sync.h"
#include "gndet_config.h"
#include "nn/optim.h"
#include "tensor/factory.h"

using namespace gndet;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int allreduce(const std::shared_ptr<dist::Communicator>& comm, const std::string& config, int reps) {
  const Json cfg = app::load_run_config(config, {});
  auto model = app::build_model(cfg, 0, kCPU, nullptr);
  Tensors trainable;
  Generator gen(static_cast<uint64_t>(comm->rank()) + 1);
  for (const Tensor& p : model->parameters()) {
    if (!p.requires_grad()) continue;
    Tensor g = empty(p.shape(), kFloat32);
    gen.fill_uniform(g.data<float>(), g.numel());
    Tensor handle = p;
    handle.set_grad(g);
    trainable.push_back(p);
  }
  dist::GradientAverager averager(comm, trainable);
  std::vector<float> flat(static_cast<size_t>(averager.num_floats()), 1.0f);
  std::vector<double> ours, mpi;
  for (int r = 0; r < reps + 1; ++r) {  // the first round warms up (page faults, MPI buffers)
    comm->barrier();
    auto t0 = Clock::now();
    averager.average();
    const double a = since(t0);
    comm->barrier();
    t0 = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, flat.data(), static_cast<int>(flat.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const double b = since(t0);
    if (r > 0) ours.push_back(a), mpi.push_back(b);
  }
  if (comm->is_main()) {
    const double n = static_cast<double>(averager.num_floats()), world = comm->world_size();
    const double t_ours = median(ours), t_mpi = median(mpi);
    // Bus bandwidth as nccl-tests define it: bytes / time x 2 (n - 1) / n.
    auto busbw = [&](double t) { return n * 4 / t * 2 * (world - 1) / world / 1e9; };
    std::printf("all-reduce of %s's gradients: %.1f M floats in %lld buckets, %d ranks, median of %d\n", config.c_str(),
                n / 1e6, static_cast<long long>(averager.num_buckets()), comm->world_size(), reps);
    std::printf("  GradientAverager (pack, MPI_Allreduce per bucket, unpack, /N): %.3f s  (bus %.2f GB/s)\n", t_ours,
                busbw(t_ours));
    std::printf("  MPI_Allreduce of one %.1f M float buffer:                      %.3f s  (bus %.2f GB/s)\n", n / 1e6,
                t_mpi, busbw(t_mpi));
    std::printf("  ratio GradientAverager / MPI_Allreduce: %.2f\n", t_ours / t_mpi);
  }
  return 0;
}

int throughput(const std::shared_ptr<dist::Communicator>& comm, const std::string& config, int iters,
               const std::vector<std::string>& overrides) {
  const Json cfg = app::load_run_config(config, overrides);
  const auto dataset = app::build_dataset(cfg, "train_dataloader");
  auto model = app::build_model(cfg, 0, kCPU, nullptr);
  model->train();
  nn::SGDOptions sgd;
  sgd.lr = 0.001;
  sgd.momentum = 0.9;
  nn::SGD optimizer(nn::make_param_groups(*model, {}), sgd);
  data::LoaderOptions o = app::loader_options(cfg, "train_dataloader", 0);
  o.rank = comm->rank();
  o.world_size = comm->world_size();
  data::DataLoader loader(dataset, o);
  Tensors trainable;
  for (const Tensor& p : model->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  dist::GradientAverager averager(comm, trainable);
  Generator gen(1);
  int64_t epoch = 0, images = 0;
  loader.start_epoch(epoch);
  Clock::time_point t0;
  for (int step = 0; step < iters + 2; ++step) {
    if (step == 2) {
      comm->barrier();
      t0 = Clock::now();
      images = 0;
    }
    std::optional<data::Batch> batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    const app::ModelInputs in = app::to_model_inputs(*batch, kCPU, true);
    optimizer.zero_grad();
    total_loss(model->loss(in.images, in.targets, in.infos, gen)).backward();
    averager.average();
    optimizer.step();
    images += static_cast<int64_t>(in.infos.size());
  }
  comm->barrier();
  const double s = since(t0);
  Tensor all = full({1}, static_cast<double>(images), kFloat32);
  comm->all_reduce_sum(all);
  if (comm->is_main()) {
    std::printf("throughput of %s: %d rank(s), batch %lld per rank, %d steps: %.0f images in %.1f s = %.3g images/s\n",
                config.c_str(), comm->world_size(), static_cast<long long>(o.batch_size), iters, all.item<double>(), s,
                all.item<double>() / s);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto comm = dist::init_communicator("mpi");
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "allreduce") {
      std::string config = std::string(GNDET_SOURCE_DIR) + "/configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json";
      int reps = 5;
      for (size_t i = 1; i < args.size(); ++i) {
        if (args[i] == "--reps" && i + 1 < args.size()) {
          reps = std::stoi(args[++i]);
        } else {
          config = args[i];
        }
      }
      return allreduce(comm, config, reps);
    }
    if (args.size() >= 3 && args[0] == "throughput") {
      return throughput(comm, args[1], std::stoi(args[2]), {args.begin() + 3, args.end()});
    }
    std::fprintf(stderr, "usage: mpirun -np N dist_allreduce allreduce [CONFIG] [--reps N] | throughput CONFIG ITERS [KEY=VALUE...]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_allreduce: %s\n", e.what());
    return 1;
  }
}
