#include "detection/resnet.h"

#include <cmath>

#include "tensor/grad_mode.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/pool.h"

namespace gndet {
namespace {

struct BlockSpec {
  int64_t inplanes, planes, stride;
  bool caffe_style;
  NormSpec norm;
  bool ws;
  int64_t groups, base_width, base_channels;
};

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups, bool ws,
                                 Generator& gen) {
  nn::Conv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel = {k, k};
  o.stride = {stride, stride};
  o.padding = {k / 2, k / 2};
  o.groups = groups;
  o.bias = false;  // every ResNet conv is followed by a norm
  o.weight_standardization = ws;
  return std::make_shared<nn::Conv2d>(o, gen);
}

// Downsampling shortcut: 1x1 conv with the block's stride, then a norm. Children "0" and "1".
std::shared_ptr<nn::Sequential> shortcut(const BlockSpec& s, int64_t out, Generator& gen) {
  auto seq = std::make_shared<nn::Sequential>();
  seq->push_back(conv(s.inplanes, out, 1, s.stride, 1, s.ws, gen));
  seq->push_back(make_norm(s.norm, out));
  return seq;
}

class BasicBlock : public nn::UnaryModule {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(const BlockSpec& s, Generator& gen) {
    const std::string n = s.norm.abbr();
    conv1_ = register_module("conv1", conv(s.inplanes, s.planes, 3, s.stride, 1, s.ws, gen));
    norm1_ = register_module(n + "1", make_norm(s.norm, s.planes));
    conv2_ = register_module("conv2", conv(s.planes, s.planes, 3, 1, 1, s.ws, gen));
    norm2_ = register_module(n + "2", make_norm(s.norm, s.planes));
    if (s.stride != 1 || s.inplanes != s.planes) downsample_ = register_module("downsample", shortcut(s, s.planes, gen));
  }
  Tensor forward(const Tensor& x) override {
    nn::ModuleScope scope(this);  // gndet graph: label the ops below with this block's name
    Tensor out = nn::norm_relu(*norm1_, conv1_->forward(x));
    out = norm2_->forward(conv2_->forward(out));
    return add_relu(out, downsample_ ? downsample_->forward(x) : x);
  }
  nn::UnaryModule& last_norm() { return *norm2_; }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::UnaryModule> norm1_, norm2_;
  std::shared_ptr<nn::Sequential> downsample_;
};

class Bottleneck : public nn::UnaryModule {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(const BlockSpec& s, Generator& gen) {
    const std::string n = s.norm.abbr();
    // ResNeXt widens the 3x3 conv: floor(planes * base_width / base_channels) * groups.
    const int64_t width = s.groups == 1 ? s.planes
                                        : static_cast<int64_t>(std::floor(static_cast<double>(s.planes) *
                                                                          static_cast<double>(s.base_width) /
                                                                          static_cast<double>(s.base_channels))) *
                                              s.groups;
    const int64_t stride1 = s.caffe_style ? s.stride : 1, stride2 = s.caffe_style ? 1 : s.stride;
    conv1_ = register_module("conv1", conv(s.inplanes, width, 1, stride1, 1, s.ws, gen));
    norm1_ = register_module(n + "1", make_norm(s.norm, width));
    conv2_ = register_module("conv2", conv(width, width, 3, stride2, s.groups, s.ws, gen));
    norm2_ = register_module(n + "2", make_norm(s.norm, width));
    conv3_ = register_module("conv3", conv(width, s.planes * kExpansion, 1, 1, 1, s.ws, gen));
    norm3_ = register_module(n + "3", make_norm(s.norm, s.planes * kExpansion));
    if (s.stride != 1 || s.inplanes != s.planes * kExpansion) {
      downsample_ = register_module("downsample", shortcut(s, s.planes * kExpansion, gen));
    }
  }
  Tensor forward(const Tensor& x) override {
    nn::ModuleScope scope(this);
    Tensor out = nn::norm_relu(*norm1_, conv1_->forward(x));
    out = nn::norm_relu(*norm2_, conv2_->forward(out));
    out = norm3_->forward(conv3_->forward(out));
    return add_relu(out, downsample_ ? downsample_->forward(x) : x);
  }
  nn::UnaryModule& last_norm() { return *norm3_; }

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<nn::UnaryModule> norm1_, norm2_, norm3_;
  std::shared_ptr<nn::Sequential> downsample_;
};

// Sets a norm layer's scale to 0 (GroupNorm parameter or FrozenBN buffer named "weight").
void zero_scale(nn::Module& norm) {
  for (auto& [name, t] : norm.state_dict()) {
    if (name == "weight") nn::init::constant(t, 0.0);
  }
}

template <class Block>
std::shared_ptr<nn::Sequential> make_stage(BlockSpec s, int64_t blocks, bool zero_init, Generator& gen) {
  auto stage = std::make_shared<nn::Sequential>();
  for (int64_t b = 0; b < blocks; ++b) {
    auto block = std::make_shared<Block>(s, gen);
    if (zero_init) zero_scale(block->last_norm());
    stage->push_back(block);
    s.inplanes = s.planes * Block::kExpansion;
    s.stride = 1;
  }
  return stage;
}

}  // namespace

