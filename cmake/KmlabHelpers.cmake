# One helper per kind of target, so that each target is one line.

function(kmlab_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion
                                           -Wnon-virtual-dtor -Wold-style-cast -Werror=return-type)
endfunction()

if(KMLAB_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -g -O1)
  add_link_options(-fsanitize=thread)
elseif(KMLAB_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1)
  add_link_options(-fsanitize=address,undefined)
endif()

# kmlab_add_test(name SOURCES... [LABELS l...] [TIMEOUT s]): a GoogleTest binary run by CTest.
function(kmlab_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LABELS;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE kmlab_test_support ${T_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  kmlab_set_warnings(${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  # One CTest entry per GoogleTest case, so CTest's summary names each one.
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# kmlab_add_layer(name LIBRARY|INTERFACE [SOURCES ...] [LINK ...]): the layer's
# target kmlab_<name> (exported as kmlab::<name>), with <name>/include as its
# only public include root, and a check that every header of the layer
# compiles with nothing above the layer on the include path. A LIBRARY is
# static or shared as BUILD_SHARED_LIBS says (static by default).
function(kmlab_add_layer name kind)
  cmake_parse_arguments(L "" "" "SOURCES;LINK" ${ARGN})
  set(target kmlab_${name})
  set(root ${PROJECT_SOURCE_DIR}/${name}/include)
  if(kind STREQUAL "INTERFACE")
    add_library(${target} INTERFACE)
    set(scope INTERFACE)
  else()
    add_library(${target} ${L_SOURCES})
    set(scope PUBLIC)
    kmlab_set_warnings(${target})
  endif()
  add_library(kmlab::${name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(${target} ${scope} $<BUILD_INTERFACE:${root}> $<INSTALL_INTERFACE:include>)
  target_link_libraries(${target} ${scope} ${L_LINK})
  target_compile_features(${target} ${scope} cxx_std_23)
  kmlab_check_layer(${name} ${target} ${root})
endfunction()

# The layer rule, for headers too: one translation unit per layer includes
# every header of the layer and is compiled with only the layer's own
# include path and those it links. A header that includes one from a higher
# layer fails here even if no source of its own layer includes it.
function(kmlab_check_layer name target root)
  file(GLOB_RECURSE headers RELATIVE ${root} CONFIGURE_DEPENDS ${root}/*.hpp ${root}/*.h)
  set(tu ${CMAKE_CURRENT_BINARY_DIR}/layer_check/${name}.cpp)
  set(text "// Generated: every header of the ${name} layer, compiled alone.\n")
  foreach(h IN LISTS headers)
    string(APPEND text "#include <${h}>\n")
  endforeach()
  file(CONFIGURE OUTPUT ${tu} CONTENT "${text}")
  # Only kmlab's own build checks its layers; a project that adds kmlab with
  # add_subdirectory() does not compile the checks.
  if(PROJECT_IS_TOP_LEVEL)
    add_library(kmlab_layer_check_${name} OBJECT ${tu})
  else()
    add_library(kmlab_layer_check_${name} OBJECT EXCLUDE_FROM_ALL ${tu})
  endif()
  target_link_libraries(kmlab_layer_check_${name} PRIVATE ${target})
  kmlab_set_warnings(kmlab_layer_check_${name})
endfunction()
