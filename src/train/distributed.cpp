// Data parallelism over MPI ranks. MPI is initialised only when the process
// was started by mpirun (or another launcher that sets the usual rank
// variables), so a plain `sinklab train` never depends on an MPI runtime.
#include <cstdlib>

#include "sinklab/train.h"

#ifdef SINKLAB_HAVE_MPI
#include <mpi.h>
#endif

namespace sinklab {

namespace {
bool g_mpi_active = false;

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}
}  // namespace

World world_init() {
  World w;
#ifdef SINKLAB_HAVE_MPI
  if (!launched_by_mpi()) return w;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(nullptr, nullptr);
  g_mpi_active = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
#else
  check(!launched_by_mpi(),
        "this sinklab was built without MPI (install libopenmpi-dev and rebuild) but was started by mpirun");
#endif
  return w;
}

void world_finalize() {
#ifdef SINKLAB_HAVE_MPI
  if (g_mpi_active) {
    MPI_Finalize();
    g_mpi_active = false;
  }
#endif
}

void world_allreduce_sum(std::span<double> data) {
#ifdef SINKLAB_HAVE_MPI
  if (g_mpi_active) MPI_Allreduce(MPI_IN_PLACE, data.data(), int(data.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
  (void)data;
#endif
}

void world_allreduce_sum(std::span<float> data) {
#ifdef SINKLAB_HAVE_MPI
  if (!g_mpi_active) return;
  // In chunks: MPI counts are int.
  const size_t chunk = size_t(1) << 28;
  for (size_t off = 0; off < data.size(); off += chunk) {
    const size_t n = std::min(chunk, data.size() - off);
    MPI_Allreduce(MPI_IN_PLACE, data.data() + off, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
#else
  (void)data;
#endif
}

}  // namespace sinklab
