// thrust::counting_iterator as the emulated device's CUB stand-in reads it: element i is base + i.
#pragma once

#include <cstddef>

namespace thrust {

template <class T>
class counting_iterator {
 public:
  counting_iterator() = default;
  explicit counting_iterator(T base) : base_(base) {}
  T operator*() const { return base_; }
  T operator[](std::ptrdiff_t i) const { return static_cast<T>(base_ + static_cast<T>(i)); }
  counting_iterator operator+(std::ptrdiff_t i) const { return counting_iterator(static_cast<T>(base_ + static_cast<T>(i))); }
  counting_iterator& operator++() {
    ++base_;
    return *this;
  }

 private:
  T base_{};
};

}  // namespace thrust
