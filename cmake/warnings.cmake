# Warnings for the project's own targets (never for third-party code).
function(shardline_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wformat=2
    -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports false -Wrestrict positives inside libstdc++'s std::string at -O3
    # (GCC bug 105329); the warning stays on for clang.
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(SHARDLINE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# simdjson's on-demand API picks its kernel at compile time: without SSE4.2/PCLMUL it falls
# back to the slow generic one. Files that parse JSON on a hot path get x86-64-v2 (any x86-64
# CPU since 2009); other architectures keep their defaults.
function(shardline_simdjson_kernel)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set_source_files_properties(${ARGN} DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTIES COMPILE_OPTIONS "-march=x86-64-v2;-mpclmul")
  endif()
endfunction()
