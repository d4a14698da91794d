# CTest driver of install.consumer (cmake -P): installs the already-built kmlab
# tree into a prefix under WORK_DIR, configures and builds
# tests/install_consumer against it with find_package(kmlab), and runs one
# consumer per backend, the C face's consumer, and the explorer's consumer
# (which must find its lost wake-up; its schedule is then replayed through
# KMLAB_MODEL_REPLAY in a second run). Fails if any step fails or any
# consumer's check fails.
#
# Inputs (-D): KMLAB_BINARY_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, CXX_COMPILER,
# GENERATOR, BUILD_TYPE, EXTRA_FLAGS (the sanitizer flags kmlab was built with).
foreach(var KMLAB_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR CXX_COMPILER GENERATOR BUILD_TYPE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message("${out}")
    message(FATAL_ERROR "install.consumer: ${what} failed (${rc})")
  endif()
endfunction()

step("cmake --install" ${CMAKE_COMMAND} --install ${KMLAB_BINARY_DIR} --prefix ${prefix})
step("configuring the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${build}
     -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
     -DCMAKE_PREFIX_PATH=${prefix} "-DCMAKE_CXX_FLAGS=${EXTRA_FLAGS}"
     "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}"
     "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
step("building the consumer" ${CMAKE_COMMAND} --build ${build})

set(failed "")
foreach(backend futex spin dispatcher c)
  execute_process(COMMAND ${build}/consumer_${backend} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(STRIP "${out}" out)
  message("${out}")
  if(NOT err STREQUAL "")
    message("${err}")
  endif()
  if(NOT rc EQUAL 0)
    list(APPEND failed ${backend})
  endif()
endforeach()

# The explorer's consumer: it finds its lost wake-up and replays the schedule
# itself (Config::replay); then a second process replays the printed
# schedule through the environment variable alone.
if(EXISTS ${build}/consumer_explore)
  execute_process(COMMAND ${build}/consumer_explore RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}")
  if(NOT err STREQUAL "")
    message("${err}")
  endif()
  if(NOT rc EQUAL 0)
    list(APPEND failed explore)
  elseif(out MATCHES "KMLAB_MODEL_REPLAY='([^']*)'")
    set(schedule "${CMAKE_MATCH_1}")
    string(REGEX MATCH "explore: found after [0-9]+ schedules: ([^\n]*)" found "${out}")
    string(REGEX REPLACE "0x[0-9a-f]+" "0x?" found_what "${CMAKE_MATCH_1}")
    execute_process(COMMAND ${CMAKE_COMMAND} -E env "KMLAB_MODEL_REPLAY=${schedule}"
                            ${build}/consumer_explore
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    string(STRIP "${out}" out)
    message("${out}")
    if(NOT err STREQUAL "")
      message("${err}")
    endif()
    # The same violation, but for addresses (each run allocates afresh).
    string(REGEX MATCH "replayed KMLAB_MODEL_REPLAY: ([^\n]*)" replayed "${out}")
    string(REGEX REPLACE "0x[0-9a-f]+" "0x?" replayed_what "${CMAKE_MATCH_1}")
    if(NOT rc EQUAL 0 OR found_what STREQUAL "" OR NOT replayed_what STREQUAL found_what)
      list(APPEND failed "explore (KMLAB_MODEL_REPLAY: '${replayed_what}', found '${found_what}')")
    endif()
  else()
    list(APPEND failed "explore (no KMLAB_MODEL_REPLAY line)")
  endif()
else()
  message("install.consumer: kmlab::explore is not installed (a shared-library build): "
          "the explorer's consumer is skipped")
endif()
if(failed)
  message(FATAL_ERROR "install.consumer: check failed for: ${failed}")
endif()
