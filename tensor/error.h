// gndet::Error and the GNDET_CHECK macro: every user-facing failure in the library is an Error
// whose message names the operation, the shapes involved and what was expected. Nothing aborts.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace gndet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Shape = std::vector<int64_t>;

// "(2, 3, 4)"; "()" for a scalar.
std::string shape_str(const Shape& shape);

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace gndet

// Throws gndet::Error with the streamed arguments as message when `cond` is false.
//   GNDET_CHECK(a.dim() == 2, "matmul: expected a 2-D tensor, got shape ", shape_str(a.shape()));
#define GNDET_CHECK(cond, ...)                                           \
  do {                                                                   \
    if (!(cond)) [[unlikely]]                                            \
      throw ::gndet::Error(::gndet::detail::concat(__VA_ARGS__));        \
  } while (0)

#define GNDET_FAIL(...) throw ::gndet::Error(::gndet::detail::concat(__VA_ARGS__))
