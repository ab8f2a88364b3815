// The training-curve reader: scalars.json collects every run in a work dir, and the plot must
// show the latest run's path, not a line jumping back across runs.
#include <fstream>

#include "apps/canvas.h"
#include "apps/plot.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;

namespace {

std::vector<double> xs(const app::Series& s) {
  std::vector<double> out;
  for (const auto& [x, y] : s.points) out.push_back(x);
  return out;
}

}  // namespace

TEST_CASE("training curves keep the latest run: from scratch, resumed, and torn lines", "[apps]") {
  const test::TempDir dir("plot");
  const std::string path = dir.str() + "/scalars.json";
  {
    std::ofstream f(path);
    // run 1: from scratch, 4 logged steps, two validations
    f << R"({"mode":"start","step":0,"epoch":0})" << "\n";
    for (int s : {10, 20, 30, 40}) f << R"({"mode":"train","step":)" << s << R"(,"loss":)" << 5 - s / 10 << "}\n";
    f << R"({"mode":"val","epoch":1,"step":20,"coco/bbox_mAP":0.1})" << "\n";
    f << R"({"mode":"val","epoch":2,"step":40,"coco/bbox_mAP":0.2})" << "\n";
    // run 2: resumed from the epoch-1 checkpoint (iteration 20)
    f << R"({"mode":"start","step":20,"epoch":1})" << "\n";
    f << R"({"mode":"train","step":30,"loss":0.5})" << "\n";
    f << R"({"mode":"train","step":40,"lo)" << "\n";  // cut short by a crash
    f << R"({"mode":"val","epoch":2,"step":40,"coco/bbox_mAP":0.3})" << "\n";
  }
  app::TrainingCurves c = app::read_training_curves(path);
  REQUIRE(c.losses.count("loss") == 1);
  CHECK(xs(c.losses["loss"]) == std::vector<double>{10, 20, 30});
  CHECK(c.losses["loss"].points.back().second == 0.5);  // run 2's value, not run 1's 2.0
  REQUIRE(c.aps.count("bbox_mAP") == 1);
  CHECK(xs(c.aps["bbox_mAP"]) == std::vector<double>{1, 2});
  CHECK(c.aps["bbox_mAP"].points.back().second == 0.3);

  {
    // run 3: from scratch again; also a log without start records restarting at step 10
    std::ofstream f(path, std::ios::app);
    f << R"({"mode":"start","step":0,"epoch":0})" << "\n";
    f << R"({"mode":"train","step":10,"loss":9})" << "\n";
  }
  c = app::read_training_curves(path);
  CHECK(xs(c.losses["loss"]) == std::vector<double>{10});
  CHECK(c.aps.count("bbox_mAP") == 0);  // no empty series: the plot needs points to scale
  app::write_training_plot(path, dir.str() + "/curves.png");
  CHECK(std::filesystem::file_size(dir.str() + "/curves.png") > 1000);
  {
    std::ofstream f(path, std::ios::app);
    f << R"({"mode":"train","step":20,"loss":8})" << "\n" << R"({"mode":"train","step":10,"loss":7})" << "\n";
  }
  c = app::read_training_curves(path);
  CHECK(xs(c.losses["loss"]) == std::vector<double>{10});
  CHECK(c.losses["loss"].points.back().second == 7);

  CHECK(app::read_training_curves(dir.str() + "/missing.json").losses.empty());
  {
    // a diverged run: only non-finite losses (written as JSON null by nlohmann) and one huge value
    std::ofstream f(path);
    f << R"({"mode":"start","step":0,"epoch":0})" << "\n" << R"({"mode":"train","step":10,"loss":1e308})" << "\n";
  }
  app::write_training_plot(path, dir.str() + "/curves.png");  // returns, does not spin
  CHECK(std::filesystem::exists(dir.str() + "/curves.png"));
}

TEST_CASE("canvas text draws every glyph of long strings of dense digits", "[apps]") {
  // Ink of a string drawn alone: non-white pixels.
  auto ink = [](const std::string& s) {
    app::Canvas c(400, 20);
    c.text(2, 2, s, {0, 0, 0});
    const std::vector<uint8_t> px = c.to_image().to_vector<uint8_t>();
    int64_t n = 0;
    for (size_t i = 0; i < px.size(); i += 3) n += px[i] != 255;
    return n;
  };
  const int64_t zero = ink("0"), eight = ink("8");
  REQUIRE(zero > 0);
  // glyphs sit side by side without overlapping, so ink adds up: a truncated buffer loses glyphs
  CHECK(ink("800") == eight + 2 * zero);
  CHECK(ink("600") == ink("6") + 2 * zero);
  CHECK(ink("1000") == ink("1") + 3 * zero);
  CHECK(ink("8888888888888888") == 16 * eight);
}
