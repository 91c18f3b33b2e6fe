# Fails when docs/CONFIGURATION.md differs from what `shardline config docs` generates.
execute_process(COMMAND ${CLI} config docs OUTPUT_VARIABLE generated RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "shardline config docs failed (${rc})")
endif()
file(READ ${DOC} current)
if(NOT generated STREQUAL current)
  message(FATAL_ERROR "docs/CONFIGURATION.md is stale: run `build/bin/shardline config docs > docs/CONFIGURATION.md`")
endif()
