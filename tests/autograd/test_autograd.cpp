#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("backward from a scalar fills leaf gradients", "[autograd]") {
  Tensor x = from_data<double>({1, 2, 3}).set_requires_grad();
  Tensor y = sum(x * x * 3.0);  // dy/dx = 6x
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 12, 18});
  CHECK(y.grad_fn() != nullptr);
  CHECK(x.is_leaf());
}

TEST_CASE("backward with a given gradient", "[autograd]") {
  Tensor x = from_data<double>({1, 2}).set_requires_grad();
  Tensor y = exp(x * 0.0) * x;  // y = x
  y.backward(from_data<double>({10, 20}));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{10, 20});
}

TEST_CASE("gradients accumulate across two backward calls", "[autograd]") {
  Tensor x = from_data<double>({1, -2}).set_requires_grad();
  sum(x * 2.0).backward();
  sum(x * x).backward();  // 2 + 2x
  CHECK(x.grad().to_vector<double>() == std::vector<double>{4, -2});
  x.set_grad(Tensor());
  sum(x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 1});
}

TEST_CASE("gradients are summed in place only where nothing else can see them", "[autograd]") {
  // A leaf's gradient that only the leaf holds takes the next backward's sum in its own memory.
  Tensor x = from_data<double>({1, -2, 3}).set_requires_grad();
  sum(x * 2.0).backward();
  const void* first = x.grad().raw_data();
  sum(x * x).backward();  // 2 + 2x
  CHECK(x.grad().to_vector<double>() == std::vector<double>{4, -2, 8});
  CHECK(x.grad().raw_data() == first);

  // A gradient the caller holds, or a view of it, never changes under them: the sum is new.
  const Tensor held = x.grad();
  const Tensor view = x.grad().narrow(0, 1, 2);
  sum(x).backward();
  CHECK(held.to_vector<double>() == std::vector<double>{4, -2, 8});
  CHECK(view.to_vector<double>() == std::vector<double>{-2, 8});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, -1, 9});
  CHECK(!x.grad().shares_storage(held));

  // Inside one backward: x feeds add's two inputs, which hand one tensor to both paths, and a
  // product; the sums are right whichever of them may be written in place.
  Tensor y = from_data<double>({0.5, -1.5}).set_requires_grad();
  Tensor s = y + y;
  sum(s * y + s).backward();  // d/dy (2y^2 + 2y) = 4y + 2
  CHECK(y.grad().to_vector<double>() == std::vector<double>{4.0, -4.0});
}

TEST_CASE("broadcasting backward reduces to each input's shape", "[autograd]") {
  Tensor a = ones({2, 3}, kFloat64).set_requires_grad();
  Tensor b = from_data<double>({1, 2, 3}).set_requires_grad();     // (3) broadcast over rows
  Tensor c = from_data<double>({5, 7}, {2, 1}).set_requires_grad();  // (2,1) broadcast over columns
  sum(a * b + c).backward();
  CHECK(b.grad().shape() == Shape{3});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  CHECK(c.grad().shape() == Shape{2, 1});
  CHECK(c.grad().to_vector<double>() == std::vector<double>{3, 3});
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
}

TEST_CASE("gradients flow through views into the base", "[autograd]") {
  Tensor x = arange(0.0, 6.0, 1.0, kFloat64).set_requires_grad();
  Tensor m = x.reshape({2, 3});
  Tensor y = sum(m.t().select(0, 1) * 10.0) + sum(m.narrow(1, 2, 1));  // column 1 of m x10, plus column 2
  y.backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 10, 1, 0, 10, 1});
}

TEST_CASE("the gradients of two leaves never share memory", "[autograd]") {
  Tensor a = zeros({3}, kFloat64).set_requires_grad();
  Tensor b = zeros({3}, kFloat64).set_requires_grad();
  sum(a + b).backward();  // add's backward hands one tensor to both
  CHECK(!a.grad().shares_storage(b.grad()));
}

TEST_CASE("no-grad guard stops recording", "[autograd]") {
  Tensor x = ones({2}, kFloat64).set_requires_grad();
  {
    autograd::NoGradGuard guard;
    CHECK(!autograd::grad_enabled());
    Tensor y = x * 2.0;
    CHECK(!y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("does not require grad"));
  }
  CHECK(autograd::grad_enabled());
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("backward on a tensor that does not require grad is a clear error", "[autograd][errors]") {
  Tensor x = ones({2});
  CHECK_THROWS_WITH(sum(x).backward(), Catch::Contains("does not require grad and has no grad_fn"));
  Tensor y = ones({2}, kFloat64).set_requires_grad() * 2.0;
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("only for a one-element output"));
  CHECK_THROWS_WITH(y.backward(ones({3}, kFloat64)), Catch::Contains("does not match output"));
}

TEST_CASE("a freed graph cannot be run twice unless retained", "[autograd][errors]") {
  Tensor x = ones({2}, kFloat64).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward();
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("second time") && Catch::Contains("retain_graph"));
  Tensor z = sum(exp(x));
  x.set_grad(Tensor());
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward();
  CHECK(x.grad().to_vector<double>()[0] == Approx(2 * std::exp(1.0)).epsilon(1e-12));
}

