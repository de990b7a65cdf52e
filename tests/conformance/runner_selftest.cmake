# The runner must see a wrong output as a failure (exit status 1) and a right
# one as a pass (exit status 0). Builds a tiny data folder from ONNX's
# test_relu: test_good is a copy, test_tampered expects relu(x) == x (the
# input has negative values, so that is wrong).
# Inputs: RUNNER, DATA, WORK.
set(src ${DATA}/node/test_relu)
if(NOT EXISTS ${src}/model.onnx)
  message(FATAL_ERROR "missing ${src}/model.onnx")
endif()
file(REMOVE_RECURSE ${WORK})
foreach(t test_good test_tampered)
  file(MAKE_DIRECTORY ${WORK}/node/${t}/test_data_set_0)
  file(COPY ${src}/model.onnx DESTINATION ${WORK}/node/${t})
  file(COPY ${src}/test_data_set_0/input_0.pb DESTINATION ${WORK}/node/${t}/test_data_set_0)
endforeach()
file(COPY ${src}/test_data_set_0/output_0.pb DESTINATION ${WORK}/node/test_good/test_data_set_0)
configure_file(${src}/test_data_set_0/input_0.pb
  ${WORK}/node/test_tampered/test_data_set_0/output_0.pb COPYONLY)

execute_process(COMMAND ${RUNNER} --data ${WORK} RESULT_VARIABLE rc OUTPUT_VARIABLE out
  ERROR_VARIABLE errout)
message(STATUS "runner output (both tests):\n${out}${errout}")
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "expected exit status 1 with a wrong expected output, got '${rc}'")
endif()
if(NOT out MATCHES "\nRelu +1 +1 +0\n")
  message(FATAL_ERROR "expected the row 'Relu 1 1 0' (is Relu claimed?)")
endif()
if(NOT out MATCHES "node/test_tampered \\(Relu\\): output 'y' \\[[0-9, ]+\\]: got [-0-9.e]+, expected [-0-9.e]+")
  message(FATAL_ERROR "expected test_tampered listed with its first mismatch")
endif()

execute_process(COMMAND ${RUNNER} --data ${WORK} --filter good RESULT_VARIABLE rc
  OUTPUT_VARIABLE out ERROR_VARIABLE errout)
message(STATUS "runner output (--filter good):\n${out}${errout}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "expected exit status 0 when every test passes, got '${rc}'")
endif()
if(NOT out MATCHES "\nRelu +1 +0 +0\n")
  message(FATAL_ERROR "expected the row 'Relu 1 0 0'")
endif()
file(REMOVE_RECURSE ${WORK})
