# man.cmake: one man page from `pathwise [SUB] --help` with help2man.
# help2man names the page after the program it runs, so a subcommand runs
# through a two-line wrapper called pathwise-SUB. A page's own sections,
# if any, are in dist/man/PAGE.h2m.
file(MAKE_DIRECTORY ${OUT}/bin)
set(include ${SRC}/dist/man/command.h2m)
if(SUB)
  set(prog ${OUT}/bin/${PAGE})
  file(WRITE ${prog} "#!/bin/sh\nexec '${PATHWISE}' ${SUB} \"$@\"\n")
  file(CHMOD ${prog} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
else()
  set(prog ${PATHWISE})
  set(include ${SRC}/dist/man/pathwise.h2m)
endif()
execute_process(COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1
  "--name=${DESC}" "--version-string=${VERSION}" "--manual=pathwise manual"
  "--source=pathwise ${VERSION}" --include=${include}
  --opt-include=${SRC}/dist/man/${PAGE}.h2m --output=${OUT}/${PAGE}.1 ${prog}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed for ${PAGE}")
endif()
# Installed compressed, as Debian policy wants (gzip -n: no name or time
# stamp, so the package is reproducible).
execute_process(COMMAND gzip -9nf --keep ${OUT}/${PAGE}.1 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed for ${PAGE}")
endif()