TEST_CASE("modifying a saved tensor in place is caught at backward", "[autograd][errors]") {
  Tensor w = ones({3}, kFloat64).set_requires_grad();
  Tensor s = exp(w);         // exp saves s
  Tensor out = sum(s * s);   // mul saves s too
  {
    autograd::NoGradGuard g;
    s.detach().fill_(2.0);   // shares s's storage, so it bumps s's version
  }
  CHECK_THROWS_WITH(out.backward(), Catch::Contains("modified in place"));
}

TEST_CASE("in-place writes to tensors that require grad are refused", "[autograd][errors]") {
  Tensor x = ones({2}).set_requires_grad();
  CHECK_THROWS_WITH(x.fill_(0.0), Catch::Contains("in-place write to a tensor that requires grad"));
  CHECK_THROWS_WITH(add_(x, ones({2})), Catch::Contains("requires grad"));
  autograd::NoGradGuard g;
  CHECK_NOTHROW(x.fill_(0.0));
}

TEST_CASE("a leaf reached twice through different paths sums its gradients", "[autograd]") {
  Tensor x = from_data<double>({2.0}).set_requires_grad();
  Tensor a = x * 3.0, b = exp(x), c = a * b;  // c = 3x e^x -> dc/dx = 3e^x (1 + x)
  c.backward();
  CHECK(x.grad().item<double>() == Approx(3 * std::exp(2.0) * 3.0).epsilon(1e-12));
}

TEST_CASE("gradcheck detects a wrong backward and reports the worst element", "[autograd]") {
  static const autograd::OpDef bad("test_wrong_square");
  auto wrong_square = [](const Tensors& in) {
    const Tensor& x = in[0];
    Tensor y;
    {
      autograd::NoGradGuard g;
      y = x.detach() * x.detach();
    }
    autograd::record(bad, {x}, {y}, [sx = autograd::Saved(x)](const Tensors& g) {
      return Tensors{g[0] * sx.get() * 3.0};  // should be 2x
    });
    return y;
  };
  Tensor x = from_data<double>({1.0, 2.0, -0.5}).set_requires_grad();
  const autograd::GradcheckResult r = autograd::gradcheck(wrong_square, {x});
  CHECK_FALSE(r.passed);
  CHECK(r.max_abs_error > 0.1);
  CHECK(r.worst.find("input 0") != std::string::npos);
  const autograd::GradcheckResult ok = autograd::gradcheck([](const Tensors& in) { return in[0] * in[0]; }, {x});
  CHECK(ok.passed);
  CHECK(ok.max_abs_error < 1e-8);
  CHECK(ok.elements == 3);
}

TEST_CASE("gradcheck explains an op without backward", "[autograd]") {
  Tensor x = from_data<double>({1.0}).set_requires_grad();
  const auto r = autograd::gradcheck([](const Tensors& in) { return in[0].detach() * 2.0; }, {x});
  CHECK_FALSE(r.passed);
  CHECK(r.error.find("does not require grad") != std::string::npos);
  const auto f32 = autograd::gradcheck([](const Tensors& in) { return in[0]; }, {ones({2}).set_requires_grad()});
  CHECK(f32.error.find("float64") != std::string::npos);
}

TEST_CASE("post-accumulate hooks: once per backward with the total gradient, as soon as it is final", "[autograd]") {
  // a -> identity op that logs when its backward runs -> y; z = sum(y * b + b * b). The gradient of
  // b is complete once the last node using b has run, before y's backward (which leads to a): its
  // accumulator must not wait for the rest of the graph (data parallelism starts reducing there).
  static const autograd::OpDef logged("test_logged_identity");
  std::vector<std::string> events;
  Tensor a = from_data<double>({1, 2}).set_requires_grad();
  Tensor b = from_data<double>({3, -1}).set_requires_grad();
  Tensor unused = from_data<double>({5}).set_requires_grad();
  // b's accumulator is made now, so it is older than the identity node: creation order alone
  // would run it after that node, at the end of backward.
  (void)(b * 0.0);
  Tensor y;
  {
    autograd::NoGradGuard g;
    y = a.detach() * 1.0;
  }
  autograd::record(logged, {a}, {y}, [&events](const Tensors& g) {
    events.push_back("identity backward");
    return Tensors{g[0]};
  });
  std::vector<double> b_grad_seen;
  const uint64_t hb = autograd::add_post_accumulate_hook(b, [&] {
    events.push_back("b final");
    b_grad_seen = b.grad().to_vector<double>();
  });
  autograd::add_post_accumulate_hook(a, [&] { events.push_back("a final"); });
  autograd::add_post_accumulate_hook(unused, [&] { events.push_back("unused final"); });
  Tensor z = sum(y * b + b * b);
  z.backward();
  // b is used twice: one hook call, with the sum y + 2b = (1 + 6, 2 - 2).
  CHECK(events == std::vector<std::string>{"b final", "identity backward", "a final"});
  CHECK(b_grad_seen == std::vector<double>{7, 0});
  // A second backward: the hook sees the accumulated total; a removed hook no longer runs.
  events.clear();
  sum(b * 2.0).backward();
  CHECK(b_grad_seen == std::vector<double>{9, 2});
  autograd::remove_post_accumulate_hook(b, hb);
  sum(b * 2.0).backward();
  CHECK(b_grad_seen == std::vector<double>{9, 2});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{11, 4});
  CHECK_THROWS_WITH(autograd::add_post_accumulate_hook(y, [] {}), Catch::Contains("leaf"));
}
