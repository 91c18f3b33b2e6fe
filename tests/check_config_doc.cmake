# Fails when a generated doc differs from what `shardline config <WHAT>` prints
# (WHAT = docs -> docs/CONFIGURATION.md, errors -> docs/ERRORS.md).
if(NOT WHAT)
  set(WHAT docs)
endif()
execute_process(COMMAND ${CLI} config ${WHAT} OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "shardline config ${WHAT} failed (${rc})")
endif()
file(READ ${DOC} current)
if(NOT generated STREQUAL current)
  message(FATAL_ERROR "${DOC} is stale: run `build/bin/shardline config ${WHAT} > ${DOC}`")
endif()
