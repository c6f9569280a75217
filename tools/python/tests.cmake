# The Python package's tests: pytest, one ctest entry per file of
# tools/python/tests, against the package as assembled in the build tree.
# Included by tests/CMakeLists.txt when the package is built.
file(GLOB python_tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tools/python/tests/test_*.py)
foreach(t ${python_tests})
  get_filename_component(name ${t} NAME_WE)
  add_test(NAME python-${name}
    COMMAND ${TESSERA_PYTHON_EXECUTABLE} -m pytest -q -p no:cacheprovider ${t}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/tools/python/tests)
  set_tests_properties(python-${name} PROPERTIES TIMEOUT 300
    ENVIRONMENT "PYTHONPATH=${TESSERA_PYTHON_BUILD_DIR};TESSERA_SOURCE_DIR=${PROJECT_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1")
endforeach()
