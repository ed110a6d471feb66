# OpenBLAS, preferring Debian's OpenMP build: called from inside our own OpenMP
# parallel regions it then runs single-threaded instead of oversubscribing.
find_library(OPENBLAS_LIBRARY NAMES openblas
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
find_path(OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
if(NOT OPENBLAS_LIBRARY OR NOT OPENBLAS_INCLUDE_DIR)
  message(STATUS "OpenBLAS (openmp) not found; falling back to any OpenBLAS")
  find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)
  find_path(OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas REQUIRED)
endif()
add_library(sinklab_blas INTERFACE)
target_link_libraries(sinklab_blas INTERFACE ${OPENBLAS_LIBRARY})
target_include_directories(sinklab_blas SYSTEM INTERFACE ${OPENBLAS_INCLUDE_DIR})
message(STATUS "OpenBLAS: ${OPENBLAS_LIBRARY}")
# Both Debian variants share the soname libopenblas.so.0 and the system picks one
# through update-alternatives; pin the one we linked with a run path.
get_filename_component(OPENBLAS_LIBRARY_DIR ${OPENBLAS_LIBRARY} DIRECTORY)
target_link_options(sinklab_blas INTERFACE "-Wl,-rpath,${OPENBLAS_LIBRARY_DIR}")