ResNetOptions ResNetOptions::from_config(const ConfigNode& cfg) {
  const std::string type = cfg.type({"ResNet", "ResNeXt"});
  // norm_eval: frozen statistics, what gndet's FrozenBN always does (GN has none); init_cfg: read by
  // the program that loads the pretrained weights (apps/experiment.cpp).
  cfg.check_keys({"type", "depth", "out_indices", "frozen_stages", "style", "norm_cfg", "conv_cfg", "in_channels", "stem_channels", "base_channels", "zero_init_residual", "groups", "base_width", "num_stages", "deep_stem", "norm_eval", "init_cfg"});
  ResNetOptions o;
  o.depth = cfg["depth"].as_int();
  if (cfg.has("out_indices")) o.out_indices = cfg["out_indices"].as_int_list();
  o.frozen_stages = cfg.get_int("frozen_stages", -1);
  const std::string style = cfg.get_string("style", "pytorch");
  GNDET_CHECK(style == "pytorch" || style == "caffe", "config ", cfg.path(), ".style: '", style,
              "' (expected pytorch or caffe)");
  o.caffe_style = style == "caffe";
  o.norm = norm_from_config(cfg);
  if (o.norm.type == nn::NormType::None) o.norm.type = nn::NormType::FrozenBatchNorm;  // mmdet's default is BN
  o.ws = ws_from_config(cfg);
  o.in_channels = cfg.get_int("in_channels", 3);
  o.stem_channels = cfg.get_int("stem_channels", 64);
  o.base_channels = cfg.get_int("base_channels", 64);
  o.zero_init_residual = cfg.get_bool("zero_init_residual", true);
  if (type == "ResNeXt") {
    o.groups = cfg["groups"].as_int();
    o.base_width = cfg["base_width"].as_int();
  }
  GNDET_CHECK(cfg.get_int("num_stages", 4) == 4, "config ", cfg.path(), ".num_stages: only 4 stages are supported");
  GNDET_CHECK(!cfg.get_bool("deep_stem", false), "config ", cfg.path(), ".deep_stem is not supported");
  return o;
}

ResNet::ResNet(const ResNetOptions& o, Generator& gen) : options_(o) {
  struct Arch {
    int64_t depth;
    bool bottleneck;
    std::vector<int64_t> blocks;
  };
  static const Arch archs[] = {{18, false, {2, 2, 2, 2}},
                               {34, false, {3, 4, 6, 3}},
                               {50, true, {3, 4, 6, 3}},
                               {101, true, {3, 4, 23, 3}},
                               {152, true, {3, 8, 36, 3}}};
  const Arch* arch = nullptr;
  for (const Arch& a : archs) {
    if (a.depth == o.depth) arch = &a;
  }
  GNDET_CHECK(arch != nullptr, "ResNet: depth ", o.depth, " is not one of 18, 34, 50, 101, 152");
  GNDET_CHECK(o.groups == 1 || arch->bottleneck, "ResNeXt needs a bottleneck depth (50, 101, 152), got ", o.depth);
  for (int64_t i : o.out_indices) GNDET_CHECK(i >= 0 && i < 4, "ResNet: out_indices must lie in 0..3, got ", i);

  nn::Conv2dOptions stem;
  stem.in_channels = o.in_channels;
  stem.out_channels = o.stem_channels;
  stem.kernel = {7, 7};
  stem.stride = {2, 2};
  stem.padding = {3, 3};
  stem.bias = false;
  stem.weight_standardization = o.ws;
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(stem, gen));
  norm1_ = register_module(o.norm.abbr() + "1", make_norm(o.norm, o.stem_channels));

  BlockSpec s{o.stem_channels, o.base_channels, 1, o.caffe_style, o.norm, o.ws, o.groups, o.base_width, o.base_channels};
  const int64_t expansion = arch->bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  for (int64_t i = 0; i < 4; ++i) {
    s.planes = o.base_channels << i;
    s.stride = i == 0 ? 1 : 2;
    auto stage = arch->bottleneck ? make_stage<Bottleneck>(s, arch->blocks[i], o.zero_init_residual, gen)
                                  : make_stage<BasicBlock>(s, arch->blocks[i], o.zero_init_residual, gen);
    layers_.push_back(register_module("layer" + std::to_string(i + 1), stage));
    s.inplanes = s.planes * expansion;
    stage_channels_.push_back(s.inplanes);
  }

  // mmdetection's ResNet init: kaiming_normal(fan_out) for every conv (norms start at 1 / 0).
  for (auto& [name, p] : named_parameters()) {
    if (p.dim() == 4) nn::init::kaiming_normal(p, gen, nn::init::FanMode::FanOut, nn::init::Nonlinearity::ReLU);
  }
  // Frozen stages: the stem, then layer1..frozen_stages.
  if (o.frozen_stages >= 0) {
    conv1_->freeze();
    norm1_->freeze();
    for (int64_t i = 0; i < std::min<int64_t>(o.frozen_stages, 4); ++i) layers_[i]->freeze();
  }
}

std::vector<Tensor> ResNet::forward(const Tensor& x) {
  GNDET_CHECK(x.dim() == 4 && x.size(1) == options_.in_channels, "ResNet: expected images (N, ", options_.in_channels,
              ", H, W), got ", shape_str(x.shape()));
  nn::ModuleScope scope(this);
  Tensor h = stem(x);
  std::vector<Tensor> outs;
  for (int64_t i = 0; i < 4; ++i) {
    h = layers_[i]->forward(h);
    if (std::find(options_.out_indices.begin(), options_.out_indices.end(), i) != options_.out_indices.end()) {
      outs.push_back(h);
    }
  }
  return outs;
}

Tensor ResNet::stem(const Tensor& x) {
  return max_pool2d(nn::norm_relu(*norm1_, conv1_->forward(x)), {3, 3}, {2, 2}, {1, 1});
}

std::vector<int64_t> ResNet::out_channels() const {
  std::vector<int64_t> c;
  for (int64_t i : options_.out_indices) c.push_back(stage_channels_[i]);
  return c;
}

}  // namespace gndet
