// docs/internals.md points into the code by "path:line" links: each must name an existing file
// and a non-blank line inside it (a moved line is caught when the file shrinks or the line
// blanks; the guide's generator checks the exact targets when it is regenerated).
#include <fstream>
#include <regex>
#include <sstream>

#include "gndet_config.h"
#include "tests/support.h"

TEST_CASE("the guide's file:line links point at existing lines", "[docs]") {
  const std::string root = GNDET_SOURCE_DIR;
  std::ifstream in(root + "/docs/internals.md");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const std::regex link(R"(\(\.\./([A-Za-z0-9_./+-]+)#L([0-9]+)\))");
  int links = 0;
  for (std::sregex_iterator it(doc.begin(), doc.end(), link), end; it != end; ++it) {
    const std::string path = (*it)[1];
    const int line = std::stoi((*it)[2]);
    INFO(path << ":" << line);
    std::ifstream f(root + "/" + path);
    REQUIRE(f.good());
    std::string text;
    int n = 0;
    while (n < line && std::getline(f, text)) ++n;
    CHECK(n == line);
    CHECK(text.find_first_not_of(" \t") != std::string::npos);
    ++links;
  }
  CHECK(links >= 30);
}
