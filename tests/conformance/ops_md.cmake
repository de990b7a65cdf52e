# Writes docs/ops.md with the conformance runner, or checks that it is fresh.
#   -DRUNNER=... -DDATA=... -DOUT=file        write the markdown to OUT
#   -DCHECK=docs/ops.md                       and fail when CHECK differs from OUT
# The runner exits 1 when some test fails; the markdown is written anyway.
execute_process(
  COMMAND ${RUNNER} --data ${DATA} --threads 1 --isolate --markdown ${OUT}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(NOT (rc EQUAL 0 OR rc EQUAL 1) OR NOT EXISTS ${OUT})
  message(FATAL_ERROR "pare_conformance could not write ${OUT} (exit status ${rc}):\n${out}${err}")
endif()
if(NOT CHECK)
  message(STATUS "wrote ${OUT}")
  return()
endif()
set(regen "Regenerate it with:\n  cmake --build ${BUILD_DIR} --target ops_md\n"
  "(or: ${RUNNER} --isolate --markdown ${CHECK}) and commit it with the change.")
if(NOT EXISTS ${CHECK})
  message(FATAL_ERROR "${CHECK} does not exist. ${regen}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${CHECK} ${OUT} RESULT_VARIABLE differ)
if(differ)
  execute_process(COMMAND diff -u ${CHECK} ${OUT})
  message(FATAL_ERROR "${CHECK} is stale: it is generated from the op registry and the "
    "conformance results (diff above: - committed, + fresh). ${regen}")
endif()
message(STATUS "${CHECK} is up to date")
