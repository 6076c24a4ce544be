# Writes gradfit/version.h with the git commit of the source tree; run with `cmake -P` on every build (the
# gradfit_version target in src/CMakeLists.txt), so that the commit follows every later commit without
# re-configuring.
#   -DGIT_EXECUTABLE=   git, or empty: the commit is then "unknown"
#   -DSOURCE_DIR=       the git work tree
#   -DIN=               src/common/version.h.in
#   -DOUT=              the header to write
#   -DPROJECT_VERSION=  the project's version
# The commit is 12 hex digits, with "-dirty" when tracked files differ from it, or "unknown" without git. OUT is
# rewritten only when its text changes: an unchanged commit must not recompile what includes it.
cmake_minimum_required(VERSION 3.18)

set(GRADFIT_GIT_COMMIT "unknown")
if(GIT_EXECUTABLE)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --short=12 HEAD
                  WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE failed ERROR_QUIET)
  if(NOT failed AND commit)
    set(GRADFIT_GIT_COMMIT ${commit})
    # --no-optional-locks: a build must not take the index lock from a git command the user runs meanwhile.
    execute_process(COMMAND ${GIT_EXECUTABLE} --no-optional-locks status --porcelain --untracked-files=no
                    WORKING_DIRECTORY ${SOURCE_DIR}
                    OUTPUT_VARIABLE changes OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE failed ERROR_QUIET)
    if(NOT failed AND changes)
      string(APPEND GRADFIT_GIT_COMMIT "-dirty")
    endif()
  endif()
endif()

file(READ ${IN} template)
string(CONFIGURE "${template}" text @ONLY)
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT text STREQUAL old)
  file(WRITE ${OUT} "${text}")
  message(STATUS "gradfit/version.h: git commit ${GRADFIT_GIT_COMMIT}")
endif()
