// OpenBLAS called from inside our OpenMP workers must run single-threaded.
// Debian's OpenMP build does that by itself; the pthreads build would start its
// own threads for every tile and oversubscribe the cores, so for the duration of
// a kernel we pin it to one thread and restore the caller's setting afterwards.
#pragma once

#include <cblas.h>

namespace sinklab::vec {

class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    if (openblas_get_parallel() == 1) {  // 1 = pthreads build
      saved_ = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  ~SingleThreadedBlas() {
    if (saved_ > 0) openblas_set_num_threads(saved_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_ = 0;
};

}  // namespace sinklab::vec
