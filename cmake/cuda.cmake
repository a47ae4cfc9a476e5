# The CUDA backend (docs/DESIGN.md "CUDA"): the kernels (kernels/*.cu), the backend and Linalg on the GPU
# (src/backend/cuda/) and the NCCL communicator, as the static library catmerge_cuda that catmerge_core
# links. ON by default when a CUDA compiler is found; -DCATMERGE_CUDA=OFF builds for the CPU alone.
include(CheckLanguage)
check_language(CUDA)
if(CMAKE_CUDA_COMPILER)
  set(CATMERGE_CUDA_DEFAULT ON)
else()
  set(CATMERGE_CUDA_DEFAULT OFF)
endif()
option(CATMERGE_CUDA "Build the CUDA backend and the NCCL communicator" ${CATMERGE_CUDA_DEFAULT})
if(NOT CATMERGE_CUDA)
  return()
endif()

# Fixed targets (A100, H100/H200), never `native`: CI builds on machines without a GPU.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80;90")
endif()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
find_library(NCCL_LIBRARY NAMES nccl REQUIRED
  HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_ROOT}/lib64)
find_path(NCCL_INCLUDE_DIR nccl.h REQUIRED HINTS ${CUDAToolkit_INCLUDE_DIRS})

file(GLOB CATMERGE_CUDA_SOURCES CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/kernels/*.cu
  ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cpp ${PROJECT_SOURCE_DIR}/src/backend/cuda/*.cu
  ${PROJECT_SOURCE_DIR}/src/comm/nccl_communicator.cpp)
add_library(catmerge_cuda STATIC ${CATMERGE_CUDA_SOURCES})
# nvcc takes the host warnings through -Xcompiler; its own diagnostics become errors with --Werror.
target_compile_options(catmerge_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
if(CATMERGE_WERROR)
  target_compile_options(catmerge_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Werror --Werror=all-warnings>)
endif()
target_include_directories(catmerge_cuda SYSTEM PUBLIC ${NCCL_INCLUDE_DIR})
# catmerge_core and catmerge_cuda call each other (make_backend builds the CUDA backend, which reports
# errors through cm::Error): a cycle of static libraries, which CMake repeats on the link line.
target_link_libraries(catmerge_cuda PUBLIC catmerge_core CUDA::cudart CUDA::cublas CUDA::cusolver ${NCCL_LIBRARY} MPI::MPI_C)
target_link_libraries(catmerge_core PUBLIC catmerge_cuda)
target_compile_definitions(catmerge_core PUBLIC CATMERGE_HAVE_CUDA=1)
