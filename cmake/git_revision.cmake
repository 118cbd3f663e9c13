# Writes OUTPUT, a header with the git revision of SOURCE_DIR and whether tracked files differ from
# it, at build time (every build runs it), so that records name the code the binary was built from,
# not the checkout at the last configure. The file is rewritten only when its text changes, so an
# unchanged checkout rebuilds nothing.
set(revision "unknown")
set(dirty 0)
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS ${SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
  if(failed OR revision STREQUAL "")
    set(revision "unknown")
  endif()
  execute_process(COMMAND ${GIT_EXECUTABLE} status --porcelain --untracked-files=no
                  WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE changes ERROR_QUIET)
  if(NOT changes STREQUAL "")
    set(dirty 1)
  endif()
endif()
set(text "#pragma once\n#define CCLAB_GIT_REVISION \"${revision}\"\n#define CCLAB_GIT_DIRTY ${dirty}\n")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old_text)
endif()
if(NOT "${old_text}" STREQUAL "${text}")
  file(WRITE ${OUTPUT} "${text}")
endif()
